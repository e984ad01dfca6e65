//! The review funnel, level-triggered: a task in `review` with no stage gets its first one; a
//! stage with nothing running gets its work started (checks, a reviewer); a veto window that
//! closed approves. Results (checks, verdicts) move the stage on or send the task back.

use super::{CheckOutcome, Effect, Supervisor, Then};
use crate::core::domain::{Actor, AttemptId, AttemptNo, AttemptState, EventKind, FunnelStage};
use crate::core::domain::{Role, Verdict};
use crate::core::funnel::{FunnelFacts, Stage, after_checks, first_stage, human_stage};
use crate::core::ops::{EventData, Finish, Op, Patch};
use crate::core::schedule::backoff_ms;
use crate::core::state::TaskState;

impl Supervisor {
    fn facts(&self, task: &str) -> FunnelFacts {
        let t = self.model.task(task);
        let f = &self.cfg.funnel;
        FunnelFacts {
            has_checks: !self.checks_for(task).is_empty(),
            has_reviewer: f.reviewer.is_some(),
            autonomy: f.autonomy,
            risk_high: t.is_some_and(|t| t.risk_high),
            diff_lines: self
                .model
                .latest_agent(task)
                .and_then(|a| a.diff_lines)
                .unwrap_or(0),
            large_diff_lines: f.large_diff_lines,
            veto_window_ms: f.veto_window_ms,
        }
    }

    /// The task's own checks, then the config's.
    pub(super) fn checks_for(&self, task: &str) -> Vec<String> {
        let mut c = self
            .model
            .task(task)
            .map(|t| t.checks.clone())
            .unwrap_or_default();
        c.extend(self.cfg.funnel.checks.iter().cloned());
        c
    }

    pub(super) fn funnel_rules(&mut self) {
        let ids: Vec<String> = self
            .model
            .in_state(TaskState::Review)
            .map(|t| t.id.clone())
            .collect();
        for id in ids {
            if self.is_busy(&id) {
                continue;
            }
            let Some(t) = self.model.task(&id) else {
                continue;
            };
            let (stage, until) = (t.stage, t.stage_until_ms);
            let n = self.model.latest_agent(&id).map_or(AttemptNo(0), |a| a.n);
            match stage {
                None => {
                    let next = first_stage(&self.facts(&id), self.now);
                    self.advance(&id, n, next);
                }
                Some(FunnelStage::Checks) => self.start_checks(&id, n),
                Some(FunnelStage::Reviewer) => self.start_reviewer(&id, n),
                Some(FunnelStage::Human) => {}
                Some(FunnelStage::Veto) => {
                    // Started on a candidate tip: approved once that candidate merged.
                    let waits = self.waits_for_candidate(&id).is_some();
                    if until.is_some_and(|u| u <= self.now) && !self.stopping && !waits {
                        self.say(format!("⇢ {id}: no veto within the window"));
                        // Only if the window still runs in the ledger: a human who stopped it
                        // (to type a veto) after the model was read wins the race.
                        let mut ops = vec![Op::ExpectStage {
                            task: id.clone(),
                            stage: FunnelStage::Veto,
                        }];
                        ops.extend(self.stage_ops(&id, n, Stage::Approve, EventData::default()));
                        self.write(ops, Then::Nothing);
                    }
                }
            }
        }
    }

    /// Record the next stage (or approve). The stage's work starts once it is recorded.
    fn advance(&mut self, task: &str, n: AttemptNo, stage: Stage) {
        let ops = self.stage_ops(task, n, stage, EventData::default());
        let line = match stage {
            Stage::Human => format!("✋ {task}: waiting for approval (`orch-tui approve {task}`)"),
            Stage::Veto { until_ms } => format!(
                "⏳ {task}: merges in {} s unless vetoed (`orch-tui reject {task} --note ...`)",
                until_ms.saturating_sub(self.now).div_ceil(1000)
            ),
            _ => String::new(),
        };
        let then = if line.is_empty() {
            Then::Nothing
        } else {
            Then::Say(line)
        };
        self.write(ops, then);
    }

    fn stage_ops(&self, task: &str, n: AttemptNo, stage: Stage, data: EventData) -> Vec<Op> {
        let recorded = match stage {
            Stage::Checks => Some(FunnelStage::Checks),
            Stage::Reviewer => Some(FunnelStage::Reviewer),
            Stage::Human => Some(FunnelStage::Human),
            Stage::Veto { .. } => Some(FunnelStage::Veto),
            Stage::Approve => None,
        };
        let until = match stage {
            Stage::Veto { until_ms } => Some(until_ms),
            _ => None,
        };
        let mut ops = vec![Op::SetStage {
            task: task.to_string(),
            stage: recorded,
            until_ms: until,
            attempt: Some(n),
            data,
        }];
        if stage == Stage::Approve {
            ops.push(Op::Transition {
                task: task.to_string(),
                from: TaskState::Review,
                to: TaskState::Approved,
                patch: Patch::default(),
                actor: Actor::Supervisor,
                attempt: Some(n),
                data: EventData::why("the funnel passed"),
            });
        }
        ops
    }

