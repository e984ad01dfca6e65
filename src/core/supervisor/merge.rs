//! The merge queue: one merge at a time, onto exactly the integration tip the supervisor last
//! wrote. The new tip is recorded in the ledger before the branch moves (recovery trusts only
//! that record), and a branch that is not where the supervisor left it holds the whole run.

use super::ahead::MergeOutcomeReady;
use super::funnel::check_event;
use super::{Effect, MergeOutcome, MergePrep, MergeRun, MoveOutcome, Supervisor, Then, Tidy};
use crate::core::domain::{Actor, AttemptId, EventKind};
use crate::core::ops::{EventData, Op, Patch};
use crate::core::state::TaskState;

fn short(oid: &str) -> &str {
    oid.get(..8).unwrap_or(oid)
}

impl Supervisor {
    pub(super) fn merge_rules(&mut self) {
        // Keep the queue in approval order: new approvals at the back, gone ones dropped. Only
        // the tasks whose approval changed are looked at (comparing the whole queue with every
        // approved task after every event made a long queue cost its length squared).
        for id in std::mem::take(&mut self.model.approval_changes) {
            let approved = self
                .model
                .task(&id)
                .is_some_and(|t| t.state == TaskState::Approved);
            match (approved, self.queue.iter().position(|t| *t == id)) {
                (true, None) => self.queue.push_back(id),
                (false, Some(at)) => {
                    self.queue.remove(at);
                }
                _ => {}
            }
        }
        // Nothing merges before the integration tip is recorded (the first start records it).
        if self.merge.is_some()
            || self.sync.is_some()
            || self.stopping
            || self.model.integration_tip.is_none()
        {
            // The merge in flight only records and moves its tip: prepare the next meanwhile.
            self.prepare_ahead();
            return;
        }
        // A merge prepared ahead still runs: it is the next task's, or worth waiting for (one
        // merge job at a time).
        if self.ahead_in_flight() {
            return;
        }
        // A task we moved to `merging` whose answer came back: prepare its merge.
        let merging: Option<String> = self
            .model
            .in_state(TaskState::Merging)
            .map(|t| t.id.clone())
            .find(|id| !self.is_busy(id));
        if let Some(task) = merging {
            self.prepare_merge(&task);
            return;
        }
        // A sync asked for goes before the next task (it is at the head of the queue).
        if self.model.hold.is_some() || self.sync_due() {
            return;
        }
        // A task started on a candidate tip never merges before its candidate.
        let next = self
            .queue
            .iter()
            .find(|t| !self.busy.contains(*t) && self.waits_for_candidate(t).is_none())
            .cloned();
        if let Some(task) = next {
            if self.land_ahead(&task) {
                return;
            }
            let n = self.model.latest_agent(&task).map(|a| a.n);
            let op = Op::Transition {
                task: task.clone(),
                from: TaskState::Approved,
                to: TaskState::Merging,
                patch: Patch::default(),
                actor: Actor::Supervisor,
                attempt: n,
                data: EventData::default(),
            };
            self.write(vec![op], Then::Nothing);
        }
    }

    fn prepare_merge(&mut self, task: &str) {
        let Some(a) = self.model.latest_agent(task).cloned() else {
            return self.close_merge(task, TaskState::Done, "nothing to merge (no attempt)");
        };
        let Some(base) = a.base.clone() else {
            // Its agent never ran: approved by the human with nothing to merge.
            return self.close_merge(task, TaskState::Done, "approved with nothing to merge");
        };
        // Approved although its work was never collected (its collection failed or found
        // nothing): collect it now; nothing there means nothing to merge.
        let collect = match a.commit.clone() {
            Some(_) => None,
            None if self.faults.approve_empty_waits => return,
            None => Some(self.collect_spec(&a)),
        };
        let commit = a.commit.clone().unwrap_or_else(|| base.clone());
        let Some(onto) = self.model.integration_tip.clone() else {
            return self.close_merge(task, TaskState::Escalated, "no integration tip is recorded");
        };
        self.merge = Some(MergeRun::Preparing {
            task: task.to_string(),
            attempt: a.id,
        });
        let prep = self.merge_prep(&a, base, commit, onto, collect);
        self.out.push(Effect::PrepareMerge(prep));
    }

