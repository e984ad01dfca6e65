//! A permission request answered with one key from the TUI's inbox, end to end (the real
//! binary in tmux): a script agent raises a Claude `PermissionRequest` through the real
//! `orch-tui hook`, which waits for the answer; the inbox shows the call and the keys; `y`
//! allows it, and the hook hands the agent the decision.

mod common;
mod e2e_support;

use common::tmux::Tmux;
use e2e_support::{BIN, Repo, state_of, wait_for};
use std::time::Duration;

#[test]
fn y_in_the_inbox_allows_the_agents_permission_request() {
    let repo = Repo::new();
    let answer = repo.root.join("hook-answer.json");
    let payload = r#"{"hook_event_name":"PermissionRequest","session_id":"s","tool_name":"Bash","tool_input":{"command":"cargo test -q"}}"#;
    let script = format!(
        "out=$({BIN} hook claude --log hooks.jsonl '{payload}'); printf '%s' \"$out\" > {answer:?}; \
         echo done > done.txt"
    );
    let cmd = serde_json::to_string(&script).expect("json");
    repo.init(&format!(
        "stop_grace = \"200ms\"\ndefault_agent = \"asker\"\n\n[funnel]\nautonomy = \"out-of-the-loop\"\n\n\
         [agents.asker]\nadapter = \"generic\"\ncommand = [\"bash\", \"-c\", {cmd}]\n"
    ));
    let plan = repo.write_plan(
        "[plan]\nname = \"perm\"\n\n[[task]]\nid = \"t\"\ntitle = \"asks\"\nprompt = \"run the tests\"\n",
    );
    let run = format!(
        "cd {} && GIT_CONFIG_GLOBAL=/dev/null NO_COLOR=1 SHELL=/bin/sh {BIN} run --plan {}",
        repo.dir.display(),
        plan.display()
    );
    let Some(t) = Tmux::start("perm", &run, 120, 30) else {
        return;
    };
    t.wait("the request in the inbox", 40, |s| s.contains("inbox 1"));
    t.keys(&["i"]);
    let screen = t.wait("the request and its keys", 10, |s| {
        s.contains("cargo test -q") && s.contains("y allow")
    });
    assert!(screen.contains("d deny"), "the keys are shown:\n{screen}");
    t.keys(&["y"]);
    let got = wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&answer)
            .ok()
            .filter(|a| !a.is_empty())
            .ok_or(())
    })
    .unwrap_or_else(|()| panic!("the hook never got an answer:\n{}", t.screen()));
    assert!(got.contains("\"allow\""), "the agent is allowed: {got}");
    let r = wait_for(Duration::from_secs(40), || {
        let s = repo.status();
        (state_of(&s, "t") == "done").then_some(()).ok_or(s)
    });
    if let Err(s) = r {
        panic!(
            "the task did not finish after the answer: {s:#}\n{}",
            t.screen()
        );
    }
    t.keys(&["q"]);
}
