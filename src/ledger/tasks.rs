//! Tasks: loading a plan, compare-and-swap transitions, and the queries the engine and CLI use.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::events::append;
use super::{Ledger, LedgerError, Result, now_ms};
use crate::core::domain::{Actor, AttemptNo, EventKind, FunnelStage};
use crate::core::plan::Plan;
use crate::core::schedule::descendants;
use crate::core::state::TaskState;

#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    pub id: String,
    pub ord: i64,
    pub title: String,
    pub prompt: String,
    pub spec_path: Option<String>,
    pub spec_version: i64,
    pub agent: Option<String>,
    pub capabilities: Vec<String>,
    pub priority: i64,
    pub checks: Vec<String>,
    pub max_attempts: u32,
    pub budget_time_ms: Option<u64>,
    pub budget_tokens: Option<u64>,
    pub budget_cost_usd: Option<f64>,
    pub state: TaskState,
    pub paused_from: Option<TaskState>,
    pub version: i64,
    pub failures: u32,
    pub not_before_ms: u64,
    pub ready_since_ms: u64,
    pub note: Option<String>,
    pub reason: Option<String>,
    /// The funnel stage while in `review`.
    pub stage: Option<FunnelStage>,
    /// For `veto`: when the merge goes ahead.
    pub stage_until_ms: Option<u64>,
    pub risk_high: bool,
    pub depends_on: Vec<String>,
}

const TASK_COLS: &str = "id, ord, title, prompt, spec_path, spec_version, agent, capabilities, priority, \
    checks, max_attempts, budget_time_ms, budget_tokens, budget_cost_usd, state, paused_from, version, \
    failures, not_before_ms, ready_since_ms, note, reason, stage, stage_until_ms, risk_high";

fn task_from_row(r: &Row) -> rusqlite::Result<TaskRow> {
    let caps: String = r.get(7)?;
    let checks: String = r.get(9)?;
    Ok(TaskRow {
        id: r.get(0)?,
        ord: r.get(1)?,
        title: r.get(2)?,
        prompt: r.get(3)?,
        spec_path: r.get(4)?,
        spec_version: r.get(5)?,
        agent: r.get(6)?,
        capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        priority: r.get(8)?,
        checks: serde_json::from_str(&checks).unwrap_or_default(),
        max_attempts: r.get(10)?,
        budget_time_ms: r.get::<_, Option<i64>>(11)?.map(|v| v as u64),
        budget_tokens: r.get::<_, Option<i64>>(12)?.map(|v| v as u64),
        budget_cost_usd: r.get(13)?,
        state: r.get(14)?,
        paused_from: r.get(15)?,
        version: r.get(16)?,
        failures: r.get(17)?,
        not_before_ms: r.get::<_, i64>(18)? as u64,
        ready_since_ms: r.get::<_, i64>(19)? as u64,
        note: r.get(20)?,
        reason: r.get(21)?,
        stage: r.get(22)?,
        stage_until_ms: r.get::<_, Option<i64>>(23)?.map(|v| v as u64),
        risk_high: r.get(24)?,
        depends_on: Vec::new(),
    })
}

/// Optional columns a transition sets in the same statement as the state.
#[derive(Debug, Default, Clone)]
pub struct Patch {
    pub failures: Option<u32>,
    pub not_before_ms: Option<u64>,
    pub note: Option<Option<String>>,
    pub reason: Option<Option<String>>,
    pub paused_from: Option<Option<String>>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct LoadReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
}