    /// The merge job for attempt `a`'s work (`commit` on `base`) onto the integration tip
    /// `onto`: the queue's own turn and the one prepared ahead ask for the same job.
    pub(super) fn merge_prep(
        &self,
        a: &super::AttemptRec,
        base: String,
        commit: String,
        onto: String,
        collect: Option<super::Collect>,
    ) -> MergePrep {
        MergePrep {
            task: a.task.clone(),
            attempt: a.id,
            n: a.n,
            base,
            commit,
            branch: a.branch.clone(),
            worktree: a.worktree.clone(),
            onto,
            checks: self.checks_for(&a.task),
            log: format!("{}/merge-checks.log", a.log_dir),
            collect,
        }
    }

    /// End a merge without moving the branch.
    fn close_merge(&mut self, task: &str, to: TaskState, why: &str) {
        let n = self.model.latest_agent(task).map(|a| a.n);
        let ops = vec![Op::Transition {
            task: task.to_string(),
            from: TaskState::Merging,
            to,
            patch: Patch {
                reason: Some((to != TaskState::Done).then(|| why.to_string())),
                ..Patch::default()
            },
            actor: Actor::Supervisor,
            attempt: n,
            data: EventData::why(why),
        }];
        let line = match to {
            TaskState::Done => format!("⇢ {task}: {why}"),
            _ => format!("⚑ {task}: escalated: {why}"),
        };
        self.merge = Some(MergeRun::Closing {
            task: task.to_string(),
        });
        // A task done without a merge still leaves its worktree: tidy it (its files, if any,
        // are kept under a backup ref).
        let then = match (to, self.model.latest_agent(task)) {
            (TaskState::Done, Some(a)) => Then::TidyMerged(
                Tidy {
                    task: task.to_string(),
                    n: Some(a.n),
                    worktree: a.worktree.clone(),
                    branch: a.branch.clone(),
                    merged: None,
                },
                line,
            ),
            _ => Then::MergeClosed(Some(line)),
        };
        self.write(ops, then);
    }

    fn escalate_merge(&mut self, task: &str, why: &str, note: Option<String>, mut ops: Vec<Op>) {
        let n = self.model.latest_agent(task).map(|a| a.n);
        ops.extend(self.escalate_ops(task, TaskState::Merging, n, why, note));
        self.merge = Some(MergeRun::Closing {
            task: task.to_string(),
        });
        self.write(
            ops,
            Then::MergeClosed(Some(format!("⚑ {task}: escalated: {why}"))),
        );
    }

