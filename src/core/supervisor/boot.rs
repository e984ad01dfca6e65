//! Start-up after a crash, `kill -9` or a clean stop: what a previous supervisor left is settled
//! from the ledger's own records (never from text an agent could write), then the ordinary rules
//! take over — a task in review picks its stage up, approved work queues, ready work dispatches.

use super::{Boot, Effect, Supervisor, Then, Tidy};
use crate::core::domain::{Actor, AttemptId, AttemptState, Role};
use crate::core::ops::{EventData, Finish, Op, Patch};
use crate::core::state::TaskState;

impl Supervisor {
    pub(super) fn on_boot(&mut self, b: Boot) {
        self.model = super::Model::default();
        self.model.refresh(b.tasks, b.attempts);
        self.model.hold = b.hold;
        for (kind, name, until, why) in b.gates {
            self.model.gates.insert((kind, name), (until, why));
        }
        self.model.integration_tip = b.recorded_tip.clone();
        self.next_attempt = self.model.next_attempt_id();
        self.model.sync = b.sync;
        let adopted = self.adopt_held(&b.holders);
        self.abandon_stale(&adopted);
        let adopted = self.settle_merges(&b.merged, b.actual_tip.as_deref());
        let adopted = adopted.or_else(|| self.settle_sync(b.actual_tip.as_deref()));
        self.check_integration(b.recorded_tip, b.actual_tip, adopted);
        self.record_base(b.base);
        self.leftovers = b.worktrees;
        self.booted = true;
        self.booted_ms = self.now;
    }

    /// Attempts a previous supervisor left live: stop whatever still runs of them, abandon them
    /// (not the agent's fault: no failure counted), and put their tasks back to ready.
    fn abandon_stale(&mut self, adopted: &[super::HolderFact]) {
        let stale: Vec<_> = self
            .model
            .attempts
            .values()
            .filter(|a| {
                a.state.is_live()
                    && a.epoch < self.epoch
                    && !adopted.iter().any(|h| h.attempt == a.id)
            })
            .cloned()
            .collect();
        // Every start reaps: a process of an earlier supervisor may carry a token whose attempt
        // is closed already (its pid never recorded, its reaping cut short by another crash).
        self.out.push(Effect::ReapStale {
            attempts: stale.iter().map(|a| (a.id, a.pid)).collect(),
            // Its processes carry the token of the attempt that started them (its holder's).
            keep: adopted.iter().flat_map(|h| [h.attempt, h.holder]).collect(),
        });
        for a in stale {
            let state = self.model.task(&a.task).map(|t| t.state);
            // A paused task's held agent that was not adopted (no holder runs it: it ended, or
            // it ran in the old supervisor's own PTY) ends here without a failure. The task
            // stays paused, its next attempt marked to continue this one (docs/architecture.md,
            // "Pause keeps the work").
            let paused = state == Some(TaskState::Paused) && a.role == Role::Agent;
            let reason = if paused {
                "the supervisor stopped while its task was paused; `resume` continues it in a \
                 new attempt"
            } else {
                "the supervisor stopped while it ran"
            };
            let mut ops = vec![Op::FinishAttempt(Finish {
                id: a.id,
                outcome: AttemptState::Abandoned,
                exit_code: None,
                reason: Some(reason.into()),
                commit: None,
                diff_lines: None,
            })];
            // Its next attempt continues it (worktree and conversation) if it ran.
            let resume_attempt = Some(a.base.is_some().then_some(a.id));
            if a.role == Role::Agent
                && let Some(from @ (TaskState::Assigned | TaskState::Working)) = state
            {
                ops.push(Op::Transition {
                    task: a.task.clone(),
                    from,
                    to: TaskState::Ready,
                    patch: Patch {
                        resume_attempt,
                        ..Patch::default()
                    },
                    actor: Actor::Supervisor,
                    attempt: Some(a.n),
                    data: EventData::why("recovered after supervisor restart"),
                });
            }
            if paused && let Some(t) = self.model.task(&a.task) {
                // The mark is a task field that only a transition writes, and `paused` may not
                // move to itself: out and back in one transaction, still the human's pause.
                let paused_from = Some(t.paused_from);
                let why = "recovered after supervisor restart: still paused; `resume` continues \
                           its attempt";
                let step = |from, to, patch| Op::Transition {
                    task: a.task.clone(),
                    from,
                    to,
                    patch,
                    actor: Actor::Supervisor,
                    attempt: Some(a.n),
                    data: EventData::why(why),
                };
                ops.push(step(
                    TaskState::Paused,
                    TaskState::Ready,
                    Patch {
                        resume_attempt,
                        ..Patch::default()
                    },
                ));
                ops.push(step(
                    TaskState::Ready,
                    TaskState::Paused,
                    Patch {
                        paused_from,
                        ..Patch::default()
                    },
                ));
            }
            let line = if paused {
                format!(
                    "↺ {}: attempt {} (held while paused) abandoned at restart; the task stays \
                     paused, `resume` continues it in a new attempt",
                    a.task, a.n
                )
            } else {
                format!("↺ {}: attempt {} abandoned at restart", a.task, a.n)
            };
            self.write(ops, Then::Say(line));
        }
    }

