//! One key answers a permission request selected in the inbox: `y` allow once, `Y` allow
//! always (this run), `d` deny with a note; elsewhere the same keys keep their meaning.

use super::*;
use orch_tui::core::permissions::Decision;

fn permission_app() -> App {
    let mut a = app();
    a.state.inbox.insert(
        0,
        InboxItem {
            task: Some("b".into()),
            attempt: Some(AttemptId(7)),
            text: "Bash: cargo test — Run shell command?".into(),
            kind: InboxKind::Permission {
                tool: "Bash".into(),
            },
        },
    );
    a.state.view = View::Inbox;
    a.state.selected_inbox = 0;
    a
}

fn answer(task: &str, decision: Decision, note: Option<&str>) -> Vec<Effect> {
    vec![Effect::Answer {
        task: task.into(),
        decision,
        note: note.map(String::from),
    }]
}

#[test]
fn y_and_shift_y_allow_once_or_for_the_run() {
    let mut a = permission_app();
    assert_eq!(
        a.on_key(&ch('y'), Modes::default()),
        answer("b", Decision::Allow, None)
    );
    assert_eq!(
        a.on_key(
            &key(KeyCode::Char('Y'), KeyModifiers::SHIFT),
            Modes::default()
        ),
        answer("b", Decision::Always, None)
    );
}

#[test]
fn d_asks_for_the_note_a_deny_passes_and_esc_sends_nothing() {
    let mut a = permission_app();
    assert_eq!(a.on_key(&ch('d'), Modes::default()), vec![]);
    assert!(
        matches!(&a.state.input, Some(i) if i.purpose == InputPurpose::DenyNote { task: "b".into() }),
        "d opens the deny note, not the diff"
    );
    for c in "use the vendored copy".chars() {
        a.on_key(&ch(c), Modes::default());
    }
    assert_eq!(
        a.on_key(&key(KeyCode::Enter, KeyModifiers::NONE), Modes::default()),
        answer("b", Decision::Deny, Some("use the vendored copy"))
    );
    assert!(a.state.input.is_none());

    a.on_key(&ch('d'), Modes::default());
    assert_eq!(
        a.on_key(&key(KeyCode::Esc, KeyModifiers::NONE), Modes::default()),
        vec![]
    );
    assert!(a.state.input.is_none());
    assert!(
        a.state
            .message
            .as_deref()
            .unwrap_or("")
            .contains("still waits")
    );
}

#[test]
fn the_keys_answer_only_a_selected_permission_request() {
    let mut a = permission_app();
    // The failed task's item is selected: `d` is the diff again, `y` nothing.
    a.state.selected_inbox = 1;
    assert_eq!(a.on_key(&ch('y'), Modes::default()), vec![]);
    let fx = a.on_key(&ch('d'), Modes::default());
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Answer { .. })),
        "{fx:?}"
    );
    assert!(a.state.input.is_none());
    // On the dashboard `y` answers nothing either.
    let mut a = permission_app();
    a.state.view = View::Dashboard;
    assert!(a.on_key(&ch('y'), Modes::default()).is_empty());
}
