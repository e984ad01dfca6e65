//! Human commands (retry, cancel, pause, resume, approve, reject, hold) as pure decisions: the task as it
//! stands in, the ledger ops out — or a refusal that says why and what to do instead. The CLI and
//! the TUI run the ops in one transaction; a running supervisor sees them and acts.

use crate::core::domain::{Actor, FunnelStage};
use crate::core::ops::{EventData, Op, Patch};
use crate::core::state::TaskState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanCommand {
    Retry,
    Cancel,
    Pause,
    Resume,
    Approve,
    Reject,
    /// Stop a veto window's countdown (the human is typing the veto): the task then waits for
    /// an approval or a reject like one at the human stage.
    Hold,
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
            HumanCommand::Hold => "hold",
        }
    }
}

/// What a command needs to know of its task.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub id: &'a str,
    pub state: TaskState,
    /// The task's funnel stage while in review.
    pub stage: Option<FunnelStage>,
    /// Every dependency is done.
    pub deps_done: bool,
    /// Why it is blocked, when it is.
    pub reason: Option<&'a str>,
}

/// The ops for `cmd` on `t`, or why it cannot be done (nothing is written then).
pub fn plan(cmd: HumanCommand, t: &Target, note: Option<&str>) -> Result<Vec<Op>, String> {
    let id = t.id;
    let waiting = if t.deps_done {
        TaskState::Ready
    } else {
        TaskState::Pending
    };
    if cmd == HumanCommand::Hold {
        return hold(t);
    }
    let to = match (cmd, t.state) {
        (HumanCommand::Retry, TaskState::Failed | TaskState::Escalated | TaskState::Cancelled) => {
            waiting
        }
        (HumanCommand::Retry, TaskState::Blocked) => {
            return Err(format!(
                "task `{id}` is blocked by an upstream task ({}); retry that one instead",
                t.reason.unwrap_or("see `orch-tui status`")
            ));
        }
        (HumanCommand::Cancel, s) if s.can_move_to(TaskState::Cancelled) => TaskState::Cancelled,
        (HumanCommand::Pause, s) if s.can_move_to(TaskState::Paused) => TaskState::Paused,
        (HumanCommand::Resume, TaskState::Paused) => waiting,
        (HumanCommand::Approve, TaskState::Review)
            if matches!(t.stage, Some(FunnelStage::Checks | FunnelStage::Reviewer)) =>
        {
            let stage = t.stage.map_or("funnel", FunnelStage::as_str);
            return Err(format!(
                "task `{id}` is still in its {stage} stage: it can be approved once that is over \
                 (it then waits for you in the inbox), or rejected now with a note"
            ));
        }
        (HumanCommand::Approve, TaskState::Review | TaskState::Escalated) => TaskState::Approved,
        (HumanCommand::Reject, TaskState::Review) => {
            if note.is_none_or(|n| n.trim().is_empty()) {
                return Err(format!(
                    "rejecting `{id}` needs a note saying what to change (`--note \"...\"`): \
                     it is what the next attempt is told"
                ));
            }
            TaskState::Ready
        }
        (c, s) => {
            let hint = match (c, s) {
                (HumanCommand::Retry, TaskState::Done) => ": it is done (merged)",
                (HumanCommand::Approve, TaskState::Done) => ": it is done (merged)",
                _ => "",
            };
            return Err(format!("cannot {} task `{id}`: it is {s}{hint}", c.name()));
        }
    };
    let fresh = cmd == HumanCommand::Retry;
    let patch = Patch {
        failures: fresh.then_some(0),
        not_before_ms: Some(0),
        note: note.map(|n| Some(n.to_string())),
        paused_from: (to == TaskState::Paused).then_some(Some(t.state)),
        reason: Some(None),
        // A retry or a rejection starts over from the integration tip (a rejected commit must
        // not reach the integration history); the rest keep what a limit or an extension set.
        resume_attempt: matches!(cmd, HumanCommand::Retry | HumanCommand::Reject).then_some(None),
    };
    let mut ops = Vec::new();
    if t.state == TaskState::Review && t.stage.is_some() {
        ops.push(Op::SetStage {
            task: id.to_string(),
            stage: None,
            until_ms: None,
            attempt: None,
            data: EventData {
                by: Some("human".into()),
                ..EventData::default()
            },
        });
    }
    ops.push(Op::Transition {
        task: id.to_string(),
        from: t.state,
        to,
        patch,
        actor: Actor::Human,
        attempt: None,
        data: EventData {
            command: Some(cmd.name().to_string()),
            note: note.map(String::from),
            ..EventData::default()
        },
    });
    Ok(ops)
}

