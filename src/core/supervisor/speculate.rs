//! Dependents during the veto window (`[funnel] speculative`): while an approved-on-the-loop
//! task waits out its veto window, a dependent whose other dependencies are merged may start on
//! the candidate tip — the integration tip with that task's work replayed — instead of idling.
//!
//! - The attempt names its candidate (`spec_on`); the executor replays the candidate's commits
//!   onto the integration tip for its worktree, and the replayed commit is its recorded base.
//!   One level deep: a candidate that itself waits for its own candidate is not started on.
//! - It never merges before its candidate: its funnel does not approve it, and the merge queue
//!   does not take it, until the candidate is done. Then its base is real (the integration tip
//!   holds the same tree), and its own commits replay onto the tip as any task's do.
//! - If the candidate leaves the way to its merge (vetoed, cancelled, escalated), every
//!   dependent that started on it is stopped (its work kept as any abandoned attempt's is) and
//!   goes back to wait for the real base, with no failure counted.

use super::{AttemptRec, Effect, Phase, Supervisor, TaskRec, Then};
use crate::core::domain::{Actor, AttemptId, AttemptState, FunnelStage, Role};
use crate::core::ops::{EventData, Finish, Op, Patch};
use crate::core::state::TaskState;

/// The candidate of a speculative start: the dependency whose work its base holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub task: String,
    /// The candidate attempt's base and tip: its commits, replayed onto the integration tip.
    pub base: String,
    pub commit: String,
}

impl Supervisor {
    /// The candidate's veto window runs, its work is collected, and it stands on the real
    /// integration history (not on a candidate tip of its own: its replayed commits would then
    /// lack that one's work): a dependent may start on it.
    fn in_veto_window(&self, c: &str) -> bool {
        let Some(t) = self.model.task(c) else {
            return false;
        };
        let collected = self
            .model
            .latest_agent(c)
            .is_some_and(|a| a.base.is_some() && a.commit.is_some());
        t.state == TaskState::Review
            && t.stage == Some(FunnelStage::Veto)
            && t.stage_until_ms.is_some_and(|u| u > self.now)
            && collected
            && self.waits_for_candidate(c).is_none()
    }

    /// The candidate is still on its way to merge with the work speculated on.
    fn still_candidate(&self, c: &str) -> bool {
        self.model.task(c).is_some_and(|t| match t.state {
            TaskState::Review => t.stage == Some(FunnelStage::Veto),
            TaskState::Approved | TaskState::Merging | TaskState::Done => true,
            _ => false,
        })
    }

