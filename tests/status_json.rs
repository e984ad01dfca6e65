//! `status --json` written straight from the ledger's rows (`read::write_json`, for a pipe) is
//! byte for byte what serde_json writes for the read model's snapshot, on a ledger holding
//! every kind of row: attempts of every state, role and substatus in an order that is not the
//! plan's, every nullable column both null and set, holds, a sync, limits, stages, budgets,
//! spends whose float sum depends on its order, and text JSON must escape. At a terminal the
//! output is the snapshot indented (the real binary in a real PTY).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::{Connection, params};

mod common;
use common::git;

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

/// Text with everything JSON escapes (quotes, backslashes, controls), and non-ASCII.
const NASTY: &str = "a \"quoted\" \\path\\ line\nnext\ttab \u{1}\u{1f} é 日本 🚀 </script>";

fn repo() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    let out = Command::new(BIN)
        .arg("init")
        .current_dir(&repo)
        .output()
        .expect("orch-tui init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, repo)
}

/// (id, state, stage, paused_from, agent, reason, budgets (time ms, tokens, cost)).
type TaskSpec<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    (Option<i64>, Option<i64>, Option<f64>),
);

/// Every task state once, inserted in the reverse of their plan order; the attempts below in
/// an order that is neither the plan's nor their numbers'.
fn fill(ledger: &Path, now: i64) {
    let c = Connection::open(ledger).expect("open ledger");
    c.execute(
        "INSERT INTO plan (id, name, file, loaded_ms) VALUES (1, ?1, 'plan.toml', ?2)",
        params![format!("plan {NASTY}"), now],
    )
    .expect("plan");
    c.execute(
        "INSERT INTO supervisor (id, epoch, pid, started_ms, hold, integration_tip, base_ref,
            base_oid, sync_ref, sync_onto, sync_tip, sync_problem)
         VALUES (1, 7, 4242, ?1, ?2, 'tip0', 'refs/heads/main', 'base0', 'refs/heads/main',
            'onto0', 'replayed0', ?3)",
        params![
            now,
            format!("held: {NASTY}"),
            format!("sync stopped: {NASTY}")
        ],
    )
    .expect("supervisor");
    for (kind, name, until) in [
        ("limit", "claude", now + 3_600_000),
        ("breaker", "codex", now + 60_000),
        ("breaker", "aider", now - 1),
    ] {
        c.execute(
            "INSERT INTO gates (kind, name, until_ms, why, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind, name, until, format!("why {NASTY}"), now],
        )
        .expect("gate");
    }
    let no_budget = (None, None, None);
    let tasks: [TaskSpec; 17] = [
        ("pending", "pending", None, None, None, None, no_budget),
        (
            "ready",
            "ready",
            None,
            None,
            Some("claude"),
            None,
            (Some(60_000), Some(1000), Some(1.5)),
        ),
        ("assigned", "assigned", None, None, None, None, no_budget),
        (
            "working",
            "working",
            None,
            None,
            None,
            None,
            (None, Some(1000), Some(1.0)),
        ),
        ("asks", "working", None, None, None, None, no_budget),
        (
            "checks",
            "review",
            Some("checks"),
            None,
            None,
            None,
            no_budget,
        ),
        (
            "reviewing",
            "review",
            Some("reviewer"),
            None,
            None,
            None,
            no_budget,
        ),
        (
            "human",
            "review",
            Some("human"),
            None,
            None,
            None,
            no_budget,
        ),
        ("veto", "review", Some("veto"), None, None, None, no_budget),
        ("approved", "approved", None, None, None, None, no_budget),
        ("merging", "merging", None, None, None, None, no_budget),
        ("done", "done", None, None, None, None, no_budget),
        (
            "failed",
            "failed",
            None,
            None,
            None,
            Some(NASTY),
            (Some(60_000), None, None),
        ),
        (
            "blocked",
            "blocked",
            None,
            None,
            None,
            Some("upstream failed"),
            no_budget,
        ),
        (
            "escalated",
            "escalated",
            None,
            None,
            None,
            Some("conflict in \"a.txt\""),
            no_budget,
        ),
        (
            "paused",
            "paused",
            None,
            Some("ready"),
            None,
            None,
            no_budget,
        ),
        (
            "broke",
            "failed",
            None,
            None,
            None,
            Some("exit 1"),
            no_budget,
        ),
    ];
    for (k, (id, state, stage, paused_from, agent, reason, (time, tokens, cost))) in
        tasks.iter().enumerate().rev()
    {
        c.execute(
            "INSERT INTO tasks (id, ord, title, content_hash, max_attempts, state, stage,
                stage_until_ms, paused_from, agent, reason, budget_time_ms, budget_tokens,
                budget_cost_usd, priority, risk_high, failures, not_before_ms, spec_version,
                updated_ms)
             VALUES (?1, ?2, ?3, 'h', 3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                ?15, ?16, ?17, ?18)",
            params![
                id,
                k as i64 * 10,
                format!("{id}: {NASTY}"),
                state,
                stage,
                (*stage == Some("veto")).then_some(now + 600_000),
                paused_from,
                agent,
                reason,
                time,
                tokens,
                cost,
                k as i64 - 3,
                k % 3 == 0,
                if *state == "failed" { 3 } else { 0 },
                if *id == "ready" { now + 5_000 } else { 0 },
                1 + k as i64 % 2,
                now
            ],
        )
        .expect("task");
    }
    for (task, dep) in [
        ("ready", "pending"),
        ("done", "pending"),
        ("done", "ready"),
        ("blocked", "failed"),
    ] {
        c.execute(
            "INSERT INTO deps (task, dep) VALUES (?1, ?2)",
            params![task, dep],
        )
        .expect("dep");
    }
    // (task, n, role, state, substatus, tokens in, tokens out, cost). The costs add up to
    // another last digit in row order than in plan order.
    let attempts = [
        ("done", 2, "agent", "succeeded", "ended", 100, 10, 0.1),
        ("failed", 1, "agent", "failed", "ended", 5, 5, 0.2),
        ("done", 1, "reviewer", "succeeded", "ended", 7, 3, 0.3),
        ("done", 1, "agent", "abandoned", "ended", 1, 1, 0.7),
        (
            "working", 1, "agent", "running", "busy", 850, 100, 12345.678,
        ),
        ("asks", 1, "agent", "running", "waiting_input", 1, 2, 0.01),
        ("assigned", 1, "agent", "running", "idle", 0, 0, 0.0),
        ("human", 1, "agent", "succeeded", "ended", i64::MAX, 1, 1e-7),
        ("human", 1, "reviewer", "succeeded", "ended", 3, 3, 0.3),
        ("veto", 1, "agent", "succeeded", "ended", 9, 9, 0.3),
        ("failed", 2, "agent", "killed", "ended", 1, 1, 0.1),
        ("escalated", 1, "agent", "failed", "limited", 2, 2, 0.2),
        ("reviewing", 1, "agent", "succeeded", "ended", 4, 4, 0.4),
        ("reviewing", 1, "reviewer", "running", "busy", 4, 4, 0.4),
        (
            "paused",
            1,
            "agent",
            "starting",
            "waiting_permission",
            0,
            0,
            0.0,
        ),
        (
            "merging",
            1,
            "agent",
            "succeeded",
            "waiting_dialog",
            6,
            6,
            0.6,
        ),
    ];
    for (k, (task, n, role, state, sub, tin, tout, cost)) in attempts.iter().enumerate() {
        c.execute(
            "INSERT INTO attempts (task, n, token, epoch, profile, role, state, substatus,
                started_ms, ended_ms, tokens_in, tokens_out, cost_usd)
             VALUES (?1, ?2, ?3, 7, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                task,
                n,
                format!("secret-{k}"),
                if k % 2 == 0 { "claude" } else { "sim" },
                role,
                state,
                sub,
                now - 120_000,
                (!matches!(*state, "running" | "starting")).then_some(now - 1_000),
                tin,
                tout,
                cost
            ],
        )
        .expect("attempt");
        if k % 3 == 0 || *task == "asks" {
            // Every nullable column set, with text to escape.
            c.execute(
                "UPDATE attempts SET reported = ?2, question = ?3, pid = 4321, worktree = ?3,
                    branch = 'orch/x', base = 'b0', commit_oid = 'c0', log_dir = ?3,
                    running_ms = started_ms + 10, exit_code = -1, reason = ?3, last_beat_ms = 5,
                    verdict = ?4, verdict_notes = ?3, merge_tip = 'm1', merge_onto = 'm0',
                    diff_lines = 12, session = 'sess', continues = 1, held_ms = 250,
                    spec_on = 'pending'
                 WHERE id = ?1",
                params![
                    c.last_insert_rowid(),
                    if k % 2 == 0 { "done" } else { "fail" },
                    format!("Bash: {NASTY}"),
                    if k % 2 == 0 { "approve" } else { "changes" }
                ],
            )
            .expect("nullable columns");
        }
    }
    for (task, data) in [
        ("human", r#"{"command":"cargo test","passed":true}"#),
        (
            "human",
            r#"{"command":"cargo clippy \"x\"","passed":false}"#,
        ),
        (
            "human",
            r#"{"command":"cargo test","passed":true,"on":"rebased"}"#,
        ),
        ("veto", r#"{"command":"make","passed":true}"#),
    ] {
        c.execute(
            "INSERT INTO events (ts_ms, task, attempt, actor, kind, data)
             VALUES (?1, ?2, 1, 'check', 'check_passed', ?3)",
            params![now, task, data],
        )
        .expect("check event");
    }
}

/// The read model's own serialization, and the fast writer's, at the same instant. The fast
/// writer reads with two connections at once (what `status --json` does); with one alone it
/// writes the same bytes.
fn both(ledger: &Path, now: u64) -> (Vec<u8>, Vec<u8>) {
    let l = orch_tui::ledger::Ledger::open(ledger).expect("open");
    let snap = orch_tui::read::snapshot(&l, now).expect("snapshot");
    let want = serde_json::to_vec(&snap).expect("serialize");
    let mut got = Vec::new();
    orch_tui::read::write_json(&l, now, &mut got).expect("write_json");
    let mut alone = Vec::new();
    orch_tui::read::write_json_using(&l, now, &mut alone, orch_tui::read::Readers::One)
        .expect("write_json, one reader");
    same(&got, &alone);
    (want, got)
}

/// Where two outputs first differ, with some context, for a readable failure.
fn same(want: &[u8], got: &[u8]) {
    if want == got {
        return;
    }
    let at = want.iter().zip(got).take_while(|(a, b)| a == b).count();
    let around = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())]).into_owned()
    };
    panic!(
        "outputs differ at byte {at} (lengths {} and {}):\n  read model: …{}…\n  write_json: …{}…",
        want.len(),
        got.len(),
        around(want),
        around(got)
    );
}