/// How much more a task may spend (`orch-tui extend`): each amount is added to its budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extension {
    pub time_ms: Option<u64>,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
    /// Start over in a fresh worktree ("retry with more") instead of continuing where the
    /// agent was stopped.
    pub retry: bool,
}

/// A task's budget and what it spent so far, for [`extend`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetNow {
    pub time_ms: Option<u64>,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
    pub spent_tokens: u64,
    pub spent_cost_usd: f64,
}

/// The ops that raise a task's budget by `ext`; a task that escalated (or was held) because
/// its budget ran out goes back to ready, to continue where it stopped (or, with `retry`, to
/// start over). An unlimited budget becomes what was spent plus the amount.
pub fn extend(
    t: &Target,
    now: &BudgetNow,
    ext: &Extension,
    note: Option<&str>,
) -> Result<Vec<Op>, String> {
    let id = t.id;
    if ext.time_ms.is_none() && ext.tokens.is_none() && ext.cost_usd.is_none() {
        return Err(format!(
            "say how much more task `{id}` may spend: --time DURATION, --tokens N or --cost USD"
        ));
    }
    if let Some(c) = ext.cost_usd
        && (!c.is_finite() || c <= 0.0 || c > crate::core::usage::MAX_REPORT_COST_USD)
    {
        return Err(format!(
            "--cost {c} is not an amount to add: give dollars more than 0 (e.g. --cost 2.5)"
        ));
    }
    if ext.tokens == Some(0) || ext.time_ms == Some(0) {
        return Err("an extension of zero changes nothing: give an amount more than 0".into());
    }
    if matches!(t.state, TaskState::Done | TaskState::Cancelled) {
        return Err(format!(
            "cannot extend task `{id}`: it is {}; nothing of it runs any more",
            t.state
        ));
    }
    let time_ms = ext
        .time_ms
        .map(|d| now.time_ms.unwrap_or(0).saturating_add(d));
    let tokens = ext
        .tokens
        .map(|d| now.tokens.unwrap_or(now.spent_tokens).saturating_add(d));
    let cost_usd = ext
        .cost_usd
        .map(|d| now.cost_usd.unwrap_or(now.spent_cost_usd) + d);
    let mut ops = vec![Op::SetBudget {
        task: id.to_string(),
        time_ms,
        tokens,
        cost_usd,
        data: EventData {
            command: Some("extend".into()),
            note: note.map(String::from),
            why: Some(format!(
                "budget now{}{}{}",
                time_ms.map_or(String::new(), |v| format!(
                    " time {}",
                    crate::core::duration::format_duration(v)
                )),
                tokens.map_or(String::new(), |v| format!(" tokens {v}")),
                cost_usd.map_or(String::new(), |v| format!(" cost ${v:.4}"))
            )),
            ..EventData::default()
        },
    }];
    let for_budget = t.reason.is_some_and(|r| r.contains("budget exhausted"));
    let back = matches!(t.state, TaskState::Escalated | TaskState::Paused) && for_budget;
    if back {
        let to = if t.deps_done {
            TaskState::Ready
        } else {
            TaskState::Pending
        };
        ops.push(Op::Transition {
            task: id.to_string(),
            from: t.state,
            to,
            patch: Patch {
                not_before_ms: Some(0),
                note: note.map(|n| Some(n.to_string())),
                reason: Some(None),
                resume_attempt: ext.retry.then_some(None),
                ..Patch::default()
            },
            actor: Actor::Human,
            attempt: None,
            data: EventData {
                command: Some(
                    if ext.retry {
                        "extend --retry"
                    } else {
                        "extend"
                    }
                    .into(),
                ),
                note: note.map(String::from),
                ..EventData::default()
            },
        });
    }
    Ok(ops)
}

