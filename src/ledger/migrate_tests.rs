//! Migrating a real v1 ledger to v3 (STRICT tables) loses nothing, and repairs the spend values
//! that bug 7 of issue #7 left behind. The v1 ledger is made the way the old binary made it:
//! its schema from the V1 text (`migrate_to(.., 1)`), its rows through the ledger's own write
//! paths (plan load, epochs, claims, worker reports, outcomes), and the broken spend through the
//! exact SQL the old `worker usage` ran (`tokens_in = tokens_in + ?`).

use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, params};

use super::schema::migrate_to;
use super::{Ledger, WorkerCall};
use crate::core::domain::{Actor, AttemptNo, EventKind};
use crate::core::usage::{MAX_TOTAL_COST_USD, MAX_TOTAL_TOKENS};

const TABLES: [&str; 7] = [
    "supervisor",
    "plan",
    "tasks",
    "deps",
    "attempts",
    "events",
    "idempotency",
];

const PLAN: &str = r#"
[plan]
name = "migrate"

[defaults]
agent = "sim"
budget = { tokens = 5000, cost_usd = 1.5 }

[[task]]
id = "a"
title = "Task a"
prompt = "Do a."

[[task]]
id = "b"
title = "Task b"
prompt = "Do b."
depends_on = ["a"]
priority = 3
risk = "high"

[[task]]
id = "c"
title = "Task c"
prompt = "Do c."
depends_on = ["a", "b"]
checks = ["true"]
"#;

/// A ledger at schema `version`, opened without migrating further.
fn ledger_at(path: &std::path::Path, version: i64) -> Ledger {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
        .unwrap();
    migrate_to(&mut conn, version).unwrap();
    Ledger {
        conn,
        path: path.to_path_buf(),
        busy_budget: Duration::from_secs(10),
    }
}

/// Every row of every table, in rowid order, as SQLite holds it (type included).
fn dump(conn: &Connection) -> Vec<(String, Vec<Vec<Value>>)> {
    TABLES
        .iter()
        .map(|t| {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {t} ORDER BY rowid"))
                .unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
                .unwrap()
                .collect::<Result<Vec<Vec<Value>>, _>>()
                .unwrap();
            (t.to_string(), rows)
        })
        .collect()
}

