//! Integration tests for `orch_tui::git` on real repositories in temporary folders.

use std::fs;

mod common;

use common::git;
use common::scratch::{fixture, oid, task_commit, write_hook, wt_path};
use orch_tui::git::{Replay, Repo, backup_ref_name, trailers};

#[test]
fn open_outside_a_repo_says_git_init() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = Repo::open(tmp.path()).expect_err("not a repo");
    assert!(err.to_string().contains("git init"), "{err}");
}

#[test]
fn exclude_is_idempotent() {
    let (_t, repo) = fixture();
    repo.ensure_excluded(".orch/").expect("exclude");
    repo.ensure_excluded(".orch/").expect("exclude again");
    let text = fs::read_to_string(repo.root().join(".git/info/exclude")).expect("read");
    assert_eq!(text.lines().filter(|l| *l == ".orch/").count(), 1, "{text}");
    fs::create_dir_all(repo.root().join(".orch")).expect("mkdir");
    fs::write(repo.root().join(".orch/x"), "x").expect("write");
    assert_eq!(git(repo.root(), &["status", "--porcelain"]), "");
}

#[test]
fn ensure_branch_does_not_touch_head_or_tree() {
    let (_t, repo) = fixture();
    let head = oid(&repo, "HEAD");
    let tip = repo.ensure_branch("orch/integration").expect("ensure");
    assert_eq!(tip, head);
    assert_eq!(repo.ensure_branch("orch/integration").expect("again"), head);
    assert_eq!(
        git(repo.root(), &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    assert_eq!(git(repo.root(), &["status", "--porcelain"]), "");
}

#[test]
fn ensure_branch_without_commits_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    git(tmp.path(), &["init", "-q", "-b", "main"]);
    let repo = Repo::open(tmp.path()).expect("open");
    let err = repo
        .ensure_branch("orch/integration")
        .expect_err("no commits");
    assert!(err.to_string().contains("no commits"), "{err}");
}

#[test]
fn commit_all_sets_agent_identity_and_trailers() {
    let (_t, repo) = fixture();
    repo.ensure_excluded(".orch/").expect("exclude");
    let (wt, c) = task_commit(&repo, "t1", "main", &[("new.txt", "hello\n")]);
    let log = git(&wt, &["log", "-1", "--format=%an %ae|%cn %ce|%B"]);
    assert!(
        log.starts_with("Agent A agent-a@example.com|Agent A agent-a@example.com|Do t1"),
        "{log}"
    );
    assert!(log.contains("Orch-Task: t1\nOrch-Attempt: 1"), "{log}");
    assert_eq!(oid(&repo, "orch/t1"), c);
    // The user's checkout is untouched by all of it.
    assert_eq!(git(repo.root(), &["status", "--porcelain"]), "");
    assert_eq!(
        git(repo.root(), &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
}

#[test]
fn empty_change_commits_nothing() {
    let (_t, repo) = fixture();
    let wt = wt_path(&repo, "e");
    repo.create_worktree(&wt, "orch/e", "main", "refs/orch/backup/e/1")
        .expect("create");
    let got = repo
        .commit_all(&wt, "A", "a@x", "nothing\n\nOrch-Task: e\nOrch-Attempt: 1")
        .expect("commit");
    assert_eq!(got, None);
    assert_eq!(oid(&repo, "orch/e"), oid(&repo, "main"));
}

#[test]
fn ignored_files_are_not_committed() {
    let (_t, repo) = fixture();
    let (_wt, c) = task_commit(
        &repo,
        "ig",
        "main",
        &[("build.log", "noise"), ("a.txt", "a")],
    );
    let files = git(repo.root(), &["show", "--name-only", "--format=", &c]);
    assert_eq!(files, "a.txt");
}

#[test]
fn replay_clean_onto_moved_base() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let (_wt, c) = task_commit(&repo, "r", &base, &[("f.txt", "one\ntwo\nTHREE\n")]);
    // The integration branch moves on meanwhile (another task touched another line).
    let (_wt2, other) = task_commit(&repo, "o", &base, &[("f.txt", "ONE\ntwo\nthree\n")]);
    let got = repo.replay_onto(&base, &c, &other).expect("replay");
    let Replay::Clean { tip } = got else {
        panic!("expected clean, got {got:?}");
    };
    assert_ne!(tip, c);
    assert_eq!(
        git(repo.root(), &["show", &format!("{tip}:f.txt")]),
        "ONE\ntwo\nTHREE"
    );
    assert_eq!(git(repo.root(), &["rev-parse", &format!("{tip}^")]), other);
    let meta = |rev: &str| {
        git(
            repo.root(),
            &["log", "-1", "--format=%an|%ae|%ad|%cn|%cd|%B", rev],
        )
    };
    assert_eq!(meta(&tip), meta(&c));
    assert_eq!(
        repo.commits_between(&other, &tip).expect("list"),
        vec![tip.clone()]
    );
    // Fast path: onto the branch's own base, the tip comes back unchanged.
    assert_eq!(
        repo.replay_onto(&base, &c, &base).expect("replay"),
        Replay::Clean { tip: c.clone() }
    );
}

#[test]
fn one_lines_lists_a_range_oldest_first_with_each_task() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let (_w1, a) = task_commit(&repo, "alpha", &base, &[("a.txt", "a\n")]);
    let (_w2, b) = task_commit(&repo, "beta", &a, &[("b.txt", "b\n")]);
    let lines = repo.one_lines(&base, &b).expect("list");
    assert_eq!(
        lines,
        vec![
            (a.clone(), "Do alpha  [alpha]".to_string()),
            (b.clone(), "Do beta  [beta]".to_string()),
        ]
    );
    assert!(repo.one_lines(&b, &b).expect("empty range").is_empty());
}

#[test]
fn replay_several_commits_keeps_order() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let (wt, c1) = task_commit(&repo, "m", &base, &[("a.txt", "a\n")]);
    fs::write(wt.join("b.txt"), "b\n").expect("write");
    let c2 = repo
        .commit_all(&wt, "Agent B", "b@x", "second")
        .expect("commit")
        .expect("some");
    let (_w, other) = task_commit(&repo, "n", &base, &[("c.txt", "c\n")]);
    let Replay::Clean { tip } = repo.replay_onto(&base, &c2, &other).expect("replay") else {
        panic!("conflict");
    };
    let list = repo.commits_between(&other, &tip).expect("list");
    assert_eq!(list.len(), 2);
    let subjects = git(
        repo.root(),
        &["log", "--format=%s %an", &format!("{other}..{tip}")],
    );
    assert_eq!(subjects, "second Agent B\nDo m Agent A");
    assert_ne!(list[0], c1);
    let files = git(repo.root(), &["ls-tree", "--name-only", &tip]);
    assert_eq!(files, ".gitignore\na.txt\nb.txt\nc.txt\nf.txt");
}

