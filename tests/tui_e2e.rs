//! End to end: the real binary in tmux (`tests/tui_support`: a private tmux server per test,
//! polled against deadlines).

use std::process::Command;

mod tui_support;
use tui_support::{Tmux, repo_with_plan};

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

const SLOW_PLAN: &str = r#"
[plan]
name = "e2e-resume"

[defaults]
agent = "sim"
budget = { time = "2m" }

[[task]]
id = "alpha"
title = "Alpha"
prompt = '''
Alpha work.
@sim say alpha is working
@sim sleep 3s
'''

[[task]]
id = "beta"
title = "Beta"
prompt = '''
Beta work.
@sim say beta is working
@sim sleep 3s
'''

[[task]]
id = "gamma"
title = "Gamma"
depends_on = ["alpha", "beta"]
prompt = '''
Gamma work.
@sim say gamma is working
'''
"#;

#[test]
fn demo_runs_to_the_end_in_the_tui() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("demo");
    let Some(t) = Tmux::start("demo", &format!("{BIN} demo --dir {}", d.display())) else {
        return;
    };
    t.wait("the header", 30, |s| {
        s.contains("wordstat-demo") && s.contains("inbox")
    });
    let s = t.wait("the end of the run", 60, |s| s.contains("all done"));
    assert!(s.contains("done 10/10"), "{s}");
    t.keys(&["q"]);
    let s = t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert!(s.contains("ORCH-EXITED 0"), "{s}");
    // The summary table is printed on the normal screen after the TUI left.
    assert!(s.contains("scaffold"), "{s}");
}

/// A run of one quick simulated task in the TUI, waited to its end ("all done"); None without
/// tmux. The folder lives as long as the returned guard.
fn one_task_run_to_the_end(name: &str) -> Option<(tempfile::TempDir, Tmux)> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(
        d,
        &format!(
            "[plan]\nname = \"{name}\"\n\n[defaults]\nagent = \"sim\"\n\n\
             [[task]]\nid = \"one\"\ntitle = \"One\"\nprompt = \"@sim say done\"\n"
        ),
    );
    let cmd = format!(
        "{BIN} --repo {} run --plan {}",
        d.display(),
        d.join("plan.toml").display()
    );
    let t = Tmux::start(name, &cmd)?;
    t.wait("the end of the run", 60, |s| s.contains("all done"));
    Some((tmp, t))
}

/// After the run nothing ticks: only the resize itself can bring the redraw (the input thread
/// waits for keys, SIGWINCH and pauses, not on a clock).
#[test]
fn a_resize_after_the_run_redraws_at_the_new_size() {
    let Some((_tmp, t)) = one_task_run_to_the_end("resize") else {
        return;
    };
    let last_row = |s: &str| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string()
    };
    assert!(last_row(&t.screen()).contains("↑↓"), "{}", t.screen());
    t.resize(100, 30);
    // The footer is drawn again on the new last row (before the redraw, row 30 is the middle
    // of the old panes).
    let s = t.wait("the redraw at 100x30", 30, |s| {
        s.lines().count() <= 30 && last_row(s).contains("↑↓") && s.contains("all done")
    });
    assert!(s.lines().all(|l| l.chars().count() <= 100), "{s}");
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}

/// A key typed as the window is resized is read at once: crossterm's default, edge-triggered
/// reader returned the resize and left the key unread until the next one (CI once lost the `q`
/// that ends a run this way). Measured with the old reader: 7 of 20 such keys lost when the
/// TUI had idled 0.3 s before each; none since.
#[test]
fn keys_typed_during_a_resize_are_read() {
    let Some((_tmp, t)) = one_task_run_to_the_end("resize-keys") else {
        return;
    };
    let footer_at = |s: &str, rows: u16, footer: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines
            .get(usize::from(rows) - 1)
            .is_some_and(|l| l.contains(footer))
    };
    for round in 0..6u16 {
        // Not synchronisation: the loss needs an input thread slow to wake, as one is after
        // idling (in a tight loop of keys it was 1 in 20).
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (cols, rows) = (100 + round % 2 * 20, 30 + round % 2 * 4);
        let key = if round % 2 == 0 { "?" } else { "Escape" };
        let footer = if round % 2 == 0 {
            "esc back"
        } else {
            "↑↓ task"
        };
        t.resize_with_keys(cols, rows, &[key]);
        t.wait(
            &format!("{key} at {cols}x{rows} (round {round})"),
            10,
            |s| footer_at(s, rows, footer),
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    t.resize_with_keys(110, 32, &["q"]);
    let s = t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert!(s.contains("ORCH-EXITED 0"), "{s}");
}

#[test]
fn quit_leaving_the_run_then_resume_to_the_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, SLOW_PLAN);
    let cmd = format!(
        "{BIN} --repo {} run --plan {}",
        d.display(),
        d.join("plan.toml").display()
    );
    let Some(t) = Tmux::start("resume", &cmd) else {
        return;
    };
    let s = t.wait("agents at work", 30, |s| {
        s.contains("e2e-resume")
            && s.contains("alpha #1")
            && s.contains("beta #1")
            && s.contains("alpha is working")
    });
    assert!(s.contains("running 2"), "{s}");
    t.keys(&["q"]);
    t.wait("the quit question", 10, |s| s.contains("Quit orch-tui?"));
    t.keys(&["l"]);
    let s = t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert!(
        s.contains("ORCH-EXITED 1"),
        "a left run is unfinished:\n{s}"
    );
    t.kill_session();

    t.new_session(&format!("{BIN} --repo {}", d.display()));
    let s = t.wait("the resumed run's end", 60, |s| s.contains("all done"));
    assert!(s.contains("done 3/3"), "{s}");
    t.keys(&["q"]);
    let s = t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert!(s.contains("ORCH-EXITED 0"), "{s}");
}

