//! What the supervisor's state says without changing it: when it next needs a wake-up, whether
//! it is settled or stopped, what still moves (in words), whether every task is done. The
//! executor asks these after each round of effects.

use super::{Phase, Supervisor};
use crate::core::state::TaskState;

impl Supervisor {
    /// The earliest moment something is due without any event (a time budget, a retry's
    /// backoff, a veto window), so the executor can set one timer.
    pub fn next_wake_ms(&self) -> Option<u64> {
        // Only an agent still running has a deadline that matters (one collecting its work
        // may be past it: waking for that would spin).
        let deadlines = self
            .live
            .values()
            .filter(|l| l.stop.is_none() && l.exit.is_none() && l.held.is_none())
            .filter(|l| matches!(l.phase, Phase::Running { .. } | Phase::SettingUp))
            .filter_map(|l| l.deadline_ms)
            .filter(|&d| d > self.now);
        // A change request waits for the human to stop typing in that pane.
        let typing = self
            .live
            .values()
            .filter(|l| l.turn.is_some() && l.typing_until_ms > self.now)
            .map(|l| l.typing_until_ms);
        let deadlines = deadlines.chain(typing);
        let backoffs = self
            .model
            .backoffs
            .iter()
            .map(|(nb, _)| *nb)
            .find(|&nb| nb > self.now)
            .into_iter();
        let vetoes = self
            .model
            .in_state(TaskState::Review)
            .filter(|t| t.stage == Some(crate::core::domain::FunnelStage::Veto))
            // One that waits for its candidate's merge, not for its window, wakes nothing.
            .filter(|t| self.waits_for_candidate(&t.id).is_none())
            .filter_map(|t| t.stage_until_ms);
        // A supervisor that only syncs neither dispatches nor runs the funnel: a backoff or a
        // veto window ending is nothing to it (waking for an expired one would spin).
        if self.only_sync {
            return deadlines.min();
        }
        deadlines
            .chain(backoffs)
            .chain(vetoes)
            .chain(self.next_gate_ms())
            .min()
    }

    /// Nothing will move without a human: nothing runs, nothing is being written, and no task is
    /// where the supervisor itself moves it on.
    pub fn is_settled(&self) -> bool {
        if !self.booted
            || !self.live.is_empty()
            || !self.checking.is_empty()
            || self.merge.is_some()
            || self.ahead_in_flight()
            || self.sync.is_some()
            || !self.pending.is_empty()
            || !self.tidying.is_empty()
            || self.sync_due()
            || self.waits_for_resume()
        {
            return false;
        }
        if self.only_sync {
            return true;
        }
        let moving = [
            TaskState::Assigned,
            TaskState::Working,
            TaskState::Review,
            TaskState::Merging,
        ];
        if moving.iter().any(|s| self.model.count(*s) > 0) {
            return false;
        }
        // A held run waits for the human; otherwise ready and approved work still moves (a
        // spent run budget starts nothing new, but merges what was approved).
        self.model.hold.is_some()
            || (self.model.count(TaskState::Approved) == 0
                && (self.model.count(TaskState::Ready) == 0 || self.run_budget_spent()))
    }

    /// A stop was asked for and nothing is left to wait for.
    pub fn is_stopped(&self) -> bool {
        self.stopping && (self.leave_agents || self.live.values().all(|l| l.exit.is_some()))
    }

    /// What still moves, in words (for logs and for tests that wait for a settled run).
    pub fn activity(&self) -> String {
        let mut parts = Vec::new();
        for l in self.live.values() {
            parts.push(format!(
                "{}#{} {} {:?}{}{}",
                l.task,
                l.n,
                l.role,
                l.phase,
                l.stop
                    .as_ref()
                    .map_or(String::new(), |w| format!(", stopping: {w}")),
                l.exit.map_or(String::new(), |e| format!(", exited {e:?}"))
            ));
        }
        if !self.checking.is_empty() {
            parts.push(format!("checks of {:?}", self.checking));
        }
        if let Some(m) = &self.merge {
            parts.push(format!("merge {m:?}"));
        }
        if self.ahead_in_flight() {
            parts.push("next merge prepared ahead".into());
        }
        if let Some(s) = &self.sync {
            parts.push(format!("sync {s:?}"));
        } else if let Some(r) = &self.model.sync.request {
            parts.push(format!("sync onto {} asked", r.onto));
        }
        if !self.pending.is_empty() {
            parts.push(format!("{} write(s) in flight", self.pending.len()));
        }
        if !self.tidying.is_empty() {
            parts.push(format!("tidying {:?}", self.tidying));
        }
        for s in TaskState::MOVING {
            let n = self.model.count(s);
            if n > 0 {
                parts.push(format!("{n} {s}"));
            }
        }
        parts.join(", ")
    }

    /// Every task done.
    pub fn all_done(&self) -> bool {
        self.model.count(TaskState::Done) == self.model.tasks.len()
    }
}
