//! `orch-tui hook` as an agent's hooks call it (the real binary, a real ledger): what a hook
//! shows becomes the attempt's state with the rule that fired, fenced like `orch-tui worker`;
//! a permission request is answered by a config rule, by the human (`orch-tui answer`), or by
//! an "allow always" given earlier in the run — each answer an event.

mod common;
mod ledger_support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ledger_support::claims::{claim, repo_with_plan, worker_env};
use ledger_support::{ORCH_VARS, Repo, bin, wait_for};
use orch_tui::core::domain::{Actor, Substatus};
use orch_tui::core::ops::{EventData, Op};
use orch_tui::ledger::{Ledger, apply_ops};
use serde_json::{Value, json};

/// `orch-tui hook claude --log LOG PAYLOAD` in the background, as the agent's hook runs it.
fn spawn_hook(r: &Repo, payload: &Value, env: &[(&str, &str)]) -> Child {
    let log = r.dir.join("hooks.jsonl");
    let mut cmd = Command::new(bin());
    cmd.args(["hook", "claude", "--log"])
        .arg(&log)
        .arg(payload.to_string())
        .current_dir(&r.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in ORCH_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd.spawn().expect("spawn orch-tui hook")
}

/// Run the hook to its end: (exit code, stdout, stderr).
fn run_hook(r: &Repo, payload: &Value, env: &[(&str, &str)]) -> (i32, String, String) {
    finish(spawn_hook(r, payload, env), Duration::from_secs(30))
}

fn finish(mut child: Child, limit: Duration) -> (i32, String, String) {
    let st = wait_for("the hook to end", limit, || child.try_wait().ok().flatten());
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (st.code().unwrap_or(-1), out, err)
}

/// The hook's answer to the agent (`hookSpecificOutput.decision`).
fn decision(stdout: &str) -> Value {
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the hook's answer is not JSON ({e}): {stdout:?}"));
    v["hookSpecificOutput"]["decision"].clone()
}

fn permission_events(r: &Repo) -> Vec<Value> {
    let out = r.orch(&["events", "--json", "--task", "a"]);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "permission")
        .collect()
}

fn set_permissions(r: &Repo, allow: &str, deny: &str) {
    let path = r.dir.join(".orch").join("config.toml");
    let cfg = std::fs::read_to_string(&path).unwrap();
    assert!(!cfg.contains("[permissions]"), "{cfg}");
    let cfg = format!("{cfg}\n[permissions]\nallow = {allow}\ndeny = {deny}\n");
    std::fs::write(&path, cfg).unwrap();
}

#[test]
fn a_hook_sets_the_agents_state_with_the_rule_that_fired_and_a_stale_one_changes_nothing() {
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-hook-0001", epoch);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);

    let stop = json!({"hook_event_name": "Stop", "session_id": "sess-1",
        "last_assistant_message": "Should I also update the README?"});
    let (code, _, err) = run_hook(&r, &stop, &env);
    assert_eq!(code, 0, "{err}");
    let a = ledger.latest_attempt("a").unwrap().unwrap();
    assert_eq!(a.substatus, Substatus::WaitingInput);
    assert_eq!(
        a.question.as_deref(),
        Some("Should I also update the README?")
    );
    let out = r.orch(&["events", "--json", "--task", "a"]);
    assert!(
        out.stdout.contains("hook:Stop (ends with a question)"),
        "the rule that fired is not recorded: {}",
        out.stdout
    );
    // Claude's idle notice a minute later does not end the wait for that answer, nor take the
    // question's text away (the inbox would show "Claude is waiting for your input" instead).
    let idle = json!({"hook_event_name": "Notification", "notification_type": "idle_prompt",
        "message": "Claude is waiting for your input"});
    assert_eq!(run_hook(&r, &idle, &env).0, 0);
    let a = ledger.latest_attempt("a").unwrap().unwrap();
    assert_eq!(a.substatus, Substatus::WaitingInput);
    assert_eq!(
        a.question.as_deref(),
        Some("Should I also update the README?")
    );
    // The raw record is kept too.
    let log = std::fs::read_to_string(r.dir.join("hooks.jsonl")).unwrap();
    assert!(log.contains("\"orch_agent\":\"claude\""), "{log}");

    let work = json!({"hook_event_name": "UserPromptSubmit", "prompt": "yes"});
    assert_eq!(run_hook(&r, &work, &env).0, 0);
    let a = ledger.latest_attempt("a").unwrap().unwrap();
    assert_eq!(a.substatus, Substatus::Busy);
    assert_eq!(a.question, None);

    // A wrong token: exit 0 (the agent must not be stopped), said on stderr, nothing changed.
    let seq = ledger.last_seq().unwrap();
    let bad = worker_env(&lstr, "a", &n, "tok-wrong");
    let (code, _, err) = run_hook(&r, &stop, &bad);
    assert_eq!(code, 0);
    assert!(err.contains("stale or wrong token"), "{err}");
    assert_eq!(ledger.last_seq().unwrap(), seq);
    assert_eq!(
        ledger.latest_attempt("a").unwrap().unwrap().substatus,
        Substatus::Busy
    );
}

