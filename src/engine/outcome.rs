//! When an agent ends: success goes to commit and review, failure to retry with backoff or to
//! `failed` (blocking its dependents).

use super::{Engine, EngineError, EngineEvent, Msg};
use crate::agent::pty::{AgentSignal, ExitInfo};
use crate::core::domain::{AttemptId, AttemptState, Reported, Role, Verdict};
use crate::core::schedule::backoff_ms;
use crate::core::state::TaskState;
use crate::git::trailers;
use crate::ledger::{Actor, Patch, now_ms};

impl Engine {
    pub(crate) fn on_agent_signal(
        &mut self,
        attempt: AttemptId,
        signal: AgentSignal,
    ) -> Result<(), EngineError> {
        match signal {
            AgentSignal::Exited(info) => self.on_exit(attempt, info),
            AgentSignal::Bell | AgentSignal::Notification(_) => {
                if let Some(l) = self.live.get(&attempt) {
                    let task = l.task.clone();
                    self.emit(EngineEvent::AgentOutput { task });
                }
                Ok(())
            }
            AgentSignal::Output => Ok(()),
        }
    }

    fn on_exit(&mut self, attempt: AttemptId, info: ExitInfo) -> Result<(), EngineError> {
        let stopped = self.live.get(&attempt).and_then(|l| l.stopped_for.clone());
        self.attempt_log(
            attempt,
            "exited",
            &serde_json::json!({ "code": info.code, "signal": info.signal, "stopped_for": stopped }),
        );
        let Some(live) = self.live.get(&attempt) else {
            return Ok(());
        };
        let task = live.task.clone();
        if live.role == Role::Reviewer {
            return self.on_reviewer_exit(attempt, info);
        }
        let stopped_for = live.stopped_for.clone();
        let reported = self.ledger.attempt(attempt)?.and_then(|a| a.reported);
        let state = self.ledger.task(&task)?.map(|t| t.state);
        if state != Some(TaskState::Working) {
            // A human cancelled or paused it: the attempt is abandoned, not failed.
            let why = stopped_for.unwrap_or_else(|| "task left `working`".into());
            self.ledger.write(|tx| {
                crate::ledger::finish_attempt(
                    tx,
                    attempt,
                    AttemptState::Abandoned,
                    info.code,
                    Some(&why),
                    None,
                )
            })?;
            self.live.remove(&attempt);
            self.emit(EngineEvent::Changed);
            return Ok(());
        }
        let success = match (reported, &stopped_for) {
            (Some(Reported::Fail), _) => false,
            (Some(Reported::Done), _) => true,
            (_, Some(_)) => false,
            _ => info.code == Some(0),
        };
        if success {
            self.commit(attempt)
        } else {
            let why = match (&stopped_for, reported) {
                (Some(w), _) => w.clone(),
                (None, Some(Reported::Fail)) => "the agent reported failure".into(),
                _ => match (info.code, info.signal) {
                    (Some(c), _) => format!("agent exited with code {c}"),
                    (None, Some(s)) => format!("agent killed by signal {s}"),
                    _ => "agent ended".into(),
                },
            };
            self.attempt_failed(attempt, info.code, &why, TaskState::Working)
        }
    }

    /// The supervisor commits what the agent left, as the agent's profile, with trailers.
    fn commit(&mut self, attempt: AttemptId) -> Result<(), EngineError> {
        let Some(live) = self.live.get_mut(&attempt) else {
            return Ok(());
        };
        live.committing = true;
        let Some(task) = self.ledger.task(&live.task)? else {
            return Ok(());
        };
        let profile = self.opts.config.agents.get(&live.profile).cloned();
        let (name, email) = profile
            .map(|p| (p.author_name, p.author_email))
            .unwrap_or_else(|| ("orch-tui agent".into(), "agent@orch.invalid".into()));
        let message = format!("{}\n\n{}\n", task.title, trailers(&task.id, live.n.0));
        let repo = self.repo.clone();
        let worktree = live.worktree.clone();
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name(format!("commit-{}", task.id))
            .spawn(move || {
                let result = repo
                    .commit_all(&worktree, &name, &email, &message)
                    .map_err(|e| e.to_string());
                let _ = tx.send(Msg::CommitDone { attempt, result });
            })
            .map_err(|e| EngineError::Failed(format!("cannot start a commit thread: {e}")))?;
        Ok(())
    }

