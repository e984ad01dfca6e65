//! Tasks: loading a plan, compare-and-swap transitions, and the queries the engine and CLI use.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::events::append;
use super::{Ledger, Result, now_ms};
use crate::core::domain::{Actor, EventKind, FunnelStage};
use crate::core::plan::Plan;
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
    /// The attempt the next one continues (its worktree and conversation), when set.
    pub resume_attempt: Option<crate::core::domain::AttemptId>,
    /// When the row last changed (for a paused task: about when it was paused).
    pub updated_ms: u64,
}

/// The prompt lives in `task_prompts` (schema v8: kept out of the rows every scan reads).
const TASK_COLS: &str = "id, ord, title, \
    COALESCE((SELECT prompt FROM task_prompts WHERE task = tasks.id), ''), spec_path, spec_version, agent, capabilities, priority, \
    checks, max_attempts, budget_time_ms, budget_tokens, budget_cost_usd, state, paused_from, version, \
    failures, not_before_ms, ready_since_ms, note, reason, stage, stage_until_ms, risk_high, resume_attempt, updated_ms";

/// A task's prompt, new or replaced (`?1` the task, `?2` the prompt).
pub(super) const SET_PROMPT: &str = "INSERT INTO task_prompts (task, prompt) VALUES (?1, ?2)
    ON CONFLICT (task) DO UPDATE SET prompt = excluded.prompt";

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
        resume_attempt: r.get(25)?,
        updated_ms: r.get::<_, i64>(26)?.max(0) as u64,
    })
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct LoadReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
}

/// Defaults a plan task falls back to when it names none.
pub struct TaskDefaults {
    pub max_attempts: u32,
    pub budget_time_ms: Option<u64>,
    pub budget_tokens: Option<u64>,
    pub budget_cost_usd: Option<f64>,
}

/// A task as it stands inside the caller's transaction (with its dependencies).
pub fn task_in(tx: &Connection, id: &str) -> Result<Option<TaskRow>> {
    let mut stmt = tx.prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"))?;
    let row = stmt.query_row([id], task_from_row).optional()?;
    Ok(match row {
        Some(mut r) => {
            let mut deps =
                tx.prepare_cached("SELECT dep FROM deps WHERE task = ?1 ORDER BY dep")?;
            r.depends_on = deps
                .query_map([id], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            Some(r)
        }
        None => None,
    })
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
            // What the ledger holds, read once: one query per task made loading grow with the
            // square of the plan once the ledger was large.
            let mut known: HashMap<String, (String, i64, TaskState)> = HashMap::new();
            {
                let mut stmt =
                    tx.prepare_cached("SELECT id, content_hash, spec_version, state FROM tasks")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?;
                for row in rows {
                    let (id, v) = row?;
                    known.insert(id, v);
                }
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO tasks (id, ord, title, spec_path, content_hash, agent,
                    capabilities, priority, checks, max_attempts, budget_time_ms,
                    budget_tokens, budget_cost_usd, risk_high, state, updated_ms)
                 VALUES (?1, ?2, ?3, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 'pending', ?16)",
            )?;
            let mut set_prompt = tx.prepare_cached(SET_PROMPT)?;
            let mut touched: HashSet<&str> = HashSet::new();
            for (i, t) in plan.tasks.iter().enumerate() {
                let caps = serde_json::to_string(&t.capabilities).unwrap_or_default();
                let checks = serde_json::to_string(&t.checks).unwrap_or_default();
                let budget_time = t.budget.time_ms.or(d.budget_time_ms).map(|v| v as i64);
                let budget_tokens = t.budget.tokens.or(d.budget_tokens).map(|v| v as i64);
                let budget_cost = t.budget.cost_usd.or(d.budget_cost_usd);
                let max_attempts = t.max_attempts.unwrap_or(d.max_attempts).max(1);
                match known.get(&t.id) {
                    None => {
                        insert.execute(params![
                            t.id, base_ord + i as i64, t.title, t.prompt, t.spec_path, t.content_hash,
                            t.agent, caps, t.priority, checks, max_attempts, budget_time,
                            budget_tokens, budget_cost, t.risk_high, now
                        ])?;
                        set_prompt.execute(params![t.id, t.prompt])?;
                        append(tx, Some(&t.id), None, Actor::Human, EventKind::TaskAdded,
                            &serde_json::json!({ "title": t.title, "content_hash": t.content_hash }))?;
                        report.added.push(t.id.clone());
                        touched.insert(&t.id);
                        known.insert(t.id.clone(), (t.content_hash.clone(), 1, TaskState::Pending));
                    }
                    Some((hash, version, _)) if *hash != t.content_hash => {
                        let version = *version;
                        tx.execute(
                            "UPDATE tasks SET title = ?2, spec_path = ?3, content_hash = ?4,
                                spec_version = ?5, updated_ms = ?6 WHERE id = ?1",
                            params![t.id, t.title, t.spec_path, t.content_hash, version + 1, now],
                        )?;
                        set_prompt.execute(params![t.id, t.prompt])?;
                        append(tx, Some(&t.id), None, Actor::Human, EventKind::SpecChanged,
                            &serde_json::json!({ "spec_version": version + 1, "content_hash": t.content_hash }))?;
                        report.changed.push(t.id.clone());
                        touched.insert(&t.id);
                    }
                    Some(_) => report.unchanged += 1,
                }
            }
            // Dependencies: only for tasks that have not started (changing the past would lie).
            let current_deps = super::apply::deps_map(tx)?;
            let mut insert_dep = tx.prepare_cached("INSERT INTO deps (task, dep) VALUES (?1, ?2)")?;
            for t in &plan.tasks {
                if known.get(&t.id).map(|k| k.2) != Some(TaskState::Pending) {
                    continue;
                }
                // `deps_map` lists each task's dependencies sorted.
                let current = current_deps.get(&t.id).map(Vec::as_slice).unwrap_or(&[]);
                let mut wanted = t.depends_on.clone();
                wanted.sort();
                if current != wanted.as_slice() {
                    tx.execute("DELETE FROM deps WHERE task = ?1", [&t.id])?;
                    for dep in &wanted {
                        insert_dep.execute(params![t.id, dep])?;
                    }
                    if touched.insert(&t.id) {
                        // Counted as unchanged above (same prompt); its dependencies changed.
                        report.unchanged = report.unchanged.saturating_sub(1);
                        report.changed.push(t.id.clone());
                    }
                }
            }
            super::apply::settle_dag(tx)?;
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
        let deps = super::apply::deps_map(&self.conn)?;
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
            r.depends_on = super::apply::deps_map(&self.conn)
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
