//! The real Claude Code CLI (pinned, from `.ci/install-agent-clis`) against
//! `shared/tools/mock_anthropic.py`, started the way the engine starts it: the built-in
//! profile through `adapter::launch`, in a PTY, its output read by the claude parser.
//! Each run also records the fixture `tests/agent_fixtures.rs` replays
//! (`ORCH_RECORD_FIXTURES=1`).

mod agent_support;

use std::path::Path;
use std::time::Duration;

use agent_support::{
    AgentHome, Cli, MockServer, record_fixture, require, run_in_pty, scratch_repo,
};
use orch_tui::agent::adapter::{self, LaunchContext};
use orch_tui::core::agent_event::{
    AgentEvent, LimitKind, PaneKind, PermissionKind, Spend, TurnEnd,
};
use orch_tui::core::config::{AgentProfile, default_config};

const RUN: Duration = Duration::from_secs(120);

struct Outcome {
    events: Vec<AgentEvent>,
    raw: Vec<u8>,
    hooks: String,
    worktree: tempfile::TempDir,
    exit_code: Option<i32>,
}

impl Outcome {
    fn turn_end(&self) -> &TurnEnd {
        self.events
            .iter()
            .find_map(|e| match e {
                AgentEvent::TurnEnd(t) => Some(t),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no turn end in {}", String::from_utf8_lossy(&self.raw)))
    }
}

/// Runs `profile` headless on `prompt` against the mock, as the engine would.
fn run(bin: &Path, profile: &AgentProfile, prompt: &str) -> Outcome {
    let mock = MockServer::start("mock_anthropic.py");
    let worktree = scratch_repo();
    let home = AgentHome::new(&[worktree.path()], true);
    let logs = tempfile::tempdir().expect("logs");
    let prompt_file = logs.path().join("prompt.md");
    std::fs::write(&prompt_file, prompt).expect("prompt");
    let launch = adapter::launch(
        profile,
        &LaunchContext {
            prompt,
            prompt_file: &prompt_file,
            task: "t1",
            worktree: worktree.path(),
            orch_bin: Path::new(env!("CARGO_BIN_EXE_orch-tui")),
            attempt_dir: logs.path(),
            resume: None,
            max_budget_usd: None,
        },
    )
    .expect("launch");
    let mut env: Vec<(String, String)> = profile.env.clone().into_iter().collect();
    env.extend(home.env(Cli::Claude, bin, &mock));
    env.extend(launch.env.clone());
    let r = run_in_pty(launch.argv, worktree.path(), env, logs.path(), RUN);
    let mut parser = adapter::parser_for(profile);
    // Fed in small chunks, as a PTY hands them over.
    let mut events = Vec::new();
    for chunk in r.raw.chunks(777) {
        events.extend(parser.feed(chunk));
    }
    events.extend(parser.finish());
    let hooks = std::fs::read_to_string(logs.path().join("hooks.jsonl")).unwrap_or_default();
    Outcome {
        events,
        raw: r.raw,
        hooks,
        worktree,
        exit_code: r.exit.code,
    }
}

/// The `result` line's own figures, read apart from the adapter.
fn result_of(raw: &[u8]) -> serde_json::Value {
    String::from_utf8_lossy(raw)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .find(|v| v["type"] == "result")
        .expect("a result event")
}

fn spend(events: &[AgentEvent]) -> Spend {
    let mut s = Spend::default();
    for e in events {
        s.apply(e);
    }
    s
}

#[test]
fn claude_spend_equals_its_total_cost_and_the_builtin_profile_does_work() {
    let Some(bin) = require(
        "claude_spend_equals_its_total_cost_and_the_builtin_profile_does_work",
        Cli::Claude,
    ) else {
        return;
    };
    let profile = default_config().agents["claude"].clone();
    let out = run(
        &bin,
        &profile,
        "Write the greeting.\n@mock write hello.txt: hi\n@mock tokens 50000",
    );
    record_fixture("claude/spend.out", &out.raw);
    assert_eq!(
        out.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.raw)
    );
    // The built-in profile's permission mode lets it edit its worktree.
    assert_eq!(
        std::fs::read_to_string(out.worktree.path().join("hello.txt"))
            .ok()
            .as_deref(),
        Some("hi\n")
    );
    let result = result_of(&out.raw);
    let s = spend(&out.events);
    assert!(s.settled);
    assert_eq!(
        s.cost_usd,
        result["total_cost_usd"].as_f64().unwrap(),
        "recorded cost = the agent's total_cost_usd, exactly"
    );
    assert_eq!(
        s.tokens.output,
        result["usage"]["output_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        s.tokens.output, 100_000,
        "two API calls of 50,000 output tokens each"
    );
    // One usage event per API call, with the real output count (not the placeholder 1).
    let calls: Vec<u64> = out
        .events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Usage { tokens, .. } => Some(tokens.output),
            _ => None,
        })
        .collect();
    assert_eq!(calls, [50_000, 50_000]);
    let end = out.turn_end();
    assert!(end.ok && end.failure.is_none());
    assert_eq!(end.last_message.as_deref(), Some("Done."));
    assert_eq!(end.session_id.as_deref(), result["session_id"].as_str());
    // The pane reads as text, not JSON.
    let pane: Vec<&str> = out
        .events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Pane(p) => Some(p.text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        pane.iter()
            .any(|l| l.starts_with("→ Write ") && l.ends_with("hello.txt")),
        "{pane:?}"
    );
    assert!(pane.iter().all(|l| !l.starts_with('{')), "{pane:?}");
    // The per-attempt --settings file's hooks reached `orch-tui hook`.
    for ev in ["SessionStart", "UserPromptSubmit", "PreToolUse", "Stop"] {
        assert!(
            out.hooks.contains(&format!("\"hook_event_name\":\"{ev}\"")),
            "no {ev} hook in {}",
            out.hooks
        );
    }
    assert!(out.hooks.contains("\"transcript_path\""));
}

