//! Limits and breakers. A usage or rate limit an agent hit pauses every agent of its account
//! until the reset time it gave (or `[limits] wait`): no new dispatch for that account, and the
//! limited attempt does not count as a failure — its task goes back to ready for the reset, and
//! its next attempt continues it (same worktree, `--resume`). Repeated infrastructure failures
//! of a profile (auth, API 5xx, command not found, dying in its first seconds) open its circuit
//! breaker: its tasks go to `fallback` profiles whose capabilities fit, and after a cool-down one
//! probe is let through; a probe that reaches the API closes it, one that fails doubles the wait.

use super::{Supervisor, TaskRec, Then};
use crate::core::agent_event::{Failure, Limit, LimitKind};
use crate::core::config::{Adapter, AgentProfile};
use crate::core::domain::{Actor, AttemptId, AttemptState, Role};
use crate::core::ops::{EventData, Finish, GateKind, Op, Patch};
use crate::core::state::TaskState;

/// A profile's run of infrastructure failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Breaker {
    pub failures: u32,
    /// Times it opened since it last closed (each doubles the cool-down).
    pub opened: u32,
}

/// A limit or breaker never waits longer than this before looking again.
const MAX_WAIT_MS: u64 = 24 * 3600 * 1000;
/// An agent that dies this soon after its start, with an error, counts as an infrastructure
/// failure (it never got to work).
const EARLY_DEATH_MS: u64 = 3000;

