//! Budgets, enforced: tokens and dollars per task (over all its attempts) and per run, time per
//! attempt (an attempt that continues another gets what that one left) and per run. At 80% the
//! supervisor says so once (an event; the clients show the gauge turned and an inbox item); at
//! 100% the agent is stopped and the task escalates "budget exhausted" with its spend and the
//! ways on: extend (continue where it stopped), retry with more, cancel. A spent run budget
//! stops new dispatch and stops the agents that run.

use super::{AttemptRec, Supervisor, TaskRec, Then};
use crate::core::domain::{Actor, AttemptId, AttemptState, EventKind, Role};
use crate::core::ops::{EventData, Finish, GateKind, Op, Patch};
use crate::core::state::TaskState;

/// Where a budget stands: spent of limit, in its unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// `time`, `tokens` or `cost`.
    pub what: &'static str,
    pub spent: f64,
    pub limit: f64,
}

impl Gauge {
    pub fn fraction(&self) -> f64 {
        if self.limit <= 0.0 {
            1.0
        } else {
            self.spent / self.limit
        }
    }

    /// "$0.0123 of $0.0100", "120000 of 100000", "20m of 20m".
    pub fn words(&self) -> String {
        match self.what {
            "cost" => format!("${:.4} of ${:.4}", self.spent, self.limit),
            "time" => format!(
                "{} of {}",
                crate::core::duration::format_duration(self.spent as u64),
                crate::core::duration::format_duration(self.limit as u64)
            ),
            _ => format!("{} of {}", self.spent as u64, self.limit as u64),
        }
    }

    /// "cost budget exhausted ($0.0123 of $0.0100)".
    pub fn exhausted(&self) -> String {
        format!("{} budget exhausted ({})", self.what, self.words())
    }
}

/// The share of a budget at which the supervisor warns.
pub const WARN_AT: f64 = 0.8;

impl Supervisor {
    /// How long an agent attempt may run: the task's time budget, less what the attempts it
    /// continues already used.
    pub(super) fn time_allowance(&self, t: &TaskRec, a: &AttemptRec) -> Option<u64> {
        let budget = t.budget_time_ms?;
        let mut used = 0u64;
        let mut next = a.continues;
        let mut hops = 0;
        while let Some(p) = next.and_then(|id| self.model.attempts.get(&id)) {
            // Only its running time: what it spent held for a paused task is not counted.
            let ran = p.ended_ms.saturating_sub(p.started_ms);
            used = used.saturating_add(ran.saturating_sub(p.held_ms));
            next = p.continues;
            hops += 1;
            if hops > 1000 {
                break;
            }
        }
        // At least a moment, so an extension of nothing still starts and stops cleanly.
        Some(budget.saturating_sub(used).max(1))
    }

    /// Dollars the task may still spend, when it has a cost budget.
    pub(super) fn cost_left(&self, task: &str) -> Option<f64> {
        let limit = self.model.task(task)?.budget_cost_usd?;
        Some((limit - self.model.task_spend(task).1).max(0.0))
    }

    /// The task's token and cost budgets, as gauges.
    pub fn task_gauges(&self, task: &str) -> Vec<Gauge> {
        let Some(t) = self.model.task(task) else {
            return Vec::new();
        };
        if t.budget_tokens.is_none() && t.budget_cost_usd.is_none() {
            return Vec::new();
        }
        let (tokens, cost) = self.model.task_spend(task);
        let mut out = Vec::new();
        if let Some(limit) = t.budget_tokens {
            out.push(Gauge {
                what: "tokens",
                spent: tokens as f64,
                limit: limit as f64,
            });
        }
        if let Some(limit) = t.budget_cost_usd {
            out.push(Gauge {
                what: "cost",
                spent: cost,
                limit,
            });
        }
        out
    }

    /// The run's budgets (`[budgets] run`), as gauges: time since this supervisor started, less
    /// the time the run stood paused (`run_paused_ms`).
    pub fn run_gauges(&self) -> Vec<Gauge> {
        let b = &self.cfg.run_budget;
        // Summing every attempt's spend is the run's length; only a budget needs it.
        let (tokens, cost) = if b.tokens.is_some() || b.cost_usd.is_some() {
            self.model.run_spend()
        } else {
            (0, 0.0)
        };
        let mut out = Vec::new();
        if let Some(limit) = b.tokens {
            out.push(Gauge {
                what: "tokens",
                spent: tokens as f64,
                limit: limit as f64,
            });
        }
        if let Some(limit) = b.cost_usd {
            out.push(Gauge {
                what: "cost",
                spent: cost,
                limit,
            });
        }
        if let Some(limit) = b.time_ms {
            out.push(Gauge {
                what: "time",
                spent: self.run_time_ms() as f64,
                limit: limit as f64,
            });
        }
        out
    }

