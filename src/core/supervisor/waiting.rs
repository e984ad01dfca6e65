//! What an interactive agent's screen shows, the last layer of detection (hooks report first,
//! through the ledger): waiting for the human (a question, a permission, a first-run dialog),
//! working, idle at its prompt, or stopped by a usage limit. Each change is an `agent_state`
//! event naming the rule that fired; a wait is an inbox item with the screen's line.

use super::{Effect, Phase, Supervisor, Then};
use crate::core::agent_event::{Limit, LimitKind};
use crate::core::config::Adapter;
use crate::core::domain::{Actor, AttemptId, EventKind, Substatus};
use crate::core::ops::{EventData, Op};
use crate::core::permissions::Decision;
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

/// What the human answered a dialog on screen with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenAnswer {
    /// Trust the folder (a first-run trust dialog).
    Trust,
    Permission(Decision),
}

/// A `[permissions]` rule's answer typed into a prompt on screen. The screen watch reports the
/// prompt again when it is still there, unchanged, a moment later (`engine::watch::REPEAT_MS`):
/// the key did not take. It is typed once more; then the human is asked, with the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleAnswer {
    pub decision: Decision,
    pub rule: String,
    /// How often its key was typed.
    pub tries: u8,
}

/// Times a rule's key is typed into a prompt that stays before the human is asked.
const RULE_TRIES: u8 = 2;

