//! One read model (`orch_tui::read`): on a real ledger holding every kind of inbox item the
//! ledger can express, the TUI (its background refresh, as its loop runs it) and `status` /
//! `status --json` (the real binary) show the same inbox, tasks and spend. And the TUI's
//! background lanes: a human command waits out another process's write lock while refreshes
//! still answer, and lands when the lock is released.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use orch_tui::tui::UiEvent;
use orch_tui::tui::app::App;
use orch_tui::tui::jobs::{Command as HumanCmd, JobDone, Jobs, NoEngine};
use orch_tui::tui::keymap::Keymap;
use orch_tui::tui::lanes::Lanes;
use orch_tui::tui::state::ViewState;
use rusqlite::{Connection, params};

mod common;
use common::git;

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

const PLAN: &str = r#"
[plan]
name = "every-kind"

[defaults]
agent = "sim"
max_attempts = 3

[[task]]
id = "asks"
title = "Asks a question"
prompt = "p"

[[task]]
id = "idles"
title = "Ends a turn without a result"
prompt = "p"

[[task]]
id = "spends"
title = "Near its budgets"
prompt = "p"
budget = { tokens = 1000, cost_usd = 1.0 }

[[task]]
id = "approve"
title = "Waits for approval"
prompt = "p"

[[task]]
id = "veto"
title = "In its veto window"
prompt = "p"

[[task]]
id = "stuck"
title = "Escalated"
prompt = "p"

[[task]]
id = "broke"
title = "Failed"
prompt = "p"

[[task]]
id = "overran"
title = "Stopped at its time budget"
prompt = "p"
budget = { time = "1m" }

[[task]]
id = "fine"
title = "Done"
prompt = "p"

[[task]]
id = "permits"
title = "Asks permission for a tool"
prompt = "p"

[[task]]
id = "dialogs"
title = "Waits at its own dialog"
prompt = "p"
"#;

struct Fixture {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
}

impl Fixture {
    fn ledger(&self) -> PathBuf {
        self.repo.join(".orch/ledger.db")
    }

    fn orch(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&self.repo)
            .output()
            .expect("run orch-tui");
        assert!(
            out.status.success(),
            "orch-tui {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.orch(&["status", "--json"])).expect("status --json is JSON")
    }
}

/// Moves a task along legal transitions (the ledger's trigger checks each one).
fn walk(c: &Connection, task: &str, states: &[&str]) {
    for s in states {
        c.execute(
            "UPDATE tasks SET state = ?2, version = version + 1 WHERE id = ?1",
            params![task, s],
        )
        .unwrap_or_else(|e| panic!("{task} -> {s}: {e}"));
    }
}

struct Attempt<'a> {
    task: &'a str,
    n: u32,
    role: &'a str,
    state: &'a str,
    substatus: &'a str,
    question: Option<&'a str>,
    started_ms: i64,
    ended_ms: Option<i64>,
    tokens: (i64, i64),
    cost: f64,
}

fn attempt(c: &Connection, a: &Attempt) -> i64 {
    c.execute(
        "INSERT INTO attempts (task, n, token, epoch, profile, role, state, substatus, question,
            started_ms, ended_ms, tokens_in, tokens_out, cost_usd)
         VALUES (?1, ?2, ?3, 1, 'sim', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            a.task,
            a.n,
            format!("tok-{}-{}-{}", a.task, a.n, a.role),
            a.role,
            a.state,
            a.substatus,
            a.question,
            a.started_ms,
            a.ended_ms,
            a.tokens.0,
            a.tokens.1,
            a.cost
        ],
    )
    .expect("insert attempt");
    c.last_insert_rowid()
}

fn live<'a>(task: &'a str, substatus: &'a str, question: Option<&'a str>, now: i64) -> Attempt<'a> {
    Attempt {
        task,
        n: 1,
        role: "agent",
        state: "running",
        substatus,
        question,
        started_ms: now - 1_000,
        ended_ms: None,
        tokens: (10, 5),
        cost: 0.01,
    }
}

