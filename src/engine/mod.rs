//! The supervisor: owns the ledger connection, the agents and the git jobs; applies the decisions
//! of `core`; takes commands from the CLI, the TUI and agents (all through the ledger plus a poke).
//!
//! One thread runs the loop below and is the only writer of supervisor decisions. Slow work
//! (git, spawning) happens on short-lived threads that report back as messages, so a merge never
//! delays a dispatch.

mod checks;
mod commands;
mod dispatch;
mod funnel;
mod lock;
mod merge;
mod outcome;
mod recover;
mod review;
pub mod summary;

pub use commands::{HumanCommand, apply_human};
pub use lock::poke;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent::pty::{AgentProcess, AgentSignal};
use crate::agent::screen::SharedScreen;
use crate::core::config::Config;
use crate::core::domain::{Actor, AttemptId, AttemptNo, EventKind, Role};
use crate::core::state::TaskState;
use crate::git::Repo;
use crate::ledger::{Ledger, LedgerError};

/// Where things live under the repository.
#[derive(Debug, Clone)]
pub struct Paths {
    pub repo: PathBuf,
    pub orch: PathBuf,
    pub ledger: PathBuf,
    pub worktrees: PathBuf,
    pub logs: PathBuf,
    pub prompts: PathBuf,
}

impl Paths {
    pub fn new(repo: &Path) -> Paths {
        let orch = repo.join(".orch");
        Paths {
            repo: repo.to_path_buf(),
            ledger: orch.join("ledger.db"),
            worktrees: orch.join("worktrees"),
            logs: orch.join("logs"),
            prompts: orch.join("prompts"),
            orch,
        }
    }
}

pub struct EngineOptions {
    pub paths: Paths,
    pub config: Config,
    /// The orch-tui binary, for `{orch}` in commands and for `ORCH_BIN`.
    pub orch_bin: PathBuf,
    /// Print progress lines to stdout (headless).
    pub print_progress: bool,
    /// Called from an agent's reader thread whenever it printed something (with the task id).
    /// Must be cheap: the TUI sets a flag and wakes its render loop; nothing else runs here.
    pub on_output: Option<OutputHook>,
    /// Keep supervising once everything is settled (the TUI: the human may still retry or
    /// approve from the inbox); headless runs end there.
    pub stay_open: bool,
}

/// Called with the task id when its agent printed something.
pub type OutputHook = Arc<dyn Fn(&str) + Send + Sync>;

/// A live agent as a client (the TUI) sees it: its screen is shared, everything else a copy.
#[derive(Clone)]
pub struct AgentView {
    pub attempt: AttemptId,
    pub task: String,
    pub n: AttemptNo,
    pub profile: String,
    pub started: Instant,
    pub deadline: Option<Instant>,
    pub screen: Option<SharedScreen>,
}

/// What clients use to talk to a running engine: see its agents, type into them, stop it.
#[derive(Clone)]
pub struct EngineHandle {
    tx: Sender<Msg>,
    agents: Arc<Mutex<BTreeMap<AttemptId, AgentView>>>,
}

impl EngineHandle {
    /// The live agents, in dispatch order.
    pub fn agents(&self) -> Vec<AgentView> {
        self.agents
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Bytes for an agent's PTY (keys, pastes). Queued; never blocks.
    pub fn input(&self, attempt: AttemptId, bytes: Vec<u8>) {
        let _ = self.tx.send(Msg::Input { attempt, bytes });
    }

    /// Resize an agent's PTY and emulated screen together.
    pub fn resize(&self, attempt: AttemptId, rows: u16, cols: u16) {
        let _ = self.tx.send(Msg::Resize {
            attempt,
            rows,
            cols,
        });
    }

    /// Stop the run: end the agents cleanly, or leave them for the next start to recover.
    pub fn stop(&self, stop_agents: bool) {
        let _ = self.tx.send(Msg::Stop { stop_agents });
    }

    /// Wake the loop (after a human command was written to the ledger).
    pub fn poke(&self) {
        let _ = self.tx.send(Msg::Poke);
    }
}

/// What happened, for observers (the TUI; tests).
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// The ledger changed; re-read it.
    Changed,
    /// An agent printed something (coalesced by the observer).
    AgentOutput { task: String },
    /// Every task is settled; the loop is about to return.
    Finished,
}

