//! The middle layer of detection on what the pinned CLIs really sent, replayed without them:
//! Claude's titles across a turn (a recorded cast) and Codex's notifications (recorded texts),
//! both recorded by `tests/agent_screens.rs` with `ORCH_RECORD_FIXTURES=1`.

mod agent_support;

use std::path::Path;

use agent_support::{state_name, title_states};
use orch_tui::core::screen_rules::signals::{Signal, classify_signal};
use orch_tui::core::screen_rules::{ScreenState, classify, merged};

/// Claude's titles across a turn, replayed from a recorded cast (2.1.328, working → idle):
/// the spinner titles say working, the last one idle, none says waiting — and no screen of
/// the whole cast is classified as waiting either.
#[test]
fn claude_titles_say_working_then_idle() {
    use orch_tui::agent::screen::{ScreenEvent, new_parser};
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/casts/claude-titles.cast");
    let cast = std::fs::read_to_string(&path).expect("the recorded cast");
    let mut lines = cast.lines();
    let header: serde_json::Value =
        serde_json::from_str(lines.next().expect("header")).expect("cast header");
    let size = |k: &str| header[k].as_u64().and_then(|v| u16::try_from(v).ok());
    let mut parser = new_parser(size("height").unwrap_or(30), size("width").unwrap_or(110));
    let rules = merged("claude", &Default::default());
    let mut titles = Vec::new();
    let mut screens = 0;
    for line in lines {
        let ev: serde_json::Value = serde_json::from_str(line).expect("cast event");
        if ev[1] != "o" {
            continue;
        }
        parser.process(ev[2].as_str().unwrap_or("").as_bytes());
        for e in parser.callbacks_mut().take_events() {
            if let ScreenEvent::Title(t) = e {
                titles.push(Signal::Title(t));
            }
        }
        let text = parser.screen().contents();
        let seen = classify(&rules, &text);
        assert!(
            !seen
                .as_ref()
                .is_some_and(|m| matches!(m.state, ScreenState::Waiting(_))),
            "false waiting on a recorded screen (rule {:?}):\n{text}",
            seen.map(|m| m.rule)
        );
        screens += 1;
    }
    let states = title_states(&rules, &titles);
    eprintln!("{} titles over {screens} screens: {states:?}", states.len());
    assert!(
        states
            .iter()
            .all(|(_, s)| !matches!(s, Some(ScreenState::Waiting(_)))),
        "{states:?}"
    );
    let working = states
        .iter()
        .position(|(_, s)| *s == Some(ScreenState::Working))
        .unwrap_or_else(|| panic!("no working title: {states:?}"));
    assert!(
        states[..working]
            .iter()
            .all(|(_, s)| *s != Some(ScreenState::Working)),
        "{states:?}"
    );
    assert_eq!(
        states.last().and_then(|(_, s)| *s),
        Some(ScreenState::Idle),
        "the turn ends on the idle title: {states:?}"
    );
    // Between the first working title and the idle one at the end, every title says working.
    let idle_at = states.len() - 1;
    assert!(
        states[working..idle_at]
            .iter()
            .all(|(_, s)| *s == Some(ScreenState::Working)),
        "{states:?}"
    );
}

/// Codex's notifications as the pinned CLI sent them, unfocused (`tui.notification_method =
/// "osc9"`, which the adapter sets): each is classified as the state recorded beside it — its
/// approvals wait for permission, its turn end (its last message) is no wait.
#[test]
fn codex_notifications_recorded_are_classified_as_recorded() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/signals/codex-notifications.txt");
    let text = std::fs::read_to_string(&path).expect("recorded notifications");
    let rules = merged("codex", &Default::default());
    let mut kinds = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (want, note) = line.split_once('\t').expect("STATE<TAB>TEXT");
        let got = classify_signal(&rules, &Signal::Notification(note.into()), None);
        let got_name = got.as_ref().map_or("none", |m| state_name(m.state));
        assert_eq!(got_name, want, "{note:?} ({:?})", got.map(|m| m.rule));
        kinds.push(want.to_string());
    }
    assert!(
        kinds.iter().filter(|k| *k == "waiting-permission").count() >= 2,
        "an edit and a command approval: {kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "none"), "a turn end: {kinds:?}");
}
