//! An interactive session (Claude, Codex) kept alive through review, and ended cleanly.
//!
//! - `done` (`worker done`, or the human's `orch-tui done`) of an interactive session commits its
//!   work while the process stays: the attempt is closed with its commit and the task goes to
//!   review as always, but the live record stays (`Phase::InReview`) with the process idle at
//!   its prompt.
//! - A change request (the reviewer's `changes:`, a red check, the human's reject note) sends the
//!   task back to `ready` with its note, as for any agent. Seeing a kept session of a ready task,
//!   the supervisor claims the task for a new attempt that continues it (same worktree, same
//!   process: `Effect::HandOver`), and types the note into the session as its next turn — once the
//!   human is not typing in that pane. Its next `done` goes through the funnel again.
//! - When the task merges, is cancelled or leaves the funnel otherwise, the session is ended;
//!   a kept session that died meanwhile is simply forgotten, and the task's next attempt starts
//!   as for any agent (`--resume` of its conversation, in its worktree).
//! - Any stop of an interactive session is recorded as an `agent_stop` event: the executor
//!   interrupts it and types its exit command before any signal.

use super::{AgentFacts, Effect, Live, Phase, Supervisor, Then};
use crate::core::domain::{Actor, AttemptId, EventKind, Reported, Role};
use crate::core::ops::{EventData, Op, Patch};
use crate::core::state::TaskState;

/// After the human's last keystroke in an agent's pane, how long nothing is typed into it.
pub const TYPING_QUIET_MS: u64 = 2_000;

/// What is typed into a kept session as its next turn.
pub fn change_request_text(note: &str) -> String {
    format!(
        "Your work was reviewed and changes are asked for:\n\n{}\n\nMake these changes here, \
         then report that you are done again, as before.",
        note.trim()
    )
}

impl Supervisor {
    /// This agent is an interactive session that stays alive through review.
    pub(super) fn keeps_through_review(&self, l: &Live) -> bool {
        l.role == Role::Agent && self.interrupts(&l.profile)
    }

