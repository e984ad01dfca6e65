//! The simulator's fake git (tests/sim_support/fake_git.rs) held to real git: the same scripted
//! operations — worktrees, an agent's edits and commits and branches, collecting the change,
//! replaying onto a moved tip, moving the branch, tidying up — run on both, through the same
//! `GitOps` interface the executor uses, and what a user would see is compared: which files each
//! tree holds, whether a replay conflicts and on what, which branches remain, what was reported.

mod common;
mod sim_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::git;
use orch_tui::core::domain::{AttemptId, AttemptNo};
use orch_tui::core::supervisor::{
    CheckOutcome, Collect, Event, MoveOutcome, SyncOutcome, SyncPrep, Tidy,
};
use orch_tui::engine::jobs::{self, JobCtx};
use orch_tui::engine::real_git::RealGit;
use orch_tui::engine::world::{Agents, BranchAt, Checks, GitOps, Incoming, Launch, Sink, Stale};
use orch_tui::git::{Replay, Repo};
use sim_support::fake_git::{FakeGit, Files, Repo as FakeRepo};

/// What an agent does in its worktree.
#[derive(Clone, Copy, Debug)]
enum Agent {
    /// Leaves `path` written, uncommitted.
    Leaves(&'static str, &'static str),
    /// Writes `path` and commits it itself.
    Commits(&'static str, &'static str),
    /// Makes a branch, commits `path` there; `back`: switches back to the task branch.
    Branches(&'static str, &'static str, &'static str, bool),
    Nothing,
}

/// One side of the comparison: real git in a temporary repository, or the fake.
trait Side {
    fn ops(&self) -> &dyn GitOps;
    fn act(&self, worktree: &str, agent: Agent);
    /// Every file of a commit, with its content.
    fn tree(&self, rev: &str) -> Files;
    fn branches(&self) -> BTreeSet<String>;
    fn backups(&self) -> usize;
    fn has_worktree(&self, path: &str) -> bool;
    /// A commit on `main` writing `path` (on top of `parent` first, fast-forwarding `main` to
    /// it: a pull request of it merged upstream).
    fn upstream(&self, parent: Option<&str>, path: &str, content: &str);
    fn git(&self) -> Arc<dyn GitOps>;
}

struct Real {
    _tmp: tempfile::TempDir,
    root: String,
    git: RealGit,
}

impl Real {
    fn new() -> Real {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap().join("r");
        std::fs::create_dir(&root).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("README.md"), "scratch").unwrap();
        git(&root, &["add", "-A"]);
        commit(&root, "initial");
        git(&root, &["branch", "orch/integration"]);
        let repo = Repo::open(&root).unwrap();
        let worktrees = root.join(".orch/worktrees").to_string_lossy().to_string();
        Real {
            _tmp: tmp,
            root: root.to_string_lossy().to_string(),
            git: RealGit {
                repo,
                worktrees_dir: worktrees,
                // As the engine runs it: finished worktrees parked and reused.
                pool: Some(RealGit::default_pool(2, &Default::default())),
            },
        }
    }
}

fn commit(dir: &Path, msg: &str) {
    git(
        dir,
        &[
            "-c",
            "user.name=Agent",
            "-c",
            "user.email=agent@example.com",
            "commit",
            "-qm",
            msg,
        ],
    );
}

