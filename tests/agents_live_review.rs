//! The real Claude Code CLI (pinned), run INTERACTIVELY by the real supervisor against the mock
//! API: its session stays alive through review, takes the human's reject note as its next turn
//! in the same conversation and process, and is ended cleanly after the merge (its exit command,
//! no signal); a budget stop ends a session the same way.

mod agent_support;
mod common;
mod e2e_support;

use std::path::Path;
use std::time::Duration;

use agent_support::{AgentHome, Cli, MockServer, require};
use e2e_support::{Repo, wait_for};
use orch_tui::core::config::default_config;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// The pinned Claude as an interactive profile; the human approves every task.
fn config(bin: &Path, env: &[(String, String)]) -> String {
    let p = default_config().agents["claude"].clone();
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
        "stop_grace = \"3s\"\ndefault_agent = \"claude\"\n\n[funnel]\nautonomy = \"in-the-loop\"\n\n\
         [agents.claude]\nmode = \"interactive\"\ncommand = [{}]\ninteractive = [{}]\nenv = {{ {} }}\n",
        argv(&p.command),
        argv(&p.interactive),
        env.join(", ")
    )
}

struct Rig {
    repo: Repo,
    _home: AgentHome,
    _mock: MockServer,
}

impl Rig {
    fn start(bin: &Path, task: &str) -> (Rig, e2e_support::Running) {
        let repo = Repo::new();
        // The worktrees' folders are trusted up front: this is about the review, not the dialog.
        let trusted = [
            repo.dir.join(".orch/worktrees/t-1"),
            repo.dir.join(".orch/worktrees/t-2"),
        ];
        let refs: Vec<&Path> = trusted.iter().map(|p| p.as_path()).collect();
        let home = AgentHome::new(&refs, true);
        let mock = MockServer::start("mock_anthropic.py");
        let env = home.env(Cli::Claude, bin, &mock);
        repo.init(&config(bin, &env));
        let plan =
            format!("[plan]\nname = \"live\"\n\n[[task]]\nid = \"t\"\ntitle = \"t\"\n{task}");
        let p = repo.write_plan(&plan);
        let run = repo.spawn(&["run", "--headless", "--plan", p.to_str().expect("utf-8")]);
        (
            Rig {
                repo,
                _home: home,
                _mock: mock,
            },
            run,
        )
    }

