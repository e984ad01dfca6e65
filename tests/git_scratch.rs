//! The re-check's scratch worktree: after every switch it holds exactly the commit's files
//! (ignored build outputs kept), whatever the checks before left there (real repositories).

use std::fs;
use std::path::Path;

mod common;

use common::git;
use common::scratch::{fixture, oid, wt_path};
use orch_tui::git::Repo;

/// Every file `git status` would report (untracked ones one by one); empty when the worktree is
/// exactly its HEAD. Without optional locks: this look must not write the scratch's index
/// (a check's own git that does is fine, it only costs the next switch a clean).
fn status(dir: &Path) -> String {
    let out = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .expect("git status");
    assert!(out.status.success(), "git status: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// Commits `files` on top of `main` on a branch of its own, returns the commit.
fn commit_on(repo: &Repo, branch: &str, files: &[(&str, &str)]) -> String {
    let root = repo.root();
    git(root, &["checkout", "-q", "-b", branch, "main"]);
    for (name, body) in files {
        fs::write(root.join(name), body).expect("write");
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", branch]);
    let c = oid(repo, "HEAD");
    git(root, &["checkout", "-q", "main"]);
    c
}

fn assert_exactly(scratch: &Path, rev: &str, what: &str) {
    assert_eq!(git(scratch, &["rev-parse", "HEAD"]), rev, "{what}: HEAD");
    assert_eq!(
        status(scratch),
        "",
        "{what}: nothing but the commit's files"
    );
}

#[test]
fn each_switch_leaves_exactly_the_commits_files_whatever_the_checks_left() {
    let (_t, repo) = fixture();
    let a = oid(&repo, "main");
    let b = commit_on(&repo, "b", &[("b.txt", "b\n"), ("f.txt", "changed\n")]);
    let scratch = wt_path(&repo, "_recheck");
    repo.checkout_scratch(&scratch, &a).expect("create");
    assert_exactly(&scratch, &a, "created");

    // The checks leave untracked files, a new folder, an ignored output and an edit.
    fs::write(scratch.join("junk.txt"), "left by a check\n").expect("write");
    fs::create_dir_all(scratch.join("newdir/deeper")).expect("mkdir");
    fs::write(scratch.join("newdir/deeper/x"), "x").expect("write");
    fs::write(scratch.join("build.log"), "ignored output\n").expect("write");
    fs::write(scratch.join("f.txt"), "edited by a check\n").expect("write");
    repo.checkout_scratch(&scratch, &b).expect("switch to b");
    assert_exactly(&scratch, &b, "after a check that left files");
    assert!(!scratch.join("junk.txt").exists() && !scratch.join("newdir").exists());
    assert_eq!(
        fs::read_to_string(scratch.join("f.txt")).expect("read"),
        "changed\n"
    );
    assert!(
        scratch.join("build.log").exists(),
        "ignored build outputs are kept"
    );

    // A check that wrote nothing: back to a, b's file goes with the switch itself.
    repo.checkout_scratch(&scratch, &a).expect("switch back");
    assert_exactly(&scratch, &a, "after a check that wrote nothing");
    assert!(!scratch.join("b.txt").exists());

    // A file made and removed by a check, and one written into a folder that existed.
    fs::write(scratch.join("gone.txt"), "briefly").expect("write");
    fs::remove_file(scratch.join("gone.txt")).expect("rm");
    fs::write(scratch.join("late.txt"), "late").expect("write");
    repo.checkout_scratch(&scratch, &b)
        .expect("switch to b again");
    assert_exactly(&scratch, &b, "after a check that wrote late");
    assert!(!scratch.join("late.txt").exists());
}

#[test]
fn a_scratch_worktree_from_an_earlier_supervisor_is_cleaned_and_then_watched() {
    let (_t, repo) = fixture();
    let a = oid(&repo, "main");
    let b = commit_on(&repo, "b", &[("b.txt", "b\n")]);
    let scratch = wt_path(&repo, "_recheck");
    repo.checkout_scratch(&scratch, &a).expect("create");
    fs::write(scratch.join("junk.txt"), "left before a restart\n").expect("write");

    // A new handle knows nothing of the worktree's history (a restarted supervisor).
    let again = Repo::open(repo.root()).expect("open");
    again.checkout_scratch(&scratch, &b).expect("switch");
    assert_exactly(&scratch, &b, "first switch after the restart");
    fs::create_dir_all(scratch.join("out")).expect("mkdir");
    fs::write(scratch.join("out/y"), "y").expect("write");
    again.checkout_scratch(&scratch, &a).expect("switch back");
    assert_exactly(&scratch, &a, "second switch after the restart");
}
