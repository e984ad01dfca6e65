//! The pool of ready worktrees, on real repositories: a reused worktree is exactly its base,
//! carries no file of the task before it but the ignored caches the user opted into, rewrites
//! only files that changed, and nothing the previous attempt left is lost.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

mod common;

use common::git;
use common::scratch::{fixture, oid, wt_path};
use orch_tui::git::{Pool, Repo, Taken, backup_ref_name};

fn pool(reuse: &[&str], max_idle: usize) -> Pool {
    Pool {
        dir: PathBuf::from(".orch/pool"),
        reuse: reuse.iter().map(|s| s.to_string()).collect(),
        max_idle,
        keep_idle: 0,
    }
}

/// Every file under `dir` but `.git`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A repository whose `.gitignore` ignores `target/` and `*.log`, with a base commit.
fn repo_with_ignores() -> (tempfile::TempDir, Repo, String) {
    let (t, repo) = fixture();
    fs::write(repo.root().join(".gitignore"), "*.log\ntarget/\n").expect("write");
    fs::create_dir_all(repo.root().join("src")).expect("mkdir");
    fs::write(repo.root().join("src/lib.rs"), "pub fn a() {}\n").expect("write");
    git(repo.root(), &["add", "-A"]);
    git(repo.root(), &["commit", "-q", "-m", "ignores"]);
    let base = repo.ensure_branch("orch/integration").expect("integration");
    (t, repo, base)
}

/// Leaves what an agent and its build typically leave in a worktree: a committed change, an
/// untracked file, an ignored log, an ignored build cache, an untracked file in a folder that
/// is opted into reuse but not ignored.
fn leave_the_usual_mess(wt: &Path) {
    fs::write(wt.join("f.txt"), "changed by the task\n").expect("write");
    git(wt, &["add", "-A"]);
    git(wt, &["commit", "-q", "-m", "task work"]);
    fs::write(wt.join("notes-of-task-a.md"), "scratch").expect("write");
    fs::write(wt.join("build.log"), "log").expect("write");
    fs::create_dir_all(wt.join("target/debug")).expect("mkdir");
    fs::write(wt.join("target/debug/cache.bin"), "cached").expect("write");
    fs::create_dir_all(wt.join("vendor-cache")).expect("mkdir");
    fs::write(wt.join("vendor-cache/left.txt"), "untracked").expect("write");
}

#[test]
fn a_reused_worktree_is_its_base_and_holds_nothing_of_the_task_before() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 2);
    let a = wt_path(&repo, "a-1");
    let taken = repo
        .take_worktree(&p, &a, "orch/a", &base, &backup_ref_name("a", 1))
        .expect("take");
    assert_eq!(taken, Taken::Created, "the pool starts empty");
    leave_the_usual_mess(&a);
    let task_tip = oid(&repo, "refs/heads/orch/a");
    let done = repo
        .give_back_worktree(&p, &a, &backup_ref_name("a", 1))
        .expect("give back");
    assert!(done.worktree_removed && !a.exists());
    assert_eq!(repo.pool_idle(&p).expect("idle").len(), 1);
    // The task's commit is still on its branch, which the pooled worktree no longer holds.
    assert_eq!(oid(&repo, "refs/heads/orch/a"), task_tip);

    let b = wt_path(&repo, "b-1");
    let taken = repo
        .take_worktree(&p, &b, "orch/b", &base, &backup_ref_name("b", 1))
        .expect("take again");
    assert_eq!(taken, Taken::Reused);
    assert_eq!(repo.pool_idle(&p).expect("idle").len(), 0);
    assert_eq!(files(&b), [".gitignore", "f.txt", "src/lib.rs"]);
    assert_eq!(
        fs::read_to_string(b.join("f.txt")).expect("read"),
        "one\ntwo\nthree\n"
    );
    assert_eq!(git(&b, &["status", "--porcelain", "--ignored"]), "");
    assert_eq!(git(&b, &["rev-parse", "HEAD"]), base);
    assert_eq!(git(&b, &["symbolic-ref", "HEAD"]), "refs/heads/orch/b");
    // An agent commits there like in any worktree.
    fs::write(b.join("g.txt"), "b's work").expect("write");
    let c = repo
        .commit_all(&b, "Agent B", "b@example.com", "b")
        .expect("commit")
        .expect("a change");
    assert_eq!(oid(&repo, "refs/heads/orch/b"), c);
}