/// The keys that give `answer` on an agent's screen, in chunks typed a moment apart; `None`
/// where orch-tui does not know them (the human answers in the agent's pane). From the dialogs
/// as the pinned CLIs draw them (tests/fixtures/screens/): Claude's trust dialog highlights
/// "No, exit" first; Codex's highlights "Trust and continue" and names its approval keys.
pub fn answer_keys(adapter: Adapter, answer: ScreenAnswer) -> Option<Vec<Vec<u8>>> {
    use ScreenAnswer::*;
    let keys: &[&[u8]] = match (adapter, answer) {
        (Adapter::Claude, Trust) => &[b"\x1b[B", b"\r"],
        (Adapter::Codex, Trust) => &[b"\r"],
        (Adapter::Codex, Permission(Decision::Allow)) => &[b"y"],
        (Adapter::Codex, Permission(Decision::Always)) => &[b"a"],
        (Adapter::Codex, Permission(Decision::Deny)) => &[b"\x1b"],
        (Adapter::Aider, Permission(Decision::Allow)) => &[b"y\r"],
        (Adapter::Aider, Permission(Decision::Always)) => &[b"a\r"],
        (Adapter::Aider, Permission(Decision::Deny)) => &[b"n\r"],
        _ => return None,
    };
    Some(keys.iter().map(|k| k.to_vec()).collect())
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
        // The same prompt again, unchanged: a rule's key did not take (else nothing new).
        let asked = (to == Substatus::WaitingPermission)
            .then_some(seen.call.clone())
            .flatten();
        if let Some(l) = self.live.get_mut(&id) {
            if asked.is_some() && l.facts.screen_call == asked {
                self.rule_answer_stayed(id, &seen);
                return;
            }
            l.facts.screen_call = asked;
            l.facts.rule_answer = None;
        }
        let Some(a) = self.model.attempts.get(&id) else {
            return;
        };
        // A permission prompt's call on screen after a notification already said "waiting for
        // permission" (Codex's OSC 9 comes first): the same wait, now with what it is for.
        let names_the_call =
            to == Substatus::WaitingPermission && a.substatus == to && seen.call.is_some();
        if !a.state.is_live() || !(screen_replaces(a.substatus, to) || names_the_call) {
            return;
        }
        let call = seen.call.as_ref().map(|(tool, subject)| {
            let subject = relative_to(subject, &a.worktree);
            (tool.clone(), subject)
        });
        if to == Substatus::WaitingPermission
            && let Some((tool, subject)) = &call
            && self.rule_answers_screen(id, tool, subject, &seen.rule)
        {
            return;
        }
        let excerpt = crate::core::agent_event::short_text(&seen.excerpt, 300);
        if let Some(l) = self.live.get_mut(&id) {
            l.facts.dialog = (to == Substatus::WaitingDialog).then(|| seen.rule.clone());
        }
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
        let mut ops = vec![Op::AgentState {
            id,
            substatus: to,
            // The inbox shows a call it could read as hooks word theirs: `TOOL: subject`.
            question: to.is_waiting().then(|| match &call {
                Some((tool, subject)) => format!("{tool}: {subject} — {excerpt}"),
                None => excerpt.clone(),
            }),
            keep_question: call.is_none(),
            actor: Actor::Supervisor,
            data: EventData {
                rule: Some(format!("{}:{}", seen.layer.as_str(), seen.rule)),
                excerpt: Some(excerpt.clone()),
                ..EventData::default()
            },
        }];
        if to == Substatus::WaitingPermission {
            // A request `orch-tui answer` finds; its answer is typed into the agent.
            ops.push(Op::Event {
                task: Some(task.clone()),
                attempt: Some(n),
                actor: Actor::Agent,
                kind: EventKind::Permission,
                data: EventData {
                    tool: Some(
                        call.as_ref()
                            .map_or("(on screen)".into(), |(t, _)| t.clone()),
                    ),
                    subject: Some(call.map_or(excerpt, |(_, s)| s)),
                    source: Some("screen".into()),
                    ..EventData::default()
                },
            });
        }
        self.write(ops, then);
    }

    /// A trust dialog of the run's worktrees, once the human trusted them for the run, is
    /// answered by typing (once per attempt).
    pub(super) fn waiting_rules(&mut self) {
        if !self.trusted {
            return;
        }
        let due: Vec<AttemptId> = self
            .live
            .iter()
            .filter(|(id, l)| {
                l.stop.is_none()
                    && matches!(l.phase, Phase::Running { .. })
                    && !l.facts.trust_typed
                    && l.facts
                        .dialog
                        .as_deref()
                        .is_some_and(|r| r.contains("trust"))
                    && self
                        .model
                        .attempts
                        .get(id)
                        .is_some_and(|a| a.substatus == Substatus::WaitingDialog)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(keys) = self.keys_for(id, ScreenAnswer::Trust) else {
                continue;
            };
            let Some(l) = self.live.get_mut(&id) else {
                continue;
            };
            l.facts.trust_typed = true;
            let (task, n) = (l.task.clone(), l.n);
            self.out.push(Effect::Type { attempt: id, keys });
            self.write(
                vec![Op::Event {
                    task: Some(task.clone()),
                    attempt: Some(n),
                    actor: Actor::Supervisor,
                    kind: EventKind::Permission,
                    data: EventData {
                        decision: Some("trust".into()),
                        source: Some("screen".into()),
                        rule: Some("the run's worktrees are trusted for this run".into()),
                        ..EventData::default()
                    },
                }],
                Then::Say(format!(
                    "✓ {task} attempt {n}: folder trusted (for this run)"
                )),
            );
        }
    }

    /// A permission prompt on screen whose call a `[permissions]` rule covers: type the rule's
    /// answer (where the adapter's keys are known) and record it as the rule's decision, as a
    /// hook's request is answered. True when answered.
    fn rule_answers_screen(
        &mut self,
        id: AttemptId,
        tool: &str,
        subject: &str,
        seen_by: &str,
    ) -> bool {
        let p = &self.cfg.permissions;
        let Some((decision, rule)) =
            crate::core::permissions::decide(&p.allow, &p.deny, &[], tool, subject)
        else {
            return false;
        };
        let Some(keys) = self.keys_for(id, ScreenAnswer::Permission(decision)) else {
            return false;
        };
        let Some(l) = self.live.get(&id) else {
            return false;
        };
        let (task, n) = (l.task.clone(), l.n);
        if let Some(l) = self.live.get_mut(&id) {
            l.facts.rule_answer = Some(RuleAnswer {
                decision,
                rule: rule.clone(),
                tries: 1,
            });
        }
        self.out.push(Effect::Type { attempt: id, keys });
        let mut ops = vec![Op::Event {
            task: Some(task.clone()),
            attempt: Some(n),
            actor: Actor::Supervisor,
            kind: EventKind::Permission,
            data: EventData {
                decision: Some(decision.as_str().into()),
                tool: Some(tool.into()),
                subject: Some(subject.into()),
                source: Some("screen".into()),
                rule: Some(rule.clone()),
                excerpt: Some(format!("screen:{seen_by}")),
                ..EventData::default()
            },
        }];
        // A notification may have recorded the wait already (Codex's OSC 9 comes before its
        // screen names the command): answered, the agent goes on. Left waiting, a refused
        // prompt would stay in the inbox, since the idle prompt that follows ends no wait.
        if self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.substatus == Substatus::WaitingPermission)
        {
            ops.push(Op::AgentState {
                id,
                substatus: Substatus::Busy,
                question: None,
                keep_question: false,
                actor: Actor::Supervisor,
                data: EventData {
                    rule: Some(format!("permissions:{rule}")),
                    excerpt: Some(format!("{tool}: {subject}")),
                    ..EventData::default()
                },
            });
        }
        self.write(
            ops,
            Then::Say(format!(
                "✓ {task} attempt {n}: {decision} {tool} {subject} (rule `{rule}`)"
            )),
        );
        true
    }

    /// The prompt a rule answered is still on screen: type its key again, once; then ask the
    /// human, with the screen, as if no rule had covered it.
    fn rule_answer_stayed(&mut self, id: AttemptId, seen: &ScreenMatch) {
        let Some(l) = self.live.get(&id) else { return };
        let Some(ra) = l.facts.rule_answer.clone() else {
            return;
        };
        let (task, n) = (l.task.clone(), l.n);
        let Some((tool, subject)) = seen.call.clone() else {
            return;
        };
        let excerpt = crate::core::agent_event::short_text(&seen.excerpt, 300);
        if ra.tries < RULE_TRIES {
            let Some(keys) = self.keys_for(id, ScreenAnswer::Permission(ra.decision)) else {
                return;
            };
            if let Some(l) = self.live.get_mut(&id)
                && let Some(r) = l.facts.rule_answer.as_mut()
            {
                r.tries += 1;
            }
            self.out.push(Effect::Type { attempt: id, keys });
            self.write(
                vec![Op::Event {
                    task: Some(task.clone()),
                    attempt: Some(n),
                    actor: Actor::Supervisor,
                    kind: EventKind::Permission,
                    data: EventData {
                        tool: Some(tool),
                        subject: Some(subject),
                        source: Some("screen".into()),
                        rule: Some(ra.rule.clone()),
                        excerpt: Some(format!(
                            "the prompt stayed after the rule's key: typed again ({excerpt})"
                        )),
                        ..EventData::default()
                    },
                }],
                Then::Nothing,
            );
            return;
        }
        if let Some(l) = self.live.get_mut(&id) {
            l.facts.rule_answer = None;
        }
        let question = format!(
            "{tool}: {subject} — rule `{}` was typed {} times and the prompt stayed: {excerpt}",
            ra.rule, ra.tries
        );
        self.write(
            vec![
                Op::AgentState {
                    id,
                    substatus: Substatus::WaitingPermission,
                    question: Some(question.clone()),
                    keep_question: false,
                    actor: Actor::Supervisor,
                    data: EventData {
                        rule: Some(format!("{}:{}", seen.layer.as_str(), seen.rule)),
                        excerpt: Some(excerpt),
                        ..EventData::default()
                    },
                },
                Op::Event {
                    task: Some(task.clone()),
                    attempt: Some(n),
                    actor: Actor::Agent,
                    kind: EventKind::Permission,
                    data: EventData {
                        tool: Some(tool),
                        subject: Some(subject),
                        source: Some("screen".into()),
                        ..EventData::default()
                    },
                },
            ],
            Then::Say(format!("? {task} attempt {n} asks permission: {question}")),
        );
    }

    /// The human answered a permission prompt on this agent's screen: type the answer.
    pub(super) fn type_answer(&mut self, id: AttemptId, seq: i64, decision: &str) {
        let Some(d) = Decision::parse(decision) else {
            return;
        };
        let Some(l) = self.live.get(&id) else { return };
        if l.stop.is_some() || l.facts.typed.contains(&seq) {
            return;
        }
        let keys = self.keys_for(id, ScreenAnswer::Permission(d));
        if let Some(l) = self.live.get_mut(&id) {
            l.facts.typed.insert(seq);
        }
        if let Some(keys) = keys {
            self.out.push(Effect::Type { attempt: id, keys });
        }
    }

    fn keys_for(&self, id: AttemptId, answer: ScreenAnswer) -> Option<Vec<Vec<u8>>> {
        let l = self.live.get(&id)?;
        let adapter = self.cfg.agents.get(&l.profile)?.adapter;
        answer_keys(adapter, answer)
    }
}

