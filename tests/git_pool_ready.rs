//! The pool readied off the dispatch path (`Repo::ready_pool`), on real repositories: idle
//! worktrees made and kept at the integration tip, a take that then moves one and makes its
//! branch without git — leaving exactly what git's own commands would — and what a crash
//! between readying and taking leaves: ordinary idle worktrees, reused or drained, none lost.

use std::fs;
use std::path::{Path, PathBuf};

mod common;

use common::git;
use common::scratch::{fixture, oid, wt_path};
use orch_tui::git::{Pool, Repo, Taken, backup_ref_name};

fn pool(max_idle: usize) -> Pool {
    Pool {
        dir: PathBuf::from(".orch/pool"),
        reuse: Vec::new(),
        max_idle,
        keep_idle: 0,
    }
}

fn take(repo: &Repo, p: &Pool, name: &str, branch: &str, base: &str) -> (PathBuf, Taken) {
    let path = wt_path(repo, name);
    let taken = repo
        .take_worktree(p, &path, branch, base, &backup_ref_name(name, 1))
        .expect("take");
    (path, taken)
}

/// A commit on `main` changing `f.txt`: the integration tip moves.
fn advance(repo: &Repo, text: &str) -> String {
    fs::write(repo.root().join("f.txt"), text).expect("write");
    git(repo.root(), &["commit", "-q", "-am", text]);
    oid(repo, "HEAD")
}

