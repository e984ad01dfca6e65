//! The supervisor as a process: takes the lock, starts an epoch, and runs the executor — the
//! decisions of `core::supervisor` performed on the real world (ledger, git, PTYs, threads).
//! Clients (the TUI, signal handlers, other processes through the poke socket) talk to it through
//! its channel.

pub mod base;
mod checks;
mod commands;
pub mod executor;
pub mod feed;
pub mod holder_start;
pub mod holder_world;
pub mod jobs;
mod lock;
pub mod new_tasks;
pub mod panics;
pub mod pool_keeper;
pub mod pr_facts;
pub mod prepare;
pub mod real_git;
pub mod real_store;
pub mod real_world;
mod review;
pub mod summary;
mod watch;
pub mod world;

pub use commands::{
    Extension, FLEET_PAUSES, HumanCommand, apply_extend, apply_human, apply_human_all,
};
pub use lock::poke;
pub use real_world::OutputHook;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::agent::screen::SharedScreen;
use crate::core::config::Config;
use crate::core::domain::{AttemptId, AttemptNo};
use crate::core::supervisor::{Roots, Supervisor};
use crate::git::Repo;
use crate::ledger::{Ledger, LedgerError};
use executor::{Executor, SetupEnv};
use jobs::JobCtx;
use world::Incoming;

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

/// A live agent as a client (the TUI) sees it: its screen is shared, everything else a copy.
#[derive(Clone)]
pub struct AgentView {
    pub attempt: AttemptId,
    pub task: String,
    pub n: AttemptNo,
    pub profile: String,
    /// When it started, moved later by the time it was held: `now - started` is its running
    /// time (while held, `held_since - started`).
    pub started: Instant,
    pub deadline: Option<Instant>,
    /// Its task is paused and it is held (frozen or interrupted) since then: its clock and
    /// time budget stand still.
    pub held_since: Option<Instant>,
    pub screen: Option<SharedScreen>,
}

/// What clients use to talk to a running engine: see its agents, type into them, stop it.
#[derive(Clone)]
pub struct EngineHandle {
    tx: Sender<Incoming>,
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
        let _ = self.tx.send(Incoming::Input { attempt, bytes });
    }

    /// Resize an agent's PTY and emulated screen together.
    pub fn resize(&self, attempt: AttemptId, rows: u16, cols: u16) {
        let _ = self.tx.send(Incoming::Resize {
            attempt,
            rows,
            cols,
        });
    }

    /// Stop the run: end the agents cleanly, or leave them for the next start to recover.
    pub fn stop(&self, stop_agents: bool) {
        let _ = self.tx.send(Incoming::Stop { stop_agents });
    }

    /// End the run once everything is settled, like a headless run (the TUI lost its terminal
    /// and keeps supervising without it).
    pub fn end_when_settled(&self) {
        let _ = self.tx.send(Incoming::EndWhenSettled);
    }

    /// Wake the loop (after a human command was written to the ledger).
    pub fn poke(&self) {
        let _ = self.tx.send(Incoming::Poke);
    }
}

/// What happened, for observers (the TUI; tests).
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// The ledger changed; re-read it.
    Changed,
    /// An agent printed something (coalesced by the observer).
    AgentOutput { task: String },
    /// The ledger could not be written for now; the supervisor waits (the reason in words).
    Waiting(String),
    /// Every task is settled.
    Finished,
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

pub struct Engine {
    exec: Executor,
    tx: Sender<Incoming>,
    epoch: i64,
    ledger_path: PathBuf,
    _lock: lock::SupervisorLock,
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(e.to_string())
}

impl Engine {
    /// Take the supervisor lock, start a new epoch and settle whatever a previous supervisor
    /// left behind.
    pub fn start(opts: EngineOptions) -> Result<Engine, EngineError> {
        Engine::start_as(opts, false)
    }

    /// [`Engine::start`] to recover and sync only: no agent, check or task merge is started,
    /// and the run ends once no sync is due (`orch-tui sync` when no supervisor runs).
    pub fn start_sync(opts: EngineOptions) -> Result<Engine, EngineError> {
        Engine::start_as(opts, true)
    }

