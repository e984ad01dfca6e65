//! Performing `core::ops::Op`s: each one a compare-and-swap on the rows it expects, each writing
//! its event in the same transaction. The caller runs a list of them inside one `write`, so a list
//! lands whole or not at all; a row that was not as expected is `LedgerError::Conflict`.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::events::append;
use super::{LedgerError, Result, now_ms};
use crate::core::domain::{Actor, AttemptId, AttemptNo, EventKind, FunnelStage};
use crate::core::ops::{EventData, Finish, NewAttempt, Op, Patch};
use crate::core::state::TaskState;

/// Held time beyond this (2^53 ms, some 285,000 years) is not counted.
const MAX_HELD_MS: u64 = (1 << 53) - 1;

fn data_json(d: &EventData) -> serde_json::Value {
    serde_json::to_value(d).unwrap_or(serde_json::Value::Null)
}

/// Perform `ops` in order in the caller's transaction. `token` makes each new attempt's secret.
pub fn apply_ops(tx: &Connection, ops: &[Op], token: &mut dyn FnMut() -> String) -> Result<()> {
    for op in ops {
        apply_op(tx, op, token)?;
    }
    Ok(())
}

fn apply_op(tx: &Connection, op: &Op, token: &mut dyn FnMut() -> String) -> Result<()> {
    match op {
        Op::Transition {
            task,
            from,
            to,
            patch,
            actor,
            attempt,
            data,
        } => transition(tx, task, *from, *to, patch, *actor, *attempt, data),
        Op::SetStage {
            task,
            stage,
            until_ms,
            attempt,
            data,
        } => set_stage(tx, task, *stage, *until_ms, *attempt, data),
        Op::ExpectStage { task, stage } => {
            let found: Option<Option<FunnelStage>> = tx
                .query_row(
                    "SELECT stage FROM tasks WHERE id = ?1 AND state = 'review'",
                    params![task],
                    |r| r.get(0),
                )
                .optional()?;
            if found == Some(Some(*stage)) {
                Ok(())
            } else {
                Err(LedgerError::Conflict(format!(
                    "task `{task}` is no longer at its {} stage",
                    stage.as_str()
                )))
            }
        }
        Op::InsertAttempt(a) => insert_attempt(tx, a, &token()),
        Op::AttemptRunning { id, pid, base } => {
            // A fast agent may have reported already (asked its question through `worker
            // escalate`) before the supervisor records it as running: keep what it reported.
            let n = tx.execute(
                "UPDATE attempts SET state = 'running',
                    substatus = CASE substatus WHEN 'starting' THEN 'busy' ELSE substatus END,
                    pid = ?2, base = ?3, running_ms = ?4
                 WHERE id = ?1 AND state = 'starting'",
                params![id, pid, base, now_ms() as i64],
            )?;
            expect_one(n, || format!("attempt {id} is no longer starting"))
        }
        Op::Adopt {
            id,
            from_epoch,
            epoch,
        } => {
            let n = tx.execute(
                "UPDATE attempts SET epoch = ?3 WHERE id = ?1 AND epoch = ?2 AND state = 'running'",
                params![id, from_epoch, epoch],
            )?;
            expect_one(n, || {
                format!("attempt {id} is no longer running under epoch {from_epoch}")
            })
        }
        Op::FinishAttempt(f) => finish_attempt(tx, f),
        Op::RecordMerge { id, tip, onto } => {
            let n = tx.execute(
                "UPDATE attempts SET merge_tip = ?2, merge_onto = ?3 WHERE id = ?1",
                params![id, tip, onto],
            )?;
            expect_one(n, || format!("no attempt {id} to record a merge for"))
        }
        Op::SetIntegrationTip { expected, tip } => {
            let n = tx.execute(
                "UPDATE supervisor SET integration_tip = ?2
                 WHERE id = 1 AND integration_tip IS ?1",
                params![expected, tip],
            )?;
            expect_one(n, || {
                "the recorded integration tip changed meanwhile".to_string()
            })
        }
        Op::SetHold { hold } => {
            tx.execute(
                "UPDATE supervisor SET hold = ?1 WHERE id = 1",
                params![hold],
            )?;
            Ok(())
        }
        Op::RequestSync { refname, onto } => {
            let n = tx.execute(
                "UPDATE supervisor SET sync_ref = ?1, sync_onto = ?2, sync_from = NULL,
                    sync_tip = NULL, sync_problem = NULL
                 WHERE id = 1 AND sync_tip IS NULL",
                params![refname, onto],
            )?;
            expect_one(n, || {
                "a sync is being written to the integration branch right now (its tip is \
                 recorded); try again once it is over"
                    .to_string()
            })
        }
        Op::RecordSync { onto, from, tip } => {
            let n = tx.execute(
                "UPDATE supervisor SET sync_from = ?2, sync_tip = ?3
                 WHERE id = 1 AND sync_onto IS ?1 AND integration_tip IS ?2",
                params![onto, from, tip],
            )?;
            expect_one(n, || {
                "the sync asked for, or the recorded integration tip, changed meanwhile".to_string()
            })
        }
        Op::EndSync {
            onto,
            moved,
            problem,
        } => {
            let n = tx.execute(
                "UPDATE supervisor SET
                    base_ref = CASE WHEN ?2 THEN sync_ref ELSE base_ref END,
                    base_oid = CASE WHEN ?2 THEN sync_onto ELSE base_oid END,
                    sync_ref = NULL, sync_onto = NULL, sync_from = NULL, sync_tip = NULL,
                    sync_problem = ?3
                 WHERE id = 1 AND sync_onto IS ?1",
                params![onto, moved, problem],
            )?;
            expect_one(n, || "another sync was asked for meanwhile".to_string())
        }
        Op::SetBase { refname, oid } => {
            let n = tx.execute(
                "UPDATE supervisor SET base_ref = ?1, base_oid = ?2
                 WHERE id = 1 AND base_ref IS NULL",
                params![refname, oid],
            )?;
            expect_one(n, || "a base is recorded already".to_string())
        }
        Op::Answered { id } => answered(tx, *id),
        Op::RecordSpend {
            id,
            tokens_in,
            tokens_out,
            cost_usd,
        } => super::agents::record_spend(tx, *id, *tokens_in, *tokens_out, *cost_usd),
        Op::Session { id, session } => super::agents::session(tx, *id, session),
        Op::HeldTime { id, ms } => {
            // Capped, so the sum cannot leave SQLite's integers.
            let ms = i64::try_from((*ms).min(MAX_HELD_MS)).unwrap_or(0);
            let n = tx.execute(
                "UPDATE attempts SET held_ms = min(held_ms + ?2, ?3) WHERE id = ?1",
                params![id, ms, MAX_HELD_MS as i64],
            )?;
            expect_one(n, || format!("no attempt {id} to add held time to"))
        }
        Op::AgentState {
            id,
            substatus,
            question,
            keep_question,
            actor,
            data,
        } => super::agents::agent_state(
            tx,
            *id,
            (*substatus, question.as_deref(), *keep_question),
            *actor,
            data,
        ),
        Op::SetBudget {
            task,
            time_ms,
            tokens,
            cost_usd,
            data,
        } => super::agents::set_budget(tx, task, *time_ms, *tokens, *cost_usd, data),
        Op::SetGate {
            kind,
            name,
            until_ms,
            why,
        } => super::agents::set_gate(tx, *kind, name, *until_ms, why),
        Op::Event {
            task,
            attempt,
            actor,
            kind,
            data,
        } => append(
            tx,
            task.as_deref(),
            *attempt,
            *actor,
            *kind,
            &data_json(data),
        )
        .map(|_| ()),
    }
}