    pub(super) fn on_merge_prepared(&mut self, task: &str, result: MergeOutcome) {
        let Some(result) = self.ahead_answer(task, result) else {
            return;
        };
        let Some(MergeRun::Preparing { attempt, .. }) = self.merge.clone() else {
            return;
        };
        let n = self.model.attempts.get(&attempt).map(|a| a.n);
        match result {
            MergeOutcome::Ready { onto, .. }
                if self.model.integration_tip.as_deref() != Some(onto.as_str()) =>
            {
                // Made on a tip that is no longer the one recorded: make it again on that one.
                self.merge = None;
            }
            MergeOutcome::Ready {
                tip,
                rechecked,
                from,
                results,
                onto,
            } => {
                let ready = MergeOutcomeReady {
                    tip,
                    rechecked,
                    from,
                    results,
                    onto,
                };
                self.record_merge(task, attempt, ready, Vec::new());
            }
            MergeOutcome::NothingToMerge => self.close_merge(
                task,
                TaskState::Done,
                "nothing to merge: the change is already on the integration branch",
            ),
            MergeOutcome::Conflict { files } => {
                let worktree = self
                    .model
                    .attempts
                    .get(&attempt)
                    .map(|a| a.worktree.clone())
                    .unwrap_or_default();
                let why = format!(
                    "merge conflict with the integration branch in: {}. Either `orch-tui retry {task}` \
                     (a new attempt on the new base, told about the conflict), or resolve it by hand \
                     in {worktree} (rebase onto the integration branch, commit) and `orch-tui approve {task}`",
                    files.join(", ")
                );
                self.escalate_merge(task, &why, None, Vec::new());
            }
            MergeOutcome::ChecksFailed { results } => {
                let bad = results.iter().find(|r| !r.passed);
                let cmd = bad.map(|r| r.command.clone()).unwrap_or_default();
                let tail = bad.map(|r| r.tail.clone()).unwrap_or_default();
                let why = format!(
                    "check `{cmd}` fails once rebased onto the integration branch (it passed on the attempt's own base)"
                );
                let events = match n {
                    Some(n) => results
                        .iter()
                        .map(|r| check_event(task, n, r, Some("rebased")))
                        .collect(),
                    None => Vec::new(),
                };
                self.escalate_merge(task, &why, Some(format!("{why}:\n{tail}")), events);
            }
            MergeOutcome::Failed(f) => {
                let why = if f.timed_out {
                    format!("the merge timed out: {}", f.message)
                } else {
                    format!("merge failed: {}", f.message)
                };
                self.escalate_merge(task, &why, None, Vec::new());
            }
        }
    }

    /// A clean replay onto the recorded tip: record the new tip (after `ops`), then move the
    /// branch.
    pub(super) fn record_merge(
        &mut self,
        task: &str,
        attempt: AttemptId,
        ready: MergeOutcomeReady,
        mut ops: Vec<Op>,
    ) {
        let MergeOutcomeReady {
            tip,
            rechecked,
            from,
            results,
            onto,
        } = ready;
        let n = self.model.attempts.get(&attempt).map(|a| a.n);
        if rechecked {
            self.say(format!("✓ {task}: checks passed again on the rebased tree"));
        }
        if let Some(n) = n {
            ops.extend(
                results
                    .iter()
                    .map(|r| check_event(task, n, r, Some("rebased"))),
            );
        }
        ops.extend([
            Op::RecordMerge {
                id: attempt,
                tip: tip.clone(),
                onto: onto.clone(),
            },
            Op::Event {
                task: Some(task.to_string()),
                attempt: n,
                actor: Actor::Supervisor,
                kind: EventKind::MergeRecorded,
                data: EventData {
                    integration_tip: Some(tip.clone()),
                    expected_tip: Some(onto.clone()),
                    ..EventData::default()
                },
            },
        ]);
        self.merge = Some(MergeRun::Recording {
            task: task.to_string(),
            attempt,
            tip,
            onto,
            from,
        });
        self.write(ops, Then::MoveIntegration);
    }

    /// The new tip is in the ledger: move the branch.
    pub(super) fn move_integration(&mut self) {
        let Some(MergeRun::Recording {
            task,
            attempt,
            tip,
            onto,
            from,
        }) = self.merge.clone()
        else {
            return;
        };
        self.merge = Some(MergeRun::Moving {
            task: task.clone(),
            attempt,
            tip: tip.clone(),
            onto: onto.clone(),
            from,
        });
        self.out.push(Effect::MoveIntegration { task, tip, onto });
    }

