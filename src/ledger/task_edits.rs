//! Tasks added one at a time (`orch-tui add`) and prompts edited in place (`orch-tui edit`):
//! the writes of `core::new_task`'s decisions, each in the caller's transaction with its event
//! (actor `human`), so a running supervisor picks them up from the events like any human command.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::events::append;
use super::tasks::TaskDefaults;
use super::{LedgerError, Result, now_ms};
use crate::core::domain::{Actor, EventKind};
use crate::core::new_task::PromptEdit;
use crate::core::ops::EventData;
use crate::core::plan::TaskSpec;
use crate::core::state::TaskState;

/// Every task's state, by id.
pub fn task_states(tx: &Connection) -> Result<BTreeMap<String, TaskState>> {
    let mut stmt = tx.prepare_cached("SELECT id, state FROM tasks")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn data_json(d: &EventData) -> serde_json::Value {
    serde_json::to_value(d).unwrap_or(serde_json::Value::Null)
}

/// Insert a new task (`pending`, after every other task in order) with its dependencies and a
/// `task_added` event. An id taken meanwhile is a `Conflict` and nothing is written. The caller
/// settles the DAG in the same transaction (`settle_dag`), which makes it ready when it can be.
pub fn insert_task(tx: &Connection, t: &TaskSpec, d: &TaskDefaults) -> Result<()> {
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?1)",
        [&t.id],
        |r| r.get(0),
    )?;
    if taken {
        return Err(LedgerError::Conflict(format!(
            "task id `{}` was taken meanwhile; nothing was written: run the command again",
            t.id
        )));
    }
    let ord: i64 = tx.query_row("SELECT COALESCE(MAX(ord), -1) + 1 FROM tasks", [], |r| {
        r.get(0)
    })?;
    let caps = serde_json::to_string(&t.capabilities).unwrap_or_else(|_| "[]".into());
    let checks = serde_json::to_string(&t.checks).unwrap_or_else(|_| "[]".into());
    tx.execute(
        "INSERT INTO tasks (id, ord, title, spec_path, content_hash, agent, capabilities,
            priority, checks, max_attempts, budget_time_ms, budget_tokens, budget_cost_usd,
            risk_high, state, updated_ms)
         VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'pending', ?14)",
        params![
            t.id,
            ord,
            t.title,
            t.content_hash,
            t.agent,
            caps,
            t.priority,
            checks,
            t.max_attempts.unwrap_or(d.max_attempts).max(1),
            t.budget.time_ms.or(d.budget_time_ms).map(|v| v as i64),
            t.budget.tokens.or(d.budget_tokens).map(|v| v as i64),
            t.budget.cost_usd.or(d.budget_cost_usd),
            t.risk_high,
            now_ms() as i64
        ],
    )?;
    tx.execute(super::tasks::SET_PROMPT, params![t.id, t.prompt])?;
    for dep in &t.depends_on {
        tx.execute(
            "INSERT INTO deps (task, dep) VALUES (?1, ?2)",
            params![t.id, dep],
        )?;
    }
    let data = EventData {
        command: Some("add".into()),
        title: Some(t.title.clone()),
        content_hash: Some(t.content_hash.clone()),
        ..EventData::default()
    };
    append(
        tx,
        Some(&t.id),
        None,
        Actor::Human,
        EventKind::TaskAdded,
        &data_json(&data),
    )?;
    Ok(())
}

/// Write a new prompt over a task that is still in the state the edit was decided on: a new
/// spec version, a `spec_changed` event; the prompt no longer comes from a spec file. Returns
/// the new spec version.
pub fn edit_prompt(tx: &Connection, e: &PromptEdit) -> Result<i64> {
    let changed = tx.execute(
        "UPDATE tasks SET content_hash = ?3, spec_path = NULL,
            spec_version = spec_version + 1, version = version + 1, updated_ms = ?4
         WHERE id = ?1 AND state = ?2",
        params![e.task, e.state, e.content_hash, now_ms() as i64],
    )?;
    if changed != 1 {
        return Err(LedgerError::Conflict(format!(
            "task `{}` is no longer {}: nothing was changed; look at `orch-tui status` and try again",
            e.task, e.state
        )));
    }
    tx.execute(super::tasks::SET_PROMPT, params![e.task, e.prompt])?;
    let version: i64 = tx.query_row(
        "SELECT spec_version FROM tasks WHERE id = ?1",
        [&e.task],
        |r| r.get(0),
    )?;
    let data = EventData {
        command: Some("edit".into()),
        content_hash: Some(e.content_hash.clone()),
        spec_version: Some(version),
        ..EventData::default()
    };
    append(
        tx,
        Some(&e.task),
        None,
        Actor::Human,
        EventKind::SpecChanged,
        &data_json(&data),
    )?;
    Ok(version)
}