#[test]
fn same_bytes_as_the_read_model_on_every_kind_of_row() {
    let (_tmp, repo) = repo();
    let ledger = repo.join(".orch/ledger.db");
    let now = orch_tui::ledger::now_ms();
    fill(&ledger, now as i64);
    let (want, got) = both(&ledger, now);
    same(&want, &got);
    // The ledger holds what the test means to cover, and nothing secret comes out.
    let v: serde_json::Value = serde_json::from_slice(&got).expect("JSON");
    let kinds: Vec<&str> = v["inbox"]
        .as_array()
        .expect("inbox")
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    for kind in [
        "held",
        "sync",
        "limited",
        "permission",
        "question",
        "idle_turn",
        "approval",
        "escalated",
        "budget_exhausted",
        "failed",
        "budget_warning",
    ] {
        assert!(kinds.contains(&kind), "no {kind} item in {kinds:?}");
    }
    assert_eq!(v["tasks"].as_array().map(Vec::len), Some(17));
    assert_eq!(v["tasks"][0]["id"], "pending", "plan order, not row order");
    let done = &v["tasks"][11];
    assert_eq!(done["id"], "done");
    let order: Vec<(u64, &str)> = done["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| {
            (
                a["n"].as_u64().unwrap_or(0),
                a["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(order, [(1, "agent"), (1, "reviewer"), (2, "agent")]);
    assert!(
        !String::from_utf8_lossy(&got).contains("secret-"),
        "a token was printed"
    );
}

#[test]
fn same_bytes_on_a_ledger_with_nothing_in_it() {
    let (_tmp, repo) = repo();
    let (want, got) = both(&repo.join(".orch/ledger.db"), orch_tui::ledger::now_ms());
    same(&want, &got);
}

/// The binary through a pipe prints the one-line form; in a terminal, the indented one. The
/// ledger's items do not depend on the instant (no live attempt has a time budget).
#[test]
fn the_binary_prints_the_read_model_through_a_pipe_and_indented_at_a_terminal() {
    let (_tmp, repo) = repo();
    let ledger = repo.join(".orch/ledger.db");
    let now = orch_tui::ledger::now_ms();
    fill(&ledger, now as i64);
    let l = orch_tui::ledger::Ledger::open(&ledger).expect("open");
    let snap = orch_tui::read::snapshot(&l, now).expect("snapshot");
    drop(l);

    let out = Command::new(BIN)
        .args(["status", "--json"])
        .current_dir(&repo)
        .output()
        .expect("status --json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = serde_json::to_vec(&snap).expect("serialize");
    want.push(b'\n');
    same(&want, &out.stdout);

    let mut want = serde_json::to_vec_pretty(&snap).expect("serialize");
    want.push(b'\n');
    same(&want, &in_a_terminal(&repo, &["status", "--json"]));
}

/// What the binary prints in a real PTY (its `\r\n` turned back into `\n`).
fn in_a_terminal(dir: &Path, args: &[&str]) -> Vec<u8> {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 50,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut cmd = CommandBuilder::new(BIN);
    cmd.args(args);
    cmd.cwd(dir);
    let mut child = pair.slave.spawn_command(cmd).expect("spawn in a PTY");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut out = Vec::new();
    // Linux answers EIO once the child has exited and the output is drained: the end.
    let _ = reader.read_to_end(&mut out);
    let status = child.wait().expect("wait");
    assert!(status.success(), "{}", String::from_utf8_lossy(&out));
    drop(pair.master);
    let mut plain = Vec::with_capacity(out.len());
    for (i, &b) in out.iter().enumerate() {
        if !(b == b'\r' && out.get(i + 1) == Some(&b'\n')) {
            plain.push(b);
        }
    }
    plain
}

/// The TUI's lean snapshot is the whole one — run, counts, spends, inbox, every task's fields
/// — but for the attempts no view lists: a task keeps its live attempts, and all of them when
/// the inbox reads them (waiting for approval, escalated, failed). A lean snapshot that kept
/// too few would change the inbox; one that kept every attempt fails the last assertion.
#[test]
fn the_lean_snapshot_is_the_whole_one_but_for_attempts_nobody_lists() {
    let (_tmp, repo) = repo();
    let ledger = repo.join(".orch/ledger.db");
    let now = orch_tui::ledger::now_ms();
    fill(&ledger, now as i64);
    let l = orch_tui::ledger::Ledger::open(&ledger).expect("open");
    let whole = serde_json::to_value(orch_tui::read::snapshot(&l, now).expect("snapshot"))
        .expect("serialize");
    let lean = serde_json::to_value(orch_tui::read::snapshot_lean(&l, now).expect("lean"))
        .expect("serialize");
    let without_tasks = |v: &serde_json::Value| {
        let mut v = v.clone();
        v["tasks"] = serde_json::Value::Null;
        v
    };
    assert_eq!(without_tasks(&lean), without_tasks(&whole));
    let (lean_tasks, whole_tasks) = (
        lean["tasks"].as_array().expect("tasks"),
        whole["tasks"].as_array().expect("tasks"),
    );
    assert_eq!(lean_tasks.len(), whole_tasks.len());
    let mut left_out = 0;
    for (a, b) in lean_tasks.iter().zip(whole_tasks) {
        let (mut a, mut b) = (a.clone(), b.clone());
        let (kept, all) = (a["attempts"].take(), b["attempts"].take());
        assert_eq!(a, b, "the task's own fields and spend");
        let (kept, all) = (kept.as_array().expect("kept"), all.as_array().expect("all"));
        let live: Vec<&serde_json::Value> = all
            .iter()
            .filter(|x| matches!(x["state"].as_str(), Some("starting" | "running")))
            .collect();
        let read_whole = matches!(b["state"].as_str(), Some("escalated" | "failed"))
            || (b["state"] == "review" && matches!(b["stage"].as_str(), Some("human" | "veto")));
        if read_whole {
            assert_eq!(kept, all, "{}: the inbox reads every attempt", b["id"]);
        } else {
            let kept: Vec<&serde_json::Value> = kept.iter().collect();
            assert_eq!(kept, live, "{}: only the live attempts", b["id"]);
        }
        left_out += all.len() - kept.len();
    }
    assert!(
        left_out >= 3,
        "the lean snapshot left out {left_out} attempts"
    );
}