    pub(super) fn on_integration_moved(&mut self, task: &str, result: MoveOutcome) {
        let Some(MergeRun::Moving {
            attempt,
            tip,
            onto,
            from,
            ..
        }) = self.merge.clone()
        else {
            return;
        };
        let a = self.model.attempts.get(&attempt).cloned();
        let n = a.as_ref().map(|a| a.n);
        match result {
            MoveOutcome::Moved => {
                let ops = vec![
                    Op::Transition {
                        task: task.to_string(),
                        from: TaskState::Merging,
                        to: TaskState::Done,
                        patch: Patch {
                            reason: Some(None),
                            ..Patch::default()
                        },
                        actor: Actor::Supervisor,
                        attempt: n,
                        data: EventData {
                            integration_tip: Some(tip.clone()),
                            ..EventData::default()
                        },
                    },
                    Op::SetIntegrationTip {
                        expected: Some(onto),
                        tip: tip.clone(),
                    },
                ];
                let tidy = Tidy {
                    task: task.to_string(),
                    n,
                    worktree: a.as_ref().map(|a| a.worktree.clone()).unwrap_or_default(),
                    branch: a.as_ref().map(|a| a.branch.clone()).unwrap_or_default(),
                    merged: Some((tip.clone(), from)),
                };
                self.merge = Some(MergeRun::Closing {
                    task: task.to_string(),
                });
                self.write(
                    ops,
                    Then::TidyMerged(tidy, format!("⇢ {task} merged ({})", short(&tip))),
                );
            }
            MoveOutcome::NotWhereLeft { .. } if self.faults.ignore_moved_integration => {
                self.on_integration_moved(task, MoveOutcome::Moved)
            }
            // Already where this merge puts it: a move repeated after its answer was lost.
            MoveOutcome::NotWhereLeft { found: Some(f) } if f == tip => {
                self.on_integration_moved(task, MoveOutcome::Moved)
            }
            MoveOutcome::NotWhereLeft { found } => self.integration_moved(task, &onto, found),
            MoveOutcome::Failed(f) => {
                let why = format!("moving the integration branch failed: {}", f.message);
                self.escalate_merge(task, &why, None, Vec::new());
            }
        }
    }

    /// Someone else moved (or deleted) the integration branch: hold the run, keep what the
    /// supervisor had written under a backup ref, put the task back in the queue, and say what
    /// moved and how to go on.
    pub(super) fn integration_moved(&mut self, task: &str, expected: &str, found: Option<String>) {
        let backup = format!(
            "refs/orch/backup/integration/{}-{}",
            self.epoch,
            short(expected)
        );
        let branch = self.cfg.integration_branch.clone();
        let what = match &found {
            Some(f) => format!("{branch} moved to {} (not by orch-tui)", short(f)),
            None => format!("{branch} was deleted (not by orch-tui)"),
        };
        let hold = format!(
            "{what}; orch-tui left it at {} — kept as {backup}. Put it back with \
             `orch-tui integration restore`, or take the branch as it is now with \
             `orch-tui integration accept` (only if it still holds {})",
            short(expected),
            short(expected)
        );
        self.out.push(Effect::Backup {
            name: backup.clone(),
            oid: expected.to_string(),
        });
        let n = self.model.latest_agent(task).map(|a| a.n);
        let ops = vec![
            Op::SetHold {
                hold: Some(hold.clone()),
            },
            Op::Event {
                task: None,
                attempt: None,
                actor: Actor::Supervisor,
                kind: EventKind::IntegrationMoved,
                data: EventData {
                    expected_tip: Some(expected.to_string()),
                    integration_tip: found,
                    backup_ref: Some(backup),
                    why: Some(hold.clone()),
                    ..EventData::default()
                },
            },
            Op::Transition {
                task: task.to_string(),
                from: TaskState::Merging,
                to: TaskState::Approved,
                patch: Patch::default(),
                actor: Actor::Supervisor,
                attempt: n,
                data: EventData::why("the integration branch moved; the merge waits"),
            },
        ];
        self.merge = Some(MergeRun::Closing {
            task: task.to_string(),
        });
        self.write(ops, Then::MergeClosed(Some(format!("⏸ run held: {hold}"))));
    }
}
