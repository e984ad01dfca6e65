//! What the executor needs from the world, as traits: the ledger (`Store`), git (`GitOps`), agent
//! processes (`Agents`), check commands (`Checks`) and where events come from and when
//! (`Runtime`). A run plugs in the real ones (`real.rs`); the simulator plugs in fakes — the
//! executor itself has one code path for both.

use std::time::Duration;

use crate::agent::screen::SharedScreen;
use crate::core::domain::AttemptId;
use crate::core::ops::Op;
use crate::core::supervisor::{Boot, CheckOutcome, Event, Observed, WorktreeFact};
use crate::git::{GitError, Replay};

/// A ledger write that did not land, by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// A row was not as the write expected: the world moved. Nothing changed.
    Conflict(String),
    /// The database is busy or the disk is full: wait and try again.
    Transient(String),
    /// Anything else: the supervisor cannot go on.
    Fatal(String),
}

/// The ledger as the executor uses it.
pub trait Store: Send {
    fn write(&mut self, ops: &[Op]) -> Result<(), WriteError>;
    /// Tasks, attempts, hold and recorded tip, as the supervisor needs them at start.
    fn boot(&mut self) -> Result<Boot, String>;
    /// Rows of these tasks (and their attempts) as they are now.
    fn rows(&mut self, tasks: &[String]) -> Result<Observed, String>;
    /// Tasks that other processes (agents' reports, human commands, plan loads) wrote since
    /// the last call; `true` in the second place when the run's hold may have changed.
    fn foreign_changes(&mut self) -> Result<(Vec<String>, bool), String>;
    /// The fencing secret of an attempt (for its environment).
    fn token(&mut self, attempt: AttemptId) -> Option<String>;
    /// "passed: `cmd`" lines of an attempt's checks, for its reviewer.
    fn check_summary(&mut self, task: &str, n: u32) -> String;
}

/// git, as the jobs use it.
pub trait GitOps: Send + Sync {
    fn rev_parse(&self, rev: &str) -> Result<Option<String>, GitError>;
    fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, GitError>;
    fn branch_names(&self) -> Result<Vec<String>, GitError>;
    /// Where the branch `refname` stands against `onto`: gone, already in it, or its tip.
    /// Real git answers in one call; this default, in two.
    fn branch_against(&self, refname: &str, onto: &str) -> Result<BranchAt, GitError> {
        Ok(match self.rev_parse(refname)? {
            None => BranchAt::Missing,
            Some(tip) if self.is_ancestor(&tip, onto)? => BranchAt::InOnto,
            Some(tip) => BranchAt::Tip(tip),
        })
    }
    /// A fresh worktree at `path` on `branch` from `base`, after retiring whatever an earlier
    /// attempt left holding the branch or the path (backed up under `backup_prefix`).
    fn prepare_worktree(
        &self,
        path: &str,
        branch: &str,
        base: &str,
        backup_prefix: &str,
    ) -> Result<(), GitError>;
    /// `prepare_worktree`, and the branch names as `branch_names` gives them, listed while the
    /// worktree is made (both are needed before the agent starts; neither waits on the other).
    /// None: not listed here; ask `branch_names`.
    fn prepare_worktree_listing(
        &self,
        path: &str,
        branch: &str,
        base: &str,
        backup_prefix: &str,
    ) -> Result<Option<Vec<String>>, GitError> {
        self.prepare_worktree(path, branch, base, backup_prefix)
            .map(|_| None)
    }
    /// Commit what the agent left; the change past `base` (see `core::supervisor::Change`).
    fn collect(
        &self,
        job: &crate::core::supervisor::Collect,
        branches_before: &[String],
    ) -> Result<crate::core::supervisor::Change, GitError>;
    fn replay_onto(&self, base: &str, commit: &str, onto: &str) -> Result<Replay, GitError>;
    fn merge_base(&self, a: &str, b: &str) -> Result<String, GitError>;
    /// Point the reusable re-check worktree at `rev`.
    fn checkout_scratch(&self, path: &str, rev: &str) -> Result<(), GitError>;
    fn drop_scratch(&self, path: &str) -> Result<(), GitError>;
    /// Remove the idle worktrees kept for reuse (the run settled or stopped: nothing will take
    /// them soon, and they are checkouts in the user's `git worktree list`), but the ones
    /// `[worktree] keep_idle` keeps for the next run. Nothing to do where worktrees are not
    /// pooled.
    fn trim_pool(&self) -> Result<(), GitError> {
        Ok(())
    }
    /// Whether worktrees are pooled (then `ready_pool` is worth a job).
    fn has_pool(&self) -> bool {
        false
    }
    /// Off the dispatch path, one step towards enough idle worktrees in the pool, `at_tip` of
    /// them checked out at `tip` (`git::Repo::ready_one`), so the next dispatches make no
    /// checkout. False: nothing was left to do.
    fn ready_pool(&self, _tip: &str, _at_tip: usize) -> Result<bool, GitError> {
        Ok(false)
    }
    /// Move `refname` from `old` to `new`; `Ok(false)` when it was not at `old`.
    fn cas_update_ref(&self, refname: &str, new: &str, old: &str) -> Result<bool, GitError>;
    fn backup_ref(&self, name: &str, oid: &str) -> Result<String, GitError>;
    /// Remove a finished attempt's worktree and branch; back up what would be lost.
    fn tidy(&self, t: &crate::core::supervisor::Tidy) -> Result<(), GitError>;
    fn diff(&self, base: &str, tip: &str) -> Result<String, GitError>;
    /// Worktrees under `.orch/worktrees/` (task and attempt number from their names).
    fn orch_worktrees(&self) -> Result<Vec<WorktreeFact>, GitError>;
}