/// A path on screen inside the attempt's worktree, as the `[permissions]` rules write paths:
/// relative to it (`src/a.rs`, not `/…/.orch/worktrees/t-1/src/a.rs`). Commands stay as shown.
fn relative_to(subject: &str, worktree: &str) -> String {
    let wt = worktree.trim_end_matches('/');
    if wt.is_empty() {
        return subject.to_string();
    }
    if let Some(rest) = subject.strip_prefix(wt).and_then(|r| r.strip_prefix('/')) {
        return rest.to_string();
    }
    match subject.find(&format!("/{wt}/")) {
        Some(at) => subject[at + wt.len() + 2..].to_string(),
        None => subject.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_typed_only_where_the_keys_are_known() {
        let claude = answer_keys(Adapter::Claude, ScreenAnswer::Trust).unwrap();
        assert_eq!(claude, vec![b"\x1b[B".to_vec(), b"\r".to_vec()]);
        assert_eq!(
            answer_keys(Adapter::Codex, ScreenAnswer::Permission(Decision::Always)),
            Some(vec![b"a".to_vec()])
        );
        // Claude's permission prompts are answered through its hook, not typed.
        assert_eq!(
            answer_keys(Adapter::Claude, ScreenAnswer::Permission(Decision::Allow)),
            None
        );
        assert_eq!(answer_keys(Adapter::Generic, ScreenAnswer::Trust), None);
    }

    #[test]
    fn paths_on_screen_are_taken_relative_to_the_worktree() {
        assert_eq!(
            relative_to("/r/.orch/worktrees/t-1/src/a.rs", "/r/.orch/worktrees/t-1"),
            "src/a.rs"
        );
        assert_eq!(
            relative_to("/r/.orch/worktrees/t-1/src/a.rs", ".orch/worktrees/t-1/"),
            "src/a.rs"
        );
        assert_eq!(relative_to("cargo test -q", "/r/wt"), "cargo test -q");
        assert_eq!(relative_to("/elsewhere/a.rs", "/r/wt"), "/elsewhere/a.rs");
    }

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