fn expect_one(changed: usize, what: impl FnOnce() -> String) -> Result<()> {
    if changed == 1 {
        Ok(())
    } else {
        Err(LedgerError::Conflict(what()))
    }
}

/// Compare-and-swap a task's state, with its event. Exactly one row must change, or nothing does.
// The arguments are the state change plus the columns of its event row; a struct would only
// rename them at every call site.
#[allow(clippy::too_many_arguments)]
pub fn transition(
    tx: &Connection,
    task: &str,
    from: TaskState,
    to: TaskState,
    patch: &Patch,
    actor: Actor,
    attempt: Option<AttemptNo>,
    data: &EventData,
) -> Result<()> {
    if !from.can_move_to(to) {
        return Err(LedgerError::Conflict(format!(
            "task `{task}`: {from} -> {to} is not a legal transition"
        )));
    }
    let now = now_ms() as i64;
    let ready_since = (to == TaskState::Ready).then_some(now);
    // Cached: settling a plan of thousands of tasks makes thousands of these.
    let changed = tx
        .prepare_cached(
            "UPDATE tasks SET state = ?3, version = version + 1, updated_ms = ?4,
            ready_since_ms = COALESCE(?5, ready_since_ms),
            failures = COALESCE(?6, failures),
            not_before_ms = COALESCE(?7, not_before_ms),
            note = CASE WHEN ?8 THEN ?9 ELSE note END,
            reason = CASE WHEN ?10 THEN ?11 ELSE reason END,
            paused_from = CASE WHEN ?12 THEN ?13 ELSE paused_from END
         WHERE id = ?1 AND state = ?2",
        )?
        .execute(params![
            task,
            from,
            to,
            now,
            ready_since,
            patch.failures,
            patch.not_before_ms.map(|v| v as i64),
            patch.note.is_some(),
            patch.note.clone().flatten(),
            patch.reason.is_some(),
            patch.reason.clone().flatten(),
            patch.paused_from.is_some(),
            patch.paused_from.flatten(),
        ])?;
    if changed != 1 {
        let actual: Option<TaskState> = tx
            .query_row("SELECT state FROM tasks WHERE id = ?1", [task], |r| {
                r.get(0)
            })
            .optional()?;
        return Err(match actual {
            None => LedgerError::BadInput(format!("no task `{task}` in the ledger")),
            Some(s) => {
                LedgerError::Conflict(format!("task `{task}` is {s}, not {from}: nothing changed"))
            }
        });
    }
    // Its own statement: only written when set, so older schemas (in migration tests) work.
    if let Some(r) = patch.resume_attempt {
        tx.execute(
            "UPDATE tasks SET resume_attempt = ?2 WHERE id = ?1",
            params![task, r],
        )?;
    }
    let data = EventData {
        from: Some(from),
        to: Some(to),
        ..data.clone()
    };
    append(
        tx,
        Some(task),
        attempt,
        actor,
        EventKind::State,
        &data_json(&data),
    )?;
    Ok(())
}