/// A v1 ledger with a loaded plan, two epochs, finished and live attempts, reports of every
/// kind, an idempotent reply, and one attempt whose spend the old code broke.
fn filled_v1(path: &std::path::Path) -> Ledger {
    let mut l = ledger_at(path, 1);
    let plan =
        crate::core::plan::parse_plan("plan.toml", PLAN, &|_| Err("no specs".into())).unwrap();
    // The plan as the old binary loaded it: v1 kept each prompt in its task's row (v8 moved
    // them out, so today's `load_plan` cannot write a v1 ledger).
    l.conn
        .execute(
            "INSERT INTO plan (id, name, file, loaded_ms) VALUES (1, ?1, 'plan.toml', 1)",
            [&plan.name],
        )
        .unwrap();
    for (i, t) in plan.tasks.iter().enumerate() {
        l.conn
            .execute(
                "INSERT INTO tasks (id, ord, title, prompt, content_hash, agent, capabilities,
                    priority, checks, max_attempts, budget_time_ms, budget_tokens,
                    budget_cost_usd, risk_high, state, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '[]', ?7, ?8, 3, 60000, 5000, 1.5, ?9,
                    'pending', 1)",
                params![
                    t.id,
                    i as i64,
                    t.title,
                    t.prompt,
                    t.content_hash,
                    t.agent,
                    t.priority,
                    serde_json::to_string(&t.checks).unwrap(),
                    t.risk_high
                ],
            )
            .unwrap();
        for dep in &t.depends_on {
            l.conn
                .execute(
                    "INSERT INTO deps (task, dep) VALUES (?1, ?2)",
                    params![t.id, dep],
                )
                .unwrap();
        }
        l.conn
            .execute(
                "INSERT INTO events (ts_ms, task, actor, kind, data)
                 VALUES (1, ?1, 'human', 'task_added', '{}')",
                [&t.id],
            )
            .unwrap();
    }
    // As the old binary wrote them: raw statements on the v1 columns (its write functions are
    // gone; the ledger's own ops write columns v1 does not have).
    let promote = |l: &Ledger, id: &str| {
        l.conn
            .execute(
                "UPDATE tasks SET state = 'ready', version = version + 1 WHERE id = ?1",
                [id],
            )
            .unwrap();
        l.conn
            .execute(
                "INSERT INTO events (ts_ms, task, actor, kind, data)
                 VALUES (1, ?1, 'supervisor', 'state', '{\"from\":\"pending\",\"to\":\"ready\"}')",
                [id],
            )
            .unwrap();
    };
    promote(&l, "a");
    let me = std::process::id();
    let claim = |l: &mut Ledger, task: &str, token: &str, epoch: i64| {
        let n: i64 = l
            .conn
            .query_row(
                "SELECT COALESCE(MAX(n), 0) + 1 FROM attempts WHERE task = ?1",
                [task],
                |r| r.get(0),
            )
            .unwrap();
        for (from, to) in [("ready", "assigned"), ("assigned", "working")] {
            l.conn
                .execute(
                    "UPDATE tasks SET state = ?2, version = version + 1 WHERE id = ?1 AND state = ?3",
                    params![task, to, from],
                )
                .unwrap();
        }
        l.conn
            .execute(
                "INSERT INTO attempts (task, n, token, epoch, profile, state, substatus, pid,
                    worktree, branch, base, log_dir, started_ms, running_ms)
                 VALUES (?1, ?2, ?3, ?4, 'sim', 'running', 'busy', ?5, '/wt/x', 'orch/x',
                    'base0', '/logs', 1, 2)",
                params![task, n, token, epoch, me],
            )
            .unwrap();
        l.conn.last_insert_rowid()
    };
    let e1 = l.begin_epoch(me).unwrap();
    let first = claim(&mut l, "a", "tok-a-1", e1);
    let usage = WorkerCall::Usage {
        tokens_in: 1200,
        tokens_out: 340,
        cost_usd: 0.08,
    };
    l.worker_report(
        "a",
        AttemptNo(1),
        "tok-a-1",
        &usage,
        Some("k1"),
        &super::Caller::this_process(),
    )
    .unwrap();
    l.worker_report(
        "a",
        AttemptNo(1),
        "tok-a-1",
        &usage,
        Some("k1"),
        &super::Caller::this_process(),
    )
    .unwrap();
    let note = WorkerCall::Heartbeat {
        note: Some("ü ✓ \"quoted\"".into()),
    };
    l.worker_report(
        "a",
        AttemptNo(1),
        "tok-a-1",
        &note,
        None,
        &super::Caller::this_process(),
    )
    .unwrap();
    l.conn
        .execute(
            "UPDATE attempts SET state = 'failed', exit_code = 1, reason = 'exit 1',
                ended_ms = 3, substatus = 'ended' WHERE id = ?1",
            [first],
        )
        .unwrap();
    l.conn
        .execute(
            "UPDATE tasks SET state = 'ready', failures = 1, not_before_ms = 123,
                version = version + 1 WHERE id = 'a'",
            [],
        )
        .unwrap();
    // A second supervisor: attempt 2 is live and its spend is broken the old way.
    let e2 = l.begin_epoch(me).unwrap();
    let second = claim(&mut l, "a", "tok-a-2", e2);
    for (tokens_in, cost) in [(i64::MAX, 1e308), (i64::MAX, 1e308)] {
        l.conn
            .execute(
                "UPDATE attempts SET tokens_in = tokens_in + ?2, tokens_out = tokens_out + ?3,
                    cost_usd = cost_usd + ?4 WHERE id = ?1",
                params![second, tokens_in, u64::MAX as i64, cost],
            )
            .unwrap();
    }
    l.record(
        Some("b"),
        None,
        Actor::Human,
        EventKind::Note,
        serde_json::json!({ "note": "later" }),
    )
    .unwrap();
    l
}

