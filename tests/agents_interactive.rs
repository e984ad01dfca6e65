//! The real Claude Code CLI (pinned), run INTERACTIVELY by the real supervisor against the
//! mock API: what the user sees in `status --json` — a first-run dialog is an inbox item within
//! seconds of the agent's start, with the rule that fired; a permission request waits in the
//! inbox until `orch-tui answer`, or is answered by a `[permissions]` rule; every decision is an
//! event.

mod agent_support;
mod common;
mod e2e_support;
mod interactive_support;

use std::path::Path;
use std::time::{Duration, Instant};

use agent_support::{AgentHome, Cli, MockServer, require};
use e2e_support::{Repo, task_of, wait_for};
use interactive_support::{LIMIT, Rig, config, rig};
use serde_json::Value;

#[test]
fn claude_interactive_trust_dialog_is_an_inbox_item_and_trusting_the_run_answers_it() {
    let Some(bin) = require(
        "claude_interactive_trust_dialog_is_an_inbox_item_and_trusting_the_run_answers_it",
        Cli::Claude,
    ) else {
        return;
    };
    // The run's worktrees are not trusted in this HOME: Claude opens with its trust dialog.
    let r = rig(&bin);
    let run = r.start("", "Write it.\n@mock write hi.txt: hi");
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

    // The human trusts the run's worktrees: orch-tui answers the dialog, the agent works.
    let out = r
        .repo
        .orch(&["answer", "t", "trust"], Duration::from_secs(30));
    assert_eq!(out.code, 0, "{}", out.show());
    let wt = r.repo.dir.join(".orch/worktrees/t-1");
    wait_for(LIMIT, || wt.join("hi.txt").exists().then_some(()).ok_or(()))
        .unwrap_or_else(|()| panic!("the agent did not go on: {:#}", r.repo.status()));
    let typed = r
        .events("permission")
        .iter()
        .any(|e| e["data"]["decision"] == "trust" && e["actor"] == "supervisor");
    assert!(typed, "{:#?}", r.events("permission"));
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
    // Claude's notification can say "permission" before its dialog shows the call; the item
    // then names the call once the screen does (a loaded CI saw the first state).
    let item = r.inbox_item("asked.txt");
    assert_eq!(item["kind"], "permission", "{item:#}");
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

#[test]
fn codex_interactive_trust_and_approval_are_answered_from_the_inbox_by_typing() {
    let Some(bin) = require(
        "codex_interactive_trust_and_approval_are_answered_from_the_inbox_by_typing",
        Cli::Codex,
    ) else {
        return;
    };
    let r = Rig {
        cli: Cli::Codex,
        repo: Repo::new(),
        home: AgentHome::new(&[], true),
        mock: MockServer::start("mock_openai.py"),
        bin: bin.to_path_buf(),
        // Read-only and asking: every edit waits for approval.
        interactive: vec!["codex", "-s", "read-only", "-a", "on-request", "{prompt}"],
    };
    let run = r.start(
        "price = { input = 1.0, output = 10.0 }\n",
        "Edit it.\n@mock write a.txt: hi",
    );
    r.inbox_item(r#""kind":"dialog""#);
    let out = r
        .repo
        .orch(&["answer", "t", "trust"], Duration::from_secs(30));
    assert_eq!(out.code, 0, "{}", out.show());
    // Codex's notification ("Codex wants to edit a.txt", OSC 9: its pane is unseen) tells the
    // wait first; the screen then names the call.
    let item = r.inbox_item(r#""tool":"Edit""#);
    assert!(
        item["text"].as_str().unwrap_or("").contains("a.txt"),
        "the call on screen: {item:#}"
    );
    let out = r
        .repo
        .orch(&["answer", "t", "allow"], Duration::from_secs(30));
    assert_eq!(out.code, 0, "{}", out.show());
    let wt = r.repo.dir.join(".orch/worktrees/t-1");
    wait_for(LIMIT, || wt.join("a.txt").exists().then_some(()).ok_or(()))
        .unwrap_or_else(|()| panic!("the approved edit was not made: {:#}", r.repo.status()));
    let answers: Vec<Value> = r
        .events("permission")
        .into_iter()
        .filter(|e| e["actor"] == "human")
        .collect();
    assert_eq!(answers.len(), 2, "trust and allow: {answers:#?}");
    drop(run);
}

/// A figure, not a check (`cargo test --test agents_interactive -- --ignored --nocapture`): the
/// supervisor's CPU while 4 interactive Claude agents sit idle at their prompts (their screens
/// watched, their hooks quiet).
#[test]
#[ignore]
fn figure_cpu_of_detection_with_four_idle_interactive_agents() {
    let Some(bin) = require(
        "figure_cpu_of_detection_with_four_idle_interactive_agents",
        Cli::Claude,
    ) else {
        return;
    };
    let mut r = rig(&bin);
    let trusted: Vec<std::path::PathBuf> = (1..=4)
        .map(|k| r.repo.dir.join(format!(".orch/worktrees/t{k}-1")))
        .collect();
    let refs: Vec<&Path> = trusted.iter().map(|p| p.as_path()).collect();
    r.home = AgentHome::new(&refs, true);
    let env = r.home.env(Cli::Claude, &r.bin, &r.mock);
    r.repo.init(&config(
        Cli::Claude,
        &r.bin,
        &env,
        &[],
        "max_concurrent = 4\n",
    ));
    let mut plan = String::from("[plan]\nname = \"idle\"\n");
    for k in 1..=4 {
        plan.push_str(&format!(
            "\n[[task]]\nid = \"t{k}\"\ntitle = \"t{k}\"\nprompt = \"Say hi.\"\n"
        ));
    }
    let p = r.repo.write_plan(&plan);
    let run = r
        .repo
        .spawn(&["run", "--headless", "--plan", p.to_str().expect("utf-8")]);
    wait_for(LIMIT, || {
        let s = r.repo.status();
        let idle = s["inbox"].as_array().map_or(0, |i| {
            // Idle at its prompt: "finished its turn", or a minute later Claude's own
            // "waiting for your input" (on a busy machine the first may be idle that long).
            i.iter().filter(|x| x["kind"] == "idle_turn").count()
        });
        (idle == 4).then_some(()).ok_or(s)
    })
    .unwrap_or_else(|s| panic!("4 idle agents: {s:#}"));
    let ticks = |pid: i32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let t0 = (ticks(run.pid()), Instant::now());
    std::thread::sleep(Duration::from_secs(20));
    let used = ticks(run.pid()) - t0.0;
    let secs = t0.1.elapsed().as_secs_f64();
    // Clock ticks are 1/100 s on Linux.
    eprintln!(
        "supervisor CPU with 4 idle interactive agents: {:.2}% of one core ({used} ticks in {secs:.1} s)",
        used as f64 / secs
    );
    drop(run);
}

/// A figure (`-- --ignored --nocapture`): from the moment Claude's trust dialog reaches the
/// terminal (its time in the attempt's `pty.cast`) to its waiting state in the ledger (the inbox
/// reads it from there), over `ORCH_FIGURE_RUNS` runs (default 10).
#[test]
#[ignore]
fn figure_dialog_on_screen_to_inbox_item() {
    let Some(bin) = require("figure_dialog_on_screen_to_inbox_item", Cli::Claude) else {
        return;
    };
    let runs: usize = std::env::var("ORCH_FIGURE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut lat = Vec::new();
    for _ in 0..runs {
        let r = rig(&bin);
        let run = r.start("", "Say hi.");
        r.inbox_item(r#""kind":"dialog""#);
        let ev = r.events("agent_state");
        let at = ev
            .iter()
            .find(|e| e["data"]["substatus"] == "waiting_dialog")
            .and_then(|e| e["ts_ms"].as_i64())
            .expect("the waiting event");
        drop(run);
        let cast =
            std::fs::read_to_string(r.repo.dir.join(".orch/logs/t/1/pty.cast")).expect("cast");
        let mut lines = cast.lines();
        let header: Value = serde_json::from_str(lines.next().expect("header")).expect("json");
        let base = header["timestamp"].as_f64().unwrap_or(0.0) * 1000.0;
        let mut seen = String::new();
        let shown = lines
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|e| {
                seen.push_str(e[2].as_str().unwrap_or(""));
                seen.contains("trust")
                    .then(|| base + e[0].as_f64().unwrap_or(0.0) * 1000.0)
            })
            .expect("the dialog in the cast");
        lat.push(at as f64 - shown);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    eprintln!(
        "trust dialog on screen → waiting recorded (inbox): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} runs",
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1],
        lat.len()
    );
}

/// Codex's approval prompt names the file it would edit; a `[permissions]` rule that covers it
/// answers on the human's behalf by typing Codex's key, and the decision is an event naming
/// the rule.
#[test]
fn codex_interactive_approval_is_answered_by_a_permission_rule_from_the_screen() {
    let Some(bin) = require(
        "codex_interactive_approval_is_answered_by_a_permission_rule_from_the_screen",
        Cli::Codex,
    ) else {
        return;
    };
    let r = Rig {
        cli: Cli::Codex,
        repo: Repo::new(),
        home: AgentHome::new(&[], true),
        mock: MockServer::start("mock_openai.py"),
        bin: bin.to_path_buf(),
        interactive: vec!["codex", "-s", "read-only", "-a", "on-request", "{prompt}"],
    };
    let run = r.start(
        "price = { input = 1.0, output = 10.0 }\n\n[permissions]\nallow = [\"Edit(a.txt)\"]\n",
        "Edit it.\n@mock write a.txt: hi",
    );
    r.inbox_item(r#""kind":"dialog""#);
    let out = r
        .repo
        .orch(&["answer", "t", "trust"], Duration::from_secs(30));
    assert_eq!(out.code, 0, "{}", out.show());
    let wt = r.repo.dir.join(".orch/worktrees/t-1");
    wait_for(LIMIT, || wt.join("a.txt").exists().then_some(()).ok_or(()))
        .unwrap_or_else(|()| panic!("the rule did not approve the edit: {:#}", r.repo.status()));
    let by_rule: Vec<Value> = r
        .events("permission")
        .into_iter()
        .filter(|e| e["actor"] == "supervisor" && e["data"]["decision"] == "allow")
        .collect();
    assert_eq!(by_rule.len(), 1, "{by_rule:#?}");
    assert_eq!(by_rule[0]["data"]["tool"], "Edit");
    assert_eq!(by_rule[0]["data"]["subject"], "a.txt");
    assert_eq!(by_rule[0]["data"]["rule"], "allow Edit(a.txt)");
    drop(run);
}