#[test]
fn only_ignored_caches_the_user_opted_into_come_along() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&["target", "vendor-cache"], 2);
    let a = wt_path(&repo, "a-1");
    repo.take_worktree(&p, &a, "orch/a", &base, &backup_ref_name("a", 1))
        .expect("take");
    leave_the_usual_mess(&a);
    repo.give_back_worktree(&p, &a, &backup_ref_name("a", 1))
        .expect("give back");
    let b = wt_path(&repo, "b-1");
    assert_eq!(
        repo.take_worktree(&p, &b, "orch/b", &base, &backup_ref_name("b", 1))
            .expect("take"),
        Taken::Reused
    );
    // target/ is ignored and opted in: kept. vendor-cache/ is opted in but not ignored (it
    // would be committed by the next task): gone, like the log and the task's notes.
    assert_eq!(
        files(&b),
        [
            ".gitignore",
            "f.txt",
            "src/lib.rs",
            "target/debug/cache.bin"
        ]
    );

    // The policy of the run that takes it applies, not the one that gave it back.
    repo.give_back_worktree(&p, &b, &backup_ref_name("b", 1))
        .expect("give back");
    let c = wt_path(&repo, "c-1");
    repo.take_worktree(&pool(&[], 2), &c, "orch/c", &base, &backup_ref_name("c", 1))
        .expect("take");
    assert_eq!(files(&c), [".gitignore", "f.txt", "src/lib.rs"]);
}

#[test]
fn an_idle_worktree_this_process_did_not_clean_is_cleaned_when_taken() {
    // What an earlier supervisor left parked: this one never cleaned it, so it checks.
    let (_t, repo, base) = repo_with_ignores();
    let idle = repo.root().join(".orch/pool/idle-0");
    fs::create_dir_all(idle.parent().expect("parent")).expect("mkdir");
    git(
        repo.root(),
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            idle.to_str().expect("utf-8"),
            &base,
        ],
    );
    fs::write(idle.join("left-by-someone.txt"), "untracked").expect("write");
    fs::write(idle.join("old.log"), "ignored").expect("write");
    let a = wt_path(&repo, "a-1");
    let taken = repo
        .take_worktree(&pool(&[], 2), &a, "orch/a", &base, &backup_ref_name("a", 1))
        .expect("take");
    assert_eq!(taken, Taken::Reused);
    assert_eq!(files(&a), [".gitignore", "f.txt", "src/lib.rs"]);
}

#[test]
fn uncommitted_work_is_kept_before_a_worktree_goes_back() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 2);
    let a = wt_path(&repo, "a-1");
    repo.take_worktree(&p, &a, "orch/a", &base, &backup_ref_name("a", 1))
        .expect("take");
    fs::write(a.join("f.txt"), "edited, never committed\n").expect("write");
    fs::write(a.join("new.txt"), "new, never added\n").expect("write");
    let done = repo
        .give_back_worktree(&p, &a, &backup_ref_name("a", 1))
        .expect("give back");
    let snap = done.snapshot.expect("a snapshot of the uncommitted files");
    assert_eq!(done.backups, [backup_ref_name("a", 1)]);
    assert_eq!(oid(&repo, &backup_ref_name("a", 1)), snap);
    assert_eq!(
        git(repo.root(), &["show", &format!("{snap}:new.txt")]),
        "new, never added"
    );
    assert_eq!(
        git(repo.root(), &["show", &format!("{snap}:f.txt")]),
        "edited, never committed"
    );
    let idle = repo.pool_idle(&p).expect("idle");
    assert_eq!(idle.len(), 1);
    assert_eq!(
        git(&idle[0].path, &["status", "--porcelain", "--ignored"]),
        ""
    );
}

