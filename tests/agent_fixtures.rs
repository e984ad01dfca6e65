//! The adapters' parsers on output recorded from the real CLIs (`tests/fixtures/agents/`,
//! recorded by `tests/agents_claude.rs` and `tests/agents_codex.rs` with
//! `ORCH_RECORD_FIXTURES=1`), and aider's documented output from a fake aider. These run
//! everywhere, CLIs installed or not.

mod agent_support;

use std::path::Path;
use std::time::Duration;

use orch_tui::agent::adapter::{self, LaunchContext};
use orch_tui::core::agent_event::{AgentEvent, LimitKind, PermissionKind, Spend, Tokens, TurnEnd};
use orch_tui::core::config::default_config;

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agents")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(adapter_name: &str, bytes: &[u8], chunk: usize) -> Vec<AgentEvent> {
    let mut p = adapter::parser_for(&default_config().agents[adapter_name]);
    let mut out = Vec::new();
    for c in bytes.chunks(chunk) {
        out.extend(p.feed(c));
    }
    out.extend(p.finish());
    out
}

fn turn_end(events: &[AgentEvent]) -> &TurnEnd {
    events
        .iter()
        .find_map(|e| match e {
            AgentEvent::TurnEnd(t) => Some(t),
            _ => None,
        })
        .expect("a turn end")
}

fn words(events: &[AgentEvent]) -> Option<String> {
    turn_end(events).failure.as_ref().map(|f| f.words())
}

#[test]
fn claude_recorded_spend_settles_on_total_cost_usd_whatever_the_chunking() {
    let raw = fixture("claude/spend.out");
    let total = String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .find(|v| v["type"] == "result")
        .and_then(|v| v["total_cost_usd"].as_f64())
        .expect("result with total_cost_usd");
    for chunk in [1, 7, 4096, raw.len()] {
        let events = parse("claude", &raw, chunk);
        let mut s = Spend::default();
        events.iter().for_each(|e| s.apply(e));
        assert_eq!(s.cost_usd, total, "chunk {chunk}");
        assert_eq!(s.tokens.output, 100_000, "chunk {chunk}");
        assert_eq!(s.tokens.input, 200, "chunk {chunk}");
    }
}

#[test]
fn claude_recorded_failures_limits_and_refusals() {
    assert_eq!(
        words(&parse("claude", &fixture("claude/fail-429.out"), 64)).as_deref(),
        Some("API 429 rate limit")
    );
    assert_eq!(
        words(&parse("claude", &fixture("claude/fail-500.out"), 64)).as_deref(),
        Some("API 500")
    );
    assert_eq!(
        words(&parse("claude", &fixture("claude/fail-401.out"), 64)).as_deref(),
        Some("auth 401")
    );
    assert_eq!(
        words(&parse("claude", &fixture("claude/max-turns.out"), 64)).as_deref(),
        Some("max turns")
    );
    let limit = parse("claude", &fixture("claude/limit.out"), 64);
    assert!(
        limit
            .iter()
            .any(|e| matches!(e, AgentEvent::Limit(l) if l.kind == LimitKind::Usage))
    );
    // A plain 429 is a rate limit (the account may pause), not a usage limit.
    let rate = parse("claude", &fixture("claude/fail-429.out"), 64);
    assert!(
        rate.iter()
            .any(|e| matches!(e, AgentEvent::Limit(l) if l.kind == LimitKind::Rate))
    );
    let denied = parse("claude", &fixture("claude/denied.out"), 64);
    assert_eq!(turn_end(&denied).denials.len(), 1);
    assert!(
        turn_end(&denied).ok,
        "Claude calls a refused run a success: the denial is the signal"
    );
    assert!(denied.iter().any(|e| matches!(e, AgentEvent::Permission(p) if p.kind == PermissionKind::Denied && p.tool == "Write")));
}

