//! What an interactive agent's screen shows, the last layer of detection (hooks report first,
//! through the ledger): waiting for the human (a question, a permission, a first-run dialog),
//! working, idle at its prompt, or stopped by a usage limit. Each change is an `agent_state`
//! event naming the rule that fired; a wait is an inbox item with the screen's line.

use super::{Phase, Supervisor, Then};
use crate::core::agent_event::{Limit, LimitKind};
use crate::core::domain::{Actor, AttemptId, Substatus};
use crate::core::ops::{EventData, Op};
use crate::core::screen_rules::{ScreenMatch, ScreenState, WaitingFor};

/// The state a screen shows, as the ledger words it (`None`: a limit, handled apart).
pub fn substatus_of(state: ScreenState) -> Option<Substatus> {
    Some(match state {
        ScreenState::Waiting(WaitingFor::Question) => Substatus::WaitingInput,
        ScreenState::Waiting(WaitingFor::Permission) => Substatus::WaitingPermission,
        ScreenState::Waiting(WaitingFor::FirstRun) => Substatus::WaitingDialog,
        ScreenState::Working => Substatus::Busy,
        ScreenState::Idle => Substatus::Idle,
        ScreenState::Limited => return None,
    })
}

/// Whether the screen's state replaces `now`. The idle prompt under a question the Stop hook
/// reported does not end the wait (only work or another wait does); a state the agent already
/// has changes nothing.
pub fn screen_replaces(now: Substatus, to: Substatus) -> bool {
    if now == to || now == Substatus::Ended || now == Substatus::Limited {
        return false;
    }
    !(to == Substatus::Idle && now.is_waiting())
}

impl Supervisor {
    pub(super) fn on_screen(&mut self, id: AttemptId, seen: ScreenMatch) {
        let Some(l) = self.live.get(&id) else { return };
        if l.stop.is_some() || !matches!(l.phase, Phase::Running { .. }) {
            return;
        }
        let (task, n) = (l.task.clone(), l.n);
        let Some(to) = substatus_of(seen.state) else {
            // An interactive agent waits at its limit screen: record the limit (its account
            // pauses, the attempt is not a failure) and end it; the next attempt continues it.
            self.on_limit(
                id,
                Limit {
                    kind: LimitKind::Usage,
                    resets: None,
                    text: seen.excerpt.clone(),
                },
            );
            if let Some(l) = self.live.get_mut(&id)
                && l.stop.is_none()
                && l.facts.limited.is_some()
            {
                let why = format!("usage limit on screen ({})", seen.rule);
                l.stop = Some(why.clone());
                self.out.push(super::Effect::Stop { attempt: id, why });
            }
            return;
        };
        let Some(a) = self.model.attempts.get(&id) else {
            return;
        };
        if !a.state.is_live() || !screen_replaces(a.substatus, to) {
            return;
        }
        let excerpt = crate::core::agent_event::short_text(&seen.excerpt, 300);
        let then = if to.is_waiting() {
            Then::Say(format!(
                "? {task} attempt {n} {}: {excerpt}",
                match to {
                    Substatus::WaitingPermission => "asks permission",
                    Substatus::WaitingDialog => "waits at a first-run dialog",
                    _ => "waits for an answer",
                }
            ))
        } else {
            Then::Nothing
        };
        self.write(
            vec![Op::AgentState {
                id,
                substatus: to,
                question: to.is_waiting().then(|| excerpt.clone()),
                actor: Actor::Supervisor,
                data: EventData {
                    rule: Some(format!("screen:{}", seen.rule)),
                    excerpt: Some(excerpt),
                    ..EventData::default()
                },
            }],
            then,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_prompt_under_a_question_does_not_end_the_wait() {
        assert!(!screen_replaces(Substatus::WaitingInput, Substatus::Idle));
        assert!(screen_replaces(Substatus::WaitingInput, Substatus::Busy));
        assert!(screen_replaces(
            Substatus::Busy,
            Substatus::WaitingPermission
        ));
        assert!(screen_replaces(
            Substatus::Starting,
            Substatus::WaitingDialog
        ));
        assert!(!screen_replaces(Substatus::Busy, Substatus::Busy));
        assert!(!screen_replaces(Substatus::Ended, Substatus::Busy));
    }
}