const ASK_PLAN: &str = r#"
[plan]
name = "e2e-ask"

[defaults]
agent = "sim"
budget = { time = "2m" }

[[task]]
id = "asker"
title = "Ask the human"
prompt = '''
Needs an answer.
@sim ask Which port should it use?
'''
"#;

#[test]
fn answer_an_agent_question_through_focus() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, ASK_PLAN);
    let cmd = format!(
        "{BIN} --repo {} run --plan {}",
        d.display(),
        d.join("plan.toml").display()
    );
    let Some(t) = Tmux::start("ask", &cmd) else {
        return;
    };
    t.wait("the question in the inbox", 30, |s| {
        s.contains("inbox 1") && s.contains("Which port should it use?")
    });
    t.keys(&["i"]);
    t.wait("the inbox view", 10, |s| {
        s.contains("question") && s.contains("asker")
    });
    t.keys(&["Enter"]);
    t.wait("the focused agent", 10, |s| {
        s.contains("keys go to the agent")
    });
    t.text("8080");
    t.keys(&["Enter"]);
    t.wait("the agent got the answer", 30, |s| {
        s.contains("got answer: 8080") || s.contains("all done")
    });
    let s = t.wait("the end of the run", 60, |s| s.contains("all done"));
    assert!(s.contains("done 1/1"), "{s}");
    let answers = Command::new("git")
        .args([
            "-C",
            &d.display().to_string(),
            "show",
            "orch/integration:answers/asker.txt",
        ])
        .output()
        .expect("git show");
    assert_eq!(String::from_utf8_lossy(&answers.stdout).trim(), "8080");
    // The agent has ended, so Esc leaves the focus view; then quit (the run is over: no question).
    t.keys(&["Escape"]);
    t.wait("the view focus came from", 10, |s| {
        !s.contains("this agent has ended")
    });
    t.keys(&["q"]);
    let s = t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert!(s.contains("ORCH-EXITED 0"), "{s}");
}

const APPROVAL_PLAN: &str = r#"
[plan]
name = "e2e-approve"

[defaults]
agent = "sim"
budget = { time = "2m" }

[[task]]
id = "feature"
title = "A feature to approve"
prompt = '''
@sim write feature.txt: the feature
'''
"#;

#[test]
fn approve_a_task_from_the_inbox_and_the_run_finishes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, APPROVAL_PLAN);
    std::fs::write(
        d.join(".orch/config.toml"),
        "[funnel]\nautonomy = \"in-the-loop\"\nchecks = [\"test -f feature.txt\"]\n",
    )
    .expect("write config");
    let cmd = format!(
        "{BIN} --repo {} run --plan {}",
        d.display(),
        d.join("plan.toml").display()
    );
    let Some(t) = Tmux::start("approve", &cmd) else {
        return;
    };
    let s = t.wait("the approval in the inbox", 60, |s| {
        s.contains("e2e-approve") && s.contains("inbox 1") && s.contains("review·human")
    });
    assert!(
        s.contains("done 0/1"),
        "nothing merges before approval:\n{s}"
    );
    t.keys(&["i"]);
    t.wait("the approval with its context", 10, |s| {
        s.contains("approval") && s.contains("feature.txt") && s.contains("✓ test -f feature.txt")
    });
    t.keys(&["a"]);
    let s = t.wait("the end of the run", 60, |s| s.contains("all done"));
    assert!(s.contains("done 1/1"), "{s}");
    let out = Command::new(BIN)
        .args(["--repo", &d.display().to_string(), "status", "--json"])
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let state = status["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == "feature"))
        .map(|t| t["state"].clone());
    assert_eq!(state, Some(serde_json::json!("done")), "{status:#}");
    t.keys(&["q"]);
    let s = t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert!(s.contains("ORCH-EXITED 0"), "{s}");
}

const RETRY_PLAN: &str = r#"
[plan]
name = "e2e-retry"

[defaults]
agent = "sim"
max_attempts = 1

[[task]]
id = "flaky"
title = "Fails once, then works"
prompt = '''
@sim fail-attempts 1 3
@sim copy-prompt prompt.txt
'''
"#;

/// The run settles with a failed task; the TUI keeps supervising, the human retries it from the
/// inbox with a note, and the next attempt (told the note) finishes the run.
#[test]
fn retry_a_failed_task_from_the_inbox_with_a_note() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, RETRY_PLAN);
    let cmd = format!(
        "{BIN} --repo {} run --plan {}",
        d.display(),
        d.join("plan.toml").display()
    );
    let Some(t) = Tmux::start("retry", &cmd) else {
        return;
    };
    t.wait("the failure in the inbox", 30, |s| {
        s.contains("inbox 1") && s.contains("not done")
    });
    t.keys(&["i"]);
    t.wait("the failed item", 10, |s| {
        s.contains("failed") && s.contains("flaky")
    });
    t.keys(&["r"]);
    t.text("try the other port");
    t.keys(&["Enter"]);
    let s = t.wait("the end of the run", 60, |s| s.contains("all done"));
    assert!(s.contains("done 1/1"), "{s}");
    let prompt = Command::new("git")
        .args([
            "-C",
            &d.display().to_string(),
            "show",
            "orch/integration:prompt.txt",
        ])
        .output()
        .expect("git show");
    let prompt = String::from_utf8_lossy(&prompt.stdout);
    assert!(
        prompt.contains("try the other port"),
        "the note reached the next attempt:\n{prompt}"
    );
    t.keys(&["q"]);
    let s = t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert!(s.contains("ORCH-EXITED 0"), "{s}");
}