/// A branch against the integration tip (`GitOps::branch_against`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchAt {
    Missing,
    /// Its tip is the integration tip or below it.
    InOnto,
    /// Its tip, which the integration tip lacks.
    Tip(String),
}

/// A running agent.
pub trait AgentProc: Send {
    fn pid(&self) -> u32;
    fn write(&self, bytes: Vec<u8>);
    fn resize(&self, rows: u16, cols: u16);
    /// TERM its whole tree, `grace`, then KILL; its exit is reported as usual.
    fn stop(&self, grace: Duration);
    /// Freeze (`true`) or thaw its whole tree, for a paused task; its exit is not reported
    /// while frozen, and a stop thaws it.
    fn freeze(&self, freeze: bool);
    fn screen(&self) -> Option<SharedScreen>;
}

/// How to start one agent process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub attempt: AttemptId,
    pub task: String,
    pub argv: Vec<String>,
    pub cwd: String,
    pub env: Vec<(String, String)>,
    pub log_dir: String,
    pub rotate_bytes: u64,
    /// The profile it runs under: which parser reads its output (`adapter::parser_for`).
    pub profile: crate::core::config::AgentProfile,
    /// A resumed Codex conversation's tokens before this attempt (its usage is cumulative).
    pub resumed_tokens: Option<crate::core::agent_event::Tokens>,
    /// Typed into an interactive agent once it is up (its prompt, when the argv has none).
    pub paste: Option<String>,
    /// An interactive agent's screen rules (empty: its screen is not watched).
    pub screen_rules: Vec<crate::core::screen_rules::ScreenRule>,
    /// The branches that existed before it ran: a holder keeps them for the supervisor that
    /// adopts the attempt (collecting its work tells the branches it made by them).
    pub branches_before: Vec<String>,
    /// The file the agent reads its prompt from, written by whoever starts the agent.
    pub prompt_file: Option<crate::agent::PromptFile>,
}

/// What an earlier supervisor may have left running: its attempts' agents (by recorded pid and
/// token), and any process of this ledger started under an earlier epoch (`ORCH_LEDGER` and
/// `ORCH_EPOCH` in its environment) — one whose pid was never recorded included.
#[derive(Debug, Clone, Default)]
pub struct Stale {
    pub agents: Vec<(Option<u32>, String)>,
    pub ledger: String,
    /// The current epoch: its own agents are never touched.
    pub epoch: i64,
    /// Tokens of adopted attempts: their processes carry an earlier epoch but are ours now.
    pub keep: Vec<String>,
}

