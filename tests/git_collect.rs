//! `Repo::collect_attempt` on real repositories: an agent's own commits are its change, on the
//! task branch, on a branch it made, on a detached HEAD; branches it made are removed and
//! reported; no commit is ever lost.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

mod common;

use common::git;
use common::scratch::{agent_commit, fixture, oid, wt_path};
use orch_tui::git::{
    AttemptChange, ChangeSource, Collect, Pool, Repo, Stray, Taken, backup_ref_name,
};

const TASK: &str = "t";
const BRANCH: &str = "orch/t";
const MESSAGE: &str = "Task t\n\nOrch-Task: t\nOrch-Attempt: 1\n";

/// One attempt of task `t`, set up as the engine does: branches listed, then the worktree.
struct Attempt {
    repo: Repo,
    wt: PathBuf,
    base: String,
    before: BTreeSet<String>,
}

impl Attempt {
    fn start(repo: &Repo) -> Attempt {
        let base = oid(repo, "main");
        let before = repo.branch_names().expect("branch names");
        let wt = wt_path(repo, "t-1");
        repo.create_worktree(&wt, BRANCH, &base, &backup_ref_name(TASK, 1))
            .expect("create worktree");
        Attempt {
            repo: repo.clone(),
            wt,
            base,
            before,
        }
    }

    /// Runs git in the worktree, as the agent would.
    fn agent(&self, args: &[&str]) -> String {
        git(&self.wt, args)
    }

    fn collect(&self) -> AttemptChange {
        self.repo
            .collect_attempt(&Collect {
                worktree: &self.wt,
                task: TASK,
                attempt: 1,
                task_branch: BRANCH,
                base: &self.base,
                branches_before: &self.before,
                author_name: "Sim Agent",
                author_email: "sim@orch.invalid",
                message: MESSAGE,
            })
            .expect("collect")
    }

    /// The worktree is on the task branch, at `tip`, with nothing uncommitted.
    fn assert_settled_at(&self, tip: &str) {
        assert_eq!(self.agent(&["symbolic-ref", "HEAD"]), "refs/heads/orch/t");
        assert_eq!(oid(&self.repo, BRANCH), tip);
        assert_eq!(self.agent(&["status", "--porcelain"]), "");
    }
}

/// No commit is unreachable from every branch and backup ref.
fn assert_kept(repo: &Repo, commits: &[&str]) {
    for c in commits {
        let lost = git(
            repo.root(),
            &[
                "rev-list",
                c,
                "--not",
                "--branches",
                "--glob=refs/orch/backup/",
            ],
        );
        assert_eq!(lost, "", "commit {c} is kept by no branch and no backup");
    }
}

fn backups(repo: &Repo) -> Vec<String> {
    repo.backups()
        .expect("backups")
        .into_iter()
        .map(|b| b.name)
        .collect()
}

fn branches(repo: &Repo) -> Vec<String> {
    repo.branch_names().expect("names").into_iter().collect()
}

#[test]
fn own_commit_on_the_task_branch_is_the_change() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    let c = agent_commit(&a.wt, "a.txt", "a\n", "agent's own commit");
    let got = a.collect();
    assert_eq!(got.tip.as_deref(), Some(c.as_str()));
    assert_eq!(got.source, ChangeSource::TaskBranch);
    assert_eq!(got.agent_commits, 1);
    assert_eq!(got.committed_for_agent, None);
    assert_eq!(got.strays, vec![]);
    a.assert_settled_at(&c);
    assert_eq!(backups(&repo), Vec::<String>::new());
}

#[test]
fn a_new_branch_the_agent_stayed_on_is_the_change() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    a.agent(&["checkout", "-q", "-b", "feature"]);
    let c = agent_commit(&a.wt, "a.txt", "a\n", "on my own branch");
    let got = a.collect();
    assert_eq!(got.tip.as_deref(), Some(c.as_str()));
    assert_eq!(got.source, ChangeSource::SwitchedBranch("feature".into()));
    assert_eq!(
        got.strays,
        vec![Stray {
            branch: Some("feature".into()),
            tip: c.clone(),
            backup_ref: None,
            adopted: true,
        }]
    );
    a.assert_settled_at(&c);
    assert_eq!(branches(&repo), ["main", "orch/t"]);
}

