//! Where the working tree holding a directory starts, found by looking for `.git` upwards: what
//! `git rev-parse --show-toplevel` answers in the plain case, without its process (~1.3 ms of
//! the ~4 ms an `orch-tui status` of a small plan took; every command line call asks it once).
//!
//! Only the plain case is answered here; everything else is left to git, whose answer (or error
//! message) stands: a `GIT_*` variable that moves or bounds the search, a `.git` that is a
//! symlink or not owned by us (git's `safe.directory` check), folders not found the plain way
//! or a config that may move the working tree (`files.rs`, as the worktree list reads them), a
//! directory on the way that is itself a repository (a bare one, or inside `.git`), a mount
//! point crossed, or no `.git` found at all.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::files::{GitDirs, config_moves_worktree};

/// Variables with which git finds (or bounds the search for) the repository some other way.
const GIT_SEARCH_VARS: [&str; 5] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
];

/// The top level of the working tree holding `start`, when it is plain to see (see the module's
/// doc); None: ask git.
pub(super) fn plain_top_level(start: &Path) -> Option<PathBuf> {
    if GIT_SEARCH_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some())
    {
        return None;
    }
    // git answers with the physical path (symlinks resolved), as `getcwd` gives it.
    let start = fs::canonicalize(start).ok()?;
    let device = fs::metadata(&start).ok()?.dev();
    // SAFETY: geteuid has no failure mode and touches no memory.
    let me = unsafe { libc::geteuid() };
    let mut dir = start.as_path();
    loop {
        let meta = fs::metadata(dir).ok()?;
        if meta.dev() != device {
            return None;
        }
        let dot_git = dir.join(".git");
        match fs::symlink_metadata(&dot_git) {
            Ok(m) if m.is_dir() || m.is_file() => {
                return (m.uid() == me && meta.uid() == me && is_plain_repository(dir, me))
                    .then(|| dir.to_path_buf());
            }
            // A symlink, a socket, ...: git's call.
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
        // No `.git` here: git would stop if this directory were a repository itself (anything
        // with a `HEAD` or an `objects` folder is taken for one here: git decides).
        if dir.join("HEAD").exists() || dir.join("objects").is_dir() {
            return None;
        }
        dir = dir.parent()?;
    }
}

/// The repository of the working tree at `top` (its `.git` folder, or the folder a `.git` file
/// names and the repository's own behind it) found the plain way, ours, with a `HEAD` and
/// objects, and a config that leaves the working tree where it is.
fn is_plain_repository(top: &Path, me: u32) -> bool {
    let Some(dirs) = GitDirs::of(top) else {
        return false;
    };
    let owned = fs::metadata(&dirs.admin).is_ok_and(|m| m.is_dir() && m.uid() == me);
    owned
        && dirs.admin.join("HEAD").is_file()
        && dirs.common.join("objects").is_dir()
        && !config_moves_worktree(&dirs.common)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Repo;
    use crate::git::test_git::git;

    /// What git answers in `dir`; None when it fails there.
    fn gits_answer(dir: &Path) -> Option<PathBuf> {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--show-toplevel"])
            .current_dir(dir)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .expect("git");
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end()))
    }

    fn repo_with_commit(dir: &Path) {
        fs::create_dir_all(dir).expect("mkdir");
        git(dir, &["init", "-q", "-b", "main"]);
        git(dir, &["commit", "-q", "--allow-empty", "-m", "first"]);
    }

    /// The plain answer is git's, and `Repo::open` gives it.
    fn agrees(dir: &Path) {
        let plain = plain_top_level(dir);
        assert!(plain.is_some(), "{} should be plain to see", dir.display());
        assert_eq!(plain, gits_answer(dir), "in {}", dir.display());
        let opened = Repo::open(dir).expect("open");
        assert_eq!(Some(opened.root().to_path_buf()), gits_answer(dir));
    }

    /// Left to git: `Repo::open` answers (or fails) as git does.
    fn left_to_git(dir: &Path) {
        assert_eq!(plain_top_level(dir), None, "in {}", dir.display());
        let opened = Repo::open(dir).ok().map(|r| r.root().to_path_buf());
        assert_eq!(opened, gits_answer(dir), "in {}", dir.display());
    }

    #[test]
    fn the_top_level_found_by_looking_up_is_gits_own() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("repo");
        repo_with_commit(&root);
        let deep = root.join("a/b/c");
        fs::create_dir_all(&deep).expect("mkdir");
        agrees(&root);
        agrees(&root.join("a"));
        agrees(&deep);
        // Through a symlink: git answers with the physical path.
        std::os::unix::fs::symlink(root.join("a"), tmp.path().join("link")).expect("symlink");
        agrees(&tmp.path().join("link/b"));
        // A linked worktree is a top level of its own.
        git(&root, &["worktree", "add", "-q", "--detach", "../wt"]);
        let wt = tmp.path().join("wt");
        fs::create_dir_all(wt.join("x")).expect("mkdir");
        agrees(&wt);
        agrees(&wt.join("x"));
        // A repository inside another: the inner one.
        let inner = root.join("a/inner");
        repo_with_commit(&inner);
        agrees(&inner);
    }

    #[test]
    fn anything_out_of_the_plain_case_is_left_to_git() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("repo");
        repo_with_commit(&root);
        // Inside the repository's own folder, git refuses: so does `Repo::open`.
        left_to_git(&root.join(".git/refs"));
        assert!(Repo::open(&root.join(".git/refs")).is_err());
        // No repository at all.
        let nowhere = tmp.path().join("nowhere");
        fs::create_dir_all(&nowhere).expect("mkdir");
        left_to_git(&nowhere);
        // A `.git` file that names no repository.
        let odd = tmp.path().join("odd");
        fs::create_dir_all(&odd).expect("mkdir");
        fs::write(odd.join(".git"), "not a pointer\n").expect("write");
        left_to_git(&odd);
        // `core.worktree` moves the top level elsewhere: git's answer stands.
        let moved = tmp.path().join("moved");
        repo_with_commit(&moved);
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).expect("mkdir");
        git(
            &moved,
            &["config", "core.worktree", &elsewhere.to_string_lossy()],
        );
        left_to_git(&moved);
        // A linked worktree reads its repository's config too: an include there goes to git.
        git(&root, &["worktree", "add", "-q", "--detach", "../linked"]);
        agrees(&tmp.path().join("linked"));
        git(&root, &["config", "include.path", "more.cfg"]);
        left_to_git(&tmp.path().join("linked"));
    }
}
