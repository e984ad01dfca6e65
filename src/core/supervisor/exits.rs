//! How a live agent ends: stopping it when its time or its task is up, what its exit means
//! (collect its work, retry with backoff, or fail for good), and the run's own stop.

use super::{Effect, Exit, Live, Phase, Supervisor, Then};
use crate::core::domain::{Actor, AttemptId, AttemptNo, AttemptState, Reported, Role};
use crate::core::ops::{EventData, Finish, Op, Patch};
use crate::core::schedule::backoff_ms;
use crate::core::state::TaskState;

impl Supervisor {
    pub(super) fn on_exit(&mut self, id: AttemptId, exit: Exit) {
        if let Some(l) = self.live.get_mut(&id) {
            l.exit = Some(exit);
        }
        self.note_session_end(id, exit);
    }

    /// Stops that are due, exits to decide, and live records whose attempt is closed.
    pub(super) fn live_rules(&mut self) {
        let ids: Vec<AttemptId> = self.live.keys().copied().collect();
        for id in ids {
            self.stop_if_due(id);
            self.decide_exit(id);
        }
        // Forget attempts that ended in the ledger and whose process is gone (when stopping,
        // once the process is gone: the next start closes the attempt).
        let (model, stopping) = (&self.model, self.stopping);
        self.live.retain(|id, l| {
            let open = model.attempts.get(id).is_none_or(|a| a.state.is_live());
            (open && !stopping) || l.exit.is_none()
        });
    }