    fn start_checks(&mut self, task: &str, n: AttemptNo) {
        if self.checking.contains(task) || self.stopping {
            return;
        }
        let Some(a) = self.model.latest_agent(task) else {
            return;
        };
        let (worktree, log) = (a.worktree.clone(), format!("{}/checks.log", a.log_dir));
        self.checking.insert(task.to_string());
        self.out.push(Effect::RunChecks {
            task: task.to_string(),
            n,
            worktree,
            log,
            commands: self.checks_for(task),
        });
    }

    pub(super) fn on_checks_done(&mut self, task: &str, n: AttemptNo, results: Vec<CheckOutcome>) {
        self.checking.remove(task);
        let mut ops: Vec<Op> = results
            .iter()
            .map(|r| check_event(task, n, r, None))
            .collect();
        let in_stage =
            self.model.task(task).is_some_and(|t| {
                t.state == TaskState::Review && t.stage == Some(FunnelStage::Checks)
            }) && self.model.latest_agent(task).map(|a| a.n) == Some(n);
        if !in_stage {
            // The task moved on meanwhile (a human rejected it, say): keep the record only.
            self.write(ops, Then::Nothing);
            return;
        }
        match results.iter().find(|r| !r.passed) {
            None => {
                let next = after_checks(&self.facts(task), self.now);
                ops.extend(self.stage_ops(task, n, next, EventData::default()));
                let line = format!("✓ {task}: {} check(s) passed", results.len());
                self.write(ops, Then::Say(line));
            }
            Some(bad) => {
                let note = format!(
                    "The check `{}` failed{}:\n{}",
                    bad.command,
                    if bad.timed_out { " (timed out)" } else { "" },
                    bad.tail
                );
                let why = format!("check `{}` failed", bad.command);
                self.send_back(task, n, &why, &note, ops);
            }
        }
    }

    fn start_reviewer(&mut self, task: &str, n: AttemptNo) {
        if self.stopping {
            return;
        }
        let running = self
            .live
            .values()
            .any(|l| l.role == Role::Reviewer && l.task == task);
        let written = self
            .model
            .attempts_for(task)
            .any(|a| a.role == Role::Reviewer && a.n == n && a.state.is_live());
        if running || written {
            return;
        }
        let reviewer = self.cfg.funnel.reviewer.clone().unwrap_or_default();
        if !self.cfg.agents.contains_key(&reviewer) {
            let why = format!("reviewer profile `{reviewer}` is not configured");
            let ops = self.escalate_ops(task, TaskState::Review, Some(n), &why, None);
            self.write(ops, Then::Say(format!("⚑ {task}: escalated: {why}")));
            return;
        }
        let id = self.take_attempt_id();
        let row = self.new_attempt(id, task, n, Role::Reviewer, &reviewer);
        self.write(
            vec![Op::InsertAttempt(row)],
            Then::Say(format!("🔎 {task} attempt {n}: review by {reviewer}")),
        );
    }

