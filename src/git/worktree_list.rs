//! `git worktree list` read from the files git keeps (issue #11: the pool, the tidy and collect
//! asked for the listing ~2.4 times per task, a git process each). The main worktree is the
//! common folder's parent; each linked one is a folder `<common>/worktrees/<id>` whose `gitdir`
//! names it, whose `HEAD` says what is checked out, and whose `locked` file locks it. Anything
//! not plain (a relative link, a HEAD or `commondir` being written by a `git worktree add` in
//! another process, a symbolic ref that is not a branch, reftable, a config that puts the main
//! worktree elsewhere: bare, `core.worktree`, an include) answers None, and the caller asks
//! git, so the answer is always git's.

use std::path::{Path, PathBuf};

use super::files::{GitDirs, config_moves_worktree, oid_line};
use super::worktree::WorktreeInfo;

/// What a HEAD file says, resolved: the commit (None while the branch is unborn) and the branch.
fn resolve_head(dirs: &GitDirs, head_file: &Path) -> Option<(Option<String>, Option<String>)> {
    let text = std::fs::read_to_string(head_file).ok()?;
    let text = text.strip_suffix('\n')?;
    match text.strip_prefix("ref: ") {
        Some(branch) => {
            let oid = dirs.branch_oid(branch)?;
            Some((oid, Some(branch.to_string())))
        }
        // All zeros: the placeholder of a worktree being added.
        None => Some((
            Some(oid_line(text).filter(|o| o.bytes().any(|b| b != b'0'))?),
            None,
        )),
    }
}

/// The main worktree of the repository whose top level is `root`, then every linked one sorted
/// by path, as `git worktree list --porcelain` lists them. None when the files do not plainly
/// answer: ask git then.
pub(super) fn worktrees_from_files(root: &Path) -> Option<Vec<WorktreeInfo>> {
    // The bookkeeping lock: a move by hand in this process (`pool::by_hand`) renames the folder
    // before it rewrites `gitdir`, and must not be seen in between.
    let _admin = super::run::worktree_admin_lock();
    let dotgit = root.join(".git");
    if !dotgit.is_dir() {
        return None;
    }
    let dirs = GitDirs::of(root)?;
    if config_moves_worktree(&dirs.common) {
        return None;
    }
    let main_path = dirs.common.canonicalize().ok()?.parent()?.to_path_buf();
    if root.canonicalize().ok()? != main_path {
        return None;
    }
    let (head, branch) = resolve_head(&dirs, &dirs.admin.join("HEAD"))?;
    let mut linked = Vec::new();
    let entries = match std::fs::read_dir(dirs.common.join("worktrees")) {
        Ok(e) => Some(e),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => return None,
    };
    for entry in entries.into_iter().flatten() {
        let admin = entry.ok()?.path();
        if let Some(info) = linked_worktree(&dirs, &admin)? {
            linked.push(info);
        }
    }
    // git sorts the linked ones by path (byte order), the main one first.
    linked.sort_by(|a, b| a.path.as_os_str().cmp(b.path.as_os_str()));
    let mut list = vec![WorktreeInfo {
        path: main_path,
        head,
        branch,
        locked: false,
    }];
    list.extend(linked);
    Some(list)
}

