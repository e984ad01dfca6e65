//! What the clients (`status`, the TUI header and inbox) show of real agents beyond task
//! states, read from the ledger alone: accounts paused by a limit (with when they resume),
//! profiles whose breaker is open, a spent run budget, task budgets past 80%, and agents that
//! wait for the human (a permission, a first-run dialog, a question).

use serde::Serialize;

use super::{Ledger, Result};
use crate::core::domain::Substatus;
use crate::core::state::TaskState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An account paused by a usage or rate limit until `until_ms`.
    Limit,
    /// A profile's open circuit breaker (a probe at `until_ms`).
    Breaker,
    /// The run's budget is spent: nothing new starts.
    RunBudget,
    /// A task past 80% of one of its budgets.
    Budget,
    /// A live agent waits for the human.
    Waiting,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The account (a limit) or profile (a breaker) it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl Alert {
    /// Goes in the inbox (the human can act on it); the rest is for the header.
    pub fn for_inbox(&self) -> bool {
        matches!(self.kind, AlertKind::Budget | AlertKind::Waiting)
    }

    /// The alert with its countdown as of `now_ms` ("resumes in 4m 12s").
    pub fn line(&self, now_ms: u64) -> String {
        match (self.kind, self.until_ms) {
            (AlertKind::Limit, Some(u)) => {
                format!(
                    "{} · resumes in {}",
                    self.text,
                    countdown(u.saturating_sub(now_ms))
                )
            }
            (AlertKind::Breaker, Some(u)) => {
                format!(
                    "{} · probe in {}",
                    self.text,
                    countdown(u.saturating_sub(now_ms))
                )
            }
            _ => self.text.clone(),
        }
    }
}

/// "4m 12s", "35s".
fn countdown(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

impl Ledger {
    /// Each task's spend over all its attempts (tokens in and out, dollars): what its budgets
    /// count, and what the TUI's gauges show.
    pub fn spend_by_task(&self) -> Result<std::collections::HashMap<String, (i64, f64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT task, tokens_in, tokens_out, cost_usd FROM attempts")?;
        let mut rows = stmt.query([])?;
        let mut out: std::collections::HashMap<String, (i64, f64)> = Default::default();
        while let Some(r) = rows.next()? {
            let (a, b, c): (i64, i64, f64) = (r.get(1)?, r.get(2)?, r.get(3)?);
            let e = out.entry(r.get(0)?).or_default();
            e.0 = e.0.saturating_add(a).saturating_add(b);
            e.1 += c;
        }
        Ok(out)
    }

    /// Every alert, as of `now_ms`.
    pub fn alerts(&self, now_ms: u64) -> Result<Vec<Alert>> {
        let mut out = self.gate_alerts(now_ms)?;
        out.extend(self.task_alerts()?);
        Ok(out)
    }

    /// What stops dispatch, from the `gates` table alone: limits, breakers, a spent run budget
    /// (the read model's header; its inbox derives the rest from the rows it already holds).
    pub fn gate_alerts(&self, now_ms: u64) -> Result<Vec<Alert>> {
        let mut out = Vec::new();
        for g in self.gates()? {
            let left = g.until_ms.saturating_sub(now_ms);
            let (kind, text) = match g.kind.as_str() {
                "limit" if left > 0 => (
                    AlertKind::Limit,
                    format!("⏸ {} limited ({})", g.name, g.why),
                ),
                "breaker" if left > 0 => (
                    AlertKind::Breaker,
                    format!("⛔ {} breaker open ({})", g.name, g.why),
                ),
                "breaker" => (
                    AlertKind::Breaker,
                    format!(
                        "⛔ {} breaker half-open: the next attempt probes it",
                        g.name
                    ),
                ),
                "budget" => (AlertKind::RunBudget, format!("⛔ {}", g.why)),
                _ => continue,
            };
            out.push(Alert {
                kind,
                task: None,
                name: (kind != AlertKind::RunBudget).then(|| g.name.clone()),
                attempt: None,
                text,
                until_ms: (left > 0 && kind != AlertKind::RunBudget).then_some(g.until_ms),
            });
        }
        Ok(out)
    }

    /// Task budgets past 80% and live agents waiting for the human.
    fn task_alerts(&self) -> Result<Vec<Alert>> {
        let mut out = Vec::new();
        let spend = self.spend_by_task()?;
        for t in self.tasks()? {
            if !matches!(
                t.state,
                TaskState::Ready | TaskState::Assigned | TaskState::Working | TaskState::Review
            ) {
                continue;
            }
            let (tokens, cost) = spend.get(&t.id).copied().unwrap_or((0, 0.0));
            let gauges = [
                t.budget_tokens.map(|l| {
                    (
                        "tokens",
                        tokens as f64,
                        l as f64,
                        format!("{tokens} of {l}"),
                    )
                }),
                t.budget_cost_usd
                    .map(|l| ("cost", cost, l, format!("${cost:.4} of ${l:.4}"))),
            ];
            for (what, spent, limit, words) in gauges.into_iter().flatten() {
                if limit > 0.0 && spent >= 0.8 * limit {
                    out.push(Alert {
                        kind: AlertKind::Budget,
                        task: Some(t.id.clone()),
                        name: None,
                        attempt: None,
                        text: format!(
                            "{:.0}% of its {what} budget spent ({words}): `orch-tui extend {} --{} ...`",
                            100.0 * spent / limit,
                            t.id,
                            if what == "cost" { "cost" } else { "tokens" }
                        ),
                        until_ms: None,
                    });
                }
            }
        }
        for a in self.live_attempts()? {
            let (what, how) = match a.substatus {
                Substatus::WaitingPermission => (
                    "asks permission",
                    format!(" — `orch-tui answer {} allow|always|deny`", a.task),
                ),
                Substatus::WaitingDialog => (
                    "waits at a first-run dialog",
                    format!(
                        " — `orch-tui answer {} trust` trusts the run's worktrees, or answer in its pane",
                        a.task
                    ),
                ),
                // A turn that ended without `worker done`: nothing may wait silently.
                Substatus::Idle if a.role == crate::core::domain::Role::Agent => (
                    "finished its turn",
                    format!(
                        " — review it: `orch-tui done {}`, or answer in its pane",
                        a.task
                    ),
                ),
                // Questions are the inbox's own kind already (`worker escalate`).
                _ => continue,
            };
            out.push(Alert {
                kind: AlertKind::Waiting,
                task: Some(a.task.clone()),
                name: None,
                attempt: Some(a.n.0),
                text: format!("{what}: {}{how}", a.question.unwrap_or_default()),
                until_ms: None,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::countdown;

    #[test]
    fn countdowns_read_as_time_left() {
        assert_eq!(countdown(35_000), "35s");
        assert_eq!(countdown(252_000), "4m 12s");
        assert_eq!(countdown(3_700_000), "1h 01m");
    }
}
