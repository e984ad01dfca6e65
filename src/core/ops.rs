//! Ledger writes as data. The supervisor's decisions and the human commands both produce a list of
//! `Op`s; the ledger performs one list in one transaction, each op a compare-and-swap, so a list
//! either lands whole or not at all (and a lost race is reported, never half-applied).

use serde::{Deserialize, Serialize};

use crate::core::domain::{
    Actor, AttemptId, AttemptNo, AttemptState, EventKind, FunnelStage, Role, Substatus,
};
use crate::core::state::TaskState;

/// Columns a transition sets together with the state. `None` leaves a column alone;
/// `Some(None)` clears it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Patch {
    pub failures: Option<u32>,
    pub not_before_ms: Option<u64>,
    pub note: Option<Option<String>>,
    pub reason: Option<Option<String>>,
    pub paused_from: Option<Option<TaskState>>,
    /// The attempt whose worktree and conversation the task's next attempt continues (a limit
    /// that lifted, a budget extended); `Some(None)` clears it.
    pub resume_attempt: Option<Option<AttemptId>>,
}

/// What an event says besides its kind, as fixed keys (older ledgers' extra keys are ignored).
/// `from`/`to` of a state event are filled in by the ledger from the transition itself.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TaskState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TaskState>,
    /// Why it happened, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// A command: the human's (`retry`, `cancel`, ...) or a check's command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// The funnel stage an event moved a task to (`None` with `funnel` = the funnel ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<FunnelStage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Who ended a funnel stage early (`human`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Files (a conflict's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The integration tip a merge wrote, or that was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_tip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_tip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_ref: Option<String>,
    /// A branch an agent left behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A check's command line and result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
    /// Where a check ran: `rebased` when on the tree the merge would write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    /// Worker reports (`worker ...`): what the agent said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<i64>,
    /// A live agent's state (`agent_state`), the rule that said so and what showed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substatus: Option<Substatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// The agent's conversation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Budgets: which one (`time`, `tokens`, `cost`, and `run ...`), how much was spent and of
    /// what limit (in the budget's own unit: ms, tokens, dollars).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// Limits and breakers: the account or profile concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Permissions: the tool, what it concerns, and the answer (`allow`, `always`, `deny`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// The event sequence number of the request a decision answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<i64>,
    /// The hook that fired (`Stop`, `Notification`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// The agent's conversation transcript, as its hooks name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    /// Where a permission request showed: `hook` (answered through the hook) or `screen` (the
    /// answer is typed into the agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl EventData {
    pub fn why(why: impl Into<String>) -> EventData {
        EventData {
            why: Some(why.into()),
            ..EventData::default()
        }
    }
}

/// A new attempt row. The ledger fills in the token (from the OS random source), the start time
/// and the event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttempt {
    pub id: AttemptId,
    pub task: String,
    pub n: AttemptNo,
    pub role: Role,
    pub profile: String,
    pub epoch: i64,
    pub worktree: String,
    pub branch: String,
    pub log_dir: String,
    /// The earlier attempt this one continues (same worktree, same conversation).
    pub continues: Option<AttemptId>,
    /// The dependency whose candidate tip it starts on (that one's veto window runs).
    pub spec_on: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub id: AttemptId,
    pub outcome: AttemptState,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// The change the attempt produced (its tip commit), when it succeeded.
    pub commit: Option<String>,
    pub diff_lines: Option<u64>,
}

