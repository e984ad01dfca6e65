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
use orch_tui::core::supervisor::{Collect, Tidy};
use orch_tui::engine::real_git::RealGit;
use orch_tui::engine::world::GitOps;
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
    if let Some(tip) = &change.tip {
        merge = match g.replay_onto(&base, tip, &onto).unwrap() {
            Replay::Clean { tip: new } => {
                let moved = g
                    .cas_update_ref("refs/heads/orch/integration", &new, &onto)
                    .unwrap();
                g.tidy(&Tidy {
                    task: "t".into(),
                    n: Some(AttemptNo(1)),
                    worktree: path.clone(),
                    branch: "orch/t".into(),
                    merged: Some((new.clone(), tip.clone())),
                })
                .unwrap();
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