    /// Tasks caught in `merging`: done if the tip the supervisor recorded for the merge is in
    /// the integration branch, else back to the queue. Returns the recorded tip that is the
    /// branch's tip now, if one is (the branch moved, but by us).
    fn settle_merges(
        &mut self,
        merged: &[(AttemptId, bool)],
        actual: Option<&str>,
    ) -> Option<String> {
        let merging: Vec<String> = self
            .model
            .in_state(TaskState::Merging)
            .map(|t| t.id.clone())
            .collect();
        let mut adopted = None;
        for task in merging {
            let a = self.model.latest_agent(&task).cloned();
            let trust = self.faults.trust_recorded_merge;
            let landed = a.as_ref().is_some_and(|a| {
                a.merge_tip.is_some()
                    && (trust || merged.iter().any(|(id, yes)| *id == a.id && *yes))
            });
            let to = if landed {
                TaskState::Done
            } else {
                TaskState::Approved
            };
            let mut ops = vec![Op::Transition {
                task: task.clone(),
                from: TaskState::Merging,
                to,
                patch: Patch::default(),
                actor: Actor::Supervisor,
                attempt: a.as_ref().map(|a| a.n),
                data: EventData {
                    why: Some("recovered an interrupted merge".into()),
                    integration_tip: a.as_ref().and_then(|a| a.merge_tip.clone()),
                    ..EventData::default()
                },
            }];
            let tip = a.as_ref().and_then(|a| a.merge_tip.clone());
            if landed
                && tip.as_deref() == actual
                && let Some(tip) = tip.clone()
            {
                ops.push(Op::SetIntegrationTip {
                    expected: self.model.integration_tip.clone(),
                    tip: tip.clone(),
                });
                adopted = Some(tip);
            }
            if landed && let Some(a) = &a {
                self.tidy_finished(Tidy {
                    task: task.clone(),
                    n: Some(a.n),
                    worktree: a.worktree.clone(),
                    branch: a.branch.clone(),
                    merged: tip.zip(a.commit.clone()),
                });
            }
            self.write(ops, Then::Boot);
        }
        adopted
    }

    /// The integration branch must be where the supervisor left it.
    fn check_integration(
        &mut self,
        recorded: Option<String>,
        actual: Option<String>,
        adopted: Option<String>,
    ) {
        match (recorded, actual) {
            (None, Some(actual)) => {
                // The first start on this ledger: the branch as it is now is the base.
                self.write(
                    vec![Op::SetIntegrationTip {
                        expected: None,
                        tip: actual,
                    }],
                    Then::Boot,
                );
            }
            (Some(r), Some(a)) if r == a || adopted.as_deref() == Some(a.as_str()) => {}
            (Some(r), found) if self.model.hold.is_none() => self.hold_at_boot(&r, found),
            _ => {}
        }
    }