/// Messages into the supervisor loop.
pub(crate) enum Msg {
    Poke,
    Agent {
        attempt: AttemptId,
        signal: AgentSignal,
    },
    SetupDone {
        attempt: AttemptId,
        result: Result<dispatch::Started, String>,
    },
    CommitDone {
        attempt: AttemptId,
        result: Result<Option<String>, String>,
    },
    MergeDone {
        task: String,
        attempt: AttemptId,
        result: merge::MergeResult,
    },
    ChecksDone {
        task: String,
        n: AttemptNo,
        results: Vec<checks::CheckResult>,
    },
    Input {
        attempt: AttemptId,
        bytes: Vec<u8>,
    },
    Resize {
        attempt: AttemptId,
        rows: u16,
        cols: u16,
    },
    /// A merged task's worktree was removed.
    CleanupDone,
    Stop {
        stop_agents: bool,
    },
}

pub(crate) struct Live {
    pub role: Role,
    pub task: String,
    pub n: AttemptNo,
    pub profile: String,
    pub process: Option<AgentProcess>,
    pub worktree: PathBuf,
    pub base: String,
    pub deadline: Option<Instant>,
    pub started: Instant,
    /// Why we stopped it, if we did (time budget, cancel, pause).
    pub stopped_for: Option<String>,
    pub committing: bool,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every task done.
    AllDone,
    /// Settled with some failed, blocked, cancelled or escalated tasks.
    Unfinished,
    /// Stopped on request, leaving the run to resume later.
    Stopped,
}

pub struct Engine {
    pub(crate) opts: EngineOptions,
    pub(crate) ledger: Ledger,
    pub(crate) repo: Repo,
    pub(crate) epoch: i64,
    pub(crate) tx: Sender<Msg>,
    rx: Receiver<Msg>,
    pub(crate) live: HashMap<AttemptId, Live>,
    pub(crate) merge_queue: VecDeque<String>,
    pub(crate) merging: Option<String>,
    /// Tasks whose checks are running.
    pub(crate) checking: std::collections::HashSet<String>,
    /// Merged worktrees still being tidied away.
    pub(crate) cleanups: usize,
    pub(crate) observers: Vec<Sender<EngineEvent>>,
    pub(crate) rng: u64,
    pub(crate) views: Arc<Mutex<BTreeMap<AttemptId, AgentView>>>,
    last_seq: i64,
    _lock: lock::SupervisorLock,
    started: Instant,
}

#[derive(Debug)]
pub enum EngineError {
    /// Refused: another supervisor holds the ledger, or the ledger is too new (exit 3).
    Refused(String),
    /// Anything else that stops the supervisor (exit 1).
    Failed(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Refused(m) | EngineError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<LedgerError> for EngineError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::TooNew { .. } | LedgerError::Refused(_) => {
                EngineError::Refused(e.to_string())
            }
            other => EngineError::Failed(other.to_string()),
        }
    }
}

/// The fallback tick: the loop re-reads the ledger this often even without a poke, in case a
/// poke was lost. Dispatch never waits for it; it is a safety net.
const FALLBACK_TICK: Duration = Duration::from_millis(1000);