#[test]
fn a_replay_of_a_commit_that_does_not_exist_names_it() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let (_w, c) = task_commit(&repo, "x", &base, &[("a.txt", "a\n")]);
    let (_w2, other) = task_commit(&repo, "y", &base, &[("b.txt", "b\n")]);
    // Full ids skip resolving; one that names nothing still gets an error that says which.
    let gone = "0123456789abcdef0123456789abcdef01234567";
    let err = repo
        .replay_onto(&base, gone, &other)
        .expect_err("no such commit");
    assert!(err.to_string().contains(gone), "{err}");
    let err = repo.replay_onto(&base, &c, gone).expect_err("no such tip");
    assert!(err.to_string().contains(gone), "{err}");
}

#[test]
fn replay_conflict_lists_the_file() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let (_w, c) = task_commit(
        &repo,
        "x",
        &base,
        &[("f.txt", "one\nTWO-x\nthree\n"), ("ok.txt", "k")],
    );
    let (_w2, other) = task_commit(&repo, "y", &base, &[("f.txt", "one\nTWO-y\nthree\n")]);
    let got = repo.replay_onto(&base, &c, &other).expect("replay");
    assert_eq!(
        got,
        Replay::Conflict {
            files: vec!["f.txt".to_string()]
        }
    );
}