    /// Wait until task `t` satisfies `ok`; panic with the status otherwise.
    fn until(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        wait_for(LIMIT, || {
            // Not there until the run has loaded its plan.
            let s = self.repo.status();
            let t = s["tasks"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["id"] == "t"))
                .cloned()
                .unwrap_or(s);
            if ok(&t) { Ok(t) } else { Err(t) }
        })
        .unwrap_or_else(|t| {
            let screen = std::fs::read_to_string(self.repo.dir.join(".orch/logs/t/1/screen.log"))
                .unwrap_or_default();
            let tail: String = screen
                .chars()
                .rev()
                .take(2000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!("not {what} within {LIMIT:?}: {t:#}\n--- screen ---\n{tail}")
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

    fn human(&self, args: &[&str]) {
        let out = self.repo.orch(args, Duration::from_secs(30));
        assert_eq!(out.code, 0, "{args:?}: {}", out.show());
    }
}

fn attempt(t: &Value, n: u64) -> Value {
    t["attempts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["n"] == n && x["role"] == "agent"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn alive(pid: i64) -> bool {
    // A zombie has no cmdline left; one reaped has no folder.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[test]
fn claude_session_stays_alive_through_review_takes_the_reject_note_and_ends_after_the_merge() {
    let Some(bin) = require(
        "claude_session_stays_alive_through_review_takes_the_reject_note_and_ends_after_the_merge",
        Cli::Claude,
    ) else {
        return;
    };
    let (r, run) = Rig::start(&bin, "prompt = \"Write it.\\n@mock write a.txt: a\"\n");
    // Its turn ends at its prompt; the human says it is done: review, with the session alive.
    r.until("idle after its turn", |t| {
        attempt(t, 1)["substatus"] == "idle"
    });
    r.human(&["done", "t"]);
    let t = r.until("waiting for approval", |t| {
        t["state"] == "review" && t["stage"] == "human"
    });
    let pid = attempt(&t, 1)["pid"].as_i64().expect("its pid");
    assert!(alive(pid), "the session runs on through review: {t:#}");
    assert!(!r.events("kept_alive").is_empty());

    // The human rejects with a note: it is typed into the same session as its next turn.
    r.human(&[
        "reject",
        "t",
        "--note",
        "Also add the fix. @mock write fix.txt: fixed",
    ]);
    let wt = r.repo.dir.join(".orch/worktrees/t-1");
    wait_for(LIMIT, || {
        wt.join("fix.txt").exists().then_some(()).ok_or(())
    })
    .unwrap_or_else(|()| panic!("the note was not acted on: {:#}", r.repo.task("t")));
    let t = r.until("idle after its second turn", |t| {
        attempt(t, 2)["substatus"] == "idle"
    });
    let second = attempt(&t, 2);
    assert_eq!(second["pid"].as_i64(), Some(pid), "the same process: {t:#}");
    assert_eq!(
        second["session"],
        attempt(&t, 1)["session"],
        "the same conversation: {t:#}"
    );

    // One process, one log folder (the first attempt's); each attempt's view is its own turn
    // (a line is in the log once final: scrolled off, or at a quiet moment's snapshot).
    let logs = |n: &str| {
        let out = r
            .repo
            .orch(&["logs", "t", "--attempt", n], Duration::from_secs(30));
        assert_eq!(out.code, 0, "{}", out.show());
        out
    };
    let two = wait_for(LIMIT, || {
        let out = logs("2");
        if out.stdout.contains("Also add the fix") {
            Ok(out)
        } else {
            Err(out.show())
        }
    })
    .unwrap_or_else(|e| panic!("attempt 2's log has no note: {e}"));
    assert!(
        two.stderr.contains("continues attempt 1's live session"),
        "{}",
        two.show()
    );
    assert!(!two.stdout.contains("Write it."), "{}", two.show());
    let one = logs("1");
    assert!(!one.stdout.contains("Also add the fix"), "{}", one.show());
    assert!(one.stdout.contains("Write it."), "{}", one.show());
    // The merged view tags each line with the attempt whose turn printed it.
    let all = r.repo.orch(&["logs", "--all"], Duration::from_secs(30));
    assert_eq!(all.code, 0, "{}", all.show());
    let tag_of = |words: &str| {
        all.stdout
            .lines()
            .find(|l| l.contains(words))
            .and_then(|l| l.split('│').next())
            .map(|head| head.split_whitespace().last().unwrap_or("").to_string())
    };
    assert_eq!(
        tag_of("Write it.").as_deref(),
        Some("t#1"),
        "{}",
        all.show()
    );
    assert_eq!(
        tag_of("Also add the fix").as_deref(),
        Some("t#2"),
        "{}",
        all.show()
    );

    let typed = r.events("change_request_typed");
    assert_eq!(typed.len(), 1, "{typed:#?}");
    assert_eq!(typed[0]["attempt"], 2, "{typed:#?}");
    // The conversation the API saw: one transcript (one session) holding the task's prompt,
    // then the note as the next user turn.
    let hooks =
        std::fs::read_to_string(r.repo.dir.join(".orch/logs/t/1/hooks.jsonl")).expect("hooks log");
    let sessions: std::collections::BTreeSet<String> = hooks
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["session_id"].as_str().map(String::from))
        .collect();
    assert_eq!(sessions.len(), 1, "one conversation: {sessions:?}");
    let transcript = hooks
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["transcript_path"].as_str().map(String::from))
        .expect("the hooks name the transcript");
    let said = std::fs::read_to_string(&transcript).expect("transcript");
    let users: Vec<String> = said
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "user" && v["message"]["content"].is_string())
        .map(|v| v["message"]["content"].as_str().unwrap_or("").to_string())
        .collect();
    let first = users.iter().position(|u| u.contains("Write it."));
    let note = users.iter().position(|u| u.contains("Also add the fix."));
    assert!(
        first.is_some() && note.is_some() && first < note,
        "the note is the next user turn of the same conversation: {users:#?}"
    );
    // Spend is the transcript's, split between the attempts: each turn counted once (the
    // transcript is read again each time: Claude may still be writing its last lines).
    let total = || {
        let said = std::fs::read_to_string(&transcript).unwrap_or_default();
        orch_tui::agent::adapter::claude::transcript_tokens(&said).output
    };
    let t = r.until("its spend recorded once", |t| {
        let out = |n| attempt(t, n)["tokens_out"].as_u64().unwrap_or(0);
        out(1) > 0 && out(2) > 0 && out(1) + out(2) == total()
    });
    assert!(
        attempt(&t, 1)["tokens_out"].as_u64() < Some(total()),
        "{t:#}"
    );

    // Done again, approved, merged: the session is ended by its exit command, no signal.
    r.human(&["done", "t"]);
    r.until("waiting for approval again", |t| {
        t["state"] == "review" && t["stage"] == "human"
    });
    r.human(&["approve", "t"]);
    let out = run.wait(LIMIT);
    let t = r.repo.task("t");
    assert_eq!(out.code, 0, "{}\n{t:#}", out.show());
    assert_eq!(t["state"], "done", "{t:#}");
    let merged = r.repo.git(&["ls-tree", "--name-only", "orch/integration"]);
    assert!(
        merged.contains("a.txt") && merged.contains("fix.txt"),
        "{merged}"
    );
    assert!(!alive(pid), "the session is gone after the merge");
    let stops = r.events("agent_stop");
    assert_eq!(stops.len(), 1, "{stops:#?}");
    assert!(
        stops[0]["data"]["why"]
            .as_str()
            .unwrap_or("")
            .contains("merged"),
        "{stops:#?}"
    );
    let ended = r.events("session_ended");
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert_eq!(
        ended[0]["data"]["exit_code"], 0,
        "it exited by itself, no KILL: {ended:#?}"
    );
}

#[test]
fn claude_session_stopped_by_its_time_budget_ends_by_its_exit_command() {
    let Some(bin) = require(
        "claude_session_stopped_by_its_time_budget_ends_by_its_exit_command",
        Cli::Claude,
    ) else {
        return;
    };
    // A slow model: the session is mid-turn when its budget runs out.
    let (r, run) = Rig::start(
        &bin,
        "prompt = \"Think.\\n@mock sleep 60\"\nmax_attempts = 1\nbudget = { time = \"8s\" }\n",
    );
    let t = r.until("escalated for its budget", |t| t["state"] == "escalated");
    assert!(
        t["reason"].as_str().unwrap_or("").contains("budget"),
        "{t:#}"
    );
    let pid = attempt(&t, 1)["pid"].as_i64().expect("its pid");
    assert!(!alive(pid), "ended: {t:#}");
    let stops = r.events("agent_stop");
    assert_eq!(stops.len(), 1, "{stops:#?}");
    assert!(
        stops[0]["data"]["rule"]
            .as_str()
            .unwrap_or("")
            .starts_with("interrupt, then the exit command"),
        "{stops:#?}"
    );
    let ended = r.events("session_ended");
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert_eq!(
        ended[0]["data"]["exit_code"], 0,
        "it exited by itself after /exit, no KILL: {ended:#?}"
    );
    assert!(
        stops[0]["seq"].as_i64() < ended[0]["seq"].as_i64(),
        "interrupt and exit asked, then the end: {stops:#?} {ended:#?}"
    );
    drop(run);
}
