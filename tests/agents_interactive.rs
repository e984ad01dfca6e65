//! The real Claude Code CLI (pinned), run INTERACTIVELY by the real supervisor against the
//! mock API: what the user sees in `status --json` — a first-run dialog is an inbox item within
//! seconds of the agent's start, with the rule that fired; a permission request waits in the
//! inbox until `orch-tui answer`, or is answered by a `[permissions]` rule; every decision is an
//! event.

mod agent_support;
mod common;
mod e2e_support;

use std::path::Path;
use std::time::{Duration, Instant};

use agent_support::{AgentHome, Cli, MockServer, require};
use e2e_support::{Repo, task_of, wait_for};
use orch_tui::core::config::default_config;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// Claude as an interactive profile: both argvs point at the pinned CLI.
fn config(bin: &Path, env: &[(String, String)], extra: &str) -> String {
    let p = &default_config().agents["claude"];
    let argv = |v: &[String]| -> String {
        let mut v = v.to_vec();
        v[0] = bin.join("claude").to_string_lossy().into_owned();
        v.iter().map(|a| toml_str(a)).collect::<Vec<_>>().join(", ")
    };
    let env: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml_str(v)))
        .collect();
    format!(
        "stop_grace = \"500ms\"\ndefault_agent = \"claude\"\n\n[funnel]\nautonomy = \"out-of-the-loop\"\n\n\
         [agents.claude]\nmode = \"interactive\"\ncommand = [{}]\ninteractive = [{}]\nenv = {{ {} }}\n\n{extra}",
        argv(&p.command),
        argv(&p.interactive),
        env.join(", ")
    )
}

fn plan(prompt: &str) -> String {
    format!(
        "[plan]\nname = \"interactive\"\n\n[[task]]\nid = \"t\"\ntitle = \"t\"\nprompt = {}\n",
        toml_str(prompt)
    )
}

struct Rig {
    repo: Repo,
    home: AgentHome,
    mock: MockServer,
    bin: std::path::PathBuf,
}

fn rig(bin: &Path) -> Rig {
    Rig {
        repo: Repo::new(),
        home: AgentHome::new(&[], true),
        mock: MockServer::start("mock_anthropic.py"),
        bin: bin.to_path_buf(),
    }
}

impl Rig {
    fn start(&self, extra: &str, prompt: &str) -> e2e_support::Running {
        let env = self.home.env(Cli::Claude, &self.bin, &self.mock);
        self.repo.init(&config(&self.bin, &env, extra));
        let p = self.repo.write_plan(&plan(prompt));
        self.repo
            .spawn(&["run", "--headless", "--plan", p.to_str().expect("utf-8")])
    }

    /// The first inbox item of task `t` whose JSON contains `needle` (e.g. its kind), within
    /// [`LIMIT`].
    fn inbox_item(&self, needle: &str) -> Value {
        wait_for(LIMIT, || {
            let s = self.repo.status();
            s["inbox"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find(|i| i["task"] == "t" && i.to_string().contains(needle))
                        .cloned()
                })
                .ok_or(s)
        })
        .unwrap_or_else(|s| {
            let logs = self.repo.dir.join(".orch/logs/t/1");
            let read = |f: &str| std::fs::read_to_string(logs.join(f)).unwrap_or_default();
            let screen = read("screen.log");
            let tail: String = screen.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
            panic!(
                "no inbox item with {needle:?} within {LIMIT:?}: {s:#}\n--- hooks ---\n{}\n--- screen ---\n{tail}",
                read("hooks.jsonl")
            )
        })
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        let out = self.repo.orch(
            &["events", "--json", "--task", "t"],
            Duration::from_secs(30),
        );
        out.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["kind"] == kind)
            .collect()
    }
}

