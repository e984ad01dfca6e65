//! The real Claude Code and Codex CLIs (pinned) run by the real supervisor (`orch-tui run
//! --headless`) against the mock APIs: what the user sees in `status --json` after each run —
//! spend equal to the agent's own totals, a cost budget that stops and escalates and an
//! extension that continues the same conversation, a usage limit that pauses and resumes by
//! itself without counting a failure, failures in the agent's words, a retry that resumes the
//! same session, a paused headless run ended and its conversation resumed.

mod agent_support;
mod common;
mod e2e_support;

use std::path::Path;
use std::time::Duration;

use agent_support::{AgentHome, Cli, MockServer, require};
use e2e_support::{Repo, task_of};
use orch_tui::core::config::default_config;
use serde_json::Value;

const RUN: Duration = Duration::from_secs(240);

/// A TOML inline table of the agent's environment (the temporary HOME, the mock, ...).
fn env_table(env: &[(String, String)]) -> String {
    let items: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml_str(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// The built-in profile of `cli`, its program given by full path, its environment the test's.
fn config(cli: Cli, bin: &Path, env: &[(String, String)], extra: &str) -> String {
    let name = cli.program();
    let mut cmd = default_config().agents[name].command.clone();
    cmd[0] = bin.join(name).to_string_lossy().into_owned();
    // A test that runs shell steps lets the agent run them (acceptEdits allows edits only).
    if extra.contains("# bash") {
        for a in &mut cmd {
            if a == "acceptEdits" {
                *a = "bypassPermissions".into();
            }
        }
    }
    let cmd: Vec<String> = cmd.iter().map(|a| toml_str(a)).collect();
    let price = if cli == Cli::Codex {
        "price = { input = 1.0, output = 10.0 }\n"
    } else {
        ""
    };
    format!(
        "stop_grace = \"500ms\"\ndefault_agent = \"{name}\"\n\n[retry]\nbackoff_base = \"10ms\"\nbackoff_cap = \"50ms\"\n\n\
         [funnel]\nautonomy = \"out-of-the-loop\"\n\n[agents.{name}]\ncommand = [{}]\nenv = {}\n{price}\n{extra}",
        cmd.join(", "),
        env_table(env)
    )
}

fn plan(tasks: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("[plan]\nname = \"real\"\n\n");
    for (id, prompt, extra) in tasks {
        s.push_str(&format!(
            "[[task]]\nid = \"{id}\"\ntitle = \"{id}\"\nprompt = {}\n{extra}\n",
            toml_str(prompt)
        ));
    }
    s
}

struct Rig {
    repo: Repo,
    _home: AgentHome,
    _mock: MockServer,
}

fn rig(cli: Cli, bin: &Path, extra: &str) -> Rig {
    let mock = MockServer::start(match cli {
        Cli::Claude => "mock_anthropic.py",
        Cli::Codex => "mock_openai.py",
    });
    let home = AgentHome::new(&[], true);
    if cli == Cli::Codex {
        home.use_openai_mock(&mock);
    }
    let repo = Repo::new();
    repo.init(&config(cli, bin, &home.env(cli, bin, &mock), extra));
    Rig {
        repo,
        _home: home,
        _mock: mock,
    }
}

fn run(repo: &Repo, plan_text: Option<&str>) -> e2e_support::Out {
    let mut args = vec!["run", "--headless"];
    let p;
    if let Some(text) = plan_text {
        p = repo.write_plan(text);
        args.extend(["--plan", p.to_str().expect("utf-8 path")]);
    }
    repo.orch(&args, RUN)
}

/// The `result` events of an attempt's raw output (Claude), in order.
fn results(repo: &Repo, task: &str, n: u32) -> Vec<Value> {
    let raw =
        std::fs::read(repo.dir.join(format!(".orch/logs/{task}/{n}/pty.raw"))).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v["type"] == "result")
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn claude_spend_is_its_total_a_cost_budget_escalates_and_an_extension_continues_the_conversation() {
    let Some(bin) = require(
        "claude_spend_is_its_total_a_cost_budget_escalates_and_an_extension_continues_the_conversation",
        Cli::Claude,
    ) else {
        return;
    };
    let r = rig(Cli::Claude, &bin, "");
    // Each reply costs about $1 (50,000 output tokens): the budget of $0.50 runs out at the first.
    let out = run(
        &r.repo,
        Some(&plan(&[(
            "greet",
            "Write the greeting.\n@mock write hello.txt: hi\n@mock tokens 50000",
            "budget = { cost_usd = 0.5 }",
        )])),
    );
    let t = r.repo.task("greet");
    assert_eq!(out.code, 1, "{}\n{t:#}", out.show());
    assert_eq!(t["state"], "escalated", "{t:#}");
    let reason = t["reason"].as_str().unwrap_or("");
    assert!(reason.contains("cost budget exhausted"), "{reason}");
    assert!(reason.contains("orch-tui extend greet --cost"), "{reason}");
    let a1 = &t["attempts"][0];
    assert_eq!(a1["state"], "killed", "{t:#}");
    // Recorded spend = what Claude itself said it cost (it stopped at the --max-budget-usd it
    // was given, or orch-tui stopped it: either way its own figure is the record).
    let first = results(&r.repo, "greet", 1);
    if let Some(res) = first.last() {
        assert_eq!(f(&a1["cost_usd"]), f(&res["total_cost_usd"]), "{t:#}");
    }
    assert!(f(&a1["cost_usd"]) >= 0.5, "{t:#}");
    let session = a1["session"].as_str().expect("a session id").to_string();
    let s = r.repo.status();
    assert_eq!(f(&s["spend"]["cost_usd"]), f(&a1["cost_usd"]), "{s:#}");

    // Extend: the next attempt continues the first in its worktree and conversation.
    let out = r.repo.orch(&["extend", "greet", "--cost", "5"], RUN);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = run(&r.repo, None);
    let t = r.repo.task("greet");
    assert_eq!(out.code, 0, "{}\n{t:#}", out.show());
    assert_eq!(t["state"], "done", "{t:#}");
    let a2 = &t["attempts"][1];
    assert_eq!(a2["continues"], a1["id"], "{t:#}");
    assert_eq!(a2["worktree"], a1["worktree"], "{t:#}");
    assert_eq!(a2["session"].as_str(), Some(session.as_str()), "{t:#}");
    // Claude's total counts the whole conversation; the attempt's spend is its own share.
    let second = results(&r.repo, "greet", 2);
    let total = f(&second.last().expect("a result")["total_cost_usd"]);
    assert!(
        (f(&a1["cost_usd"]) + f(&a2["cost_usd"]) - total).abs() < 1e-9,
        "{} + {} != {total}",
        a1["cost_usd"],
        a2["cost_usd"]
    );
    assert_eq!(
        r.repo.git(&["show", "orch/integration:hello.txt"]),
        "hi",
        "the work merged"
    );
}

#[test]
fn claude_usage_limit_pauses_the_account_and_the_work_resumes_without_a_failure() {
    let Some(bin) = require(
        "claude_usage_limit_pauses_the_account_and_the_work_resumes_without_a_failure",
        Cli::Claude,
    ) else {
        return;
    };
    // The mock answers 429 for 3 s after the first request; Claude gives no reset time, so
    // orch-tui waits its configured 4 s and the continued attempt succeeds.
    let r = rig(Cli::Claude, &bin, "[limits]\nwait = \"4s\"\n");
    let out = run(
        &r.repo,
        Some(&plan(&[(
            "lim",
            "Write it.\n@mock limit 3\n@mock write done.txt: yes",
            "max_attempts = 1",
        )])),
    );
    let t = r.repo.task("lim");
    assert_eq!(out.code, 0, "{}\n{t:#}", out.show());
    assert_eq!(t["state"], "done", "{t:#}");
    assert_eq!(t["failures"], 0, "a limit is not a failure: {t:#}");
    let a = t["attempts"].as_array().expect("attempts");
    assert!(a.len() >= 2, "{t:#}");
    let (last, limited) = a.split_last().expect("attempts");
    assert_eq!(last["state"], "succeeded", "{t:#}");
    for (k, x) in limited.iter().enumerate() {
        assert_eq!(x["state"], "abandoned", "{t:#}");
        assert!(
            x["reason"].as_str().is_some_and(|r| r.contains("limit")),
            "{t:#}"
        );
        assert_eq!(
            a[k + 1]["continues"],
            x["id"],
            "each continues the last: {t:#}"
        );
        assert_eq!(a[k + 1]["session"], x["session"], "resumed: {t:#}");
    }
    let waited = a[1]["started_ms"].as_i64().unwrap_or(0) - a[0]["ended_ms"].as_i64().unwrap_or(0);
    assert!(waited >= 3500, "waited {waited} ms for the limit: {t:#}");
    assert!(
        out.stdout.contains("limited") || out.stdout.contains("limit:"),
        "the pause is said: {}",
        out.show()
    );
}

#[test]
fn claude_failures_are_in_its_words_and_a_retry_resumes_the_same_session() {
    let Some(bin) = require(
        "claude_failures_are_in_its_words_and_a_retry_resumes_the_same_session",
        Cli::Claude,
    ) else {
        return;
    };
    let r = rig(Cli::Claude, &bin, "# bash\n");
    // The first run reports a failure through `orch-tui worker fail` (then is stopped); the
    // retry continues it, and the same step passes the second time.
    let marker = r.repo.root.join("failed-once");
    let flaky = format!(
        "@mock bash test -f {0} || {{ touch {0}; \"$ORCH_BIN\" worker fail --reason flaky; sleep 30; }}",
        marker.display()
    );
    let out = run(
        &r.repo,
        Some(&plan(&[
            ("boom", "x\n@mock fail 500", "max_attempts = 1"),
            (
                "again",
                &format!("Write it.\n{flaky}\n@mock write a.txt: one"),
                "",
            ),
        ])),
    );
    let s = r.repo.status();
    let boom = task_of(&s, "boom");
    assert_eq!(boom["state"], "failed", "{}\n{boom:#}", out.show());
    let reason = boom["reason"].as_str().unwrap_or("");
    assert!(reason.contains("API 500"), "{reason}");
    let again = task_of(&s, "again");
    assert_eq!(again["state"], "done", "{again:#}");
    let a = again["attempts"].as_array().expect("attempts");
    let agents: Vec<&Value> = a.iter().filter(|x| x["role"] == "agent").collect();
    assert_eq!(agents.len(), 2, "the failure sent it back once: {again:#}");
    assert_eq!(agents[0]["reported"], "fail", "{again:#}");
    assert_eq!(
        agents[0]["reason"], "the agent reported failure",
        "{again:#}"
    );
    assert!(agents[0]["session"].is_string(), "{again:#}");
    assert_eq!(
        agents[1]["session"], agents[0]["session"],
        "the retry resumed the conversation: {again:#}"
    );
    assert_eq!(agents[1]["continues"], agents[0]["id"], "{again:#}");
    assert_eq!(agents[1]["worktree"], agents[0]["worktree"], "{again:#}");
}

#[test]
fn codex_spend_is_priced_from_its_turn_usage_and_its_usage_limit_pauses() {
    let Some(bin) = require(
        "codex_spend_is_priced_from_its_turn_usage_and_its_usage_limit_pauses",
        Cli::Codex,
    ) else {
        return;
    };
    let r = rig(Cli::Codex, &bin, "[limits]\nwait = \"4s\"\n");
    let out = run(
        &r.repo,
        Some(&plan(&[
            (
                "spend",
                "Write it.\n@mock write hello.txt: hi\n@mock tokens 700",
                "",
            ),
            (
                "lim",
                "Write it.\n@mock limit 2\n@mock write l.txt: yes",
                "max_attempts = 1",
            ),
        ])),
    );
    let s = r.repo.status();
    let t = task_of(&s, "spend");
    assert_eq!(t["state"], "done", "{}\n{s:#}", out.show());
    let a = &t["attempts"][0];
    // Two requests of 100 input and 700 output tokens, at $1 / $10 per million.
    assert_eq!(a["tokens_in"], 200, "{t:#}");
    assert_eq!(a["tokens_out"], 1400, "{t:#}");
    assert!((f(&a["cost_usd"]) - 0.0142).abs() < 1e-9, "{t:#}");
    assert!(a["session"].is_string(), "the thread id: {t:#}");
    let l = task_of(&s, "lim");
    assert_eq!(l["state"], "done", "{}\n{l:#}", out.show());
    assert_eq!(l["failures"], 0, "{l:#}");
    assert_eq!(l["attempts"][0]["state"], "abandoned", "{l:#}");
    assert_eq!(
        l["attempts"][1]["session"], l["attempts"][0]["session"],
        "{l:#}"
    );
}

/// The process is gone (no /proc entry, or a zombie nobody reaps yet).
fn gone(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// Runs one task of two scripted shell steps, each reply 2 s late (a slow model), pauses it
/// while the reply after the first step is awaited, checks that the agent was ended (not
/// frozen) with no failure counted, resumes it and waits for the run's end. The task as
/// `status --json` has it then, and the rig.
fn pause_mid_turn_and_resume(cli: Cli, bin: &Path) -> (Value, Rig) {
    let r = rig(cli, bin, "# bash\n");
    let prompt = "Log the steps.\n@mock sleep 2\n@mock bash echo one >> steps.log\n\
                  @mock bash echo two >> steps.log";
    let p = r.repo.write_plan(&plan(&[("t", prompt, "")]));
    let run = r
        .repo
        .spawn(&["run", "--headless", "--plan", p.to_str().expect("utf-8")]);
    let first = e2e_support::wait_for(RUN, || {
        // The plan is loaded by the run: no task row before that.
        let s = r.repo.status();
        let t = s["tasks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["id"] == "t").cloned())
            .unwrap_or_default();
        let a = t["attempts"][0].clone();
        let log = a["worktree"]
            .as_str()
            .and_then(|w| std::fs::read_to_string(Path::new(w).join("steps.log")).ok());
        match (a["pid"].as_i64(), log) {
            (Some(pid), Some(l)) if l.contains("one") => Ok(pid),
            _ => Err(t),
        }
    });
    let pid =
        first.unwrap_or_else(|t| panic!("never took its first step: {t:#}\n{}", run.stdout_now()));
    let out = r.repo.orch(&["pause", "t"], RUN);
    assert_eq!(out.code, 0, "{}", out.show());
    let ended = e2e_support::wait_for(RUN, || {
        let t = r.repo.task("t");
        let done = gone(pid) && t["attempts"][0]["state"] == "abandoned";
        done.then_some(()).ok_or(t)
    });
    ended.unwrap_or_else(|t| panic!("not ended at the pause: {t:#}\n{}", run.stdout_now()));
    let t = r.repo.task("t");
    assert_eq!(t["state"], "paused", "{t:#}");
    assert_eq!(t["failures"], 0, "a pause is no failure: {t:#}");
    assert!(
        t["reason"]
            .as_str()
            .is_some_and(|w| w.contains("ended at a pause")),
        "{t:#}"
    );
    assert!(
        run.stdout_now().contains("t: attempt 1 ended at a pause"),
        "{}",
        run.stdout_now()
    );
    let out = r.repo.orch(&["resume", "t"], RUN);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = run.wait(RUN);
    let t = r.repo.task("t");
    assert_eq!(out.code, 0, "{}\n{t:#}", out.show());
    assert_eq!(t["state"], "done", "{t:#}");
    let agents: Vec<Value> = t["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|x| x["role"] == "agent")
        .collect();
    assert_eq!(agents.len(), 2, "{t:#}");
    let (a1, a2) = (&agents[0], &agents[1]);
    assert_eq!(a2["continues"], a1["id"], "{t:#}");
    assert_eq!(a2["worktree"], a1["worktree"], "{t:#}");
    assert!(a1["session"].is_string(), "{t:#}");
    assert_eq!(a2["session"], a1["session"], "its session resumed: {t:#}");
    (t, r)
}

#[test]
fn a_paused_headless_claude_is_ended_and_resume_continues_its_conversation() {
    let Some(bin) = require(
        "a_paused_headless_claude_is_ended_and_resume_continues_its_conversation",
        Cli::Claude,
    ) else {
        return;
    };
    let (t, r) = pause_mid_turn_and_resume(Cli::Claude, &bin);
    // The mock plays the step after the tool results it is sent: the resumed conversation sends
    // the first step's result and gets the second step next (a fresh one would start again at
    // the first). The continued attempt's prompt repeats the task, so the script is played
    // twice over in that conversation.
    let log = r.repo.git(&["show", "orch/integration:steps.log"]);
    let steps: Vec<&str> = log.lines().collect();
    assert_eq!(
        steps.get(..2),
        Some(&["one", "two"][..]),
        "the conversation went on from its second step: {log}"
    );
    // Each attempt counts its own share of the conversation's cost (Claude's total counts it
    // all): nothing is counted twice.
    let total = f(&results(&r.repo, "t", 2).last().expect("a result")["total_cost_usd"]);
    let (a1, a2) = (&t["attempts"][0], &t["attempts"][1]);
    assert!(
        (f(&a1["cost_usd"]) + f(&a2["cost_usd"]) - total).abs() < 1e-9,
        "{t:#}"
    );
}

#[test]
fn a_paused_headless_codex_is_ended_and_resume_continues_its_thread() {
    let Some(bin) = require(
        "a_paused_headless_codex_is_ended_and_resume_continues_its_thread",
        Cli::Codex,
    ) else {
        return;
    };
    let (t, r) = pause_mid_turn_and_resume(Cli::Codex, &bin);
    let log = r.repo.git(&["show", "orch/integration:steps.log"]);
    assert!(log.contains("two"), "the work merged: {log}");
    // After `exec resume` Codex's usage is cumulative over the thread: the second attempt
    // counts only what goes beyond the first's.
    let raw = std::fs::read(r.repo.dir.join(".orch/logs/t/2/pty.raw")).unwrap_or_default();
    let last: Option<Value> = String::from_utf8_lossy(&raw)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find(|v| v["type"] == "turn.completed");
    let usage = &last.expect("a completed turn")["usage"];
    let thread_in = usage["input_tokens"].as_i64().unwrap_or(0);
    let (a1, a2) = (&t["attempts"][0], &t["attempts"][1]);
    let counted = a1["tokens_in"].as_i64().unwrap_or(0) + a2["tokens_in"].as_i64().unwrap_or(0);
    assert!(
        counted <= thread_in && a2["tokens_in"].as_i64().unwrap_or(0) > 0,
        "counted {counted} tokens in for a thread that used {thread_in}: {t:#}"
    );
}