impl Engine {
    /// Take the supervisor lock, start a new epoch and recover whatever a previous supervisor
    /// left behind.
    pub fn start(opts: EngineOptions) -> Result<Engine, EngineError> {
        let lock = lock::acquire(&opts.paths.orch).map_err(EngineError::Refused)?;
        let mut ledger = Ledger::open(&opts.paths.ledger)?;
        let repo = Repo::open(&opts.paths.repo).map_err(|e| EngineError::Failed(e.to_string()))?;
        repo.ensure_excluded(".orch/")
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        repo.ensure_branch(&opts.config.integration_branch)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        for dir in [&opts.paths.worktrees, &opts.paths.logs, &opts.paths.prompts] {
            std::fs::create_dir_all(dir).map_err(|e| {
                EngineError::Failed(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let epoch = ledger.begin_epoch(std::process::id())?;
        let (tx, rx) = channel();
        let socket = lock::listen(&opts.paths.orch).map_err(EngineError::Failed)?;
        let poke_tx = tx.clone();
        std::thread::Builder::new()
            .name("poke-listener".into())
            .spawn(move || {
                let mut buf = [0u8; 16];
                while socket.recv(&mut buf).is_ok() {
                    if poke_tx.send(Msg::Poke).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| EngineError::Failed(format!("cannot start a thread: {e}")))?;
        let last_seq = ledger.last_seq()?;
        let mut engine = Engine {
            opts,
            ledger,
            repo,
            epoch,
            tx,
            rx,
            live: HashMap::new(),
            merge_queue: VecDeque::new(),
            merging: None,
            checking: Default::default(),
            cleanups: 0,
            observers: Vec::new(),
            rng: seed(),
            views: Arc::new(Mutex::new(BTreeMap::new())),
            last_seq,
            _lock: lock,
            started: Instant::now(),
        };
        engine.recover()?;
        Ok(engine)
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// A handle that asks the loop to stop (from a signal handler thread or the TUI).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.tx.clone())
    }

    pub fn handle(&self) -> EngineHandle {
        EngineHandle {
            tx: self.tx.clone(),
            agents: self.views.clone(),
        }
    }

    /// Keep the clients' view of live agents in step with `live`.
    pub(crate) fn publish_views(&self) {
        if let Ok(mut v) = self.views.lock() {
            v.clear();
            for (id, l) in &self.live {
                v.insert(
                    *id,
                    AgentView {
                        attempt: *id,
                        task: l.task.clone(),
                        n: l.n,
                        profile: l.profile.clone(),
                        started: l.started,
                        deadline: l.deadline,
                        screen: l.process.as_ref().map(|p| p.screen()),
                    },
                );
            }
        }
    }

    pub fn subscribe(&mut self) -> Receiver<EngineEvent> {
        let (tx, rx) = channel();
        self.observers.push(tx);
        rx
    }

    pub(crate) fn emit(&mut self, e: EngineEvent) {
        if matches!(e, EngineEvent::Changed) {
            self.publish_views();
        }
        self.observers.retain(|o| o.send(e.clone()).is_ok());
    }

    pub(crate) fn say(&self, line: &str) {
        tracing::info!("{line}");
        if self.opts.print_progress {
            let secs = self.started.elapsed().as_secs();
            // A closed stdout (`run --headless | head -3`) ends the progress lines, not the run.
            crate::os::out::say(&format!("[{:02}:{:02}] {line}", secs / 60, secs % 60));
        }
    }

    pub(crate) fn next_random(&mut self) -> u64 {
        // splitmix64: plenty for backoff jitter; seeded from the OS once.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Supervise until every task is settled (or a stop is requested).
    pub fn run(&mut self) -> Result<RunEnd, EngineError> {
        let mut announced = false;
        loop {
            self.schedule()?;
            if self.is_settled()? {
                if !announced {
                    self.drop_recheck_worktree();
                    self.emit(EngineEvent::Finished);
                    announced = true;
                }
                if !self.opts.stay_open {
                    return self.settled_end();
                }
            } else {
                announced = false;
            }
            let timeout = self.next_timeout()?;
            let msg = match self.rx.recv_timeout(timeout) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(EngineError::Failed("supervisor channel closed".into()));
                }
            };
            match msg {
                Some(Msg::Stop { stop_agents }) => return self.stop(stop_agents),
                Some(m) => self.handle_msg(m)?,
                None => {}
            }
            // Drain whatever else is waiting before scheduling again (coalescing).
            while let Ok(m) = self.rx.try_recv() {
                if let Msg::Stop { stop_agents } = m {
                    return self.stop(stop_agents);
                }
                self.handle_msg(m)?;
            }
            self.enforce_deadlines();
            self.read_new_events()?;
            self.expire_vetoes()?;
        }
    }

    /// A stop request: a settled run ends as it stands; otherwise it is left to resume.
    fn stop(&mut self, stop_agents: bool) -> Result<RunEnd, EngineError> {
        let settled = self.is_settled()?;
        self.shutdown(stop_agents)?;
        if settled {
            self.settled_end()
        } else {
            Ok(RunEnd::Stopped)
        }
    }

    /// How a settled run ended: every task done, or some waiting on the human.
    fn settled_end(&self) -> Result<RunEnd, EngineError> {
        let counts = self.ledger.state_counts()?;
        Ok(if counts.keys().all(|s| s == "done") {
            RunEnd::AllDone
        } else {
            RunEnd::Unfinished
        })
    }

    fn handle_msg(&mut self, msg: Msg) -> Result<(), EngineError> {
        match msg {
            Msg::Poke => Ok(()),
            Msg::Agent { attempt, signal } => self.on_agent_signal(attempt, signal),
            Msg::SetupDone { attempt, result } => self.on_setup_done(attempt, result),
            Msg::CommitDone { attempt, result } => self.on_commit_done(attempt, result),
            Msg::MergeDone {
                task,
                attempt,
                result,
            } => self.on_merge_done(&task, attempt, result),
            Msg::ChecksDone { task, n, results } => self.on_checks_done(&task, n, results),
            Msg::CleanupDone => {
                self.cleanups = self.cleanups.saturating_sub(1);
                Ok(())
            }
            Msg::Input { attempt, bytes } => {
                if let Some(p) = self.live.get(&attempt).and_then(|l| l.process.as_ref()) {
                    p.write(bytes.clone());
                }
                // Enter after a question: the human answered, the item leaves the inbox.
                if bytes.contains(&b'\r') {
                    self.ledger
                        .write(|tx| crate::ledger::answered(tx, attempt))?;
                    self.emit(EngineEvent::Changed);
                }
                Ok(())
            }
            Msg::Resize {
                attempt,
                rows,
                cols,
            } => {
                if let Some(p) = self.live.get(&attempt).and_then(|l| l.process.as_ref()) {
                    let _ = p.resize(rows, cols);
                }
                Ok(())
            }
            Msg::Stop { .. } => Ok(()),
        }
    }

    /// Nothing will move without a human: no live agent, no git job, and no task that the
    /// supervisor itself can move on (a `pending` task only moves when an upstream merges,
    /// which needs one of those).
    fn is_settled(&self) -> Result<bool, EngineError> {
        if !self.live.is_empty()
            || self.merging.is_some()
            || !self.merge_queue.is_empty()
            || !self.checking.is_empty()
            || self.cleanups > 0
        {
            return Ok(false);
        }
        let counts = self.ledger.state_counts()?;
        Ok(counts
            .keys()
            .all(|s| TaskState::parse(s).is_some_and(|s| !s.is_active() && s != TaskState::Ready)))
    }

    fn next_timeout(&self) -> Result<Duration, EngineError> {
        let mut wake = FALLBACK_TICK;
        let now = Instant::now();
        for l in self.live.values() {
            if let Some(d) = l.deadline {
                wake = wake.min(d.saturating_duration_since(now));
            }
        }
        if let Some(due) = self.ledger.next_due_ms()? {
            let now_ms = crate::ledger::now_ms();
            wake = wake.min(Duration::from_millis(due.saturating_sub(now_ms)));
        }
        Ok(wake)
    }

    /// Worker reports and human commands arrive through the ledger; act on the new events.
    fn read_new_events(&mut self) -> Result<(), EngineError> {
        let events = self.ledger.events(self.last_seq, None, 10_000)?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        self.last_seq = last.seq;
        let mut changed = false;
        for e in &events {
            if e.actor == Actor::Agent
                && let Some(id) = self.live_id(e.task.as_deref(), e.attempt)
            {
                self.attempt_log(id, e.kind.as_str(), &e.data);
            }
            match (e.actor, e.kind) {
                (Actor::Agent, EventKind::AgentDone | EventKind::AgentFail) => {
                    // An interactive agent may report and keep running: end it; its exit
                    // status then follows the report.
                    if let Some(id) = self.live_id(e.task.as_deref(), e.attempt)
                        && let Some(p) = self.live.get(&id).and_then(|l| l.process.as_ref())
                    {
                        p.stop(self.grace());
                    }
                    changed = true;
                }
                (Actor::Agent, EventKind::AgentQuestion) => {
                    let q = e.data.get("reason").and_then(|v| v.as_str()).unwrap_or("");
                    self.say(&format!("? {} asks: {q}", e.task.as_deref().unwrap_or("?")));
                    changed = true;
                }
                (Actor::Agent | Actor::Human, _) => changed = true,
                _ => {}
            }
        }
        if changed {
            self.reconcile_live()?;
            self.queue_approved()?;
            self.emit(EngineEvent::Changed);
        }
        Ok(())
    }

    fn live_id(&self, task: Option<&str>, n: Option<AttemptNo>) -> Option<AttemptId> {
        self.live
            .iter()
            .find(|(_, l)| Some(l.task.as_str()) == task && Some(l.n) == n)
            .map(|(id, _)| *id)
    }

    /// A human moved a task away from `working` (cancel, pause): stop its agent.
    fn reconcile_live(&mut self) -> Result<(), EngineError> {
        let ids: Vec<AttemptId> = self.live.keys().copied().collect();
        for id in ids {
            let Some(l) = self.live.get(&id) else {
                continue;
            };
            if l.committing {
                continue;
            }
            let state = self.ledger.task(&l.task)?.map(|t| t.state);
            // An agent belongs to a working task; a reviewer to a task in review.
            let expected: &[TaskState] = match l.role {
                Role::Agent => &[TaskState::Working, TaskState::Assigned],
                Role::Reviewer => &[TaskState::Review],
            };
            if state.is_some_and(|s| expected.contains(&s)) {
                continue;
            }
            let why = format!(
                "task is now {}",
                state.map_or("gone".into(), |s| s.to_string())
            );
            if let Some(l) = self.live.get_mut(&id) {
                l.stopped_for = Some(why);
                if let Some(p) = &l.process {
                    p.stop(Duration::from_millis(self.opts.config.stop_grace_ms));
                }
            }
        }
        Ok(())
    }

    /// Append one line to the attempt's `events.jsonl` (what the agent reported, how it ended),
    /// next to its raw and text logs. Best effort: the ledger already holds the event.
    pub(crate) fn attempt_log(&self, attempt: AttemptId, kind: &str, data: &serde_json::Value) {
        let Ok(Some(a)) = self.ledger.attempt(attempt) else {
            return;
        };
        let Some(dir) = a.log_dir else { return };
        let path = PathBuf::from(dir).join("events.jsonl");
        if let Ok(mut f) =
            crate::agent::logs::JsonlAppender::open(&path, self.opts.config.log_rotate_bytes)
        {
            let _ = f.append(&serde_json::json!({
                "ts_ms": crate::ledger::now_ms(), "kind": kind, "data": data,
            }));
        }
    }

    /// Hand a task to the human with the reason (and, if any, a note for a retry), leaving the
    /// funnel stage it was in.
    pub(crate) fn escalate(
        &mut self,
        task: &str,
        from: TaskState,
        attempt: Option<AttemptNo>,
        why: &str,
        note: Option<String>,
        data: serde_json::Value,
    ) -> Result<(), EngineError> {
        self.ledger.write(|tx| {
            if from == TaskState::Review {
                crate::ledger::set_stage(tx, task, None, None, attempt, serde_json::json!({}))?;
            }
            crate::ledger::transition_task(
                tx,
                task,
                from,
                TaskState::Escalated,
                &crate::ledger::Patch {
                    reason: Some(Some(why.to_string())),
                    note: note.clone().map(Some),
                    ..Default::default()
                },
                crate::ledger::Actor::Supervisor,
                attempt,
                data.clone(),
            )
        })?;
        self.say(&format!("⚑ {task}: escalated: {why}"));
        self.emit(EngineEvent::Changed);
        Ok(())
    }

    pub(crate) fn grace(&self) -> Duration {
        Duration::from_millis(self.opts.config.stop_grace_ms)
    }

    fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        let grace = self.grace();
        let mut expired = Vec::new();
        for (id, l) in self.live.iter_mut() {
            if l.stopped_for.is_none() && l.deadline.is_some_and(|d| d <= now) {
                l.stopped_for = Some("time budget exhausted".into());
                if let Some(p) = &l.process {
                    p.stop(grace);
                }
                expired.push((*id, l.task.clone()));
            }
        }
        for (_, task) in expired {
            self.say(&format!(
                "⏱ {task}: time budget exhausted, stopping its agent"
            ));
        }
    }

    /// Stop: either end every agent cleanly (their attempts are abandoned and retried on the next
    /// start) or leave them to be reaped by the next supervisor's recovery.
    /// The merge queue's re-check worktree is reused while the run lasts; nothing in it is
    /// work (it only ever holds integration commits), so it goes without a backup.
    fn drop_recheck_worktree(&self) {
        let path = self.opts.paths.worktrees.join(merge::RECHECK_WORKTREE);
        if path.exists() {
            let _ = self.repo.drop_scratch_worktree(&path);
        }
    }

    fn shutdown(&mut self, stop_agents: bool) -> Result<(), EngineError> {
        self.drop_recheck_worktree();
        if stop_agents {
            for l in self.live.values() {
                if let Some(p) = &l.process {
                    p.stop(self.grace());
                }
            }
            for l in self.live.values() {
                if let Some(p) = &l.process {
                    p.wait_exit(self.grace() + Duration::from_secs(2));
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Stopper(Sender<Msg>);

impl Stopper {
    pub fn stop(&self, stop_agents: bool) {
        let _ = self.0.send(Msg::Stop { stop_agents });
    }
}

fn seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        u64::from_le_bytes(b)
    } else {
        crate::ledger::now_ms() ^ u64::from(std::process::id())
    }
}

/// A random hex token (attempt fencing): 128 bits from the OS random source.
pub(crate) fn random_token(engine: &mut Engine) -> String {
    crate::os::random_token().unwrap_or_else(|e| {
        // getrandom(2) and /dev/urandom both failed: keep running on the seeded generator.
        tracing::error!(error = %e, "no OS random source; fencing token from the fallback generator");
        format!("{:016x}{:016x}", engine.next_random(), engine.next_random())
    })
}