    /// It said it is done and stays: its work is collected with the process running.
    /// `true` when that is what happens (else the usual stop applies).
    pub(super) fn collect_kept(&mut self, id: AttemptId) -> bool {
        let Some(l) = self.live.get(&id) else {
            return false;
        };
        let done = self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.reported == Some(Reported::Done));
        let Phase::Running { pid } = l.phase else {
            return false;
        };
        if !done || !self.keeps_through_review(l) || l.held.is_some() || self.stopping {
            return false;
        }
        if let Some(l) = self.live.get_mut(&id) {
            l.kept = Some(pid);
        }
        self.collect(id);
        true
    }

    /// The executor answered: the human typed into this agent's pane (the attempt a kept
    /// session's earlier attempt number still points to included).
    pub(super) fn on_typing(&mut self, id: AttemptId) {
        let until = self.now.saturating_add(TYPING_QUIET_MS);
        if let Some(l) = self.live.get_mut(&id) {
            l.typing_until_ms = l.typing_until_ms.max(until);
        }
    }

    /// Kept sessions: go on with a change request, or end with their task.
    pub(super) fn kept_rules(&mut self) {
        let ids: Vec<AttemptId> = self.live.keys().copied().collect();
        for id in ids {
            self.kept_rule(id);
            self.type_turn(id);
        }
    }

    fn kept_rule(&mut self, id: AttemptId) {
        let Some(l) = self.live.get(&id) else { return };
        if !matches!(l.phase, Phase::InReview { .. })
            || l.stop.is_some()
            || l.exit.is_some()
            || self.is_busy(&l.task)
            || self.leave_agents
        {
            return;
        }
        let task = l.task.clone();
        let row_live = self
            .model
            .attempts
            .get(&id)
            .is_none_or(|a| a.state.is_live());
        if row_live {
            // The write that sent it to review lost: end it; its exit is decided as any
            // (`decide_exit` closes it from its report).
            if let Some(l) = self.live.get_mut(&id) {
                l.phase = Phase::Closing;
            }
            self.stop_kept(id, "its review could not be recorded".into());
            return;
        }
        let state = self.model.task(&task).map(|t| t.state);
        let why = match state {
            _ if self.stopping => Some("the run is stopping".to_string()),
            Some(TaskState::Review | TaskState::Approved | TaskState::Merging) => None,
            Some(TaskState::Ready) if self.model.hold.is_none() => {
                self.revive(id);
                None
            }
            Some(TaskState::Ready) => None,
            // Claimed for the attempt that continues it: `setup_rules` adopts it.
            Some(TaskState::Assigned)
                if self
                    .model
                    .latest_agent(&task)
                    .is_some_and(|a| a.continues == Some(id) && a.state.is_live()) =>
            {
                None
            }
            Some(TaskState::Done) => Some("its task merged".to_string()),
            Some(TaskState::Cancelled) => Some("its task was cancelled".to_string()),
            Some(s) => Some(format!("its task is now {s}")),
            None => Some("its task is gone".to_string()),
        };
        if let Some(why) = why {
            self.stop_kept(id, why);
        }
    }

    pub(super) fn stop_kept(&mut self, id: AttemptId, why: String) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        l.stop = Some(why.clone());
        let line = format!("■ {} attempt {}: its session ends: {why}", l.task, l.n);
        self.say(line);
        self.out.push(Effect::Stop { attempt: id, why });
    }

    /// A change request for a kept session's task: a new attempt continues it in place.
    fn revive(&mut self, prev: AttemptId) {
        let Some(l) = self.live.get(&prev) else {
            return;
        };
        let (task, profile) = (l.task.clone(), l.profile.clone());
        let Some(worktree) = self.model.attempts.get(&prev).map(|a| a.worktree.clone()) else {
            return;
        };
        let resume = self
            .model
            .task(&task)
            .is_some_and(|t| t.resume_attempt.is_some());
        let n = self.model.next_attempt_no(&task);
        let id = self.take_attempt_id();
        let mut row = self.new_attempt(id, &task, n, Role::Agent, &profile);
        row.continues = Some(prev);
        row.worktree = worktree;
        // It stands on the same base: a candidate tip it started on is still its base until
        // that candidate merges.
        row.spec_on = self
            .model
            .attempts
            .get(&prev)
            .and_then(|a| a.spec_on.clone())
            .filter(|c| {
                self.model
                    .task(c)
                    .is_some_and(|t| t.state != TaskState::Done)
            });
        let patch = Patch {
            resume_attempt: resume.then_some(None),
            ..Patch::default()
        };
        let ops = vec![
            Op::Transition {
                task: task.clone(),
                from: TaskState::Ready,
                to: TaskState::Assigned,
                patch,
                actor: Actor::Supervisor,
                attempt: None,
                data: EventData {
                    profile: Some(profile),
                    why: Some("its live session takes the change request".into()),
                    ..EventData::default()
                },
            },
            Op::InsertAttempt(row),
        ];
        self.write(
            ops,
            Then::Say(format!(
                "✎ {task}: attempt {n} continues in the live session"
            )),
        );
    }

    /// Setting up `a`, an attempt that continues a kept session: the session is adopted
    /// instead of starting a process. `false` when there is no such session alive (the
    /// attempt starts as usual, resuming the conversation).
    pub(super) fn adopt(&mut self, a: &super::AttemptRec, deadline_ms: Option<u64>) -> bool {
        let Some(prev) = a.continues else {
            return false;
        };
        let Some(old) = self.live.get(&prev) else {
            return false;
        };
        let Phase::InReview { pid } = old.phase else {
            return false;
        };
        if old.stop.is_some() || old.exit.is_some() {
            return false;
        }
        let Some(old) = self.live.remove(&prev) else {
            return false;
        };
        let Some(t) = self.model.task(&a.task) else {
            return false;
        };
        let note = t.note.clone().unwrap_or_else(|| {
            t.reason
                .clone()
                .unwrap_or_else(|| "the review sent it back".into())
        });
        let base = self
            .model
            .attempts
            .get(&prev)
            .and_then(|p| p.base.clone())
            .unwrap_or_default();
        let resume = self.resume_session(a);
        let facts = AgentFacts {
            baseline: self.baseline(resume.as_deref(), a.id),
            ..AgentFacts::default()
        };
        self.live.insert(
            a.id,
            Live {
                role: Role::Agent,
                deadline_ms,
                facts,
                typing_until_ms: old.typing_until_ms,
                turn: Some(change_request_text(&note)),
                ..Live::of(a, Phase::Running { pid }, self.now, old.prompt_hash)
            },
        );
        self.out.push(Effect::HandOver {
            from: prev,
            to: a.id,
        });
        let mut ops = vec![
            Op::Transition {
                task: a.task.clone(),
                from: TaskState::Assigned,
                to: TaskState::Working,
                patch: Patch::default(),
                actor: Actor::Supervisor,
                attempt: None,
                data: EventData {
                    pid: Some(pid),
                    ..EventData::default()
                },
            },
            Op::AttemptRunning {
                id: a.id,
                pid,
                base,
            },
        ];
        // The same conversation: what its transcript says it spent counts less the attempts
        // before (`Ledger::hook_spend`), and a later relaunch resumes it.
        if let Some(session) = resume {
            ops.push(Op::Session { id: a.id, session });
        }
        self.write(ops, Then::Nothing);
        true
    }

    /// A change request waiting for its session: typed once the attempt runs in the ledger and
    /// nobody types in the pane (never dropped: it waits).
    fn type_turn(&mut self, id: AttemptId) {
        let Some(l) = self.live.get(&id) else { return };
        if l.turn.is_none()
            || l.stop.is_some()
            || l.exit.is_some()
            || l.held.is_some()
            || l.typing_until_ms > self.now
            || self.is_busy(&l.task)
            || !matches!(l.phase, Phase::Running { .. })
        {
            return;
        }
        let running = self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.state == crate::core::domain::AttemptState::Running);
        let working = self
            .model
            .task(&l.task)
            .is_some_and(|t| t.state == TaskState::Working);
        if !running || !working {
            return;
        }
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        let Some(text) = l.turn.take() else { return };
        let (task, n) = (l.task.clone(), l.n);
        self.out.push(Effect::SendTurn {
            attempt: id,
            text: text.clone(),
        });
        self.write(
            vec![Op::Event {
                task: Some(task.clone()),
                attempt: Some(n),
                actor: Actor::Supervisor,
                kind: EventKind::ChangeRequestTyped,
                data: EventData {
                    note: Some(text),
                    ..EventData::default()
                },
            }],
            Then::Say(format!(
                "✎ {task} attempt {n}: the change request was typed into its session"
            )),
        );
    }

    /// An interactive session that was asked to stop ended: how (by itself after its exit
    /// command, or by a signal after the grace) is recorded.
    pub(super) fn note_session_end(&mut self, id: AttemptId, exit: super::Exit) {
        let Some(l) = self.live.get(&id) else { return };
        if l.stop.is_none() || !self.interrupts(&l.profile) {
            return;
        }
        let (task, n) = (l.task.clone(), l.n);
        let why = match (exit.code, exit.signal) {
            (Some(c), _) if c > 128 => format!("it exited on signal {} (code {c})", c - 128),
            (Some(c), _) => format!("it exited by itself (code {c})"),
            (None, Some(s)) => format!("it was ended by signal {s}"),
            _ => "it ended".to_string(),
        };
        self.write(
            vec![Op::Event {
                task: Some(task),
                attempt: Some(n),
                actor: Actor::Supervisor,
                kind: EventKind::SessionEnded,
                data: EventData {
                    why: Some(why),
                    exit_code: exit.code,
                    ..EventData::default()
                },
            }],
            Then::Nothing,
        );
    }

    /// Every stop of an interactive session asked for in this step, recorded: it is
    /// interrupted and asked to exit before any signal.
    pub(super) fn record_session_stops(&mut self) {
        let stops: Vec<(AttemptId, String)> = self
            .out
            .iter()
            .filter_map(|e| match e {
                Effect::Stop { attempt, why } => Some((*attempt, why.clone())),
                _ => None,
            })
            .collect();
        for (id, why) in stops {
            let Some(l) = self.live.get(&id) else {
                continue;
            };
            if !self.interrupts(&l.profile) {
                continue;
            }
            let (task, n) = (l.task.clone(), l.n);
            let pid = match l.phase {
                Phase::Running { pid } | Phase::InReview { pid } => Some(pid),
                _ => l.kept,
            };
            self.write(
                vec![Op::Event {
                    task: Some(task),
                    attempt: Some(n),
                    actor: Actor::Supervisor,
                    kind: EventKind::AgentStop,
                    data: EventData {
                        why: Some(why),
                        rule: Some(
                            "interrupt, then the exit command; TERM only after a grace".into(),
                        ),
                        pid,
                        ..EventData::default()
                    },
                }],
                Then::Nothing,
            );
        }
    }
}
