//! Collecting an ended attempt's work: the commit of its worktree (a job), then where the task
//! goes with what was found.

use super::live::trailers;
use super::{Change, Collect, Effect, JobFailure, Phase, Supervisor, Then};
use crate::core::domain::{Actor, AttemptId, AttemptState};
use crate::core::ops::{EventData, Finish, Op, Patch};
use crate::core::state::TaskState;

impl Supervisor {
    /// The supervisor commits what the agent left and finds its change.
    pub(super) fn collect(&mut self, id: AttemptId) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        l.phase = Phase::Collecting;
        let Some(a) = self.model.attempts.get(&id).cloned() else {
            return;
        };
        let spec = self.collect_spec(&a);
        self.out.push(Effect::Collect(spec));
    }

    /// How to collect an attempt's work: its worktree, base, and the commit made for it.
    pub(super) fn collect_spec(&self, a: &super::AttemptRec) -> Collect {
        let title = self
            .model
            .task(&a.task)
            .map_or(a.task.clone(), |t| t.title.clone());
        let (name, email) = self
            .cfg
            .agents
            .get(&a.profile)
            .map(|p| (p.author_name.clone(), p.author_email.clone()))
            .unwrap_or_else(|| ("orch-tui agent".into(), "agent@orch.invalid".into()));
        Collect {
            attempt: a.id,
            task: a.task.clone(),
            n: a.n,
            worktree: a.worktree.clone(),
            branch: a.branch.clone(),
            base: a.base.clone().unwrap_or_default(),
            author_name: name,
            author_email: email,
            message: format!("{title}\n\n{}\n", trailers(&a.task, a.n)),
        }
    }

    pub(super) fn on_collected(&mut self, id: AttemptId, result: Result<Change, JobFailure>) {
        let Some(l) = self.live.get(&id) else { return };
        if l.phase != Phase::Collecting {
            return;
        }
        let (task, n) = (l.task.clone(), l.n);
        // A session that stays through review, if it is still there.
        let alive = l.kept.filter(|_| l.exit.is_none() && l.stop.is_none());
        let state = self.model.task(&task).map(|t| t.state);
        let change = match result {
            Ok(c) => c,
            Err(f) if f.timed_out => {
                let why = format!("collecting the agent's work timed out: {}", f.message);
                let ops = self.escalate_ops(&task, TaskState::Working, Some(n), &why, None);
                self.close(id, AttemptState::Failed, None, &why, ops);
                self.say(format!("⚑ {task}: escalated: {why}"));
                return;
            }
            Err(f) => {
                let why = format!("commit failed: {}", f.message);
                self.fail_attempt(id, TaskState::Working, None, &why);
                return;
            }
        };
        let mut ops: Vec<Op> = change
            .strays
            .iter()
            .map(|s| Op::Event {
                task: Some(task.clone()),
                attempt: Some(n),
                actor: Actor::Supervisor,
                kind: crate::core::domain::EventKind::StrayBranch,
                data: EventData {
                    branch: Some(s.branch.clone()),
                    commit: Some(s.tip.clone()),
                    backup_ref: s.backup_ref.clone(),
                    why: Some(if s.adopted {
                        "the agent committed its work on this branch; taken as the change".into()
                    } else {
                        "the agent left this branch; kept under the backup ref".into()
                    }),
                    ..EventData::default()
                },
            })
            .collect();
        for s in &change.strays {
            let kept = s
                .backup_ref
                .as_deref()
                .map_or("its commits are in the change".to_string(), |b| {
                    format!("kept as {b}")
                });
            self.say(format!(
                "⚠ {task}: the agent left branch `{}`; {kept}",
                s.branch
            ));
        }
        if state != Some(TaskState::Working) {
            let why = "task left `working` while its work was collected";
            ops.insert(
                0,
                finish(id, AttemptState::Abandoned, why, change.tip, None),
            );
            self.mark_closing(id);
            self.write(ops, Then::Nothing);
            return;
        }
        match change.tip {
            None => {
                let why = nothing_taken(&change.strays);
                ops.insert(0, finish(id, AttemptState::Succeeded, &why, None, Some(0)));
                ops.extend(self.escalate_ops(&task, TaskState::Working, Some(n), &why, None));
                self.mark_closing(id);
                self.write(ops, Then::Say(format!("⚑ {task}: escalated: {why}")));
            }
            Some(tip) => {
                let short: String = tip.chars().take(8).collect();
                ops.insert(
                    0,
                    Op::FinishAttempt(Finish {
                        id,
                        outcome: AttemptState::Succeeded,
                        exit_code: Some(0),
                        reason: None,
                        commit: Some(tip.clone()),
                        diff_lines: Some(change.diff_lines),
                    }),
                );
                if let Some(pid) = alive {
                    ops.push(Op::Event {
                        task: Some(task.clone()),
                        attempt: Some(n),
                        actor: Actor::Supervisor,
                        kind: crate::core::domain::EventKind::KeptAlive,
                        data: EventData {
                            pid: Some(pid),
                            why: Some("its session stays, idle, through review".into()),
                            ..EventData::default()
                        },
                    });
                }
                ops.push(Op::Transition {
                    task: task.clone(),
                    from: TaskState::Working,
                    to: TaskState::Review,
                    patch: Patch::default(),
                    actor: Actor::Supervisor,
                    attempt: Some(n),
                    data: EventData {
                        commit: Some(tip),
                        ..EventData::default()
                    },
                });
                match (alive, self.live.get_mut(&id)) {
                    (Some(pid), Some(l)) => l.phase = Phase::InReview { pid },
                    _ => self.mark_closing(id),
                }
                self.write(
                    ops,
                    Then::Say(format!("✓ {task} attempt {n} committed {short}")),
                );
            }
        }
    }
}

pub(super) fn finish(
    id: AttemptId,
    outcome: AttemptState,
    why: &str,
    commit: Option<String>,
    code: Option<i32>,
) -> Op {
    Op::FinishAttempt(Finish {
        id,
        outcome,
        exit_code: code,
        reason: Some(why.to_string()),
        commit,
        diff_lines: None,
    })
}

/// Why an attempt that ended well gave no change: it changed nothing, or it left its work on
/// branches of its own none of which holds the others' (kept under backup refs: which one is
/// the change is the human's call, not a guess).
fn nothing_taken(strays: &[super::Stray]) -> String {
    let kept: Vec<&str> = strays
        .iter()
        .filter(|s| s.backup_ref.is_some())
        .map(|s| s.branch.as_str())
        .collect();
    if kept.is_empty() {
        return "the agent finished without changing anything".to_string();
    }
    format!(
        "the agent left its work on {} branches, none of which holds the others' ({}); each is \
         kept under a backup ref (`orch-tui events --task` names them): pick one to go on",
        kept.len(),
        kept.join(", ")
    )
}