#[test]
fn a_v1_ledger_full_of_data_migrates_to_strict_tables_with_every_row_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    let l = filled_v1(&path);
    let types: (String, String, String) = l
        .conn
        .query_row(
            "SELECT typeof(tokens_in), typeof(tokens_out), typeof(cost_usd) FROM attempts WHERE n = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        types,
        ("real".into(), "integer".into(), "real".into()),
        "the old SQL really broke the column types (bug 7)"
    );
    let before = dump(&l.conn);
    let last_seq = l.last_seq().unwrap();
    drop(l);

    let mut l = Ledger::open(&path).unwrap();
    let after = dump(&l.conn);
    for ((table, old), (_, new)) in before.iter().zip(&after) {
        match table.as_str() {
            // Bug 7's attempt: its spend is clamped; every other column is kept.
            "attempts" => {
                assert_eq!(old.len(), new.len());
                for (o, n) in old.iter().zip(new) {
                    let spend = 22..25;
                    if o[2] == Value::Integer(2) {
                        assert_eq!(
                            n[spend.clone()],
                            [
                                Value::Integer(MAX_TOTAL_TOKENS as i64),
                                Value::Integer(MAX_TOTAL_TOKENS as i64),
                                Value::Real(MAX_TOTAL_COST_USD)
                            ]
                        );
                    } else {
                        assert_eq!(o[spend.clone()], n[spend.clone()]);
                    }
                    assert_eq!(o[..22], n[..22], "attempt row kept: {o:?}");
                    assert_eq!(o[25..], n[25..28], "attempt row kept: {o:?}");
                    // Empty, or zero for a count (`held_ms`).
                    let held = n.len() - 2;
                    assert!(
                        n[28..].iter().enumerate().all(|(i, v)| {
                            *v == if i + 28 == held {
                                Value::Integer(0)
                            } else {
                                Value::Null
                            }
                        }),
                        "columns added after v1 start empty: {n:?}"
                    );
                }
            }
            // One event added: the record of that repair.
            "events" => {
                assert_eq!(old[..], new[..old.len()], "every event kept, in order");
                assert_eq!(new.len(), old.len() + 1);
            }
            "supervisor" => {
                for (o, n) in old.iter().zip(new) {
                    assert_eq!(o[..], n[..4]);
                }
                assert_eq!(old.len(), new.len());
            }
            // v5 added `resume_attempt` to tasks: empty for the rows that were there; v8 moved
            // the prompt (column 3) to `task_prompts`.
            "tasks" => {
                assert_eq!(old.len(), new.len());
                for (o, n) in old.iter().zip(new) {
                    let kept: Vec<&Value> = o.iter().take(3).chain(&o[4..]).collect();
                    let now: Vec<&Value> = n.iter().take(kept.len()).collect();
                    assert_eq!(kept, now, "task row kept");
                    assert!(n[kept.len()..].iter().all(|v| *v == Value::Null));
                    let prompt: Value = l
                        .conn
                        .query_row(
                            "SELECT prompt FROM task_prompts WHERE task = ?1",
                            [&o[0]],
                            |r| r.get(0),
                        )
                        .unwrap();
                    assert_eq!(prompt, o[3], "its prompt kept");
                }
            }
            _ => assert_eq!(old, new, "table {table} kept row for row"),
        }
    }
    let repair = l.events(last_seq, None, 10).unwrap();
    assert_eq!(repair.len(), 1);
    assert_eq!(repair[0].kind, EventKind::Note);
    assert_eq!(
        repair[0].data["was"]["tokens_out"], "-2",
        "{:?}",
        repair[0].data
    );
    assert_eq!(repair[0].data["now"]["tokens_in"], MAX_TOTAL_TOKENS);

    // Every table is STRICT, its triggers are back, and the ledger reads as a whole again.
    let strict: i64 = l
        .conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_list WHERE schema = 'main' AND strict = 1
             AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // The v1 tables, `gates` (v5) and `task_prompts` (v8), STRICT from the start.
    assert_eq!(strict, TABLES.len() as i64 + 2);
    let triggers: i64 = l
        .conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(triggers, 5, "append-only (2), transition, spend (2)");
    assert_eq!(l.integrity_check().unwrap(), "ok");
    let fk: i64 = l
        .conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1, "foreign keys are on again after the rebuild");
    assert_eq!(l.tasks().unwrap().len(), 3);
    assert_eq!(l.attempts("a").unwrap().len(), 2);
    assert!(l.spend().is_ok(), "spend reads again");
    assert_eq!(l.events(0, None, 1000).unwrap().len(), after[5].1.len());

    // New events continue the sequence; the append-only and transition rules still hold.
    let seq = l
        .record(
            None,
            None,
            Actor::Human,
            EventKind::Note,
            serde_json::json!({}),
        )
        .unwrap();
    assert_eq!(seq, repair[0].seq + 1);
    assert!(l.conn.execute("DELETE FROM events", []).is_err());
    assert!(
        l.conn
            .execute("UPDATE tasks SET state = 'done' WHERE id = 'c'", [])
            .is_err()
    );
    // The column type is now fixed: what broke v1 is refused by SQLite itself.
    let e = l
        .conn
        .execute(
            "UPDATE attempts SET tokens_in = tokens_in + 1.5 WHERE n = 1",
            [],
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot store REAL value in INTEGER column"),
        "{e}"
    );
    let e = l
        .conn
        .execute("UPDATE attempts SET cost_usd = 0 WHERE n = 1", [])
        .unwrap_err();
    assert!(e.to_string().contains("spend never goes down"), "{e}");
    // Opening again is a no-op.
    drop(l);
    let l = Ledger::open(&path).unwrap();
    assert_eq!(dump(&l.conn)[..5], after[..5]);
}

