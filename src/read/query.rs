//! The SQL behind the read model: a few whole-table reads grouped in memory (never one query
//! per task: 10,000 tasks are three statements), plus the check events of the tasks waiting for
//! approval. Called inside the snapshot's read transaction.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rusqlite::OptionalExtension;

use super::{Budgets, Spend, TaskView};
use crate::core::domain::{Actor, AttemptId, AttemptNo, Role};
use crate::core::ops::EventData;
use crate::ledger::{AttemptRow, Ledger, LedgerError};

/// The supervisor row and the plan's name.
pub(super) struct RunRow {
    pub plan: Option<String>,
    pub epoch: i64,
    pub hold: Option<String>,
}

pub(super) fn run(ledger: &Ledger) -> Result<RunRow, LedgerError> {
    let c = ledger.conn();
    let plan = c
        .query_row("SELECT name FROM plan WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    let sup: Option<(i64, Option<String>)> = c
        .query_row("SELECT epoch, hold FROM supervisor WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (epoch, hold) = sup.unwrap_or((0, None));
    Ok(RunRow { plan, epoch, hold })
}

const TASK_COLS: &str = "id, title, state, priority, agent, failures, max_attempts, reason, \
    spec_version, stage, stage_until_ms, risk_high, paused_from, not_before_ms, budget_time_ms, \
    budget_tokens, budget_cost_usd, ord";

/// Every task in plan order with its dependencies and attempts (no prompts: they can be large
/// and no list shows them).
pub(super) fn tasks(ledger: &Ledger) -> Result<Vec<TaskView>, LedgerError> {
    let c = ledger.conn();
    let (mut tasks, index) = task_rows(ledger)?;
    // Room for exactly each task's attempts (counted on the `attempts_by_task` index): a Vec's
    // first growth is 4 rows (~2.4 KB) and most tasks have one or two.
    let mut counts = c.prepare_cached("SELECT task, COUNT(*) FROM attempts GROUP BY task")?;
    let rows = counts.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (task, n) = row?;
        if let Some(&i) = index.get(&task) {
            tasks[i]
                .attempts
                .reserve_exact(usize::try_from(n).unwrap_or(0));
        }
    }
    ledger.each_attempt(|a| {
        if let Some(&i) = index.get(&a.task) {
            tasks[i].spend.add(&a);
            tasks[i].attempts.push(a);
        }
    })?;
    for t in &mut tasks {
        t.attempts.sort_by_key(attempt_order);
    }
    Ok(tasks)
}

/// A task's attempts are listed in this order, as `Ledger::attempts` orders them: by number,
/// the agent before its reviewer.
pub(super) fn attempt_order<S>(a: &AttemptRow<S>) -> (AttemptNo, Role, AttemptId) {
    (a.n, a.role, a.id)
}

/// Every task in plan order with its dependencies, no attempts and no spend yet; and where
/// each task id is in the list.
pub(super) fn task_rows(ledger: &Ledger) -> Result<(Vec<TaskView>, TaskIndex), LedgerError> {
    let c = ledger.conn();
    // Sorted here rather than by SQLite: `ord` has no index, and a sorter would copy every row.
    // Every Vec here is made its final size at once: growing them by doubling touched twice
    // the memory, and page faults were a fifth of `status --json` at 10,000 tasks.
    let n: i64 = c.query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0))?;
    let mut tasks: Vec<TaskView> = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut stmt = c.prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks"))?;
    let rows = stmt.query_map([], |r| {
        Ok(TaskView {
            ord: r.get(17)?,
            id: r.get(0)?,
            title: r.get(1)?,
            state: r.get(2)?,
            priority: r.get(3)?,
            depends_on: Vec::new(),
            agent: r.get(4)?,
            failures: r.get(5)?,
            max_attempts: r.get(6)?,
            reason: r.get(7)?,
            spec_version: r.get(8)?,
            stage: r.get(9)?,
            stage_until_ms: r.get::<_, Option<i64>>(10)?.map(non_negative),
            risk_high: r.get(11)?,
            paused_from: r.get(12)?,
            not_before_ms: non_negative(r.get(13)?),
            budget: Budgets {
                time_ms: r.get::<_, Option<i64>>(14)?.map(non_negative),
                tokens: r.get::<_, Option<i64>>(15)?.map(non_negative),
                cost_usd: r.get(16)?,
            },
            spend: Spend::default(),
            attempts: Vec::new(),
        })
    })?;
    for t in rows {
        tasks.push(t?);
    }
    tasks.sort_by_key(|t| t.ord);
    let index: TaskIndex = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), i))
        .collect();
    let mut deps = c.prepare_cached("SELECT task, dep FROM deps ORDER BY task, dep")?;
    let mut rows = deps.query([])?;
    while let Some(r) = rows.next()? {
        // The task's id only to look it up: borrowed from the row, not copied.
        let task = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        if let Some(&i) = index.get(task) {
            tasks[i].depends_on.push(r.get(1)?);
        }
    }
    Ok((tasks, index))
}

/// Where each task is in the list, by id.
pub(super) type TaskIndex = HashMap<String, usize, BuildHasherDefault<IdHasher>>;

/// FxHash (rustc's): a multiply per 8 bytes where SipHash's rounds were a tenth of reading
/// 10,000 tasks' dependencies. The ids are the ledger's own: nothing to defend against.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A check event: which attempt it judged, its command and whether it passed.
pub(super) struct CheckEvent {
    pub attempt: Option<AttemptNo>,
    pub command: String,
    pub passed: bool,
    /// Run on the rebased tree in the merge queue (not part of the funnel's verdict).
    pub rebased: bool,
}

/// The check events of every task waiting for approval, oldest first, by task.
pub(super) fn approval_checks(
    ledger: &Ledger,
    tasks: &[TaskView],
) -> Result<HashMap<String, Vec<CheckEvent>>, LedgerError> {
    let mut out = HashMap::new();
    let mut stmt = ledger.conn().prepare_cached(
        "SELECT attempt, data FROM events WHERE task = ?1 AND actor = ?2 ORDER BY seq",
    )?;
    for t in tasks.iter().filter(|t| super::inbox::waits_for_approval(t)) {
        let rows = stmt.query_map(rusqlite::params![t.id, Actor::Check], |r| {
            let data: String = r.get(1)?;
            Ok((r.get::<_, Option<AttemptNo>>(0)?, data))
        })?;
        let mut list = Vec::new();
        for row in rows {
            let (attempt, data) = row?;
            // Keys this build does not know are ignored; an unreadable payload is an empty one.
            let d: EventData = serde_json::from_str(&data).unwrap_or_default();
            list.push(CheckEvent {
                attempt,
                command: d.command.unwrap_or_else(|| "?".into()),
                passed: d.passed.unwrap_or(false),
                rebased: d.on.as_deref() == Some("rebased"),
            });
        }
        out.insert(t.id.clone(), list);
    }
    Ok(out)
}

/// The ledger's CHECK constraints keep these non-negative; a negative one reads as 0.
fn non_negative(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
