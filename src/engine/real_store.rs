//! `Store` on the SQLite ledger: op lists in one transaction each, rows for the supervisor, and
//! the events other processes wrote since it last looked.

use rusqlite::OptionalExtension;

use super::world::{Store, WriteError};
use crate::core::domain::{Actor, AttemptId, EventKind};
use crate::core::ops::Op;
use crate::core::supervisor::{AttemptRec, Boot, Observed, TaskRec};
use crate::ledger::{AttemptRow, Ledger, LedgerError, TaskRow, apply_ops};

pub struct SqliteStore {
    pub ledger: Ledger,
    /// The last event this supervisor has looked at.
    last_seq: i64,
    token: Box<dyn FnMut() -> String + Send>,
}

impl SqliteStore {
    pub fn new(ledger: Ledger, token: Box<dyn FnMut() -> String + Send>) -> Result<Self, String> {
        let last_seq = ledger.last_seq().map_err(|e| e.to_string())?;
        Ok(SqliteStore {
            ledger,
            last_seq,
            token,
        })
    }
}

pub fn task_rec(t: TaskRow) -> TaskRec {
    TaskRec {
        id: t.id,
        ord: t.ord,
        title: t.title,
        prompt: t.prompt,
        state: t.state,
        deps: t.depends_on,
        priority: t.priority,
        ready_since_ms: t.ready_since_ms,
        not_before_ms: t.not_before_ms,
        capabilities: t.capabilities,
        agent: t.agent,
        failures: t.failures,
        max_attempts: t.max_attempts,
        budget_time_ms: t.budget_time_ms,
        budget_tokens: t.budget_tokens,
        budget_cost_usd: t.budget_cost_usd,
        checks: t.checks,
        risk_high: t.risk_high,
        stage: t.stage,
        stage_until_ms: t.stage_until_ms,
        note: t.note,
        reason: t.reason,
        paused_from: t.paused_from,
        resume_attempt: t.resume_attempt,
        changed_ms: t.updated_ms,
    }
}

pub fn attempt_rec(a: AttemptRow) -> AttemptRec {
    AttemptRec {
        id: a.id,
        task: a.task,
        n: a.n,
        role: a.role,
        profile: a.profile,
        epoch: a.epoch,
        state: a.state,
        substatus: a.substatus,
        pid: a.pid.and_then(|p| u32::try_from(p).ok()),
        reported: a.reported,
        verdict: a.verdict,
        verdict_notes: a.verdict_notes,
        worktree: a.worktree.unwrap_or_default(),
        branch: a.branch.unwrap_or_default(),
        log_dir: a.log_dir.unwrap_or_default(),
        base: a.base,
        commit: a.commit_oid,
        diff_lines: a.diff_lines.and_then(|d| u64::try_from(d).ok()),
        merge_tip: a.merge_tip,
        merge_onto: a.merge_onto,
        started_ms: u64::try_from(a.started_ms).unwrap_or(0),
        ended_ms: a.ended_ms.and_then(|e| u64::try_from(e).ok()).unwrap_or(0),
        session: a.session,
        continues: a.continues,
        held_ms: u64::try_from(a.held_ms).unwrap_or(0),
        spec_on: a.spec_on,
        tokens_in: u64::try_from(a.tokens_in).unwrap_or(0),
        tokens_out: u64::try_from(a.tokens_out).unwrap_or(0),
        cost_usd: if a.cost_usd.is_finite() {
            a.cost_usd.max(0.0)
        } else {
            0.0
        },
    }
}

fn text(e: LedgerError) -> String {
    e.to_string()
}

impl Store for SqliteStore {
    fn write(&mut self, ops: &[Op]) -> Result<(), WriteError> {
        let token = &mut self.token;
        match self.ledger.write(|tx| apply_ops(tx, ops, &mut **token)) {
            Ok(()) => Ok(()),
            Err(LedgerError::Conflict(m)) => Err(WriteError::Conflict(m)),
            Err(e) if e.is_transient() => Err(WriteError::Transient(e.to_string())),
            Err(e) => Err(WriteError::Fatal(e.to_string())),
        }
    }

    fn boot(&mut self) -> Result<Boot, String> {
        let tasks = self.ledger.tasks().map_err(text)?;
        let mut attempts = Vec::new();
        for t in &tasks {
            attempts.extend(self.ledger.attempts(&t.id).map_err(text)?);
        }
        let row = self.ledger.integration().map_err(text)?;
        self.last_seq = self.ledger.last_seq().map_err(text)?;
        let gates = self
            .ledger
            .gates()
            .map_err(text)?
            .into_iter()
            .filter_map(|g| {
                let kind = crate::core::ops::GateKind::parse(&g.kind)?;
                Some((kind, g.name, g.until_ms, g.why))
            })
            .collect();
        Ok(Boot {
            tasks: tasks.into_iter().map(task_rec).collect(),
            attempts: attempts.into_iter().map(attempt_rec).collect(),
            recorded_tip: row.tip,
            hold: row.hold,
            sync: row.sync,
            gates,
            ..Boot::default()
        })
    }

    fn rows(&mut self, tasks: &[String]) -> Result<Observed, String> {
        let mut out = Observed::default();
        for id in tasks {
            if let Some(t) = self.ledger.task(id).map_err(text)? {
                out.tasks.push(task_rec(t));
            }
            for a in self.ledger.attempts(id).map_err(text)? {
                out.attempts.push(attempt_rec(a));
            }
        }
        let row = self.ledger.integration().map_err(text)?;
        out.hold = Some(row.hold);
        out.integration_tip = row.tip;
        out.sync = Some(Box::new(row.sync));
        out.trusted = self.ledger.worktrees_trusted().map_err(text)?;
        for id in tasks {
            out.screen_answers
                .extend(self.ledger.screen_answers(id).map_err(text)?);
        }
        Ok(out)
    }

    fn foreign_changes(&mut self) -> Result<(Vec<String>, bool), String> {
        let events = self
            .ledger
            .events(self.last_seq, None, 10_000)
            .map_err(text)?;
        let Some(last) = events.last() else {
            return Ok((Vec::new(), false));
        };
        self.last_seq = last.seq;
        let mut tasks = Vec::new();
        let mut hold = false;
        for e in events {
            // Our own writes are already in the supervisor's model; agents' and humans' are not.
            if !matches!(e.actor, Actor::Agent | Actor::Human) {
                continue;
            }
            match e.task {
                Some(t) => tasks.push(t),
                None => {
                    hold |= matches!(
                        e.kind,
                        EventKind::Note | EventKind::IntegrationMoved | EventKind::SyncRequested
                    )
                }
            }
        }
        tasks.sort();
        tasks.dedup();
        Ok((tasks, hold))
    }

    fn token(&mut self, attempt: AttemptId) -> Option<String> {
        self.ledger
            .conn()
            .query_row("SELECT token FROM attempts WHERE id = ?1", [attempt], |r| {
                r.get(0)
            })
            .optional()
            .ok()
            .flatten()
    }

    fn check_summary(&mut self, task: &str, n: u32) -> String {
        let Ok(events) = self.ledger.events(0, Some(task), 100_000) else {
            return String::new();
        };
        let mut out = String::new();
        for e in events {
            if e.attempt.map(|a| a.0) != Some(n) || e.actor != Actor::Check {
                continue;
            }
            let cmd = e.data["command"].as_str().unwrap_or("?");
            let verdict = if e.kind == EventKind::CheckPassed {
                "passed"
            } else {
                "FAILED"
            };
            out.push_str(&format!("- {verdict}: `{cmd}`\n"));
        }
        out
    }
}
