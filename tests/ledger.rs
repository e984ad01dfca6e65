//! The ledger's promises (DESIGN.md §3, §4; research/reliability.md R2, R3, R4, R8, R14, R20),
//! checked on real SQLite files and through the real `orch-tui` binary.

mod common;
mod ledger_support;

use std::time::{Duration, Instant};

use ledger_support::claims::{Claimed, claim, plan_text, repo_with_plan, tokens_of, worker_env};
use ledger_support::{Repo, file_bytes, hash};
use orch_tui::core::state::TaskState;
use orch_tui::ledger::{
    Actor, AttemptNo, EventData, EventKind, Ledger, LedgerError, Patch, SCHEMA_VERSION, transition,
};
use rusqlite::{Connection, params};

// ------------------------------------------------------------------------------------------
// 1. The database itself enforces the state machine (R8).

fn insert_task(conn: &Connection, id: &str, state: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO tasks (id, ord, title, content_hash, max_attempts, state, updated_ms)
         VALUES (?1, 0, 't', 'h', 1, ?2, 0)",
        params![id, state],
    )
}

#[test]
fn raw_sql_can_make_exactly_the_legal_transitions() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    drop(Ledger::open(&path).unwrap());
    // A plain connection, as any tool (or a bug) could open: no orch-tui code in the way.
    let conn = Connection::open(&path).unwrap();
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        triggers,
        [
            "attempts_spend_never_decreases",
            "attempts_spend_valid_insert",
            "events_append_only_delete",
            "events_append_only_update",
            "tasks_legal_transition"
        ]
    );

    let mut legal = 0;
    let mut refused = 0;
    for (i, from) in TaskState::ALL.iter().enumerate() {
        for (j, to) in TaskState::ALL.iter().enumerate() {
            let id = format!("t-{i}-{j}");
            insert_task(&conn, &id, from.as_str()).unwrap();
            let res = conn.execute(
                "UPDATE tasks SET state = ?1 WHERE id = ?2",
                params![to.as_str(), id],
            );
            let now: String = conn
                .query_row("SELECT state FROM tasks WHERE id = ?1", [&id], |r| r.get(0))
                .unwrap();
            if from == to {
                // Writing the same state is not a transition: the row is untouched either way.
                assert!(!from.can_move_to(*to), "{from} -> itself is in the table");
                assert_eq!(res.unwrap(), 1, "{from} -> {to}: rewrite refused");
                assert_eq!(now, from.as_str());
            } else if from.can_move_to(*to) {
                legal += 1;
                assert_eq!(
                    res.unwrap_or_else(|e| panic!("legal {from} -> {to} refused: {e}")),
                    1
                );
                assert_eq!(now, to.as_str(), "{from} -> {to}");
            } else {
                refused += 1;
                let err = res.expect_err(&format!("illegal {from} -> {to} accepted by SQLite"));
                assert!(
                    err.to_string().contains("illegal task transition"),
                    "{from} -> {to}: {err}"
                );
                assert_eq!(now, from.as_str(), "{from} -> {to} changed the row");
            }
        }
    }
    let table = orch_tui::core::state::legal_transitions().len();
    assert_eq!(legal, table);
    assert_eq!(legal + refused, 13 * 12);
}

