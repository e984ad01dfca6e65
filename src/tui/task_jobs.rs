//! The jobs behind the everyday keys: a new task and a new prompt written as `orch-tui add` and
//! `orch-tui edit` write them (their decisions in `engine::new_tasks`), a task's prompt for the
//! edit form, the worktree a shell or an editor opens in, and the integration branch's commits
//! for the done screen.

use std::sync::Arc;

use super::jobs::{JobDone, Jobs, RETRY_PAUSE};
use super::lanes::{Lane, Worker};
use crate::core::config::Config;
use crate::core::domain::Actor;
use crate::core::new_task::Draft;
use crate::core::permissions::Decision;
use crate::core::state::TaskState;
use crate::engine::new_tasks::{
    Edited, add_task, draft_task, edit_task, existing_tasks, prompt_of,
};
use crate::ledger::LedgerError;

impl Jobs {
    /// `orch-tui answer`'s write, on the write lane: the oldest permission request `task`'s
    /// agent waits on gets the human's decision (typed into the agent when it showed on screen).
    pub fn answer(&self, what: String, task: String, decision: Decision, note: Option<String>) {
        let engine = self.engine.clone();
        self.lanes.submit(
            Lane::Write,
            None,
            Box::new(move |w| {
                let result = retrying(w, &what, |l| {
                    let Some(p) = l.pending_permission(&task)? else {
                        return Ok(None);
                    };
                    l.answer_permission(&p, decision, note.as_deref(), Actor::Human, None)?;
                    Ok(Some(format!("{} {}", p.tool, p.subject)))
                });
                let message = match result {
                    Ok(Some(call)) => {
                        engine.poke();
                        match decision {
                            Decision::Allow => format!("{task}: allowed {call} (this call)"),
                            Decision::Always => format!(
                                "{task}: allowed {call}, and every call like it for this run"
                            ),
                            Decision::Deny => format!("{task}: denied {call}"),
                        }
                    }
                    Ok(None) => format!("{task}: no permission request waits any more"),
                    Err(e) => e,
                };
                w.send(JobDone::Human { what, message });
            }),
        );
    }

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
