//! The per-turn commit with the change journal (src/git/watch.rs) on real repositories: every
//! kind of change an agent makes lands in the commit, the user's hooks still run, and when the
//! journal cannot be trusted (the agent's own git rewrote the index) git scans as before. After
//! each commit a plain `git status` (a full scan, no journal) must find nothing left behind.
//! (Lost kernel events are covered by the unit test in src/git/watch.rs.)

use std::fs;
use std::path::{Path, PathBuf};

mod common;

use common::git;
use common::scratch::{fixture, write_hook, wt_path};
use orch_tui::git::{Pool, Repo, Taken, backup_ref_name};

fn pool() -> Pool {
    Pool {
        dir: PathBuf::from(".orch/pool"),
        reuse: Vec::new(),
        max_idle: 2,
        keep_idle: 0,
    }
}

/// A repository with a tree of tracked files, `target/` ignored, and a worktree for task `t`
/// taken from a warmed pool (the engine's usual path).
fn taken() -> (tempfile::TempDir, Repo, PathBuf) {
    let (tmp, repo) = fixture();
    let root = repo.root().to_path_buf();
    fs::write(root.join(".gitignore"), "*.log\ntarget/\n").expect("write");
    for d in ["src/a", "src/b", "docs"] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
        for i in 0..5 {
            fs::write(root.join(format!("{d}/f{i}.txt")), format!("{d} {i}\n")).expect("write");
        }
    }
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "tree"]);
    let base = repo.ensure_branch("orch/integration").expect("integration");
    repo.fill_pool(&pool(), &base).expect("fill");
    let wt = wt_path(&repo, "t-1");
    let how = repo
        .take_worktree(&pool(), &wt, "orch/t", &base, &backup_ref_name("t", 1))
        .expect("take");
    assert_eq!(how, Taken::Reused);
    (tmp, repo, wt)
}

fn commit(repo: &Repo, wt: &Path, msg: &str) -> Option<String> {
    repo.commit_all(wt, "Agent A", "agent-a@example.com", msg)
        .expect("commit")
}

/// Nothing the agent left is outside the commit (a full scan says so), and the commit went
/// through the journal (the index carries its fsmonitor token).
fn assert_all_committed(wt: &Path) {
    assert!(
        index_has_journal_token(wt),
        "the commit did not go through the change journal"
    );
    // Without optional locks: status would otherwise rewrite the index, dropping the token.
    let status = [
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=all",
    ];
    assert_eq!(git(wt, &status), "");
    assert!(index_has_journal_token(wt));
}

fn index_has_journal_token(wt: &Path) -> bool {
    let index = git(
        wt,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
    );
    let bytes = fs::read(index).expect("index");
    bytes.windows(4).any(|w| w == b"FSMN")
}

