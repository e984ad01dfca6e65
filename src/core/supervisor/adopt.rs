//! Adoption at start: agents an earlier supervisor left running in their holders
//! (`agent::holder`) continue under this one instead of being reaped and redone.
//!
//! Three kinds of attempt are adopted when the holder answers with the pid the ledger recorded:
//! - a running one: it runs on, its time budget counting the gap (less any time it was frozen);
//! - the held attempt of a paused task (`pause.rs`): it stays held — frozen if its holder says
//!   its tree is stopped, else an interrupted session — and its clock keeps standing still, so
//!   `resume` thaws or continues it as if no restart had happened. A task resumed while no
//!   supervisor ran (`ready` with its held attempt still running) is taken back the same way;
//! - an interactive session kept alive through review (`kept.rs`): its attempt is closed, its
//!   process idles at its prompt; it goes back to `InReview` with its pid, so a change request
//!   is typed into it and a merge or cancel ends it.
//!
//! A running attempt whose agent ended while no supervisor ran is finished from the exit its
//! holder recorded. Everything else of an earlier supervisor is reaped (`boot.rs`).

use super::pause::{Held, HoldHow};
use super::{Effect, HolderFact, Live, Phase, Supervisor, Then};
use crate::core::domain::{AttemptId, AttemptState, Role};
use crate::core::ops::Op;
use crate::core::state::TaskState;

/// The attempts a starting supervisor at `epoch` asks holders about, each with the attempt
/// whose holder would run it: the live ones of earlier epochs, and the closed attempts whose
/// interactive session may still be kept through review.
pub fn holders_to_probe(
    attempts: &[super::AttemptRec],
    tasks: &[super::TaskRec],
    epoch: i64,
) -> Vec<(AttemptId, AttemptId)> {
    use std::collections::BTreeMap;
    let states: BTreeMap<&str, TaskState> =
        tasks.iter().map(|t| (t.id.as_str(), t.state)).collect();
    let ids: BTreeMap<AttemptId, &super::AttemptRec> = attempts.iter().map(|a| (a.id, a)).collect();
    let mut by_task: BTreeMap<&str, Vec<&super::AttemptRec>> = BTreeMap::new();
    for a in attempts {
        by_task.entry(a.task.as_str()).or_default().push(a);
    }
    attempts
        .iter()
        .filter(|a| a.epoch < epoch)
        .filter(|a| {
            let state = states.get(a.task.as_str()).copied();
            let siblings = by_task.get(a.task.as_str()).into_iter().flatten().copied();
            a.state.is_live() || may_be_kept(a, state, siblings)
        })
        .map(|a| (a.id, holder_of(a, &ids)))
        .collect()
}

/// A change request taken by a kept session is a new attempt in the same process: the holder
/// is the first attempt of that chain (same pid).
fn holder_of(
    a: &super::AttemptRec,
    ids: &std::collections::BTreeMap<AttemptId, &super::AttemptRec>,
) -> AttemptId {
    let mut at = a;
    // Bounded: one hop per change request.
    for _ in 0..1000 {
        match at.continues.and_then(|c| ids.get(&c)) {
            Some(prev) if prev.pid.is_some() && prev.pid == at.pid => at = prev,
            _ => break,
        }
    }
    at.id
}

/// A closed agent attempt that left its work for review and may have kept its session: its
/// task in the funnel (or back for changes), and no later attempt of the task has moved on — a
/// starting attempt that continues it aside: the restart abandons that one and the task comes
/// back to the session.
fn may_be_kept<'a>(
    a: &super::AttemptRec,
    task_state: Option<TaskState>,
    mut all: impl Iterator<Item = &'a super::AttemptRec>,
) -> bool {
    let in_funnel = matches!(
        task_state,
        Some(
            TaskState::Review
                | TaskState::Approved
                | TaskState::Merging
                | TaskState::Ready
                | TaskState::Assigned
        )
    );
    a.role == Role::Agent
        && a.state == AttemptState::Succeeded
        && a.pid.is_some()
        && in_funnel
        && !all.any(|b| {
            b.task == a.task
                && b.role == Role::Agent
                && b.n > a.n
                && !(b.continues == Some(a.id) && b.state == AttemptState::Starting)
        })
}