#[test]
fn codex_recorded_usage_limits_and_failures() {
    let events = parse("codex", &fixture("codex/spend.out"), 33);
    let usage: Vec<Tokens> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Usage { tokens, .. } => Some(*tokens),
            _ => None,
        })
        .collect();
    assert_eq!(
        usage,
        [Tokens {
            input: 200,
            output: 1400,
            ..Tokens::default()
        }]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::Session { .. }))
    );
    // Codex's stderr shares the PTY: shown, never mistaken for JSON.
    assert!(turn_end(&events).ok);
    let resumed = adapter::codex::resumed_parser(
        None,
        Tokens {
            input: 200,
            output: 1400,
            ..Tokens::default()
        },
    );
    let mut p = resumed;
    let mut ev = p.feed(&fixture("codex/resume.out"));
    ev.extend(p.finish());
    let own: Vec<Tokens> = ev
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Usage { tokens, .. } => Some(*tokens),
            _ => None,
        })
        .collect();
    assert_eq!(
        own,
        [Tokens {
            input: 200,
            output: 1000,
            ..Tokens::default()
        }]
    );
    let limit = parse("codex", &fixture("codex/limit.out"), 64);
    assert!(limit.iter().any(
        |e| matches!(e, AgentEvent::Limit(l) if l.kind == LimitKind::Usage && l.resets.is_some())
    ));
    assert_eq!(
        words(&parse("codex", &fixture("codex/fail-429.out"), 64)).as_deref(),
        Some("API 429 rate limit")
    );
    assert_eq!(
        words(&parse("codex", &fixture("codex/fail-401.out"), 64)).as_deref(),
        Some("auth 401")
    );
    assert_eq!(
        words(&parse("codex", &fixture("codex/fail-500.out"), 64)).as_deref(),
        Some("API server error")
    );
}

/// A FAKE aider (a shell script, not the real CLI): it prints what aider's source prints after
/// each reply, so the built-in aider profile and parser run end to end in a PTY.
const FAKE_AIDER: &str = r#"#!/bin/sh
# fake aider for orch-tui's tests: documented output only, no model.
for a in "$@"; do [ "$prev" = "--message-file" ] && msg="$a"; prev="$a"; done
[ -f "$msg" ] || { echo "no message file" >&2; exit 2; }
printf 'Aider v0.86.0 (fake)\n'
printf 'Applied edit to notes.txt\n'
printf 'Tokens: 2.5k sent, 120 received. Cost: $0.0081 message, $0.0081 session.\n'
printf 'Tokens: 12k sent, 2.0k cache write, 8.2k cache hit, 1.1k received.\nCost: $0.05 message, $0.0581 session.\n'
"#;

#[test]
fn fake_aider_output_gives_usage_and_session_cost() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let fake = bin.join("aider");
    std::fs::write(&fake, FAKE_AIDER).expect("fake aider");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work");
    let prompt_file = dir.path().join("prompt.md");
    std::fs::write(&prompt_file, "add notes").expect("prompt");
    let profile = default_config().agents["aider"].clone();
    let launch = adapter::launch(
        &profile,
        &LaunchContext {
            prompt: "add notes",
            prompt_file: &prompt_file,
            task: "t1",
            worktree: &work,
            orch_bin: Path::new(env!("CARGO_BIN_EXE_orch-tui")),
            attempt_dir: &dir.path().join("logs"),
            resume: None,
            max_budget_usd: None,
        },
    )
    .expect("launch");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = agent_support::run_in_pty(
        launch.argv,
        &work,
        vec![("PATH".into(), path)],
        &dir.path().join("logs"),
        Duration::from_secs(30),
    );
    assert_eq!(
        run.exit.code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.raw)
    );
    let events = parse("aider", &run.raw, 16);
    let mut s = Spend::default();
    events.iter().for_each(|e| s.apply(e));
    assert_eq!(s.cost_usd, 0.0581, "the session total aider printed last");
    assert_eq!(s.tokens.output, 1220);
    assert_eq!(s.tokens.cache_read, 8200);
}
