use super::*;
use crate::core::domain::Substatus;

fn fact(seq: i64, attempt: Option<u32>, actor: Actor, kind: EventKind, data: EventData) -> Fact {
    Fact {
        seq,
        ts_ms: 3_600_000 + seq * 1000,
        attempt: attempt.map(AttemptNo),
        actor,
        kind,
        data,
    }
}

fn story() -> Vec<Fact> {
    vec![
        fact(
            1,
            Some(1),
            Actor::Supervisor,
            EventKind::AttemptStarted,
            EventData {
                profile: Some("claude".into()),
                ..EventData::default()
            },
        ),
        fact(
            2,
            Some(1),
            Actor::Supervisor,
            EventKind::AgentState,
            EventData {
                substatus: Some(Substatus::WaitingDialog),
                rule: Some("screen:claude-trust-dialog".into()),
                excerpt: Some("Do you trust the files in this folder?".into()),
                ..EventData::default()
            },
        ),
        fact(
            3,
            Some(1),
            Actor::Agent,
            EventKind::Heartbeat,
            EventData::default(),
        ),
        fact(
            4,
            Some(1),
            Actor::Agent,
            EventKind::Permission,
            EventData {
                tool: Some("Bash".into()),
                subject: Some("rm -rf build".into()),
                source: Some("screen".into()),
                ..EventData::default()
            },
        ),
        fact(
            5,
            Some(1),
            Actor::Supervisor,
            EventKind::Permission,
            EventData {
                tool: Some("Bash".into()),
                subject: Some("rm -rf build".into()),
                decision: Some("deny".into()),
                rule: Some("deny Bash(rm *)".into()),
                request: Some(4),
                ..EventData::default()
            },
        ),
        fact(
            6,
            Some(2),
            Actor::Supervisor,
            EventKind::AgentState,
            EventData {
                substatus: Some(Substatus::Idle),
                rule: Some("title:claude-title-idle".into()),
                excerpt: Some("✳ Claude Code".into()),
                ..EventData::default()
            },
        ),
        fact(
            7,
            None,
            Actor::Supervisor,
            EventKind::BudgetExhausted,
            EventData {
                budget: Some("cost".into()),
                spent: Some(0.02),
                limit: Some(0.01),
                ..EventData::default()
            },
        ),
    ]
}

#[test]
fn each_state_change_names_its_layer_rule_and_what_showed_it() {
    let e = explain(
        "api",
        TaskState::Escalated,
        None,
        Some("budget exhausted"),
        &story(),
        None,
    );
    let text = render(&e).join("\n");
    assert!(
        text.starts_with("task api: escalated\n  why: budget exhausted"),
        "{text}"
    );
    assert!(
        text.contains(
            "01:00:02  waiting (first-run dialog) — screen rule `claude-trust-dialog`: \
             “Do you trust the files in this folder?”"
        ),
        "{text}"
    );
    assert!(
        text.contains("asks permission: Bash rm -rf build (on its screen)"),
        "{text}"
    );
    assert!(
        text.contains("deny Bash rm -rf build, by rule `deny Bash(rm *)`"),
        "{text}"
    );
    assert!(
        text.contains("idle at its prompt (turn over) — title rule"),
        "{text}"
    );
    assert!(
        text.contains("budget exhausted: cost 0.0200 of 0.0100"),
        "{text}"
    );
    assert!(
        !text.contains("heartbeat"),
        "bookkeeping is left out: {text}"
    );
    let attempt1 = text.find("attempt 1:").unwrap();
    let attempt2 = text.find("attempt 2:").unwrap();
    assert!(attempt1 < attempt2);
}

#[test]
fn one_attempt_keeps_only_its_lines() {
    let e = explain(
        "api",
        TaskState::Working,
        None,
        None,
        &story(),
        Some(AttemptNo(2)),
    );
    assert!(e.task_lines.is_empty());
    assert_eq!(e.attempts.len(), 1);
    assert_eq!(e.attempts[0].n, 2);
    assert_eq!(e.attempts[0].lines[0].layer.as_deref(), Some("title"));
    assert_eq!(
        e.attempts[0].lines[0].rule.as_deref(),
        Some("claude-title-idle")
    );
}

#[test]
fn a_task_without_events_says_so() {
    let e = explain("new", TaskState::Ready, None, None, &[], None);
    assert_eq!(
        render(&e),
        vec!["task new: ready", "  nothing has happened to it yet"]
    );
}