#[test]
fn events_refuse_update_and_delete_and_states_must_be_known() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    let mut ledger = Ledger::open(&path).unwrap();
    let seq = ledger
        .record(
            None,
            None,
            Actor::Human,
            EventKind::Note,
            serde_json::json!({"x": 1}),
        )
        .unwrap();
    drop(ledger);

    let conn = Connection::open(&path).unwrap();
    let err = conn
        .execute("UPDATE events SET kind = 'forged' WHERE seq = ?1", [seq])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("events are append-only: UPDATE refused"),
        "{err}"
    );
    let err = conn
        .execute("DELETE FROM events WHERE seq = ?1", [seq])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("events are append-only: DELETE refused"),
        "{err}"
    );
    let err = conn.execute("DELETE FROM events", []).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let (kind, n): (String, i64) = conn
        .query_row(
            "SELECT (SELECT kind FROM events WHERE seq = ?1), (SELECT COUNT(*) FROM events)",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), n), ("note", 1));

    // A state the code does not know is refused on insert (CHECK) and on update.
    let err = insert_task(&conn, "bogus", "finished").unwrap_err();
    assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
    insert_task(&conn, "real", "pending").unwrap();
    assert!(
        conn.execute("UPDATE tasks SET state = 'finished' WHERE id = 'real'", [])
            .is_err()
    );
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM tasks WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);

    // A name the code does not know, where no CHECK guards it, is a read error that names it,
    // never read as something else.
    conn.execute(
        "INSERT INTO events (ts_ms, actor, kind, data) VALUES (1, 'human', 'teleported', '{}')",
        [],
    )
    .unwrap();
    drop(conn);
    let ledger = Ledger::open(&path).unwrap();
    let err = ledger.events(0, None, 10).unwrap_err().to_string();
    assert!(err.contains("unknown EventKind `teleported`"), "{err}");
}

// ------------------------------------------------------------------------------------------
// 2. A ledger from a newer orch-tui is refused and left alone (R20).