    pub(super) fn stop_if_due(&mut self, id: AttemptId) {
        let Some(l) = self.live.get(&id) else { return };
        if l.stop.is_some() || l.exit.is_some() || !matches!(l.phase, Phase::Running { .. }) {
            return;
        }
        let run_stops = self.stopping && !self.leave_agents;
        // A held agent's clock stands still (its deadline moves when it goes on).
        if l.held.is_none() && l.deadline_ms.is_some_and(|d| d <= self.now) && !run_stops {
            let g = super::budget::Gauge {
                what: "time",
                spent: self.now.saturating_sub(l.started_ms) as f64,
                limit: l.deadline_ms.unwrap_or(0).saturating_sub(l.started_ms) as f64,
            };
            if l.role == Role::Agent {
                self.stop_for_budget(id, g.exhausted());
                return;
            }
        }
        let row = self.model.attempts.get(&id);
        let state = self.model.task(&l.task).map(|t| t.state);
        if self.keeps_paused(l) {
            // Held, not stopped: `pause_rules` freezes or interrupts it.
            return;
        }
        let why = if self.stopping && !self.leave_agents {
            Some("the run is stopping".to_string())
        } else if l.held.is_none() && l.deadline_ms.is_some_and(|d| d <= self.now) {
            Some("time budget exhausted".to_string())
        } else if !self.belongs(l, state) {
            Some(format!(
                "task is now {}",
                state.map_or("gone".to_string(), |s| s.to_string())
            ))
        } else if row.is_some_and(|a| a.reported.is_some() || a.verdict.is_some()) {
            // An interactive session that is done stays through review (`kept.rs`); any other
            // agent that reports and keeps running is ended: its exit follows.
            if self.collect_kept(id) {
                return;
            }
            Some("it reported its result".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            if let Some(l) = self.live.get_mut(&id) {
                l.stop = Some(why.clone());
            }
            self.out.push(Effect::Stop { attempt: id, why });
        }
    }

    /// An agent belongs to a working task; a reviewer to a task in its reviewer stage.
    pub(super) fn belongs(&self, l: &Live, state: Option<TaskState>) -> bool {
        match l.role {
            Role::Agent => matches!(state, Some(TaskState::Assigned | TaskState::Working)),
            Role::Reviewer => {
                state == Some(TaskState::Review)
                    && self.model.task(&l.task).and_then(|t| t.stage)
                        == Some(crate::core::domain::FunnelStage::Reviewer)
            }
        }
    }

    pub(super) fn decide_exit(&mut self, id: AttemptId) {
        let Some(l) = self.live.get(&id) else { return };
        let Some(exit) = l.exit else { return };
        // Closing again only when the write that closed it lost (the row is still live).
        let reopen = l.phase == Phase::Closing
            && self
                .model
                .attempts
                .get(&id)
                .is_some_and(|a| a.state.is_live());
        if !(matches!(l.phase, Phase::Running { .. }) || reopen) || self.is_busy(&l.task) {
            return;
        }
        if self.stopping {
            // A stopped run is resumed by the next start, which abandons this attempt.
            return;
        }
        let (task, role, stop) = (l.task.clone(), l.role, l.stop.clone());
        if role == Role::Reviewer {
            self.reviewer_ended(id);
            return;
        }
        let state = self.model.task(&task).map(|t| t.state);
        if !matches!(state, Some(TaskState::Working)) {
            // Cancelled or paused by a human: abandoned, not failed (a session ended at a
            // pause marks its task to continue it: `pause.rs`).
            let why = stop.unwrap_or_else(|| "task left `working`".into());
            let mark = self.ended_at_pause_ops(id);
            self.close(id, AttemptState::Abandoned, exit.code, &why, mark);
            return;
        }
        let facts = self
            .live
            .get(&id)
            .map(|l| l.facts.clone())
            .unwrap_or_default();
        if let Some(why) = &facts.budget {
            self.budget_exit(id, why, exit.code);
            return;
        }
        if let Some((until, text)) = &facts.limited {
            self.limited_exit(id, *until, text, exit.code);
            return;
        }
        let reported = self.model.attempts.get(&id).and_then(|a| a.reported);
        // An agent that said its run failed (an error `result`) failed, whatever its exit.
        let said_failed = facts.failure.is_some() && !facts.turn_ok;
        let success = match (reported, &stop) {
            (Some(Reported::Fail), _) => false,
            (Some(Reported::Done), _) => true,
            (_, Some(_)) => false,
            _ => exit.code == Some(0) && !said_failed,
        };
        if success {
            self.collect(id);
            return;
        }
        let why = match (&stop, reported) {
            (_, Some(Reported::Fail)) => "the agent reported failure".into(),
            (Some(w), _) => w.clone(),
            _ => super::failure_words(facts.failure.as_ref(), exit.code, exit.signal),
        };
        self.note_infrastructure(id, facts.failure.as_ref(), exit.code);
        self.fail_attempt(id, TaskState::Working, exit.code, &why);
    }

    /// Close an attempt without touching its task.
    pub(super) fn close(
        &mut self,
        id: AttemptId,
        outcome: AttemptState,
        code: Option<i32>,
        why: &str,
        mut more: Vec<Op>,
    ) {
        self.mark_closing(id);
        more.insert(
            0,
            Op::FinishAttempt(Finish {
                id,
                outcome,
                exit_code: code,
                reason: Some(why.to_string()),
                commit: None,
                diff_lines: None,
            }),
        );
        self.write(more, Then::Nothing);
    }

    pub(super) fn mark_closing(&mut self, id: AttemptId) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        l.phase = Phase::Closing;
        // A session that was to stay through review and does not go there is ended.
        if l.kept.is_some() && l.exit.is_none() && l.stop.is_none() {
            let why = "its work did not go to review".to_string();
            l.stop = Some(why.clone());
            self.out.push(Effect::Stop { attempt: id, why });
        }
    }

