//! Human commands (retry, cancel, pause, resume, approve, reject): decided by
//! `core::human::plan` on the task as it stands inside the transaction, written with actor
//! `human`, from the CLI or the TUI alike. A running supervisor sees the change and acts on it.

use crate::core::human::{BudgetNow, Target, extend, plan};
pub use crate::core::human::{Extension, HumanCommand};
use crate::core::state::TaskState;
use crate::ledger::{Ledger, LedgerError, apply_ops, settle_dag};

/// Apply a command to a task. Returns a one-line description of what changed.
/// An inapplicable command (e.g. retry of a task that is running) is an error and changes nothing.
pub fn apply_human(
    ledger: &mut Ledger,
    cmd: HumanCommand,
    task: &str,
    note: Option<&str>,
) -> Result<String, LedgerError> {
    ledger.write(|tx| {
        let said = apply_in(tx, cmd, task, note)?;
        // Dependents follow at once: a cancel blocks them, a retry unblocks them (unless another
        // dependency still blocks them).
        settle_dag(tx)?;
        Ok(said)
    })
}

/// The states a fleet-wide `pause --all` holds: what runs or is about to start.
pub const FLEET_PAUSES: [TaskState; 3] =
    [TaskState::Ready, TaskState::Assigned, TaskState::Working];

/// `pause --all` / `resume --all` (the TUI's `P`): the command on every task it fits, in one
/// transaction — pause every ready, assigned and working task; resume every paused one. One line
/// per task changed (none: nothing to do, not an error). Only pause and resume go fleet-wide.
pub fn apply_human_all(
    ledger: &mut Ledger,
    cmd: HumanCommand,
    note: Option<&str>,
) -> Result<Vec<String>, LedgerError> {
    let states: &[TaskState] = match cmd {
        HumanCommand::Pause => &FLEET_PAUSES,
        HumanCommand::Resume => &[TaskState::Paused],
        other => {
            return Err(LedgerError::BadInput(format!(
                "`{}` takes one task; only pause and resume take --all",
                other.name()
            )));
        }
    };
    ledger.write(|tx| {
        let mut stmt = tx.prepare_cached("SELECT id, state FROM tasks ORDER BY ord")?;
        let ids: Vec<String> = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, TaskState>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|(_, s)| states.contains(s))
            .map(|(id, _)| id)
            .collect();
        let mut said = Vec::new();
        for id in ids {
            said.push(apply_in(tx, cmd, &id, note)?);
        }
        settle_dag(tx)?;
        Ok(said)
    })
}

fn apply_in(
    tx: &rusqlite::Transaction,
    cmd: HumanCommand,
    task: &str,
    note: Option<&str>,
) -> Result<String, LedgerError> {
    let row = crate::ledger::task_in(tx, task)?.ok_or_else(|| {
        LedgerError::BadInput(format!(
            "no task `{task}` in the ledger: `orch-tui status` lists the tasks"
        ))
    })?;
    let deps_done = row.depends_on.iter().all(|d| {
        crate::ledger::task_in(tx, d)
            .ok()
            .flatten()
            .is_some_and(|t| t.state == TaskState::Done)
    });
    let target = Target {
        id: task,
        state: row.state,
        stage: row.stage,
        deps_done,
        reason: row.reason.as_deref(),
    };
    let ops = plan(cmd, &target, note).map_err(LedgerError::BadInput)?;
    let to = match ops.last() {
        Some(crate::core::ops::Op::Transition { to, .. }) => *to,
        _ => row.state,
    };
    apply_ops(tx, &ops, &mut || String::new())?;
    Ok(format!("{task}: {} -> {to}", row.state))
}

/// Raise a task's budget (`orch-tui extend`); a task stopped by its budget goes on. Returns
/// what changed, in words.
pub fn apply_extend(
    ledger: &mut Ledger,
    task: &str,
    ext: &Extension,
    note: Option<&str>,
) -> Result<String, LedgerError> {
    ledger.write(|tx| {
        let row = crate::ledger::task_in(tx, task)?.ok_or_else(|| {
            LedgerError::BadInput(format!(
                "no task `{task}` in the ledger: `orch-tui status` lists the tasks"
            ))
        })?;
        let deps_done = row.depends_on.iter().all(|d| {
            crate::ledger::task_in(tx, d)
                .ok()
                .flatten()
                .is_some_and(|t| t.state == TaskState::Done)
        });
        let (spent_tokens, spent_cost_usd): (i64, f64) = tx.query_row(
            "SELECT COALESCE(SUM(tokens_in + tokens_out), 0), COALESCE(SUM(cost_usd), 0)
             FROM attempts WHERE task = ?1",
            [task],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let target = Target {
            id: task,
            state: row.state,
            stage: row.stage,
            deps_done,
            reason: row.reason.as_deref(),
        };
        let now = BudgetNow {
            time_ms: row.budget_time_ms,
            tokens: row.budget_tokens,
            cost_usd: row.budget_cost_usd,
            spent_tokens: spent_tokens.max(0) as u64,
            spent_cost_usd,
        };
        let ops = extend(&target, &now, ext, note).map_err(LedgerError::BadInput)?;
        let to = ops.iter().find_map(|o| match o {
            crate::core::ops::Op::Transition { to, .. } => Some(*to),
            _ => None,
        });
        let budget = ops.iter().find_map(|o| match o {
            crate::core::ops::Op::SetBudget { data, .. } => data.why.clone(),
            _ => None,
        });
        apply_ops(tx, &ops, &mut String::new)?;
        Ok(match to {
            Some(to) => format!(
                "{task}: {}; {} -> {to}",
                budget.unwrap_or_default(),
                row.state
            ),
            None => format!("{task}: {}", budget.unwrap_or_default()),
        })
    })
}