#[test]
fn claude_api_failures_are_named_in_words() {
    let Some(bin) = require("claude_api_failures_are_named_in_words", Cli::Claude) else {
        return;
    };
    let profile = default_config().agents["claude"].clone();
    for (status, words) in [
        ("429", "API 429 rate limit"),
        ("500", "API 500"),
        ("401", "auth 401"),
    ] {
        let out = run(&bin, &profile, &format!("x\n@mock fail {status}"));
        record_fixture(&format!("claude/fail-{status}.out"), &out.raw);
        assert_eq!(out.exit_code, Some(1));
        let end = out.turn_end();
        assert!(!end.ok);
        assert_eq!(
            end.failure.as_ref().map(|f| f.words()).as_deref(),
            Some(words),
            "{status}"
        );
    }
}

#[test]
fn claude_usage_limit_is_a_limit_event() {
    let Some(bin) = require("claude_usage_limit_is_a_limit_event", Cli::Claude) else {
        return;
    };
    let profile = default_config().agents["claude"].clone();
    let out = run(&bin, &profile, "x\n@mock limit 30");
    record_fixture("claude/limit.out", &out.raw);
    let limit = out.events.iter().find_map(|e| match e {
        AgentEvent::Limit(l) => Some(l.clone()),
        _ => None,
    });
    let limit =
        limit.unwrap_or_else(|| panic!("no limit in {}", String::from_utf8_lossy(&out.raw)));
    assert_eq!(limit.kind, LimitKind::Usage);
    assert!(limit.text.contains("usage limit"), "{}", limit.text);
    assert_eq!(
        out.turn_end()
            .failure
            .as_ref()
            .map(|f| f.words())
            .as_deref(),
        Some("API 429 rate limit")
    );
}

#[test]
fn claude_refusals_and_turn_limits_are_reported() {
    let Some(bin) = require("claude_refusals_and_turn_limits_are_reported", Cli::Claude) else {
        return;
    };
    // Today's old profile: no permission mode, so Claude refuses the write and says "Done.".
    let mut bare = default_config().agents["claude"].clone();
    bare.command.truncate(bare.command.len() - 2);
    let out = run(&bin, &bare, "x\n@mock write a.txt: hi");
    record_fixture("claude/denied.out", &out.raw);
    assert_eq!(out.exit_code, Some(0));
    assert!(!out.worktree.path().join("a.txt").exists());
    let end = out.turn_end();
    assert_eq!(end.denials.len(), 1);
    assert_eq!(end.denials[0].tool, "Write");
    assert!(
        end.denials[0].subject.ends_with("a.txt"),
        "{:?}",
        end.denials
    );
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, AgentEvent::Permission(p) if p.kind == PermissionKind::Denied))
    );
    assert!(out.events.iter().any(|e| matches!(e, AgentEvent::Pane(p) if p.kind == PaneKind::Info && p.text.contains("refused"))));

    let mut short = default_config().agents["claude"].clone();
    short
        .command
        .extend(["--max-turns".to_string(), "1".to_string()]);
    let out = run(
        &bin,
        &short,
        "x\n@mock write a.txt: hi\n@mock write b.txt: hi",
    );
    record_fixture("claude/max-turns.out", &out.raw);
    assert_eq!(
        out.turn_end()
            .failure
            .as_ref()
            .map(|f| f.words())
            .as_deref(),
        Some("max turns")
    );
}
