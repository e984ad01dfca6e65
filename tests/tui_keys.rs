//! Key handling without a terminal: every default binding, overrides, the bytes sent to a
//! focused agent, and what each action does to the state (effects for the run loop).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use orch_tui::core::domain::*;
use orch_tui::core::state::TaskState;
use orch_tui::engine::HumanCommand;
use orch_tui::tui::app::{App, Effect};
use orch_tui::tui::input::{Modes, encode_key, encode_paste};
use orch_tui::tui::keymap::{Action, DEFAULTS, Keymap, parse_key};
use orch_tui::tui::state::*;

/// The funnel's keys: approve, reject, approve all, the diff view.
#[path = "tui_keys/funnel.rs"]
mod funnel_keys;

/// The logs view's regex search, n/N, filters; the timeline view.
#[path = "tui_keys/logs.rs"]
mod logs_keys;

/// The new-task form, prompt edits, selections that hold, questions that name their target.
#[path = "tui_keys/everyday.rs"]
mod everyday_keys;

/// One-key answers to a permission request in the inbox.
#[path = "tui_keys/permission.rs"]
mod permission_keys;

fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, mods)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c), KeyModifiers::NONE)
}

#[test]
fn pause_all_resumes_the_fleet_once_nothing_runs() {
    let mut a = app();
    for t in &mut a.state.tasks {
        if t.state == TaskState::Working {
            t.state = TaskState::Paused;
        }
    }
    assert_eq!(
        press(&mut a, &[ch('P')]),
        vec![Effect::Human {
            cmd: HumanCommand::Resume,
            task: "b".into(),
            note: None,
        }]
    );
    for t in &mut a.state.tasks {
        t.state = TaskState::Done;
    }
    assert_eq!(press(&mut a, &[ch('P')]), vec![]);
    assert_eq!(
        a.state.message.as_deref(),
        Some("nothing to pause or resume")
    );
}

#[test]
fn every_default_binding_maps_to_its_action() {
    let (km, problems) = Keymap::new(&BTreeMap::new());
    assert!(problems.is_empty());
    let mut seen = 0;
    for (action, keys) in DEFAULTS {
        for k in *keys {
            let (code, mods) = parse_key(k).unwrap_or_else(|| panic!("bad default key {k}"));
            assert!(
                km.actions(&key(code, mods)).contains(action),
                "key {k} is not {action:?}"
            );
            seen += 1;
        }
    }
    assert!(seen >= Action::ALL.len());
    // Every action has at least one key, and its help line names it.
    let help = km.help();
    for a in Action::ALL {
        assert!(!km.keys(a).is_empty(), "{a:?} has no key");
        assert!(help.iter().any(|(_, n, _)| n == a.name()));
    }
}

#[test]
fn shifted_letters_and_ctrl_bracket_variants_match() {
    let (km, _) = Keymap::new(&BTreeMap::new());
    assert_eq!(
        km.action(&key(KeyCode::Char('G'), KeyModifiers::SHIFT)),
        Some(Action::Bottom)
    );
    assert_eq!(
        km.action(&key(KeyCode::Char(']'), KeyModifiers::CONTROL)),
        Some(Action::Unfocus)
    );
    assert_eq!(
        km.action(&key(KeyCode::Char('5'), KeyModifiers::CONTROL)),
        Some(Action::Unfocus)
    );
    assert_eq!(
        km.action(&key(KeyCode::F(10), KeyModifiers::NONE)),
        Some(Action::Unfocus)
    );
    assert_eq!(km.action(&ch('z')), None);
}

#[test]
fn config_overrides_replace_keys_and_report_bad_entries() {
    let mut o = BTreeMap::new();
    o.insert("quit".to_string(), "x".to_string());
    o.insert("help".to_string(), "q".to_string());
    o.insert("no_such_action".to_string(), "y".to_string());
    o.insert("logs".to_string(), "ctrl-".to_string());
    let (km, problems) = Keymap::new(&o);
    assert_eq!(km.action(&ch('x')), Some(Action::Quit));
    assert_eq!(km.action(&ch('q')), Some(Action::Help));
    assert_eq!(
        km.action(&ch('?')),
        None,
        "an override replaces the defaults"
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("'no_such_action'")));
    assert!(problems.iter().any(|p| p.contains("'ctrl-'")));
}