#[test]
fn cas_update_ref_loses_when_ref_moved() {
    let (_t, repo) = fixture();
    let start = repo.ensure_branch("orch/integration").expect("ensure");
    let (_w, c) = task_commit(&repo, "c", &start, &[("c.txt", "c")]);
    let (_w2, d) = task_commit(&repo, "d", &start, &[("d.txt", "d")]);
    let r = "refs/heads/orch/integration";
    assert!(repo.cas_update_ref(r, &c, &start).expect("first"));
    assert!(!repo.cas_update_ref(r, &d, &start).expect("stale"));
    assert_eq!(oid(&repo, r), c);
    // Creating a ref that must not exist yet.
    assert!(repo.cas_update_ref("refs/orch/x", &c, "").expect("create"));
    assert!(!repo.cas_update_ref("refs/orch/x", &d, "").expect("exists"));
}

#[test]
fn create_worktree_over_existing_branch_keeps_a_backup() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let (wt, c) = task_commit(&repo, "b", &base, &[("b.txt", "attempt 1")]);
    repo.remove_worktree(&wt, &backup_ref_name("b", 1))
        .expect("remove");
    // Attempt 2 reuses the branch name: attempt 1's commit must survive in a backup.
    repo.create_worktree(&wt, "orch/b", &base, &backup_ref_name("b", 2))
        .expect("recreate");
    assert_eq!(oid(&repo, "orch/b"), base);
    let kept = [backup_ref_name("b", 1), backup_ref_name("b", 2)]
        .iter()
        .filter_map(|r| repo.rev_parse(r).expect("rev-parse"))
        .any(|o| o == c);
    assert!(kept, "attempt 1's commit {c} is under no backup ref");
    assert!(!wt.join("b.txt").exists());
}

#[test]
fn create_worktree_over_unsaved_branch_backs_it_up() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    // A branch with a commit that no backup holds (made outside a worktree of ours).
    git(repo.root(), &["branch", "orch/u", &base]);
    let wt0 = repo.root().join("tmpwt");
    git(
        repo.root(),
        &[
            "worktree",
            "add",
            "-q",
            wt0.to_str().expect("utf8"),
            "orch/u",
        ],
    );
    fs::write(wt0.join("u.txt"), "u").expect("write");
    git(&wt0, &["add", "u.txt"]);
    git(&wt0, &["commit", "-q", "-m", "u"]);
    let tip = oid(&repo, "orch/u");
    git(
        repo.root(),
        &["worktree", "remove", wt0.to_str().expect("utf8")],
    );
    repo.create_worktree(
        &wt_path(&repo, "u"),
        "orch/u",
        &base,
        "refs/orch/backup/u/2",
    )
    .expect("create");
    assert_eq!(oid(&repo, "refs/orch/backup/u/2"), tip);
    assert_eq!(oid(&repo, "orch/u"), base);
}

#[test]
fn remove_worktree_keeps_commits_and_uncommitted_work() {
    let (_t, repo) = fixture();
    let (wt, c) = task_commit(&repo, "rm", "main", &[("r.txt", "r")]);
    fs::write(wt.join("wip.txt"), "not committed").expect("write");
    let backup = backup_ref_name("rm", 1);
    repo.remove_worktree(&wt, &backup).expect("remove");
    assert!(!wt.exists());
    let snap = oid(&repo, &backup);
    assert_eq!(git(repo.root(), &["rev-parse", &format!("{snap}^")]), c);
    assert_eq!(
        git(repo.root(), &["show", &format!("{snap}:wip.txt")]),
        "not committed"
    );
    // Removing again (already gone) is fine.
    repo.remove_worktree(&wt, &backup).expect("remove again");
}

