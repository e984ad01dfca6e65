//! The domain's words as types: one enum per word (who acted, what kind of event, how an attempt
//! stands, which funnel stage) and distinct ids for an attempt's ledger row and its number.
//!
//! Each enum has one spelling on disk (`as_str`) and one parser; a value the parser does not know
//! is an error for whoever read it, never a silent default.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a closed set of names: the enum, its on-disk spelling, `parse`, `ALL`, `Display`
/// and serde as the same lowercase string.
macro_rules! names {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown {} `{s}`", stringify!($name)
                    ))
                })
            }
        }
    };
}

names! {
    /// Who caused an event.
    Actor {
        Supervisor = "supervisor",
        Agent = "agent",
        Human = "human",
        Check = "check",
    }
}

names! {
    /// What an event records. The ledger refuses to read a kind it does not know.
    EventKind {
        /// A supervisor started (a new epoch).
        EpochStarted = "epoch_started",
        TaskAdded = "task_added",
        SpecChanged = "spec_changed",
        /// A task changed state (`data.from`, `data.to`).
        State = "state",
        /// A task's funnel stage changed (`data.stage`).
        Funnel = "funnel",
        AttemptStarted = "attempt_started",
        ReviewStarted = "review_started",
        /// An attempt ended (`data.outcome`).
        AttemptEnded = "attempt_ended",
        Heartbeat = "heartbeat",
        AgentDone = "agent_done",
        AgentFail = "agent_fail",
        AgentQuestion = "agent_question",
        Usage = "usage",
        Verdict = "verdict",
        Answered = "answered",
        CheckPassed = "check_passed",
        CheckFailed = "check_failed",
        /// The supervisor recorded the integration tip a merge is about to write.
        MergeRecorded = "merge_recorded",
        /// Something other than the supervisor moved the integration branch.
        IntegrationMoved = "integration_moved",
        /// An agent left a branch of its own; it was kept under a backup ref.
        StrayBranch = "stray_branch",
        /// The base branch the integration branch stands on was recorded (first start).
        BaseRecorded = "base_recorded",
        /// The human asked for the integration branch to be replayed onto its moved base.
        SyncRequested = "sync_requested",
        /// The supervisor recorded the integration tip a sync is about to write.
        SyncRecorded = "sync_recorded",
        /// The integration branch now stands on the new base.
        Synced = "synced",
        /// A sync stopped without moving the branch (a conflict, a failing check).
        SyncStopped = "sync_stopped",
        /// A human note or a free-form remark that changes no state.
        Note = "note",
        /// An attempt's spend as the supervisor recorded it from the agent's own output.
        Spend = "spend",
        /// The agent's conversation id (Claude `session_id`, Codex `thread_id`).
        Session = "session",
        /// A live agent changed state (`data.substatus`), with the rule that said so
        /// (`data.rule`) and what showed it (`data.excerpt`).
        AgentState = "agent_state",
        /// A budget reached 80% (`data.budget`).
        BudgetWarning = "budget_warning",
        /// A budget ran out: the agent was stopped and the task escalated.
        BudgetExhausted = "budget_exhausted",
        /// The human raised a task's budget.
        Extended = "extended",
        /// An account hit a usage or rate limit (`data.account`, `data.until_ms`), or it lifted.
        Limit = "limit",
        /// A profile's circuit breaker opened, went half-open for a probe, or closed.
        Breaker = "breaker",
        /// A permission request (`data.tool`, `data.subject`) or its answer (`data.decision`).
        Permission = "permission",
        /// A change request typed into a live interactive agent as its next turn.
        TurnSent = "turn_sent",
        /// A change request (a reviewer's, a red check's, the human's note) typed into the
        /// live session that wrote the work, as its next turn (`data.note`).
        ChangeRequestTyped = "change_request_typed",
        /// An interactive session said it is done: its work goes to review and the process
        /// stays, idle at its prompt (`data.pid`).
        KeptAlive = "kept_alive",
        /// An interactive session is being ended: interrupted, then asked to exit, before
        /// any signal (`data.how`, `data.why`).
        AgentStop = "agent_stop",
        /// An interactive session asked to stop ended (`data.exit_code`; `data.why` says
        /// whether it exited by itself or was signalled).
        SessionEnded = "session_ended",
        /// An agent hook fired (`data.hook`), reported through `orch-tui hook`.
        Hook = "hook",
    }
}

names! {
    /// How one attempt stands.
    AttemptState {
        Starting = "starting",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Ended by something that is not the agent's fault (a supervisor crash, a cancel).
        Abandoned = "abandoned",
        /// Stopped by the supervisor (a time budget).
        Killed = "killed",
    }
}

impl AttemptState {
    /// Still starting or running: its process may be alive.
    pub fn is_live(self) -> bool {
        matches!(self, AttemptState::Starting | AttemptState::Running)
    }
}

names! {
    /// What an attempt is for.
    Role {
        /// Does the task.
        Agent = "agent",
        /// Judges the agent attempt with the same number.
        Reviewer = "reviewer",
    }
}

names! {
    /// What a live attempt's agent is doing right now.
    Substatus {
        Starting = "starting",
        /// Working (the word `busy` predates the agent states of issue #8).
        Busy = "busy",
        /// Waiting for an answer to a question (`worker escalate`, a question at a turn end).
        WaitingInput = "waiting_input",
        /// Waiting for a tool call to be allowed or denied.
        WaitingPermission = "waiting_permission",
        /// Waiting at a first-run screen (folder trust, API key, login).
        WaitingDialog = "waiting_dialog",
        /// At its prompt, the turn over.
        Idle = "idle",
        /// Stopped by a usage or rate limit until it lifts.
        Limited = "limited",
        Ended = "ended",
    }
}

names! {
    /// Where a task in `review` stands in the funnel (as recorded in the ledger).
    FunnelStage {
        Checks = "checks",
        Reviewer = "reviewer",
        Human = "human",
        Veto = "veto",
    }
}

names! {
    /// What an agent said of its own attempt through `orch-tui worker done|fail`.
    Reported {
        Done = "done",
        Fail = "fail",
    }
}

names! {
    /// A reviewer's answer.
    Verdict {
        Approve = "approve",
        Changes = "changes",
    }
}

impl Substatus {
    /// Waiting for the human (a question, a permission, a first-run dialog): an inbox item.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            Substatus::WaitingInput | Substatus::WaitingPermission | Substatus::WaitingDialog
        )
    }
}

/// An attempt's row id in the ledger (unique across tasks).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct AttemptId(pub i64);

/// An attempt's number within its task: 1, 2, 3... (a reviewer shares its agent attempt's).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct AttemptNo(pub u32);

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for AttemptNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_unknown_names_are_refused() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
        for a in AttemptState::ALL {
            assert_eq!(AttemptState::parse(a.as_str()), Some(*a));
        }
        assert_eq!(Actor::parse("robot"), None);
        assert_eq!(FunnelStage::parse("Checks"), None, "spelling is exact");
        let json = serde_json::to_string(&Substatus::WaitingInput).unwrap();
        assert_eq!(json, "\"waiting_input\"");
        assert!(serde_json::from_str::<Role>("\"boss\"").is_err());
        assert_eq!(serde_json::to_string(&AttemptNo(3)).unwrap(), "3");
    }
}