/// Record the funnel stage of a task in `review` (or clear it with `None`), with its event.
pub fn set_stage(
    tx: &Connection,
    task: &str,
    stage: Option<FunnelStage>,
    until_ms: Option<u64>,
    attempt: Option<AttemptNo>,
    data: &EventData,
) -> Result<()> {
    let n = tx.execute(
        "UPDATE tasks SET stage = ?2, stage_until_ms = ?3, version = version + 1, updated_ms = ?4
         WHERE id = ?1 AND state = 'review'",
        params![task, stage, until_ms.map(|v| v as i64), now_ms() as i64],
    )?;
    expect_one(n, || format!("task `{task}` is no longer in review"))?;
    let data = EventData {
        stage,
        until_ms,
        ..data.clone()
    };
    append(
        tx,
        Some(task),
        attempt,
        Actor::Supervisor,
        EventKind::Funnel,
        &data_json(&data),
    )?;
    Ok(())
}

/// A new attempt, with its id chosen by the caller and its secret `token`.
pub fn insert_attempt(tx: &Connection, a: &NewAttempt, token: &str) -> Result<()> {
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO attempts (id, task, n, token, epoch, profile, role, state, worktree,
            branch, log_dir, started_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'starting', ?8, ?9, ?10, ?11)",
        params![
            a.id,
            a.task,
            a.n,
            token,
            a.epoch,
            a.profile,
            a.role,
            a.worktree,
            a.branch,
            a.log_dir,
            now_ms() as i64
        ],
    )?;
    expect_one(inserted, || {
        format!("attempt {} (or {} #{}) exists already", a.id, a.task, a.n)
    })?;
    if let Some(prev) = a.continues {
        tx.execute(
            "UPDATE attempts SET continues = ?2 WHERE id = ?1",
            params![a.id, prev],
        )?;
    }
    if let Some(on) = &a.spec_on {
        tx.execute(
            "UPDATE attempts SET spec_on = ?2 WHERE id = ?1",
            params![a.id, on],
        )?;
    }
    let kind = match a.role {
        crate::core::domain::Role::Agent => EventKind::AttemptStarted,
        crate::core::domain::Role::Reviewer => EventKind::ReviewStarted,
    };
    let data = EventData {
        profile: Some(a.profile.clone()),
        epoch: Some(a.epoch),
        worktree: Some(a.worktree.clone()),
        ..EventData::default()
    };
    append(
        tx,
        Some(&a.task),
        Some(a.n),
        Actor::Supervisor,
        kind,
        &data_json(&data),
    )?;
    Ok(())
}

