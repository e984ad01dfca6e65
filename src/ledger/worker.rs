//! Reports from inside an agent (`orch-tui worker ...`), fenced by the attempt's token and the
//! supervisor's epoch, idempotent by key.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::events::append;
use super::{Ledger, LedgerError, Result, now_ms};
use crate::core::domain::{Actor, AttemptId, AttemptNo, AttemptState, EventKind, Role};
use crate::core::usage::{Totals, Usage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "lowercase")]
pub enum WorkerCall {
    Heartbeat {
        note: Option<String>,
    },
    Done {
        summary: Option<String>,
    },
    Fail {
        reason: Option<String>,
    },
    Escalate {
        reason: String,
    },
    Usage {
        tokens_in: u64,
        tokens_out: u64,
        cost_usd: f64,
    },
    /// A reviewer's answer: approve, or request changes with notes.
    Verdict {
        approve: bool,
        notes: Option<String>,
    },
}

impl WorkerCall {
    fn kind(&self) -> EventKind {
        match self {
            WorkerCall::Heartbeat { .. } => EventKind::Heartbeat,
            WorkerCall::Done { .. } => EventKind::AgentDone,
            WorkerCall::Fail { .. } => EventKind::AgentFail,
            WorkerCall::Escalate { .. } => EventKind::AgentQuestion,
            WorkerCall::Usage { .. } => EventKind::Usage,
            WorkerCall::Verdict { .. } => EventKind::Verdict,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReply {
    pub ok: bool,
    pub message: String,
    pub seq: i64,
}

fn apply(tx: &Connection, attempt_id: AttemptId, role: Role, call: &WorkerCall) -> Result<()> {
    let now = now_ms() as i64;
    match call {
        WorkerCall::Verdict { approve, notes } => {
            if role != Role::Reviewer {
                return Err(LedgerError::BadInput(
                    "only a reviewer attempt gives a verdict; this agent should use `worker done`"
                        .into(),
                ));
            }
            tx.execute(
                "UPDATE attempts SET verdict = ?2, verdict_notes = ?3, reported = 'done', last_beat_ms = ?4 WHERE id = ?1",
                params![attempt_id, if *approve { "approve" } else { "changes" }, notes, now],
            )?;
        }
        WorkerCall::Heartbeat { .. } => {
            tx.execute(
                "UPDATE attempts SET last_beat_ms = ?2 WHERE id = ?1",
                params![attempt_id, now],
            )?;
        }
        WorkerCall::Done { .. } => {
            tx.execute(
                "UPDATE attempts SET reported = 'done', last_beat_ms = ?2 WHERE id = ?1",
                params![attempt_id, now],
            )?;
        }
        WorkerCall::Fail { .. } => {
            tx.execute(
                "UPDATE attempts SET reported = 'fail', last_beat_ms = ?2 WHERE id = ?1",
                params![attempt_id, now],
            )?;
        }
        WorkerCall::Escalate { reason } => {
            tx.execute(
                "UPDATE attempts SET question = ?2, substatus = 'waiting_input', last_beat_ms = ?3 WHERE id = ?1",
                params![attempt_id, reason, now],
            )?;
        }
        WorkerCall::Usage {
            tokens_in,
            tokens_out,
            cost_usd,
        } => {
            let report = Usage {
                tokens_in: *tokens_in,
                tokens_out: *tokens_out,
                cost_usd: *cost_usd,
            };
            let (t_in, t_out, cost): (i64, i64, f64) = tx.query_row(
                "SELECT tokens_in, tokens_out, cost_usd FROM attempts WHERE id = ?1",
                [attempt_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let totals = Totals {
                tokens_in: t_in.max(0) as u64,
                tokens_out: t_out.max(0) as u64,
                cost_usd: cost,
            }
            .record(&report)
            .map_err(|e| LedgerError::BadInput(e.to_string()))?;
            // Whole new totals, computed above without overflow: SQLite's own `+` would turn
            // an overflowing integer into a REAL.
            tx.execute(
                "UPDATE attempts SET tokens_in = ?2, tokens_out = ?3, cost_usd = ?4,
                    last_beat_ms = ?5 WHERE id = ?1",
                params![
                    attempt_id,
                    totals.tokens_in as i64,
                    totals.tokens_out as i64,
                    totals.cost_usd,
                    now
                ],
            )?;
        }
    }
    Ok(())
}

/// DESIGN §4: a report is accepted only from a process descended from the attempt's agent (or,
/// before its pid is recorded, from the supervisor that started it). A token copied into an
/// unrelated process — another attempt's agent, a shell — is refused.
fn check_caller(
    tx: &Connection,
    task: &str,
    n: AttemptNo,
    agent_pid: Option<i64>,
    caller: &Caller,
) -> Result<()> {
    let (ancestor, whose) = match agent_pid {
        Some(pid) => (pid, "the attempt's agent"),
        None => {
            let sup: Option<i64> = tx
                .query_row("SELECT pid FROM supervisor WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            (
                sup.unwrap_or(0),
                "the supervisor that is starting the attempt",
            )
        }
    };
    let ancestor = i32::try_from(ancestor).unwrap_or(0);
    if (caller.descends_from)(ancestor) {
        return Ok(());
    }
    Err(LedgerError::Refused(format!(
        "refused: this process (pid {}) was not started by {whose} (pid {ancestor}) of \
         attempt {n} of task `{task}`; only the agent and its children may report for it. \
         Nothing changed",
        caller.pid
    )))
}

/// The attempt `n` of `task` whose token is `token`, if it is live in the current epoch and
/// `caller` descends from its agent: every report from inside an agent (`worker`, `hook`)
/// passes here. Anything else is refused and changes nothing.
pub(super) fn fence(
    tx: &Connection,
    task: &str,
    n: AttemptNo,
    token: &str,
    caller: &Caller,
) -> Result<(AttemptId, Role)> {
    // An agent attempt and its reviewer share `n`; the token tells them apart.
    let rows: Vec<(AttemptId, String, i64, AttemptState, Role, Option<i64>)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, token, epoch, state, role, pid FROM attempts WHERE task = ?1 AND n = ?2",
        )?;
        stmt.query_map(params![task, n], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<std::result::Result<_, _>>()?
    };
    if rows.is_empty() {
        return Err(LedgerError::Refused(format!(
            "no attempt {n} of task `{task}` in this ledger: check ORCH_TASK and ORCH_ATTEMPT"
        )));
    }
    let Some((id, _, epoch, state, role, pid)) = rows.into_iter().find(|r| r.1 == token) else {
        return Err(LedgerError::Refused(format!(
            "stale or wrong token for attempt {n} of task `{task}`: this report is refused and changes nothing"
        )));
    };
    // A session kept alive through review (`core::supervisor::kept`) goes on as a later
    // attempt that continues this one in the same process: what it reports is that attempt's.
    let (id, epoch, state, role) = match state.is_live() {
        true => (id, epoch, state, role),
        false => successor(tx, id, pid)?.unwrap_or((id, epoch, state, role)),
    };
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(epoch), 0) FROM supervisor", [], |r| {
        r.get(0)
    })?;
    // The instant between a new supervisor's epoch and its adoption of this attempt (it runs
    // in a holder): the report waits for the answer rather than being lost (`worker` retries).
    if epoch < current && state == AttemptState::Running {
        return Err(LedgerError::Restarting(format!(
            "attempt {n} of task `{task}` belongs to the previous supervisor (epoch {epoch}) and \
             the one starting now (epoch {current}) has not taken it over yet: nothing changed"
        )));
    }
    if epoch != current || !state.is_live() {
        return Err(LedgerError::Refused(format!(
            "attempt {n} of task `{task}` is no longer live ({state}, epoch {epoch}, supervisor epoch {current}): refused, nothing changed"
        )));
    }
    check_caller(tx, task, n, pid, caller)?;
    Ok((id, role))
}

/// The latest attempt that continues `id` in the same process (`pid`), attempt after attempt:
/// an interactive session kept through review keeps the env (task, attempt number, token) it
/// was started with, while each change request it takes is an attempt of its own.
fn successor(
    tx: &Connection,
    id: AttemptId,
    pid: Option<i64>,
) -> Result<Option<(AttemptId, i64, AttemptState, Role)>> {
    let Some(pid) = pid else { return Ok(None) };
    let mut stmt = tx.prepare_cached(
        "SELECT id, epoch, state, role FROM attempts WHERE continues = ?1 AND pid = ?2 \
         ORDER BY id DESC LIMIT 1",
    )?;
    let (mut at, mut found) = (id, None);
    // Bounded: a chain is one attempt per change request.
    for _ in 0..1000 {
        let next: Option<(AttemptId, i64, AttemptState, Role)> = stmt
            .query_row(params![at, pid], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let Some(row) = next else { break };
        at = row.0;
        found = Some(row);
    }
    Ok(found)
}

/// Who reports: a process, and how to tell whether it descends from another (the process tree
/// in `/proc` for a real caller: [`Caller::this_process`]).
pub struct Caller<'a> {
    pub pid: u32,
    pub descends_from: &'a dyn Fn(i32) -> bool,
}

impl Caller<'static> {
    /// The running process, checked against the real process tree.
    pub fn this_process() -> Caller<'static> {
        fn ours(ancestor: i32) -> bool {
            crate::os::descends_from(std::process::id() as i32, ancestor)
        }
        Caller {
            pid: std::process::id(),
            descends_from: &ours,
        }
    }
}

