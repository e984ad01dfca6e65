//! The review funnel between "the agent's work is committed" and "approved": checks, the
//! reviewer agent, the human (approve, or a veto window), each stage an event.

use crate::core::domain::{AttemptNo, EventKind, FunnelStage};
use std::path::PathBuf;
use std::time::Duration;

use super::checks::{CheckResult, run_checks};
use super::{Engine, EngineError, EngineEvent, Msg};
use crate::core::funnel::{FunnelFacts, Stage, after_checks, first_stage, human_stage};
use crate::core::schedule::backoff_ms;
use crate::core::state::TaskState;
use crate::ledger::{Actor, Patch, TaskRow, now_ms};

impl Engine {
    fn facts(&self, task: &TaskRow, diff_lines: u64) -> FunnelFacts {
        let f = &self.opts.config.funnel;
        FunnelFacts {
            has_checks: !self.checks_for(task).is_empty(),
            has_reviewer: f.reviewer.is_some(),
            autonomy: f.autonomy,
            risk_high: task.risk_high,
            diff_lines,
            large_diff_lines: f.large_diff_lines,
            veto_window_ms: f.veto_window_ms,
        }
    }

    /// The task's own checks, then the config's.
    pub(crate) fn checks_for(&self, task: &TaskRow) -> Vec<String> {
        let mut c = task.checks.clone();
        c.extend(self.opts.config.funnel.checks.iter().cloned());
        c
    }

    /// The agent's work is committed and the task is in `review`: run the first stage.
    pub(crate) fn enter_funnel(&mut self, task: &str, n: AttemptNo) -> Result<(), EngineError> {
        let Some(row) = self.ledger.task(task)? else {
            return Ok(());
        };
        let lines = self.diff_lines_of(task);
        let stage = first_stage(&self.facts(&row, lines), now_ms());
        self.advance(task, n, stage)
    }

    fn diff_lines_of(&self, task: &str) -> u64 {
        let Ok(Some(a)) = self.ledger.latest_attempt(task) else {
            return 0;
        };
        match (a.base, a.commit_oid) {
            (Some(b), Some(c)) => self.repo.diff_lines(&b, &c).unwrap_or(0),
            _ => 0,
        }
    }

    pub(crate) fn advance(
        &mut self,
        task: &str,
        n: AttemptNo,
        stage: Stage,
    ) -> Result<(), EngineError> {
        let attempt = Some(n);
        let until = match stage {
            Stage::Veto { until_ms } => Some(until_ms),
            _ => None,
        };
        let recorded = match stage {
            Stage::Checks => Some(FunnelStage::Checks),
            Stage::Reviewer => Some(FunnelStage::Reviewer),
            Stage::Human => Some(FunnelStage::Human),
            Stage::Veto { .. } => Some(FunnelStage::Veto),
            Stage::Approve => None,
        };
        self.ledger.write(|tx| {
            crate::ledger::set_stage(tx, task, recorded, until, attempt, serde_json::json!({}))?;
            if stage == Stage::Approve {
                crate::ledger::transition_task(
                    tx,
                    task,
                    TaskState::Review,
                    TaskState::Approved,
                    &Patch::default(),
                    Actor::Supervisor,
                    attempt,
                    serde_json::json!({ "why": "the funnel passed" }),
                )?;
            }
            Ok(())
        })?;
        match stage {
            Stage::Approve => {
                self.merge_queue.push_back(task.to_string());
                self.start_next_merge()?;
            }
            Stage::Checks => self.start_checks(task, n)?,
            Stage::Reviewer => self.dispatch_reviewer(task, n)?,
            Stage::Human => {
                self.say(&format!(
                    "✋ {task}: waiting for approval (`orch-tui approve {task}`)"
                ));
            }
            Stage::Veto { until_ms } => self.say(&format!(
                "⏳ {task}: merges in {} s unless vetoed (`orch-tui reject {task} --note ...`)",
                until_ms.saturating_sub(now_ms()).div_ceil(1000)
            )),
        }
        self.emit(EngineEvent::Changed);
        Ok(())
    }

    fn start_checks(&mut self, task: &str, n: AttemptNo) -> Result<(), EngineError> {
        let Some(row) = self.ledger.task(task)? else {
            return Ok(());
        };
        let Some(a) = self.ledger.latest_attempt(task)? else {
            return Ok(());
        };
        let checks = self.checks_for(&row);
        let dir = PathBuf::from(a.worktree.unwrap_or_default());
        let log = PathBuf::from(a.log_dir.unwrap_or_default()).join("checks.log");
        let timeout = Duration::from_millis(self.opts.config.funnel.check_timeout_ms);
        let tx = self.tx.clone();
        let task_id = task.to_string();
        self.checking.insert(task.to_string());
        std::thread::Builder::new()
            .name(format!("checks-{task}"))
            .spawn(move || {
                let results = run_checks(&dir, &checks, timeout, &log, &[]);
                let _ = tx.send(Msg::ChecksDone {
                    task: task_id,
                    n,
                    results,
                });
            })
            .map_err(|e| EngineError::Failed(format!("cannot start a checks thread: {e}")))?;
        Ok(())
    }

