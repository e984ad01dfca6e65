//! Pause keeps the work: an agent whose task is paused while it works is held, not stopped, and
//! the same attempt goes on when the task is resumed.
//!
//! - Held: an interactive Claude or Codex session has its turn interrupted (Escape, as its
//!   screen says) and keeps its process and conversation (one that waits for the human already
//!   is left untouched); any other agent (a headless run, the sim agent, a plain command) is
//!   frozen (SIGSTOP to its tree). Either way it keeps its slot.
//! - Its clock stands still: a time budget counts only running time (on release the deadline
//!   moves by the time held), and no timer is set for a held agent.
//! - `resume` puts the task back to `ready` (the ledger's state machine); seeing a held attempt
//!   of a ready task, the supervisor takes the task back `ready -> assigned -> working` in one
//!   write instead of dispatching a new attempt, then thaws or continues the agent.
//! - A prompt edited while paused (`orch-tui edit`) wants a fresh attempt: the held one is
//!   stopped (abandoned, no failure counted) and the task dispatches as usual.
//! - A task paused while its attempt is being set up, collected or closed loses that attempt
//!   as before (abandoned), and `resume` starts a fresh one.

use super::{Effect, Live, Phase, Supervisor, Then};
use crate::core::config::{Adapter, AgentMode};
use crate::core::domain::{Actor, AttemptId, Role, Substatus};
use crate::core::ops::{EventData, Op, Patch};
use crate::core::state::TaskState;

/// How a live agent is held while its task is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub since_ms: u64,
    pub how: HoldHow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldHow {
    /// Its tree stopped (`Effect::Freeze`, then `Effect::Thaw`).
    Frozen,
    /// Its session's turn interrupted (`Effect::Interrupt`, then `Effect::Continue`).
    Interrupted,
    /// A session that was waiting for the human anyway: nothing is typed into it either way
    /// (an Escape or a "go on" would land in its question).
    Untouched,
}

/// A stable hash of a prompt (FNV-1a), to notice an edit without keeping the text.
pub fn prompt_hash(prompt: &str) -> u64 {
    prompt.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Supervisor {
    /// This live agent is kept through its task's pause (held now, or about to be, or about
    /// to continue), so the ordinary stop rules leave it alone.
    pub(super) fn keeps_paused(&self, l: &Live) -> bool {
        if l.role != Role::Agent
            || !matches!(l.phase, Phase::Running { .. })
            || l.exit.is_some()
            || (self.stopping && !self.leave_agents)
        {
            return false;
        }
        let Some(t) = self.model.task(&l.task) else {
            return false;
        };
        match t.state {
            TaskState::Paused => t.paused_from == Some(TaskState::Working),
            TaskState::Ready | TaskState::Working => l.held.is_some(),
            _ => false,
        }
    }

    /// Interactive Claude and Codex sessions are interrupted; every other agent is frozen.
    pub(super) fn interrupts(&self, profile: &str) -> bool {
        self.cfg.agents.get(profile).is_some_and(|p| {
            p.mode == AgentMode::Interactive
                && matches!(p.adapter, Adapter::Claude | Adapter::Codex)
        })
    }

    pub(super) fn pause_rules(&mut self) {
        if self.stopping {
            return;
        }
        let ids: Vec<AttemptId> = self.live.keys().copied().collect();
        for id in ids {
            self.hold_or_release(id);
        }
    }

    fn hold_or_release(&mut self, id: AttemptId) {
        let Some(l) = self.live.get(&id) else { return };
        if l.stop.is_some() || self.is_busy(&l.task) || !self.keeps_paused(l) {
            return;
        }
        let Some(t) = self.model.task(&l.task) else {
            return;
        };
        let (task, n, held) = (l.task.clone(), l.n, l.held);
        match (held, t.state) {
            (None, TaskState::Paused) => self.hold(id),
            (Some(_), TaskState::Ready) if prompt_hash(&t.prompt) != l.prompt_hash => {
                let why = "its prompt was edited while it was paused: a fresh attempt takes the \
                           new prompt";
                if let Some(l) = self.live.get_mut(&id) {
                    l.stop = Some(why.into());
                }
                self.say(format!("↻ {task}: attempt {n} stopped: {why}"));
                self.out.push(Effect::Stop {
                    attempt: id,
                    why: why.into(),
                });
            }
            (Some(_), TaskState::Ready) => {
                // Resumed: the task is taken back for the attempt it kept.
                let step = |from, to| Op::Transition {
                    task: task.clone(),
                    from,
                    to,
                    patch: Patch::default(),
                    actor: Actor::Supervisor,
                    attempt: Some(n),
                    data: EventData::why(format!("resumed: attempt {n} continues")),
                };
                let ops = vec![
                    step(TaskState::Ready, TaskState::Assigned),
                    step(TaskState::Assigned, TaskState::Working),
                ];
                self.write(ops, Then::Nothing);
            }
            (Some(_), TaskState::Working) => self.release(id),
            _ => {}
        }
    }

    fn hold(&mut self, id: AttemptId) {
        let Some(profile) = self.live.get(&id).map(|l| l.profile.clone()) else {
            return;
        };
        let waiting = self.model.attempts.get(&id).is_some_and(|a| {
            // A question, a permission prompt or a first-run dialog (an Escape would deny
            // or dismiss it), a turn already over, or a limit: nothing under way to stop.
            a.substatus.is_waiting() || matches!(a.substatus, Substatus::Idle | Substatus::Limited)
        });
        let how = match (self.interrupts(&profile), waiting) {
            (false, _) => HoldHow::Frozen,
            (true, false) => HoldHow::Interrupted,
            (true, true) => HoldHow::Untouched,
        };
        let now = self.now;
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        l.held = Some(Held { since_ms: now, how });
        let words = match how {
            HoldHow::Frozen => "frozen",
            HoldHow::Interrupted => "its turn interrupted",
            HoldHow::Untouched => "held (its session waits for you; nothing typed into it)",
        };
        let line = format!(
            "⏸ {}: attempt {} {words}; `resume` continues it",
            l.task, l.n
        );
        match how {
            HoldHow::Frozen => self.out.push(Effect::Freeze { attempt: id }),
            HoldHow::Interrupted => self.out.push(Effect::Interrupt { attempt: id }),
            HoldHow::Untouched => {}
        }
        self.say(line);
    }

    fn release(&mut self, id: AttemptId) {
        let now = self.now;
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        let Some(h) = l.held.take() else { return };
        // The time held is not running time: the budget's deadline moves by it.
        let held = now.saturating_sub(h.since_ms);
        l.held_ms = l.held_ms.saturating_add(held);
        l.started_ms = l.started_ms.saturating_add(held);
        if !self.faults.count_paused_time {
            l.deadline_ms = l.deadline_ms.map(|d| d.saturating_add(held));
        }
        let line = format!("▶ {}: attempt {} continues", l.task, l.n);
        match h.how {
            HoldHow::Frozen => self.out.push(Effect::Thaw { attempt: id }),
            HoldHow::Interrupted => self.out.push(Effect::Continue { attempt: id }),
            HoldHow::Untouched => {}
        }
        self.say(line);
        // Kept on the attempt, so the allowance of an attempt that continues it later (a
        // budget extended, a limit lifted) counts only what this one ran.
        if held > 0 {
            self.write(vec![Op::HeldTime { id, ms: held }], Then::Nothing);
        }
    }
}