#[test]
fn a_newer_ledger_is_refused_and_left_byte_identical() {
    let r = repo_with_plan(&["a"]);
    {
        let conn = Connection::open(r.ledger()).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
            .unwrap();
    }
    let (before, before_wal) = file_bytes(&r.ledger());

    match Ledger::open(&r.ledger()) {
        Err(LedgerError::TooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("a newer ledger was opened"),
    }

    let out = r.orch(&["status"]);
    assert_eq!(out.code, 3, "status on a newer ledger: {out:?}");
    assert!(
        out.stderr.contains("upgrade orch-tui"),
        "the message says what to do: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{}",
        out.stderr
    );
    // Writers are refused the same way.
    let plan = r.write("plan2.toml", &plan_text("p", &["a", "b"]));
    let out = r.orch(&["plan", "load", plan.to_str().unwrap()]);
    assert_eq!(out.code, 3, "plan load on a newer ledger: {out:?}");

    let (after, after_wal) = file_bytes(&r.ledger());
    assert!(before == after, "the ledger file changed");
    assert_eq!(
        before_wal.as_deref().map(hash),
        after_wal.as_deref().map(hash)
    );
    let conn = Connection::open(r.ledger()).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

// ------------------------------------------------------------------------------------------
// 3. Worker fencing and idempotency through the real binary (R2, R3, R4).

#[test]
fn worker_reports_are_fenced_by_token_and_epoch() {
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-right-0001", epoch);
    assert_eq!((c.n, c.epoch), (AttemptNo(1), 1));
    let n = c.n.to_string();

    // The right token: accepted, and the totals move.
    let env = worker_env(&lstr, "a", &n, &c.token);
    let seq0 = ledger.last_seq().unwrap();
    let out = r.orch_env(
        &[
            "worker",
            "usage",
            "--tokens-in",
            "5",
            "--tokens-out",
            "2",
            "--cost-usd",
            "0.5",
        ],
        &env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("usage recorded for a attempt 1"),
        "{out:?}"
    );
    assert_eq!(tokens_of(&ledger, "a"), (5, 2, 0.5));
    assert_eq!(ledger.last_seq().unwrap(), seq0 + 1);
    let ev = ledger.events(seq0, None, 10).unwrap();
    assert_eq!(
        (ev[0].kind, ev[0].actor, ev[0].attempt),
        (EventKind::Usage, Actor::Agent, Some(AttemptNo(1)))
    );

    // A wrong token: refused, exit 3, nothing written.
    let seq1 = ledger.last_seq().unwrap();
    let bad = worker_env(&lstr, "a", &n, "tok-wrong");
    for args in [
        &["worker", "usage", "--tokens-in", "5"][..],
        &["worker", "heartbeat"][..],
        &["worker", "done"][..],
    ] {
        let out = r.orch_env(args, &bad);
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(out.stderr.contains("stale or wrong token"), "{out:?}");
        assert!(out.stderr.contains("changes nothing"), "{out:?}");
    }
    assert_eq!(
        ledger.last_seq().unwrap(),
        seq1,
        "a refused report wrote an event"
    );
    assert_eq!(tokens_of(&ledger, "a"), (5, 2, 0.5));
    assert_eq!(
        ledger.latest_attempt("a").unwrap().unwrap().reported,
        None,
        "a refused `done` was recorded"
    );

    // An attempt that does not exist.
    let out = r.orch_env(
        &["worker", "heartbeat"],
        &worker_env(&lstr, "a", "7", &c.token),
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("no attempt 7 of task `a`"), "{out:?}");

    // Missing or malformed ORCH_*: bad usage, exit 2, nothing written.
    for missing in ledger_support::ORCH_VARS {
        let partial: Vec<_> = env.iter().copied().filter(|(k, _)| *k != missing).collect();
        let out = r.orch_env(&["worker", "heartbeat"], &partial);
        assert_eq!(out.code, 2, "without {missing}: {out:?}");
        assert!(out.stderr.contains(missing), "names {missing}: {out:?}");
    }
    let out = r.orch_env(
        &["worker", "heartbeat"],
        &worker_env(&lstr, "a", "one", &c.token),
    );
    assert_eq!(out.code, 2, "{out:?}");
    let out = r.orch_env(
        &["worker", "heartbeat"],
        &worker_env("/nonexistent/ledger.db", "a", &n, &c.token),
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!std::path::Path::new("/nonexistent/ledger.db").exists());
    let out = r.orch_env(&["worker", "usage", "--cost-usd=-1"], &env);
    assert_eq!(out.code, 2, "negative cost: {out:?}");
    assert_eq!(ledger.last_seq().unwrap(), seq1);
    assert_eq!(tokens_of(&ledger, "a"), (5, 2, 0.5));

    // A new supervisor epoch fences out every attempt of the old one it did not adopt, right
    // token or not (until it decides, a report waits: tests/worker_hardening.rs).
    let epoch2 = ledger.begin_epoch(std::process::id()).unwrap();
    assert_eq!(epoch2, epoch + 1);
    let abandon = [orch_tui::core::ops::Op::FinishAttempt(
        orch_tui::core::ops::Finish {
            id: c.id,
            outcome: orch_tui::core::domain::AttemptState::Abandoned,
            exit_code: None,
            reason: Some("the supervisor stopped while it ran".into()),
            commit: None,
            diff_lines: None,
        },
    )];
    ledger
        .write(|tx| orch_tui::ledger::apply_ops(tx, &abandon, &mut String::new))
        .unwrap();
    let seq2 = ledger.last_seq().unwrap();
    let out = r.orch_env(&["worker", "usage", "--tokens-in", "5"], &env);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("no longer live"), "{out:?}");
    assert!(
        out.stderr.contains("epoch 1, supervisor epoch 2"),
        "{out:?}"
    );
    assert_eq!(ledger.last_seq().unwrap(), seq2);
    assert_eq!(tokens_of(&ledger, "a"), (5, 2, 0.5));
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
}

#[test]
fn a_repeated_worker_call_is_answered_once_and_a_reused_key_is_refused() {
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-idem-0001", epoch);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);
    let args = [
        "worker",
        "usage",
        "--tokens-in",
        "7",
        "--tokens-out",
        "3",
        "--idempotency-key",
        "k-1",
    ];

    let seq0 = ledger.last_seq().unwrap();
    let first = r.orch_env(&args, &env);
    assert_eq!(first.code, 0, "{first:?}");
    let second = r.orch_env(&args, &env);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(first.stdout, second.stdout, "a retry gets the first reply");
    assert_eq!(first.stderr, second.stderr);
    assert_eq!(
        ledger.last_seq().unwrap(),
        seq0 + 1,
        "one event for two calls"
    );
    assert_eq!(tokens_of(&ledger, "a"), (7, 3, 0.0), "counted once");

    // The same key for something else: a usage error, nothing written.
    let other = [
        "worker",
        "usage",
        "--tokens-in",
        "8",
        "--tokens-out",
        "3",
        "--idempotency-key",
        "k-1",
    ];
    let out = r.orch_env(&other, &env);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("idempotency key `k-1` was used for a different request"),
        "{out:?}"
    );
    let out = r.orch_env(&["worker", "heartbeat", "--idempotency-key", "k-1"], &env);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(ledger.last_seq().unwrap(), seq0 + 1);
    assert_eq!(tokens_of(&ledger, "a"), (7, 3, 0.0));

    // A new key is a new report.
    let mut again = args;
    again[7] = "k-2";
    let out = r.orch_env(&again, &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(tokens_of(&ledger, "a"), (14, 6, 0.0));
    assert_eq!(ledger.last_seq().unwrap(), seq0 + 2);

    // A wrong token never gets the stored reply of a used key: it is fenced (exit 3).
    let out = r.orch_env(&args, &worker_env(&lstr, "a", &n, "tok-wrong"));
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("stale or wrong token"), "{out:?}");

    // A lost reply retried after the supervisor moved on still gets the first answer (R2).
    ledger.begin_epoch(std::process::id()).unwrap();
    let seq1 = ledger.last_seq().unwrap();
    let retried = r.orch_env(&args, &env);
    assert_eq!(retried.code, 0, "{retried:?}");
    assert_eq!(retried.stdout, first.stdout);
    assert_eq!(ledger.last_seq().unwrap(), seq1);
    assert_eq!(tokens_of(&ledger, "a"), (14, 6, 0.0));
}