fn tree(wt: &Path, rev: &str) -> Vec<String> {
    git(wt, &["ls-tree", "-r", "--name-only", rev])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn files_created_modified_deleted_and_renamed_all_land_in_the_turns_commits() {
    let (_t, repo, wt) = taken();
    // Turn 1: an edit, a new file, new nested folders, an ignored build output.
    fs::write(wt.join("src/a/f0.txt"), "edited\n").expect("write");
    fs::write(wt.join("new.txt"), "new\n").expect("write");
    fs::create_dir_all(wt.join("deep/er/est")).expect("mkdir");
    fs::write(wt.join("deep/er/est/x.txt"), "deep\n").expect("write");
    fs::create_dir_all(wt.join("target/debug")).expect("mkdir");
    fs::write(wt.join("target/debug/out.o"), "obj").expect("write");
    let c1 = commit(&repo, &wt, "turn 1").expect("a commit");
    assert_all_committed(&wt);
    let files = tree(&wt, &c1);
    assert!(files.contains(&"new.txt".to_string()));
    assert!(files.contains(&"deep/er/est/x.txt".to_string()));
    assert!(!files.iter().any(|f| f.starts_with("target/")));
    assert_eq!(git(&wt, &["show", &format!("{c1}:src/a/f0.txt")]), "edited");

    // Turn 2: a deletion, a file renamed, a folder renamed and then edited inside, a folder
    // removed, a file in the new folder of turn 1 edited.
    fs::remove_file(wt.join("src/a/f1.txt")).expect("rm");
    fs::rename(wt.join("src/a/f2.txt"), wt.join("src/a/moved.txt")).expect("mv");
    fs::rename(wt.join("src/b"), wt.join("src/c")).expect("mv dir");
    fs::write(wt.join("src/c/f3.txt"), "edited after the folder moved\n").expect("write");
    fs::remove_dir_all(wt.join("docs")).expect("rm -r");
    fs::write(wt.join("deep/er/est/x.txt"), "deeper\n").expect("write");
    let c2 = commit(&repo, &wt, "turn 2").expect("a commit");
    assert_all_committed(&wt);
    let files = tree(&wt, &c2);
    assert!(!files.contains(&"src/a/f1.txt".to_string()));
    assert!(files.contains(&"src/a/moved.txt".to_string()));
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("src/b/") || f.starts_with("docs/"))
    );
    assert_eq!(
        git(&wt, &["show", &format!("{c2}:src/c/f3.txt")]),
        "edited after the folder moved"
    );
    assert_eq!(
        git(&wt, &["show", &format!("{c2}:deep/er/est/x.txt")]),
        "deeper"
    );

    // Turn 3: a folder moved in from outside the worktree; a file edited in the folder renamed
    // last turn; a folder with subfolders renamed, then a file deep in it edited.
    let outside = wt.parent().expect("parent").join("outside");
    fs::create_dir_all(outside.join("inner")).expect("mkdir");
    fs::write(outside.join("inner/o.txt"), "from outside\n").expect("write");
    fs::rename(&outside, wt.join("src/brought")).expect("mv in");
    fs::write(wt.join("src/c/f4.txt"), "in the renamed folder\n").expect("write");
    fs::rename(wt.join("deep"), wt.join("shallow")).expect("mv dir");
    fs::write(wt.join("shallow/er/est/x.txt"), "moved with its folder\n").expect("write");
    let c3 = commit(&repo, &wt, "turn 3").expect("a commit");
    assert_all_committed(&wt);
    assert!(tree(&wt, &c3).contains(&"src/brought/inner/o.txt".to_string()));
    assert_eq!(
        git(&wt, &["show", &format!("{c3}:src/c/f4.txt")]),
        "in the renamed folder"
    );

    // Turn 4: edits inside the folders moved last turn, after their watches were redone.
    fs::write(wt.join("shallow/er/est/x.txt"), "edited again\n").expect("write");
    fs::write(wt.join("src/brought/inner/o.txt"), "edited inside\n").expect("write");
    let c4 = commit(&repo, &wt, "turn 4").expect("a commit");
    assert_all_committed(&wt);
    assert_eq!(
        git(&wt, &["show", &format!("{c4}:shallow/er/est/x.txt")]),
        "edited again"
    );
    assert_eq!(
        git(&wt, &["show", &format!("{c4}:src/brought/inner/o.txt")]),
        "edited inside"
    );

    // Turn 5: nothing.
    assert_eq!(commit(&repo, &wt, "turn 5"), None);
}

#[test]
fn the_users_commit_hooks_still_run_with_the_journal() {
    let (t, repo, wt) = taken();
    let marker = t.path().join("pre-commit-ran");
    write_hook(
        &repo,
        "pre-commit",
        &format!("#!/bin/sh\necho ran >> '{}'\n", marker.display()),
    );
    fs::write(wt.join("src/a/f0.txt"), "edited\n").expect("write");
    commit(&repo, &wt, "with a hook").expect("a commit");
    assert_all_committed(&wt);
    assert_eq!(fs::read_to_string(&marker).expect("the hook ran"), "ran\n");
    // A refusing hook is still an error, and nothing is lost.
    write_hook(&repo, "pre-commit", "#!/bin/sh\nexit 1\n");
    fs::write(wt.join("src/a/f1.txt"), "refused\n").expect("write");
    assert!(
        repo.commit_all(&wt, "Agent A", "agent-a@example.com", "no")
            .is_err()
    );
    assert_eq!(
        fs::read_to_string(wt.join("src/a/f1.txt")).expect("read"),
        "refused\n"
    );
}

#[test]
fn after_the_agents_own_git_rewrote_the_index_the_commit_still_finds_everything() {
    let (_t, repo, wt) = taken();
    fs::write(wt.join("src/a/f0.txt"), "first\n").expect("write");
    commit(&repo, &wt, "turn 1").expect("a commit");
    assert!(index_has_journal_token(&wt));
    // The agent commits by itself (its git knows nothing of the journal and drops its token)
    // and leaves more uncommitted.
    fs::write(wt.join("src/a/f1.txt"), "agent's own\n").expect("write");
    git(&wt, &["add", "-A"]);
    git(&wt, &["commit", "-q", "-m", "agent"]);
    assert!(!index_has_journal_token(&wt));
    fs::write(wt.join("src/b/f0.txt"), "left uncommitted\n").expect("write");
    let c = commit(&repo, &wt, "turn 2").expect("a commit");
    assert_all_committed(&wt);
    assert_eq!(
        git(&wt, &["show", &format!("{c}:src/b/f0.txt")]),
        "left uncommitted"
    );
    assert_eq!(
        git(&wt, &["show", &format!("{c}:src/a/f1.txt")]),
        "agent's own"
    );
}