#[test]
fn a_v2_ledger_migrates_too_and_two_openers_migrate_once() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    drop(ledger_at(&path, 2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || Ledger::open(&p).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, super::SCHEMA_VERSION);
}

#[test]
fn each_table_keeps_the_shape_its_own_build_gave_it() {
    // A ledger whose v2 rebuilt `attempts` differently (as a later v2 does: a column more, the
    // table-wide UNIQUE replaced by a partial index, a quoted name after its rename).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    let l = ledger_at(&path, 2);
    l.conn
        .execute_batch(
            r#"
            PRAGMA foreign_keys = OFF;
            CREATE TABLE attempts_v2 (id INTEGER PRIMARY KEY, task TEXT NOT NULL REFERENCES tasks(id),
                n INTEGER NOT NULL, token TEXT NOT NULL, epoch INTEGER NOT NULL, profile TEXT NOT NULL,
                role TEXT NOT NULL DEFAULT 'agent', state TEXT NOT NULL,
                substatus TEXT NOT NULL DEFAULT 'starting', reported TEXT, question TEXT, pid INTEGER,
                worktree TEXT, branch TEXT, base TEXT, commit_oid TEXT, log_dir TEXT,
                started_ms INTEGER NOT NULL, running_ms INTEGER, ended_ms INTEGER, exit_code INTEGER,
                reason TEXT, tokens_in INTEGER NOT NULL DEFAULT 0,
                tokens_out INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0,
                last_beat_ms INTEGER, verdict TEXT, verdict_notes TEXT, merge_tip TEXT,
                merge_onto TEXT, diff_lines INTEGER);
            DROP TABLE attempts;
            ALTER TABLE attempts_v2 RENAME TO attempts;
            CREATE UNIQUE INDEX attempts_agent_n ON attempts(task, n) WHERE role = 'agent';
            INSERT INTO tasks (id, ord, title, prompt, content_hash, max_attempts, state, updated_ms)
                VALUES ('a', 0, 't', 'p', 'h', 1, 'working', 0);
            INSERT INTO attempts (task, n, token, epoch, profile, role, state, started_ms, diff_lines)
                VALUES ('a', 1, 't1', 1, 'sim', 'agent', 'running', 0, 42),
                       ('a', 1, 't2', 1, 'sim', 'reviewer', 'running', 0, NULL),
                       ('a', 1, 't3', 1, 'sim', 'reviewer', 'running', 0, NULL);
            "#,
        )
        .unwrap();
    let before = dump(&l.conn);
    drop(l);

    // Through v3 (the rebuild this test is about); later versions add columns and tables, and
    // move the prompts out (v8).
    let l = ledger_at(&path, 3);
    assert_eq!(dump(&l.conn), before, "every row kept");
    drop(l);
    let l = Ledger::open(&path).unwrap();
    let sql: String = l
        .conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'attempts_agent_n'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("WHERE role = 'agent'"), "{sql}");
    let strict: i64 = l
        .conn
        .query_row(
            "SELECT strict FROM pragma_table_list WHERE name = 'attempts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(strict, 1);
    // Its own constraints still hold: two reviewers may share n, two agents may not.
    let e = l
        .conn
        .execute(
            "INSERT INTO attempts (task, n, token, epoch, profile, role, state, started_ms)
             VALUES ('a', 1, 't4', 1, 'sim', 'agent', 'running', 0)",
            [],
        )
        .unwrap_err();
    assert!(e.to_string().contains("UNIQUE"), "{e}");
    let e = l
        .conn
        .execute(
            "UPDATE attempts SET diff_lines = 'many' WHERE token = 't1'",
            [],
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot store TEXT value in INTEGER column"),
        "{e}"
    );
}

