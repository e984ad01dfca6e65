//! Every git call has a deadline: a hung hook is stopped together with git, nothing it started
//! is left running, and the error says what timed out, after how long, and why it may have.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::scratch::{fixture, write_hook, wt_path};
use orch_tui::core::config::default_config;
use orch_tui::git::{DEFAULT_TIMEOUT, Repo, backup_ref_name};

/// Waits up to `limit` for `check` to hold; false if it never did.
fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Gone, or a zombie nobody has reaped yet (it runs nothing any more).
fn process_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn pids_in(file: &Path) -> Vec<u32> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A worktree of task `task` with one new file to commit.
fn dirty_worktree(repo: &Repo, task: &str) -> std::path::PathBuf {
    let wt = wt_path(repo, task);
    repo.create_worktree(
        &wt,
        &format!("orch/{task}"),
        "main",
        &backup_ref_name(task, 1),
    )
    .expect("create worktree");
    fs::write(wt.join("new.txt"), "new\n").expect("write");
    wt
}

#[test]
fn a_hung_pre_commit_hook_times_out_and_leaves_no_process() {
    let (tmp, repo) = fixture();
    let pid_file = tmp.path().join("hook.pids");
    let p = pid_file.display();
    // The hook records its own pid and its child's, then waits forever.
    write_hook(
        &repo,
        "pre-commit",
        &format!("#!/bin/sh\necho $$ >> '{p}'\nsleep 100000 &\necho $! >> '{p}'\nwait\n"),
    );
    let wt = dirty_worktree(&repo, "hang");
    let limit = Duration::from_secs(1);
    let started = Instant::now();
    // On its own thread, so a deadline that does not work fails this test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let (r, w) = (repo.with_timeout(limit), wt.clone());
    std::thread::spawn(move || {
        let _ = tx.send(r.commit_all(&w, "A", "a@x", "hang\n\nOrch-Task: hang\nOrch-Attempt: 1"));
    });
    let Ok(result) = rx.recv_timeout(limit + Duration::from_secs(10)) else {
        for pid in pids_in(&pid_file) {
            // SAFETY: kill(2) on the pids this test's hook recorded, so nothing outlives the test.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        panic!("commit_all was not stopped at its deadline");
    };
    let err = result.expect_err("the hook never ends");
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.timed_out, Some(limit));
    let msg = err.to_string();
    for part in ["git commit", "timed out after 1s", "hook", "[git] timeout"] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    // It waited the deadline, then stopped at once (SIGTERM, at most a short grace, SIGKILL).
    assert!(took >= limit, "gave up early: {took:?}");
    assert!(took < limit + Duration::from_secs(3), "took {took:?}");
    let pids = pids_in(&pid_file);
    assert_eq!(pids.len(), 2, "the hook and its sleep wrote their pids");
    assert!(
        wait_until(Duration::from_secs(5), || pids
            .iter()
            .all(|p| process_gone(*p))),
        "still running after the timeout: {:?}",
        pids.iter()
            .filter(|p| !process_gone(**p))
            .collect::<Vec<_>>()
    );
    // Nothing was committed; the change is still there to commit once the hook is fixed.
    assert!(wt.join("new.txt").exists());
    fs::remove_file(repo.root().join(".git/hooks/pre-commit")).expect("rm hook");
    let c = repo
        .commit_all(&wt, "A", "a@x", "again")
        .expect("commit without the hook");
    assert!(c.is_some());
}

#[test]
fn a_hook_that_leaves_a_job_behind_does_not_hold_the_commit() {
    let (tmp, repo) = fixture();
    let pid_file = tmp.path().join("job.pid");
    // A post-commit hook starting a background job that keeps git's output pipes open.
    write_hook(
        &repo,
        "post-commit",
        &format!(
            "#!/bin/sh\nsleep 100000 &\necho $! > '{}'\n",
            pid_file.display()
        ),
    );
    let wt = dirty_worktree(&repo, "bg");
    let limit = Duration::from_secs(20);
    let started = Instant::now();
    let got = repo
        .with_timeout(limit)
        .commit_all(&wt, "A", "a@x", "bg")
        .expect("git finished; the job is not git's result");
    assert!(got.is_some());
    assert!(
        started.elapsed() < limit / 2,
        "waited {:?} for the job",
        started.elapsed()
    );
    // The job is the user's hook's business, not stopped by us; the test cleans it up.
    for pid in pids_in(&pid_file) {
        // SAFETY: kill(2) on a pid this test's hook started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        assert!(wait_until(Duration::from_secs(5), || process_gone(pid)));
    }
}

#[test]
fn the_default_deadline_is_the_configs() {
    // Repo::open uses DEFAULT_TIMEOUT until the config's is applied: they must agree.
    assert_eq!(
        u128::from(default_config().git.timeout_ms),
        DEFAULT_TIMEOUT.as_millis()
    );
    let (_t, repo) = fixture();
    let quick = repo.with_timeout(Duration::from_secs(5));
    assert!(quick.rev_parse("main").expect("rev-parse").is_some());
}