/// Close a live attempt with its outcome, and say so in an event.
pub fn finish_attempt(tx: &Connection, f: &Finish) -> Result<()> {
    let n = tx.execute(
        "UPDATE attempts SET state = ?2, exit_code = ?3, reason = ?4, ended_ms = ?5,
            commit_oid = COALESCE(?6, commit_oid), diff_lines = COALESCE(?7, diff_lines),
            substatus = 'ended'
         WHERE id = ?1 AND state IN ('starting', 'running')",
        params![
            f.id,
            f.outcome,
            f.exit_code,
            f.reason,
            now_ms() as i64,
            f.commit,
            f.diff_lines.map(|v| v as i64)
        ],
    )?;
    expect_one(n, || format!("attempt {} is no longer live", f.id))?;
    let (task, num): (String, AttemptNo) =
        tx.query_row("SELECT task, n FROM attempts WHERE id = ?1", [f.id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let data = EventData {
        outcome: Some(f.outcome.to_string()),
        exit_code: f.exit_code,
        why: f.reason.clone(),
        commit: f.commit.clone(),
        ..EventData::default()
    };
    append(
        tx,
        Some(&task),
        Some(num),
        Actor::Supervisor,
        EventKind::AttemptEnded,
        &data_json(&data),
    )?;
    Ok(())
}

/// The human typed an answer into a waiting agent: back to busy, with an event.
fn answered(tx: &Connection, id: AttemptId) -> Result<()> {
    let row: Option<(String, AttemptNo)> = tx
        .query_row(
            "SELECT task, n FROM attempts WHERE id = ?1
               AND substatus IN ('waiting_input', 'waiting_permission', 'waiting_dialog')",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((task, n)) = row {
        tx.execute(
            "UPDATE attempts SET substatus = 'busy', question = NULL WHERE id = ?1",
            [id],
        )?;
        append(
            tx,
            Some(&task),
            Some(n),
            Actor::Human,
            EventKind::Answered,
            &serde_json::json!({}),
        )?;
    }
    Ok(())
}

pub(super) fn deps_map(tx: &Connection) -> Result<BTreeMap<String, Vec<String>>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stmt = tx.prepare_cached("SELECT task, dep FROM deps ORDER BY task, dep")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (t, d) = row?;
        map.entry(t).or_default().push(d);
    }
    Ok(map)
}

/// Bring every waiting task where the DAG says it belongs (`core::dag`): after a human command
/// or a plan load, so the ledger is right even when no supervisor runs. Returns the tasks that
/// became ready.
pub fn settle_dag(tx: &Connection) -> Result<Vec<String>> {
    let states: BTreeMap<String, TaskState> = {
        let mut stmt = tx.prepare_cached("SELECT id, state FROM tasks")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?
    };
    let deps = deps_map(tx)?;
    let mut ready = Vec::new();
    for (id, from, to, upstream) in crate::core::dag::settle(&states, &deps) {
        let (reason, data) = match (&upstream, to) {
            (Some(up), TaskState::Blocked) => (
                Some(format!("upstream task `{up}` did not finish")),
                EventData {
                    upstream: Some(up.clone()),
                    ..EventData::default()
                },
            ),
            (_, TaskState::Ready) => (None, EventData::why("dependencies done")),
            _ => (None, EventData::why("no dependency blocks it any more")),
        };
        let patch = Patch {
            reason: Some(reason),
            ..Patch::default()
        };
        transition(tx, &id, from, to, &patch, Actor::Supervisor, None, &data)?;
        if to == TaskState::Ready {
            ready.push(id);
        }
    }
    Ok(ready)
}