    /// A reviewer ended: its verdict (if it gave one) decides the next stage.
    pub(super) fn reviewer_ended(&mut self, id: AttemptId) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        l.phase = super::Phase::Closing;
        let (task, n, stop, exit) = (l.task.clone(), l.n, l.stop.clone(), l.exit);
        let row = self.model.attempts.get(&id);
        let reported = row.and_then(|a| a.verdict.map(|v| (v, a.verdict_notes.clone())));
        // A reviewer that could not run `worker verdict` may give it as its reply's last line.
        let said = l.facts.last_message.as_deref().and_then(verdict_line);
        let from_line = reported.is_none() && said.is_some();
        let verdict = reported.or(said);
        let finish = Op::FinishAttempt(Finish {
            id,
            outcome: if verdict.is_some() {
                AttemptState::Succeeded
            } else {
                AttemptState::Failed
            },
            exit_code: exit.and_then(|e| e.code),
            reason: stop,
            commit: None,
            diff_lines: None,
        });
        let in_stage = self.model.task(&task).is_some_and(|t| {
            t.state == TaskState::Review && t.stage == Some(FunnelStage::Reviewer)
        });
        if !in_stage {
            self.write(vec![finish], Then::Nothing);
            return;
        }
        let mut ops = vec![finish];
        if from_line && let Some((v, notes)) = &verdict {
            ops.push(Op::Event {
                task: Some(task.clone()),
                attempt: Some(n),
                actor: Actor::Agent,
                kind: EventKind::Verdict,
                data: EventData {
                    why: Some(format!("{v}, from the last line of the reviewer's reply")),
                    note: notes.clone(),
                    ..EventData::default()
                },
            });
        }
        match verdict {
            Some((Verdict::Approve, _)) => {
                let next = human_stage(&self.facts(&task), self.now);
                ops.extend(self.stage_ops(&task, n, next, EventData::default()));
                self.write(ops, Then::Say(format!("✓ {task}: the reviewer approved")));
            }
            Some((Verdict::Changes, notes)) => {
                let notes = notes.unwrap_or_default();
                let note = format!("The reviewer asked for changes:\n{notes}");
                self.send_back(&task, n, "the reviewer asked for changes", &note, ops);
            }
            None => {
                let why = "the reviewer ended without a verdict";
                ops.extend(self.escalate_ops(&task, TaskState::Review, Some(n), why, None));
                self.write(ops, Then::Say(format!("⚑ {task}: escalated: {why}")));
            }
        }
    }

    /// A stage said no: a new attempt carrying `note`, or escalate when attempts are spent.
    fn send_back(&mut self, task: &str, n: AttemptNo, why: &str, note: &str, mut ops: Vec<Op>) {
        let Some(t) = self.model.task(task).cloned() else {
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
        ops.push(Op::SetStage {
            task: task.to_string(),
            stage: None,
            until_ms: None,
            attempt: Some(n),
            data: EventData {
                outcome: Some(why.to_string()),
                ..EventData::default()
            },
        });
        let (to, patch, line) = if exhausted {
            (
                TaskState::Escalated,
                Patch {
                    failures: Some(failures),
                    note: Some(Some(note.to_string())),
                    reason: Some(Some(format!(
                        "{why} (attempt {failures} of {})",
                        t.max_attempts
                    ))),
                    ..Patch::default()
                },
                format!("⚑ {task}: escalated: {why}, attempts spent"),
            )
        } else {
            (
                TaskState::Ready,
                Patch {
                    failures: Some(failures),
                    not_before_ms: Some(self.now + delay),
                    note: Some(Some(note.to_string())),
                    reason: Some(Some(why.to_string())),
                    // A fresh attempt from the integration tip, told what to change: continuing
                    // in place would put the rejected commit into the integration history.
                    resume_attempt: Some(None),
                    ..Patch::default()
                },
                format!("↻ {task}: {why}; a new attempt gets the details"),
            )
        };
        ops.push(Op::Transition {
            task: task.to_string(),
            from: TaskState::Review,
            to,
            patch,
            actor: Actor::Supervisor,
            attempt: Some(n),
            data: EventData::why(why),
        });
        self.write(ops, Then::Say(line));
    }
}

/// A check's result as an event.
pub(super) fn check_event(task: &str, n: AttemptNo, r: &CheckOutcome, on: Option<&str>) -> Op {
    Op::Event {
        task: Some(task.to_string()),
        attempt: Some(n),
        actor: Actor::Check,
        kind: if r.passed {
            EventKind::CheckPassed
        } else {
            EventKind::CheckFailed
        },
        data: EventData {
            command: Some(r.command.clone()),
            passed: Some(r.passed),
            exit_code: r.exit_code,
            timed_out: Some(r.timed_out),
            duration_ms: Some(r.duration_ms),
            tail: Some(r.tail.clone()),
            on: on.map(String::from),
            ..EventData::default()
        },
    }
}

/// A verdict given as the last non-blank line of a reviewer's reply: `VERDICT: approve`, or
/// `VERDICT: changes: what to change` (any case; a `-` or `—` may stand for the second colon).
pub fn verdict_line(reply: &str) -> Option<(Verdict, Option<String>)> {
    let last = reply.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut t = last.trim().trim_matches('*').trim();
    if t.len() > 1 && t.starts_with('`') && t.ends_with('`') {
        t = &t[1..t.len() - 1];
    }
    let (head, rest) = t.split_once(':')?;
    if !head.trim().eq_ignore_ascii_case("verdict") {
        return None;
    }
    let rest = rest.trim();
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let notes = rest[word.len()..]
        .trim_start_matches(|c: char| c == ':' || c == '-' || c == '—' || c.is_whitespace())
        .trim();
    let notes = (!notes.is_empty()).then(|| notes.to_string());
    match word.to_ascii_lowercase().as_str() {
        "approve" | "approved" => Some((Verdict::Approve, notes)),
        "changes" => Some((Verdict::Changes, notes)),
        _ => None,
    }
}

#[cfg(test)]
mod verdict_tests {
    use super::*;

    #[test]
    fn a_verdict_is_read_from_the_reviewers_last_line_only() {
        assert_eq!(
            verdict_line("Looks right.\n\nVERDICT: approve\n"),
            Some((Verdict::Approve, None))
        );
        assert_eq!(
            verdict_line("**Verdict: changes: rename `foo` to `bar`**"),
            Some((Verdict::Changes, Some("rename `foo` to `bar`".into())))
        );
        assert_eq!(
            verdict_line("verdict: changes — add a test"),
            Some((Verdict::Changes, Some("add a test".into())))
        );
        assert_eq!(verdict_line("VERDICT: approve\nbut one more thing"), None);
        assert_eq!(verdict_line("VERDICT: maybe"), None);
        assert_eq!(verdict_line("I approve"), None);
    }
}