#[test]
fn switching_away_keeps_the_task_branch_commits_in_a_backup() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    let first = agent_commit(&a.wt, "a.txt", "a\n", "on the task branch");
    a.agent(&["checkout", "-q", "-b", "other", &a.base]);
    let second = agent_commit(&a.wt, "b.txt", "b\n", "started over elsewhere");
    let got = a.collect();
    assert_eq!(got.tip.as_deref(), Some(second.as_str()));
    let kept = got
        .task_branch_backup
        .expect("task branch commits backed up");
    assert_eq!(oid(&repo, &kept), first);
    a.assert_settled_at(&second);
    assert_kept(&repo, &[&first, &second]);
}

#[test]
fn a_branch_made_then_left_is_adopted_when_the_task_branch_is_empty() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    a.agent(&["checkout", "-q", "-b", "feature"]);
    let c = agent_commit(&a.wt, "a.txt", "a\n", "on my own branch");
    a.agent(&["checkout", "-q", BRANCH]);
    assert!(!a.wt.join("a.txt").exists());
    let got = a.collect();
    assert_eq!(got.tip.as_deref(), Some(c.as_str()));
    assert_eq!(got.source, ChangeSource::Adopted("feature".into()));
    assert_eq!(got.agent_commits, 1);
    assert!(got.strays[0].adopted);
    a.assert_settled_at(&c);
    // The worktree now holds the adopted work (checks run there).
    assert_eq!(fs::read_to_string(a.wt.join("a.txt")).expect("read"), "a\n");
    assert_eq!(branches(&repo), ["main", "orch/t"]);
}

#[test]
fn a_stray_branch_beside_real_work_is_backed_up_and_reported() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    a.agent(&["checkout", "-q", "-b", "wip/try"]);
    let stray = agent_commit(&a.wt, "s.txt", "s\n", "an experiment");
    a.agent(&["checkout", "-q", BRANCH]);
    fs::write(a.wt.join("real.txt"), "real\n").expect("write");
    let got = a.collect();
    let ours = got
        .committed_for_agent
        .clone()
        .expect("committed for the agent");
    assert_eq!(got.tip.as_ref(), Some(&ours));
    assert_eq!(got.source, ChangeSource::TaskBranch);
    assert_eq!(got.agent_commits, 0);
    assert_eq!(got.strays.len(), 1);
    let s = &got.strays[0];
    assert_eq!(s.branch.as_deref(), Some("wip/try"));
    assert!(!s.adopted);
    let kept = s.backup_ref.as_deref().expect("a backup");
    assert_eq!(kept, "refs/orch/backup/t/1-stray-wip-try");
    assert_eq!(oid(&repo, kept), stray);
    assert_eq!(branches(&repo), ["main", "orch/t"]);
    a.assert_settled_at(&ours);
}

#[test]
fn a_detached_head_is_the_change() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    a.agent(&["checkout", "-q", "--detach"]);
    let c = agent_commit(&a.wt, "d.txt", "d\n", "detached work");
    let got = a.collect();
    assert_eq!(got.tip.as_deref(), Some(c.as_str()));
    assert_eq!(got.source, ChangeSource::Detached);
    assert_eq!(got.strays, vec![]);
    a.assert_settled_at(&c);
}

#[test]
fn commits_left_on_a_detached_head_are_kept() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    a.agent(&["checkout", "-q", "--detach"]);
    let c = agent_commit(&a.wt, "d.txt", "d\n", "detached work");
    a.agent(&["checkout", "-q", BRANCH]);
    let got = a.collect();
    // Not a branch: not adopted, but kept and reported.
    assert_eq!(got.tip, None);
    assert_eq!(got.source, ChangeSource::Nothing);
    assert_eq!(
        got.strays,
        vec![Stray {
            branch: None,
            tip: c.clone(),
            backup_ref: Some("refs/orch/backup/t/1-orphan".into()),
            adopted: false,
        }]
    );
    assert_kept(&repo, &[&c]);
}

