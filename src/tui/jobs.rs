//! The TUI's background jobs and what they report (`JobDone`, delivered as `UiEvent::Job`):
//! the ledger refresh (the read model, `crate::read`, turned into view data), the task detail,
//! the timeline, the logs view's files, git diffs and diff stats, and human commands that wait
//! out a busy ledger. Each runs on a lane (`lanes.rs`), never on the UI thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::data::{self, Refreshed};
use super::lanes::{JobKey, Lane, Lanes, Worker};
use super::state::{DetailInfo, DiffState, LogLine};
use crate::core::domain::AttemptId;
use crate::engine::{AgentView, EngineHandle, HumanCommand, apply_human};
use crate::ledger::LedgerError;

/// A background job's result.
pub enum JobDone {
    /// The ledger read again, as view data.
    Refreshed(Box<Refreshed>),
    /// The task detail (`None`: no such task).
    Detail {
        task: String,
        result: Result<Option<Box<DetailInfo>>, String>,
    },
    Diff {
        task: String,
        result: Result<Box<DiffState>, String>,
    },
    /// `git diff --stat` of `range` (`base..commit`), or why there is none.
    Stat {
        range: String,
        stat: String,
    },
    Timeline(Result<crate::core::timeline::Timeline, String>),
    /// The logs view's lines, when they changed.
    Logs(Result<Option<Vec<LogLine>>, String>),
    /// A human command could not write yet: the ledger is busy or the disk full (why, in
    /// words). It keeps trying until it can.
    Waiting {
        what: String,
        why: String,
    },
    /// A human command (or approve-all) landed or was refused: the line to show.
    Human {
        what: String,
        message: String,
    },
    /// The form's submit (a new task, a new prompt): the result line, or every problem (then
    /// nothing was written).
    Form(Result<String, Vec<String>>),
    /// A task's prompt, for the edit form.
    Prompt {
        task: String,
        result: Result<String, String>,
    },
    /// Where a shell or an editor opens for a task (its newest attempt's worktree).
    Worktree {
        task: String,
        editor: bool,
        result: Result<std::path::PathBuf, String>,
    },
    /// The integration branch's commits since HEAD, for the done screen.
    Done(String),
    /// Something failed that the user should hear about.
    Failed(String),
}

/// One human command: what the loop submits to the write lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub cmd: HumanCommand,
    pub task: String,
    pub note: Option<String>,
}

/// The pause between two tries of a command while the ledger stays busy.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What the jobs need of the engine: its live agents (their screens, for the panes) and a poke
/// after a human command.
pub trait EngineLink: Send + Sync + 'static {
    fn agents(&self) -> Vec<AgentView>;
    fn poke(&self);
    /// Keys for a live agent; the error says why they cannot reach it.
    fn input(&self, _attempt: AttemptId, _bytes: Vec<u8>) -> Result<(), String> {
        Err("no agent runs here".into())
    }
    /// A new size for a live agent's terminal.
    fn resize(&self, _attempt: AttemptId, _rows: u16, _cols: u16) {}
}

impl EngineLink for EngineHandle {
    fn agents(&self) -> Vec<AgentView> {
        EngineHandle::agents(self)
    }

    fn poke(&self) {
        EngineHandle::poke(self);
    }
}

/// No engine in this process: no live agents, and a running supervisor elsewhere is poked
/// through its socket.
pub struct NoEngine {
    pub orch_dir: std::path::PathBuf,
}

impl EngineLink for NoEngine {
    fn agents(&self) -> Vec<AgentView> {
        Vec::new()
    }

    fn poke(&self) {
        crate::engine::poke(&self.orch_dir);
    }
}

/// Submits jobs for the loop; owns the lanes.
pub struct Jobs {
    pub(super) lanes: Lanes,
    pub(super) engine: Arc<dyn EngineLink>,
}

impl Jobs {
    pub fn new(lanes: Lanes, engine: Arc<dyn EngineLink>) -> Jobs {
        Jobs { lanes, engine }
    }

    /// Read the ledger (and the engine's live agents) again.
    pub fn refresh(&self) {
        let engine = self.engine.clone();
        self.lanes.submit(
            Lane::Read,
            Some(JobKey::Refresh),
            Box::new(move |w| {
                let started = Instant::now();
                let done = match w
                    .ledger()
                    // Lean: the views need the live attempts and the inbox, not every
                    // attempt's row (half of a 10,000-task snapshot's time).
                    .and_then(|l| crate::read::snapshot_lean(l, crate::ledger::now_ms()))
                {
                    Ok(snap) => {
                        let views = engine.agents();
                        JobDone::Refreshed(Box::new(data::build(snap, &views, started)))
                    }
                    Err(e) => {
                        w.drop_ledger();
                        JobDone::Failed(format!("cannot read the ledger: {e}"))
                    }
                };
                w.send(done);
            }),
        );
    }

