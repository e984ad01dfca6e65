//! The everyday keys: the new-task form, the prompt editor, lists that keep the selected item
//! across refreshes, questions that name what they act on, `n` by view.

use super::*;
use orch_tui::tui::data::{Refreshed, apply};
use orch_tui::tui::form::{Field, FormKind};

fn enter() -> KeyEvent {
    key(KeyCode::Enter, KeyModifiers::NONE)
}

fn esc() -> KeyEvent {
    key(KeyCode::Esc, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    key(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn typed(text: &str) -> Vec<KeyEvent> {
    text.chars().map(ch).collect()
}

fn task(id: &str, state: TaskState, deps: &[&str]) -> TaskInfo {
    TaskInfo {
        id: id.into(),
        title: format!("{id} title"),
        state,
        deps: deps.iter().map(|d| d.to_string()).collect(),
        agent: None,
        reason: None,
        stage: None,
        stage_until_ms: None,
    }
}

fn refreshed(tasks: Vec<TaskInfo>, inbox: Vec<InboxItem>) -> Refreshed {
    Refreshed {
        plan: "p".into(),
        dag: Default::default(),
        done: 0,
        total: tasks.len(),
        tasks,
        inbox,
        agents: vec![],
        spend: Default::default(),
        alerts: vec![],
        took: Duration::ZERO,
    }
}

fn failed(task: &str) -> InboxItem {
    InboxItem {
        task: Some(task.into()),
        kind: InboxKind::Failed {
            failures: 3,
            max_attempts: 3,
        },
        text: format!("{task} failed"),
        attempt: None,
    }
}

#[test]
fn the_inbox_keeps_the_selected_item_when_items_arrive_above_it() {
    let mut a = app();
    apply(
        &mut a.state,
        refreshed(vec![], vec![failed("x"), failed("y"), failed("z")]),
    );
    press(&mut a, &[ch('i'), ch('j')]);
    assert_eq!(
        a.state.inbox[a.state.selected_inbox].task.as_deref(),
        Some("y")
    );
    // Two items arrive above it (more urgent): the highlight stays on `y`.
    apply(
        &mut a.state,
        refreshed(
            vec![],
            vec![
                failed("new1"),
                failed("new2"),
                failed("x"),
                failed("y"),
                failed("z"),
            ],
        ),
    );
    assert_eq!(
        a.state.inbox[a.state.selected_inbox].task.as_deref(),
        Some("y")
    );
    // `r` acts on the item picked, not on what now sits at its old row.
    let fx = press(&mut a, &[ch('r'), enter()]);
    assert_eq!(
        fx,
        vec![Effect::Human {
            cmd: HumanCommand::Retry,
            task: "y".into(),
            note: None,
        }]
    );
    // The item leaves: the selection keeps its row (the next item), never past the end.
    apply(
        &mut a.state,
        refreshed(vec![], vec![failed("x"), failed("z")]),
    );
    assert_eq!(a.state.selected_inbox, 1);
}

#[test]
fn the_task_list_keeps_the_selected_task_when_tasks_are_added_above_it() {
    let mut a = app();
    press(&mut a, &[ch('j'), ch('j')]);
    assert_eq!(a.state.selected_task().map(|t| t.id.as_str()), Some("c"));
    let tasks = vec![
        task("0-first", TaskState::Ready, &[]),
        task("a", TaskState::Done, &[]),
        task("b", TaskState::Working, &[]),
        task("c", TaskState::Failed, &[]),
    ];
    apply(&mut a.state, refreshed(tasks, vec![]));
    assert_eq!(a.state.selected_task().map(|t| t.id.as_str()), Some("c"));
}

#[test]
fn cancel_names_every_task_it_would_block() {
    let mut a = app();
    a.state.tasks.push(task("d", TaskState::Pending, &["c"]));
    a.state.tasks.push(task("e", TaskState::Pending, &["d"]));
    a.state.tasks.push(task("f", TaskState::Pending, &["a"]));
    press(&mut a, &[ch('j'), ch('j'), ch('c')]);
    let c = a.state.confirm.clone().expect("cancel asks");
    assert!(c.title.contains("`c`"), "{}", c.title);
    let all = c.lines.join("\n");
    assert!(all.contains("blocks 2"), "{all}");
    assert!(all.contains("`d`, `e`"), "{all}");
    assert!(!all.contains("`f`"), "{all}");
}

#[test]
fn n_is_a_new_task_except_in_the_logs_where_it_is_the_next_match() {
    let mut a = app();
    press(&mut a, &[ch('n')]);
    assert!(a.state.form.is_some(), "n opens the form on the dashboard");
    let mut a = app();
    press(&mut a, &[ch('l'), ch('/'), ch('1'), enter()]);
    let at = a.state.logs.scroll;
    press(&mut a, &[ch('n')]);
    assert!(a.state.form.is_none(), "n in the logs is the search");
    assert!(a.state.logs.scroll > at, "n moved to an earlier match");
    press(&mut a, &[ch('N')]);
    assert_eq!(a.state.logs.scroll, at, "N came back");
}

#[test]
fn the_new_task_form_sends_what_orch_tui_add_would_get() {
    let mut a = app();
    a.state.tasks.push(task("d", TaskState::Pending, &[]));
    let mut keys = vec![ch('n')];
    keys.extend(typed("Add a flag"));
    keys.push(key(KeyCode::Tab, KeyModifiers::NONE));
    keys.extend(typed("line one"));
    keys.push(enter());
    keys.extend(typed("line two"));
    keys.push(key(KeyCode::Tab, KeyModifiers::NONE));
    // Dependencies: pick `a` and `c` (rows 0 and 2), in any order.
    keys.extend([
        key(KeyCode::Down, KeyModifiers::NONE),
        key(KeyCode::Down, KeyModifiers::NONE),
        ch(' '),
        key(KeyCode::Up, KeyModifiers::NONE),
        key(KeyCode::Up, KeyModifiers::NONE),
        ch(' '),
        key(KeyCode::Tab, KeyModifiers::NONE),
    ]);
    keys.extend(typed("sim"));
    keys.push(key(KeyCode::Tab, KeyModifiers::NONE));
    keys.extend(typed("time=5m"));
    let fx = press(&mut a, &keys);
    assert_eq!(fx, vec![]);
    let fx = press(&mut a, &[ctrl('s')]);
    let want = orch_tui::core::new_task::Draft {
        prompt: "line one\nline two".into(),
        title: Some("Add a flag".into()),
        after: vec!["a".into(), "c".into()],
        agent: Some("sim".into()),
        budget: Some("time=5m".into()),
        ..Default::default()
    };
    assert_eq!(fx, vec![Effect::AddTask { draft: want }]);
    assert!(a.state.form.as_ref().is_some_and(|f| f.sending));
    // A refusal comes back into the form, with everything typed still there.
    a.on_form_answer(Err(vec!["agent: names no agent `sim`".into()]));
    let f = a.state.form.clone().expect("the form stays open");
    assert!(!f.sending);
    assert_eq!(f.errors, vec!["agent: names no agent `sim`".to_string()]);
    assert_eq!(f.title, "Add a flag");
    // Accepted: the form closes and the line says what was added.
    let fx = a.on_form_answer(Ok("added `add-a-flag` (ready)".into()));
    assert_eq!(fx, vec![Effect::Refresh]);
    assert!(a.state.form.is_none());
    assert_eq!(
        a.state.message.as_deref(),
        Some("added `add-a-flag` (ready)")
    );
}

#[test]
fn the_form_refuses_an_empty_prompt_and_asks_before_dropping_what_was_typed() {
    let mut a = app();
    let mut keys = vec![ch('n')];
    keys.extend(typed("title only"));
    keys.push(ctrl('s'));
    assert_eq!(press(&mut a, &keys), vec![]);
    let f = a.state.form.clone().expect("still open");
    assert_eq!(f.field, Field::Prompt, "the cursor goes to the prompt");
    assert!(f.errors[0].contains("prompt is empty"), "{:?}", f.errors);
    // Esc asks; n keeps the form as it was.
    press(&mut a, &[esc()]);
    assert!(a.state.confirm.is_some());
    press(&mut a, &[ch('n')]);
    assert_eq!(
        a.state.form.as_ref().map(|f| f.title.as_str()),
        Some("title only")
    );
    // Esc, y: gone.
    press(&mut a, &[esc(), ch('y')]);
    assert!(a.state.form.is_none());
    // An untouched form closes at once.
    press(&mut a, &[ch('n'), esc()]);
    assert!(a.state.form.is_none() && a.state.confirm.is_none());
}

#[test]
fn ctrl_e_hands_the_prompt_to_the_editor_and_takes_its_text_back() {
    let mut a = app();
    let mut keys = vec![ch('n'), key(KeyCode::Tab, KeyModifiers::NONE)];
    keys.extend(typed("draft"));
    press(&mut a, &keys);
    let fx = press(&mut a, &[ctrl('e')]);
    assert_eq!(
        fx,
        vec![Effect::EditText {
            text: "draft".into()
        }]
    );
    a.on_editor_text(Ok("written in vim\nsecond line\n".into()));
    assert_eq!(
        a.state.form.as_ref().map(|f| f.prompt.as_str()),
        Some("written in vim\nsecond line")
    );
    // A paste keeps its lines in the prompt, not in one-line fields.
    a.on_paste("\nthird\r\nfourth", Modes::default());
    assert_eq!(
        a.state.form.as_ref().map(|f| f.prompt.as_str()),
        Some("written in vim\nsecond line\nthird\nfourth")
    );
}

#[test]
fn e_edits_a_prompt_where_the_next_attempt_has_not_started() {
    let mut a = app();
    // `b` is working: refused with the reason `orch-tui edit` gives.
    let fx = press(&mut a, &[ch('j'), ch('e')]);
    assert_eq!(fx, vec![]);
    assert!(
        a.state
            .message
            .as_deref()
            .is_some_and(|m| m.contains("pause") && m.contains("`b`")),
        "{:?}",
        a.state.message
    );
    // `c` failed: its prompt is read, then the form opens on it.
    let fx = press(&mut a, &[ch('j'), ch('e')]);
    assert_eq!(fx, vec![Effect::LoadPrompt { task: "c".into() }]);
    a.on_prompt_loaded("c".into(), Ok("old prompt".into()));
    let f = a.state.form.clone().expect("the edit form");
    assert!(matches!(f.kind, FormKind::Edit { ref task, .. } if task == "c"));
    // Untouched: esc closes without asking. Changed: ctrl-s sends the new prompt.
    let mut keys = typed(" and more");
    keys.push(ctrl('s'));
    let fx = press(&mut a, &keys);
    assert_eq!(
        fx,
        vec![Effect::EditPrompt {
            task: "c".into(),
            prompt: "old prompt and more".into()
        }]
    );
}

/// What a person sees change after a key: the view, selections, prompts, questions, the
/// form, the status line, scroll positions, follow.
fn seen(a: &App) -> String {
    let s = &a.state;
    format!(
        "{:?} {} {} {} {} {:?} {:?} {} {:?} {} {} {} {} {} {:?}",
        s.view,
        s.selected_task,
        s.selected_agent,
        s.selected_inbox,
        s.quit_prompt,
        s.input,
        s.confirm,
        s.form.is_some(),
        s.message,
        s.logs.scroll,
        s.logs.follow,
        s.page_scroll,
        s.detail_raw,
        s.focus.map_or(0, |f| f.0),
        s.logs.search,
    )
}

#[test]
fn every_key_in_the_help_does_something_where_it_applies() {
    let (km, _) = Keymap::new(&BTreeMap::new());
    for action in Action::ALL {
        let mut a = app();
        // Where the action means something (most anywhere; some in one view).
        let setup: Vec<KeyEvent> = match action {
            Action::Search | Action::Follow | Action::Filter => vec![ch('l')],
            Action::SearchNext | Action::SearchPrev => {
                vec![ch('l'), ch('/'), ch('1'), enter(), ch('n'), ch('n')]
            }
            Action::Unfocus => vec![ch('F')],
            Action::Back => vec![ch('?')],
            Action::Up | Action::Top | Action::PageUp => vec![ch('j'), ch('j')],
            Action::Raw => vec![ch('t')],
            Action::Dashboard => vec![ch('g')],
            Action::NextPane => {
                a.state.agents.push(agent(8, "c"));
                vec![]
            }
            _ => vec![],
        };
        press(&mut a, &setup);
        if action == Action::Raw {
            a.state.detail = None;
        }
        let before = seen(&a);
        let keys = km.keys(action);
        let k = orch_tui::tui::keymap::parse_key(&keys[0]).expect("a key");
        let fx = press(&mut a, &[key(k.0, k.1)]);
        assert!(
            !fx.is_empty() || seen(&a) != before,
            "{} ({}) did nothing",
            action.name(),
            keys[0]
        );
    }
}
