//! What a real agent says about itself, as the adapters parse it (`core::agent_event`): its
//! spend (recorded live, settled by its own total), its conversation id (so a later attempt
//! resumes it), and how a run ended in its own words ("API 429 rate limit", "auth 401") —
//! the reason an attempt's failure gives instead of "exited with code 1".

use super::{Supervisor, Then};
use crate::core::agent_event::{AgentEvent, Failure, Spend, Tokens};
use crate::core::domain::{AttemptId, Role};
use crate::core::ops::Op;
use crate::core::usage::{MAX_TOTAL_COST_USD, MAX_TOTAL_TOKENS};

/// What the supervisor learned of one live agent from its output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentFacts {
    /// This process's spend as its events arrive.
    pub spend: Spend,
    /// The resumed conversation's spend before this attempt: an agent's own totals count the
    /// whole conversation (Claude's `total_cost_usd`, Codex's `turn.completed` after a resume).
    pub baseline: Baseline,
    /// The agent's own words for what went wrong, the last it gave.
    pub failure: Option<Failure>,
    /// Its last turn ended well (a `result` without an error, a completed turn).
    pub turn_ok: bool,
    /// What it said last, for the inbox when a turn ends.
    pub last_message: Option<String>,
    /// Stopped because this budget ran out (in words).
    pub budget: Option<String>,
    /// Stopped by a usage or rate limit: until when, and the agent's words.
    pub limited: Option<(u64, String)>,
    /// Tool calls the agent was refused ("Write hello.txt").
    pub denials: Vec<String>,
    /// The screen rule of the first-run dialog it waits at, if it does.
    pub dialog: Option<String>,
    /// Its trust dialog was answered (once per attempt).
    pub trust_typed: bool,
    /// The human's screen answers already typed (their event seqs).
    pub typed: std::collections::BTreeSet<i64>,
    /// The call (tool, subject) of the permission prompt on screen last handled.
    pub screen_call: Option<(String, String)>,
    /// A `[permissions]` rule's answer typed into that prompt, until the screen moves on.
    pub rule_answer: Option<super::waiting::RuleAnswer>,
}

/// Spend already counted by earlier attempts of the same conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Baseline {
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

/// An attempt's spend as (tokens in, tokens out, dollars): the process's figures, less what the
/// conversation had spent before once they are the agent's own totals. Each figure is kept in
/// the range the ledger accepts.
pub fn attempt_spend(spend: &Spend, base: &Baseline) -> (u64, u64, f64) {
    let t: Tokens = spend.tokens;
    let tokens_in = t
        .input
        .saturating_add(t.cache_read)
        .saturating_add(t.cache_write);
    let (mut tin, mut tout, mut cost) = (tokens_in, t.output, spend.cost_usd);
    if spend.settled {
        tin = tin.saturating_sub(base.tokens_in);
        tout = tout.saturating_sub(base.tokens_out);
        cost = (cost - base.cost_usd).max(0.0);
    }
    let cost = if cost.is_finite() {
        cost.clamp(0.0, MAX_TOTAL_COST_USD)
    } else {
        0.0
    };
    (tin.min(MAX_TOTAL_TOKENS), tout.min(MAX_TOTAL_TOKENS), cost)
}