#[test]
fn nothing_at_all_is_nothing() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    let got = a.collect();
    assert_eq!(
        got,
        AttemptChange {
            tip: None,
            source: ChangeSource::Nothing,
            agent_commits: 0,
            committed_for_agent: None,
            task_branch_backup: None,
            strays: vec![],
        }
    );
    a.assert_settled_at(&a.base);
    assert_eq!(backups(&repo), Vec::<String>::new());
}

#[test]
fn uncommitted_work_goes_on_top_of_the_agents_commits() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    let own = agent_commit(&a.wt, "a.txt", "a\n", "agent's own commit");
    fs::write(a.wt.join("left.txt"), "left over\n").expect("write");
    let got = a.collect();
    let ours = got.committed_for_agent.clone().expect("committed");
    assert_eq!(got.tip.as_ref(), Some(&ours));
    assert_eq!(got.agent_commits, 1);
    assert_eq!(git(repo.root(), &["rev-parse", &format!("{ours}^")]), own);
    let log = git(repo.root(), &["log", "-1", "--format=%an <%ae>|%B", &ours]);
    assert!(
        log.starts_with("Sim Agent <sim@orch.invalid>|Task t"),
        "{log}"
    );
    assert!(log.contains("Orch-Task: t\nOrch-Attempt: 1"), "{log}");
    a.assert_settled_at(&ours);
}

#[test]
fn uncommitted_work_on_a_switched_branch_never_lands_on_that_branch() {
    let (_t, repo) = fixture();
    // A branch of the user's that the agent switches to (it existed before the attempt).
    git(repo.root(), &["branch", "topic"]);
    let a = Attempt::start(&repo);
    a.agent(&["checkout", "-q", "topic"]);
    fs::write(a.wt.join("left.txt"), "left over\n").expect("write");
    let got = a.collect();
    let ours = got.committed_for_agent.clone().expect("committed");
    assert_eq!(got.tip.as_ref(), Some(&ours));
    assert_eq!(got.source, ChangeSource::SwitchedBranch("topic".into()));
    // The user's branch is where it was, and not reported as the agent's.
    assert_eq!(oid(&repo, "topic"), a.base);
    assert_eq!(got.strays, vec![]);
    a.assert_settled_at(&ours);
}

#[test]
fn branches_made_elsewhere_during_the_attempt_are_left_alone() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    // The user works in their own checkout meanwhile: a branch with a commit, then back.
    git(repo.root(), &["checkout", "-q", "-b", "user-topic"]);
    let user = agent_commit(repo.root(), "u.txt", "u\n", "the user's work");
    git(repo.root(), &["checkout", "-q", "main"]);
    git(repo.root(), &["branch", "user-mark"]);
    let c = agent_commit(&a.wt, "a.txt", "a\n", "agent work");
    let got = a.collect();
    assert_eq!(got.tip.as_deref(), Some(c.as_str()));
    assert_eq!(got.strays, vec![]);
    assert_eq!(oid(&repo, "user-topic"), user);
    assert_eq!(
        branches(&repo),
        ["main", "orch/t", "user-mark", "user-topic"]
    );
}

#[test]
fn several_stray_branches_on_one_line_adopt_the_furthest() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    a.agent(&["checkout", "-q", "-b", "step1"]);
    let c1 = agent_commit(&a.wt, "a.txt", "a\n", "step 1");
    a.agent(&["checkout", "-q", "-b", "step2"]);
    let c2 = agent_commit(&a.wt, "b.txt", "b\n", "step 2");
    a.agent(&["checkout", "-q", BRANCH]);
    let got = a.collect();
    assert_eq!(got.tip.as_deref(), Some(c2.as_str()));
    assert_eq!(got.source, ChangeSource::Adopted("step2".into()));
    assert_eq!(got.agent_commits, 2);
    assert!(
        got.strays
            .iter()
            .all(|s| s.adopted && s.backup_ref.is_none())
    );
    assert_kept(&repo, &[&c1, &c2]);
    a.assert_settled_at(&c2);
}

