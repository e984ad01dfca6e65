//! The TUI stays responsive while another process holds the ledger's write lock for 20 s: keys
//! act at once, a human command says it waits for the ledger, and it lands when the lock is
//! released (the real binary in tmux; `tests/tui_support`).

use std::time::{Duration, Instant};

mod tui_support;
use tui_support::{Tmux, repo_with_plan};

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

/// How long the other process holds the lock: longer than any wait inside one ledger call (10 s
/// of retries on top of a 5 s busy handler), so only a command that keeps trying lands.
const LOCK_HELD: Duration = Duration::from_secs(20);

const PLAN: &str = r#"
[plan]
name = "e2e-lock"

[defaults]
agent = "sim"
max_attempts = 1

[[task]]
id = "flaky"
title = "Fails once, then works"
prompt = '''
@sim fail-attempts 1 3
@sim write done.txt: done
'''
"#;

/// The views the test cycles through while the ledger is locked: key, what shows it.
/// (The footer is the waiting note meanwhile, so each view is told by its body.)
const VIEWS: [(&str, &str); 4] = [
    ("?", "help: keys"),
    ("l", "· following"),
    ("g", "critical path"),
    ("i", "failed     flaky"),
];

#[test]
fn keys_act_and_a_command_waits_while_another_process_holds_the_ledger() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, PLAN);
    let cmd = format!(
        "{BIN} --repo {} run --plan {}",
        d.display(),
        d.join("plan.toml").display()
    );
    let Some(t) = Tmux::start("lock", &cmd) else {
        return;
    };
    t.wait("the failure in the inbox", 30, |s| {
        s.contains("inbox 1") && s.contains("not done")
    });

    // Another process takes the write lock (waiting for the supervisor's own writes to end).
    let other = rusqlite::Connection::open(d.join(".orch/ledger.db")).expect("open the ledger");
    other
        .busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let locked = Instant::now();

    // Retry the failed task from the inbox: the command goes to the background and waits.
    t.keys(&["i"]);
    t.wait("the failed item", 5, |s| {
        s.contains("failed") && s.contains("flaky")
    });
    t.keys(&["r"]);
    t.text("second try");
    t.keys(&["Enter"]);
    let s = t.wait("the waiting note", 5, |s| {
        s.contains("waiting for the ledger")
    });
    assert!(
        s.contains("retry flaky"),
        "the note names the command:\n{s}"
    );

    // Meanwhile every key acts: from the dashboard, switch views round and round until the
    // lock is released.
    t.keys(&["Escape"]);
    t.wait("the dashboard", 3, |s| s.contains("tasks 1"));
    let mut worst = Duration::ZERO;
    let mut switches = 0;
    while locked.elapsed() < LOCK_HELD {
        for (key, shows) in VIEWS {
            let pressed = Instant::now();
            t.keys(&[key]);
            t.wait(&format!("`{key}` to show {shows:?}"), 3, |s| {
                s.contains(shows)
            });
            worst = worst.max(pressed.elapsed());
            switches += 1;
            // Back to the dashboard, seen before the next key (an Escape followed at once by a
            // key reads as Alt+key).
            t.keys(&["Escape"]);
            t.wait("the dashboard", 3, |s| s.contains("tasks 1"));
        }
    }
    let s = t.screen();
    assert!(
        s.contains("waiting for the ledger"),
        "still waiting after {:?} of lock:\n{s}",
        locked.elapsed()
    );
    eprintln!(
        "{switches} view switches during {:?} of lock; slowest key to screen {worst:?} \
         (tmux polling included)",
        locked.elapsed()
    );
    other.execute_batch("ROLLBACK").expect("release the lock");
    drop(other);

    // The retry lands once the ledger is free, and the task's next attempt finishes the run.
    let s = t.wait("the retried run's end", 60, |s| s.contains("all done"));
    assert!(s.contains("done 1/1"), "{s}");
    assert!(!s.contains("waiting for the ledger"), "{s}");
    t.keys(&["q"]);
    let s = t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert!(s.contains("ORCH-EXITED 0"), "{s}");
}
