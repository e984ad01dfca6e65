//! Task states and the legal transitions between them (DESIGN.md §3).
//!
//! This table is the single source: the ledger builds its SQL trigger from it, so Rust and the
//! database can never disagree about what is legal.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    Pending,
    Ready,
    Assigned,
    Working,
    Review,
    Approved,
    Merging,
    Done,
    Failed,
    Blocked,
    Escalated,
    Paused,
    Cancelled,
}

use TaskState::*;

impl TaskState {
    pub const ALL: [TaskState; 13] = [
        Pending, Ready, Assigned, Working, Review, Approved, Merging, Done, Failed, Blocked,
        Escalated, Paused, Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Pending => "pending",
            Ready => "ready",
            Assigned => "assigned",
            Working => "working",
            Review => "review",
            Approved => "approved",
            Merging => "merging",
            Done => "done",
            Failed => "failed",
            Blocked => "blocked",
            Escalated => "escalated",
            Paused => "paused",
            Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Terminal for a run: nothing will happen to it without a human.
    pub fn is_settled(self) -> bool {
        matches!(self, Done | Failed | Blocked | Cancelled | Escalated)
    }

    /// On its way from ready to merged: the supervisor moves it on without a human.
    pub const MOVING: [TaskState; 6] = [Ready, Assigned, Working, Review, Approved, Merging];

    /// A slot is busy with it (an agent or a git job owns it).
    pub fn is_active(self) -> bool {
        matches!(self, Assigned | Working | Review | Approved | Merging)
    }

    /// The states this one may move to (DESIGN.md §3, "leaves to").
    pub fn successors(self) -> &'static [TaskState] {
        match self {
            Pending => &[Ready, Blocked, Cancelled, Paused],
            Ready => &[Assigned, Paused, Cancelled, Blocked],
            Assigned => &[Working, Failed, Ready, Cancelled, Paused],
            Working => &[Review, Ready, Failed, Escalated, Paused, Cancelled],
            Review => &[Approved, Ready, Escalated, Cancelled],
            Approved => &[Merging, Cancelled],
            Merging => &[Done, Escalated, Approved],
            Done => &[],
            Failed => &[Ready, Cancelled],
            Blocked => &[Pending, Cancelled],
            Escalated => &[Ready, Approved, Failed, Cancelled, Paused],
            Paused => &[Ready, Pending, Cancelled],
            // A cancel can be undone (`retry`): back to ready, or pending behind its dependencies.
            Cancelled => &[Ready, Pending],
        }
    }

    pub fn can_move_to(self, to: TaskState) -> bool {
        self.successors().contains(&to)
    }
}

impl serde::Serialize for TaskState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TaskState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TaskState::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown task state `{s}`")))
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every legal (from, to) pair, for building the ledger's trigger.
pub fn legal_transitions() -> Vec<(TaskState, TaskState)> {
    TaskState::ALL
        .iter()
        .flat_map(|&f| f.successors().iter().map(move |&t| (f, t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskState::parse("nope"), None);
    }

    #[test]
    fn done_is_final_and_a_cancel_can_be_undone() {
        assert!(Done.successors().is_empty());
        assert!(Cancelled.can_move_to(Ready) && Cancelled.can_move_to(Pending));
        assert!(
            !Cancelled.can_move_to(Working),
            "an undone cancel goes through the queue"
        );
    }

    #[test]
    fn dependents_wait_for_merge_not_for_agent() {
        // A task's work reaches its dependents only through `done`; nothing skips the funnel.
        assert!(!Working.can_move_to(Done));
        assert!(!Review.can_move_to(Done));
        assert!(Merging.can_move_to(Done));
    }

    #[test]
    fn every_non_terminal_state_can_be_left() {
        for s in TaskState::ALL {
            if s != Done {
                assert!(!s.successors().is_empty(), "{s} is a dead end");
            }
        }
    }

    #[test]
    fn done_is_reachable_from_pending() {
        // Breadth-first over the table: the happy path exists.
        let mut seen = vec![Pending];
        let mut i = 0;
        while i < seen.len() {
            for &n in seen[i].successors() {
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
            i += 1;
        }
        assert!(seen.contains(&Done));
        assert_eq!(seen.len(), TaskState::ALL.len(), "every state is reachable");
    }
}