#[test]
fn a_v3_ledger_migrates_to_v4_keeping_its_tip_and_hold_with_no_base_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    let mut l = ledger_at(&path, 3);
    l.begin_epoch(1).unwrap();
    l.conn
        .execute_batch("UPDATE supervisor SET integration_tip = 'abc', hold = 'moved'")
        .unwrap();
    drop(l);
    let l = Ledger::open(&path).unwrap();
    let row = l.integration().unwrap();
    assert_eq!(row.tip.as_deref(), Some("abc"));
    assert_eq!(row.hold.as_deref(), Some("moved"));
    assert_eq!(row.sync, crate::core::supervisor::SyncState::default());
    // The new columns are STRICT TEXT like the rest of the row.
    let refused = l
        .conn
        .execute("UPDATE supervisor SET base_oid = x'00'", [])
        .is_err();
    assert!(
        refused,
        "a blob is refused in a TEXT column of a STRICT table"
    );
}

#[test]
fn a_v7_ledger_moves_its_prompts_out_of_the_task_rows_keeping_each_one() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    let l = ledger_at(&path, 7);
    let long = "Write the parser. ".repeat(300);
    for (i, (id, prompt)) in [("a", long.as_str()), ("b", "Do b."), ("c", "")]
        .iter()
        .enumerate()
    {
        l.conn
            .execute(
                "INSERT INTO tasks (id, ord, title, prompt, content_hash, max_attempts, state,
                    updated_ms)
                 VALUES (?1, ?2, 't', ?3, 'h', 1, 'pending', 0)",
                params![id, i as i64, prompt],
            )
            .unwrap();
    }
    l.conn
        .execute("INSERT INTO deps (task, dep) VALUES ('b', 'a')", [])
        .unwrap();
    drop(l);

    let l = Ledger::open(&path).unwrap();
    let columns: Vec<String> = l
        .conn
        .prepare("SELECT name FROM pragma_table_info('tasks')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!columns.iter().any(|c| c == "prompt"), "{columns:?}");
    assert_eq!(l.task("a").unwrap().unwrap().prompt, long);
    let all: Vec<(String, String)> = l
        .tasks()
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.prompt))
        .collect();
    assert_eq!(
        all,
        [
            ("a".to_string(), long.clone()),
            ("b".into(), "Do b.".into()),
            ("c".into(), String::new())
        ]
    );
    assert_eq!(l.integrity_check().unwrap(), "ok");
    let broken: i64 = l
        .conn
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(broken, 0);
}