/// What `git worktree list` says of the worktree at `path`: its branch, and whether git finds
/// anything wrong with it (prunable, locked).
fn listed(repo: &Repo, path: &Path) -> Vec<String> {
    let canon = path.canonicalize().expect("exists");
    let text = git(repo.root(), &["worktree", "list", "--porcelain"]);
    text.split("\n\n")
        .find(|b| b.lines().next() == Some(&format!("worktree {}", canon.display())))
        .map(|b| b.lines().skip(1).map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn a_readied_pool_hands_out_a_worktree_at_the_tip_made_as_git_makes_it() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let p = pool(4);
    let r = repo.ready_pool(&p, &base, 2).expect("ready");
    assert_eq!((r.made, r.refreshed), (2, 0));
    assert_eq!(repo.pool_idle(&p).expect("idle").len(), 2);

    let (wt, taken) = take(&repo, &p, "a-1", "orch/a", &base);
    assert_eq!(taken, Taken::Reused);
    // Exactly what `git checkout -b orch/a <base>` leaves, by git's own reading.
    assert_eq!(git(&wt, &["symbolic-ref", "HEAD"]), "refs/heads/orch/a");
    assert_eq!(oid(&repo, "orch/a"), base);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(
        listed(&repo, &wt),
        vec![
            format!("HEAD {base}"),
            "branch refs/heads/orch/a".to_string()
        ]
    );
    assert_eq!(
        git(&wt, &["reflog", "show", "-1", "--format=%gs", "HEAD"]),
        "orch-tui: worktree taken for an attempt"
    );
    assert_eq!(
        git(repo.root(), &["reflog", "show", "--format=%H", "orch/a"]),
        base
    );
    // Made without a git process (git would sign the entry with the user's name).
    assert_eq!(
        git(&wt, &["reflog", "show", "-1", "--format=%gn", "HEAD"]),
        "orch-tui"
    );
    // The agent works there as anywhere: commits land on its branch; git can still move it.
    fs::write(wt.join("new.txt"), "work\n").expect("write");
    git(&wt, &["add", "-A"]);
    git(&wt, &["commit", "-q", "-m", "work"]);
    assert_eq!(oid(&repo, "orch/a"), git(&wt, &["rev-parse", "HEAD"]));
    let moved = wt.with_file_name("a-1-moved");
    git(
        repo.root(),
        &[
            "worktree",
            "move",
            &wt.to_string_lossy(),
            &moved.to_string_lossy(),
        ],
    );
    assert_eq!(git(&moved, &["symbolic-ref", "HEAD"]), "refs/heads/orch/a");
    assert_eq!(repo.pool_idle(&p).expect("idle").len(), 1);
}

#[test]
fn idle_worktrees_follow_the_tip_and_the_take_gets_its_files() {
    let (_t, repo) = fixture();
    let old = oid(&repo, "main");
    let p = pool(4);
    repo.ready_pool(&p, &old, 2).expect("ready");
    let tip = advance(&repo, "moved on\n");
    let r = repo.ready_pool(&p, &tip, 2).expect("ready again");
    assert_eq!((r.made, r.refreshed), (0, 2));
    for w in repo.pool_idle(&p).expect("idle") {
        assert_eq!(git(&w.path, &["rev-parse", "HEAD"]), tip);
    }
    let (wt, taken) = take(&repo, &p, "b-1", "orch/b", &tip);
    assert_eq!(taken, Taken::Reused);
    assert_eq!(
        fs::read_to_string(wt.join("f.txt")).expect("read"),
        "moved on\n"
    );
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(oid(&repo, "orch/b"), tip);
    // A take at a base the pool is not at still gets exactly that base (git checks it out).
    let (wt2, _) = take(&repo, &p, "c-1", "orch/c", &old);
    assert_eq!(
        fs::read_to_string(wt2.join("f.txt")).expect("read"),
        "one\ntwo\nthree\n"
    );
    assert_eq!(git(&wt2, &["symbolic-ref", "HEAD"]), "refs/heads/orch/c");
}

/// The tip just moved and the keeper is checking out an idle worktree there when a dispatch
/// comes for that tip: the take waits for that worktree and makes its branch by hand, instead
/// of checking out another one beside it. A `post-checkout` hook holds the keeper's checkout
/// open and counts every checkout.
#[test]
fn a_take_at_the_tip_being_readied_waits_for_that_worktree_instead_of_checking_out_another() {
    let (_t, repo) = fixture();
    let old = oid(&repo, "main");
    let p = pool(4);
    repo.ready_pool(&p, &old, 2).expect("ready");
    let tip = advance(&repo, "moved on\n");
    let marks = tempfile::tempdir().expect("tempdir");
    let (log, go) = (marks.path().join("checkouts"), marks.path().join("go"));
    let hook = repo.root().join(".git/hooks/post-checkout");
    fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$PWD\" >> '{}'\ni=0\nwhile [ ! -e '{}' ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done\n",
            log.display(),
            go.display()
        ),
    )
    .expect("hook");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod");
    let checkouts = || fs::read_to_string(&log).unwrap_or_default().lines().count();

    let keeper = {
        let (repo, p, tip) = (repo.clone(), p.clone(), tip.clone());
        std::thread::spawn(move || repo.ready_one(&p, &tip, 2, 1))
    };
    let started = wait_until(|| checkouts() == 1);
    let take = {
        let (repo, p, tip) = (repo.clone(), p.clone(), tip.clone());
        std::thread::spawn(move || {
            let path = wt_path(&repo, "b-1");
            repo.take_worktree(&p, &path, "orch/b", &tip, &backup_ref_name("b-1", 1))
                .map(|t| (path, t))
        })
    };
    let waited = wait_until(|| orch_tui::git::takes_waiting_for_refresh() > 0);
    fs::write(&go, "").expect("go");
    let readied = keeper.join().expect("keeper thread").expect("readied");
    let (wt, taken) = take.join().expect("take thread").expect("taken");
    assert!(started, "the keeper's checkout ran");
    assert!(
        waited,
        "the take waited for the worktree being readied at its tip"
    );
    assert_eq!(readied.refreshed, 1);
    assert_eq!(checkouts(), 1, "the take checked nothing out of its own");
    assert_eq!(taken, Taken::Reused);
    assert_eq!(git(&wt, &["symbolic-ref", "HEAD"]), "refs/heads/orch/b");
    assert_eq!(oid(&repo, "orch/b"), tip);
    assert_eq!(
        fs::read_to_string(wt.join("f.txt")).expect("read"),
        "moved on\n"
    );
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
}