#[test]
fn key_strings_parse() {
    let cases: &[(&str, KeyCode, KeyModifiers)] = &[
        ("q", KeyCode::Char('q'), KeyModifiers::NONE),
        ("enter", KeyCode::Enter, KeyModifiers::NONE),
        ("esc", KeyCode::Esc, KeyModifiers::NONE),
        ("ctrl-]", KeyCode::Char(']'), KeyModifiers::CONTROL),
        ("C-x", KeyCode::Char('x'), KeyModifiers::CONTROL),
        (
            "alt-shift-up",
            KeyCode::Up,
            KeyModifiers::ALT.union(KeyModifiers::SHIFT),
        ),
        ("f10", KeyCode::F(10), KeyModifiers::NONE),
        ("pgdn", KeyCode::PageDown, KeyModifiers::NONE),
        ("space", KeyCode::Char(' '), KeyModifiers::NONE),
    ];
    for (s, code, mods) in cases {
        assert_eq!(parse_key(s), Some((*code, *mods)), "{s}");
    }
    for bad in ["", "ctrl-", "abc", "fx"] {
        assert_eq!(parse_key(bad), None, "{bad}");
    }
}

#[test]
fn keys_encode_for_the_pty() {
    let n = Modes::default();
    let app = Modes {
        application_cursor: true,
        bracketed_paste: false,
    };
    let none = KeyModifiers::NONE;
    let cases: &[(KeyEvent, Modes, &[u8])] = &[
        (ch('a'), n, b"a"),
        (ch('é'), n, "é".as_bytes()),
        (key(KeyCode::Enter, none), n, b"\r"),
        (key(KeyCode::Tab, none), n, b"\t"),
        (key(KeyCode::Backspace, none), n, b"\x7f"),
        (key(KeyCode::Esc, none), n, b"\x1b"),
        (key(KeyCode::Up, none), n, b"\x1b[A"),
        (key(KeyCode::Up, none), app, b"\x1bOA"),
        (key(KeyCode::Down, none), app, b"\x1bOB"),
        (key(KeyCode::Right, none), n, b"\x1b[C"),
        (key(KeyCode::Left, none), app, b"\x1bOD"),
        (key(KeyCode::Home, none), n, b"\x1b[H"),
        (key(KeyCode::PageUp, none), n, b"\x1b[5~"),
        (key(KeyCode::Delete, none), n, b"\x1b[3~"),
        (key(KeyCode::F(1), none), n, b"\x1bOP"),
        (key(KeyCode::F(5), none), n, b"\x1b[15~"),
        (key(KeyCode::Char('c'), KeyModifiers::CONTROL), n, b"\x03"),
        (key(KeyCode::Char('d'), KeyModifiers::CONTROL), n, b"\x04"),
        (key(KeyCode::Char('b'), KeyModifiers::ALT), n, b"\x1bb"),
    ];
    for (ev, modes, want) in cases {
        assert_eq!(encode_key(ev, *modes).as_deref(), Some(*want), "{ev:?}");
    }
}

#[test]
fn paste_is_bracketed_when_asked() {
    let plain = Modes::default();
    let br = Modes {
        application_cursor: false,
        bracketed_paste: true,
    };
    assert_eq!(encode_paste("a\nb", plain), b"a\rb");
    assert_eq!(encode_paste("a\nb", br), b"\x1b[200~a\rb\x1b[201~");
    assert_eq!(encode_paste("x\x1b[201~y", br), b"\x1b[200~xy\x1b[201~");
}

fn agent(attempt: i64, task: &str) -> AgentInfo {
    AgentInfo {
        attempt: AttemptId(attempt),
        task: task.into(),
        n: AttemptNo(1),
        profile: "sim".into(),
        substatus: Substatus::Busy,
        question: None,
        elapsed: Duration::ZERO,
        time_budget: None,
        started: Instant::now(),
        held_since: None,
        tokens: 0,
        cost_usd: 0.0,
        budget_tokens: None,
        budget_cost_usd: None,
        screen: None,
    }
}