    fn hold_at_boot(&mut self, expected: &str, found: Option<String>) {
        // Reuse the merge path's hold, without a task to put back.
        let backup = format!(
            "refs/orch/backup/integration/{}-{}",
            self.epoch,
            expected.get(..8).unwrap_or(expected)
        );
        let branch = self.cfg.integration_branch.clone();
        let what = match &found {
            Some(f) => format!(
                "{branch} moved to {} while no supervisor ran",
                f.get(..8).unwrap_or(f)
            ),
            None => format!("{branch} was deleted while no supervisor ran"),
        };
        let hold = format!(
            "{what}; orch-tui left it at {} — kept as {backup}. Put it back with \
             `orch-tui integration restore`, or take the branch as it is now with \
             `orch-tui integration accept` (only if it still holds that commit)",
            expected.get(..8).unwrap_or(expected)
        );
        self.out.push(Effect::Backup {
            name: backup.clone(),
            oid: expected.to_string(),
        });
        self.write(
            vec![
                Op::SetHold {
                    hold: Some(hold.clone()),
                },
                Op::Event {
                    task: None,
                    attempt: None,
                    actor: Actor::Supervisor,
                    kind: crate::core::domain::EventKind::IntegrationMoved,
                    data: EventData {
                        expected_tip: Some(expected.to_string()),
                        integration_tip: found,
                        backup_ref: Some(backup),
                        why: Some(hold.clone()),
                        ..EventData::default()
                    },
                },
            ],
            Then::Say(format!("⏸ run held: {hold}")),
        );
    }

    /// A task is finished: its attempt's worktree and branch go (`t`), and so does every other
    /// worktree an earlier attempt of it left (one that switched branches is not replaced by
    /// the next attempt's).
    pub(super) fn tidy_finished(&mut self, t: Tidy) {
        let others: Vec<Tidy> = self
            .model
            .attempts_for(&t.task)
            .filter(|a| a.role == Role::Agent && a.worktree != t.worktree)
            .map(|a| Tidy {
                task: a.task.clone(),
                n: Some(a.n),
                worktree: a.worktree.clone(),
                branch: a.branch.clone(),
                merged: None,
            })
            .collect();
        for tidy in std::iter::once(t).chain(others) {
            if self.tidying.insert(tidy.worktree.clone()) {
                self.out.push(Effect::Tidy(tidy));
            }
        }
    }

    pub(super) fn on_tidied(&mut self, t: Tidy, result: Result<(), String>) {
        self.tidying.remove(&t.worktree);
        let Err(why) = result else { return };
        let tries = self.tidy_failures.entry(t.worktree.clone()).or_insert(0);
        *tries += 1;
        let retry = *tries <= 3;
        self.say(format!(
            "⚠ {}: could not tidy {} away: {why}",
            t.task, t.worktree
        ));
        if retry {
            self.leftovers.push(super::WorktreeFact {
                path: t.worktree,
                task: t.task,
                n: t.n,
            });
        }
    }

    /// Worktrees of finished tasks (done, cancelled) that a crash left behind go, after a backup
    /// of anything in them that nothing else holds.
    pub(super) fn tidy_rules(&mut self) {
        if self.leftovers.is_empty() || self.stopping || self.faults.keep_leftovers {
            return;
        }
        let leftovers = std::mem::take(&mut self.leftovers);
        for w in leftovers {
            let finished = self
                .model
                .task(&w.task)
                .is_some_and(|t| matches!(t.state, TaskState::Done | TaskState::Cancelled));
            let live = self.live.values().any(|l| l.task == w.task)
                || self
                    .model
                    .attempts_for(&w.task)
                    .any(|a| a.worktree == w.path && a.state.is_live());
            if !finished {
                continue;
            }
            if live || self.tidying.contains(&w.path) || self.is_busy(&w.task) {
                // Later: a session kept through review may still be ending in it.
                self.leftovers.push(w);
                continue;
            }
            self.tidying.insert(w.path.clone());
            self.out.push(Effect::Tidy(Tidy {
                task: w.task.clone(),
                n: w.n,
                worktree: w.path.clone(),
                branch: format!("orch/{}", w.task),
                merged: None,
            }));
        }
    }
}
