//! What the supervisor records of real agents (issue #8): spend as the agent reported it,
//! its conversation id, its state with the rule that said so, budgets the human raised, and
//! the gates that hold dispatch back (an account's usage limit, a profile's open breaker).

use rusqlite::{Connection, OptionalExtension, params};

use super::events::append;
use super::{Ledger, LedgerError, Result, now_ms};
use crate::core::domain::{Actor, AttemptId, AttemptNo, EventKind, Substatus};
use crate::core::ops::{EventData, GateKind};
use crate::core::usage::{Totals, Usage};

fn json(d: &EventData) -> serde_json::Value {
    serde_json::to_value(d).unwrap_or(serde_json::Value::Null)
}

fn attempt_of(tx: &Connection, id: AttemptId) -> Result<(String, AttemptNo)> {
    tx.query_row("SELECT task, n FROM attempts WHERE id = ?1", [id], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()?
    .ok_or_else(|| LedgerError::Conflict(format!("no attempt {id}")))
}

/// Raise an attempt's spend to these totals. Each figure below the recorded one keeps the
/// recorded one (spend never goes down); the rise goes through `core::usage`, so a figure out
/// of range is refused like a `worker usage` report. Nothing changes, and no event is written,
/// when nothing rose.
pub fn record_spend(
    tx: &Connection,
    id: AttemptId,
    tokens_in: u64,
    tokens_out: u64,
    cost_usd: f64,
) -> Result<()> {
    record_spend_as(tx, id, tokens_in, tokens_out, cost_usd, Actor::Supervisor)
}

/// [`record_spend`] by `actor` (an agent's hook: the supervisor then reads the new figures).
pub fn record_spend_as(
    tx: &Connection,
    id: AttemptId,
    tokens_in: u64,
    tokens_out: u64,
    cost_usd: f64,
    actor: Actor,
) -> Result<()> {
    let (task, n) = attempt_of(tx, id)?;
    let (t_in, t_out, cost): (i64, i64, f64) = tx.query_row(
        "SELECT tokens_in, tokens_out, cost_usd FROM attempts WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let old = Totals {
        tokens_in: t_in.max(0) as u64,
        tokens_out: t_out.max(0) as u64,
        cost_usd: cost,
    };
    let rise = Usage {
        tokens_in: tokens_in.saturating_sub(old.tokens_in),
        tokens_out: tokens_out.saturating_sub(old.tokens_out),
        cost_usd: if cost_usd.is_finite() && cost_usd > old.cost_usd {
            cost_usd - old.cost_usd
        } else {
            0.0
        },
    };
    if rise.tokens_in == 0 && rise.tokens_out == 0 && rise.cost_usd == 0.0 {
        return Ok(());
    }
    let new = old
        .record(&rise)
        .map_err(|e| LedgerError::BadInput(format!("spend of attempt {id}: {e}")))?;
    // The agent's own figure when it is the larger one, not a sum with rounding in it.
    let new_cost = if cost_usd.is_finite() && cost_usd >= new.cost_usd - 1e-12 {
        cost_usd.max(old.cost_usd)
    } else {
        new.cost_usd
    };
    tx.execute(
        "UPDATE attempts SET tokens_in = ?2, tokens_out = ?3, cost_usd = ?4 WHERE id = ?1",
        params![id, new.tokens_in as i64, new.tokens_out as i64, new_cost],
    )?;
    let data = EventData {
        tokens_in: Some(new.tokens_in),
        tokens_out: Some(new.tokens_out),
        cost_usd: Some(new_cost),
        ..EventData::default()
    };
    append(
        tx,
        Some(&task),
        Some(n),
        actor,
        EventKind::Spend,
        &json(&data),
    )?;
    Ok(())
}

/// The agent's conversation id. The same id again writes nothing.
pub fn session(tx: &Connection, id: AttemptId, session: &str) -> Result<()> {
    let (task, n) = attempt_of(tx, id)?;
    let changed = tx.execute(
        "UPDATE attempts SET session = ?2 WHERE id = ?1 AND session IS NOT ?2",
        params![id, session],
    )?;
    if changed == 1 {
        let data = EventData {
            session: Some(session.to_string()),
            ..EventData::default()
        };
        append(
            tx,
            Some(&task),
            Some(n),
            Actor::Supervisor,
            EventKind::Session,
            &json(&data),
        )?;
    }
    Ok(())
}

/// An attempt's substatus and question as the ledger has them: a report that says only the
/// state keeps the question recorded for that same state (`agent_state`, `hooks::set_state`).
pub(super) fn recorded_state(
    tx: &Connection,
    id: AttemptId,
) -> Result<Option<(Substatus, Option<String>)>> {
    Ok(tx
        .query_row(
            "SELECT substatus, question FROM attempts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// A live attempt's state (its substatus, the question that waits, and whether that question
/// only says the state: then one already recorded for the same state stays), with the event
/// saying which rule fired. An attempt that ended (or is already in that state with that
/// question) is left alone.
pub fn agent_state(
    tx: &Connection,
    id: AttemptId,
    (substatus, question, keep_question): (Substatus, Option<&str>, bool),
    actor: Actor,
    data: &EventData,
) -> Result<()> {
    let (task, n) = attempt_of(tx, id)?;
    let question = if substatus.is_waiting() {
        question
    } else {
        None
    };
    let kept: Option<String> = match keep_question {
        true => recorded_state(tx, id)?
            .filter(|(now, _)| *now == substatus)
            .and_then(|(_, asked)| asked),
        false => None,
    };
    let question = kept.as_deref().or(question);
    let changed = tx.execute(
        "UPDATE attempts SET substatus = ?2, question = ?3
         WHERE id = ?1 AND state IN ('starting', 'running')
           AND (substatus IS NOT ?2 OR question IS NOT ?3)",
        params![id, substatus, question],
    )?;
    if changed == 1 {
        let data = EventData {
            substatus: Some(substatus),
            ..data.clone()
        };
        append(
            tx,
            Some(&task),
            Some(n),
            actor,
            EventKind::AgentState,
            &json(&data),
        )?;
    }
    Ok(())
}

/// New budget limits for a task (the ones given; the others stay), with an `extended` event.
pub fn set_budget(
    tx: &Connection,
    task: &str,
    time_ms: Option<u64>,
    tokens: Option<u64>,
    cost_usd: Option<f64>,
    data: &EventData,
) -> Result<()> {
    if cost_usd.is_some_and(|c| !c.is_finite() || c < 0.0) {
        return Err(LedgerError::BadInput(format!(
            "a cost budget is a finite number of dollars, 0 or more (task `{task}`)"
        )));
    }
    let changed = tx.execute(
        "UPDATE tasks SET budget_time_ms = COALESCE(?2, budget_time_ms),
            budget_tokens = COALESCE(?3, budget_tokens),
            budget_cost_usd = COALESCE(?4, budget_cost_usd),
            version = version + 1, updated_ms = ?5
         WHERE id = ?1",
        params![
            task,
            time_ms.map(|v| v.min(i64::MAX as u64) as i64),
            tokens.map(|v| v.min(i64::MAX as u64) as i64),
            cost_usd,
            now_ms() as i64
        ],
    )?;
    if changed != 1 {
        return Err(LedgerError::BadInput(format!(
            "no task `{task}` in the ledger: `orch-tui status` lists the tasks"
        )));
    }
    append(
        tx,
        Some(task),
        None,
        Actor::Human,
        EventKind::Extended,
        &json(data),
    )?;
    Ok(())
}

/// Close (`until_ms` = None) or set a gate, with its event.
pub fn set_gate(
    tx: &Connection,
    kind: GateKind,
    name: &str,
    until_ms: Option<u64>,
    why: &str,
) -> Result<()> {
    match until_ms {
        Some(until) => {
            tx.execute(
                "INSERT INTO gates (kind, name, until_ms, why, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, name) DO UPDATE SET until_ms = ?3, why = ?4, updated_ms = ?5",
                params![
                    kind.as_str(),
                    name,
                    until.min(i64::MAX as u64) as i64,
                    why,
                    now_ms() as i64
                ],
            )?;
        }
        None => {
            tx.execute(
                "DELETE FROM gates WHERE kind = ?1 AND name = ?2",
                params![kind.as_str(), name],
            )?;
        }
    }
    let data = EventData {
        account: Some(name.to_string()),
        until_ms,
        why: Some(why.to_string()),
        ..EventData::default()
    };
    let event = match kind {
        GateKind::Limit => EventKind::Limit,
        GateKind::Breaker => EventKind::Breaker,
        GateKind::Budget => EventKind::BudgetExhausted,
    };
    append(tx, None, None, Actor::Supervisor, event, &json(&data))?;
    Ok(())
}

/// A gate as recorded: an account's limit or a profile's breaker, until when, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GateRow {
    pub kind: String,
    pub name: String,
    pub until_ms: u64,
    pub why: String,
}

impl Ledger {
    /// Every gate that holds dispatch back (expired ones too: the supervisor lifts them).
    pub fn gates(&self) -> Result<Vec<GateRow>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, name, until_ms, why FROM gates ORDER BY kind, name")?;
        let rows = stmt.query_map([], |r| {
            Ok(GateRow {
                kind: r.get(0)?,
                name: r.get(1)?,
                until_ms: r.get::<_, i64>(2)?.max(0) as u64,
                why: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