    pub(crate) fn on_checks_done(
        &mut self,
        task: &str,
        n: AttemptNo,
        results: Vec<CheckResult>,
    ) -> Result<(), EngineError> {
        self.checking.remove(task);
        let attempt = Some(n);
        self.ledger.write(|tx| {
            for r in &results {
                crate::ledger::append_event(
                    tx,
                    Some(task),
                    attempt,
                    Actor::Check,
                    if r.passed {
                        EventKind::CheckPassed
                    } else {
                        EventKind::CheckFailed
                    },
                    &serde_json::to_value(r).unwrap_or_default(),
                )?;
            }
            Ok(())
        })?;
        let Some(row) = self.ledger.task(task)? else {
            return Ok(());
        };
        if row.state != TaskState::Review {
            return Ok(());
        }
        match results.iter().find(|r| !r.passed) {
            None => {
                self.say(&format!("✓ {task}: {} check(s) passed", results.len()));
                let lines = self.diff_lines_of(task);
                let next = after_checks(&self.facts(&row, lines), now_ms());
                self.advance(task, n, next)
            }
            Some(bad) => {
                let note = format!(
                    "The check `{}` failed{}:\n{}",
                    bad.command,
                    if bad.timed_out { " (timed out)" } else { "" },
                    bad.tail
                );
                self.send_back(task, n, &format!("check `{}` failed", bad.command), &note)
            }
        }
    }

    /// The reviewer answered.
    pub(crate) fn on_verdict(
        &mut self,
        task: &str,
        n: AttemptNo,
        verdict: Option<(bool, Option<String>)>,
    ) -> Result<(), EngineError> {
        let Some(row) = self.ledger.task(task)? else {
            return Ok(());
        };
        if row.state != TaskState::Review {
            return Ok(());
        }
        match verdict {
            Some((true, _)) => {
                self.say(&format!("✓ {task}: the reviewer approved"));
                let lines = self.diff_lines_of(task);
                let next = human_stage(&self.facts(&row, lines), now_ms());
                self.advance(task, n, next)
            }
            Some((false, notes)) => {
                let notes = notes.unwrap_or_default();
                self.send_back(
                    task,
                    n,
                    "the reviewer asked for changes",
                    &format!("The reviewer asked for changes:\n{notes}"),
                )
            }
            None => self.escalate(
                task,
                TaskState::Review,
                Some(n),
                "the reviewer ended without a verdict",
                None,
                serde_json::json!({ "why": "no verdict" }),
            ),
        }
    }

    /// A stage said no: a new attempt carrying `note`, or escalate when attempts are spent.
    fn send_back(
        &mut self,
        task: &str,
        n: AttemptNo,
        why: &str,
        note: &str,
    ) -> Result<(), EngineError> {
        let Some(row) = self.ledger.task(task)? else {
            return Ok(());
        };
        let failures = row.failures + 1;
        let exhausted = failures >= row.max_attempts;
        let retry = self.opts.config.retry.clone();
        let delay = backoff_ms(
            failures,
            retry.backoff_base_ms,
            retry.backoff_cap_ms,
            self.next_random(),
        );
        let attempt = Some(n);
        self.ledger.write(|tx| {
            crate::ledger::set_stage(
                tx,
                task,
                None,
                None,
                attempt,
                serde_json::json!({ "outcome": why }),
            )?;
            let (to, patch) = if exhausted {
                (
                    TaskState::Escalated,
                    Patch {
                        failures: Some(failures),
                        note: Some(Some(note.to_string())),
                        reason: Some(Some(format!(
                            "{why} (attempt {failures} of {})",
                            row.max_attempts
                        ))),
                        ..Patch::default()
                    },
                )
            } else {
                (
                    TaskState::Ready,
                    Patch {
                        failures: Some(failures),
                        not_before_ms: Some(now_ms() + delay),
                        note: Some(Some(note.to_string())),
                        reason: Some(Some(why.to_string())),
                        ..Patch::default()
                    },
                )
            };
            crate::ledger::transition_task(
                tx,
                task,
                TaskState::Review,
                to,
                &patch,
                Actor::Supervisor,
                attempt,
                serde_json::json!({ "why": why }),
            )
        })?;
        if exhausted {
            self.say(&format!("⚑ {task}: escalated: {why}, attempts spent"));
        } else {
            self.say(&format!("↻ {task}: {why}; a new attempt gets the details"));
        }
        self.emit(EngineEvent::Changed);
        Ok(())
    }

    /// On-the-loop: merges whose veto window passed go ahead.
    pub(crate) fn expire_vetoes(&mut self) -> Result<(), EngineError> {
        let now = now_ms();
        let due: Vec<TaskRow> = self
            .ledger
            .tasks_in(TaskState::Review)?
            .into_iter()
            .filter(|t| {
                t.stage == Some(FunnelStage::Veto) && t.stage_until_ms.is_some_and(|u| u <= now)
            })
            .collect();
        for t in due {
            let n = self
                .ledger
                .latest_attempt(&t.id)?
                .map_or(AttemptNo(0), |a| a.n);
            self.say(&format!("⇢ {}: no veto within the window", t.id));
            self.advance(&t.id, n, Stage::Approve)?;
        }
        Ok(())
    }

    /// Tasks a human approved (from the CLI or the TUI) join the merge queue.
    pub(crate) fn queue_approved(&mut self) -> Result<(), EngineError> {
        for t in self.ledger.tasks_in(TaskState::Approved)? {
            if self.merging.as_deref() != Some(t.id.as_str()) && !self.merge_queue.contains(&t.id) {
                self.merge_queue.push_back(t.id.clone());
            }
        }
        self.start_next_merge()
    }
}