    pub fn detail(&self, task: String) {
        self.lanes.submit(
            Lane::Read,
            Some(JobKey::Detail),
            Box::new(move |w| {
                let result = w
                    .ledger()
                    .and_then(|l| data::load_detail(l, &task))
                    .map(|d| d.map(Box::new))
                    .map_err(|e| format!("cannot read task {task}: {e}"));
                w.send(JobDone::Detail { task, result });
            }),
        );
    }

    pub fn timeline(&self) {
        self.lanes.submit(
            Lane::Read,
            Some(JobKey::Timeline),
            Box::new(move |w| {
                let result = w
                    .ledger()
                    .and_then(|l| data::load_timeline(l, crate::ledger::now_ms()))
                    .map_err(|e| format!("cannot read the events: {e}"));
                w.send(JobDone::Timeline(result));
            }),
        );
    }

    /// Read what the logs appended (the feed lives on the files lane).
    pub fn logs(&self) {
        self.lanes.submit(
            Lane::Files,
            Some(JobKey::Logs),
            Box::new(move |w| {
                let found = w.ledger_and_feed().and_then(|(l, feed)| feed.refresh(l));
                let result = match found {
                    Ok(()) => Ok(w
                        .feed
                        .poll(crate::ledger::now_ms())
                        .then(|| w.feed.lines().to_vec())),
                    Err(e) => Err(format!("cannot read the logs: {e}")),
                };
                w.send(JobDone::Logs(result));
            }),
        );
    }

    pub fn diff(&self, task: String) {
        self.lanes.submit(
            Lane::Files,
            Some(JobKey::Diff),
            Box::new(move |w| {
                let result = w
                    .ledger()
                    .map_err(|e| e.to_string())
                    .and_then(|l| super::funnel::load_diff(l, &task))
                    .map(Box::new);
                w.send(JobDone::Diff { task, result });
            }),
        );
    }

    pub fn diff_stat(&self, base: String, commit: String) {
        let range = format!("{base}..{commit}");
        self.lanes.submit(
            Lane::Files,
            Some(JobKey::Stat(range.clone())),
            Box::new(move |w| {
                let stat = super::funnel::diff_stat(w.ledger_path(), &base, &commit)
                    .unwrap_or_else(|e| format!("(no diff stat: {e})"));
                w.send(JobDone::Stat { range, stat });
            }),
        );
    }

    /// Human commands, applied in order (approve-all is several), then the supervisor is
    /// poked. `what` names them for the waiting note and the result line.
    pub fn human(&self, what: String, commands: Vec<Command>) {
        let engine = self.engine.clone();
        self.lanes.submit(
            Lane::Write,
            None,
            Box::new(move |w| {
                let mut done = 0;
                let mut errors = Vec::new();
                let mut last = String::new();
                for c in &commands {
                    match apply_waiting(w, &what, c) {
                        Ok(m) => {
                            done += 1;
                            last = m;
                        }
                        Err(e) => errors.push(e),
                    }
                }
                // The supervisor reads the change from the event log when woken.
                engine.poke();
                let message = if commands.len() == 1 {
                    errors.pop().unwrap_or(last)
                } else {
                    let mut m = format!("{what}: {done} of {}", commands.len());
                    if !errors.is_empty() {
                        m.push_str(&format!(" · {}", errors.join("; ")));
                    }
                    m
                };
                w.send(JobDone::Human { what, message });
            }),
        );
    }
}

/// Apply one command, trying again for as long as the ledger is busy or the disk full (the UI
/// hears why, once per reason); any other error is the answer.
fn apply_waiting(w: &mut Worker, what: &str, c: &Command) -> Result<String, String> {
    let mut told: Option<&'static str> = None;
    loop {
        let r = w
            .ledger()
            .and_then(|l| apply_human(l, c.cmd, &c.task, c.note.as_deref()));
        match r {
            Ok(m) => return Ok(m),
            Err(e) if e.is_transient() => {
                let why = e.transient_reason();
                if told != Some(why) {
                    told = Some(why);
                    w.send(JobDone::Waiting {
                        what: what.to_string(),
                        why: why.to_string(),
                    });
                }
                std::thread::sleep(RETRY_PAUSE);
            }
            Err(e) => {
                if matches!(e, LedgerError::Sql(_)) {
                    w.drop_ledger();
                }
                return Err(e.to_string());
            }
        }
    }
}