/// A repository with the plan loaded and the ledger brought to one task per kind of item.
fn every_kind() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "hi\n").expect("write");
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t.invalid",
            "commit",
            "-q",
            "-m",
            "start",
        ],
    );
    let f = Fixture { _tmp: tmp, repo };
    f.orch(&["init"]);
    let plan = f.repo.join("plan.toml");
    std::fs::write(&plan, PLAN).expect("write plan");
    f.orch(&["plan", "load", plan.to_str().expect("utf-8 path")]);
    let now = orch_tui::ledger::now_ms() as i64;
    let c = Connection::open(f.ledger()).expect("open ledger");
    c.execute(
        "INSERT INTO supervisor (id, epoch, pid, started_ms, hold) VALUES (1, 1, 4242, ?1, ?2)",
        params![
            now,
            "the integration branch moved: `orch-tui integration accept`"
        ],
    )
    .expect("hold the run");
    // A sync that stopped, and an account paused by a usage limit for an hour.
    c.execute(
        "UPDATE supervisor SET sync_problem = 'the sync onto main stopped: conflict in a.txt' \
         WHERE id = 1",
        [],
    )
    .expect("sync problem");
    c.execute(
        "INSERT INTO gates (kind, name, until_ms, why, updated_ms) \
         VALUES ('limit', 'claude', ?1, 'usage limit reached', ?2)",
        params![now + 3_600_000, now],
    )
    .expect("limit gate");
    let working = ["assigned", "working"];
    for t in ["asks", "idles", "spends", "permits", "dialogs"] {
        walk(&c, t, &working);
    }
    attempt(
        &c,
        &live(
            "permits",
            "waiting_permission",
            Some("Bash: cargo publish --dry-run"),
            now,
        ),
    );
    attempt(
        &c,
        &live("dialogs", "waiting_dialog", Some("Trust this folder?"), now),
    );
    attempt(&c, &live("asks", "waiting_input", Some("Which port?"), now));
    attempt(&c, &live("idles", "idle", Some("Step 1 is done."), now));
    let mut near = live("spends", "busy", None, now);
    near.tokens = (700, 150);
    near.cost = 0.9;
    attempt(&c, &near);
    for (t, stage, until) in [
        ("approve", "human", None),
        ("veto", "veto", Some(now + 3_600_000)),
    ] {
        walk(&c, t, &["assigned", "working", "review"]);
        c.execute(
            "UPDATE tasks SET stage = ?2, stage_until_ms = ?3 WHERE id = ?1",
            params![t, stage, until],
        )
        .expect("stage");
        let mut a = live(t, "ended", None, now);
        a.state = "succeeded";
        a.ended_ms = Some(now - 500);
        let id = attempt(&c, &a);
        c.execute(
            "UPDATE attempts SET base = 'b0', commit_oid = ?2, diff_lines = 12 WHERE id = ?1",
            params![id, format!("c-{t}")],
        )
        .expect("commit");
        for (cmd, kind, passed) in [
            ("cargo build", "check_passed", true),
            ("cargo test", "check_failed", false),
        ] {
            c.execute(
                "INSERT INTO events (ts_ms, task, attempt, actor, kind, data)
                 VALUES (?1, ?2, 1, 'check', ?3, ?4)",
                params![
                    now,
                    t,
                    kind,
                    serde_json::json!({"command": cmd, "passed": passed}).to_string()
                ],
            )
            .expect("check event");
        }
    }
    let mut review = live("approve", "ended", None, now);
    review.role = "reviewer";
    review.state = "succeeded";
    let id = attempt(&c, &review);
    c.execute(
        "UPDATE attempts SET verdict = 'approve', verdict_notes = 'clean' WHERE id = ?1",
        [id],
    )
    .expect("verdict");
    walk(&c, "stuck", &["assigned", "working", "escalated"]);
    c.execute(
        "UPDATE tasks SET reason = 'conflict in a.txt' WHERE id = 'stuck'",
        [],
    )
    .expect("reason");
    walk(&c, "broke", &["assigned", "working", "failed"]);
    c.execute(
        "UPDATE tasks SET reason = 'exit 1 (attempt 3 of 3)', failures = 3 WHERE id = 'broke'",
        [],
    )
    .expect("reason");
    walk(&c, "overran", &["assigned", "working", "failed"]);
    c.execute(
        "UPDATE tasks SET reason = 'time budget exhausted (attempt 1 of 1)', failures = 1 \
         WHERE id = 'overran'",
        [],
    )
    .expect("reason");
    let mut killed = live("overran", "ended", None, now);
    killed.state = "killed";
    killed.started_ms = now - 61_000;
    killed.ended_ms = Some(now - 500);
    attempt(&c, &killed);
    walk(
        &c,
        "fine",
        &[
            "assigned", "working", "review", "approved", "merging", "done",
        ],
    );
    f
}

/// Waits for the first job answer `pick` takes, skipping the others.
fn wait_for<T>(
    rx: &Receiver<UiEvent>,
    what: &str,
    mut pick: impl FnMut(JobDone) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(UiEvent::Job(done)) => {
                if let Some(t) = pick(done) {
                    return t;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("no {what} within 20 s: {e}"),
        }
    }
}

/// The TUI's lanes and jobs on `ledger`, as its loop starts them (no engine in this process).
fn tui_jobs(ledger: &Path) -> (Jobs, Receiver<UiEvent>) {
    let (tx, rx) = channel();
    let lanes = Lanes::start(ledger.to_path_buf(), tx);
    let orch_dir = ledger.parent().expect("ledger dir").to_path_buf();
    (Jobs::new(lanes, Arc::new(NoEngine { orch_dir })), rx)
}

/// The TUI's view after one background refresh.
fn tui_view(ledger: &Path) -> App {
    let (jobs, rx) = tui_jobs(ledger);
    let mut app = App::new(ViewState::new(false), Keymap::new(&Default::default()).0);
    jobs.refresh();
    let done = wait_for(&rx, "refresh", |d| {
        matches!(d, JobDone::Refreshed(_)).then_some(d)
    });
    app.on_job(done);
    app
}

