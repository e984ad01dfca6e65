//! After a merge and at tidy-up time, on real repositories: worktrees and task branches go, and a
//! backup ref is made only when a commit would otherwise become unreachable.

use std::fs;

mod common;

use common::git;
use common::scratch::{agent_commit, fixture, oid, task_commit, wt_path};
use orch_tui::git::{BackupRef, Replay, Repo, backup_ref_name};

const INTEGRATION: &str = "refs/heads/orch/integration";

fn backups(repo: &Repo) -> Vec<(String, String)> {
    repo.backups()
        .expect("backups")
        .into_iter()
        .map(|b| (b.name, b.oid))
        .collect()
}

/// Merges `commit` (made on `base`) into the integration branch the way the merge queue does:
/// replay onto the tip, then compare-and-swap. Returns the new integration tip.
fn merge(repo: &Repo, base: &str, commit: &str) -> String {
    let tip = oid(repo, INTEGRATION);
    let Replay::Clean { tip: new } = repo.replay_onto(base, commit, &tip).expect("replay") else {
        panic!("conflict");
    };
    assert!(repo.cas_update_ref(INTEGRATION, &new, &tip).expect("cas"));
    new
}

#[test]
fn a_fast_forward_merge_leaves_no_backup() {
    let (_t, repo) = fixture();
    let base = repo.ensure_branch("orch/integration").expect("integration");
    let (wt, c) = task_commit(&repo, "ff", &base, &[("ff.txt", "ff")]);
    let merged = merge(&repo, &base, &c);
    assert_eq!(merged, c, "nothing moved: a fast-forward");
    let done = repo
        .retire_merged(&wt, "orch/ff", &merged, &c, &backup_ref_name("ff", 1))
        .expect("retire");
    assert_eq!(done.backups, Vec::<String>::new());
    assert_eq!(done.snapshot, None);
    assert!(done.worktree_removed && done.branch_deleted);
    assert!(!wt.exists());
    assert_eq!(repo.rev_parse("refs/heads/orch/ff").expect("rp"), None);
    assert_eq!(backups(&repo), vec![]);
    assert_eq!(oid(&repo, INTEGRATION), c);
}

#[test]
fn a_replayed_merge_keeps_the_agents_original_commit() {
    let (_t, repo) = fixture();
    let base = repo.ensure_branch("orch/integration").expect("integration");
    let (wt, c) = task_commit(&repo, "rp", &base, &[("rp.txt", "rp")]);
    // Another task lands first, so this one is replayed (new commit objects).
    let (_w, other) = task_commit(&repo, "other", &base, &[("o.txt", "o")]);
    merge(&repo, &base, &other);
    let merged = merge(&repo, &base, &c);
    assert_ne!(merged, c);
    let backup = backup_ref_name("rp", 1);
    let done = repo
        .retire_merged(&wt, "orch/rp", &merged, &c, &backup)
        .expect("retire");
    assert_eq!(done.backups, vec![backup.clone()]);
    assert_eq!(oid(&repo, &backup), c);
    assert!(!wt.exists());
    assert_eq!(repo.rev_parse("refs/heads/orch/rp").expect("rp"), None);
    // With a reflog, so `orch-tui gc --older-than` knows its age.
    let kept = repo.backups().expect("backups");
    assert!(kept.iter().any(|b| b.name == backup && b.created.is_some()));
}

/// A task merged by replay, its worktree still there: (worktree, agent's commit, merged commit).
fn replayed(repo: &Repo, task: &str) -> (std::path::PathBuf, String, String) {
    let base = repo.ensure_branch("orch/integration").expect("integration");
    let (wt, c) = task_commit(repo, task, &base, &[("rp.txt", "rp")]);
    let (_w, other) = task_commit(repo, &format!("{task}-other"), &base, &[("o.txt", "o")]);
    merge(repo, &base, &other);
    let merged = merge(repo, &base, &c);
    assert_ne!(merged, c);
    (wt, c, merged)
}

#[test]
fn a_merged_commit_that_is_no_commit_changes_nothing() {
    let (_t, repo) = fixture();
    let (wt, c, merged) = replayed(&repo, "wrong");
    let tree = git(repo.root(), &["rev-parse", &format!("{merged}^{{tree}}")]);
    for bad in [tree.as_str(), "0123456789012345678901234567890123456789"] {
        let err = repo
            .retire_merged(&wt, "orch/wrong", bad, &c, &backup_ref_name("wrong", 1))
            .expect_err("refused");
        assert!(err.to_string().contains("rev-list"), "{err}");
    }
    assert!(wt.exists());
    assert_eq!(oid(&repo, "refs/heads/orch/wrong"), c);
    assert_eq!(backups(&repo), vec![]);
}