impl Ledger {
    /// Accept a report from attempt `n` of `task` if `token` is that attempt's token, the attempt is
    /// live and belongs to the current epoch, and `caller` (the reporting process) descends from
    /// the attempt's agent. A repeated idempotency key returns the first reply.
    ///
    /// Until the supervisor has recorded the agent's pid (the attempt is still `starting`; a fast
    /// agent can report before that), the caller must descend from the supervisor of the current
    /// epoch instead: every agent is started by it.
    pub fn worker_report(
        &mut self,
        task: &str,
        n: AttemptNo,
        token: &str,
        call: &WorkerCall,
        idempotency_key: Option<&str>,
        caller: &Caller,
    ) -> Result<WorkerReply> {
        let request = serde_json::to_string(&(task, n, call)).unwrap_or_default();
        // Keys are scoped to the attempt's token: another attempt may reuse a key, and a wrong or
        // stale token never gets a stored reply (it is fenced below like any other report).
        let user_key = idempotency_key.unwrap_or_default();
        let scoped = idempotency_key.map(|k| format!("{token}/{k}"));
        let idempotency_key = scoped.as_deref();
        self.write(|tx| {
            if let Some(key) = idempotency_key {
                let prior: Option<(String, String)> = tx
                    .query_row(
                        "SELECT request, reply FROM idempotency WHERE key = ?1",
                        [key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((req, reply)) = prior {
                    if req != request {
                        return Err(LedgerError::Conflict(format!(
                            "idempotency key `{user_key}` was used for a different request; use a new key"
                        )));
                    }
                    return serde_json::from_str(&reply)
                        .map_err(|e| LedgerError::BadInput(format!("stored reply unreadable: {e}")));
                }
            }
            let (id, role) = fence(tx, task, n, token, caller)?;
            apply(tx, id, role, call)?;
            let data = serde_json::to_value(call).unwrap_or_default();
            let seq = append(tx, Some(task), Some(n), Actor::Agent, call.kind(), &data)?;
            let reply = WorkerReply {
                ok: true,
                message: format!("{} recorded for {task} attempt {n}", call.kind()),
                seq,
            };
            if let Some(key) = idempotency_key {
                tx.execute(
                    "INSERT INTO idempotency (key, request, reply, exit_code, ts_ms) VALUES (?1, ?2, ?3, 0, ?4)",
                    params![key, request, serde_json::to_string(&reply).unwrap_or_default(), now_ms() as i64],
                )?;
            }
            Ok(reply)
        })
    }
}