/// A value as `status --json` would print it and this test reads it back (serde_json's parser
/// may round a float's last digit: both sides go through the same text and the same parse).
fn as_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::from_str(&serde_json::to_string(v).expect("to JSON")).expect("from JSON")
}

#[test]
fn the_tui_and_status_show_the_same_inbox_tasks_and_spend() {
    let f = every_kind();
    let app = tui_view(&f.ledger());
    let json = f.status_json();
    assert_eq!(
        as_json(&app.state.inbox),
        json["inbox"],
        "the TUI's inbox and status --json's"
    );

    let kinds: Vec<(&str, &str)> = json["inbox"]
        .as_array()
        .expect("inbox list")
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap_or("?"),
                i["task"].as_str().unwrap_or("(run)"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("held", "(run)"),
            ("sync", "(run)"),
            ("limited", "(run)"),
            ("permission", "permits"),
            ("dialog", "dialogs"),
            ("question", "asks"),
            ("idle_turn", "idles"),
            ("approval", "approve"),
            ("approval", "veto"),
            ("escalated", "stuck"),
            ("budget_exhausted", "overran"),
            ("failed", "broke"),
            ("budget_warning", "spends"),
        ],
        "every kind the ledger can hold, most urgent first: {json:#}"
    );
    let approval = &json["inbox"][7];
    assert_eq!(approval["verdict"], "approve");
    assert_eq!(
        approval["checks"][1],
        serde_json::json!({"command": "cargo test", "passed": false})
    );
    assert_eq!(approval["diff_lines"], 12);
    let warned: Vec<&str> = json["inbox"][12]["budgets"]
        .as_array()
        .expect("budgets")
        .iter()
        .filter_map(|b| b["budget"].as_str())
        .collect();
    assert_eq!(
        warned,
        ["tokens", "cost_usd"],
        "850 of 1000 tokens, $0.90 of $1.00"
    );
    assert_eq!(
        json["inbox"][10]["budgets"][0]["budget"], "time",
        "61 s of a 1 m budget"
    );

    // Tasks and spend agree too.
    let states: Vec<(String, String)> = app
        .state
        .tasks
        .iter()
        .map(|t| (t.id.clone(), t.state.to_string()))
        .collect();
    let json_states: Vec<(String, String)> = json["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or("").into(),
                t["state"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(states, json_states);
    assert_eq!(as_json(&app.state.spend_tokens), json["spend"]["tokens"]);
    assert_eq!(as_json(&app.state.spend_usd), json["spend"]["cost_usd"]);

    // What a user reads: the TUI's header count and `status`'s inbox, item by item.
    let mut term =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48)).expect("backend");
    term.draw(|fr| orch_tui::tui::render::render(&app.state, fr))
        .expect("draw");
    let screen: String = term
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("inbox 13"), "{screen}");
    let text = f.orch(&["status"]);
    assert!(text.contains("inbox (13):"), "{text}");
    assert!(
        text.contains("run held: the integration branch moved"),
        "{text}"
    );
    for (kind, task) in [
        ("[question] Which port?", "asks"),
        (
            "[permission] Bash: cargo publish --dry-run — `orch-tui answer permits",
            "permits",
        ),
        ("[dialog] Trust this folder?", "dialogs"),
        ("[idle] Step 1 is done.", "idles"),
        (
            "[approval] #1 waits for approval · checks 1/2 · reviewer approve",
            "approve",
        ),
        ("[budget out] time budget exhausted", "overran"),
        ("[budget] tokens 850 of 1.0k (85%)", "spends"),
    ] {
        assert!(
            text.contains(&format!("  {task} {kind}")),
            "{task} {kind}:\n{text}"
        );
    }
}

#[test]
fn a_command_waits_for_a_locked_ledger_while_refreshes_go_on() {
    let f = every_kind();
    let (jobs, rx) = tui_jobs(&f.ledger());
    let other = Connection::open(f.ledger()).expect("open");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");

    jobs.human(
        "retry broke".into(),
        vec![HumanCmd {
            cmd: orch_tui::engine::HumanCommand::Retry,
            task: "broke".into(),
            note: Some("again".into()),
        }],
    );
    let why = wait_for(&rx, "the waiting note", |d| match d {
        JobDone::Waiting { what, why } if what == "retry broke" => Some(why),
        _ => None,
    });
    assert!(why.contains("busy"), "{why}");
    // Reads are not held up by the lock or by the waiting command.
    jobs.refresh();
    let inbox = wait_for(&rx, "a refresh during the lock", |d| match d {
        JobDone::Refreshed(r) => Some(r.inbox.len()),
        _ => None,
    });
    assert_eq!(inbox, 13, "broke is still failed while the command waits");

    other.execute_batch("ROLLBACK").expect("release");
    let message = wait_for(&rx, "the command's answer", |d| match d {
        JobDone::Human { message, .. } => Some(message),
        _ => None,
    });
    assert_eq!(message, "broke: failed -> ready");
    let json = f.status_json();
    let broke = json["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == "broke"))
        .expect("broke");
    assert_eq!(broke["state"], "ready", "{broke:#}");
}
