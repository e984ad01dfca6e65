//! What a pull request says about a run, read from the ledger and git: the tasks whose merge is
//! on the integration branch and not yet on the base, in the order they landed, each with its
//! checks, reviews, approval, spend and commits (`core::pull_request` writes the text).
//!
//! Only what the supervisor recorded counts: a task is in when the merge tip its attempt
//! recorded is in the integration branch (commit trailers prove nothing).

use std::collections::BTreeMap;

use crate::core::domain::{Actor, EventKind, Role};
use crate::core::pull_request::MergedTask;
use crate::core::state::TaskState;
use crate::git::{GitError, Repo};
use crate::ledger::{EventRow, Ledger, LedgerError};

#[derive(Debug)]
pub enum FactsError {
    Ledger(LedgerError),
    Git(GitError),
}

impl std::fmt::Display for FactsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FactsError::Ledger(e) => write!(f, "{e}"),
            FactsError::Git(e) => write!(f, "{e}"),
        }
    }
}

impl From<LedgerError> for FactsError {
    fn from(e: LedgerError) -> Self {
        FactsError::Ledger(e)
    }
}

impl From<GitError> for FactsError {
    fn from(e: GitError) -> Self {
        FactsError::Git(e)
    }
}

/// The merged tasks, in merge order, with the commit each one's merge ended on; and every other
/// task with its state (done tasks already on the base are neither).
pub struct Facts {
    pub merged: Vec<(MergedTask, String)>,
    pub left_out: Vec<(String, String)>,
}

/// The facts for a pull request of `tip` (the integration branch) onto `base_tip`.
pub fn gather(
    ledger: &Ledger,
    repo: &Repo,
    tip: &str,
    base_tip: &str,
) -> Result<Facts, FactsError> {
    let order: BTreeMap<String, usize> = repo
        .commits_between(base_tip, tip)?
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, i))
        .collect();
    let mut merged = Vec::new();
    let mut left_out = Vec::new();
    for t in ledger.tasks()? {
        let attempts = ledger.attempts(&t.id)?;
        let landed = attempts
            .iter()
            .filter(|a| a.role == Role::Agent)
            .find_map(|a| {
                let m = a.merge_tip.as_ref()?;
                order.get(m).map(|pos| (a, *pos, m.clone()))
            });
        let Some((attempt, pos, merge_tip)) = landed else {
            if t.state != TaskState::Done {
                let why = t
                    .reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(" ({r})"));
                left_out.push((t.id.clone(), format!("{}{why}", t.state)));
            }
            continue;
        };
        let events = ledger.events(0, Some(&t.id), 100_000)?;
        let n = attempt.n;
        let commits = match &attempt.merge_onto {
            Some(onto) => repo
                .one_lines(onto, &merge_tip)?
                .into_iter()
                .map(|(c, subject)| (c.get(..8).unwrap_or(&c).to_string(), subject))
                .collect(),
            None => Vec::new(),
        };
        let task = MergedTask {
            id: t.id.clone(),
            title: t.title.clone(),
            checks: checks_of(&events, n.0),
            reviews: reviews_of(&events, n.0),
            approval: approval_of(&events),
            attempts: attempts.iter().filter(|a| a.role == Role::Agent).count(),
            tokens: attempts
                .iter()
                .map(|a| (a.tokens_in.max(0) + a.tokens_out.max(0)) as u64)
                .sum(),
            cost_usd: attempts.iter().map(|a| a.cost_usd.max(0.0)).sum(),
            commits,
        };
        merged.push((pos, task, merge_tip));
    }
    merged.sort_by_key(|(pos, ..)| *pos);
    Ok(Facts {
        merged: merged.into_iter().map(|(_, t, tip)| (t, tip)).collect(),
        left_out,
    })
}

/// The last result of each check command of attempt `n` (re-checks on the rebased tree win).
fn checks_of(events: &[EventRow], n: u32) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for e in events.iter().filter(|e| e.actor == Actor::Check) {
        if e.attempt.map(|a| a.0) != Some(n) {
            continue;
        }
        let passed = match e.kind {
            EventKind::CheckPassed => true,
            EventKind::CheckFailed => false,
            _ => continue,
        };
        let cmd = e.data["command"].as_str().unwrap_or("?").to_string();
        match out.iter_mut().find(|(c, _)| *c == cmd) {
            Some(slot) => slot.1 = passed,
            None => out.push((cmd, passed)),
        }
    }
    out
}

fn reviews_of(events: &[EventRow], n: u32) -> Vec<(bool, Option<String>)> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Verdict && e.attempt.map(|a| a.0) == Some(n))
        .map(|e| {
            let notes = e.data["notes"].as_str().map(String::from);
            (e.data["approve"] == true, notes)
        })
        .collect()
}

/// Who let it merge, from its last approval.
fn approval_of(events: &[EventRow]) -> String {
    let mut veto = false;
    let mut said = String::new();
    for e in events {
        if e.kind == EventKind::Funnel && e.data["stage"] == "veto" {
            veto = true;
        }
        if e.kind == EventKind::State && e.data["to"] == "approved" {
            said = if e.actor == Actor::Human {
                "approved by a human".into()
            } else if veto {
                "the veto window passed without a veto".into()
            } else {
                "merged without waiting for a human (out of the loop)".into()
            };
        }
    }
    said
}