impl Supervisor {
    /// Attempts of an earlier supervisor whose holder still runs the agent (the same pid the
    /// ledger recorded), or recorded how it ended, continue under this one. Returns the adopted
    /// (their processes are spared by the start's reaping).
    pub(super) fn adopt_held(&mut self, holders: &[HolderFact]) -> Vec<HolderFact> {
        // A supervisor that only syncs runs no funnel: an agent it adopted would finish into a
        // review nobody runs and keep it from ending. Its attempts are recovered as before
        // holders; the next full supervisor starts them again.
        if self.only_sync {
            return Vec::new();
        }
        holders
            .iter()
            .filter(|h| self.adopt_one(h))
            .copied()
            .collect()
    }

    fn adopt_one(&mut self, h: &HolderFact) -> bool {
        let Some(a) = self.model.attempts.get(&h.attempt).cloned() else {
            return false;
        };
        let Some(t) = self.model.task(&a.task).cloned() else {
            return false;
        };
        let Some(pid) = a.pid.filter(|_| a.epoch < self.epoch) else {
            return false;
        };
        let live = h.live_pid == Some(pid);
        if a.state == AttemptState::Succeeded {
            return live && self.adopt_kept(h, &a, &t);
        }
        if a.state != AttemptState::Running {
            return false;
        }
        // A paused task's agent is adopted held only if it still runs: one that ended while
        // paused is recovered as before (abandoned, the task stays paused, `resume` continues
        // its work in a new attempt) — no failure either way.
        let held = match t.state {
            TaskState::Paused if t.paused_from == Some(TaskState::Working) && live => {
                Some(self.held_at_adoption(&a, h))
            }
            TaskState::Paused => return false,
            // Resumed while no supervisor ran: `pause_rules` takes the task back for it.
            TaskState::Ready if live && a.role == Role::Agent => {
                let untouched = Held {
                    since_ms: self.now,
                    how: HoldHow::Untouched,
                };
                Some(Some(self.held_at_adoption(&a, h).unwrap_or(untouched)))
            }
            _ => None,
        };
        if !live && h.exit.is_none() {
            return false;
        }
        // Its clock as a thaw leaves it: started (and due) later by the time it was held — as
        // its holder counted (frozen, the current freeze included) or as the ledger recorded
        // (every hold that ended, a session's interrupted turns too).
        let held_ms = h.held_ms.max(a.held_ms);
        let started_ms = a.started_ms.saturating_add(held_ms);
        let deadline_ms = self
            .time_allowance(&t, &a)
            .map(|ms| started_ms.saturating_add(ms));
        // A limit recorded for its account before the restart still holds it: the stop
        // that limit sent may end it now, and that is not the agent's failure.
        // A resumed conversation's agent reports the conversation's totals: what its earlier
        // attempts spent is left out, as when it was launched.
        let resume = self.resume_session(&a);
        let baseline = self.baseline(resume.as_deref(), a.id);
        let mut facts = super::AgentFacts {
            baseline,
            ..super::AgentFacts::default()
        };
        if self.limited(&a.profile) {
            let account = self.account(&a.profile);
            if let Some(until) = self.gate_until(crate::core::ops::GateKind::Limit, &account) {
                facts.limited = Some((until, format!("{account} was limited before the restart")));
            }
        }
        self.live.insert(
            a.id,
            Live {
                deadline_ms,
                exit: if live { None } else { h.exit },
                facts,
                held: held.flatten(),
                held_ms,
                // When the human last typed into it is not known after a restart: a change
                // request waits one quiet window, as after a key.
                typing_until_ms: self.now.saturating_add(super::kept::TYPING_QUIET_MS),
                ..Live::of(
                    &a,
                    Phase::Running { pid },
                    started_ms,
                    super::pause::prompt_hash(&t.prompt),
                )
            },
        );
        if live {
            self.out.push(Effect::Adopt(super::Adopt {
                attempt: a.id,
                task: a.task.clone(),
                role: a.role,
                profile: a.profile.clone(),
                pid,
                held: held.flatten().is_some(),
                holder: h.holder,
                resumed: resume.map(|_| crate::core::agent_event::Tokens {
                    input: baseline.tokens_in,
                    output: baseline.tokens_out,
                    ..Default::default()
                }),
            }));
        }
        let how = match held {
            Some(Some(Held {
                how: HoldHow::Frozen,
                ..
            })) => format!("its agent (pid {pid}) is still frozen for the pause"),
            Some(Some(_)) => format!("its session (pid {pid}) is still held for the pause"),
            Some(None) => format!("its agent (pid {pid}) still runs; it is held for the pause"),
            None if live => format!("its agent (pid {pid}) still runs"),
            None => "its agent ended while no supervisor ran".into(),
        };
        let mut ops = vec![Op::Adopt {
            id: a.id,
            from_epoch: a.epoch,
            epoch: self.epoch,
        }];
        // Frozen time the ledger has not heard of yet (a freeze the restart cut short): kept
        // on the attempt, so an attempt that continues it later counts only what this one ran.
        let unrecorded = h.held_ms.saturating_sub(a.held_ms);
        if unrecorded > 0 {
            ops.push(Op::HeldTime {
                id: a.id,
                ms: unrecorded,
            });
        }
        self.write(
            ops,
            Then::Say(format!("↻ {}: attempt {} adopted: {how}", a.task, a.n)),
        );
        true
    }

