//! The merge queue's next merge, prepared while the one before it lands. Only the record of the
//! new tip, the compare-and-swap of the integration branch and the record of its outcome are
//! serialized; the replay (and re-check) of the next approved task runs beside them, onto the
//! tip the landing merge is writing. When that tip lands, the prepared merge is recorded at once;
//! when it does not (the merge failed, the branch moved, the task changed), the prepared result
//! is dropped and the ordinary path prepares it again on the tip that is recorded.
//!
//! At most one merge job runs at a time (they share the re-check worktree): a preparation ahead
//! is only started while the queue's merge is past its own preparation, and nothing else is
//! prepared while it runs.

use super::{Effect, MergeOutcome, MergeRun, Supervisor};
use crate::core::domain::AttemptId;
use crate::core::ops::{EventData, Op, Patch};
use crate::core::state::TaskState;

/// A merge prepared ahead, on the tip the landing merge writes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ahead {
    task: String,
    attempt: AttemptId,
    /// The attempt's commit when it was prepared: a different one (collected again, fixed by
    /// hand) makes the result worthless.
    commit: Option<String>,
    /// The tip it is made on.
    onto: String,
    /// `None` while its job runs.
    result: Option<MergeOutcome>,
}

impl Supervisor {
    /// A merge job of the queue's next task is running (nothing else may be prepared meanwhile).
    pub(super) fn ahead_in_flight(&self) -> bool {
        self.ahead.as_ref().is_some_and(|a| a.result.is_none())
    }

    /// While the queue's merge records and moves its tip, prepare the next approved task onto
    /// that tip.
    pub(super) fn prepare_ahead(&mut self) {
        let onto = match &self.merge {
            Some(MergeRun::Recording { tip, .. } | MergeRun::Moving { tip, .. }) => tip.clone(),
            _ => return,
        };
        // One at a time; one made on an older tip is worth nothing now.
        if self
            .ahead
            .as_ref()
            .is_some_and(|a| a.result.is_none() || a.onto == onto)
            || self.sync.is_some()
            || self.stopping
            || self.model.hold.is_some()
            || self.sync_due()
        {
            return;
        }
        let landing = self.merge.as_ref().map(|m| m.task().to_string());
        let next = self
            .queue
            .iter()
            .find(|t| {
                Some(t.as_str()) != landing.as_deref()
                    && !self.busy.contains(*t)
                    && self.waits_for_candidate(t).is_none()
            })
            .cloned();
        let Some(task) = next else {
            return;
        };
        // Only work already collected: collecting writes in the task's worktree, which waits
        // for the task's own turn in the queue.
        let Some(a) = self.model.latest_agent(&task).cloned() else {
            return;
        };
        let (Some(base), Some(commit)) = (a.base.clone(), a.commit.clone()) else {
            return;
        };
        self.ahead = Some(Ahead {
            task: task.clone(),
            attempt: a.id,
            commit: Some(commit.clone()),
            onto: onto.clone(),
            result: None,
        });
        let prep = self.merge_prep(&a, base, commit, onto, None);
        self.out.push(Effect::PrepareMerge(prep));
    }

    /// A merge job answered: keep it if it was prepared ahead, else hand it back.
    pub(super) fn ahead_answer(
        &mut self,
        task: &str,
        result: MergeOutcome,
    ) -> Option<MergeOutcome> {
        match &mut self.ahead {
            Some(a) if a.task == task && a.result.is_none() => {
                a.result = Some(result);
                None
            }
            _ => Some(result),
        }
    }

    /// The queue's turn came to `task`: land what was prepared ahead for it, if it is still
    /// good — a clean replay onto exactly the recorded tip, of the attempt and commit the task
    /// still has, the task still approved. Returns whether it did. Anything else prepared
    /// ahead is dropped (a conflict or a failed check is found again on the recorded tip).
    pub(super) fn land_ahead(&mut self, task: &str) -> bool {
        let Some(ahead) = self.ahead.take() else {
            return false;
        };
        let Some(MergeOutcome::Ready {
            tip,
            rechecked,
            from,
            results,
            onto,
        }) = ahead.result
        else {
            return false;
        };
        let agent = self.model.latest_agent(task);
        let same = ahead.task == task
            && agent.is_some_and(|a| a.id == ahead.attempt && a.commit == ahead.commit)
            && self.model.task(task).map(|t| t.state) == Some(TaskState::Approved)
            && self.model.integration_tip.as_deref() == Some(onto.as_str());
        if !same {
            return false;
        }
        let n = agent.map(|a| a.n);
        // Into the merge's critical section and its record in one transaction.
        let enter = Op::Transition {
            task: task.to_string(),
            from: TaskState::Approved,
            to: TaskState::Merging,
            patch: Patch::default(),
            actor: crate::core::domain::Actor::Supervisor,
            attempt: n,
            data: EventData::default(),
        };
        self.record_merge(
            task,
            ahead.attempt,
            MergeOutcomeReady {
                tip,
                rechecked,
                from,
                results,
                onto,
            },
            vec![enter],
        );
        true
    }
}

/// The fields of `MergeOutcome::Ready`, to record.
pub(super) struct MergeOutcomeReady {
    pub tip: String,
    pub rechecked: bool,
    pub from: String,
    pub results: Vec<crate::core::supervisor::CheckOutcome>,
    pub onto: String,
}
