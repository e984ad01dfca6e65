//! A headless Claude or Codex run is ended at a pause, not frozen (its HTTP stream to the API
//! would time out while stopped), and `resume` continues its conversation in a new attempt in
//! the same worktree (`--resume`), as after a limit.

use super::*;
use crate::core::agent_event::{AgentEvent, Tokens};

const HEADLESS: &str = r#"
default_agent = "claude"
[agents.claude]
command = ["claude", "-p", "{prompt}", "--output-format", "stream-json"]
adapter = "claude"
"#;

impl Driver {
    fn exits(&mut self, attempt: AttemptId, signal: i32) {
        self.queue.push_back(Event::Exited {
            attempt,
            exit: Exit {
                code: None,
                signal: Some(signal),
            },
        });
        self.run();
    }

    fn agent_says(&mut self, attempt: AttemptId, event: AgentEvent) {
        self.queue.push_back(Event::Agent { attempt, event });
        self.run();
    }

    fn said(&self, words: &str) -> bool {
        self.seen
            .iter()
            .any(|e| matches!(e, Effect::Say(l) if l.contains(words)))
    }

    fn setup_no(&self, n: u32) -> Option<Setup> {
        self.seen.iter().find_map(|e| match e {
            Effect::Setup(s) if s.n == AttemptNo(n) => Some(s.clone()),
            _ => None,
        })
    }
}

/// A headless session working on `a`, with its session id and some spend recorded.
fn session_at_work() -> (Driver, AttemptId) {
    let (mut d, id) = Driver::working(HEADLESS, task("a", TaskState::Ready));
    d.agent_says(
        id,
        AgentEvent::Session {
            id: "sess-1".into(),
        },
    );
    d.agent_says(
        id,
        AgentEvent::Usage {
            tokens: Tokens {
                input: 1_000,
                output: 100,
                ..Tokens::default()
            },
            cost_usd: Some(0.5),
        },
    );
    (d, id)
}

#[test]
fn a_paused_headless_session_is_ended_not_frozen_and_counts_no_failure() {
    let (mut d, id) = session_at_work();
    d.at(1_000);
    d.human_writes("a", TaskState::Paused, |_| {});
    assert_eq!(
        d.effects_on(id),
        ["stop"],
        "ended, never frozen: {:?}",
        d.seen
    );
    assert!(d.said("attempt 1 ended at a pause; `resume` continues its conversation"));
    d.at(1_500);
    d.exits(id, 15);
    let row = d.sup.model.attempts.get(&id).expect("row");
    assert_eq!(row.state, AttemptState::Abandoned, "not a failure: {row:?}");
    assert_eq!(row.held_ms, 500, "from the pause to its end: {row:?}");
    let t = d.sup.model.task("a").expect("task");
    assert_eq!(t.state, TaskState::Paused, "still the human's pause");
    assert_eq!(t.paused_from, Some(TaskState::Working));
    assert_eq!(t.failures, 0);
    assert_eq!(t.resume_attempt, Some(id), "its next attempt continues it");
    assert!(
        t.reason
            .as_deref()
            .is_some_and(|r| r.contains("ended at a pause")),
        "the paused task says why: {t:?}"
    );
    assert!(d.sup.live().is_empty(), "its slot is free");
    assert!(d.setups().len() == 1, "nothing starts while it is paused");
    assert!(
        !d.sup.is_settled(),
        "a headless run waits for the resume as it waits for a held agent"
    );
}

#[test]
fn resume_continues_the_ended_conversation_in_the_same_worktree() {
    let (mut d, id) = session_at_work();
    d.human_writes("a", TaskState::Paused, |_| {});
    d.exits(id, 15);
    d.at(60_000);
    d.human_writes("a", TaskState::Ready, |_| {});
    let s = d.setup_no(2).expect("attempt 2 is set up on resume");
    assert_eq!(
        s.resume.as_deref(),
        Some("sess-1"),
        "`--resume` of its session"
    );
    assert_eq!(s.worktree, "/w/a-1", "the same worktree");
    assert!(!s.create_worktree);
    let PromptSpec::Task(prompt) = &s.prompt else {
        panic!("an agent's prompt: {:?}", s.prompt)
    };
    assert!(prompt.contains("continue where you left off"), "{prompt}");
    // Its conversation's earlier spend is known, so a total that counts the whole
    // conversation is not counted twice.
    assert_eq!((s.baseline.tokens_in, s.baseline.tokens_out), (1_000, 100));
    let row = d.sup.model.attempts.get(&s.attempt).cloned().expect("row");
    assert_eq!(row.continues, Some(id));
    let t = d.sup.model.task("a").expect("task");
    assert_eq!(t.resume_attempt, None, "the mark is used once");
}

#[test]
fn a_session_ended_before_its_first_event_resumes_as_a_fresh_conversation_in_its_worktree() {
    let (mut d, id) = Driver::working(HEADLESS, task("a", TaskState::Ready));
    d.human_writes("a", TaskState::Paused, |_| {});
    d.exits(id, 15);
    d.human_writes("a", TaskState::Ready, |_| {});
    let s = d.setup_no(2).expect("attempt 2");
    assert_eq!(s.resume, None, "no session to resume");
    assert_eq!(s.worktree, "/w/a-1", "its work is in that worktree");
    assert!(d.said("attempt 1 had no session id yet: a fresh conversation"));
}