#[test]
fn diverging_stray_branches_are_all_kept_and_none_adopted() {
    let (_t, repo) = fixture();
    let a = Attempt::start(&repo);
    a.agent(&["checkout", "-q", "-b", "left"]);
    let l = agent_commit(&a.wt, "l.txt", "l\n", "left");
    a.agent(&["checkout", "-q", "-b", "right", &a.base]);
    let r = agent_commit(&a.wt, "r.txt", "r\n", "right");
    a.agent(&["checkout", "-q", BRANCH]);
    let got = a.collect();
    assert_eq!(got.tip, None);
    assert_eq!(got.strays.len(), 2);
    assert!(
        got.strays
            .iter()
            .all(|s| !s.adopted && s.backup_ref.is_some())
    );
    assert_kept(&repo, &[&l, &r]);
    assert_eq!(branches(&repo), ["main", "orch/t"]);
}

/// Collects attempt 1 of `task` in `wt` (taken from a pool or made by hand).
fn collect_in(repo: &Repo, wt: &std::path::Path, task: &str, base: &str) -> AttemptChange {
    let before: BTreeSet<String> = ["main".to_string()].into();
    let branch = format!("orch/{task}");
    repo.collect_attempt(&Collect {
        worktree: wt,
        task,
        attempt: 1,
        task_branch: &branch,
        base,
        branches_before: &before,
        author_name: "Sim Agent",
        author_email: "sim@orch.invalid",
        message: MESSAGE,
    })
    .expect("collect")
}

#[test]
fn a_reused_worktree_reports_only_this_attempts_strays() {
    let (_t, repo) = fixture();
    let base = oid(&repo, "main");
    let pool = Pool {
        dir: PathBuf::from(".orch/pool"),
        reuse: vec![],
        max_idle: 1,
        keep_idle: 0,
    };
    // Attempt a leaves a commit on a detached HEAD: kept as its orphan.
    let wa = wt_path(&repo, "a-1");
    repo.take_worktree(&pool, &wa, "orch/a", &base, &backup_ref_name("a", 1))
        .expect("take");
    git(&wa, &["checkout", "-q", "--detach"]);
    let left = agent_commit(&wa, "a.txt", "a\n", "left behind by a");
    git(&wa, &["checkout", "-q", "orch/a"]);
    let got = collect_in(&repo, &wa, "a", &base);
    assert_eq!(got.strays.len(), 1, "{got:?}");
    assert_eq!(got.strays[0].tip, left);
    repo.give_back_worktree(&pool, &wa, &backup_ref_name("a", 1))
        .expect("give back");
    // The user drops a's backups; only the pooled worktree's old reflog still names the commit.
    for b in repo.backups().expect("backups") {
        repo.drop_backup(&b).expect("drop");
    }

    // Attempt b gets that worktree: what a visited is not b's, b's own orphan still is.
    let wb = wt_path(&repo, "b-1");
    let taken = repo
        .take_worktree(&pool, &wb, "orch/b", &base, &backup_ref_name("b", 1))
        .expect("take again");
    assert_eq!(taken, Taken::Reused);
    git(&wb, &["checkout", "-q", "--detach"]);
    let own = agent_commit(&wb, "b.txt", "b\n", "left behind by b");
    git(&wb, &["checkout", "-q", "orch/b"]);
    fs::write(wb.join("c.txt"), "b's change\n").expect("write");
    let got = collect_in(&repo, &wb, "b", &base);
    assert!(got.tip.is_some());
    assert_eq!(got.agent_commits, 0);
    let orphans: Vec<&str> = got.strays.iter().map(|s| s.tip.as_str()).collect();
    assert_eq!(orphans, [own.as_str()], "only b's own commit is b's stray");
    assert_eq!(backups(&repo), ["refs/orch/backup/b/1-orphan"]);
}
