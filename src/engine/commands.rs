//! Human commands (retry, cancel, pause, resume, approve, reject). They write the ledger with
//! actor `human`, in one transaction each, from the CLI or the TUI alike; a running supervisor
//! picks the change up from the event log and acts on it (stops an agent, dispatches).

use crate::core::state::TaskState;
use crate::ledger::{Actor, Ledger, LedgerError, Patch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanCommand {
    Retry,
    Cancel,
    Pause,
    Resume,
    Approve,
    Reject,
}

impl HumanCommand {
    pub fn name(self) -> &'static str {
        match self {
            HumanCommand::Retry => "retry",
            HumanCommand::Cancel => "cancel",
            HumanCommand::Pause => "pause",
            HumanCommand::Resume => "resume",
            HumanCommand::Approve => "approve",
            HumanCommand::Reject => "reject",
        }
    }
}

/// Apply a command to a task. Returns a one-line description of what changed.
/// An inapplicable command (e.g. retry of a task that is running) is an error and changes nothing.
pub fn apply_human(
    ledger: &mut Ledger,
    cmd: HumanCommand,
    task: &str,
    note: Option<&str>,
) -> Result<String, LedgerError> {
    let row = ledger.task(task)?.ok_or_else(|| {
        LedgerError::BadInput(format!(
            "no task `{task}` in the ledger: `orch-tui status` lists the tasks"
        ))
    })?;
    let from = row.state;
    let deps_done = row.depends_on.iter().all(|d| {
        ledger
            .task(d)
            .ok()
            .flatten()
            .is_some_and(|t| t.state == TaskState::Done)
    });
    let (to, fresh_attempts) = match (cmd, from) {
        (HumanCommand::Retry, TaskState::Failed | TaskState::Escalated) => (TaskState::Ready, true),
        (HumanCommand::Retry, TaskState::Blocked) => {
            return Err(LedgerError::BadInput(format!(
                "task `{task}` is blocked by an upstream task ({}); retry that one instead",
                row.reason.as_deref().unwrap_or("see `orch-tui status`")
            )));
        }
        (HumanCommand::Cancel, s) if s.can_move_to(TaskState::Cancelled) => {
            (TaskState::Cancelled, false)
        }
        (HumanCommand::Pause, s) if s.can_move_to(TaskState::Paused) => (TaskState::Paused, false),
        (HumanCommand::Resume, TaskState::Paused) => (
            if deps_done {
                TaskState::Ready
            } else {
                TaskState::Pending
            },
            false,
        ),
        (HumanCommand::Approve, TaskState::Review | TaskState::Escalated) => {
            (TaskState::Approved, false)
        }
        (HumanCommand::Reject, TaskState::Review) => (TaskState::Ready, false),
        (c, s) => {
            return Err(LedgerError::BadInput(format!(
                "cannot {} task `{task}`: it is {s}",
                c.name()
            )));
        }
    };
    let patch = Patch {
        failures: fresh_attempts.then_some(0),
        not_before_ms: Some(0),
        note: note.map(|n| Some(n.to_string())),
        paused_from: (to == TaskState::Paused).then(|| Some(from.to_string())),
        reason: Some(None),
    };
    ledger.write(|tx| {
        if from == TaskState::Review {
            crate::ledger::set_stage(
                tx,
                task,
                None,
                None,
                None,
                serde_json::json!({ "by": "human" }),
            )?;
        }
        crate::ledger::transition_task(
            tx,
            task,
            from,
            to,
            &patch,
            Actor::Human,
            None,
            serde_json::json!({ "command": cmd.name(), "note": note }),
        )?;
        match to {
            TaskState::Cancelled => {
                crate::ledger::block_descendants(tx, task)?;
            }
            TaskState::Ready | TaskState::Pending => {
                crate::ledger::unblock_descendants(tx, task)?;
                crate::ledger::promote_ready(tx)?;
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(format!("{task}: {from} -> {to}"))
}