#[test]
fn claude_interactive_trust_dialog_is_an_inbox_item_with_its_rule() {
    let Some(bin) = require(
        "claude_interactive_trust_dialog_is_an_inbox_item_with_its_rule",
        Cli::Claude,
    ) else {
        return;
    };
    // The run's worktrees are not trusted in this HOME: Claude opens with its trust dialog.
    let r = rig(&bin);
    let run = r.start("", "Say hi.");
    let t0 = Instant::now();
    let item = r.inbox_item(r#""kind":"dialog""#);
    let seen = t0.elapsed();
    assert!(
        item["text"].as_str().unwrap_or("").contains("trust"),
        "the screen's line is the item: {item:#}"
    );
    let s = r.repo.status();
    let t = task_of(&s, "t");
    assert_eq!(t["attempts"][0]["substatus"], "waiting_dialog", "{t:#}");
    // Which rule fired is recorded with the state change.
    let changes = r.events("agent_state");
    let waiting = changes
        .iter()
        .find(|e| e["data"]["substatus"] == "waiting_dialog")
        .unwrap_or_else(|| panic!("no waiting_dialog event: {changes:#?}"));
    assert_eq!(
        waiting["data"]["rule"], "screen:claude-trust-dialog",
        "{waiting:#}"
    );
    // From the attempt's start (Claude's own start-up included) to the state in the ledger.
    let started = t["attempts"][0]["started_ms"].as_i64().unwrap_or(0);
    let at = waiting["ts_ms"].as_i64().unwrap_or(0);
    eprintln!(
        "trust dialog: agent start → waiting_dialog recorded {} ms; run start → inbox seen {seen:?}",
        at - started
    );
    drop(run);
}

#[test]
fn claude_interactive_permission_from_the_inbox_and_a_rule_then_a_finished_turn_reviewed_on_done() {
    let Some(bin) = require(
        "claude_interactive_permission_from_the_inbox_and_a_rule_then_a_finished_turn_reviewed_on_done",
        Cli::Claude,
    ) else {
        return;
    };
    let mut r = rig(&bin);
    // Trust the worktrees' folder up front: this test is about the permission prompt.
    r.home = AgentHome::new(&[&r.repo.dir.join(".orch/worktrees/t-1")], true);
    let run = r.start(
        "price = { input = 3.0, cache_read = 3.0, cache_write = 3.0, output = 15.0 }\n\
         [permissions]\nallow = [\"Bash(python3 *ruled*)\"]\n",
        // (acceptEdits lets `touch` through without asking: python3 asks.)
        "Run them.\n@mock bash python3 -c 'open(\"asked.txt\", \"w\")'\n@mock bash python3 -c 'open(\"ruled.txt\", \"w\")'",
    );
    let item = r.inbox_item(r#""kind":"permission""#);
    assert!(
        item["text"].as_str().unwrap_or("").contains("asked.txt"),
        "{item:#}"
    );
    let answered = r
        .repo
        .orch(&["answer", "t", "allow"], Duration::from_secs(30));
    assert_eq!(answered.code, 0, "{}", answered.show());
    let wt = r.repo.dir.join(".orch/worktrees/t-1");
    wait_for(LIMIT, || {
        (wt.join("asked.txt").exists() && wt.join("ruled.txt").exists())
            .then_some(())
            .ok_or(())
    })
    .unwrap_or_else(|()| panic!("the allowed commands did not run: {:#}", r.repo.status()));
    let decisions: Vec<(String, String)> = r
        .events("permission")
        .iter()
        .filter(|e| e["data"]["decision"].is_string())
        .map(|e| {
            (
                e["data"]["decision"].as_str().unwrap_or("").to_string(),
                e["actor"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        decisions.contains(&("allow".into(), "human".into())),
        "{decisions:?}"
    );
    assert!(
        decisions.contains(&("allow".into(), "supervisor".into())),
        "the rule answered the second: {decisions:?}"
    );

    // The turn ended without `worker done`: it does not wait silently — its last message is
    // in the inbox, and the human's `done` sends the work to review (and on to the merge).
    let item = r.inbox_item(r#""kind":"idle_turn""#);
    assert!(
        item["text"].as_str().unwrap_or("").contains("Done."),
        "the agent's last message: {item:#}"
    );
    let done = r.repo.orch(&["done", "t"], Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.show());
    let out = run.wait(LIMIT);
    let t = r.repo.task("t");
    assert_eq!(out.code, 0, "{}\n{t:#}", out.show());
    assert_eq!(t["state"], "done", "{t:#}");
    assert_eq!(t["attempts"][0]["reported"], "done", "{t:#}");
    let merged = r.repo.git(&["ls-tree", "--name-only", "orch/integration"]);
    assert!(merged.contains("asked.txt"), "{merged}");
    // Its spend is the transcript's (an interactive Claude prints no totals), priced with the
    // profile's price, in the attempt and in the run's total alike.
    let hooks = std::fs::read_to_string(r.repo.dir.join(".orch/logs/t/1/hooks.jsonl")).unwrap();
    let transcript = hooks
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["transcript_path"].as_str().map(String::from))
        .expect("the hooks name the transcript");
    let tokens = orch_tui::agent::adapter::claude::transcript_tokens(
        &std::fs::read_to_string(&transcript).unwrap(),
    );
    let a = &t["attempts"][0];
    assert!(tokens.output > 0, "{tokens:?}");
    assert_eq!(
        a["tokens_in"].as_u64(),
        Some(tokens.input + tokens.cache_read + tokens.cache_write),
        "{a:#}"
    );
    assert_eq!(a["tokens_out"].as_u64(), Some(tokens.output), "{a:#}");
    let cost = (tokens.input + tokens.cache_read + tokens.cache_write) as f64 * 3.0 / 1e6
        + tokens.output as f64 * 15.0 / 1e6;
    assert!(
        (a["cost_usd"].as_f64().unwrap_or(0.0) - cost).abs() < 1e-9,
        "{a:#} vs {cost}"
    );
    let s = r.repo.status();
    assert_eq!(s["spend"]["cost_usd"], a["cost_usd"], "{s:#}");
    let again = r.repo.orch(&["done", "t"], Duration::from_secs(30));
    assert_eq!(again.code, 3, "nothing runs now: {}", again.show());
}