#[test]
fn another_attempt_may_reuse_an_idempotency_key() {
    let r = repo_with_plan(&["a", "b"]);
    let lstr = r.ledger().to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&r.ledger()).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let ca = claim(&mut ledger, "a", "tok-a", epoch);
    let cb = claim(&mut ledger, "b", "tok-b", epoch);
    let args = [
        "worker",
        "usage",
        "--tokens-in",
        "3",
        "--idempotency-key",
        "usage-1",
    ];
    for (t, c) in [("a", &ca), ("b", &cb)] {
        let n = c.n.to_string();
        let out = r.orch_env(&args, &worker_env(&lstr, t, &n, &c.token));
        assert_eq!(out.code, 0, "{t}: {out:?}");
        assert!(
            out.stdout.contains(&format!("for {t} attempt 1")),
            "{out:?}"
        );
        assert_eq!(tokens_of(&ledger, t).0, 3, "{t}");
    }
}

// ------------------------------------------------------------------------------------------
// 4. Concurrent writers: 4 agent processes and a supervisor, no lost or failed write (R14).

#[test]
fn four_worker_processes_and_a_supervisor_write_concurrently_without_loss() {
    const CALLS: usize = 150;
    let ids = ["w-a", "w-b", "w-c", "w-d"];
    let r = repo_with_plan(&["w-a", "w-b", "w-c", "w-d", "sup"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let claims: Vec<Claimed> = ids
        .iter()
        .map(|t| claim(&mut ledger, t, &format!("tok-{t}"), epoch))
        .collect();
    let seq0 = ledger.last_seq().unwrap();

    let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(ids.len()));
    let mut workers = Vec::new();
    for (t, c) in ids.iter().zip(&claims) {
        let dir = r.dir.clone();
        let (task, n, token, lstr) = (
            t.to_string(),
            c.n.to_string(),
            c.token.clone(),
            lstr.clone(),
        );
        let running = running.clone();
        workers.push(std::thread::spawn(move || {
            let env = worker_env(&lstr, &task, &n, &token);
            let mut lat = Vec::with_capacity(CALLS);
            let mut failures = Vec::new();
            for i in 0..CALLS {
                let tin = (i + 1).to_string();
                let out = if i % 2 == 0 {
                    ledger_support::run_orch(&dir, &["worker", "heartbeat"], &env)
                } else {
                    ledger_support::run_orch(
                        &dir,
                        &[
                            "worker",
                            "usage",
                            "--tokens-in",
                            &tin,
                            "--tokens-out",
                            "1",
                            "--cost-usd",
                            "0.25",
                        ],
                        &env,
                    )
                };
                lat.push(out.took);
                if out.code != 0 {
                    failures.push(format!("{task} call {i}: exit {} {}", out.code, out.stderr));
                }
            }
            running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            (lat, failures)
        }));
    }

    // The supervisor: pause and release a task of its own, and log events, all the while.
    let mut sup_writes = 0usize;
    let mut state = TaskState::Ready;
    let mut sup_lat = Vec::new();
    while running.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        let start = Instant::now();
        let to = if state == TaskState::Ready {
            TaskState::Paused
        } else {
            TaskState::Ready
        };
        ledger
            .write(|tx| {
                transition(
                    tx,
                    "sup",
                    state,
                    to,
                    &Patch::default(),
                    Actor::Supervisor,
                    None,
                    &EventData::default(),
                )
            })
            .unwrap();
        state = to;
        ledger
            .record(
                Some("sup"),
                None,
                Actor::Supervisor,
                EventKind::Note,
                serde_json::json!({ "n": sup_writes }),
            )
            .unwrap();
        sup_writes += 2;
        sup_lat.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }

    let mut lat = Vec::new();
    let mut failures = Vec::new();
    for w in workers {
        let (l, f) = w.join().unwrap();
        lat.extend(l);
        failures.extend(f);
    }
    assert!(failures.is_empty(), "failed worker calls: {failures:#?}");

    let calls = CALLS * ids.len();
    let events = ledger.events(seq0, None, 100_000).unwrap();
    assert_eq!(
        events.len(),
        calls + sup_writes,
        "events: {calls} worker calls + {sup_writes} supervisor writes"
    );
    assert_eq!(
        events.last().unwrap().seq - events[0].seq + 1,
        events.len() as i64,
        "no gap in seq"
    );
    let agent_events = events.iter().filter(|e| e.actor == Actor::Agent).count();
    assert_eq!(agent_events, calls);
    let usages = CALLS / 2;
    let tin: i64 = (1..=CALLS as i64).filter(|i| i % 2 == 0).sum();
    for t in ids {
        assert_eq!(
            tokens_of(&ledger, t),
            (tin, usages as i64, 0.25 * usages as f64),
            "usage totals of {t}"
        );
    }
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
    let fk: i64 = ledger
        .conn()
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk, 0);

    lat.sort();
    sup_lat.sort();
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    eprintln!(
        "worker call latency over {} calls (4 concurrent processes + supervisor, {} supervisor writes): \
         p50 {:?}, p99 {:?}, max {:?}; supervisor write pair p50 {:?}, p99 {:?}",
        lat.len(),
        sup_writes,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().unwrap(),
        pct(&sup_lat, 0.5),
        pct(&sup_lat, 0.99),
    );
}