/// One `<common>/worktrees/<id>` folder: Some(None) when git would skip it too (no readable
/// `gitdir`: a folder removed meanwhile, or not a worktree's), None when not plainly answered.
fn linked_worktree(dirs: &GitDirs, admin: &Path) -> Option<Option<WorktreeInfo>> {
    let gitdir = match std::fs::read_to_string(admin.join("gitdir")) {
        Ok(t) if !t.trim().is_empty() => t,
        Ok(_) => return Some(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(None),
        Err(_) => return None,
    };
    let gitdir = PathBuf::from(gitdir.trim_end());
    if !gitdir.is_absolute() {
        return None;
    }
    // `commondir` is written in place by `git worktree add`: only its finished form is plain.
    match std::fs::read_to_string(admin.join("commondir")) {
        Ok(c) if c == "../..\n" => {}
        _ => return None,
    }
    // git strips the `/.git` its link names; a link to anything else is not plain.
    if !gitdir.ends_with(".git") {
        return None;
    }
    let path = gitdir.parent()?.to_path_buf();
    let (head, branch) = resolve_head(dirs, &admin.join("HEAD"))?;
    Some(Some(WorktreeInfo {
        path,
        head,
        branch,
        locked: admin.join("locked").exists(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Repo;
    use crate::git::test_git::git;

    fn new_repo(t: &Path, init: &[&str]) -> (PathBuf, Repo) {
        let root = t.join("repo");
        std::fs::create_dir(&root).expect("mkdir");
        git(&root, init);
        git(&root, &["commit", "-q", "--allow-empty", "-m", "one"]);
        let repo = Repo::open(&root).expect("open");
        (root, repo)
    }

    fn add(root: &Path, args: &[&str]) {
        let mut all = vec!["worktree", "add", "-q"];
        all.extend(args);
        git(root, &all);
    }

    /// The files' answer is git's own, with one more worktree at each step.
    #[test]
    fn the_files_list_what_git_lists() {
        let t = tempfile::tempdir().expect("tempdir");
        let (root, repo) = new_repo(t.path(), &["init", "-q", "-b", "main"]);
        let p = |name: &str| t.path().join(name).to_str().expect("utf8").to_string();
        let same = |step: &str| {
            let by_git = repo.worktrees_by_git().expect("git lists");
            let by_files = worktrees_from_files(&root);
            assert_eq!(by_files.as_ref(), Some(&by_git), "{step}");
            by_git.len()
        };
        assert_eq!(same("main only"), 1);
        add(&root, &["--detach", &p("det"), "main"]);
        add(&root, &["-b", "on-branch", &p("br"), "main"]);
        add(&root, &["--detach", &p("locked"), "main"]);
        git(&root, &["worktree", "lock", &p("locked")]);
        add(&root, &["--orphan", "-b", "unborn", &p("orphan")]);
        assert_eq!(same("detached, branch, locked, unborn"), 5);
        git(&root, &["pack-refs", "--all"]);
        assert_eq!(same("branches only in packed-refs"), 5);
        git(&root, &["worktree", "move", &p("det"), &p("aaa-moved")]);
        git(
            p("br").as_ref(),
            &["commit", "-q", "--allow-empty", "-m", "two"],
        );
        assert_eq!(same("moved, branch moved on"), 5);
        std::fs::remove_dir_all(p("aaa-moved")).expect("rm");
        assert_eq!(same("folder gone (prunable)"), 5);
        // An admin folder without `gitdir` is skipped by both.
        let stray = root.join(".git/worktrees/stray");
        std::fs::create_dir(&stray).expect("mkdir");
        assert_eq!(same("admin folder without gitdir"), 5);
        std::fs::remove_dir(&stray).expect("rm");
        git(&root, &["worktree", "prune"]);
        git(&root, &["checkout", "-q", "--detach"]);
        assert_eq!(same("main detached, pruned"), 4);
    }

    /// Each case the files do not plainly answer goes to git, which still lists them.
    #[test]
    fn what_is_not_plain_is_left_to_git() {
        let t = tempfile::tempdir().expect("tempdir");
        let (root, repo) = new_repo(t.path(), &["init", "-q", "-b", "main"]);
        let wt = t.path().join("wt");
        add(&root, &["--detach", wt.to_str().expect("utf8"), "main"]);
        let admin = root.join(".git/worktrees/wt");
        assert!(worktrees_from_files(&root).is_some());
        let edit = |file: &str, text: &str| {
            let old = std::fs::read_to_string(admin.join(file)).expect("read");
            std::fs::write(admin.join(file), text).expect("write");
            let answer = worktrees_from_files(&root);
            std::fs::write(admin.join(file), old).expect("restore");
            answer
        };
        // `commondir` as `git worktree add` leaves it for a moment: created, not yet written.
        assert_eq!(edit("commondir", ""), None, "half-written commondir");
        assert_eq!(edit("HEAD", &format!("{}\n", "0".repeat(40))), None);
        assert_eq!(edit("HEAD", "ref: refs/tags/x\n"), None, "not a branch");
        assert_eq!(edit("gitdir", "../../../wt/.git\n"), None, "relative link");
        assert!(worktrees_from_files(&root).is_some(), "restored");
        assert_eq!(
            repo.worktrees().expect("list"),
            repo.worktrees_by_git().expect("git")
        );

        git(&root, &["config", "core.bare", "true"]);
        assert_eq!(worktrees_from_files(&root), None, "a bare repository");
        git(&root, &["config", "core.bare", "false"]);
        git(
            &root,
            &["config", "core.worktree", root.to_str().expect("utf8")],
        );
        assert_eq!(worktrees_from_files(&root), None, "core.worktree");
        git(&root, &["config", "--unset", "core.worktree"]);
        git(&root, &["config", "include.path", "other.cfg"]);
        assert_eq!(worktrees_from_files(&root), None, "an include");
        git(&root, &["config", "--unset", "include.path"]);
        assert!(worktrees_from_files(&root).is_some(), "plain again");

        let r = tempfile::tempdir().expect("tempdir");
        let (reftable, _) = new_repo(r.path(), &["init", "-q", "--ref-format=reftable"]);
        assert_eq!(worktrees_from_files(&reftable), None, "reftable");
    }

    /// Worktrees being added by another process meanwhile (the race `Repo::worktrees` retries
    /// on): every listing answers, none loses a worktree, the last is git's.
    #[test]
    fn a_listing_beside_worktrees_being_added_always_answers() {
        let t = tempfile::tempdir().expect("tempdir");
        let (root, repo) = new_repo(t.path(), &["init", "-q", "-b", "main"]);
        let adder = {
            let (root, dir) = (root.clone(), t.path().to_path_buf());
            std::thread::spawn(move || {
                for i in 0..12 {
                    let wt = dir.join(format!("w{i}"));
                    add(&root, &["--detach", wt.to_str().expect("utf8"), "main"]);
                }
            })
        };
        let mut seen = 1;
        while !adder.is_finished() {
            let n = repo
                .worktrees()
                .expect("a listing while others are added")
                .len();
            assert!(n >= seen, "{n} worktrees listed after {seen}");
            seen = n;
        }
        adder.join().expect("adder");
        let last = repo.worktrees().expect("list");
        assert_eq!(last.len(), 13);
        assert_eq!(last, repo.worktrees_by_git().expect("git lists"));
    }
}