impl Side for Real {
    fn ops(&self) -> &dyn GitOps {
        &self.git
    }
    fn act(&self, worktree: &str, agent: Agent) {
        let wt = Path::new(worktree);
        let write = |p: &str, c: &str| {
            let f = wt.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, c).unwrap();
        };
        match agent {
            Agent::Leaves(p, c) => write(p, c),
            Agent::Commits(p, c) => {
                write(p, c);
                git(wt, &["add", "-A"]);
                commit(wt, "agent's own");
            }
            Agent::Branches(b, p, c, back) => {
                git(wt, &["checkout", "-q", "-b", b]);
                write(p, c);
                git(wt, &["add", "-A"]);
                commit(wt, "agent's branch");
                if back {
                    git(wt, &["checkout", "-q", "-"]);
                }
            }
            Agent::Nothing => {}
        }
    }
    fn tree(&self, rev: &str) -> Files {
        let root = Path::new(&self.root);
        git(root, &["ls-tree", "-r", "--name-only", rev])
            .lines()
            .map(|p| {
                let c = git(root, &["show", &format!("{rev}:{p}")]);
                (p.to_string(), c)
            })
            .collect()
    }
    fn branches(&self) -> BTreeSet<String> {
        git(
            Path::new(&self.root),
            &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
        )
        .lines()
        .map(String::from)
        .collect()
    }
    fn backups(&self) -> usize {
        git(
            Path::new(&self.root),
            &["for-each-ref", "--format=%(refname)", "refs/orch/backup/"],
        )
        .lines()
        .count()
    }
    fn has_worktree(&self, path: &str) -> bool {
        Path::new(path).exists()
    }
    fn upstream(&self, parent: Option<&str>, path: &str, content: &str) {
        let root = Path::new(&self.root);
        if let Some(p) = parent {
            git(root, &["merge", "-q", "--ff-only", p]);
        }
        std::fs::write(root.join(path), content).unwrap();
        git(root, &["add", "--", path]);
        commit(root, "upstream");
    }
    fn git(&self) -> Arc<dyn GitOps> {
        Arc::new(RealGit {
            repo: Repo::open(Path::new(&self.root)).unwrap(),
            worktrees_dir: format!("{}/.orch/worktrees", self.root),
            pool: Some(RealGit::default_pool(2, &Default::default())),
        })
    }
}

struct Fake {
    git: FakeGit,
    root: String,
}

impl Fake {
    fn new(root: &str) -> Fake {
        let mut files = Files::new();
        files.insert("README.md".into(), "scratch".into());
        let mut repo = FakeRepo::new(files);
        let main = repo.refs["refs/heads/main"].clone();
        repo.refs.insert("refs/heads/orch/integration".into(), main);
        Fake {
            git: FakeGit {
                repo: Arc::new(Mutex::new(repo)),
                worktrees_dir: format!("{root}/.orch/worktrees"),
            },
            root: root.to_string(),
        }
    }
}

impl Side for Fake {
    fn ops(&self) -> &dyn GitOps {
        &self.git
    }
    fn act(&self, worktree: &str, agent: Agent) {
        let mut r = self.git.lock();
        let mut wt = r.worktrees[worktree].clone();
        match agent {
            Agent::Leaves(p, c) => {
                wt.files.insert(p.into(), c.into());
            }
            Agent::Commits(p, c) => {
                wt.files.insert(p.into(), c.into());
                let id = r.commit(vec![wt.head.clone()], wt.files.clone(), None, "agent's own");
                wt.head = id.clone();
                if let Some(b) = &wt.branch {
                    r.refs.insert(b.clone(), id);
                }
            }
            Agent::Branches(b, p, c, back) => {
                let name = format!("refs/heads/{b}");
                let was = wt.branch.clone();
                wt.visited.insert(name.clone());
                wt.files.insert(p.into(), c.into());
                let id = r.commit(
                    vec![wt.head.clone()],
                    wt.files.clone(),
                    None,
                    "agent's branch",
                );
                r.refs.insert(name.clone(), id.clone());
                wt.branch = Some(name);
                wt.head = id;
                if back && let Some(was) = was {
                    let head = r.refs[&was].clone();
                    wt.files = r.commits[&head].files.clone();
                    wt.head = head;
                    wt.branch = Some(was);
                }
            }
            Agent::Nothing => {}
        }
        r.worktrees.insert(worktree.into(), wt);
    }
    fn tree(&self, rev: &str) -> Files {
        let r = self.git.lock();
        let oid = r.resolve(rev).unwrap();
        r.commits[&oid].files.clone()
    }
    fn branches(&self) -> BTreeSet<String> {
        self.git
            .lock()
            .refs
            .keys()
            .filter_map(|k| k.strip_prefix("refs/heads/").map(String::from))
            .collect()
    }
    fn backups(&self) -> usize {
        self.git
            .lock()
            .refs
            .keys()
            .filter(|k| k.starts_with("refs/orch/backup/"))
            .count()
    }
    fn has_worktree(&self, path: &str) -> bool {
        self.git.lock().worktrees.contains_key(path)
    }
    fn upstream(&self, parent: Option<&str>, path: &str, content: &str) {
        let mut r = self.git.lock();
        let parent = match parent {
            Some(p) => r.resolve(p).unwrap(),
            None => r.refs["refs/heads/main"].clone(),
        };
        let mut files = r.commits[&parent].files.clone();
        files.insert(path.into(), content.into());
        let c = r.commit(vec![parent], files, None, "upstream");
        r.refs.insert("refs/heads/main".into(), c);
    }
    fn git(&self) -> Arc<dyn GitOps> {
        Arc::new(self.git.clone())
    }
}