#[test]
fn remove_merged_worktree_needs_no_backup() {
    let (_t, repo) = fixture();
    let base = repo.ensure_branch("orch/integration").expect("ensure");
    let (wt, c) = task_commit(&repo, "mg", &base, &[("m.txt", "m")]);
    assert!(
        repo.cas_update_ref("refs/heads/orch/integration", &c, &base)
            .expect("ff")
    );
    repo.remove_worktree(&wt, &backup_ref_name("mg", 1))
        .expect("remove");
    assert_eq!(repo.rev_parse(&backup_ref_name("mg", 1)).expect("rp"), None);
    repo.delete_branch("orch/mg", "orch/integration")
        .expect("merged: deletable");
    assert_eq!(repo.rev_parse("refs/heads/orch/mg").expect("rp"), None);
}

#[test]
fn delete_branch_refuses_unmerged() {
    let (_t, repo) = fixture();
    let (wt, c) = task_commit(&repo, "del", "main", &[("d.txt", "d")]);
    let err = repo
        .delete_branch("orch/del", "main")
        .expect_err("checked out / unmerged");
    assert!(err.to_string().contains("refusing"), "{err}");
    git(
        repo.root(),
        &["worktree", "remove", wt.to_str().expect("utf8")],
    );
    let err = repo
        .delete_branch("orch/del", "main")
        .expect_err("unmerged");
    assert!(err.to_string().contains("neither"), "{err}");
    assert_eq!(oid(&repo, "orch/del"), c);
    // Once a backup holds its tip it may go.
    repo.backup_ref(&backup_ref_name("del", 1), &c)
        .expect("backup");
    repo.delete_branch("orch/del", "main")
        .expect("backed up: deletable");
    assert_eq!(repo.rev_parse("refs/heads/orch/del").expect("rp"), None);
}

#[test]
fn backup_ref_never_overwrites() {
    let (_t, repo) = fixture();
    let (_w, c) = task_commit(&repo, "bk", "main", &[("x", "x")]);
    let main = oid(&repo, "main");
    let r = backup_ref_name("bk", 1);
    assert_eq!(repo.backup_ref(&r, &main).expect("first"), r);
    assert_eq!(repo.backup_ref(&r, &main).expect("same again"), r);
    let second = repo.backup_ref(&r, &c).expect("other oid");
    assert_eq!(second, format!("{r}-2"));
    assert_eq!(oid(&repo, &r), main);
    assert_eq!(oid(&repo, &second), c);
}

#[test]
fn find_task_commit_matches_task_exactly() {
    let (_t, repo) = fixture();
    let base = repo.ensure_branch("orch/integration").expect("ensure");
    let (_w, c) = task_commit(&repo, "a-b", &base, &[("ab.txt", "ab")]);
    assert!(
        repo.cas_update_ref("refs/heads/orch/integration", &c, &base)
            .expect("ff")
    );
    assert_eq!(
        repo.find_task_commit("orch/integration", "a", 1)
            .expect("find"),
        None
    );
    assert_eq!(
        repo.find_task_commit("orch/integration", "a-b", 2)
            .expect("find"),
        None
    );
    assert_eq!(
        repo.find_task_commit("orch/integration", "a-b", 1)
            .expect("find"),
        Some(c.clone())
    );
    assert_eq!(
        repo.find_task_commit("no/such", "a-b", 1).expect("find"),
        None
    );
}

#[test]
fn stale_worktree_from_a_crash_is_recovered() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let (wt, c) = task_commit(&repo, "s", &base, &[("s.txt", "s")]);
    fs::write(wt.join("half.txt"), "half-done").expect("write");
    // "Crash": the supervisor restarts and dispatches attempt 2 onto the same path and branch.
    repo.create_worktree(&wt, "orch/s", &base, &backup_ref_name("s", 2))
        .expect("recover");
    assert!(!wt.join("half.txt").exists());
    assert!(!wt.join("s.txt").exists());
    assert_eq!(oid(&repo, "orch/s"), base);
    let snap = oid(&repo, &backup_ref_name("s", 2));
    assert_eq!(git(repo.root(), &["rev-parse", &format!("{snap}^")]), c);
    assert_eq!(
        git(repo.root(), &["show", &format!("{snap}:half.txt")]),
        "half-done"
    );
}

