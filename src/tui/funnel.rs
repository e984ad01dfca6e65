//! The review funnel as the TUI reads it: approval items for the inbox (diff stat, checks,
//! reviewer verdict), a task's funnel history for the detail, and the diff view's text.
//! Read-only: the ledger plus `git diff` through `crate::git::Repo`.

use std::collections::HashMap;

use super::state::{ApprovalInfo, DiffState, InboxItem, InboxKind};
use crate::core::domain::{Actor, AttemptNo, EventKind, FunnelStage, Role};
use crate::core::state::TaskState;
use crate::ledger::{AttemptRow, EventRow, Ledger, LedgerError, TaskRow};

/// Events read per task for the inbox and the detail.
const EVENT_LIMIT: usize = 2000;

/// The repository the ledger belongs to (`.orch/ledger.db` lives inside its work tree).
fn repo_of(ledger: &Ledger) -> Result<crate::git::Repo, String> {
    let dir = ledger
        .path()
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

/// Whether a task in this state and stage waits for the human.
pub fn is_approval(t: &TaskRow) -> bool {
    t.state == TaskState::Review && matches!(t.stage, Some(FunnelStage::Human | FunnelStage::Veto))
}

/// One inbox item per task waiting for approval. `stats` caches `git diff --stat` by range.
pub fn approval_items(
    ledger: &Ledger,
    rows: &[TaskRow],
    stats: &mut HashMap<String, String>,
) -> Result<Vec<InboxItem>, LedgerError> {
    let mut out = Vec::new();
    for t in rows.iter().filter(|t| is_approval(t)) {
        let attempts = ledger.attempts(&t.id)?;
        let agent = latest_agent_attempt(&attempts);
        let n = agent.map_or(AttemptNo(0), |a| a.n);
        let diff_stat = match agent.and_then(|a| Some((a.base.clone()?, a.commit_oid.clone()?))) {
            Some((base, tip)) => {
                let key = format!("{base}..{tip}");
                match stats.get(&key) {
                    Some(s) => s.clone(),
                    None => {
                        let s = repo_of(ledger)
                            .and_then(|r| r.diff_stat(&base, &tip).map_err(|e| e.to_string()))
                            .unwrap_or_else(|e| format!("(no diff stat: {e})"));
                        stats.insert(key, s.clone());
                        s
                    }
                }
            }
            None => "(no commit recorded)".to_string(),
        };
        let checks = ledger
            .events(0, Some(&t.id), EVENT_LIMIT)?
            .into_iter()
            .filter(|e| e.actor == Actor::Check && e.attempt == Some(n))
            .map(|e| {
                let cmd = e.data["command"].as_str().unwrap_or("?").to_string();
                (cmd, e.data["passed"].as_bool().unwrap_or(false))
            })
            .collect();
        let reviewer = attempts
            .iter()
            .filter(|a| a.role == Role::Reviewer && a.n == n)
            .max_by_key(|a| a.id);
        let stage = t.stage.unwrap_or(FunnelStage::Human);
        let text = match (stage, t.stage_until_ms) {
            (FunnelStage::Veto, Some(_)) => {
                "merges when the veto window closes unless rejected (x)".into()
            }
            _ => "waiting for approval (a approve · x reject)".into(),
        };
        out.push(InboxItem {
            task: t.id.clone(),
            kind: InboxKind::Approval(Box::new(ApprovalInfo {
                stage,
                until_ms: t.stage_until_ms,
                n,
                diff_stat: diff_stat.trim_end().to_string(),
                checks,
                verdict: reviewer.and_then(|r| r.verdict),
                verdict_notes: reviewer.and_then(|r| r.verdict_notes.clone()),
            })),
            text,
            attempt: None,
        });
    }
    Ok(out)
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
    let text = repo_of(ledger)?
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