    /// How a paused task's adopted agent is held: `Some(held)` when it is held already (frozen
    /// by its holder, or an interactive session whose turn the pause interrupted), `None` when
    /// the pause had not reached it yet (`pause_rules` holds it now).
    fn held_at_adoption(&self, a: &super::AttemptRec, h: &HolderFact) -> Option<Held> {
        let how = if h.frozen {
            HoldHow::Frozen
        } else if !self.interrupts(&a.profile) {
            return None;
        } else if a.substatus.is_waiting() {
            // It waited for the human: nothing was typed into it, nothing will be.
            HoldHow::Untouched
        } else {
            // Interrupted (or idle at its prompt): `resume` types "go on" into it.
            HoldHow::Interrupted
        };
        // Held since the pause: a frozen agent's time so far is in its holder's count (and in
        // `started_ms`), so from now; an interrupted session's since its task was paused (the
        // row's last change; nothing else changes a paused task's row).
        let paused_at = self
            .model
            .task(&a.task)
            .filter(|t| t.state == TaskState::Paused && how != HoldHow::Frozen)
            .map(|t| t.changed_ms)
            .filter(|&at| at > 0 && at <= self.now);
        Some(Held {
            since_ms: paused_at.unwrap_or(self.now),
            how,
        })
    }

    /// A session kept through review whose holder still runs it: back to `InReview`, so the
    /// ordinary rules type a change request into it or end it with its task.
    fn adopt_kept(&mut self, h: &HolderFact, a: &super::AttemptRec, t: &super::TaskRec) -> bool {
        let Some(pid) = h.live_pid else { return false };
        let kept = may_be_kept(a, Some(t.state), self.model.attempts_for(&a.task));
        if !kept || !self.interrupts(&a.profile) {
            return false;
        }
        self.live.insert(
            a.id,
            Live {
                role: Role::Agent,
                kept: Some(pid),
                typing_until_ms: self.now.saturating_add(super::kept::TYPING_QUIET_MS),
                ..Live::of(
                    a,
                    Phase::InReview { pid },
                    a.started_ms,
                    super::pause::prompt_hash(&t.prompt),
                )
            },
        );
        self.out.push(Effect::Adopt(super::Adopt {
            attempt: a.id,
            task: a.task.clone(),
            role: Role::Agent,
            profile: a.profile.clone(),
            pid,
            held: false,
            holder: h.holder,
            resumed: None,
        }));
        self.say(format!(
            "↻ {}: attempt {}'s session (pid {pid}) adopted, kept through review",
            a.task, a.n
        ));
        true
    }
}
