//! Pause keeps the work: an agent whose task is paused while it works is held, not stopped, and
//! the same attempt goes on when the task is resumed.
//!
//! - Held: an interactive Claude or Codex session has its turn interrupted (Escape, as its
//!   screen says) and keeps its process and conversation (one that waits for the human already
//!   is left untouched); a headless Claude or Codex run is ended (`HoldHow::Ended`: frozen, its
//!   HTTP stream to the API would time out and the run die on thaw) and its conversation is
//!   continued by a new attempt in the same worktree on resume (`--resume`, as after a limit);
//!   any other agent (the sim agent, aider, a plain command) is frozen (SIGSTOP to its tree).
//!   A held process keeps its slot; an ended one frees it.
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
    /// A headless session run (Claude `-p`, `codex exec`), stopped (`Effect::Stop`): its
    /// conversation is on disk under its session id, so the attempt ends (abandoned, no failure)
    /// and the task is marked for its next attempt to continue it (`resume_attempt`). A variant
    /// of the hold rather than a state of its own: until its exit arrives it is the task's one
    /// live agent, its time counts as held and no new attempt may start beside it.
    Ended,
}

/// Why a headless session is stopped at a pause (its attempt's reason).
const ENDED_WHY: &str = "its task was paused: a headless session is ended (not frozen: its \
                         connection to the API would time out); `resume` continues its \
                         conversation in a new attempt";

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

    /// Headless Claude and Codex runs: ended at a pause, their conversation resumed after.
    pub(super) fn ends_at_pause(&self, profile: &str) -> bool {
        self.cfg
            .agents
            .get(profile)
            .is_some_and(|p| p.mode == AgentMode::Headless && p.adapter.resumes_conversations())
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
            (false, _) if self.ends_at_pause(&profile) => HoldHow::Ended,
            (false, _) => HoldHow::Frozen,
            (true, false) => HoldHow::Interrupted,
            (true, true) => HoldHow::Untouched,
        };
        let now = self.now;
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        l.held = Some(Held { since_ms: now, how });
        let line = match how {
            HoldHow::Frozen => "frozen; `resume` continues it",
            HoldHow::Interrupted => "its turn interrupted; `resume` continues it",
            HoldHow::Untouched => {
                "held (its session waits for you; nothing typed into it); `resume` continues it"
            }
            HoldHow::Ended => "ended at a pause; `resume` continues its conversation",
        };
        let line = format!("⏸ {}: attempt {} {line}", l.task, l.n);
        match how {
            HoldHow::Frozen => self.out.push(Effect::Freeze { attempt: id }),
            HoldHow::Interrupted => self.out.push(Effect::Interrupt { attempt: id }),
            HoldHow::Untouched => {}
            HoldHow::Ended => {
                l.stop = Some(ENDED_WHY.into());
                self.out.push(Effect::Stop {
                    attempt: id,
                    why: ENDED_WHY.into(),
                });
            }
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
            HoldHow::Untouched | HoldHow::Ended => {}
        }
        self.say(line);
        // Kept on the attempt, so the allowance of an attempt that continues it later (a
        // budget extended, a limit lifted) counts only what this one ran.
        if held > 0 {
            self.write(vec![Op::HeldTime { id, ms: held }], Then::Nothing);
        }
    }
}