fn app() -> App {
    let mut s = ViewState::new(true);
    for (id, st) in [
        ("a", TaskState::Done),
        ("b", TaskState::Working),
        ("c", TaskState::Failed),
    ] {
        s.tasks.push(TaskInfo {
            id: id.into(),
            title: id.into(),
            state: st,
            deps: vec![],
            agent: None,
            reason: None,
            stage: None,
            stage_until_ms: None,
        });
    }
    s.agents = vec![agent(7, "b")];
    s.inbox = vec![InboxItem {
        task: Some("c".into()),
        kind: InboxKind::Failed {
            failures: 3,
            max_attempts: 3,
        },
        text: "boom".into(),
        attempt: None,
    }];
    s.logs.lines = (0..30)
        .map(|i| LogLine::output(if i % 2 == 0 { "a" } else { "b" }, 1, &format!("line {i}")))
        .collect();
    let mut app = App::new(s, Keymap::new(&BTreeMap::new()).0);
    app.size = (100, 30);
    app
}

fn press(app: &mut App, keys: &[KeyEvent]) -> Vec<Effect> {
    keys.iter()
        .flat_map(|k| app.on_key(k, Modes::default()))
        .collect()
}

#[test]
fn every_action_does_what_it_says() {
    let human = |cmd, task: &str| Effect::Human {
        cmd,
        task: task.into(),
        note: None,
    };
    // (keys from a fresh app with task `c` selected, expected view, expected effects)
    type Case = (&'static str, Vec<KeyEvent>, View, Vec<Effect>);
    let down2 = || vec![ch('j'), ch('j')];
    let cases: Vec<Case> = vec![
        ("help", vec![ch('?')], View::Help, vec![]),
        (
            "back from help",
            vec![ch('?'), key(KeyCode::Esc, KeyModifiers::NONE)],
            View::Dashboard,
            vec![],
        ),
        ("inbox", vec![ch('i')], View::Inbox, vec![]),
        ("logs", vec![ch('l')], View::Logs, vec![Effect::LoadLogs]),
        ("dag", vec![ch('g')], View::Dag, vec![]),
        (
            "timeline",
            vec![ch('T')],
            View::Timeline,
            vec![Effect::LoadTimeline],
        ),
        ("dashboard", vec![ch('g'), ch('1')], View::Dashboard, vec![]),
        (
            "detail",
            [down2(), vec![ch('t')]].concat(),
            View::Detail,
            vec![Effect::LoadDetail { task: "c".into() }],
        ),
        (
            "open without agent = detail",
            [down2(), vec![key(KeyCode::Enter, KeyModifiers::NONE)]].concat(),
            View::Detail,
            vec![Effect::LoadDetail { task: "c".into() }],
        ),
        (
            "open with agent = focus",
            vec![ch('j'), key(KeyCode::Enter, KeyModifiers::NONE)],
            View::Focus,
            vec![Effect::Resize {
                attempt: AttemptId(7),
                rows: 27,
                cols: 100,
            }],
        ),
        (
            "focus key",
            vec![ch('F')],
            View::Focus,
            vec![Effect::Resize {
                attempt: AttemptId(7),
                rows: 27,
                cols: 100,
            }],
        ),
        (
            "cancel asks, y cancels",
            [down2(), vec![ch('c'), ch('y')]].concat(),
            View::Dashboard,
            vec![human(HumanCommand::Cancel, "c")],
        ),
        (
            "cancel asks, n does nothing",
            [down2(), vec![ch('c'), ch('n')]].concat(),
            View::Dashboard,
            vec![],
        ),
        (
            "cancel asks, esc does nothing",
            [
                down2(),
                vec![ch('c'), key(KeyCode::Esc, KeyModifiers::NONE)],
            ]
            .concat(),
            View::Dashboard,
            vec![],
        ),
        (
            "pause",
            [down2(), vec![ch('p')]].concat(),
            View::Dashboard,
            vec![human(HumanCommand::Pause, "c")],
        ),
        (
            "resume",
            [down2(), vec![ch('u')]].concat(),
            View::Dashboard,
            vec![human(HumanCommand::Resume, "c")],
        ),
        (
            "pause the fleet: every working task",
            vec![ch('P')],
            View::Dashboard,
            vec![human(HumanCommand::Pause, "b")],
        ),
        (
            "approve",
            [down2(), vec![ch('a')]].concat(),
            View::Dashboard,
            vec![human(HumanCommand::Approve, "c")],
        ),
        (
            "retry with note",
            [
                down2(),
                vec![
                    ch('r'),
                    ch('h'),
                    ch('i'),
                    key(KeyCode::Enter, KeyModifiers::NONE),
                ],
            ]
            .concat(),
            View::Dashboard,
            vec![Effect::Human {
                cmd: HumanCommand::Retry,
                task: "c".into(),
                note: Some("hi".into()),
            }],
        ),
        (
            "retry cancelled",
            [
                down2(),
                vec![ch('r'), ch('h'), key(KeyCode::Esc, KeyModifiers::NONE)],
            ]
            .concat(),
            View::Dashboard,
            vec![],
        ),
        (
            "inbox retry acts on the item",
            vec![ch('i'), ch('r'), key(KeyCode::Enter, KeyModifiers::NONE)],
            View::Inbox,
            vec![Effect::Human {
                cmd: HumanCommand::Retry,
                task: "c".into(),
                note: None,
            }],
        ),
        (
            "quit asks, then leaves it running in the background",
            vec![ch('q'), ch('d')],
            View::Dashboard,
            vec![Effect::Detach],
        ),
        (
            "quit asks, then leaves",
            vec![ch('q'), ch('l')],
            View::Dashboard,
            vec![Effect::Stop { stop_agents: false }],
        ),
        (
            "quit asks, stopping the live agent asks again",
            vec![ch('q'), ch('s'), ch('y')],
            View::Dashboard,
            vec![Effect::Stop { stop_agents: true }],
        ),
        (
            "quit, stop declined",
            vec![ch('q'), ch('s'), ch('n')],
            View::Dashboard,
            vec![],
        ),
        (
            "ctrl-c opens the quit question",
            vec![
                key(KeyCode::Char('c'), KeyModifiers::CONTROL),
                ch('s'),
                ch('y'),
            ],
            View::Dashboard,
            vec![Effect::Stop { stop_agents: true }],
        ),
        (
            "retry with an empty note",
            [
                down2(),
                vec![ch('r'), key(KeyCode::Enter, KeyModifiers::NONE)],
            ]
            .concat(),
            View::Dashboard,
            vec![Effect::Human {
                cmd: HumanCommand::Retry,
                task: "c".into(),
                note: None,
            }],
        ),
        (
            "shell in the selected task's worktree",
            [down2(), vec![ch('o')]].concat(),
            View::Dashboard,
            vec![Effect::OpenShell { task: "c".into() }],
        ),
        (
            "editor on the selected task's worktree",
            [down2(), vec![ch('E')]].concat(),
            View::Dashboard,
            vec![Effect::OpenEditor {
                task: "c".into(),
                diff: None,
            }],
        ),
        (
            "edit a failed task's prompt: it is read first",
            [down2(), vec![ch('e')]].concat(),
            View::Dashboard,
            vec![Effect::LoadPrompt { task: "c".into() }],
        ),
        (
            "quit asks, esc keeps going",
            vec![ch('q'), key(KeyCode::Esc, KeyModifiers::NONE)],
            View::Dashboard,
            vec![],
        ),
    ];
    for (name, keys, view, effects) in cases {
        let mut a = app();
        let got = press(&mut a, &keys);
        assert_eq!(got, effects, "{name}: effects");
        assert_eq!(a.state.view, view, "{name}: view");
        assert!(!a.state.quit_prompt, "{name}: quit prompt left open");
        assert!(a.state.confirm.is_none(), "{name}: question left open");
    }
}

#[test]
fn focus_sends_keys_to_the_agent_and_unfocus_returns() {
    let mut a = app();
    press(&mut a, &[ch('F')]);
    assert_eq!(a.state.view, View::Focus);
    // `q`, `?` and Enter are the agent's now.
    let fx = press(
        &mut a,
        &[ch('q'), ch('?'), key(KeyCode::Enter, KeyModifiers::NONE)],
    );
    assert_eq!(
        fx,
        vec![
            Effect::Input {
                attempt: AttemptId(7),
                bytes: b"q".to_vec()
            },
            Effect::Input {
                attempt: AttemptId(7),
                bytes: b"?".to_vec()
            },
            Effect::Input {
                attempt: AttemptId(7),
                bytes: b"\r".to_vec()
            },
        ]
    );
    let fx = a.on_key(
        &key(KeyCode::Up, KeyModifiers::NONE),
        Modes {
            application_cursor: true,
            bracketed_paste: false,
        },
    );
    assert_eq!(
        fx,
        vec![Effect::Input {
            attempt: AttemptId(7),
            bytes: b"\x1bOA".to_vec()
        }]
    );
    let fx = a.on_paste(
        "x\ny",
        Modes {
            application_cursor: false,
            bracketed_paste: true,
        },
    );
    assert_eq!(
        fx,
        vec![Effect::Input {
            attempt: AttemptId(7),
            bytes: b"\x1b[200~x\ry\x1b[201~".to_vec()
        }]
    );
    assert_eq!(
        a.on_resize(120, 40),
        vec![Effect::Resize {
            attempt: AttemptId(7),
            rows: 37,
            cols: 120
        }]
    );
    press(&mut a, &[key(KeyCode::Char(']'), KeyModifiers::CONTROL)]);
    assert_eq!(a.state.view, View::Dashboard);
    assert_eq!(a.on_resize(100, 30), vec![], "no PTY resize outside focus");
}

#[test]
fn logs_follow_scroll_search_and_filter() {
    let mut a = app();
    press(&mut a, &[ch('l')]);
    assert!(a.state.logs.follow);
    press(&mut a, &[ch('k'), ch('k')]);
    assert!(!a.state.logs.follow);
    assert_eq!(a.state.logs.scroll, 2);
    press(&mut a, &[ch('G')]);
    assert!(a.state.logs.follow);
    press(&mut a, &[ch('f')]);
    assert!(!a.state.logs.follow);
    press(&mut a, &[ch('f')]);
    assert!(a.state.logs.follow);
    // Search jumps to the newest match: "line 1" matches line 19 first (newest), scroll 10.
    press(
        &mut a,
        &[
            ch('/'),
            ch('1'),
            ch('9'),
            key(KeyCode::Enter, KeyModifiers::NONE),
        ],
    );
    assert_eq!(a.state.logs.search.as_deref(), Some("19"));
    assert!(!a.state.logs.follow);
    assert_eq!(a.state.logs.scroll, 10);
    press(
        &mut a,
        &[
            ch('/'),
            key(KeyCode::Backspace, KeyModifiers::NONE),
            key(KeyCode::Backspace, KeyModifiers::NONE),
            ch('z'),
            key(KeyCode::Enter, KeyModifiers::NONE),
        ],
    );
    assert!(
        a.state
            .message
            .as_deref()
            .is_some_and(|m| m.contains("line matches"))
    );
    press(
        &mut a,
        &[ch('s'), ch('b'), key(KeyCode::Enter, KeyModifiers::NONE)],
    );
    assert_eq!(a.state.logs.filter.as_deref(), Some("b"));
    assert_eq!(a.state.visible_log_lines().len(), 15);
}

#[test]
fn quit_after_the_run_ended_exits_without_asking() {
    let mut a = app();
    a.state.finished = Some("all done".into());
    assert_eq!(press(&mut a, &[ch('q')]), vec![Effect::Exit]);
}

/// Watching another supervisor, the quit question cannot stop its agents: `s` and `d` do
/// nothing, `l` leaves (the run goes on in the supervising process).
#[test]
fn watching_quit_leaves_and_never_stops_the_agents() {
    let mut a = app();
    a.state.watching = Some(4242);
    assert!(press(&mut a, &[ch('q'), ch('s')]).is_empty());
    assert!(a.state.quit_prompt, "s is not an answer here");
    assert!(a.state.confirm.is_none(), "no stop question either");
    assert!(
        press(&mut a, &[ch('d')]).is_empty(),
        "the run is in the background already"
    );
    assert!(a.state.quit_prompt, "d is not an answer here");
    assert_eq!(
        press(&mut a, &[ch('l')]),
        vec![Effect::Stop { stop_agents: false }]
    );
}

#[test]
fn clicks_select_tasks_and_inbox_items() {
    let mut a = app();
    // Row 2 is the first task (header, then the box border); column 5 is inside the list.
    a.on_click(5, 4);
    assert_eq!(a.state.selected_task, 2);
    a.on_click(5, 2);
    assert_eq!(a.state.selected_task, 0);
    a.on_click(5, 20);
    assert_eq!(a.state.selected_task, 0, "below the last task: nothing");
    a.on_click(90, 3);
    assert_eq!(a.state.selected_task, 0, "on an agent pane: not the list");
    press(&mut a, &[ch('i')]);
    a.on_click(5, 2);
    assert_eq!(a.state.selected_inbox, 0);
}
