//! `orch-tui explain TASK` on a real ledger written by the real `orch-tui hook`: each state
//! change names its layer, rule and what showed it; a permission says who answered and by which
//! rule; bad input is refused with exit 2 and what to do.

mod common;
mod ledger_support;

use std::process::{Command, Stdio};

use ledger_support::claims::{claim, repo_with_plan, worker_env};
use ledger_support::{ORCH_VARS, Repo, bin};
use orch_tui::ledger::Ledger;
use serde_json::{Value, json};

fn hook(r: &Repo, payload: &Value, env: &[(&str, &str)]) {
    let mut cmd = Command::new(bin());
    cmd.args(["hook", "claude", "--log"])
        .arg(r.dir.join("hooks.jsonl"))
        .arg(payload.to_string())
        .current_dir(&r.dir)
        .stdin(Stdio::null());
    for v in ORCH_VARS {
        cmd.env_remove(v);
    }
    let out = cmd
        .envs(env.iter().copied())
        .output()
        .expect("run orch-tui hook");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn explain_tells_each_state_change_with_its_rule_and_each_answer_with_who_gave_it() {
    let r = repo_with_plan(&["a"]);
    let cfg = r.dir.join(".orch").join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{text}\n[permissions]\ndeny = [\"Bash(rm *)\"]\n"),
    )
    .unwrap();
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-explain-01", epoch);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);

    hook(
        &r,
        &json!({"hook_event_name": "Stop", "session_id": "s1",
            "last_assistant_message": "Should I also update the README?"}),
        &env,
    );
    hook(
        &r,
        &json!({"hook_event_name": "PermissionRequest", "session_id": "s1",
            "tool_name": "Bash", "tool_input": {"command": "rm -rf target"}}),
        &env,
    );

    let out = r.orch(&["explain", "a"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    assert!(text.starts_with("task a: "), "{text}");
    assert!(text.contains(&format!("attempt {n}:")), "{text}");
    assert!(
        text.contains("waiting (question) — hook rule `Stop (ends with a question)`: “Should I also update the README?”"),
        "the state change names its layer, rule and excerpt: {text}"
    );
    assert!(
        text.contains("asks permission: Bash rm -rf target (through its hook)"),
        "{text}"
    );
    assert!(
        text.contains("deny Bash rm -rf target (through its hook), by rule `deny Bash(rm *)`"),
        "{text}"
    );
    assert!(!text.contains('{'), "words, not JSON: {text}");

    let json_out = r.orch(&["explain", "a", "--attempt", &n, "--json"]);
    assert_eq!(json_out.code, 0, "{json_out:?}");
    let v: Value = serde_json::from_str(&json_out.stdout).expect("--json prints one object");
    assert_eq!(v["task"], "a");
    let lines = v["attempts"][0]["lines"].as_array().unwrap();
    let waiting = lines
        .iter()
        .find(|l| l["kind"] == "agent_state")
        .expect("the state change is there");
    assert_eq!(waiting["layer"], "hook");
    assert_eq!(waiting["excerpt"], "Should I also update the README?");
}

#[test]
fn explain_refuses_an_unknown_task_or_attempt_with_what_to_do() {
    let r = repo_with_plan(&["a"]);
    let seq = Ledger::open(&r.ledger()).unwrap().last_seq().unwrap();
    let out = r.orch(&["explain", "nope"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no task `nope`"), "{out:?}");
    assert!(out.stderr.contains("orch-tui status"), "{out:?}");
    let out = r.orch(&["explain", "a", "--attempt", "7"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("has no attempt 7"), "{out:?}");
    let ok = r.orch(&["explain", "a"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("task a: "), "{ok:?}");
    assert_eq!(
        Ledger::open(&r.ledger()).unwrap().last_seq().unwrap(),
        seq,
        "read only"
    );
}