/// One ledger write. Every op names what it expects to find, so a write made on an outdated view
/// of the ledger changes nothing and comes back as lost.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Move a task from `from` to `to` (with its `state` event).
    Transition {
        task: String,
        from: TaskState,
        to: TaskState,
        patch: Patch,
        actor: Actor,
        attempt: Option<AttemptNo>,
        data: EventData,
    },
    /// Nothing is written: the write lands only if the task is still in `review` at `stage`
    /// (a veto window's approval must lose to a human who stopped the window meanwhile).
    ExpectStage {
        task: String,
        stage: FunnelStage,
    },
    /// Set (or clear) the funnel stage of a task that is in `review` (with its `funnel` event).
    SetStage {
        task: String,
        stage: Option<FunnelStage>,
        until_ms: Option<u64>,
        attempt: Option<AttemptNo>,
        data: EventData,
    },
    InsertAttempt(NewAttempt),
    /// The attempt's process runs (expects the attempt `starting`).
    AttemptRunning {
        id: AttemptId,
        pid: u32,
        base: String,
    },
    /// A running attempt of an earlier supervisor continues under this one (its holder still
    /// runs the agent, or recorded how it ended): its epoch becomes ours, so the agent's
    /// reports are accepted again (expects it `running` at `from_epoch`).
    Adopt {
        id: AttemptId,
        from_epoch: i64,
        epoch: i64,
    },
    /// Close a live attempt (expects it `starting` or `running`).
    FinishAttempt(Finish),
    /// A merge is about to move the integration branch from `onto` to `tip`: recorded first, so
    /// recovery after a crash trusts only what the supervisor wrote.
    RecordMerge {
        id: AttemptId,
        tip: String,
        onto: String,
    },
    /// The integration tip the supervisor last wrote (or adopted); expects the current value.
    SetIntegrationTip {
        expected: Option<String>,
        tip: String,
    },
    /// Hold (or release, with `None`) the whole run: no dispatch and no merges while held.
    SetHold {
        hold: Option<String>,
    },
    /// Ask for the integration branch to be replayed onto `onto`, the commit of the base
    /// `refname` (`orch-tui sync`). Replaces a request whose tip is not recorded yet and clears
    /// the last sync's problem; refused while a recorded sync tip is being written.
    RequestSync {
        refname: String,
        onto: String,
    },
    /// The sync onto `onto` made `tip` from integration tip `from`: recorded before the branch
    /// moves (expects that request, and `from` as the recorded integration tip).
    RecordSync {
        onto: String,
        from: String,
        tip: String,
    },
    /// The sync onto `onto` is over: `moved` (the base is now `onto`, under the requested ref)
    /// or stopped, with the `problem` for the human. Expects that request.
    EndSync {
        onto: String,
        moved: bool,
        problem: Option<String>,
    },
    /// The base the integration branch stands on, recorded once (expects none recorded).
    SetBase {
        refname: String,
        oid: String,
    },
    /// The human answered a waiting agent.
    Answered {
        id: AttemptId,
    },
    /// An attempt's spend so far, as totals (each figure validated; a figure below what is
    /// recorded keeps the recorded one: spend never goes down).
    RecordSpend {
        id: AttemptId,
        tokens_in: u64,
        tokens_out: u64,
        cost_usd: f64,
    },
    /// A held agent was let go on after `ms` held for its paused task: added to the attempt's
    /// held time, which no time budget counts.
    HeldTime {
        id: AttemptId,
        ms: u64,
    },
    /// The agent's conversation id, for resuming it.
    Session {
        id: AttemptId,
        session: String,
    },
    /// A live attempt's agent changed state; `question` is what waits for the human (cleared
    /// when it stops waiting). Changes nothing once the attempt ended.
    AgentState {
        id: AttemptId,
        substatus: Substatus,
        question: Option<String>,
        /// `question` says only the state (a prompt seen on screen without what it is for): a
        /// question already recorded for this same state stays — a hook may have named the
        /// call meanwhile, and the supervisor's model does not hold the ledger's question.
        keep_question: bool,
        actor: Actor,
        data: EventData,
    },
    /// A task's budget, each limit that is `Some` set to that value (the human's `extend`).
    SetBudget {
        task: String,
        time_ms: Option<u64>,
        tokens: Option<u64>,
        cost_usd: Option<f64>,
        data: EventData,
    },
    /// A gate on dispatch: an account paused by a limit, or a profile's open breaker, until
    /// `until_ms`; `None` lifts it.
    SetGate {
        kind: GateKind,
        name: String,
        until_ms: Option<u64>,
        why: String,
    },
    /// An event that changes no state table.
    Event {
        task: Option<String>,
        attempt: Option<AttemptNo>,
        actor: Actor,
        kind: EventKind,
        data: EventData,
    },
}

/// What holds dispatch back for an account or a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GateKind {
    /// An account's usage or rate limit.
    Limit,
    /// A profile's circuit breaker (repeated infrastructure failures).
    Breaker,
    /// The run's budget is spent: nothing new starts (name `run`).
    Budget,
}

impl GateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::Limit => "limit",
            GateKind::Breaker => "breaker",
            GateKind::Budget => "budget",
        }
    }

    pub fn parse(s: &str) -> Option<GateKind> {
        match s {
            "limit" => Some(GateKind::Limit),
            "breaker" => Some(GateKind::Breaker),
            "budget" => Some(GateKind::Budget),
            _ => None,
        }
    }
}

impl Op {
    /// The attempt this op touches by id, if any.
    pub fn attempt_id(&self) -> Option<AttemptId> {
        match self {
            Op::InsertAttempt(a) => Some(a.id),
            Op::AttemptRunning { id, .. }
            | Op::Adopt { id, .. }
            | Op::FinishAttempt(Finish { id, .. })
            | Op::RecordMerge { id, .. }
            | Op::Answered { id }
            | Op::RecordSpend { id, .. }
            | Op::Session { id, .. }
            | Op::HeldTime { id, .. }
            | Op::AgentState { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The task this op names, if any.
    pub fn task(&self) -> Option<&str> {
        match self {
            Op::Transition { task, .. }
            | Op::SetStage { task, .. }
            | Op::SetBudget { task, .. } => Some(task),
            Op::ExpectStage { task, .. } => Some(task),
            Op::InsertAttempt(a) => Some(&a.task),
            Op::Event { task, .. } => task.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_writes_only_what_it_has_and_reads_old_keys_back() {
        let d = EventData {
            why: Some("dependencies done".into()),
            retry_in_ms: Some(40),
            ..EventData::default()
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, r#"{"why":"dependencies done","retry_in_ms":40}"#);
        // A ledger written before these types existed, with a key no longer used.
        let old: EventData =
            serde_json::from_str(r#"{"from":"ready","to":"assigned","stale":1}"#).unwrap();
        assert_eq!(old.to, Some(TaskState::Assigned));
    }
}