/// The account a profile's agents spend from: its `account`, else its adapter plus the
/// credential or config folder its environment names (a hash, never the key itself); agents
/// without a shared account (generic, sim) are their own.
pub fn account_of(p: &AgentProfile) -> String {
    if !p.account.is_empty() {
        return p.account.clone();
    }
    let keys: &[&str] = match p.adapter {
        Adapter::Claude => &["CLAUDE_CONFIG_DIR", "ANTHROPIC_API_KEY"],
        Adapter::Codex => &["CODEX_HOME", "OPENAI_API_KEY"],
        Adapter::Aider => &["ANTHROPIC_API_KEY", "OPENAI_API_KEY"],
        Adapter::Generic | Adapter::Sim => return format!("profile:{}", p.name),
    };
    for k in keys {
        if let Some(v) = p.env.get(*k) {
            return format!("{}:{:08x}", p.adapter.as_str(), fnv(v) as u32);
        }
    }
    p.adapter.as_str().to_string()
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Supervisor {
    pub(super) fn account(&self, profile: &str) -> String {
        self.cfg
            .agents
            .get(profile)
            .map_or_else(|| format!("profile:{profile}"), account_of)
    }

    pub(super) fn gate_until(&self, kind: GateKind, name: &str) -> Option<u64> {
        self.model
            .gates
            .get(&(kind, name.to_string()))
            .map(|(u, _)| *u)
    }

    /// The account of `profile` is paused by a limit now.
    pub(super) fn limited(&self, profile: &str) -> bool {
        self.gate_until(GateKind::Limit, &self.account(profile))
            .is_some_and(|u| u > self.now)
    }

    /// Which profile a ready task goes to now, or `None` while it must wait (its account is
    /// limited, its breaker open with no fallback that fits, a probe under way).
    pub(super) fn route(&self, t: &TaskRec) -> Option<String> {
        let profile = match self.continuation(&t.id) {
            // A continuation resumes its conversation: the same profile, or nothing.
            Some(prev) => return self.usable(&prev.profile, true).then_some(prev.profile),
            None => t
                .agent
                .clone()
                .unwrap_or_else(|| self.cfg.default_agent.clone()),
        };
        if self.usable(&profile, true) {
            return Some(profile);
        }
        let open = self
            .gate_until(GateKind::Breaker, &profile)
            .is_some_and(|u| u > self.now);
        if !open {
            // Limited, or a probe runs: wait.
            return None;
        }
        let fallbacks = self
            .cfg
            .agents
            .get(&profile)
            .map(|p| p.fallback.clone())
            .unwrap_or_default();
        fallbacks.into_iter().find(|f| {
            self.cfg.agents.get(f).is_some_and(|p| {
                (p.capabilities.is_empty()
                    || t.capabilities.iter().all(|c| p.capabilities.contains(c)))
                    && self.usable(f, false)
            })
        })
    }

    /// Its account is close to its limit and already runs an agent: one at a time.
    pub(super) fn slowed(&self, profile: &str) -> bool {
        let account = self.account(profile);
        self.slow.contains(&account)
            && self
                .live
                .values()
                .any(|l| self.account(&l.profile) == account)
    }

    /// Not limited and its breaker closed (or, with `probe`, half-open with no probe running).
    fn usable(&self, profile: &str, probe: bool) -> bool {
        if self.limited(profile) {
            return false;
        }
        match self.gate_until(GateKind::Breaker, profile) {
            None => true,
            Some(u) if u > self.now => false,
            Some(_) => probe && !self.live.values().any(|l| l.profile == profile),
        }
    }

    /// Limits whose reset passed are lifted (written, so a restart sees them lifted too).
    pub(super) fn gate_rules(&mut self) {
        if self.stopping {
            return;
        }
        let due: Vec<String> = self
            .model
            .gates
            .iter()
            .filter(|((kind, _), (until, _))| *kind == GateKind::Limit && *until <= self.now)
            .map(|((_, name), _)| name.clone())
            .collect();
        for name in due {
            if self.lifting.insert(name.clone()) {
                self.write(
                    vec![Op::SetGate {
                        kind: GateKind::Limit,
                        name: name.clone(),
                        until_ms: None,
                        why: "the limit's reset time passed".into(),
                    }],
                    Then::Lifted(name.clone()),
                );
            }
        }
    }

    /// The earliest gate that lifts (or lets a probe through) after now.
    pub(super) fn next_gate_ms(&self) -> Option<u64> {
        self.model
            .gates
            .iter()
            .filter(|((kind, _), _)| *kind != GateKind::Budget)
            .map(|(_, (until, _))| *until)
            .filter(|&u| u > self.now)
            .min()
    }

    /// A limit in an agent's output: its attempt waits for the reset, and so does its account.
    pub(super) fn on_limit(&mut self, id: AttemptId, limit: Limit) {
        let Some(l) = self.live.get(&id) else { return };
        let account = self.account(&l.profile);
        if limit.kind == LimitKind::Warning {
            if self.slow.insert(account.clone()) {
                self.say(format!(
                    "⚠ {account}: close to its usage limit ({}); one agent at a time until it resets",
                    limit.text
                ));
            }
            return;
        }
        let until = match limit.resets {
            Some(r) => {
                let s = r.epoch_s((self.now / 1000) as i64, self.utc_offset_s);
                (s.max(0) as u64).saturating_mul(1000)
            }
            None => self.now.saturating_add(self.cfg.limits.wait_ms),
        }
        .clamp(
            self.now.saturating_add(1000),
            self.now.saturating_add(MAX_WAIT_MS),
        );
        let task = l.task.clone();
        if let Some(l) = self.live.get_mut(&id) {
            l.facts.limited = Some((until, limit.text.clone()));
        }
        let known = self.gate_until(GateKind::Limit, &account);
        if known.is_some_and(|u| u >= until) {
            return;
        }
        let why = format!(
            "{} limit: {}",
            match limit.kind {
                LimitKind::Usage => "usage",
                _ => "rate",
            },
            crate::core::agent_event::short_text(&limit.text, 160)
        );
        let line = format!(
            "⏸ {account}: {why} (seen by {task}); its agents wait until the reset, in {} s",
            until.saturating_sub(self.now).div_ceil(1000)
        );
        self.write(
            vec![Op::SetGate {
                kind: GateKind::Limit,
                name: account,
                until_ms: Some(until),
                why,
            }],
            Then::Say(line),
        );
    }

    /// A limited agent ended: not a failure. Its task goes back to ready for the reset and its
    /// next attempt continues this one.
    pub(super) fn limited_exit(
        &mut self,
        id: AttemptId,
        until: u64,
        text: &str,
        code: Option<i32>,
    ) {
        let Some(l) = self.live.get(&id) else { return };
        let (task, n) = (l.task.clone(), l.n);
        let why = format!(
            "stopped by a limit ({}); resumes after the reset",
            crate::core::agent_event::short_text(text, 160)
        );
        let ops = vec![
            Op::FinishAttempt(Finish {
                id,
                outcome: AttemptState::Abandoned,
                exit_code: code,
                reason: Some(why.clone()),
                commit: None,
                diff_lines: None,
            }),
            Op::Transition {
                task: task.clone(),
                from: TaskState::Working,
                to: TaskState::Ready,
                patch: Patch {
                    not_before_ms: Some(until),
                    reason: Some(Some(why.clone())),
                    resume_attempt: Some(Some(id)),
                    ..Patch::default()
                },
                actor: Actor::Supervisor,
                attempt: Some(n),
                data: EventData {
                    why: Some(why.clone()),
                    until_ms: Some(until),
                    ..EventData::default()
                },
            },
        ];
        if let Some(l) = self.live.get_mut(&id) {
            l.phase = super::Phase::Closing;
        }
        self.write(
            ops,
            Then::Say(format!(
                "⏸ {task} attempt {n}: {why} (in {} s)",
                until.saturating_sub(self.now).div_ceil(1000)
            )),
        );
    }

    /// A failed attempt: if the failure is the provider's or the setup's (not the task's),
    /// count it against the profile's breaker.
    pub(super) fn note_infrastructure(
        &mut self,
        id: AttemptId,
        failure: Option<&Failure>,
        code: Option<i32>,
    ) {
        let Some(l) = self.live.get(&id) else { return };
        if l.role != Role::Agent && failure.is_none() {
            return;
        }
        let early = self.now.saturating_sub(l.started_ms) < EARLY_DEATH_MS
            && code.is_some_and(|c| c != 0)
            && l.facts.spend.tokens.total() == 0;
        let infra = failure.is_some_and(Failure::is_infrastructure) || code == Some(127) || early;
        if infra {
            let profile = l.profile.clone();
            let what = failure.map_or_else(
                || format!("died at start (exit {})", code.unwrap_or(-1)),
                Failure::words,
            );
            self.infra_failed(&profile, &what);
        }
    }

    /// An infrastructure failure of `profile` (`what`: in words).
    pub(super) fn infra_failed(&mut self, profile: &str, what: &str) {
        let threshold = self.cfg.limits.breaker_failures.max(1);
        let half_open = self
            .gate_until(GateKind::Breaker, profile)
            .is_some_and(|u| u <= self.now);
        let b = self.breakers.entry(profile.to_string()).or_default();
        b.failures += 1;
        if b.failures < threshold && !half_open {
            return;
        }
        b.opened += 1;
        b.failures = 0;
        let shift = (b.opened - 1).min(10);
        let wait = self
            .cfg
            .limits
            .breaker_cooldown_ms
            .saturating_mul(1 << shift)
            .min(MAX_WAIT_MS);
        let until = self.now.saturating_add(wait);
        let why = format!(
            "{} infrastructure failure(s) in a row, the last: {what}; a probe in {} s",
            if half_open { 1 } else { threshold },
            wait.div_ceil(1000)
        );
        self.write(
            vec![Op::SetGate {
                kind: GateKind::Breaker,
                name: profile.to_string(),
                until_ms: Some(until),
                why: why.clone(),
            }],
            Then::Say(format!("⛔ breaker of {profile} open: {why}")),
        );
    }

    /// `profile` reached the API (its agent spent tokens or ended a turn well): its run of
    /// failures ends, and a half-open breaker closes.
    pub(super) fn infra_ok(&mut self, profile: &str) {
        if let Some(b) = self.breakers.get_mut(profile) {
            b.failures = 0;
        }
        let half_open = self
            .gate_until(GateKind::Breaker, profile)
            .is_some_and(|u| u <= self.now);
        if half_open && self.closing.insert(profile.to_string()) {
            if let Some(b) = self.breakers.get_mut(profile) {
                b.opened = 0;
            }
            self.write(
                vec![Op::SetGate {
                    kind: GateKind::Breaker,
                    name: profile.to_string(),
                    until_ms: None,
                    why: "the probe reached the API: closed".into(),
                }],
                Then::Closed(profile.to_string()),
            );
        }
    }
}