#[test]
fn permission_requests_are_answered_by_rules_the_human_and_allow_always() {
    let r = repo_with_plan(&["a"]);
    set_permissions(&r, r#"["Bash(cargo test*)"]"#, r#"["Bash(rm *)"]"#);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-perm-0001", epoch);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);
    let ask = |cmd: &str| {
        json!({"hook_event_name": "PermissionRequest", "session_id": "s",
            "tool_name": "Bash", "tool_input": {"command": cmd}})
    };

    // A config rule answers at once, and says which rule.
    let (code, out, err) = run_hook(&r, &ask("cargo test -q"), &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(decision(&out)["behavior"], "allow", "{out}");
    let (_, out, _) = run_hook(&r, &ask("rm -rf target"), &env);
    assert_eq!(decision(&out)["behavior"], "deny", "{out}");
    assert!(
        decision(&out)["message"]
            .as_str()
            .unwrap()
            .contains("deny Bash(rm *)"),
        "{out}"
    );

    // No rule: the request waits in the inbox until the human answers.
    let child = spawn_hook(&r, &ask("npm install left-pad"), &env);
    wait_for(
        "the request to reach the inbox",
        Duration::from_secs(20),
        || {
            let text = r.status_json()["inbox"].to_string();
            (text.contains(r#""kind":"permission""#) && text.contains("Bash: npm install left-pad"))
                .then_some(())
        },
    );
    // Claude's generic notice for the same dialog comes seconds later: the inbox still names
    // the call (it said "Claude needs your permission" alone once, and the human could not
    // tell what to answer).
    let notice = json!({"hook_event_name": "Notification", "notification_type": "permission_prompt",
        "message": "Claude needs your permission"});
    assert_eq!(run_hook(&r, &notice, &env).0, 0);
    let a = ledger.latest_attempt("a").unwrap().unwrap();
    assert_eq!(a.substatus, Substatus::WaitingPermission);
    assert_eq!(a.question.as_deref(), Some("Bash: npm install left-pad"));
    // The supervisor's screen rule sees the same dialog without what it is for, its model not
    // yet knowing what the hook wrote: it does not take the call's name away either.
    let screen = Op::AgentState {
        id: a.id,
        substatus: Substatus::WaitingPermission,
        question: Some("Do you want to proceed?".into()),
        keep_question: true,
        actor: Actor::Supervisor,
        data: EventData::default(),
    };
    ledger
        .write(|tx| apply_ops(tx, std::slice::from_ref(&screen), &mut String::new))
        .unwrap();
    let a = ledger.latest_attempt("a").unwrap().unwrap();
    assert_eq!(a.question.as_deref(), Some("Bash: npm install left-pad"));
    // The PreToolUse Claude sent just before that request runs in a hook process of its own;
    // landing after it, it does not end the wait (CI saw the inbox fall back to the screen's
    // bare "Do you want to proceed?" so).
    let late = json!({"hook_event_name": "PreToolUse", "session_id": "s",
        "tool_name": "Bash", "tool_input": {"command": "npm install left-pad"}});
    assert_eq!(run_hook(&r, &late, &env).0, 0);
    let a = ledger.latest_attempt("a").unwrap().unwrap();
    assert_eq!(a.substatus, Substatus::WaitingPermission);
    assert_eq!(a.question.as_deref(), Some("Bash: npm install left-pad"));
    let answered = r.orch(&["answer", "a", "deny", "--note", "use the vendored copy"]);
    assert_eq!(answered.code, 0, "{answered:?}");
    assert!(
        answered.stdout.contains("denied Bash npm install"),
        "{answered:?}"
    );
    let (code, out, err) = finish(child, Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    assert_eq!(decision(&out)["behavior"], "deny");
    assert_eq!(decision(&out)["message"], "use the vendored copy");
    assert_eq!(
        ledger.latest_attempt("a").unwrap().unwrap().substatus,
        Substatus::Busy,
        "the agent works again once answered"
    );

    // Nothing waits now: a second answer is refused and changes nothing.
    let seq = ledger.last_seq().unwrap();
    let again = r.orch(&["answer", "a", "allow"]);
    assert_eq!(again.code, 3, "{again:?}");
    assert_eq!(ledger.last_seq().unwrap(), seq);
    let bad = r.orch(&["answer", "a", "maybe"]);
    assert_eq!(bad.code, 2, "{bad:?}");

    // "Always" answers this call and every call like it for the rest of the run.
    let child = spawn_hook(&r, &ask("npm ci"), &env);
    wait_for("the second request", Duration::from_secs(20), || {
        ledger.pending_permission("a").unwrap()
    });
    assert_eq!(r.orch(&["answer", "a", "always"]).code, 0);
    let (_, out, _) = finish(child, Duration::from_secs(20));
    assert_eq!(decision(&out)["behavior"], "allow");
    let (_, out, _) = run_hook(&r, &ask("npm run build"), &env);
    assert_eq!(decision(&out)["behavior"], "allow", "{out}");

    // Every decision is an event, with who or what made it.
    let decided: Vec<(String, String)> = permission_events(&r)
        .iter()
        .filter(|e| e["data"]["decision"].is_string())
        .map(|e| {
            (
                e["data"]["decision"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        decided,
        [
            ("allow", "supervisor"),
            ("deny", "supervisor"),
            ("deny", "human"),
            ("always", "human"),
            ("allow", "supervisor"),
        ]
        .map(|(d, a)| (d.to_string(), a.to_string()))
    );
}
