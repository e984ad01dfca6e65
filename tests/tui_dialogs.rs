//! Snapshots (80×24 and 160×48) of the views the everyday keys open: the y/n questions (cancel,
//! approve all, reject, a quit that stops agents), the new-task form (typing, picking
//! dependencies, refused), the prompt editor, and the veto prompt while the window is held.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use orch_tui::core::domain::*;
use orch_tui::core::state::TaskState;
use orch_tui::tui::app::App;
use orch_tui::tui::input::Modes;
use orch_tui::tui::keymap::Keymap;
use orch_tui::tui::render::render;
use orch_tui::tui::state::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn task(id: &str, state: TaskState, deps: &[&str]) -> TaskInfo {
    TaskInfo {
        id: id.into(),
        title: format!("Title of {id}"),
        state,
        deps: deps.iter().map(|d| d.to_string()).collect(),
        agent: None,
        reason: None,
        stage: None,
        stage_until_ms: None,
    }
}

fn app() -> App {
    let mut s = ViewState::new(true);
    s.plan = "everyday".into();
    s.loaded = true;
    s.elapsed = Duration::from_secs(95);
    s.tasks = vec![
        task("scaffold", TaskState::Done, &[]),
        task("parser", TaskState::Working, &["scaffold"]),
        task("cli-args", TaskState::Pending, &["parser"]),
        task("docs", TaskState::Pending, &["cli-args"]),
        task("release", TaskState::Failed, &[]),
    ];
    s.agents = vec![AgentInfo {
        attempt: AttemptId(3),
        task: "parser".into(),
        n: AttemptNo(1),
        profile: "sim".into(),
        substatus: Substatus::Busy,
        question: None,
        elapsed: Duration::from_secs(40),
        time_budget: None,
        started: Instant::now(),
        held_since: None,
        tokens: 0,
        cost_usd: 0.0,
        budget_tokens: None,
        budget_cost_usd: None,
        screen: None,
    }];
    let mut a = App::new(s, Keymap::new(&BTreeMap::new()).0);
    a.size = (80, 24);
    a.state.profiles = vec!["claude".into(), "codex".into(), "sim".into()];
    a.state.default_agent = "claude".into();
    a
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(a: &mut App, keys: &[KeyEvent]) {
    for k in keys {
        a.on_key(k, Modes::default());
    }
}

fn typed(a: &mut App, text: &str) {
    for c in text.chars() {
        a.on_key(&key(KeyCode::Char(c)), Modes::default());
    }
}

fn snap(name: &str, s: &ViewState) {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("backend");
        t.draw(|f| render(s, f)).expect("draw");
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

#[test]
fn cancel_question() {
    let mut a = app();
    press(&mut a, &[key(KeyCode::Down), key(KeyCode::Char('c'))]);
    snap("confirm_cancel", &a.state);
}

#[test]
fn stop_question() {
    let mut a = app();
    press(&mut a, &[key(KeyCode::Char('q')), key(KeyCode::Char('s'))]);
    snap("confirm_stop", &a.state);
}

#[test]
fn reject_question_and_the_held_veto_prompt() {
    let mut a = app();
    a.state.tasks[1].state = TaskState::Review;
    a.state.tasks[1].stage = Some(FunnelStage::Veto);
    a.state.agents.clear();
    press(&mut a, &[key(KeyCode::Down), key(KeyCode::Char('x'))]);
    typed(&mut a, "keep the old flag name");
    snap("veto_prompt", &a.state);
    press(&mut a, &[key(KeyCode::Enter)]);
    snap("confirm_reject", &a.state);
}

#[test]
fn new_task_form() {
    let mut a = app();
    press(&mut a, &[key(KeyCode::Char('n'))]);
    snap("form_empty", &a.state);
    typed(&mut a, "Add --verbose");
    press(&mut a, &[key(KeyCode::Tab)]);
    typed(&mut a, "Add a --verbose flag to the CLI.");
    press(&mut a, &[key(KeyCode::Enter)]);
    typed(&mut a, "Print each file as it is read.");
    press(
        &mut a,
        &[key(KeyCode::Tab), key(KeyCode::Down), key(KeyCode::Down)],
    );
    press(&mut a, &[key(KeyCode::Char(' '))]);
    snap("form_deps", &a.state);
    press(&mut a, &[key(KeyCode::Tab)]);
    typed(&mut a, "claud");
    a.on_form_answer(Err(vec![
        "agent: task `add-verbose` names no agent `claud` — did you mean `claude`?".into(),
    ]));
    snap("form_refused", &a.state);
}

#[test]
fn prompt_editor() {
    let mut a = app();
    a.on_prompt_loaded(
        "release".into(),
        Ok("Tag the release.\nWrite the changelog from the merged tasks.".into()),
    );
    snap("form_edit", &a.state);
}

fn with_screen(a: &mut App, bytes: &[u8]) {
    let mut p = orch_tui::agent::screen::new_parser(24, 80);
    p.process(bytes);
    a.state.agents[0].screen = Some(std::sync::Arc::new(std::sync::Mutex::new(p)));
}

#[test]
fn a_pane_narrower_than_its_agents_screen_wraps_its_lines() {
    let mut a = app();
    let long = "the agent wrote a line of eighty columns that a narrow pane used to cut off: END";
    with_screen(&mut a, format!("short line\r\n{long}\r\n$ ").as_bytes());
    let mut t = Terminal::new(TestBackend::new(80, 24)).expect("backend");
    t.draw(|f| render(&a.state, f)).expect("draw");
    let screen: String = format!("{}", t.backend());
    assert!(
        screen.contains("cut off: END"),
        "the line's end is shown:\n{screen}"
    );
    snap("pane_wrapped", &a.state);
}

#[test]
fn the_task_list_holds_its_width_while_agents_come_and_go() {
    let mut a = app();
    let width_of_list = |s: &ViewState| {
        let mut t = Terminal::new(TestBackend::new(120, 30)).expect("backend");
        t.draw(|f| render(s, f)).expect("draw");
        let buf = t.backend().buffer().clone();
        // The list's right border on the first body row.
        (1..120u16)
            .find(|&x| buf[(x, 1)].symbol() == "┐")
            .unwrap_or(0)
    };
    let with = width_of_list(&a.state);
    a.state.agents.clear();
    assert_eq!(width_of_list(&a.state), with);
    snap("dashboard_idle", &a.state);
}

#[test]
fn a_finished_run_says_what_to_do_next() {
    let mut a = app();
    a.state.agents.clear();
    for t in &mut a.state.tasks {
        t.state = TaskState::Done;
    }
    a.state.finished = Some("all done · q quits".into());
    a.state.integration_branch = "orch/integration".into();
    a.state.done_summary = Some(
        "orch/integration: 5 commit(s) ahead of HEAD, ready for one pull request\n  \
         1a2b3c4d scaffold: Title of scaffold\n  5e6f7a8b parser: Title of parser\n"
            .into(),
    );
    a.state.spend_tokens = 1_234_567;
    a.state.spend_usd = 12.5;
    snap("done", &a.state);
    // At 80 columns the header keeps the run's end (the spend and clock give way).
    let mut t = Terminal::new(TestBackend::new(80, 24)).expect("backend");
    t.draw(|f| render(&a.state, f)).expect("draw");
    let top: String = (0..80u16)
        .map(|x| t.backend().buffer()[(x, 0)].symbol().to_string())
        .collect();
    assert!(top.contains("all done · q quits"), "{top}");
}

#[test]
fn the_task_history_says_time_who_and_what() {
    use orch_tui::tui::history::line;
    use serde_json::json;
    let l = line(
        0,
        Actor::Human,
        None,
        EventKind::State,
        &json!({"from": "failed", "to": "ready", "command": "retry", "note": "use the builder"}),
    )
    .expect("a line");
    assert!(
        l.ends_with("you      retry: failed → ready · note: use the builder"),
        "{l}"
    );
    let l = line(
        0,
        Actor::Agent,
        Some(AttemptNo(2)),
        EventKind::CheckFailed,
        &json!({"command": "cargo test", "exit_code": 101}),
    )
    .expect("a line");
    assert!(l.ends_with("agent#2  ✗ cargo test (exit 101)"), "{l}");
    let l = line(
        0,
        Actor::Supervisor,
        None,
        EventKind::Funnel,
        &json!({"stage": "human", "by": "human"}),
    )
    .expect("a line");
    assert!(l.contains("stopped the veto window"), "{l}");
    assert_eq!(
        line(0, Actor::Agent, None, EventKind::Heartbeat, &json!({})),
        None,
        "heartbeats are noise"
    );
}
