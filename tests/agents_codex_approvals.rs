//! The real Codex CLI (pinned), run INTERACTIVELY by the real supervisor against the mock API,
//! asked to run a shell command its own rules say to ask about (`prefix_rule … "prompt"` in
//! `$CODEX_HOME/rules`, the mock asks for a plain `touch out.txt`): its command-approval prompt.
//! The run is headless, so no pane is looked at: the supervisor tells Codex focus is out, Codex
//! notifies (OSC 9) when it wants approval, and that notification is the first layer that says
//! "waiting" (`orch-tui explain` names `osc` rule `codex-osc-approval`); the screen then names
//! the command, and a `[permissions]` rule answers by typing Codex's key — allow (`y`: the
//! command runs) or deny (Esc: it never runs). Each decision is an event naming the rule.

mod agent_support;
mod common;
mod e2e_support;
mod interactive_support;

use std::time::Duration;

use agent_support::{AgentHome, Cli, MockServer, require};
use e2e_support::{Repo, wait_for};
use interactive_support::{LIMIT, Rig};
use serde_json::Value;

const PROMPT: &str = "Run it.\n@mock bash touch out.txt";

/// Codex with the built-in interactive argv (`--sandbox workspace-write`), its worktree trusted,
/// its rules asking before any `touch`; `permissions` is the config's `[permissions]` table.
fn start(bin: &std::path::Path, permissions: &str) -> (Rig, e2e_support::Running) {
    let repo = Repo::new();
    let wt = repo.dir.join(".orch/worktrees/t-1");
    let home = AgentHome::new(&[wt.as_path()], true);
    home.codex_rules("prefix_rule(pattern = [\"touch\"], decision = \"prompt\")\n");
    let r = Rig {
        cli: Cli::Codex,
        repo,
        home,
        mock: MockServer::start("mock_openai.py"),
        bin: bin.to_path_buf(),
        interactive: Vec::new(),
    };
    let run = r.start(
        &format!("price = {{ input = 1.0, output = 10.0 }}\n\n[permissions]\n{permissions}\n"),
        PROMPT,
    );
    (r, run)
}

/// The supervisor's decision on the prompt, once made.
fn decision(r: &Rig) -> Value {
    wait_for(LIMIT, || {
        r.events("permission")
            .into_iter()
            .find(|e| e["actor"] == "supervisor" && e["data"]["decision"].is_string())
            .ok_or(())
    })
    .unwrap_or_else(|()| {
        panic!(
            "no rule answered the command prompt: {:#}\n{:#?}",
            r.repo.status(),
            r.events("agent_state")
        )
    })
}

/// OSC sequences, bells and focus-mode switches in the attempt's `pty.raw`, for failure messages.
fn terminal_signals(r: &Rig) -> Vec<String> {
    let raw = std::fs::read(r.repo.dir.join(".orch/logs/t/1/pty.raw")).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw);
    let mut out = Vec::new();
    for (i, _) in text.match_indices('\x1b') {
        let rest = &text[i + 1..];
        if rest.starts_with(']') {
            let end = rest.find(['\x07', '\x1b']).unwrap_or(rest.len());
            out.push(format!("OSC {}", &rest[1..end]));
        } else if rest.starts_with("[?1004") {
            out.push(rest.chars().take(7).collect());
        }
    }
    out.push(format!("{} bells", text.matches('\x07').count()));
    out
}

/// The first wait was told by Codex's notification, not by its screen.
fn assert_osc_said_waiting_first(r: &Rig) {
    let states = r.events("agent_state");
    let first_wait = states
        .iter()
        .find(|e| e["data"]["substatus"] == "waiting_permission")
        .unwrap_or_else(|| {
            panic!(
                "never waiting for permission: {states:#?}\nwhat Codex sent besides text: {:?}",
                terminal_signals(r)
            )
        });
    assert_eq!(
        first_wait["data"]["rule"], "osc:codex-osc-approval",
        "{states:#?}"
    );
    assert!(
        first_wait["data"]["excerpt"]
            .as_str()
            .unwrap_or("")
            .contains("Approval requested: touch out.txt"),
        "{first_wait:#}"
    );
    let out = r.repo.orch(&["explain", "t"], Duration::from_secs(30));
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("osc rule `codex-osc-approval`"),
        "{}",
        out.stdout
    );
}

#[test]
fn codex_command_approval_is_notified_unfocused_and_an_allow_rule_runs_it() {
    let Some(bin) = require(
        "codex_command_approval_is_notified_unfocused_and_an_allow_rule_runs_it",
        Cli::Codex,
    ) else {
        return;
    };
    let (r, run) = start(&bin, "allow = [\"Bash(touch *)\"]");
    let d = decision(&r);
    assert_eq!(d["data"]["decision"], "allow", "{d:#}");
    assert_eq!(d["data"]["tool"], "Bash");
    assert_eq!(d["data"]["subject"], "touch out.txt");
    assert_eq!(d["data"]["rule"], "allow Bash(touch *)");
    let out = r.repo.dir.join(".orch/worktrees/t-1/out.txt");
    wait_for(LIMIT, || out.exists().then_some(()).ok_or(()))
        .unwrap_or_else(|()| panic!("the allowed command did not run: {:#}", r.repo.status()));
    assert_osc_said_waiting_first(&r);
    drop(run);
}

#[test]
fn codex_command_approval_refused_by_a_deny_rule_never_runs() {
    let Some(bin) = require(
        "codex_command_approval_refused_by_a_deny_rule_never_runs",
        Cli::Codex,
    ) else {
        return;
    };
    let (r, run) = start(&bin, "deny = [\"Bash(touch *)\"]");
    let d = decision(&r);
    assert_eq!(d["data"]["decision"], "deny", "{d:#}");
    assert_eq!(d["data"]["subject"], "touch out.txt");
    assert_eq!(d["data"]["rule"], "deny Bash(touch *)");
    // Refused (Esc), Codex ends its turn and sits at its prompt: no longer waiting.
    wait_for(LIMIT, || {
        let states = r.events("agent_state");
        states
            .last()
            .filter(|e| e["data"]["substatus"] == "idle")
            .cloned()
            .ok_or(states)
    })
    .unwrap_or_else(|s| panic!("Codex did not go back to its prompt: {s:#?}"));
    assert!(
        !r.repo.dir.join(".orch/worktrees/t-1/out.txt").exists(),
        "the refused command ran"
    );
    assert_osc_said_waiting_first(&r);
    drop(run);
}