impl Supervisor {
    /// One parsed event of a live agent.
    pub(super) fn on_agent(&mut self, id: AttemptId, ev: AgentEvent) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        match &ev {
            AgentEvent::Usage { .. } | AgentEvent::Total { .. } => {
                l.facts.spend.apply(&ev);
                let profile = l.profile.clone();
                self.record_spend(id);
                self.infra_ok(&profile);
            }
            AgentEvent::Session { id: session } => {
                let session = session.clone();
                self.record_session(id, &session);
            }
            AgentEvent::Failure(f) => l.facts.failure = Some(f.clone()),
            AgentEvent::TurnEnd(t) => {
                if let Some(f) = &t.failure {
                    l.facts.failure = Some(f.clone());
                    // The agent stopped itself at the budget orch-tui gave it: that is this
                    // budget running out, not a failure of the task.
                    if f.kind == crate::core::agent_event::FailureKind::MaxBudget
                        && l.facts.budget.is_none()
                    {
                        l.facts.budget = Some(
                            "cost budget exhausted (the agent stopped at the --max-budget-usd \
                             orch-tui gave it)"
                                .into(),
                        );
                    }
                }
                l.facts.turn_ok = t.ok;
                if t.last_message.is_some() {
                    l.facts.last_message = t.last_message.clone();
                }
                if let Some(s) = t.session_id.clone() {
                    self.record_session(id, &s);
                }
                self.on_turn_end(id, t.clone());
            }
            AgentEvent::Limit(limit) => {
                let limit = limit.clone();
                self.on_limit(id, limit);
            }
            AgentEvent::Permission(p) => {
                let p = p.clone();
                self.on_permission(id, p);
            }
            AgentEvent::Pane(_) => {}
        }
    }

    /// Write the attempt's spend when it rose past what the ledger holds.
    fn record_spend(&mut self, id: AttemptId) {
        let Some(l) = self.live.get(&id) else { return };
        let (tin, tout, cost) = attempt_spend(&l.facts.spend, &l.facts.baseline);
        let Some(a) = self.model.attempts.get(&id) else {
            return;
        };
        if tin <= a.tokens_in && tout <= a.tokens_out && cost <= a.cost_usd {
            return;
        }
        self.write(
            vec![Op::RecordSpend {
                id,
                tokens_in: tin.max(a.tokens_in),
                tokens_out: tout.max(a.tokens_out),
                cost_usd: cost.max(a.cost_usd),
            }],
            Then::Nothing,
        );
    }

    fn record_session(&mut self, id: AttemptId, session: &str) {
        let known = self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.session.as_deref() == Some(session));
        if known || session.is_empty() || session.len() > 200 {
            return;
        }
        self.write(
            vec![Op::Session {
                id,
                session: session.to_string(),
            }],
            Then::Nothing,
        );
    }

    /// The earlier attempt a task's next attempt continues, if it is marked to and that
    /// attempt is one of its agent attempts.
    pub(super) fn continuation(&self, task: &str) -> Option<super::AttemptRec> {
        let prev = self.model.task(task)?.resume_attempt?;
        self.model
            .attempts
            .get(&prev)
            .filter(|a| a.task == task && a.role == Role::Agent && !a.state.is_live())
            .cloned()
    }

    /// The conversation an agent attempt resumes: the one of the attempt it continues (same
    /// worktree). A fresh worktree starts a fresh conversation: a resumed agent would remember
    /// the old folder's paths and could write there.
    pub(super) fn resume_session(&self, a: &super::AttemptRec) -> Option<String> {
        if a.role != Role::Agent {
            return None;
        }
        let resumes = self
            .cfg
            .agents
            .get(&a.profile)
            .is_some_and(|p| p.adapter.resumes_conversations());
        if !resumes {
            return None;
        }
        let prev = a.continues.and_then(|p| self.model.attempts.get(&p))?;
        (prev.profile == a.profile)
            .then(|| prev.session.clone())
            .flatten()
    }

    /// What conversation `session` spent in attempts before `before`.
    pub(super) fn baseline(&self, session: Option<&str>, before: AttemptId) -> Baseline {
        let Some(session) = session else {
            return Baseline::default();
        };
        self.model
            .attempts
            .values()
            .filter(|a| a.id < before && a.session.as_deref() == Some(session))
            .fold(Baseline::default(), |b, a| Baseline {
                tokens_in: b.tokens_in.saturating_add(a.tokens_in),
                tokens_out: b.tokens_out.saturating_add(a.tokens_out),
                cost_usd: b.cost_usd + a.cost_usd,
            })
    }
}

/// Why an agent's run failed, in words: the agent's own when it gave them, else its exit.
pub fn failure_words(failure: Option<&Failure>, code: Option<i32>, signal: Option<i32>) -> String {
    let exit = match (code, signal) {
        (Some(127), _) => "command not found (exit 127)".to_string(),
        (Some(c), _) => format!("agent exited with code {c}"),
        (None, Some(s)) => format!("agent killed by signal {s}"),
        _ => "agent ended".to_string(),
    };
    match failure {
        Some(f) => format!("{} ({exit})", f.words()),
        None => exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::agent_event::FailureKind;

    #[test]
    fn a_resumed_conversation_counts_only_what_this_attempt_spent() {
        let mut s = Spend::default();
        s.apply(&AgentEvent::Usage {
            tokens: Tokens {
                input: 10,
                output: 5,
                ..Tokens::default()
            },
            cost_usd: None,
        });
        let base = Baseline {
            tokens_in: 100,
            tokens_out: 50,
            cost_usd: 0.5,
        };
        // Live figures are this process's own calls.
        assert_eq!(attempt_spend(&s, &base), (10, 5, 0.0));
        // The agent's total counts the whole conversation.
        s.apply(&AgentEvent::Total {
            tokens: Some(Tokens {
                input: 120,
                output: 60,
                ..Tokens::default()
            }),
            cost_usd: 0.75,
        });
        assert_eq!(attempt_spend(&s, &base), (20, 10, 0.25));
    }

    #[test]
    fn failures_are_named_in_the_agents_words() {
        let f = Failure {
            kind: FailureKind::Api { status: 429 },
            detail: String::new(),
        };
        assert_eq!(
            failure_words(Some(&f), Some(1), None),
            "API 429 rate limit (agent exited with code 1)"
        );
        assert_eq!(
            failure_words(None, Some(127), None),
            "command not found (exit 127)"
        );
        assert_eq!(
            failure_words(None, None, Some(9)),
            "agent killed by signal 9"
        );
    }
}