#[test]
fn a_resume_before_the_session_is_gone_waits_for_it_then_continues_it() {
    let (mut d, id) = session_at_work();
    d.human_writes("a", TaskState::Paused, |_| {});
    d.human_writes("a", TaskState::Ready, |_| {});
    assert_eq!(
        d.setups().len(),
        1,
        "one agent per task: the old one still ends"
    );
    d.exits(id, 15);
    let s = d.setup_no(2).expect("attempt 2 once the old one is gone");
    assert_eq!(s.resume.as_deref(), Some("sess-1"));
    assert_eq!(s.worktree, "/w/a-1");
    assert_eq!(d.sup.model.task("a").map(|t| t.failures), Some(0));
}

#[test]
fn a_prompt_edited_before_the_session_ended_starts_fresh() {
    let (mut d, id) = session_at_work();
    d.human_writes("a", TaskState::Paused, |t| t.prompt = "another way".into());
    d.exits(id, 15);
    d.human_writes("a", TaskState::Ready, |_| {});
    let s = d.setup_no(2).expect("attempt 2");
    assert_eq!(s.resume, None, "{s:?}");
    assert!(s.create_worktree, "a fresh attempt takes the new prompt");
}

#[test]
fn a_cancel_while_the_session_ends_leaves_nothing_to_continue() {
    let (mut d, id) = session_at_work();
    d.human_writes("a", TaskState::Paused, |_| {});
    d.human_writes("a", TaskState::Cancelled, |_| {});
    d.exits(id, 15);
    let t = d.sup.model.task("a").expect("task");
    assert_eq!(t.state, TaskState::Cancelled);
    assert_eq!(t.resume_attempt, None);
    assert!(d.sup.is_settled(), "{}", d.sup.activity());
}

#[test]
fn a_fleet_pause_holds_each_agent_its_own_way_and_says_which() {
    let config = r#"
slots = 3
default_agent = "sim"
[agents.claude]
command = ["claude", "-p", "{prompt}"]
interactive = ["claude", "{prompt}"]
mode = "interactive"
adapter = "claude"
[agents.codex]
command = ["codex", "exec", "--json", "{prompt}"]
adapter = "codex"
"#;
    let mut tasks = Vec::new();
    for (id, agent) in [("i", "claude"), ("h", "codex"), ("s", "sim")] {
        let mut t = task(id, TaskState::Ready);
        t.agent = Some(agent.into());
        tasks.push(t);
    }
    let mut d = Driver::new(config, tasks, Vec::new(), 0);
    d.run();
    let setups: Vec<Setup> = d
        .seen
        .iter()
        .filter_map(|e| match e {
            Effect::Setup(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(setups.len(), 3, "{:?}", d.seen);
    for (k, s) in setups.iter().enumerate() {
        d.queue.push_back(Event::SetupDone {
            attempt: s.attempt,
            result: Ok(Started {
                pid: 4242 + k as u32,
                base: TIP.into(),
            }),
        });
    }
    d.run();
    // `P`: one pause per task, as the TUI sends them.
    for id in ["i", "h", "s"] {
        d.human_writes(id, TaskState::Paused, |_| {});
    }
    let attempt = |task: &str| {
        setups
            .iter()
            .find(|s| s.task == task)
            .map(|s| s.attempt)
            .expect("attempt")
    };
    assert_eq!(d.effects_on(attempt("i")), ["interrupt"]);
    assert_eq!(d.effects_on(attempt("h")), ["stop"]);
    assert_eq!(d.effects_on(attempt("s")), ["freeze"]);
    assert!(d.said("i: attempt 1 its turn interrupted"));
    assert!(d.said("h: attempt 1 ended at a pause; `resume` continues its conversation"));
    assert!(d.said("s: attempt 1 frozen"));
}

/// An agent whose CLI cannot continue a conversation (the sim agent, aider, a plain command)
/// starts afresh on a continuing attempt: nothing is resumed, nothing of its earlier spend is
/// subtracted from what it reports.
#[test]
fn only_an_agent_that_can_resume_resumes_its_session() {
    const SIM: &str = "default_agent = \"s\"\n[agents.s]\ncommand = [\"x\"]\nadapter = \"sim\"\n";
    for (cfg, want) in [(HEADLESS, Some("sess-1")), (SIM, None)] {
        let (mut d, id) = Driver::working(cfg, task("a", TaskState::Ready));
        d.agent_says(
            id,
            AgentEvent::Session {
                id: "sess-1".into(),
            },
        );
        let mut next = d.sup.model.attempts.get(&id).cloned().expect("row");
        next.id = AttemptId(id.0 + 1);
        next.continues = Some(id);
        assert_eq!(d.sup.resume_session(&next).as_deref(), want, "{cfg}");
    }
}
