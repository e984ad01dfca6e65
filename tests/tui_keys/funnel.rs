//! Approve, reject (with a note; the veto in a veto window), approve all, and the diff view.

use super::*;

/// The app with two approvals first in the inbox: `r1` (stage human), `r2` (veto window).
fn funnel_app() -> App {
    let mut a = app();
    for (id, stage) in [("r1", FunnelStage::Human), ("r2", FunnelStage::Veto)] {
        a.state.tasks.push(TaskInfo {
            id: id.into(),
            title: id.into(),
            state: TaskState::Review,
            deps: vec![],
            agent: None,
            reason: None,
            stage: Some(stage),
            stage_until_ms: None,
        });
    }
    let approval = |stage: &str| {
        InboxKind::Approval(Box::new(Approval {
            stage: FunnelStage::parse(stage).unwrap(),
            until_ms: None,
            n: AttemptNo(1),
            base: None,
            commit: None,
            diff_lines: None,
            checks: vec![],
            verdict: None,
            verdict_notes: None,
        }))
    };
    a.state.inbox.splice(
        0..0,
        [
            InboxItem {
                task: Some("r1".into()),
                kind: approval("human"),
                text: String::new(),
                attempt: None,
            },
            InboxItem {
                task: Some("r2".into()),
                kind: approval("veto"),
                text: String::new(),
                attempt: None,
            },
        ],
    );
    a
}

#[test]
fn funnel_keys_do_what_they_say() {
    let enter = || key(KeyCode::Enter, KeyModifiers::NONE);
    let esc = || key(KeyCode::Esc, KeyModifiers::NONE);
    let human = |cmd, task: &str, note: Option<&str>| Effect::Human {
        cmd,
        task: task.into(),
        note: note.map(String::from),
    };
    type Case = (&'static str, Vec<KeyEvent>, View, Vec<Effect>);
    let cases: Vec<Case> = vec![
        (
            "approve the item",
            vec![ch('i'), ch('a')],
            View::Inbox,
            vec![human(HumanCommand::Approve, "r1", None)],
        ),
        (
            "reject with a note, asked and confirmed",
            vec![ch('i'), ch('x'), ch('n'), ch('o'), enter(), ch('y')],
            View::Inbox,
            vec![human(HumanCommand::Reject, "r1", Some("no"))],
        ),
        (
            "reject with a note, asked and declined",
            vec![ch('i'), ch('x'), ch('n'), ch('o'), enter(), ch('n')],
            View::Inbox,
            vec![],
        ),
        (
            "veto in its window: the countdown stops at x, then the veto",
            vec![
                ch('i'),
                ch('j'),
                ch('x'),
                ch('n'),
                ch('o'),
                enter(),
                ch('y'),
            ],
            View::Inbox,
            vec![
                human(HumanCommand::Hold, "r2", None),
                human(HumanCommand::Reject, "r2", Some("no")),
            ],
        ),
        (
            "veto typed then dropped: the task stays held",
            vec![ch('i'), ch('j'), ch('x'), ch('n'), esc()],
            View::Inbox,
            vec![human(HumanCommand::Hold, "r2", None)],
        ),
        (
            "reject cancelled",
            vec![ch('i'), ch('x'), ch('n'), esc()],
            View::Inbox,
            vec![],
        ),
        (
            "approve all, from anywhere, asked",
            vec![ch('A'), ch('y')],
            View::Dashboard,
            vec![Effect::ApproveAll {
                tasks: vec!["r1".into(), "r2".into()],
            }],
        ),
        (
            "approve all declined",
            vec![ch('A'), esc()],
            View::Dashboard,
            vec![],
        ),
        (
            "diff of the inbox item",
            vec![ch('i'), ch('d')],
            View::Diff,
            vec![Effect::LoadDiff { task: "r1".into() }],
        ),
        (
            "diff of the selected task",
            vec![ch('j'), ch('j'), ch('d')],
            View::Diff,
            vec![Effect::LoadDiff { task: "c".into() }],
        ),
        (
            "esc leaves the diff to where it came from",
            vec![ch('i'), ch('d'), esc()],
            View::Inbox,
            vec![Effect::LoadDiff { task: "r1".into() }],
        ),
        (
            "detail moved to t",
            vec![ch('i'), ch('t')],
            View::Detail,
            vec![Effect::LoadDetail { task: "r1".into() }],
        ),
    ];
    for (name, keys, view, effects) in cases {
        let mut a = funnel_app();
        let got = press(&mut a, &keys);
        assert_eq!(got, effects, "{name}: effects");
        assert_eq!(a.state.view, view, "{name}: view");
        assert!(a.state.input.is_none(), "{name}: prompt left open");
        assert!(a.state.confirm.is_none(), "{name}: question left open");
    }
}

#[test]
fn a_reject_without_a_note_is_not_sent_and_the_prompt_says_why() {
    let mut a = funnel_app();
    let fx = press(
        &mut a,
        &[ch('i'), ch('x'), key(KeyCode::Enter, KeyModifiers::NONE)],
    );
    assert_eq!(fx, vec![]);
    assert!(a.state.input.is_some(), "the prompt stays open");
    assert!(
        a.state
            .message
            .as_deref()
            .is_some_and(|m| m.contains("needs a note")),
        "{:?}",
        a.state.message
    );
}

#[test]
fn questions_name_their_target() {
    let mut a = funnel_app();
    press(
        &mut a,
        &[
            ch('i'),
            ch('x'),
            ch('n'),
            ch('o'),
            key(KeyCode::Enter, KeyModifiers::NONE),
        ],
    );
    let c = a.state.confirm.clone().expect("a question");
    assert!(c.title.contains("`r1`"), "{}", c.title);
    assert!(c.lines.iter().any(|l| l.contains("no")), "{:?}", c.lines);
    let mut a = funnel_app();
    press(&mut a, &[ch('A')]);
    let c = a.state.confirm.clone().expect("a question");
    assert!(c.title.contains("2"), "{}", c.title);
    assert!(c.lines[0].contains("`r1`, `r2`"), "{:?}", c.lines);
}

#[test]
fn approve_all_without_approvals_says_so() {
    let mut a = app();
    assert_eq!(press(&mut a, &[ch('A')]), vec![]);
    assert!(
        a.state
            .message
            .as_deref()
            .is_some_and(|m| m.contains("no approval"))
    );
}

#[test]
fn diff_view_scrolls_within_its_lines() {
    let mut a = funnel_app();
    press(&mut a, &[ch('i'), ch('d')]);
    a.state.diff = Some(DiffState {
        task: "r1".into(),
        range: String::new(),
        lines: (0..50).map(|i| format!("+line {i}")).collect(),
        scroll: 0,
    });
    press(&mut a, &[ch('j'), ch('j')]);
    assert_eq!(a.state.diff.as_ref().map(|d| d.scroll), Some(2));
    press(&mut a, &[key(KeyCode::PageDown, KeyModifiers::NONE)]);
    assert_eq!(a.state.diff.as_ref().map(|d| d.scroll), Some(28));
    press(&mut a, &[ch('G')]);
    assert_eq!(a.state.diff.as_ref().map(|d| d.scroll), Some(49));
    press(&mut a, &[key(KeyCode::Home, KeyModifiers::NONE)]);
    assert_eq!(a.state.diff.as_ref().map(|d| d.scroll), Some(0));
    // The prompt label for a reject names the task.
    press(&mut a, &[ch('x')]);
    assert_eq!(
        a.state.input.as_ref().map(|i| i.purpose.clone()),
        Some(InputPurpose::RejectNote { task: "r1".into() })
    );
}
