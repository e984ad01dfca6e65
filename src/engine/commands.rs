//! Human commands (retry, cancel, pause, resume, approve, reject): decided by
//! `core::human::plan` on the task as it stands inside the transaction, written with actor
//! `human`, from the CLI or the TUI alike. A running supervisor sees the change and acts on it.

pub use crate::core::human::HumanCommand;
use crate::core::human::{Target, plan};
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
        // Dependents follow at once: a cancel blocks them, a retry unblocks them (unless another
        // dependency still blocks them).
        settle_dag(tx)?;
        Ok(format!("{task}: {} -> {to}", row.state))
    })
}