#[test]
fn a_new_worktree_outside_the_pool_is_watched_after_its_first_commit() {
    let (_t, repo) = fixture();
    let base = repo.ensure_branch("orch/integration").expect("integration");
    let wt = wt_path(&repo, "n-1");
    repo.create_worktree(&wt, "orch/n", &base, &backup_ref_name("n", 1))
        .expect("create");
    repo.watch_worktree(&wt);
    fs::write(wt.join("f.txt"), "first\n").expect("write");
    commit(&repo, &wt, "turn 1").expect("a commit");
    assert_all_committed(&wt);
    fs::write(wt.join("g.txt"), "second\n").expect("write");
    let c = commit(&repo, &wt, "turn 2").expect("a commit");
    assert_all_committed(&wt);
    assert!(tree(&wt, &c).contains(&"g.txt".to_string()));
}

/// The tree `git add -A` makes of the worktree as it is now, staged on top of `parent` in an
/// index of its own (the worktree's index is left alone).
fn add_all_tree(wt: &Path, parent: &str) -> String {
    let t = tempfile::tempdir().expect("tempdir");
    let index = t.path().join("index");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(wt)
            .env("GIT_INDEX_FILE", &index)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    run(&["read-tree", parent]);
    run(&["add", "-A"]);
    run(&["write-tree"])
}

/// Commits the turn and checks it holds exactly what `git add -A` would have staged.
fn commit_like_add_all(repo: &Repo, wt: &Path, msg: &str) -> String {
    let parent = git(wt, &["rev-parse", "HEAD"]);
    let c = commit(repo, wt, msg).expect("a commit");
    assert_eq!(
        git(wt, &["rev-parse", "HEAD"]),
        c,
        "commit_all's answer is HEAD"
    );
    assert_eq!(
        git(wt, &["rev-parse", &format!("{c}^{{tree}}")]),
        add_all_tree(wt, &parent),
        "{msg}: the commit differs from what git add -A stages"
    );
    assert_all_committed(wt);
    c
}

#[test]
fn every_turn_commits_exactly_what_add_all_would() {
    let (_t, repo, wt) = taken();
    // The first turn after the take: a new file in new nested folders, a deleted file, an
    // ignored build output, a file made and removed within the turn.
    fs::create_dir_all(wt.join("n1/n2/n3")).expect("mkdir");
    fs::write(wt.join("n1/n2/n3/new.txt"), "nested\n").expect("write");
    fs::remove_file(wt.join("src/a/f1.txt")).expect("rm");
    fs::create_dir_all(wt.join("target/debug")).expect("mkdir");
    fs::write(wt.join("target/debug/out.o"), "obj").expect("write");
    fs::write(wt.join("scratch.tmp"), "gone soon").expect("write");
    fs::remove_file(wt.join("scratch.tmp")).expect("rm");
    commit_like_add_all(&repo, &wt, "turn 1");

    // A renamed folder, a new file inside it, an ignored file next to a tracked one.
    fs::rename(wt.join("src/b"), wt.join("src/renamed")).expect("mv dir");
    fs::write(wt.join("src/renamed/added.txt"), "in the renamed folder\n").expect("write");
    fs::write(wt.join("src/a/debug.log"), "ignored by *.log\n").expect("write");
    commit_like_add_all(&repo, &wt, "turn 2");

    // A file written right before the commit, in a folder made right before it.
    fs::create_dir_all(wt.join("late/folder")).expect("mkdir");
    fs::write(wt.join("late/folder/last.txt"), "just in time\n").expect("write");
    let c = commit_like_add_all(&repo, &wt, "turn 3");
    assert!(tree(&wt, &c).contains(&"late/folder/last.txt".to_string()));

    // The agent's own git makes committed files untracked without touching them: the journal
    // saw nothing, so the next add must look everywhere (as add -A re-adds them).
    git(&wt, &["reset", "-q", "HEAD~2"]);
    fs::write(wt.join("docs/f0.txt"), "after the reset\n").expect("write");
    let c = commit_like_add_all(&repo, &wt, "turn 4");
    assert!(tree(&wt, &c).contains(&"late/folder/last.txt".to_string()));
    assert!(tree(&wt, &c).contains(&"src/renamed/added.txt".to_string()));

    // An ignore rule dropped: files nothing touched this turn become new files.
    fs::write(wt.join(".gitignore"), "target/\n").expect("write");
    let c = commit_like_add_all(&repo, &wt, "turn 5");
    assert!(tree(&wt, &c).contains(&"src/a/debug.log".to_string()));

    // And back to the journal's paths: a plain edit and a new file.
    fs::write(wt.join("src/a/f0.txt"), "edited\n").expect("write");
    fs::write(wt.join("top.txt"), "top\n").expect("write");
    commit_like_add_all(&repo, &wt, "turn 6");
    assert_eq!(commit(&repo, &wt, "turn 7"), None);
}