    pub(crate) fn on_commit_done(
        &mut self,
        attempt: AttemptId,
        result: Result<Option<String>, String>,
    ) -> Result<(), EngineError> {
        let Some(live) = self.live.remove(&attempt) else {
            return Ok(());
        };
        let task = live.task.clone();
        match result {
            Err(why) => {
                self.live.insert(attempt, live);
                self.attempt_failed(
                    attempt,
                    None,
                    &format!("commit failed: {why}"),
                    TaskState::Working,
                )
            }
            Ok(None) => {
                let why = "the agent finished without changing anything".to_string();
                self.ledger.write(|tx| {
                    crate::ledger::finish_attempt(
                        tx,
                        attempt,
                        AttemptState::Succeeded,
                        Some(0),
                        Some(&why),
                        None,
                    )?;
                    crate::ledger::transition_task(
                        tx,
                        &task,
                        TaskState::Working,
                        TaskState::Escalated,
                        &Patch {
                            reason: Some(Some(why.clone())),
                            ..Patch::default()
                        },
                        Actor::Supervisor,
                        Some(live.n),
                        serde_json::json!({ "why": "empty change" }),
                    )
                })?;
                self.say(&format!("⚑ {task}: escalated: {why}"));
                self.emit(EngineEvent::Changed);
                Ok(())
            }
            Ok(Some(oid)) => {
                self.ledger.write(|tx| {
                    crate::ledger::finish_attempt(
                        tx,
                        attempt,
                        AttemptState::Succeeded,
                        Some(0),
                        None,
                        Some(&oid),
                    )?;
                    crate::ledger::transition_task(
                        tx,
                        &task,
                        TaskState::Working,
                        TaskState::Review,
                        &Patch::default(),
                        Actor::Supervisor,
                        Some(live.n),
                        serde_json::json!({ "commit": oid }),
                    )
                })?;
                self.say(&format!(
                    "✓ {task} attempt {} committed {}",
                    live.n,
                    short(&oid)
                ));
                self.enter_funnel(&task, live.n)?;
                self.emit(EngineEvent::Changed);
                Ok(())
            }
        }
    }

    /// Close a failed attempt: retry after a jittered backoff, or fail the task for good and
    /// block everything that depends on it.
    pub(crate) fn attempt_failed(
        &mut self,
        attempt: AttemptId,
        code: Option<i32>,
        why: &str,
        from: TaskState,
    ) -> Result<(), EngineError> {
        let Some(live) = self.live.remove(&attempt) else {
            return Ok(());
        };
        let Some(task) = self.ledger.task(&live.task)? else {
            return Ok(());
        };
        let failures = task.failures + 1;
        let retry = self.opts.config.retry.clone();
        let exhausted = failures >= task.max_attempts;
        let delay = backoff_ms(
            failures,
            retry.backoff_base_ms,
            retry.backoff_cap_ms,
            self.next_random(),
        );
        let killed = live.stopped_for.is_some();
        self.ledger.write(|tx| {
            crate::ledger::finish_attempt(
                tx,
                attempt,
                if killed {
                    AttemptState::Killed
                } else {
                    AttemptState::Failed
                },
                code,
                Some(why),
                None,
            )?;
            if exhausted {
                crate::ledger::transition_task(
                    tx,
                    &task.id,
                    from,
                    TaskState::Failed,
                    &Patch {
                        failures: Some(failures),
                        reason: Some(Some(format!(
                            "{why} (attempt {failures} of {})",
                            task.max_attempts
                        ))),
                        ..Patch::default()
                    },
                    Actor::Supervisor,
                    Some(live.n),
                    serde_json::json!({ "why": why }),
                )?;
                crate::ledger::block_descendants(tx, &task.id)?;
            } else {
                crate::ledger::transition_task(
                    tx,
                    &task.id,
                    from,
                    TaskState::Ready,
                    &Patch {
                        failures: Some(failures),
                        not_before_ms: Some(now_ms() + delay),
                        reason: Some(Some(why.to_string())),
                        ..Patch::default()
                    },
                    Actor::Supervisor,
                    Some(live.n),
                    serde_json::json!({ "why": why, "retry_in_ms": delay }),
                )?;
            }
            Ok(())
        })?;
        if exhausted {
            self.say(&format!(
                "✗ {}: failed: {why} (attempts exhausted)",
                task.id
            ));
        } else {
            self.say(&format!("↻ {}: {why}; retry in {} ms", task.id, delay));
        }
        self.emit(EngineEvent::Changed);
        Ok(())
    }
}

impl Engine {
    /// A reviewer ended: its verdict (if it gave one) decides the next stage.
    fn on_reviewer_exit(&mut self, attempt: AttemptId, info: ExitInfo) -> Result<(), EngineError> {
        let Some(live) = self.live.remove(&attempt) else {
            return Ok(());
        };
        let row = self.ledger.attempt(attempt)?;
        let verdict = row.as_ref().and_then(|a| {
            a.verdict
                .map(|v| (v == Verdict::Approve, a.verdict_notes.clone()))
        });
        let outcome = if verdict.is_some() {
            AttemptState::Succeeded
        } else {
            AttemptState::Failed
        };
        let why = live.stopped_for.clone();
        self.ledger.write(|tx| {
            crate::ledger::finish_attempt(tx, attempt, outcome, info.code, why.as_deref(), None)
        })?;
        self.on_verdict(&live.task, live.n, verdict)
    }
}

pub(crate) fn short(oid: &str) -> &str {
    oid.get(..8).unwrap_or(oid)
}
