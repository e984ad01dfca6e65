//! The real Claude Code CLI (pinned), interactive, against the mock API, survives a `kill -9` of
//! its supervisor mid-turn (issue 10): the same claude pid is adopted by the next run, its turn
//! ends there, and the task is done and merged in one attempt.

mod agent_support;
mod common;
mod e2e_support;

use std::time::Duration;

use agent_support::{AgentHome, Cli, MockServer, require};
use e2e_support::{Repo, wait_for};
use orch_tui::core::config::default_config;

const LIMIT: Duration = Duration::from_secs(90);

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

fn alive(pid: i64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next().map(str::to_owned));
    matches!(state.as_deref(), Some(s) if s != "Z" && s != "X")
}

#[test]
fn claude_interactive_survives_kill_9_mid_turn_and_the_next_run_adopts_it_to_the_merge() {
    let Some(bin) = require(
        "claude_interactive_survives_kill_9_mid_turn_and_the_next_run_adopts_it_to_the_merge",
        Cli::Claude,
    ) else {
        return;
    };
    let repo = Repo::new();
    let home = AgentHome::new(&[&repo.dir.join(".orch/worktrees/t-1")], true);
    let mock = MockServer::start("mock_anthropic.py");
    let env: Vec<String> = home
        .env(Cli::Claude, &bin, &mock)
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml_str(v)))
        .collect();
    let p = default_config().agents["claude"].clone();
    let argv = |v: &[String]| -> String {
        let mut v = v.to_vec();
        v[0] = bin.join("claude").to_string_lossy().into_owned();
        v.iter().map(|a| toml_str(a)).collect::<Vec<_>>().join(", ")
    };
    repo.init(&format!(
        "stop_grace = \"500ms\"\ndefault_agent = \"claude\"\n\n[funnel]\nautonomy = \"out-of-the-loop\"\n\n\
         [agents.claude]\nmode = \"interactive\"\ncommand = [{}]\ninteractive = [{}]\nenv = {{ {} }}\n",
        argv(&p.command),
        argv(&p.interactive),
        env.join(", ")
    ));
    // A slow model: every reply takes 3 s, so the turn is under way when the supervisor dies.
    let plan = repo.write_plan(&format!(
        "[plan]\nname = \"adopt\"\n\n[[task]]\nid = \"t\"\ntitle = \"t\"\nprompt = {}\n",
        toml_str("Write it.\n@mock sleep 3\n@mock write hi.txt: hi")
    ));
    let run = repo.spawn(&["run", "--headless", "--plan", plan.to_str().unwrap()]);
    // Mid-turn: its prompt was submitted (the hook says so) and the model has not answered.
    let hooks = repo.dir.join(".orch/logs/t/1/hooks.jsonl");
    let busy = wait_for(LIMIT, || {
        let s = repo.status();
        let t = s["tasks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["id"] == "t"))
            .cloned()
            .unwrap_or_default();
        let a = t["attempts"][0].clone();
        let submitted =
            std::fs::read_to_string(&hooks).is_ok_and(|h| h.contains("UserPromptSubmit"));
        if a["pid"].is_i64() && submitted {
            Ok(a)
        } else {
            Err(t)
        }
    });
    let a = busy.unwrap_or_else(|t| panic!("never at work: {t:#}\n{}", run.stdout_now()));
    assert!(
        !repo.dir.join(".orch/worktrees/t-1/hi.txt").exists(),
        "the turn is still under way"
    );
    let pid = a["pid"].as_i64().unwrap_or(0);
    run.kill9();
    assert!(alive(pid), "claude died with the supervisor");

    let rerun = repo.spawn(&["run", "--headless"]);
    let adopted = wait_for(LIMIT, || {
        let out = rerun.stdout_now();
        out.contains("adopted").then_some(()).ok_or(out)
    });
    assert!(adopted.is_ok(), "{adopted:?}");
    // The turn ends in the adopted session; the human's `done` sends it on to the merge.
    let wt = repo.dir.join(".orch/worktrees/t-1");
    let wrote = wait_for(LIMIT, || wt.join("hi.txt").exists().then_some(()).ok_or(()));
    assert!(
        wrote.is_ok(),
        "the turn never ended: {}",
        rerun.stdout_now()
    );
    let idle = wait_for(LIMIT, || {
        let s = repo.status();
        let waits = s["inbox"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["task"] == "t"));
        waits.then_some(()).ok_or(s)
    });
    assert!(idle.is_ok(), "{idle:#?}");
    let done = repo.orch(&["done", "t"], Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.show());
    let out = rerun.wait(LIMIT);
    let t = repo.task("t");
    assert_eq!(out.code, 0, "{}\n{t:#}", out.show());
    assert_eq!(t["state"], "done", "{t:#}");
    let agents: Vec<_> = t["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["role"] == "agent")
        .collect();
    assert_eq!(agents.len(), 1, "{t:#}");
    assert_eq!(agents[0]["pid"].as_i64(), Some(pid), "the same claude");
    let merged = repo.git(&["ls-tree", "--name-only", "orch/integration"]);
    assert!(merged.contains("hi.txt"), "{merged}");
    repo.assert_no_agents_left(LIMIT);
}