// ------------------------------------------------------------------------------------------
// 6. Loading a plan is idempotent; a changed prompt is a new spec version.

#[test]
fn loading_the_same_plan_twice_changes_nothing_and_a_changed_prompt_bumps_one_version() {
    let r = Repo::initialised();
    let plan = r.write("plan.toml", &plan_text("p", &["a", "b", "c"]));
    let p = plan.to_str().unwrap();
    let out = r.orch(&["plan", "load", p]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("3 added, 0 changed, 0 unchanged"),
        "{out:?}"
    );

    let before = r.snapshot();
    let out = r.orch(&["plan", "load", p]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("0 added, 0 changed, 3 unchanged"),
        "{out:?}"
    );
    let after = r.snapshot();
    assert_eq!(before.counts, after.counts, "tasks/events/attempts/deps");
    assert_eq!(before.status, after.status);

    let events_before = r.orch(&["events", "--json"]).stdout.lines().count();
    r.write(
        "plan.toml",
        &plan_text("p", &["a", "b", "c"]).replace("Do b.", "Do b, differently."),
    );
    let out = r.orch(&["plan", "load", p]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("0 added, 1 changed, 2 unchanged"),
        "{out:?}"
    );
    let st = r.status_json();
    let versions: Vec<(String, i64)> = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["spec_version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [("a".into(), 1), ("b".into(), 2), ("c".into(), 1)]
    );
    let ev = r.orch(&["events", "--json"]);
    let new: Vec<serde_json::Value> = ev
        .stdout
        .lines()
        .skip(events_before)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(new.len(), 1, "one event for one changed task: {new:?}");
    assert_eq!(new[0]["kind"], "spec_changed");
    assert_eq!(new[0]["task"], "b");
    assert_eq!(new[0]["data"]["spec_version"], 2);

    // Loading the changed plan again is again a no-op.
    let out = r.orch(&["plan", "load", p]);
    assert!(
        out.stdout.contains("0 added, 0 changed, 3 unchanged"),
        "{out:?}"
    );
    assert_eq!(
        r.orch(&["events", "--json"]).stdout.lines().count(),
        events_before + 1
    );
}