#[test]
fn only_the_files_that_changed_are_written_when_a_worktree_is_reused() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 1);
    assert_eq!(repo.fill_pool(&p, &base).expect("fill"), 1);
    assert_eq!(repo.fill_pool(&p, &base).expect("full"), 0);
    let idle = repo.pool_idle(&p).expect("idle")[0].path.clone();
    let lib_before = fs::metadata(idle.join("src/lib.rs")).expect("meta");
    // The integration branch moves on: one file changes, one is added.
    let (_w, moved) = common::scratch::task_commit(&repo, "x", &base, &[("f.txt", "new\n")]);
    let a = wt_path(&repo, "a-1");
    assert_eq!(
        repo.take_worktree(&p, &a, "orch/a", &moved, &backup_ref_name("a", 1))
            .expect("take"),
        Taken::Reused
    );
    assert_eq!(fs::read_to_string(a.join("f.txt")).expect("read"), "new\n");
    let lib_after = fs::metadata(a.join("src/lib.rs")).expect("meta");
    // Same file on disk, untouched: a build tool sees nothing to rebuild there.
    assert_eq!(lib_before.ino(), lib_after.ino());
    assert_eq!(lib_before.mtime_nsec(), lib_after.mtime_nsec());
    assert_eq!(git(&a, &["status", "--porcelain"]), "");
}

#[test]
fn a_full_pool_removes_what_comes_back_and_gc_can_drain_it() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 1);
    let a = wt_path(&repo, "a-1");
    let b = wt_path(&repo, "b-1");
    for (wt, task) in [(&a, "a"), (&b, "b")] {
        repo.take_worktree(
            &p,
            wt,
            &format!("orch/{task}"),
            &base,
            &backup_ref_name(task, 1),
        )
        .expect("take");
    }
    repo.give_back_worktree(&p, &a, &backup_ref_name("a", 1))
        .expect("give back a");
    let done = repo
        .give_back_worktree(&p, &b, &backup_ref_name("b", 1))
        .expect("give back b");
    assert!(done.worktree_removed && !b.exists());
    assert_eq!(repo.pool_idle(&p).expect("idle").len(), 1);
    assert_eq!(repo.drain_pool(&p).expect("drain"), 1);
    assert_eq!(repo.pool_idle(&p).expect("idle").len(), 0);
    // Only the main working tree is left.
    assert_eq!(repo.worktrees().expect("list").len(), 1);
}

#[test]
fn after_a_merge_the_task_branch_goes_and_the_worktree_stays_for_the_next_task() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 2);
    let a = wt_path(&repo, "a-1");
    repo.take_worktree(&p, &a, "orch/a", &base, &backup_ref_name("a", 1))
        .expect("take");
    fs::write(a.join("a.txt"), "a").expect("write");
    let c = repo
        .commit_all(&a, "Agent A", "a@example.com", "a")
        .expect("commit")
        .expect("a change");
    assert!(
        repo.cas_update_ref("refs/heads/orch/integration", &c, &base)
            .expect("cas")
    );
    let done = repo
        .retire_merged_to_pool(&p, &a, "orch/a", &c, &c, &backup_ref_name("a", 1))
        .expect("retire");
    assert!(done.branch_deleted && done.worktree_removed);
    assert_eq!(
        done.backups,
        Vec::<String>::new(),
        "a fast-forward needs none"
    );
    assert_eq!(repo.rev_parse("refs/heads/orch/a").expect("rp"), None);
    let idle = repo.pool_idle(&p).expect("idle");
    assert_eq!(idle.len(), 1);
    // Parked as git would leave it (detached by hand, moved by hand here): detached at the
    // merged commit, clean, known to git at its new place.
    let parked = &idle[0];
    assert_eq!(parked.branch, None);
    assert_eq!(parked.head.as_deref(), Some(c.as_str()));
    assert_eq!(
        git(&parked.path, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "HEAD"
    );
    assert_eq!(
        git(&parked.path, &["status", "--porcelain", "--ignored"]),
        ""
    );
    // The by-hand detach signs git's reflog line (git's own would carry the test's identity).
    assert_eq!(
        git(&parked.path, &["log", "-g", "-1", "--format=%gn %gs"]),
        "orch-tui checkout: moving from orch/a to HEAD"
    );
    let listed = git(repo.root(), &["worktree", "list", "--porcelain"]);
    assert!(
        listed.contains(&format!("worktree {}", parked.path.display())),
        "{listed}"
    );
}