#[test]
fn a_file_in_a_nested_repository_is_committed_as_add_all_would() {
    let (_t, repo, wt) = taken();
    fs::create_dir_all(wt.join("vendor/lib")).expect("mkdir");
    git(&wt.join("vendor/lib"), &["init", "-q"]);
    fs::write(wt.join("vendor/lib/x.txt"), "x\n").expect("write");
    git(&wt.join("vendor/lib"), &["add", "x.txt"]);
    git(
        &wt.join("vendor/lib"),
        &[
            "-c",
            "user.name=n",
            "-c",
            "user.email=n@n",
            "commit",
            "-qm",
            "n",
        ],
    );
    let parent = git(&wt, &["rev-parse", "HEAD"]);
    let c = commit(&repo, &wt, "nested").expect("a commit");
    assert_eq!(
        git(&wt, &["rev-parse", &format!("{c}^{{tree}}")]),
        add_all_tree(&wt, &parent)
    );
}

/// After the first commit (which checks every tracked file once: the pool's checkout leaves
/// them unverified), a commit trusts the journal, which is its point: a tracked file changed
/// where no file event is made (through a shared `mmap`, docs/git.md "Not seen") is looked at
/// by neither git call and stays out of the commit, while a file written normally goes in. Had
/// either call been answered "everything" (git's full scan), both would be in it.
#[test]
fn a_later_commit_looks_only_where_the_journal_points() {
    use std::os::fd::AsRawFd;
    let (_t, repo, wt) = taken();
    // Files written in the same second as the index are "racily clean": git checks them
    // whatever the journal says. Real worktrees' files are older than that.
    let old = std::process::Command::new("find")
        .args([".", "-path", "./.git", "-prune", "-o", "-type", "f"])
        .args(["-exec", "touch", "-d", "2 hours ago", "{}", "+"])
        .current_dir(&wt)
        .status()
        .expect("find");
    assert!(old.success());
    fs::write(wt.join("src/a/f0.txt"), "first turn\n").expect("write");
    commit(&repo, &wt, "turn 1").expect("a commit");
    let quiet = wt.join("src/b/f0.txt");
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&quiet)
        .expect("open");
    let len = f.metadata().expect("stat").len() as usize;
    // SAFETY: a fresh shared mapping of a file we own, written within its length, unmapped
    // below. Closing the descriptor makes no event while the mapping still holds the file.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    drop(f);
    let changed = b"SRC/B 0\n";
    assert_eq!(changed.len(), len);
    // SAFETY: `map` is `len` bytes long and writable.
    unsafe {
        std::ptr::copy_nonoverlapping(changed.as_ptr(), map.cast::<u8>(), len);
        assert_eq!(libc::msync(map, len, libc::MS_SYNC), 0);
    }
    fs::write(wt.join("src/a/f1.txt"), "written\n").expect("write");
    let c = commit(&repo, &wt, "turn").expect("a commit");
    // SAFETY: unmapping what we mapped above, once.
    assert_eq!(unsafe { libc::munmap(map, len) }, 0);
    assert_eq!(git(&wt, &["show", &format!("{c}:src/a/f1.txt")]), "written");
    assert_eq!(git(&wt, &["show", &format!("{c}:src/b/f0.txt")]), "src/b 0");
    // The change is there on disk, and a full scan finds it.
    assert_eq!(fs::read_to_string(&quiet).expect("read"), "SRC/B 0\n");
    let status = git(&wt, &["--no-optional-locks", "status", "--porcelain"]);
    assert_eq!(status.trim(), "M src/b/f0.txt");
}