/// Waits (20 ms steps, 60 s at most) until `cond` holds; false if it never did.
fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cond() {
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

#[test]
fn an_existing_branch_loose_or_packed_is_never_overwritten_without_its_backup() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let p = pool(4);
    // Earlier attempts' branches, with commits the base lacks: `e` packed, `d` loose.
    for task in ["e", "d"] {
        git(
            repo.root(),
            &["checkout", "-q", "-b", &format!("orch/{task}")],
        );
        fs::write(repo.root().join(format!("{task}.txt")), "earlier\n").expect("write");
        git(repo.root(), &["add", "-A"]);
        git(repo.root(), &["commit", "-q", "-m", "earlier attempt"]);
        git(repo.root(), &["checkout", "-q", "main"]);
        if task == "e" {
            git(repo.root(), &["pack-refs", "--all"]);
        }
    }
    let (d_old, e_old) = (oid(&repo, "orch/d"), oid(&repo, "orch/e"));
    assert!(!repo.root().join(".git/refs/heads/orch/e").exists());
    assert!(repo.root().join(".git/refs/heads/orch/d").exists());
    repo.ready_pool(&p, &base, 2).expect("ready");
    for (task, old) in [("d", &d_old), ("e", &e_old)] {
        let (wt, taken) = take(
            &repo,
            &p,
            &format!("{task}-2"),
            &format!("orch/{task}"),
            &base,
        );
        assert_eq!(taken, Taken::Reused);
        assert_eq!(oid(&repo, &format!("orch/{task}")), base);
        assert_eq!(
            git(&wt, &["symbolic-ref", "HEAD"]),
            format!("refs/heads/orch/{task}")
        );
        let backup = backup_ref_name(&format!("{task}-2"), 1);
        assert_eq!(
            &oid(&repo, &backup),
            old,
            "the earlier attempt's commits are kept"
        );
    }
}

/// The child half of the crash test: readies the pool, then dies by SIGKILL before any take.
#[test]
#[ignore = "run by a_crash_between_readying_and_taking_leaves_ordinary_idle_worktrees"]
fn ready_then_die() {
    let Ok(root) = std::env::var("ORCH_TEST_READY_ROOT") else {
        return;
    };
    let repo = Repo::open(Path::new(&root)).expect("open");
    let base = oid(&repo, "main");
    repo.ready_pool(&pool(4), &base, 3).expect("ready");
    // SIGKILL: no destructor, no unwinding, as a crash.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

#[test]
fn a_crash_between_readying_and_taking_leaves_ordinary_idle_worktrees() {
    let (_t, repo) = fixture();
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "ready_then_die", "--ignored", "--nocapture"])
        .env("ORCH_TEST_READY_ROOT", repo.root())
        .status()
        .expect("child");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the child died as a crash"
    );
    let p = pool(4);
    assert_eq!(repo.pool_idle(&p).expect("idle").len(), 3);
    // This process knows none of them: it cleans what it takes, and the take is the base.
    let tip = advance(&repo, "after the crash\n");
    for w in repo.pool_idle(&p).expect("idle") {
        fs::write(w.path.join("stray.txt"), "x").expect("stray");
    }
    let (wt, taken) = take(&repo, &p, "f-1", "orch/f", &tip);
    assert_eq!(taken, Taken::Reused);
    assert_eq!(git(&wt, &["status", "--porcelain", "--ignored"]), "");
    assert_eq!(
        fs::read_to_string(wt.join("f.txt")).expect("read"),
        "after the crash\n"
    );
    // Readying again reuses the two left; draining leaves no worktree behind.
    let r = repo.ready_pool(&p, &tip, 3).expect("ready");
    assert_eq!(r.made, 1);
    assert_eq!(repo.drain_pool(&p).expect("drain"), 3);
    let left = git(repo.root(), &["worktree", "list", "--porcelain"]);
    assert!(!left.contains(".orch/pool"), "{left}");
}