impl Supervisor {
    /// What the write that closes attempt `id` (its agent gone while its task is no longer
    /// working) adds for a session ended at a pause: the mark that its task's next attempt
    /// continues it (same worktree, `--resume` of its session). The mark is a task field only a
    /// transition writes, and a state may not move to itself: out and back in one transaction,
    /// as the restart does (`boot.rs`). Nothing when the prompt was edited meanwhile (a fresh
    /// attempt takes the new prompt) or the task left the pause otherwise (cancelled).
    pub(super) fn ended_at_pause_ops(&self, id: AttemptId) -> Vec<Op> {
        let Some(l) = self.live.get(&id) else {
            return Vec::new();
        };
        let ended = l.held.is_some_and(|h| h.how == HoldHow::Ended);
        let Some(t) = self.model.task(&l.task) else {
            return Vec::new();
        };
        let ran = self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.base.is_some());
        if !ended || !ran || prompt_hash(&t.prompt) != l.prompt_hash {
            return Vec::new();
        }
        let n = l.n;
        let why = format!("attempt {n} ended at a pause; `resume` continues its conversation");
        let step = |from, to, patch| Op::Transition {
            task: t.id.clone(),
            from,
            to,
            patch,
            actor: Actor::Supervisor,
            attempt: Some(n),
            data: EventData::why(why.clone()),
        };
        let mark = Patch {
            resume_attempt: Some(Some(id)),
            ..Patch::default()
        };
        match t.state {
            TaskState::Paused => vec![
                step(TaskState::Paused, TaskState::Ready, mark),
                step(
                    TaskState::Ready,
                    TaskState::Paused,
                    Patch {
                        paused_from: Some(t.paused_from),
                        // What the task shows while it stays paused.
                        reason: Some(Some(why.clone())),
                        ..Patch::default()
                    },
                ),
            ],
            // Resumed before its session was gone: marked on the way.
            TaskState::Ready => vec![
                step(
                    TaskState::Ready,
                    TaskState::Paused,
                    Patch {
                        paused_from: Some(Some(TaskState::Ready)),
                        ..mark
                    },
                ),
                step(TaskState::Paused, TaskState::Ready, Patch::default()),
            ],
            _ => Vec::new(),
        }
    }

    /// A task paused while it worked whose session this run ended at the pause: the run waits
    /// for its `resume` as it waits for a held agent (a headless run does not end under it).
    pub(super) fn waits_for_resume(&self) -> bool {
        self.model.in_state(TaskState::Paused).any(|t| {
            t.paused_from == Some(TaskState::Working)
                && t.resume_attempt
                    .and_then(|a| self.model.attempts.get(&a))
                    .is_some_and(|a| a.epoch == self.epoch)
        })
    }

    /// The last stretch of a hold, for the write that finishes a held attempt (ended by an
    /// edit, a cancel, a stop of the run or its own death while held): without it that time
    /// would count as running time for an attempt that continues this one.
    pub(super) fn held_time_ops(&self, ops: &[Op]) -> Vec<Op> {
        ops.iter()
            .filter_map(|o| match o {
                Op::FinishAttempt(f) => Some(f.id),
                _ => None,
            })
            .filter_map(|id| {
                let h = self.live.get(&id)?.held?;
                let ms = self.now.saturating_sub(h.since_ms);
                (ms > 0).then_some(Op::HeldTime { id, ms })
            })
            .collect()
    }

    /// The run stops while agents are held: the stretch so far is written now (the next start
    /// finishes their attempts), and counted from here on.
    pub(super) fn note_held_at_stop(&mut self) {
        let now = self.now;
        let mut ops = Vec::new();
        for (id, l) in &mut self.live {
            if let Some(h) = &mut l.held {
                let ms = now.saturating_sub(h.since_ms);
                h.since_ms = now;
                if ms > 0 {
                    ops.push(Op::HeldTime { id: *id, ms });
                }
            }
        }
        self.write(ops, Then::Nothing);
    }

    /// A continuation of a headless session that had no session id yet (ended before its first
    /// stream event): it starts a fresh conversation in the same worktree, and says so.
    pub(super) fn say_fresh_conversation(&mut self, a: &super::AttemptRec, resume: Option<&str>) {
        let Some(prev) = a.continues.and_then(|p| self.model.attempts.get(&p)) else {
            return;
        };
        let sessions = self.ends_at_pause(&a.profile);
        if resume.is_some() || a.role != Role::Agent || !sessions {
            return;
        }
        let line = format!(
            "▶ {} attempt {}: attempt {} had no session id yet: a fresh conversation in its \
             worktree",
            a.task, a.n, prev.n
        );
        self.say(line);
    }
}
