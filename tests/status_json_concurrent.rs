//! `status --json` reads the tasks and the attempts on two connections at once
//! (`read::write_json`); with a writer committing as fast as it can meanwhile, every output is
//! still one state the ledger was in: the plan's name, each task's title, its attempts and
//! the run's spend all written by the same commit. (A commit landing in the microseconds
//! between the two readers' beginnings is rare here; `read::paired`'s unit tests put one
//! there on purpose.)

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rusqlite::{Connection, TransactionBehavior, params};

const TASKS: usize = 300;

/// A migrated ledger with `TASKS` tasks and no attempts; the plan is named `p0`.
fn ledger(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("ledger.db");
    drop(orch_tui::ledger::Ledger::open(&path).expect("create the ledger"));
    let mut c = Connection::open(&path).expect("open");
    let tx = c.transaction().expect("tx");
    tx.execute(
        "INSERT INTO plan (id, name, file, loaded_ms) VALUES (1, 'p0', 'plan.toml', 0)",
        [],
    )
    .expect("plan");
    for k in 0..TASKS {
        tx.execute(
            "INSERT INTO tasks (id, ord, title, content_hash, max_attempts, state, updated_ms)
             VALUES (?1, ?2, '0', 'h', 3, 'ready', 0)",
            params![format!("t{k}"), (TASKS - k) as i64],
        )
        .expect("task");
    }
    tx.commit().expect("commit");
    path
}

/// Write `i` (from 1): one attempt more for task `t{i % TASKS}` spending `i` tokens in, that
/// task's title its number of attempts, and the plan named `p{i}`, in one transaction.
fn write(c: &mut Connection, i: u64) {
    let task = format!("t{}", i % TASKS as u64);
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    let n: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM attempts WHERE task = ?1",
            [&task],
            |r| r.get(0),
        )
        .expect("count");
    tx.execute(
        "INSERT INTO attempts (task, n, token, epoch, profile, role, state, substatus,
            started_ms, ended_ms, tokens_in, tokens_out, cost_usd)
         VALUES (?1, ?2, 'secret', 1, 'sim', 'agent', 'succeeded', 'ended', 0, 1, ?3, 0, 0)",
        params![task, n + 1, i as i64],
    )
    .expect("attempt");
    tx.execute(
        "UPDATE tasks SET title = ?2 WHERE id = ?1",
        params![task, (n + 1).to_string()],
    )
    .expect("title");
    tx.execute("UPDATE plan SET name = ?1", [format!("p{i}")])
        .expect("plan");
    tx.commit().expect("commit");
}

/// What one output says, checked against the writes: the plan's `p{i}` means writes 1..=i and
/// no other are in it.
fn check(json: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(json).expect("JSON");
    let plan = v["plan"].as_str().expect("plan name");
    let i: u64 = plan[1..].parse().expect("p<number>");
    let tasks = v["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), TASKS);
    let mut attempts = 0;
    let mut tokens = 0;
    for t in tasks {
        let list = t["attempts"].as_array().expect("attempts");
        assert_eq!(
            t["title"].as_str(),
            Some(list.len().to_string().as_str()),
            "{plan}: task {} lists {} attempts, its title says otherwise",
            t["id"],
            list.len()
        );
        for a in list {
            assert_eq!(a["task"], t["id"], "an attempt listed under another task");
            let spent = a["tokens_in"].as_u64().expect("tokens");
            assert!(spent <= i, "{plan}: an attempt of write {spent} is listed");
            tokens += spent;
        }
        attempts += list.len() as u64;
    }
    assert_eq!(attempts, i, "{plan}: the attempts of writes 1..={i}");
    assert_eq!(
        tokens,
        i * (i + 1) / 2,
        "{plan}: the attempts of writes 1..={i}"
    );
    assert_eq!(
        v["spend"]["tokens_in"].as_u64(),
        Some(tokens),
        "{plan}: run's spend"
    );
    i
}

#[test]
fn every_output_is_one_state_the_ledger_was_in_while_a_writer_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = ledger(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let outputs = Arc::new(AtomicU64::new(0));
    let writer = {
        let (path, stop, written, outputs) =
            (path.clone(), stop.clone(), written.clone(), outputs.clone());
        std::thread::spawn(move || {
            let mut c = Connection::open(&path).expect("writer");
            c.busy_timeout(std::time::Duration::from_secs(10))
                .expect("busy timeout");
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                // At most 50 writes per output taken, so the reads stay short (the ledger
                // grows by an attempt per write) and a fast writer cannot finish its writes
                // before the reader has seen many states (CI met 25 states in 5,000 writes).
                if i >= 50 * (outputs.load(Ordering::Relaxed) + 1) {
                    std::thread::yield_now();
                    continue;
                }
                i += 1;
                write(&mut c, i);
                written.store(i, Ordering::Relaxed);
            }
        })
    };
    let reader = orch_tui::ledger::Ledger::open(&path).expect("reader");
    let (mut seen, mut states) = (0, std::collections::BTreeSet::new());
    // Until many outputs were taken while writes went on (a deadline, not a pause: the loop
    // ends as soon as enough was seen).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (seen < 100 || states.len() < 30) && std::time::Instant::now() < deadline {
        let mut out = Vec::new();
        orch_tui::read::write_json_using(
            &reader,
            orch_tui::ledger::now_ms(),
            &mut out,
            orch_tui::read::Readers::Two,
        )
        .expect("write_json");
        states.insert(check(&out));
        seen += 1;
        outputs.fetch_add(1, Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    assert!(
        states.len() >= 30,
        "the writer committed between the outputs: {} distinct states in {seen} outputs, \
         {} writes",
        states.len(),
        written.load(Ordering::Relaxed)
    );
}
