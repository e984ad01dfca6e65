//! The TUI's background jobs and what they report (`JobDone`, delivered as `UiEvent::Job`):
//! the ledger refresh (the read model, `crate::read`, turned into view data), the task detail,
//! the timeline, the logs view's files, git diffs and diff stats, and human commands that wait
//! out a busy ledger. Each runs on a lane (`lanes.rs`), never on the UI thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::data::{self, Refreshed};
use super::lanes::{JobKey, Lane, Lanes, Worker};
use super::state::{DetailInfo, DiffState, LogLine};
use crate::core::config::Config;
use crate::core::new_task::Draft;
use crate::core::state::TaskState;
use crate::engine::new_tasks::{
    Edited, add_task, draft_task, edit_task, existing_tasks, prompt_of,
};
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
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What the jobs need of the engine: its live agents (their screens, for the panes) and a poke
/// after a human command.
pub trait EngineLink: Send + Sync + 'static {
    fn agents(&self) -> Vec<AgentView>;
    fn poke(&self);
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
    lanes: Lanes,
    engine: Arc<dyn EngineLink>,
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
                    .and_then(|l| crate::read::snapshot(l, crate::ledger::now_ms()))
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

impl Jobs {
    /// `orch-tui add`'s checks and write, on the write lane (after any command before it).
    pub fn add_task(&self, draft: Draft, cfg: Arc<Config>) {
        let engine = self.engine.clone();
        self.lanes.submit(
            Lane::Write,
            None,
            Box::new(move |w| {
                let result = add_waiting(w, &draft, &cfg);
                if result.is_ok() {
                    engine.poke();
                }
                w.send(JobDone::Form(result));
            }),
        );
    }

    /// `orch-tui edit`'s write, on the write lane.
    pub fn edit_prompt(&self, task: String, prompt: String) {
        let engine = self.engine.clone();
        self.lanes.submit(
            Lane::Write,
            None,
            Box::new(move |w| {
                let result = retrying(w, "edit", |l| edit_task(l, &task, &prompt))
                    .map(|edited| match edited {
                        Edited::Unchanged => format!("{task}: the prompt is unchanged"),
                        Edited::Changed { version, state } => {
                            engine.poke();
                            let next = match state {
                                TaskState::Paused => "; `u` resumes it",
                                TaskState::Failed | TaskState::Escalated | TaskState::Cancelled => {
                                    "; `r` retries it"
                                }
                                _ => "; its next attempt uses it",
                            };
                            format!("{task}: prompt changed (spec version {version}){next}")
                        }
                    })
                    .map_err(|e| vec![e]);
                w.send(JobDone::Form(result));
            }),
        );
    }

    pub fn prompt(&self, task: String) {
        self.lanes.submit(
            Lane::Read,
            None,
            Box::new(move |w| {
                let result = w
                    .ledger()
                    .and_then(|l| prompt_of(l, &task))
                    .map_err(|e| e.to_string());
                w.send(JobDone::Prompt { task, result });
            }),
        );
    }

    /// The integration branch's commits since the user's HEAD (as the end of a headless run
    /// prints them).
    pub fn done_summary(&self, repo: std::path::PathBuf, branch: String) {
        self.lanes.submit(
            Lane::Files,
            None,
            Box::new(move |w| {
                let text = match crate::git::Repo::open(&repo) {
                    Ok(r) => crate::engine::summary::integration_summary(&r, &branch),
                    Err(e) => format!("cannot read {branch}: {e}"),
                };
                w.send(JobDone::Done(text));
            }),
        );
    }

    /// The newest agent attempt's worktree of `task`, for a shell or an editor.
    pub fn worktree(&self, task: String, editor: bool) {
        self.lanes.submit(
            Lane::Read,
            None,
            Box::new(move |w| {
                let result = w
                    .ledger()
                    .map_err(|e| e.to_string())
                    .and_then(|l| worktree_of(l, &task));
                w.send(JobDone::Worktree {
                    task,
                    editor,
                    result,
                });
            }),
        );
    }
}

/// The worktree a shell opens in (as `orch-tui shell` finds it), or why there is none.
fn worktree_of(ledger: &crate::ledger::Ledger, task: &str) -> Result<std::path::PathBuf, String> {
    let row = ledger
        .task(task)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no task `{task}` in the ledger"))?;
    let attempts = ledger.attempts(task).map_err(|e| e.to_string())?;
    let newest = attempts
        .iter()
        .filter(|a| a.role == crate::core::domain::Role::Agent)
        .max_by_key(|a| a.n.0);
    let Some(a) = newest else {
        return Err(format!(
            "task `{task}` has no worktree: no attempt has started yet (it is {})",
            row.state
        ));
    };
    let dir = std::path::PathBuf::from(a.worktree.clone().unwrap_or_default());
    if dir.as_os_str().is_empty() || !dir.is_dir() {
        return Err(match row.state {
            _ if a.state.is_live() => format!(
                "task `{task}`: attempt {}'s worktree is still being set up; try again in a moment",
                a.n
            ),
            TaskState::Done => format!(
                "task `{task}` has no worktree: it is done and its worktree was removed after \
                 the merge (the work is on the integration branch; `d` shows its diff)"
            ),
            s => format!(
                "task `{task}` has no worktree: attempt {}'s is gone (it is {s})",
                a.n
            ),
        });
    }
    Ok(dir)
}

/// Check and write a new task, waiting out a busy ledger. Problems are the lines `orch-tui add`
/// would print, each naming its field's flag.
fn add_waiting(w: &mut Worker, draft: &Draft, cfg: &Config) -> Result<String, Vec<String>> {
    let existing = retrying(w, "add", |l| existing_tasks(l)).map_err(|e| vec![e])?;
    let spec = draft_task(&existing, draft, cfg)
        .map_err(|d| d.iter().map(form_problem).collect::<Vec<_>>())?;
    let added = retrying(w, "add", |l| add_task(l, &spec, cfg)).map_err(|e| vec![e])?;
    Ok(match added.state {
        TaskState::Blocked => format!(
            "added `{}`: blocked ({}); `r` on that task unblocks it",
            added.id,
            added
                .reason
                .as_deref()
                .unwrap_or("an upstream task did not finish")
        ),
        s => format!("added `{}` ({s})", added.id),
    })
}

/// A problem as the form shows it: about the form's field rather than `orch-tui add`'s flag.
fn form_problem(d: &crate::core::diag::Diagnostic) -> String {
    const FIELDS: [(&str, &str); 6] = [
        ("--after: ", "dependencies: "),
        ("--agent: ", "agent: "),
        ("--budget: ", "budget: "),
        ("--title: ", "title: "),
        ("PROMPT: ", "prompt: "),
        ("--id: ", "id: "),
    ];
    let mut m = d.message.clone();
    if let Some((flag, field)) = FIELDS.iter().find(|(f, _)| m.starts_with(f)) {
        m = format!("{field}{}", &m[flag.len()..]);
    }
    if !d.hint.is_empty() {
        m.push_str(&format!(" — {}", d.hint));
    }
    m
}

/// A ledger call, tried again while the ledger is busy or the disk full.
fn retrying<T>(
    w: &mut Worker,
    what: &str,
    mut f: impl FnMut(&mut crate::ledger::Ledger) -> Result<T, LedgerError>,
) -> Result<T, String> {
    let mut told: Option<&'static str> = None;
    loop {
        match w.ledger().and_then(&mut f) {
            Ok(v) => return Ok(v),
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