/// A reload rewrites the dependencies of tasks that have not started, and only theirs; the
/// tasks it changes that way are reported as changed, and the DAG settles again.
#[test]
fn reloading_changed_dependencies_rewires_only_tasks_that_have_not_started() {
    let r = Repo::initialised();
    let plan = |deps_of_c: &str, deps_of_a: &str| {
        format!(
            "[plan]\nname = \"p\"\n\n[defaults]\nagent = \"sim\"\n\n\
             [[task]]\nid = \"a\"\ntitle = \"Task a\"\nprompt = \"Do a.\"\ndepends_on = [{deps_of_a}]\n\n\
             [[task]]\nid = \"b\"\ntitle = \"Task b\"\nprompt = \"Do b.\"\n\n\
             [[task]]\nid = \"c\"\ntitle = \"Task c\"\nprompt = \"Do c.\"\ndepends_on = [{deps_of_c}]\n"
        )
    };
    let p = r.write("plan.toml", &plan("\"a\"", ""));
    let p = p.to_str().unwrap();
    let out = r.orch(&["plan", "load", p]);
    assert!(out.stdout.contains("3 added"), "{out:?}");
    let state = |id: &str| -> (String, Vec<String>) {
        let st = r.status_json();
        let t = st["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone();
        let deps = t["depends_on"]
            .as_array()
            .map(|d| d.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        (t["state"].as_str().unwrap().to_string(), deps)
    };
    assert_eq!(state("a"), ("ready".into(), vec![]));
    assert_eq!(state("c"), ("pending".into(), vec!["a".to_string()]));

    // c now waits on b as well; a (already ready, so started as far as dependencies go) is
    // asked to wait on b too, which would rewrite its past: it keeps none.
    r.write("plan.toml", &plan("\"b\", \"a\"", "\"b\""));
    let out = r.orch(&["plan", "load", p]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("0 added, 1 changed, 2 unchanged"),
        "{out:?}"
    );
    assert_eq!(state("a"), ("ready".into(), vec![]));
    assert_eq!(
        state("c"),
        ("pending".into(), vec!["a".to_string(), "b".to_string()])
    );

    // c without dependencies becomes ready at once.
    r.write("plan.toml", &plan("", "\"b\""));
    let out = r.orch(&["plan", "load", p]);
    assert!(
        out.stdout.contains("0 added, 1 changed, 2 unchanged"),
        "{out:?}"
    );
    assert_eq!(state("c"), ("ready".into(), vec![]));
}
