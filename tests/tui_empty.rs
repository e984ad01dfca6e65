//! Bare `orch-tui` in a repository with no `.orch/` and no plan opens the TUI, empty and ready
//! for work; a task added from another shell appears in it and runs (the real binary in tmux).

mod common;
mod e2e_support;

use std::time::Duration;

use common::tmux::Tmux;
use e2e_support::{BIN, Repo, wait_for};

#[test]
fn bare_orch_tui_opens_empty_and_takes_added_tasks() {
    let repo = Repo::new();
    let cmd = format!(
        "cd {} && GIT_CONFIG_GLOBAL=/dev/null NO_COLOR=1 {BIN}",
        repo.dir.display()
    );
    let Some(tmux) = Tmux::start("empty", &cmd, 120, 30) else {
        return;
    };
    tmux.wait("the empty task list", 20, |s| s.contains("no tasks yet"));
    assert!(repo.ledger().exists(), "init was implied");
    // The starter config may name no agent here; the task names the simulator.
    let out = repo.orch(
        &[
            "add",
            "--agent",
            "sim",
            "--id",
            "hello",
            "Say hello.\n@sim speed fast",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout
            .contains("the running supervisor picks it up now"),
        "{}",
        out.show()
    );
    tmux.wait("the added task", 20, |s| s.contains("hello"));
    let done = wait_for(Duration::from_secs(60), || {
        let s = repo.status();
        let state = s["tasks"][0]["state"].as_str().unwrap_or("").to_string();
        // On the loop by default: the veto window holds it in review; approving lands it.
        if state == "review" && s["tasks"][0]["stage"] == "veto" {
            let _ = repo.orch(&["approve", "hello"], Duration::from_secs(20));
        }
        if state == "done" { Ok(()) } else { Err(s) }
    });
    if let Err(s) = done {
        panic!(
            "the added task never merged: {s:#}\nscreen:\n{}",
            tmux.screen()
        );
    }
    tmux.keys(&["q"]);
    // Once the run has settled `q` quits at once; before that it asks whether to stop the agents.
    let seen = tmux.wait("the quit dialog or the exit", 20, |s| {
        s.contains("Quit orch-tui?") || s.contains("ORCH-EXITED")
    });
    if !seen.contains("ORCH-EXITED") {
        tmux.keys(&["s"]);
    }
    let end = tmux.wait("the TUI to quit", 20, |s| s.contains("ORCH-EXITED"));
    assert!(end.contains("as `orch-tui init` does"), "{end}");
    assert!(end.contains("1 tasks: 1 done"), "{end}");
}
