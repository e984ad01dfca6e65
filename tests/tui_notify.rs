//! Desktop notifications when something enters the inbox while the terminal is not focused:
//! when they are due, the bytes sent to the outer terminal (tmux passthrough included), and the
//! config's `notify_command` run by the real binary in tmux.

mod common;
mod e2e_support;

use std::time::Duration;

use common::tmux::Tmux;
use e2e_support::{BIN, FAST_CONFIG, Repo, wait_for};
use orch_tui::tui::notify::{Focus, due, sequences};

#[test]
fn a_notification_is_due_when_the_inbox_grows_and_nobody_looks() {
    assert!(due(0, 1, Focus::Away));
    assert!(due(2, 3, Focus::Unknown), "a terminal without focus events");
    assert!(!due(0, 1, Focus::Focused), "the user is looking");
    assert!(!due(3, 3, Focus::Away), "nothing new");
    assert!(!due(3, 1, Focus::Away), "items left");
}

#[test]
fn the_outer_terminal_gets_osc_9_and_777_wrapped_for_tmux_inside_tmux() {
    let plain = sequences("2 wait; see\x1b[31m", false);
    assert_eq!(
        plain, "\x1b]9;2 wait see[31m\x07\x1b]777;notify;orch-tui;2 wait see[31m\x07",
        "control characters and `;` cannot end the sequence early"
    );
    let wrapped = sequences("2 wait", true);
    assert_eq!(
        wrapped,
        "\x1bPtmux;\x1b\x1b]9;2 wait\x07\x1b\\\x1bPtmux;\x1b\x1b]777;notify;orch-tui;2 wait\x07\x1b\\"
    );
}

const FAILING: &str = r#"
[plan]
name = "e2e-notify"

[defaults]
agent = "sim"
max_attempts = 1

[[task]]
id = "broken"
title = "Fails"
prompt = '''
@sim fail-attempts 1 3
'''
"#;

#[test]
fn notify_command_runs_when_the_inbox_grows() {
    let repo = Repo::new();
    let log = repo.root.join("notified.txt");
    repo.init(&format!(
        "{FAST_CONFIG}\n[ui]\nnotify_command = \"echo >> {}\"\n",
        log.display()
    ));
    let plan = repo.write_plan(FAILING);
    let cmd = format!(
        "cd {} && GIT_CONFIG_GLOBAL=/dev/null NO_COLOR=1 {BIN} run --plan {}",
        repo.dir.display(),
        plan.display()
    );
    let Some(t) = Tmux::start("notify", &cmd, 120, 30) else {
        return;
    };
    t.wait("the failure in the inbox", 30, |s| s.contains("inbox 1"));
    let r = wait_for(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("orch-tui: 1 item(s) wait in the inbox") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    assert!(r.is_ok(), "the command never ran: {r:?}");
    t.wait("the end on screen", 20, |s| s.contains("not done"));
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}