#[test]
fn a_backup_name_already_taken_gets_the_next_one_and_the_branch_still_goes() {
    let (_t, repo) = fixture();
    let (wt, c, merged) = replayed(&repo, "taken");
    let backup = backup_ref_name("taken", 1);
    let main = oid(&repo, "main");
    git(repo.root(), &["update-ref", &backup, &main]);
    let done = repo
        .retire_merged(&wt, "orch/taken", &merged, &c, &backup)
        .expect("retire");
    let next = format!("{backup}-2");
    assert_eq!(done.backups, vec![next.clone()]);
    assert!(done.branch_deleted && !wt.exists());
    assert_eq!(oid(&repo, &next), c);
    assert_eq!(oid(&repo, &backup), main, "a backup is never overwritten");
    assert_eq!(repo.rev_parse("refs/heads/orch/taken").expect("rp"), None);
}

#[test]
fn only_this_tasks_backups_count_as_keeping_its_commit() {
    let (_t, repo) = fixture();
    let (wt, c, merged) = replayed(&repo, "mine");
    // Another task's backup happens to hold the commit too: it still gets one of its own,
    // found where `orch-tui gc` and a user look for this task's work.
    git(
        repo.root(),
        &["update-ref", "refs/orch/backup/elsewhere/1", &c],
    );
    let backup = backup_ref_name("mine", 1);
    let done = repo
        .retire_merged(&wt, "orch/mine", &merged, &c, &backup)
        .expect("retire");
    assert_eq!(done.backups, vec![backup.clone()]);
    assert_eq!(oid(&repo, &backup), c);
}

#[test]
fn files_left_uncommitted_after_a_merge_are_snapshotted() {
    let (_t, repo) = fixture();
    let base = repo.ensure_branch("orch/integration").expect("integration");
    let (wt, c) = task_commit(&repo, "dirty", &base, &[("d.txt", "d")]);
    let merged = merge(&repo, &base, &c);
    fs::write(wt.join("late.txt"), "written after the commit").expect("write");
    let backup = backup_ref_name("dirty", 1);
    let done = repo
        .retire_merged(&wt, "orch/dirty", &merged, &c, &backup)
        .expect("retire");
    let snap = done.snapshot.expect("a snapshot");
    assert_eq!(done.backups, vec![backup.clone()]);
    assert_eq!(oid(&repo, &backup), snap);
    assert_eq!(
        git(repo.root(), &["show", &format!("{snap}:late.txt")]),
        "written after the commit"
    );
    assert_eq!(git(repo.root(), &["rev-parse", &format!("{snap}^")]), c);
}

/// A watched worktree (as the engine's are) whose turn was committed through the change
/// journal, then merged: (worktree, the commit, the merged commit).
fn watched_and_merged(repo: &Repo, task: &str) -> (std::path::PathBuf, String, String) {
    let base = repo.ensure_branch("orch/integration").expect("integration");
    let wt = wt_path(repo, &format!("{task}-1"));
    repo.create_worktree(
        &wt,
        &format!("orch/{task}"),
        &base,
        &backup_ref_name(task, 1),
    )
    .expect("worktree");
    repo.watch_worktree(&wt);
    fs::write(wt.join("new.txt"), format!("new in {task}\n")).expect("write");
    fs::write(wt.join("f.txt"), format!("edited by {task}\n")).expect("write");
    let c = repo
        .commit_all(&wt, "Agent A", "a@example.com", "turn\n\nOrch-Task: x")
        .expect("commit")
        .expect("something to commit");
    let merged = merge(repo, &base, &c);
    (wt, c, merged)
}

#[test]
fn a_watched_worktree_is_snapshotted_exactly_when_something_changed_after_its_commit() {
    let (_t, repo) = fixture();
    // Nothing written since the commit: no snapshot, no backup (the fast-forward's commit is
    // on the integration branch).
    let (wt, c, merged) = watched_and_merged(&repo, "clean");
    let done = repo
        .retire_merged(&wt, "orch/clean", &merged, &c, &backup_ref_name("clean", 1))
        .expect("retire");
    assert_eq!((done.snapshot, done.backups), (None, vec![]));
    assert!(!wt.exists());

    // Each way of leaving work behind after the commit is kept.
    type Leave = fn(&std::path::Path);
    let ways: [(&str, Leave); 4] = [
        ("untracked", |wt| {
            fs::write(wt.join("late.txt"), "late\n").expect("write")
        }),
        ("edited", |wt| {
            fs::write(wt.join("new.txt"), "changed\n").expect("write")
        }),
        // No file touched: the index differs from HEAD (another git wrote the index).
        ("unstaged", |wt| {
            git(wt, &["rm", "-q", "--cached", "new.txt"]);
        }),
        // HEAD moved back, index and files as they were.
        ("moved", |wt| {
            git(wt, &["reset", "-q", "--soft", "HEAD~1"]);
        }),
    ];
    for (task, leave) in ways {
        let (wt, c, merged) = watched_and_merged(&repo, task);
        leave(&wt);
        let backup = backup_ref_name(task, 1);
        let done = repo
            .retire_merged(&wt, &format!("orch/{task}"), &merged, &c, &backup)
            .expect("retire");
        let snap = done
            .snapshot
            .unwrap_or_else(|| panic!("{task}: a snapshot"));
        assert_eq!(oid(&repo, &backup), snap, "{task}: kept under the backup");
    }
}