    /// The one dependency of `t` not done yet, when every other one is.
    fn lone_undone_dep<'t>(&self, t: &'t TaskRec) -> Option<&'t str> {
        let mut undone = t.deps.iter().filter(|d| {
            self.model
                .task(d)
                .is_none_or(|u| u.state != TaskState::Done)
        });
        let one = undone.next()?;
        undone.next().is_none().then_some(one.as_str())
    }

    /// Whether a ready task may start now, and on what: `Some(None)` on the integration tip
    /// (every dependency done), `Some(Some(c))` on the candidate tip of `c`, `None` not yet.
    pub(super) fn start_on(&self, t: &TaskRec) -> Option<Option<String>> {
        let Some(c) = self.lone_undone_dep(t) else {
            return Some(None);
        };
        (self.cfg.funnel.speculative && self.in_veto_window(c)).then(|| Some(c.to_string()))
    }

    /// The candidate a task's newest agent attempt started on, while it is not merged yet: the
    /// task waits for it before it is approved or merged.
    pub(super) fn waits_for_candidate(&self, task: &str) -> Option<String> {
        let c = self.model.latest_agent(task)?.spec_on.clone()?;
        let done = self
            .model
            .task(&c)
            .is_some_and(|u| u.state == TaskState::Done);
        (!done).then_some(c)
    }

    /// What a speculative attempt's setup replays: its candidate's work, unless the candidate
    /// is merged already (then the integration tip holds it). `Err(())`: not now (the candidate
    /// is being merged, or left the way to its merge and the attempt is about to be let go).
    pub(super) fn candidate_for_setup(&self, a: &AttemptRec) -> Result<Option<Candidate>, ()> {
        let Some(c) = a.spec_on.as_deref() else {
            return Ok(None);
        };
        let state = self.model.task(c).map(|t| t.state);
        match state {
            Some(TaskState::Done) => Ok(None),
            Some(TaskState::Review | TaskState::Approved) if self.still_candidate(c) => {
                let cand = self.model.latest_agent(c).ok_or(())?;
                Ok(Some(Candidate {
                    task: c.to_string(),
                    base: cand.base.clone().ok_or(())?,
                    commit: cand.commit.clone().ok_or(())?,
                }))
            }
            _ => Err(()),
        }
    }

    pub(super) fn speculation_rules(&mut self) {
        if self.stopping {
            return;
        }
        self.start_early();
        self.let_go_of_fallen();
    }

    /// Dependents of a task in its veto window become ready to start on its candidate tip.
    fn start_early(&mut self) {
        if !self.cfg.funnel.speculative {
            return;
        }
        let windows: Vec<String> = self
            .model
            .in_state(TaskState::Review)
            .filter(|t| t.stage == Some(FunnelStage::Veto))
            .map(|t| t.id.clone())
            .filter(|c| self.in_veto_window(c))
            .collect();
        for c in windows {
            let dependents: Vec<String> = self
                .model
                .dependents
                .get(&c)
                .into_iter()
                .flatten()
                .filter(|d| !self.is_busy(d))
                .filter(|d| {
                    self.model.task(d).is_some_and(|t| {
                        t.state == TaskState::Pending && self.lone_undone_dep(t) == Some(c.as_str())
                    })
                })
                .cloned()
                .collect();
            for d in dependents {
                let why = format!("may start on the candidate tip of `{c}` (its veto window runs)");
                let op = Op::Transition {
                    task: d.clone(),
                    from: TaskState::Pending,
                    to: TaskState::Ready,
                    patch: Patch {
                        reason: Some(None),
                        ..Patch::default()
                    },
                    actor: Actor::Supervisor,
                    attempt: None,
                    data: EventData::why(why.clone()),
                };
                self.write(vec![op], Then::Say(format!("⇢ {d}: {why}")));
            }
        }
    }

    /// Tasks that started on (or are ready to start on) a candidate that left the way to its
    /// merge: back to waiting for the real base, their attempt let go without a failure.
    fn let_go_of_fallen(&mut self) {
        let states = [
            TaskState::Ready,
            TaskState::Assigned,
            TaskState::Working,
            TaskState::Review,
            TaskState::Approved,
        ];
        let mut fallen: Vec<(String, String)> = Vec::new();
        // A ready task can only have started on a candidate while a dependency was undone:
        // those are indexed, so the walk is not over every ready task.
        let mut settled: Vec<String> = Vec::new();
        for id in &self.model.ready_on_undone {
            let Some(t) = self.model.task(id) else {
                settled.push(id.clone());
                continue;
            };
            if t.state != TaskState::Ready {
                settled.push(id.clone());
                continue;
            }
            if self.is_busy(id) {
                continue;
            }
            match self.lone_undone_dep(t) {
                Some(c) if !self.still_candidate(c) => fallen.push((id.clone(), c.to_string())),
                Some(_) => {}
                None if t.deps.iter().all(|d| {
                    self.model
                        .task(d)
                        .is_some_and(|u| u.state == TaskState::Done)
                }) =>
                {
                    settled.push(id.clone())
                }
                None => {}
            }
        }
        for id in settled {
            self.model.ready_on_undone.remove(&id);
        }
        // A started task waits for a candidate only through an attempt started on one: those
        // tasks are indexed too.
        let mut finished: Vec<String> = Vec::new();
        for id in &self.model.on_candidates {
            let Some(t) = self.model.task(id) else {
                finished.push(id.clone());
                continue;
            };
            if t.state == TaskState::Done {
                finished.push(id.clone());
                continue;
            }
            if t.state == TaskState::Ready || !states.contains(&t.state) || self.is_busy(id) {
                continue;
            }
            if let Some(c) = self
                .waits_for_candidate(id)
                .filter(|c| !self.still_candidate(c))
            {
                fallen.push((id.clone(), c));
            }
        }
        for id in finished {
            self.model.on_candidates.remove(&id);
        }
        for (task, c) in fallen {
            self.let_go(&task, &c);
        }
    }

    fn let_go(&mut self, task: &str, c: &str) {
        let Some((from, stage)) = self.model.task(task).map(|t| (t.state, t.stage)) else {
            return;
        };
        let c_state = self
            .model
            .task(c)
            .map_or("gone".into(), |u| u.state.to_string());
        // A dependency that blocks (cancelled, failed) is the DAG rule's: it blocks the task.
        if from == TaskState::Ready
            && self
                .model
                .task(c)
                .is_some_and(|u| crate::core::dag::blocks(u.state))
        {
            return;
        }
        let why = format!(
            "its base was the candidate tip of `{c}`, which will not merge as it was (`{c}` is \
             now {c_state}): it waits for the real base and starts again, no failure counted"
        );
        let attempt = self.model.latest_agent(task).cloned();
        let live = attempt.as_ref().and_then(|a| {
            self.live
                .get(&a.id)
                .map(|l| (a.id, l.phase, l.stop.is_some()))
        });
        // Let what runs finish its step first: a setup or a collection under way, a reviewer,
        // checks. The rule looks again after each.
        let reviewing = self
            .live
            .values()
            .any(|l| l.task == task && l.role == Role::Reviewer);
        if reviewing
            || self.checking.contains(task)
            || matches!(live, Some((_, Phase::Collecting | Phase::Closing, _)))
        {
            return;
        }
        let step = |from, to| Op::Transition {
            task: task.to_string(),
            from,
            to,
            patch: Patch {
                reason: Some(Some(why.clone())),
                not_before_ms: Some(0),
                resume_attempt: Some(None),
                ..Patch::default()
            },
            actor: Actor::Supervisor,
            attempt: attempt.as_ref().map(|a| a.n),
            data: EventData::why(why.clone()),
        };
        // A session kept alive through review stood on the candidate tip too: it ends, so the
        // task is not revived in place as if a reviewer had asked for changes.
        let kept: Vec<AttemptId> = self
            .live
            .iter()
            .filter(|(_, l)| {
                l.task == task && matches!(l.phase, Phase::InReview { .. }) && l.stop.is_none()
            })
            .map(|(id, _)| *id)
            .collect();
        for id in kept {
            self.stop_kept(id, why.clone());
        }
        let mut ops = Vec::new();
        match from {
            // Not started: it waits again (the state table has no ready -> pending).
            TaskState::Ready => {
                ops.push(step(TaskState::Ready, TaskState::Blocked));
                ops.push(step(TaskState::Blocked, TaskState::Pending));
            }
            TaskState::Assigned | TaskState::Working => {
                if let Some(a) = &attempt
                    && live.is_none()
                    && a.state.is_live()
                {
                    // Written but never set up: closed here.
                    ops.push(Op::FinishAttempt(Finish {
                        id: a.id,
                        outcome: AttemptState::Abandoned,
                        exit_code: None,
                        reason: Some(why.clone()),
                        commit: None,
                        diff_lines: None,
                    }));
                }
                if let Some((id, Phase::Running { .. }, false)) = live {
                    if let Some(l) = self.live.get_mut(&id) {
                        l.stop = Some(why.clone());
                    }
                    self.out.push(Effect::Stop {
                        attempt: id,
                        why: why.clone(),
                    });
                }
                ops.push(step(from, TaskState::Ready));
            }
            TaskState::Review => {
                if stage.is_some() {
                    ops.push(Op::SetStage {
                        task: task.to_string(),
                        stage: None,
                        until_ms: None,
                        attempt: attempt.as_ref().map(|a| a.n),
                        data: EventData::why(why.clone()),
                    });
                }
                ops.push(step(TaskState::Review, TaskState::Ready));
            }
            // Approved by the human meanwhile: the state table's only way back to `ready`.
            TaskState::Approved => {
                ops.push(step(TaskState::Approved, TaskState::Merging));
                ops.push(step(TaskState::Merging, TaskState::Escalated));
                ops.push(step(TaskState::Escalated, TaskState::Ready));
            }
            _ => return,
        }
        let line = if from == TaskState::Ready {
            format!("↺ {task}: waits again: `{c}` is now {c_state}")
        } else {
            format!("↺ {task}: stopped and retried on the real base: {why}")
        };
        self.write(ops, Then::Say(line));
    }
}