#[test]
fn two_setups_at_once_never_get_the_same_worktree() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 1);
    repo.fill_pool(&p, &base).expect("fill");
    let paths: Vec<PathBuf> = (0..4).map(|i| wt_path(&repo, &format!("t{i}-1"))).collect();
    let taken: Vec<Taken> = std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let (repo, p, base) = (&repo, &p, &base);
                s.spawn(move || {
                    repo.take_worktree(
                        p,
                        path,
                        &format!("orch/t{i}"),
                        base,
                        &backup_ref_name("t", 1),
                    )
                    .expect("take")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(taken.iter().filter(|t| **t == Taken::Reused).count(), 1);
    for (i, path) in paths.iter().enumerate() {
        assert_eq!(
            git(path, &["symbolic-ref", "HEAD"]),
            format!("refs/heads/orch/t{i}")
        );
        assert_eq!(git(path, &["status", "--porcelain"]), "");
    }
}

#[test]
fn a_pooled_worktree_git_cannot_move_is_dropped_and_a_new_one_made() {
    let (t, repo, base) = repo_with_ignores();
    let p = pool(&[], 1);
    repo.fill_pool(&p, &base).expect("fill");
    let idle = repo.pool_idle(&p).expect("idle")[0].path.clone();
    // git refuses to move a worktree that holds a submodule.
    let other = t.path().join("other");
    fs::create_dir_all(&other).expect("mkdir");
    git(&other, &["init", "-q", "-b", "main"]);
    git(&other, &["commit", "-q", "--allow-empty", "-m", "other"]);
    git(
        &idle,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            other.to_str().expect("utf-8 path"),
            "sub",
        ],
    );
    let a = wt_path(&repo, "a-1");
    let taken = repo
        .take_worktree(&p, &a, "orch/a", &base, &backup_ref_name("a", 1))
        .expect("a worktree all the same");
    assert_eq!(taken, Taken::Created);
    assert_eq!(files(&a), [".gitignore", "f.txt", "src/lib.rs"]);
    assert_eq!(git(&a, &["symbolic-ref", "HEAD"]), "refs/heads/orch/a");
    assert!(!idle.exists(), "the worktree that could not move is gone");
    assert_eq!(repo.pool_idle(&p).expect("idle").len(), 0);
}

/// What fill_pool leaves when the supervisor dies mid-checkout: registered, still locked.
fn half_made(repo: &Repo, base: &str) -> PathBuf {
    let half = repo.root().join(".orch/pool/idle-7");
    git(
        repo.root(),
        &[
            "worktree",
            "add",
            "-q",
            "--no-checkout",
            "--detach",
            "--lock",
            half.to_str().expect("utf-8 path"),
            base,
        ],
    );
    half
}

#[test]
fn gc_drains_what_a_crash_left_half_made_in_the_pool() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 2);
    repo.fill_pool(&p, &base).expect("fill");
    let half = half_made(&repo, &base);
    assert_eq!(
        repo.pool_idle(&p).expect("idle").len(),
        2,
        "a locked one is never taken"
    );
    assert_eq!(repo.drain_pool(&p).expect("drain"), 3);
    assert!(!half.exists());
    assert_eq!(repo.worktrees().expect("list").len(), 1);
}

#[test]
fn a_run_that_ends_keeps_the_idle_worktrees_asked_for_and_nothing_half_made() {
    let (_t, repo, base) = repo_with_ignores();
    let mut p = pool(&[], 3);
    repo.fill_pool(&p, &base).expect("fill");
    let half = half_made(&repo, &base);
    p.keep_idle = 2;
    let before: Vec<u64> = repo
        .pool_idle(&p)
        .expect("idle")
        .iter()
        .map(|w| fs::metadata(&w.path).expect("stat").ino())
        .collect();
    assert_eq!(
        repo.trim_pool(&p).expect("trim"),
        2,
        "one idle and the half-made one"
    );
    assert!(!half.exists());
    let kept = repo.pool_idle(&p).expect("idle");
    assert_eq!(kept.len(), 2);
    for w in &kept {
        let ino = fs::metadata(&w.path).expect("stat").ino();
        assert!(
            before.contains(&ino),
            "kept in place, not made again: {}",
            w.path.display()
        );
        assert_eq!(git(&w.path, &["status", "--porcelain", "--ignored"]), "");
    }
    // Trimming again changes nothing; with nothing kept, the pool is emptied.
    assert_eq!(repo.trim_pool(&p).expect("trim"), 0);
    p.keep_idle = 0;
    assert_eq!(repo.trim_pool(&p).expect("trim"), 2);
    assert_eq!(repo.worktrees().expect("list").len(), 1);
}