#[test]
fn orch_worktrees_lists_ours_with_their_state() {
    let (_t, repo) = fixture();
    let (clean, c) = task_commit(&repo, "fix-2-1", "main", &[("a.txt", "a")]);
    let (dirty, _) = task_commit(&repo, "b-1", "main", &[("b.txt", "b")]);
    fs::write(dirty.join("wip.txt"), "wip").expect("write");
    let (gone, _) = task_commit(&repo, "c-3", "main", &[("c.txt", "c")]);
    fs::remove_dir_all(&gone).expect("rm");
    // A worktree elsewhere is not ours.
    let outside = repo.root().join("elsewhere");
    git(
        repo.root(),
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            outside.to_str().expect("utf8"),
        ],
    );
    let dir = repo.root().join(".orch/worktrees");
    let mut list = repo.orch_worktrees(&dir).expect("list");
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = list.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["b-1", "c-3", "fix-2-1"]);
    let [b, c3, fix] = &list[..] else {
        panic!("three worktrees")
    };
    assert!(b.dirty && !b.missing);
    assert!(c3.missing && !c3.dirty);
    assert!(!fix.dirty && !fix.missing);
    assert_eq!(fix.head.as_deref(), Some(c.as_str()));
    assert_eq!(fix.branch.as_deref(), Some("refs/heads/orch/fix-2-1"));
    assert_eq!(fix.path, clean);
    assert_eq!(fix.task_attempt(), Some(("fix-2", 1)));
    assert_eq!(c3.task_attempt(), Some(("c", 3)));
    // The cheap listing a start uses: the same worktrees, without asking whether each is dirty.
    let mut listed = repo.orch_worktrees_listed(&dir).expect("list");
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let undirtied: Vec<_> = list
        .iter()
        .cloned()
        .map(|mut w| {
            w.dirty = false;
            w
        })
        .collect();
    assert_eq!(listed, undirtied);
}

#[test]
fn retiring_a_finished_tasks_worktree_backs_up_first() {
    let (_t, repo) = fixture();
    let (wt, c) = task_commit(&repo, "failed", "main", &[("f.txt", "f")]);
    // Files the agent never committed: only a snapshot can keep them.
    fs::write(wt.join("wip.txt"), "wip").expect("write");
    let backup = backup_ref_name("failed", 1);
    let done = repo.retire_worktree(&wt, &backup).expect("retire");
    assert!(done.worktree_removed);
    assert!(!wt.exists());
    let snap = done.snapshot.expect("snapshot");
    assert_eq!(done.backups, vec![backup.clone()]);
    assert_eq!(oid(&repo, &backup), snap);
    assert_eq!(git(repo.root(), &["rev-parse", &format!("{snap}^")]), c);
    // Nothing there: nothing done.
    let again = repo.retire_worktree(&wt, &backup).expect("again");
    assert!(!again.worktree_removed);
}

#[test]
fn backups_know_when_they_were_made() {
    let (_t, repo) = fixture();
    let main = oid(&repo, "main");
    let (_wt, c) = task_commit(&repo, "k", "main", &[("k.txt", "k")]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let made = repo
        .backup_ref(&backup_ref_name("k", 1), &c)
        .expect("backup");
    // One from before backups had a reflog: its age is unknown, not guessed.
    git(
        repo.root(),
        &["update-ref", "refs/orch/backup/old/1", &main],
    );
    let list = repo.backups().expect("list");
    assert_eq!(list.len(), 2);
    let new = list.iter().find(|b| b.name == made).expect("new one");
    let created = new.created.expect("a creation time");
    assert!(
        created + 1 >= before && created <= before + 60,
        "{created} vs {before}"
    );
    let old = list
        .iter()
        .find(|b| b.name == "refs/orch/backup/old/1")
        .expect("old one");
    assert_eq!(old.created, None);
    repo.drop_backup(old).expect("drop");
    assert_eq!(repo.rev_parse("refs/orch/backup/old/1").expect("rp"), None);
    // Only backup refs can be dropped this way.
    let not_backup = BackupRef {
        name: "refs/heads/main".into(),
        oid: main,
        created: None,
    };
    let err = repo.drop_backup(&not_backup).expect_err("refused");
    assert!(err.to_string().contains("not a backup ref"), "{err}");
    assert!(repo.rev_parse("refs/heads/main").expect("rp").is_some());
}

#[test]
fn a_task_branch_with_later_work_is_kept_before_deletion() {
    let (_t, repo) = fixture();
    let base = repo.ensure_branch("orch/integration").expect("integration");
    let (wt, c) = task_commit(&repo, "late", &base, &[("l.txt", "l")]);
    let merged = merge(&repo, &base, &c);
    // Someone committed on the task branch after the merge queue took its commit.
    let later = agent_commit(&wt, "more.txt", "more", "after the merge");
    let backup = backup_ref_name("late", 1);
    let done = repo
        .retire_merged(&wt, "orch/late", &merged, &c, &backup)
        .expect("retire");
    assert_eq!(done.backups, vec![backup.clone()]);
    assert_eq!(oid(&repo, &backup), later);
    assert_eq!(repo.rev_parse("refs/heads/orch/late").expect("rp"), None);
    assert_eq!(wt_path(&repo, "late"), wt);
    assert!(!wt.exists());
}