/// What a user would notice of one scripted attempt and its merge.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    changed: bool,
    diff_lines: u64,
    agent_committed: bool,
    strays: Vec<(String, bool)>,
    change_tree: Option<BTreeMap<String, String>>,
    merge: String,
    integration: BTreeMap<String, String>,
    branches: BTreeSet<String>,
    backups: usize,
    worktree_left: bool,
    /// The task branch against the integration tip: before the merge, after the move, after
    /// the tidy.
    against: Vec<&'static str>,
}

/// `GitOps::branch_against` without the commit ids (each side makes its own).
fn against(g: &dyn GitOps, onto: &str) -> &'static str {
    match g.branch_against("refs/heads/orch/t", onto).unwrap() {
        BranchAt::Missing => "missing",
        BranchAt::InOnto => "in onto",
        BranchAt::Tip(_) => "ahead",
    }
}

/// One attempt of task `t` on `side`, after `other` (another task's change, already on the
/// integration branch: a moved tip) — then collect, replay, move, tidy.
fn script(
    side: &dyn Side,
    root: &str,
    agent: Agent,
    other: Option<(&'static str, &'static str)>,
) -> Seen {
    let g = side.ops();
    let base = g.rev_parse("refs/heads/orch/integration").unwrap().unwrap();
    let path = format!("{root}/.orch/worktrees/t-1");
    let before = g.branch_names().unwrap();
    g.prepare_worktree(&path, "orch/t", &base, "refs/orch/backup/t")
        .unwrap();
    side.act(&path, agent);
    let c = Collect {
        attempt: AttemptId(1),
        task: "t".into(),
        n: AttemptNo(1),
        worktree: path.clone(),
        branch: "orch/t".into(),
        base: base.clone(),
        author_name: "Sim Agent".into(),
        author_email: "sim@orch.invalid".into(),
        message: "Task t\n\nOrch-Task: t\nOrch-Attempt: 1\n".into(),
    };
    let change = g.collect(&c, &before).unwrap();
    // Meanwhile another task lands on the integration branch.
    let mut onto = base.clone();
    if let Some((p, content)) = other {
        let other_path = format!("{root}/.orch/worktrees/o-1");
        g.prepare_worktree(&other_path, "orch/o", &base, "refs/orch/backup/o")
            .unwrap();
        side.act(&other_path, Agent::Commits(p, content));
        let tip = g.rev_parse("refs/heads/orch/o").unwrap().unwrap();
        assert!(
            g.cas_update_ref("refs/heads/orch/integration", &tip, &base)
                .unwrap()
        );
        onto = tip;
    }
    let mut merge = "nothing".to_string();
    let mut seen_against = vec![against(g, &onto)];
    if let Some(tip) = &change.tip {
        merge = match g.replay_onto(&base, tip, &onto).unwrap() {
            Replay::Clean { tip: new } => {
                let moved = g
                    .cas_update_ref("refs/heads/orch/integration", &new, &onto)
                    .unwrap();
                seen_against.push(against(g, &new));
                g.tidy(&Tidy {
                    task: "t".into(),
                    n: Some(AttemptNo(1)),
                    worktree: path.clone(),
                    branch: "orch/t".into(),
                    merged: Some((new.clone(), tip.clone())),
                })
                .unwrap();
                seen_against.push(against(g, &new));
                format!("clean, moved: {moved}")
            }
            Replay::Conflict { files } => format!("conflict on {files:?}"),
        };
    }
    Seen {
        changed: change.tip.is_some(),
        diff_lines: change.diff_lines,
        agent_committed: change.agent_committed,
        strays: change
            .strays
            .iter()
            .map(|s| (s.branch.clone(), s.adopted))
            .collect(),
        change_tree: change.tip.as_ref().map(|t| side.tree(t)),
        merge,
        integration: side.tree("refs/heads/orch/integration"),
        branches: side.branches(),
        backups: side.backups(),
        worktree_left: side.has_worktree(&path),
        against: seen_against,
    }
}

