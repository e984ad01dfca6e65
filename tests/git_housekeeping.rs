//! git's housekeeping: our per-turn commits do not start it, the tidy does every
//! `HOUSEKEEPING_EVERY` attempts, and the repository still gets packed (real repositories).

use std::fs;
use std::path::Path;

mod common;

use common::git;
use common::scratch::{fixture, wt_path};
use orch_tui::git::{HOUSEKEEPING_EVERY, Repo, backup_ref_name, trailers};

/// Files in one commit: enough loose objects that git's `gc.auto` check (which samples the
/// `objects/17` folder) is over a threshold of 100 whatever the run.
const FILES: usize = 3000;

/// A repository whose housekeeping, once started, packs at 100 loose objects and runs before
/// the command that started it returns (not detached), so what a commit started is seen at once.
fn eager_gc_repo() -> (tempfile::TempDir, Repo) {
    let (t, repo) = fixture();
    for (k, v) in [
        ("gc.auto", "100"),
        ("gc.autoDetach", "false"),
        ("maintenance.autoDetach", "false"),
    ] {
        git(repo.root(), &["config", k, v]);
    }
    (t, repo)
}

fn write_many(dir: &Path) {
    let many = dir.join("many");
    fs::create_dir_all(&many).expect("mkdir");
    for i in 0..FILES {
        fs::write(many.join(format!("{i}.txt")), format!("file {i}\n")).expect("write");
    }
}

fn packs(repo: &Repo) -> usize {
    let dir = repo.root().join(".git/objects/pack");
    fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count()
    })
}

fn loose(repo: &Repo) -> usize {
    let count = git(repo.root(), &["count-objects"]);
    count
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count-objects says how many")
}

#[test]
fn a_plain_git_commit_packs_such_a_repository_by_itself() {
    // The control: what the test below would see if our commit started git's housekeeping.
    let (_t, repo) = eager_gc_repo();
    write_many(repo.root());
    git(repo.root(), &["add", "-A"]);
    git(repo.root(), &["commit", "-q", "-m", "many"]);
    assert!(packs(&repo) > 0, "git's own commit packed the objects");
    assert!(loose(&repo) < 100, "{} loose objects left", loose(&repo));
}

#[test]
fn our_commits_leave_housekeeping_to_the_tidy_which_packs_the_repository() {
    let (_t, repo) = eager_gc_repo();
    let wt = wt_path(&repo, "t1-1");
    repo.create_worktree(&wt, "orch/t1", "main", &backup_ref_name("t1", 1))
        .expect("worktree");
    write_many(&wt);
    let msg = format!("Do t1\n\n{}", trailers("t1", 1));
    repo.commit_all(&wt, "Agent A", "agent-a@example.com", &msg)
        .expect("commit")
        .expect("something to commit");
    assert_eq!(packs(&repo), 0, "the turn commit started no housekeeping");
    assert!(loose(&repo) > FILES, "{} loose objects", loose(&repo));

    for n in 1..HOUSEKEEPING_EVERY {
        assert!(!repo.housekeeping_after_tidy(), "tidy {n} runs nothing");
    }
    assert_eq!(packs(&repo), 0, "nothing packed before the check is due");
    assert!(repo.housekeeping_after_tidy(), "the check is due now");
    assert!(packs(&repo) > 0, "the objects are packed");
    assert!(loose(&repo) < 100, "{} loose objects left", loose(&repo));
    // The work is all there, in the pack.
    assert_eq!(
        git(&wt, &["show", "HEAD:many/7.txt"]),
        "file 7",
        "the commit's files are readable after packing"
    );
}
