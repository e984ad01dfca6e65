//! The logs view: a regex search, `n` for the next earlier match and `N` for the next later
//! one, filters by task, attempt, agent profile and kind; the timeline key.

use super::*;
use orch_tui::agent::record::tail::SourceKind;

fn enter() -> KeyEvent {
    key(KeyCode::Enter, KeyModifiers::NONE)
}

fn typed(a: &mut App, prefix: char, text: &str) {
    let mut keys = vec![ch(prefix)];
    keys.extend(text.chars().map(ch));
    keys.push(enter());
    press(a, &keys);
}

/// The line at the bottom of the logs view.
fn bottom(a: &App) -> String {
    let v = a.state.visible_log_lines();
    let i = v.len() - 1 - a.state.logs.scroll;
    v[i].text.clone()
}

#[test]
fn a_regex_search_then_n_and_shift_n_walk_the_matches() {
    let mut a = app();
    press(&mut a, &[ch('l')]);
    // "line 1", "line 11", "line 21" (and not "line 10"): the newest first.
    typed(&mut a, '/', r"line \d?1$");
    assert_eq!(bottom(&a), "line 21");
    assert!(!a.state.logs.follow);
    press(&mut a, &[ch('n')]);
    assert_eq!(bottom(&a), "line 11");
    press(&mut a, &[ch('n')]);
    assert_eq!(bottom(&a), "line 1");
    press(&mut a, &[ch('n')]);
    assert!(
        a.state
            .message
            .as_deref()
            .unwrap()
            .contains("no earlier line")
    );
    assert_eq!(bottom(&a), "line 1", "stays on the last match");
    press(&mut a, &[ch('N')]);
    assert_eq!(bottom(&a), "line 11");
    press(&mut a, &[ch('N'), ch('N')]);
    assert!(
        a.state
            .message
            .as_deref()
            .unwrap()
            .contains("no later line")
    );
}

#[test]
fn a_search_that_is_not_a_regex_is_searched_as_text_and_says_so() {
    let mut a = app();
    a.state
        .logs
        .lines
        .push(LogLine::output("a", 1, "odd (paren"));
    press(&mut a, &[ch('l')]);
    typed(&mut a, '/', "(paren");
    assert_eq!(bottom(&a), "odd (paren");
    assert!(
        a.state
            .message
            .as_deref()
            .unwrap_or("")
            .contains("not a regex"),
        "{:?}",
        a.state.message
    );
}

#[test]
fn filters_by_task_attempt_agent_and_kind() {
    let mut a = app();
    let mut review = LogLine::output("b", 2, "looks fine");
    review.source = SourceKind::Reviewer;
    review.tag = "b#2 review".into();
    review.profile = "claude".into();
    let mut checks = LogLine::output("a", 1, "$ cargo test");
    checks.source = SourceKind::Checks;
    checks.tag = "a#1 checks".into();
    a.state.logs.lines.extend([review, checks]);
    let count = |a: &mut App, f: &str| {
        a.state.logs.filter = (!f.is_empty()).then(|| f.to_string());
        a.state.visible_log_lines().len()
    };
    assert_eq!(count(&mut a, ""), 32);
    assert_eq!(
        count(&mut a, "a"),
        16,
        "a task: every attempt and its checks"
    );
    assert_eq!(count(&mut a, "b#2"), 1, "one attempt");
    assert_eq!(count(&mut a, "a b"), 32, "two tasks");
    assert_eq!(count(&mut a, "kind:checks"), 1);
    assert_eq!(count(&mut a, "kind:review agent:claude"), 1);
    assert_eq!(count(&mut a, "kind:agent a"), 15);
    assert_eq!(
        count(&mut a, "kind:nonsense"),
        0,
        "an unknown kind matches nothing"
    );
    // Through the keys (the prompt starts from the current filter).
    a.state.logs.filter = None;
    press(&mut a, &[ch('l')]);
    typed(&mut a, 's', "kind:checks");
    assert_eq!(a.state.visible_log_lines().len(), 1);
}
