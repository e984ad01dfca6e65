//! An agent's escaped grandchild (issue #7, bug 6), through the real binary with a real agent in
//! a real PTY and a real git repository.

mod common;
mod e2e_support;

use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, state_of};

const RUN_LIMIT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------------------------
// Bug 6: a grandchild started with `setsid` outlived the time budget and every kill.

#[test]
fn a_setsid_grandchild_is_stopped_with_its_attempt() {
    let repo = Repo::new();
    // The agent leaves a grandchild in a session of its own that ignores SIGTERM, then waits.
    let config = format!(
        "default_agent = \"escaper\"\n{FAST_CONFIG}\n[agents.escaper]\n\
         command = [\"sh\", \"-c\", \"setsid sh -c 'trap \\\"\\\" TERM; while :; do sleep 1; done' & wait\"]\n\
         adapter = \"generic\"\n"
    );
    repo.init(&config);
    let p = repo.write_plan(
        "[plan]\nname = \"escape\"\n\n[[task]]\nid = \"e\"\ntitle = \"escape\"\nprompt = \"x\"\n\
         max_attempts = 1\nbudget = { time = \"1s\" }\n",
    );
    let out = repo.orch(
        &["run", "--headless", "--plan", p.to_str().unwrap()],
        RUN_LIMIT,
    );
    assert_eq!(out.code, 1, "the task runs out of time: {}", out.show());
    assert_eq!(state_of(&repo.status(), "e"), "failed", "{}", out.show());
    // Nothing of the attempt is left: not the agent, not its escaped grandchild.
    repo.assert_no_agents_left(Duration::from_secs(3));
}