#[test]
fn worktree_whose_directory_vanished_is_pruned() {
    let (_t, repo) = fixture();
    let (wt, _c) = task_commit(&repo, "v", "main", &[("v.txt", "v")]);
    fs::remove_dir_all(&wt).expect("rm");
    repo.create_worktree(&wt, "orch/v", "main", &backup_ref_name("v", 2))
        .expect("recreate");
    assert!(wt.join("f.txt").exists());
}

#[test]
fn changed_files_and_diff_stat() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let (_w, c) = task_commit(&repo, "cf", &base, &[("f.txt", "1\n"), ("n.txt", "n\n")]);
    assert_eq!(
        repo.changed_files(&base, &c).expect("files"),
        vec!["f.txt", "n.txt"]
    );
    let stat = repo.diff_stat(&base, &c).expect("stat");
    assert!(stat.contains("2 files changed"), "{stat}");
    assert!(repo.is_ancestor(&base, &c).expect("anc"));
    assert!(!repo.is_ancestor(&c, &base).expect("anc"));
}

#[test]
fn trailers_format() {
    assert_eq!(trailers("x", 3), "Orch-Task: x\nOrch-Attempt: 3");
}

#[test]
fn commit_refused_by_a_hook_is_an_error_not_an_empty_change() {
    let (_t, repo) = fixture();
    write_hook(
        &repo,
        "pre-commit",
        "#!/bin/sh\necho 'lint says no' >&2\nexit 1\n",
    );
    let wt = wt_path(&repo, "h");
    repo.create_worktree(&wt, "orch/h", "main", &backup_ref_name("h", 1))
        .expect("create");
    fs::write(wt.join("h.txt"), "h").expect("write");
    let err = repo
        .commit_all(&wt, "A", "a@x", "h\n\nOrch-Task: h\nOrch-Attempt: 1")
        .expect_err("hook refuses");
    assert!(err.to_string().contains("lint says no"), "{err}");
}

#[test]
fn a_refused_commit_of_changed_tracked_files_only_is_an_error_too() {
    let (_t, repo) = fixture();
    write_hook(
        &repo,
        "pre-commit",
        "#!/bin/sh\necho 'lint says no' >&2\nexit 1\n",
    );
    let wt = wt_path(&repo, "h");
    repo.create_worktree(&wt, "orch/h", "main", &backup_ref_name("h", 1))
        .expect("create");
    fs::write(wt.join("f.txt"), "changed, nothing new\n").expect("write");
    let err = repo
        .commit_all(&wt, "A", "a@x", "h\n\nOrch-Task: h\nOrch-Attempt: 1")
        .expect_err("hook refuses");
    assert!(err.to_string().contains("lint says no"), "{err}");
    assert_eq!(
        fs::read_to_string(wt.join("f.txt")).expect("read"),
        "changed, nothing new\n"
    );
}

#[test]
fn commit_all_takes_what_add_all_would_and_nothing_ignored() {
    let (_t, repo) = fixture();
    let wt = wt_path(&repo, "c");
    repo.create_worktree(&wt, "orch/c", "main", &backup_ref_name("c", 1))
        .expect("create");
    fs::write(wt.join(".gitignore"), "*.log\n").expect("write");
    fs::remove_file(wt.join("f.txt")).expect("rm");
    // Names git would read as pathspec magic or patterns, and one in a new folder.
    for name in [":(glob)x", "*", "a b.txt", "new/dir/deep.txt"] {
        let p = wt.join(name);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, name).expect("write");
    }
    fs::write(wt.join("build.log"), "ignored").expect("write");
    let c = repo
        .commit_all(&wt, "A", "a@x", "c\n\nOrch-Task: c\nOrch-Attempt: 1")
        .expect("commit")
        .expect("a change");
    let listed = git(repo.root(), &["ls-tree", "-r", "--name-only", "-z", &c]);
    let mut names: Vec<&str> = listed.split('\0').filter(|n| !n.is_empty()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["*", ".gitignore", ":(glob)x", "a b.txt", "new/dir/deep.txt"]
    );
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
}