    /// The run's running time: since boot, less every stretch in which it stood paused.
    pub fn run_time_ms(&self) -> u64 {
        let open = self
            .run_paused_since
            .map_or(0, |since| self.now.saturating_sub(since));
        self.now
            .saturating_sub(self.booted_ms)
            .saturating_sub(self.run_paused_ms)
            .saturating_sub(open)
    }

    /// The run stands paused when a task is paused and nothing else moves (no task on its way
    /// from ready to merged, nothing running but held agents): the human stopped the work
    /// (`P`, or the last task that moved), so its clock stands still.
    fn run_stands_paused(&self) -> bool {
        self.model.count(TaskState::Paused) > 0
            && TaskState::MOVING.iter().all(|s| self.model.count(*s) == 0)
            && self.live.values().all(|l| l.held.is_some())
            && self.checking.is_empty()
            && self.merge.is_none()
            && !self.ahead_in_flight()
            && self.sync.is_none()
    }

    /// Start or end a paused stretch of the run's clock (after every step, so a stretch is
    /// exactly the steps between which the run stood paused).
    pub(super) fn run_clock(&mut self) {
        match (self.run_stands_paused(), self.run_paused_since) {
            (true, None) => self.run_paused_since = Some(self.now),
            (false, Some(since)) => {
                self.run_paused_ms = self
                    .run_paused_ms
                    .saturating_add(self.now.saturating_sub(since));
                self.run_paused_since = None;
            }
            _ => {}
        }
    }

    pub(super) fn budget_rules(&mut self) {
        if self.stopping {
            return;
        }
        self.run_budget_rule();
        let running: Vec<(AttemptId, String)> = self
            .live
            .iter()
            .filter(|(_, l)| {
                l.role == Role::Agent
                    && l.stop.is_none()
                    && matches!(l.phase, super::Phase::Running { .. })
            })
            .map(|(id, l)| (*id, l.task.clone()))
            .collect();
        for (id, task) in running {
            for g in self.task_gauges(&task) {
                self.warn_once(Some(&task), &g);
                if g.fraction() >= 1.0 {
                    self.stop_for_budget(id, g.exhausted());
                    break;
                }
            }
        }
        // A task sent back to ready with its budget spent would start only to be stopped:
        // hold it for the human instead.
        // Only the tasks whose row or spend changed since the last look can have crossed.
        let mut spent: Vec<(String, String)> = Vec::new();
        for id in std::mem::take(&mut self.model.budget_dirty) {
            if self
                .model
                .task(&id)
                .is_none_or(|t| t.state != TaskState::Ready)
            {
                continue;
            }
            if self.busy.contains(&id) {
                // Busy with a write: looked at again after its answer.
                self.model.budget_dirty.insert(id);
                continue;
            }
            if let Some(g) = self
                .task_gauges(&id)
                .into_iter()
                .find(|g| g.fraction() >= 1.0)
            {
                spent.push((id, g.exhausted()));
            }
        }
        for (task, words) in spent {
            let why = format!(
                "{words} before an attempt started; raise it with \
                 `orch-tui extend {task} --cost USD` (or --tokens N)"
            );
            let op = Op::Transition {
                task: task.clone(),
                from: TaskState::Ready,
                to: TaskState::Paused,
                patch: Patch {
                    reason: Some(Some(why.clone())),
                    paused_from: Some(Some(TaskState::Ready)),
                    ..Patch::default()
                },
                actor: Actor::Supervisor,
                attempt: None,
                data: EventData::why(why.clone()),
            };
            self.write(vec![op], Then::Say(format!("✋ {task}: {why}")));
        }
    }