#[test]
fn the_fake_git_answers_as_real_git_does() {
    type Case = (&'static str, Agent, Option<(&'static str, &'static str)>);
    let cases: Vec<Case> = vec![
        ("uncommitted work", Agent::Leaves("a.txt", "a"), None),
        ("the agent's own commit", Agent::Commits("a.txt", "a"), None),
        (
            "a branch, switched back",
            Agent::Branches("feat", "b.txt", "b", true),
            None,
        ),
        (
            "a branch, stayed on",
            Agent::Branches("feat", "b.txt", "b", false),
            None,
        ),
        ("nothing at all", Agent::Nothing, None),
        (
            "replayed onto a moved tip",
            Agent::Leaves("a.txt", "a"),
            Some(("o.txt", "o")),
        ),
        (
            "a conflict with the moved tip",
            Agent::Commits("shared.txt", "mine"),
            Some(("shared.txt", "theirs")),
        ),
    ];
    let mut differ = Vec::new();
    for (name, agent, other) in cases {
        let real = Real::new();
        let root = real.root.clone();
        let fake = Fake::new(&root);
        let r = script(&real, &root, agent, other);
        let f = script(&fake, &fake.root, agent, other);
        if r != f {
            differ.push(format!("{name}:\n  real: {r:?}\n  fake: {f:?}"));
        }
    }
    assert!(
        differ.is_empty(),
        "the fake differs from git:\n{}",
        differ.join("\n")
    );
}

/// How the base moved upstream before a sync.
#[derive(Clone, Copy, Debug)]
enum Upstream {
    /// A commit of its own, writing this file.
    Commit(&'static str, &'static str),
    /// The integration branch's pull request merged, and a commit on top.
    PullRequestMerged,
    /// Nothing.
    Still,
}

/// No agent runs in these scripts.
struct NoAgents;

impl Agents for NoAgents {
    fn spawn(
        &self,
        _: Launch,
        _: Sink,
    ) -> Result<Box<dyn orch_tui::engine::world::AgentProc>, String> {
        Err("no agents here".into())
    }
    fn reap_stale(&self, _: &Stale) {}
}

/// Checks that pass, or fail with a tail.
struct FixedChecks(bool);

impl Checks for FixedChecks {
    fn run(&self, _dir: &str, commands: &[String], _log: &str) -> Vec<CheckOutcome> {
        commands
            .iter()
            .map(|c| CheckOutcome {
                command: c.clone(),
                passed: self.0,
                exit_code: Some(if self.0 { 0 } else { 1 }),
                timed_out: false,
                duration_ms: 1,
                tail: if self.0 { String::new() } else { "boom".into() },
            })
            .collect()
    }
}

/// Two tasks land on the integration branch, the base moves, then the sync's own jobs (the ones
/// the executor runs) replay the branch onto it and move it; what a user would see of it.
fn sync_script(side: &dyn Side, root: &str, up: Upstream, checks_pass: bool) -> String {
    let g = side.ops();
    let integration = "refs/heads/orch/integration";
    let base = g.rev_parse(integration).unwrap().unwrap();
    let mut tip = base.clone();
    for (task, file) in [("t1", "a.txt"), ("t2", "b.txt")] {
        let path = format!("{root}/.orch/worktrees/{task}-1");
        let branch = format!("orch/{task}");
        g.prepare_worktree(&path, &branch, &tip, &format!("refs/orch/backup/{task}"))
            .unwrap();
        side.act(&path, Agent::Commits(file, task));
        let commit = g
            .rev_parse(&format!("refs/heads/{branch}"))
            .unwrap()
            .unwrap();
        let Replay::Clean { tip: new } = g.replay_onto(&tip, &commit, &tip).unwrap() else {
            panic!("{task} conflicts");
        };
        assert!(g.cas_update_ref(integration, &new, &tip).unwrap());
        tip = new;
    }
    match up {
        Upstream::Commit(path, content) => side.upstream(None, path, content),
        Upstream::PullRequestMerged => side.upstream(Some(integration), "after.txt", "after"),
        Upstream::Still => {}
    }
    let onto = g.rev_parse("refs/heads/main").unwrap().unwrap();
    let ctx = JobCtx {
        git: side.git(),
        agents: Arc::new(NoAgents),
        checks: Arc::new(FixedChecks(checks_pass)),
        sink: Arc::new(|_: Incoming| {}),
    };
    let prep = SyncPrep {
        refname: "refs/heads/main".into(),
        base: Some(base),
        onto,
        from: tip.clone(),
        checks: vec!["make check".into()],
        log: format!("{root}/sync-checks.log"),
    };
    let scratch = format!("{root}/.orch/worktrees/_recheck");
    let Incoming::Event(Event::SyncPrepared { result, .. }) =
        jobs::sync_job(&ctx, prep, scratch, Default::default())()
    else {
        panic!("the sync job answers SyncPrepared");
    };
    let said = match result {
        SyncOutcome::Ready { tip: new, .. } => {
            let job = jobs::sync_move_job(&ctx, integration.into(), new.clone(), tip.clone());
            let Incoming::Event(Event::SyncMoved { result, .. }) = job() else {
                panic!("the move job answers SyncMoved");
            };
            // The replayed commits keep their messages (their trailers) and authors.
            format!(
                "ready, {}; main under it: {}; tree {:?}",
                match result {
                    MoveOutcome::Moved => "moved".to_string(),
                    other => format!("{other:?}"),
                },
                g.is_ancestor("refs/heads/main", integration).unwrap(),
                side.tree(integration)
            )
        }
        SyncOutcome::Conflict { files } => format!("conflict on {files:?}"),
        SyncOutcome::ChecksFailed { results } => format!("checks failed: {}", results[0].tail),
        SyncOutcome::UpToDate => "up to date".into(),
        SyncOutcome::Failed(f) => format!("failed: {}", f.message),
    };
    format!("{said}; branches {:?}", side.branches())
}

#[test]
fn the_fake_git_syncs_as_real_git_does() {
    let cases: Vec<(&str, Upstream, bool)> = vec![
        ("a commit upstream", Upstream::Commit("up.txt", "up"), true),
        (
            "a commit upstream that conflicts with a merged task",
            Upstream::Commit("a.txt", "theirs"),
            true,
        ),
        (
            "a check failing on the replayed branch",
            Upstream::Commit("up.txt", "up"),
            false,
        ),
        (
            "the pull request merged upstream",
            Upstream::PullRequestMerged,
            true,
        ),
        ("nothing moved", Upstream::Still, true),
    ];
    let mut differ = Vec::new();
    for (name, up, pass) in cases {
        let real = Real::new();
        let root = real.root.clone();
        let fake = Fake::new(&root);
        let r = sync_script(&real, &root, up, pass);
        let f = sync_script(&fake, &fake.root, up, pass);
        eprintln!("{name}: {r}");
        if r != f {
            differ.push(format!("{name}:\n  real: {r}\n  fake: {f}"));
        }
    }
    assert!(
        differ.is_empty(),
        "the fake differs from git:\n{}",
        differ.join("\n")
    );
}