/// Where a job or an agent reports back to the loop.
pub type Sink = std::sync::Arc<dyn Fn(Incoming) + Send + Sync>;

pub trait Agents: Send + Sync {
    /// Start it; its exit comes back later through `sink` as `Event::Exited`.
    fn spawn(&self, launch: Launch, sink: Sink) -> Result<Box<dyn AgentProc>, String>;
    /// Stop every process a previous supervisor left (by pid when it is still ours, and by
    /// the ledger's tokens in the environment of any process).
    fn reap_stale(&self, stale: &Stale);
    /// What the holder of attempt `_attempt` (an earlier supervisor's) holds now, for adoption
    /// at start (`None`: nothing that can be adopted; the in-process world never has anything).
    /// With the fact, the branches that existed before the agent ran (see `Launch`).
    fn probe(
        &self,
        _attempt: AttemptId,
    ) -> Option<(crate::core::supervisor::HolderFact, Vec<String>)> {
        None
    }
    /// Follow an earlier supervisor's agent that still runs in the holder of attempt `holder`
    /// (it answered `probe`); `launch` carries what the output is wired to (profile, screen
    /// rules, token), not argv; the answer's `branches` are those the holder kept from the
    /// spawn, `base` is empty.
    fn adopt(&self, _holder: AttemptId, _launch: Launch, _sink: Sink) -> Result<Spawned, String> {
        Err("agents of this kind cannot be adopted".into())
    }
}

pub trait Checks: Send + Sync {
    fn run(&self, dir: &str, commands: &[String], log: &str) -> Vec<CheckOutcome>;
}

/// Something for the executor's loop.
pub enum Incoming {
    /// A job finished; its result as the supervisor's event.
    Event(Event),
    /// A setup job finished: the process, or why not.
    Spawned {
        attempt: AttemptId,
        result: Result<Spawned, String>,
    },
    /// Another process wrote the ledger.
    Poke,
    /// The human's keys for an agent's pane.
    Input {
        attempt: AttemptId,
        bytes: Vec<u8>,
    },
    /// Keys orch-tui itself types into an agent (an answer, a turn's Enter, a stop's exit
    /// command), a moment after the ones before.
    Keys {
        attempt: AttemptId,
        bytes: Vec<u8>,
    },
    /// An interactive session asked to exit had its grace: if it still runs, TERM, grace,
    /// KILL.
    HardStop {
        attempt: AttemptId,
    },
    Resize {
        attempt: AttemptId,
        rows: u16,
        cols: u16,
    },
    Stop {
        stop_agents: bool,
    },
    /// End the run once everything is settled, as a headless run does (the TUI lost its
    /// terminal: nobody is left to approve or retry from it).
    EndWhenSettled,
    /// A merge being prepared will move the integration branch to `tip` if its re-check
    /// passes: the pool can start readying there (`pool_keeper`).
    TipComing {
        tip: String,
    },
    /// Nothing came before the deadline.
    Timeout,
}

/// An agent that a setup job started.
pub struct Spawned {
    pub process: Box<dyn AgentProc>,
    /// The commit its worktree started from.
    pub base: String,
    /// The branches that existed before it ran (to find the ones it leaves behind).
    pub branches: Vec<String>,
}

/// A job to run off the loop.
pub type Job = Box<dyn FnOnce() -> Incoming + Send>;

/// Where the loop's events come from, and the clock.
pub trait Runtime: Send {
    fn now_ms(&self) -> u64;
    /// Where jobs and agents report back.
    fn sink(&self) -> Sink;
    /// Run `job` (on a thread in a real run); its result comes back through `next`.
    fn spawn(&mut self, job: Job);
    /// Run `job` after `delay_ms` (keys typed a moment apart, a grace).
    fn spawn_after(&mut self, delay_ms: u64, job: Job) {
        self.spawn(Box::new(move || {
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            job()
        }));
    }
    /// The next incoming thing, or `Timeout` at `deadline_ms`.
    fn next(&mut self, deadline_ms: u64) -> Incoming;
    /// Wait `ms` without taking anything in (the ledger is busy; try again after).
    fn pause(&mut self, ms: u64);
}
