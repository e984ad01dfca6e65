//! The review funnel as the TUI reads it beyond the inbox's items (`crate::read::inbox`): the
//! diff stat of an approval, a task's funnel history for the detail, and the diff view's text.
//! Read-only: the ledger plus `git diff` through `crate::git::Repo`, called from background
//! jobs (`jobs.rs`), never from the UI thread.

use std::path::Path;

use super::state::DiffState;
use crate::core::domain::{Actor, EventKind, Role};
use crate::ledger::{AttemptRow, EventRow, Ledger};

/// The repository the ledger belongs to (`.orch/ledger.db` lives inside its work tree).
fn repo_of(ledger_path: &Path) -> Result<crate::git::Repo, String> {
    let dir = ledger_path
        .parent()
        .ok_or_else(|| "the ledger has no directory".to_string())?;
    crate::git::Repo::open(dir).map_err(|e| e.to_string())
}

/// The newest agent attempt (not a reviewer) of a task.
fn latest_agent_attempt(attempts: &[AttemptRow]) -> Option<&AttemptRow> {
    attempts
        .iter()
        .filter(|a| a.role == Role::Agent)
        .max_by_key(|a| (a.n, a.id))
}

/// `git diff --stat base tip` in the ledger's repository (an approval's context).
pub fn diff_stat(ledger_path: &Path, base: &str, tip: &str) -> Result<String, String> {
    repo_of(ledger_path)?
        .diff_stat(base, tip)
        .map(|s| s.trim_end().to_string())
        .map_err(|e| e.to_string())
}

/// The funnel history of a task, oldest first: one line per stage change, check result,
/// reviewer verdict and human decision.
pub fn history(events: &[EventRow]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let n = e.attempt.map_or(String::new(), |n| format!("#{n} "));
            let line = match (e.actor, e.kind) {
                // A human decision clears the stage; its own event says what it was.
                (Actor::Supervisor, EventKind::Funnel) if e.data["by"] == "human" => return None,
                (Actor::Supervisor, EventKind::Funnel) => match e.data["stage"].as_str() {
                    Some(stage) => format!("stage {stage}"),
                    None => match e.data["outcome"].as_str() {
                        Some(o) => format!("funnel ended: {o}"),
                        None => "funnel ended".to_string(),
                    },
                },
                (Actor::Check, kind) => format!(
                    "{} check `{}`",
                    if kind == EventKind::CheckPassed {
                        "✓"
                    } else {
                        "✗"
                    },
                    e.data["command"].as_str().unwrap_or("?")
                ),
                (Actor::Agent, EventKind::Verdict) => {
                    let approve = e.data["approve"].as_bool().unwrap_or(false);
                    let notes = e.data["notes"].as_str().unwrap_or("");
                    format!(
                        "reviewer: {}{}{}",
                        if approve { "approve" } else { "changes" },
                        if notes.is_empty() { "" } else { " — " },
                        notes
                    )
                }
                (Actor::Human, EventKind::State) => {
                    let cmd = e.data["command"].as_str().unwrap_or("?");
                    match e.data["note"].as_str() {
                        Some(note) => format!("human {cmd}: {note}"),
                        None => format!("human {cmd}"),
                    }
                }
                (Actor::Supervisor, EventKind::State)
                    if matches!(
                        e.data["to"].as_str(),
                        Some("approved" | "done" | "escalated")
                    ) =>
                {
                    format!(
                        "-> {}{}",
                        e.data["to"].as_str().unwrap_or("?"),
                        e.data["why"]
                            .as_str()
                            .map(|w| format!(": {w}"))
                            .unwrap_or_default()
                    )
                }
                _ => return None,
            };
            Some(format!("{n}{line}"))
        })
        .collect()
}

/// The diff of a task's latest agent attempt (its commit against its base).
pub fn load_diff(ledger: &Ledger, task: &str) -> Result<DiffState, String> {
    let attempts = ledger.attempts(task).map_err(|e| e.to_string())?;
    let a = latest_agent_attempt(&attempts)
        .ok_or_else(|| format!("{task} has no attempt yet: no diff"))?;
    let (Some(base), Some(tip)) = (a.base.clone(), a.commit_oid.clone()) else {
        return Err(format!("{task} attempt {} has no commit yet: no diff", a.n));
    };
    let text = repo_of(ledger.path())?
        .diff(&base, &tip)
        .map_err(|e| e.to_string())?;
    let short = |s: &str| s.chars().take(8).collect::<String>();
    Ok(DiffState {
        task: task.to_string(),
        range: format!("#{} {}..{}", a.n, short(&base), short(&tip)),
        lines: text.lines().map(|l| l.replace('\t', "    ")).collect(),
        scroll: 0,
    })
}