#[test]
fn a_retry_takes_its_branch_from_the_earlier_attempts_worktree_and_keeps_that_work() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 2);
    repo.fill_pool(&p, &base).expect("fill");
    // Attempt 1 still has the task branch checked out, with a commit and a file not committed.
    let first = wt_path(&repo, "t-1");
    repo.take_worktree(&p, &first, "orch/t", &base, &backup_ref_name("t", 1))
        .expect("take");
    fs::write(first.join("f.txt"), "attempt 1\n").expect("write");
    git(&first, &["commit", "-qam", "attempt 1"]);
    let attempt1 = oid(&repo, "refs/heads/orch/t");
    fs::write(first.join("half-done.txt"), "not committed").expect("write");

    // git refuses to check the branch out twice: the take releases it only when it has to.
    let released = std::cell::Cell::new(0);
    let second = wt_path(&repo, "t-2");
    let taken = repo
        .take_worktree_releasing(
            &p,
            &second,
            "orch/t",
            &base,
            &backup_ref_name("t", 2),
            &|| {
                released.set(released.get() + 1);
                repo.remove_worktree(&first, &backup_ref_name("t", 1))
            },
        )
        .expect("take for the retry");
    assert_eq!(taken, Taken::Reused);
    assert_eq!(released.get(), 1);
    assert!(!first.exists());
    assert_eq!(git(&second, &["symbolic-ref", "HEAD"]), "refs/heads/orch/t");
    assert_eq!(git(&second, &["rev-parse", "HEAD"]), base);
    assert_eq!(git(&second, &["status", "--porcelain"]), "");
    // Attempt 1's commit and its uncommitted file are kept under its backup refs.
    let kept = git(
        repo.root(),
        &[
            "for-each-ref",
            "--format=%(objectname)",
            "refs/orch/backup/",
        ],
    );
    let holds = |o: &str| {
        std::process::Command::new("git")
            .args(["merge-base", "--is-ancestor", &attempt1, o])
            .current_dir(repo.root())
            .status()
            .expect("git")
            .success()
    };
    assert!(
        kept.lines().any(holds),
        "attempt 1's commit is held by a backup ref: {kept}"
    );
    let tree = kept
        .lines()
        .map(|o| git(repo.root(), &["ls-tree", "-r", "--name-only", o]))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        tree.contains("half-done.txt"),
        "the uncommitted file is kept: {tree}"
    );
}

#[test]
fn a_new_task_in_a_pooled_worktree_releases_nothing() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 1);
    repo.fill_pool(&p, &base).expect("fill");
    let released = std::cell::Cell::new(false);
    let path = wt_path(&repo, "n-1");
    let taken = repo
        .take_worktree_releasing(
            &p,
            &path,
            "orch/n",
            &base,
            &backup_ref_name("n", 1),
            &|| {
                released.set(true);
                Ok(())
            },
        )
        .expect("take");
    assert_eq!(taken, Taken::Reused);
    assert!(!released.get(), "no worktree had to be looked for");
    assert_eq!(git(&path, &["symbolic-ref", "HEAD"]), "refs/heads/orch/n");
}

#[test]
fn an_idle_worktree_removed_by_hand_is_not_handed_out() {
    let (_t, repo, base) = repo_with_ignores();
    let p = pool(&[], 2);
    repo.fill_pool(&p, &base).expect("fill");
    let idle = repo.pool_idle(&p).expect("idle");
    assert_eq!(idle.len(), 2);
    // Someone removes one behind the supervisor's back, and locks the other.
    git(
        repo.root(),
        &[
            "worktree",
            "remove",
            "--force",
            idle[0].path.to_str().expect("utf-8"),
        ],
    );
    git(
        repo.root(),
        &["worktree", "lock", idle[1].path.to_str().expect("utf-8")],
    );
    let path = wt_path(&repo, "h-1");
    let taken = repo
        .take_worktree(&p, &path, "orch/h", &base, &backup_ref_name("h", 1))
        .expect("take");
    assert_eq!(taken, Taken::Created, "nothing idle is left to take");
    assert!(idle[1].path.exists(), "a locked worktree stays where it is");
    assert_eq!(git(&path, &["symbolic-ref", "HEAD"]), "refs/heads/orch/h");
}