/// Compare-and-swap a task's state, with its event, in the caller's transaction.
/// Exactly one row must change, or nothing does.
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
    data: serde_json::Value,
) -> Result<()> {
    if !from.can_move_to(to) {
        return Err(LedgerError::Conflict(format!(
            "task `{task}`: {from} -> {to} is not a legal transition"
        )));
    }
    let now = now_ms() as i64;
    let ready_since = if to == TaskState::Ready {
        Some(now)
    } else {
        None
    };
    let changed = tx.execute(
        "UPDATE tasks SET state = ?3, version = version + 1, updated_ms = ?4,
            ready_since_ms = COALESCE(?5, ready_since_ms),
            failures = COALESCE(?6, failures),
            not_before_ms = COALESCE(?7, not_before_ms),
            note = CASE WHEN ?8 THEN ?9 ELSE note END,
            reason = CASE WHEN ?10 THEN ?11 ELSE reason END,
            paused_from = CASE WHEN ?12 THEN ?13 ELSE paused_from END
         WHERE id = ?1 AND state = ?2",
        params![
            task,
            from.as_str(),
            to.as_str(),
            now,
            ready_since,
            patch.failures,
            patch.not_before_ms.map(|v| v as i64),
            patch.note.is_some(),
            patch.note.clone().flatten(),
            patch.reason.is_some(),
            patch.reason.clone().flatten(),
            patch.paused_from.is_some(),
            patch.paused_from.clone().flatten(),
        ],
    )?;
    if changed != 1 {
        let actual: Option<String> = tx
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
    let mut data = data;
    if let Some(obj) = data.as_object_mut() {
        obj.insert("from".into(), from.as_str().into());
        obj.insert("to".into(), to.as_str().into());
    }
    append(tx, Some(task), attempt, actor, EventKind::State, &data)?;
    Ok(())
}

/// Record the funnel stage of a task in `review` (or clear it with `None`), with its event.
pub fn set_stage(
    tx: &Connection,
    task: &str,
    stage: Option<FunnelStage>,
    until_ms: Option<u64>,
    attempt: Option<AttemptNo>,
    data: serde_json::Value,
) -> Result<()> {
    tx.execute(
        "UPDATE tasks SET stage = ?2, stage_until_ms = ?3, version = version + 1, updated_ms = ?4 WHERE id = ?1",
        params![task, stage, until_ms.map(|v| v as i64), now_ms() as i64],
    )?;
    let mut data = data;
    if let Some(obj) = data.as_object_mut() {
        obj.insert("stage".into(), stage.map(FunnelStage::as_str).into());
        if let Some(u) = until_ms {
            obj.insert("until_ms".into(), u.into());
        }
    }
    append(
        tx,
        Some(task),
        attempt,
        Actor::Supervisor,
        EventKind::Funnel,
        &data,
    )?;
    Ok(())
}

fn state_of(tx: &Connection, id: &str) -> Result<Option<TaskState>> {
    Ok(tx
        .query_row("SELECT state FROM tasks WHERE id = ?1", [id], |r| r.get(0))
        .optional()?)
}

/// Move every pending task whose dependencies are all `done` to `ready`. Returns them.
pub fn promote_ready(tx: &Connection) -> Result<Vec<String>> {
    let ids: Vec<String> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id FROM tasks t WHERE state = 'pending' AND NOT EXISTS (
                SELECT 1 FROM deps d JOIN tasks u ON u.id = d.dep
                WHERE d.task = t.id AND u.state <> 'done') ORDER BY ord",
        )?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?
    };
    for id in &ids {
        transition(
            tx,
            id,
            TaskState::Pending,
            TaskState::Ready,
            &Patch::default(),
            Actor::Supervisor,
            None,
            serde_json::json!({ "why": "dependencies done" }),
        )?;
    }
    Ok(ids)
}

fn deps_map(tx: &Connection) -> Result<BTreeMap<String, Vec<String>>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stmt = tx.prepare_cached("SELECT task, dep FROM deps ORDER BY task, dep")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (t, d) = row?;
        map.entry(t).or_default().push(d);
    }
    Ok(map)
}

/// A failed or cancelled task blocks every pending or ready descendant, in the same transaction.
pub fn block_descendants(tx: &Connection, root: &str) -> Result<Vec<String>> {
    let mut blocked = Vec::new();
    for id in descendants(root, &deps_map(tx)?) {
        let from = match state_of(tx, &id)? {
            Some(s @ (TaskState::Pending | TaskState::Ready)) => s,
            _ => continue,
        };
        transition(
            tx,
            &id,
            from,
            TaskState::Blocked,
            &Patch {
                reason: Some(Some(format!("upstream task `{root}` did not finish"))),
                ..Patch::default()
            },
            Actor::Supervisor,
            None,
            serde_json::json!({ "upstream": root }),
        )?;
        blocked.push(id);
    }
    Ok(blocked)
}

/// A retried upstream unblocks its descendants (they wait as `pending` again).
pub fn unblock_descendants(tx: &Connection, root: &str) -> Result<Vec<String>> {
    let mut unblocked = Vec::new();
    for id in descendants(root, &deps_map(tx)?) {
        if state_of(tx, &id)? == Some(TaskState::Blocked) {
            transition(
                tx,
                &id,
                TaskState::Blocked,
                TaskState::Pending,
                &Patch {
                    reason: Some(None),
                    ..Patch::default()
                },
                Actor::Supervisor,
                None,
                serde_json::json!({ "upstream": root }),
            )?;
            unblocked.push(id);
        }
    }
    Ok(unblocked)
}

/// Defaults a plan task falls back to when it names none.
pub struct TaskDefaults {
    pub max_attempts: u32,
    pub budget_time_ms: Option<u64>,
    pub budget_tokens: Option<u64>,
    pub budget_cost_usd: Option<f64>,
}