    fn run_budget_rule(&mut self) {
        let gauges = self.run_gauges();
        for g in &gauges {
            self.warn_once(None, g);
        }
        let spent = gauges.iter().find(|g| g.fraction() >= 1.0);
        let gated = self
            .model
            .gates
            .contains_key(&(GateKind::Budget, "run".to_string()));
        match (spent, gated) {
            (Some(g), false) => {
                let why = format!(
                    "run {}; nothing new starts (raise [budgets] run in the config and start \
                     again)",
                    g.exhausted()
                );
                self.write(
                    vec![Op::SetGate {
                        kind: GateKind::Budget,
                        name: "run".into(),
                        until_ms: Some(u64::MAX / 2),
                        why: why.clone(),
                    }],
                    Then::Say(format!("⛔ {why}")),
                );
            }
            (None, true) => {
                self.write(
                    vec![Op::SetGate {
                        kind: GateKind::Budget,
                        name: "run".into(),
                        until_ms: None,
                        why: "the run budget is no longer spent".into(),
                    }],
                    Then::Nothing,
                );
            }
            _ => {}
        }
        if let Some(g) = spent {
            let words = format!("run {}", g.exhausted());
            let ids: Vec<AttemptId> = self
                .live
                .iter()
                .filter(|(_, l)| {
                    l.role == Role::Agent
                        && l.stop.is_none()
                        && matches!(l.phase, super::Phase::Running { .. })
                })
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.stop_for_budget(id, words.clone());
            }
        }
    }

    /// The run's budget is spent: nothing new starts.
    pub(super) fn run_budget_spent(&self) -> bool {
        self.model
            .gates
            .contains_key(&(GateKind::Budget, "run".to_string()))
    }

    fn warn_once(&mut self, task: Option<&str>, g: &Gauge) {
        let f = g.fraction();
        if !(WARN_AT..1.0).contains(&f) {
            return;
        }
        let key = (task.unwrap_or("").to_string(), g.what.to_string());
        if !self.warned.insert(key) {
            return;
        }
        let whose = task.map_or("the run".to_string(), |t| format!("task `{t}`"));
        let line = format!(
            "⚠ {whose}: {:.0}% of its {} budget spent ({})",
            f * 100.0,
            g.what,
            g.words()
        );
        self.write(
            vec![Op::Event {
                task: task.map(String::from),
                attempt: None,
                actor: Actor::Supervisor,
                kind: EventKind::BudgetWarning,
                data: EventData {
                    budget: Some(g.what.to_string()),
                    spent: Some(g.spent),
                    limit: Some(g.limit),
                    why: Some(line.clone()),
                    ..EventData::default()
                },
            }],
            Then::Say(line),
        );
    }

    /// Stop an agent because a budget ran out; its exit escalates the task.
    pub(super) fn stop_for_budget(&mut self, id: AttemptId, why: String) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        if l.stop.is_some() || l.exit.is_some() {
            return;
        }
        l.stop = Some(why.clone());
        l.facts.budget = Some(why.clone());
        let task = l.task.clone();
        self.say(format!("⏱ {task}: {why}, stopping its agent"));
        self.out.push(super::Effect::Stop { attempt: id, why });
    }

    /// An agent stopped for its budget ended: the attempt is closed (killed), the task escalates
    /// with its spend and the ways on; its next attempt, if extended, continues this one.
    pub(super) fn budget_exit(&mut self, id: AttemptId, why: &str, code: Option<i32>) {
        let Some(l) = self.live.get(&id) else { return };
        let (task, n) = (l.task.clone(), l.n);
        let (tokens, cost) = self.model.task_spend(&task);
        let run = why.starts_with("run ");
        let flag = if why.starts_with("time") {
            "--time 10m"
        } else if why.starts_with("tokens") {
            "--tokens N"
        } else {
            "--cost USD"
        };
        let ways = if run {
            format!(
                "raise [budgets] run in the config and start again, then `orch-tui retry {task}`"
            )
        } else {
            format!(
                "extend it to continue where it stopped (`orch-tui extend {task} {flag}`), \
                 retry with more (the same with `--retry`), or `orch-tui cancel {task}`"
            )
        };
        let reason = format!("{why}; the task spent {tokens} tokens, ${cost:.4}. Next: {ways}");
        let mut ops = vec![Op::FinishAttempt(Finish {
            id,
            outcome: AttemptState::Killed,
            exit_code: code,
            reason: Some(why.to_string()),
            commit: None,
            diff_lines: None,
        })];
        let mut esc = self.escalate_ops(&task, TaskState::Working, Some(n), &reason, None);
        for op in &mut esc {
            if let Op::Transition { patch, .. } = op {
                patch.resume_attempt = Some(Some(id));
            }
        }
        ops.extend(esc);
        ops.push(Op::Event {
            task: Some(task.clone()),
            attempt: Some(n),
            actor: Actor::Supervisor,
            kind: EventKind::BudgetExhausted,
            data: EventData {
                why: Some(why.to_string()),
                tokens_in: Some(tokens),
                cost_usd: Some(cost),
                ..EventData::default()
            },
        });
        if let Some(l) = self.live.get_mut(&id) {
            l.phase = super::Phase::Closing;
        }
        self.write(ops, Then::Say(format!("⚑ {task}: escalated: {why}")));
    }
}

#[cfg(test)]
mod tests {
    use super::Gauge;

    #[test]
    fn gauges_say_what_was_spent_of_what() {
        let g = Gauge {
            what: "cost",
            spent: 0.0102,
            limit: 0.01,
        };
        assert!(g.fraction() > 1.0);
        assert_eq!(g.exhausted(), "cost budget exhausted ($0.0102 of $0.0100)");
        let t = Gauge {
            what: "tokens",
            spent: 80.0,
            limit: 100.0,
        };
        assert_eq!(t.fraction(), 0.8);
        assert_eq!(t.words(), "80 of 100");
    }
}