    fn start_as(mut opts: EngineOptions, only_sync: bool) -> Result<Engine, EngineError> {
        let lock = lock::acquire(&opts.paths.orch).map_err(EngineError::Refused)?;
        let mut ledger = Ledger::open(&opts.paths.ledger)?;
        let repo = Repo::open(&opts.paths.repo)
            .map_err(failed)?
            .with_timeout(std::time::Duration::from_millis(opts.config.git.timeout_ms));
        repo.ensure_excluded(".orch/").map_err(failed)?;
        // The base: recorded, or this first start's; the integration branch is cut from it.
        let integration = opts.config.integration_branch.clone();
        let recorded = ledger.integration()?.sync.base_ref;
        let base = base::for_run(
            &repo,
            recorded.as_deref(),
            opts.config.base.as_deref(),
            &integration,
        )
        .map_err(failed)?;
        match &base {
            Some(b) => repo.ensure_branch_at(&integration, b),
            None => repo.ensure_branch(&integration),
        }
        .map_err(failed)?;
        opts.config.base = base;
        for dir in [&opts.paths.worktrees, &opts.paths.logs, &opts.paths.prompts] {
            std::fs::create_dir_all(dir)
                .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        let epoch = ledger.begin_epoch(std::process::id())?;
        let rt = real_world::ThreadRuntime::new();
        let tx = rt.sender();
        let socket = lock::listen(&opts.paths.orch).map_err(EngineError::Failed)?;
        let poke_tx = tx.clone();
        std::thread::Builder::new()
            .name("poke-listener".into())
            .spawn(move || {
                let mut buf = [0u8; 16];
                while socket.recv(&mut buf).is_ok() {
                    if poke_tx.send(Incoming::Poke).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| failed(format!("cannot start a thread: {e}")))?;
        let text = |p: &Path| p.to_string_lossy().to_string();
        let worktrees = text(&opts.paths.worktrees);
        let roots = Roots {
            worktrees: worktrees.clone(),
            logs: text(&opts.paths.logs),
        };
        let store = real_store::SqliteStore::new(ledger, Box::new(random_token))
            .map_err(EngineError::Failed)?;
        let ctx = JobCtx {
            git: Arc::new(real_git::RealGit {
                repo,
                worktrees_dir: worktrees.clone(),
                pool: Some(real_git::RealGit::default_pool(
                    opts.config.slots,
                    &opts.config.worktree,
                )),
            }),
            agents: agents(&opts),
            checks: Arc::new(real_world::ShellChecks {
                timeout: std::time::Duration::from_millis(opts.config.funnel.check_timeout_ms),
            }),
            sink: world::Runtime::sink(&rt),
        };
        let env = SetupEnv {
            ledger_path: text(&opts.paths.ledger),
            prompts_dir: text(&opts.paths.prompts),
            worktrees_dir: worktrees,
            orch_bin: text(&opts.orch_bin),
            rotate_bytes: opts.config.log_rotate_bytes,
        };
        let mut core = Supervisor::new(opts.config, roots, epoch, seed());
        if only_sync {
            core.set_only_sync();
        }
        core.set_utc_offset(crate::os::utc_offset_s(
            (crate::ledger::now_ms() / 1000) as i64,
        ));
        let progress = progress_printer(opts.print_progress);
        let mut exec = Executor::new(
            core,
            Box::new(store),
            Box::new(rt),
            ctx,
            env,
            progress,
            opts.stay_open,
        );
        exec.boot()?;
        Ok(Engine {
            exec,
            tx,
            epoch,
            ledger_path: opts.paths.ledger,
            _lock: lock,
        })
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    pub fn ledger_path(&self) -> &Path {
        &self.ledger_path
    }

    /// A handle that asks the loop to stop (from a signal handler thread or the TUI).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.tx.clone())
    }

    pub fn handle(&self) -> EngineHandle {
        EngineHandle {
            tx: self.tx.clone(),
            agents: self.exec.views.clone(),
        }
    }

    pub fn subscribe(&mut self) -> Receiver<EngineEvent> {
        let (tx, rx) = channel();
        self.exec.observers.push(tx);
        rx
    }

    /// Supervise until every task is settled (or a stop is requested).
    pub fn run(&mut self) -> Result<RunEnd, EngineError> {
        self.exec.run()
    }

    /// Supervise, and if the supervisor panics, stop every agent it started (their attempts are
    /// recovered at the next start) and end with the panic's message.
    pub fn run_guarded(&mut self) -> Result<RunEnd, EngineError> {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.exec.run()));
        match run {
            Ok(end) => end,
            Err(_) => {
                self.exec.kill_agents_now();
                Err(EngineError::Failed(format!(
                    "the supervisor stopped on an internal error: {}. Its agents were stopped; \
                     `orch-tui run` recovers their attempts. This is a bug in orch-tui: please \
                     report it with .orch/logs/orch-tui.log",
                    panics::last().unwrap_or_else(|| "(no message)".into())
                )))
            }
        }
    }
}

#[derive(Clone)]
pub struct Stopper(Sender<Incoming>);

impl Stopper {
    pub fn stop(&self, stop_agents: bool) {
        let _ = self.0.send(Incoming::Stop { stop_agents });
    }
}

/// Progress lines for a headless run: `[mm:ss] line` on stdout. A closed pipe (`| head`) ends
/// the printing, never the run.
fn progress_printer(print: bool) -> Box<dyn FnMut(&str) + Send> {
    let started = Instant::now();
    let mut open = print;
    Box::new(move |line| {
        if !open {
            return;
        }
        use std::io::Write;
        let secs = started.elapsed().as_secs();
        let mut out = std::io::stdout().lock();
        if writeln!(out, "[{:02}:{:02}] {line}", secs / 60, secs % 60)
            .and_then(|_| out.flush())
            .is_err()
        {
            open = false;
        }
    })
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

/// A random hex token for attempt fencing, 128 bits from the OS random source.
pub(crate) fn random_token() -> String {
    crate::os::random_token().unwrap_or_else(|e| {
        // getrandom(2) and /dev/urandom both failed: never reuse a token, and say so in the log.
        tracing::error!(error = %e, "no OS random source; attempt tokens fall back to time and pid");
        let t = crate::ledger::now_ms() as u128 ^ (u128::from(std::process::id()) << 64);
        format!("{t:032x}")
    })
}

/// Agents run in holders (`agent::holder`: they outlive this process) unless `ORCH_HOLDERS=0`
/// asks for in-process PTYs, or the binary that would hold them is not there.
fn agents(opts: &EngineOptions) -> Arc<dyn world::Agents> {
    let in_process = std::env::var("ORCH_HOLDERS").is_ok_and(|v| v == "0");
    if in_process || !opts.orch_bin.is_file() {
        return Arc::new(real_world::PtyAgents {
            on_output: opts.on_output.clone(),
            rows: 24,
            cols: 100,
        });
    }
    Arc::new(holder_world::HolderAgents {
        on_output: opts.on_output.clone(),
        rows: 24,
        cols: 100,
        orch_bin: opts.orch_bin.clone(),
        dir: crate::agent::holder::holders_dir(&opts.paths.orch),
        spares: Default::default(),
    })
}