    /// Close a failed attempt: retry after a jittered backoff, or fail the task for good (the
    /// DAG rules then block what depends on it).
    pub(super) fn fail_attempt(
        &mut self,
        id: AttemptId,
        from: TaskState,
        code: Option<i32>,
        why: &str,
    ) {
        let Some(l) = self.live.get(&id) else { return };
        let (task, n, killed) = (l.task.clone(), l.n, l.stop.is_some());
        let Some(t) = self.model.task(&task).cloned() else {
            return;
        };
        let failures = t.failures + 1;
        let exhausted = failures >= t.max_attempts;
        let r = self.random();
        let delay = backoff_ms(
            failures,
            self.cfg.retry.backoff_base_ms,
            self.cfg.retry.backoff_cap_ms,
            r,
        );
        let outcome = if killed {
            AttemptState::Killed
        } else {
            AttemptState::Failed
        };
        let mut ops = vec![Op::FinishAttempt(Finish {
            id,
            outcome,
            exit_code: code,
            reason: Some(why.to_string()),
            commit: None,
            diff_lines: None,
        })];
        // The next attempt continues this one (its worktree and conversation) when it got as
        // far as running; a setup that failed leaves nothing to continue.
        let continues = self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.role == Role::Agent && a.base.is_some());
        let (to, patch, line) = if exhausted {
            let reason = format!("{why} (attempt {failures} of {})", t.max_attempts);
            (
                TaskState::Failed,
                Patch {
                    failures: Some(failures),
                    reason: Some(Some(reason)),
                    ..Patch::default()
                },
                format!("✗ {task}: failed: {why} (attempts exhausted)"),
            )
        } else {
            (
                TaskState::Ready,
                Patch {
                    failures: Some(failures),
                    not_before_ms: Some(self.now + delay),
                    reason: Some(Some(why.to_string())),
                    resume_attempt: Some(continues.then_some(id)),
                    ..Patch::default()
                },
                format!("↻ {task}: {why}; retry in {delay} ms"),
            )
        };
        ops.push(Op::Transition {
            task: task.clone(),
            from,
            to,
            patch,
            actor: Actor::Supervisor,
            attempt: Some(n),
            data: EventData {
                why: Some(why.to_string()),
                retry_in_ms: (!exhausted).then_some(delay),
                ..EventData::default()
            },
        });
        self.mark_closing(id);
        self.write(ops, Then::Say(line));
    }

    pub(super) fn on_answered(&mut self, id: AttemptId) {
        let waiting = self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.substatus == crate::core::domain::Substatus::WaitingInput);
        if waiting {
            self.write(vec![Op::Answered { id }], Then::Nothing);
        }
    }

    /// Stop the run: ask every agent to end (its attempt is then abandoned), or leave them for
    /// the next start to recover.
    pub(super) fn on_stop(&mut self, stop_agents: bool) {
        self.stopping = true;
        self.leave_agents = !stop_agents;
        if !stop_agents {
            return;
        }
        self.note_held_at_stop();
        let ids: Vec<AttemptId> = self
            .live
            .iter()
            .filter(|(_, l)| {
                let kept = l.kept.is_some() && l.phase == Phase::Collecting;
                l.stop.is_none()
                    && l.exit.is_none()
                    && (kept || matches!(l.phase, Phase::Running { .. } | Phase::InReview { .. }))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(l) = self.live.get_mut(&id) {
                l.stop = Some("the run is stopping".into());
            }
            self.out.push(Effect::Stop {
                attempt: id,
                why: "the run is stopping".into(),
            });
        }
    }

    /// Ops that hand a task to the human with the reason (and a note for a retry).
    pub(super) fn escalate_ops(
        &self,
        task: &str,
        from: TaskState,
        attempt: Option<AttemptNo>,
        why: &str,
        note: Option<String>,
    ) -> Vec<Op> {
        let mut ops = Vec::new();
        if from == TaskState::Review {
            ops.push(Op::SetStage {
                task: task.to_string(),
                stage: None,
                until_ms: None,
                attempt,
                data: EventData::default(),
            });
        }
        ops.push(Op::Transition {
            task: task.to_string(),
            from,
            to: TaskState::Escalated,
            patch: Patch {
                reason: Some(Some(why.to_string())),
                note: note.map(Some),
                ..Patch::default()
            },
            actor: Actor::Supervisor,
            attempt,
            data: EventData::why(why),
        });
        ops
    }
}