/// A veto window stopped: the stage becomes `human` (no deadline), so nothing merges until
/// the human approves or rejects. Only a running window can be stopped.
fn hold(t: &Target) -> Result<Vec<Op>, String> {
    let id = t.id;
    match (t.state, t.stage) {
        (TaskState::Review, Some(FunnelStage::Veto)) => Ok(vec![Op::SetStage {
            task: id.to_string(),
            stage: Some(FunnelStage::Human),
            until_ms: None,
            attempt: None,
            data: EventData {
                by: Some("human".into()),
                command: Some(HumanCommand::Hold.name().to_string()),
                ..EventData::default()
            },
        }]),
        (TaskState::Review, Some(FunnelStage::Human)) => Err(format!(
            "task `{id}` already waits for you: approve or reject it"
        )),
        (s, _) => Err(format!(
            "cannot stop the veto window of task `{id}`: it is {s}{}",
            match s {
                TaskState::Approved | TaskState::Merging | TaskState::Done => {
                    " (the window had closed: it was approved)"
                }
                _ => "",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(state: TaskState, deps_done: bool) -> Target<'static> {
        Target {
            id: "t",
            state,
            stage: None,
            deps_done,
            reason: None,
        }
    }

    fn to(ops: &[Op]) -> TaskState {
        match ops.last() {
            Some(Op::Transition { to, .. }) => *to,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_cancel_can_be_undone_by_retry() {
        let ops = plan(
            HumanCommand::Retry,
            &target(TaskState::Cancelled, true),
            None,
        )
        .unwrap();
        assert_eq!(to(&ops), TaskState::Ready);
        let ops = plan(
            HumanCommand::Retry,
            &target(TaskState::Cancelled, false),
            None,
        )
        .unwrap();
        assert_eq!(
            to(&ops),
            TaskState::Pending,
            "waits for its dependencies again"
        );
    }

    #[test]
    fn reject_needs_a_note_for_the_next_attempt() {
        let err = plan(HumanCommand::Reject, &target(TaskState::Review, true), None).unwrap_err();
        assert!(err.contains("needs a note"), "{err}");
        let ops = plan(
            HumanCommand::Reject,
            &target(TaskState::Review, true),
            Some("use the builder"),
        )
        .unwrap();
        assert_eq!(to(&ops), TaskState::Ready);
    }

    #[test]
    fn extend_raises_the_budget_and_sends_a_spent_task_back() {
        let mut t = target(TaskState::Escalated, true);
        t.reason = Some("cost budget exhausted ($0.0102 of $0.0100); ...");
        let now = BudgetNow {
            cost_usd: Some(0.01),
            spent_cost_usd: 0.0102,
            ..BudgetNow::default()
        };
        let ext = Extension {
            cost_usd: Some(1.0),
            ..Extension::default()
        };
        let ops = extend(&t, &now, &ext, None).unwrap();
        assert!(
            matches!(&ops[0], Op::SetBudget { cost_usd: Some(c), .. } if (*c - 1.01).abs() < 1e-9)
        );
        match &ops[1] {
            Op::Transition { to, patch, .. } => {
                assert_eq!(*to, TaskState::Ready);
                assert_eq!(patch.resume_attempt, None, "continues where it stopped");
            }
            other => panic!("{other:?}"),
        }
        let retry = Extension {
            retry: true,
            ..ext.clone()
        };
        let ops = extend(&t, &now, &retry, None).unwrap();
        assert!(
            matches!(&ops[1], Op::Transition { patch, .. } if patch.resume_attempt == Some(None))
        );
        // A working task just gets more.
        let ops = extend(&target(TaskState::Working, true), &now, &ext, None).unwrap();
        assert_eq!(ops.len(), 1);
        let err = extend(&t, &now, &Extension::default(), None).unwrap_err();
        assert!(
            err.contains("--time DURATION, --tokens N or --cost USD"),
            "{err}"
        );
        let err = extend(&target(TaskState::Done, true), &now, &ext, None).unwrap_err();
        assert!(err.contains("it is done"), "{err}");
    }

    #[test]
    fn hold_stops_a_veto_window_and_nothing_else() {
        let mut t = target(TaskState::Review, true);
        t.stage = Some(FunnelStage::Veto);
        let ops = plan(HumanCommand::Hold, &t, None).unwrap();
        assert!(
            matches!(
                ops.as_slice(),
                [Op::SetStage {
                    stage: Some(FunnelStage::Human),
                    until_ms: None,
                    ..
                }]
            ),
            "{ops:?}"
        );
        t.stage = Some(FunnelStage::Human);
        let err = plan(HumanCommand::Hold, &t, None).unwrap_err();
        assert!(err.contains("already waits for you"), "{err}");
        let err = plan(HumanCommand::Hold, &target(TaskState::Approved, true), None).unwrap_err();
        assert!(err.contains("it was approved"), "{err}");
    }

    #[test]
    fn refusals_say_why() {
        let err = plan(HumanCommand::Retry, &target(TaskState::Done, true), None).unwrap_err();
        assert!(err.contains("it is done"), "{err}");
        let err = plan(
            HumanCommand::Approve,
            &target(TaskState::Working, true),
            None,
        )
        .unwrap_err();
        assert!(
            err.contains("cannot approve task `t`: it is working"),
            "{err}"
        );
    }
}