impl Ledger {
    /// Load a validated plan. Idempotent: the same plan twice changes nothing; a changed prompt or
    /// spec records a new spec version. Tasks already started keep their dependencies.
    pub fn load_plan(&mut self, plan: &Plan, file: &str, d: &TaskDefaults) -> Result<LoadReport> {
        self.write(|tx| {
            let mut report = LoadReport::default();
            let now = now_ms() as i64;
            let existing_name: Option<String> = tx
                .query_row("SELECT name FROM plan WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            if existing_name.as_deref() != Some(plan.name.as_str()) {
                tx.execute(
                    "INSERT INTO plan (id, name, file, loaded_ms) VALUES (1, ?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET name = ?1, file = ?2, loaded_ms = ?3",
                    params![plan.name, file, now],
                )?;
            }
            let base_ord: i64 =
                tx.query_row("SELECT COALESCE(MAX(ord), -1) + 1 FROM tasks", [], |r| r.get(0))?;
            for (i, t) in plan.tasks.iter().enumerate() {
                let old: Option<(String, i64)> = tx
                    .query_row(
                        "SELECT content_hash, spec_version FROM tasks WHERE id = ?1",
                        [&t.id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let caps = serde_json::to_string(&t.capabilities).unwrap_or_default();
                let checks = serde_json::to_string(&t.checks).unwrap_or_default();
                let budget_time = t.budget.time_ms.or(d.budget_time_ms).map(|v| v as i64);
                let budget_tokens = t.budget.tokens.or(d.budget_tokens).map(|v| v as i64);
                let budget_cost = t.budget.cost_usd.or(d.budget_cost_usd);
                let max_attempts = t.max_attempts.unwrap_or(d.max_attempts).max(1);
                match old {
                    None => {
                        tx.execute(
                            "INSERT INTO tasks (id, ord, title, prompt, spec_path, content_hash, agent,
                                capabilities, priority, checks, max_attempts, budget_time_ms,
                                budget_tokens, budget_cost_usd, risk_high, state, updated_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 'pending', ?16)",
                            params![
                                t.id, base_ord + i as i64, t.title, t.prompt, t.spec_path, t.content_hash,
                                t.agent, caps, t.priority, checks, max_attempts, budget_time,
                                budget_tokens, budget_cost, t.risk_high, now
                            ],
                        )?;
                        append(tx, Some(&t.id), None, Actor::Human, EventKind::TaskAdded,
                            &serde_json::json!({ "title": t.title, "content_hash": t.content_hash }))?;
                        report.added.push(t.id.clone());
                    }
                    Some((hash, version)) if hash != t.content_hash => {
                        tx.execute(
                            "UPDATE tasks SET title = ?2, prompt = ?3, spec_path = ?4, content_hash = ?5,
                                spec_version = ?6, updated_ms = ?7 WHERE id = ?1",
                            params![t.id, t.title, t.prompt, t.spec_path, t.content_hash, version + 1, now],
                        )?;
                        append(tx, Some(&t.id), None, Actor::Human, EventKind::SpecChanged,
                            &serde_json::json!({ "spec_version": version + 1, "content_hash": t.content_hash }))?;
                        report.changed.push(t.id.clone());
                    }
                    Some(_) => report.unchanged += 1,
                }
            }
            // Dependencies: only for tasks that have not started (changing the past would lie).
            for t in &plan.tasks {
                if state_of(tx, &t.id)? != Some(TaskState::Pending) {
                    continue;
                }
                let mut current: Vec<String> = {
                    let mut stmt = tx.prepare_cached("SELECT dep FROM deps WHERE task = ?1 ORDER BY dep")?;
                    stmt.query_map([&t.id], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?
                };
                let mut wanted = t.depends_on.clone();
                wanted.sort();
                current.sort();
                if current != wanted {
                    tx.execute("DELETE FROM deps WHERE task = ?1", [&t.id])?;
                    for dep in &wanted {
                        tx.execute("INSERT INTO deps (task, dep) VALUES (?1, ?2)", params![t.id, dep])?;
                    }
                    if !report.added.contains(&t.id) && !report.changed.contains(&t.id) {
                        report.changed.push(t.id.clone());
                    }
                }
            }
            promote_ready(tx)?;
            Ok(report)
        })
    }

    pub fn tasks(&self) -> Result<Vec<TaskRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks ORDER BY ord"))?;
        let mut rows: Vec<TaskRow> = stmt
            .query_map([], task_from_row)?
            .collect::<std::result::Result<_, _>>()?;
        let deps = deps_map(&self.conn)?;
        for r in &mut rows {
            r.depends_on = deps.get(&r.id).cloned().unwrap_or_default();
        }
        Ok(rows)
    }

    pub fn task(&self, id: &str) -> Result<Option<TaskRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"))?;
        let row = stmt.query_row([id], task_from_row).optional()?;
        Ok(row.map(|mut r| {
            r.depends_on = deps_map(&self.conn)
                .ok()
                .and_then(|m| m.get(id).cloned())
                .unwrap_or_default();
            r
        }))
    }

    /// Tasks in one state, in plan order (without their dependency lists).
    pub fn tasks_in(&self, state: TaskState) -> Result<Vec<TaskRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {TASK_COLS} FROM tasks WHERE state = ?1 ORDER BY ord"
        ))?;
        let rows = stmt.query_map([state.as_str()], task_from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The earliest moment something is due without any event: a retry's backoff ending, or a
    /// veto window closing.
    pub fn next_due_ms(&self) -> Result<Option<u64>> {
        let due: Option<i64> = self.conn.query_row(
            "SELECT MIN(t) FROM (
                SELECT not_before_ms AS t FROM tasks WHERE state = 'ready' AND not_before_ms > 0
                UNION ALL
                SELECT stage_until_ms FROM tasks WHERE state = 'review' AND stage = 'veto')",
            [],
            |r| r.get(0),
        )?;
        Ok(due.map(|v| v.max(0) as u64))
    }

    /// Counts of tasks per state.
    pub fn state_counts(&self) -> Result<BTreeMap<String, usize>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM tasks GROUP BY state")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
