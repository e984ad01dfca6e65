//! Schema v3: every table STRICT, so a column can never change type (DESIGN §4).
//!
//! Before v3 a column declared INTEGER took whatever SQLite made of a value: two reports of
//! `--tokens-in 9223372036854775807` overflowed `tokens_in + ?` into a REAL, and every later read
//! failed ("Invalid column type Real") — `status` and `run` broke for good. A STRICT table
//! refuses such a write instead, and the spend columns also refuse to go down or below zero.
//!
//! SQLite cannot make a table STRICT in place, so the migration rebuilds each table (the
//! "other kinds of table schema changes" procedure of sqlite.org/lang_altertable.html): create
//! the STRICT copy, copy every row, drop the old table, rename, then re-create its indexes and
//! triggers — all inside the migration's one transaction, with foreign keys off for its length
//! and checked before the commit. Spend values that earlier versions let through (a REAL from an
//! overflow, a negative number from a wrapped u64, infinity) are first clamped into range, each
//! repair recorded as an event with the old value.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};

use super::{LedgerError, Result, now_ms};
use crate::core::usage::{MAX_TOTAL_COST_USD, MAX_TOTAL_TOKENS};

/// The v3 tables, in an order where every table comes after those it references. `{states}`
/// and `{max_cost}` are filled in by [`table_sql`]. Every column of v2 must be here (the
/// migration refuses to drop one): `attempts.diff_lines` is the one v2 gained late, present in
/// ledgers of builds that have it.
const TABLES: &[(&str, &str)] = &[
    (
        "supervisor",
        "id INTEGER PRIMARY KEY CHECK (id = 1),
        epoch INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        started_ms INTEGER NOT NULL,
        integration_tip TEXT,
        hold TEXT",
    ),
    (
        "plan",
        "id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        file TEXT NOT NULL,
        loaded_ms INTEGER NOT NULL",
    ),
    (
        "tasks",
        "id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64 AND id NOT GLOB '*[^a-z0-9-]*'),
        ord INTEGER NOT NULL,
        title TEXT NOT NULL,
        prompt TEXT NOT NULL,
        spec_path TEXT,
        content_hash TEXT NOT NULL,
        spec_version INTEGER NOT NULL DEFAULT 1,
        agent TEXT,
        capabilities TEXT NOT NULL DEFAULT '[]',
        priority INTEGER NOT NULL DEFAULT 0,
        checks TEXT NOT NULL DEFAULT '[]',
        max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
        budget_time_ms INTEGER CHECK (budget_time_ms IS NULL OR budget_time_ms > 0),
        budget_tokens INTEGER CHECK (budget_tokens IS NULL OR budget_tokens >= 0),
        budget_cost_usd REAL CHECK (budget_cost_usd IS NULL OR budget_cost_usd >= 0),
        risk_high INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ({states})),
        paused_from TEXT,
        version INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        not_before_ms INTEGER NOT NULL DEFAULT 0,
        ready_since_ms INTEGER NOT NULL DEFAULT 0,
        note TEXT,
        reason TEXT,
        stage TEXT CHECK (stage IS NULL OR stage IN ('checks','reviewer','human','veto')),
        stage_until_ms INTEGER,
        updated_ms INTEGER NOT NULL",
    ),
    (
        "deps",
        "task TEXT NOT NULL REFERENCES tasks(id),
        dep TEXT NOT NULL REFERENCES tasks(id),
        PRIMARY KEY (task, dep),
        CHECK (task <> dep)",
    ),
    (
        "attempts",
        "id INTEGER PRIMARY KEY,
        task TEXT NOT NULL REFERENCES tasks(id),
        n INTEGER NOT NULL,
        token TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        profile TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('agent','reviewer')),
        state TEXT NOT NULL CHECK (state IN ('starting','running','succeeded','failed','abandoned','killed')),
        substatus TEXT NOT NULL DEFAULT 'starting',
        reported TEXT,
        question TEXT,
        pid INTEGER,
        worktree TEXT,
        branch TEXT,
        base TEXT,
        commit_oid TEXT,
        log_dir TEXT,
        started_ms INTEGER NOT NULL,
        running_ms INTEGER,
        ended_ms INTEGER,
        exit_code INTEGER,
        reason TEXT,
        tokens_in INTEGER NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
        tokens_out INTEGER NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
        cost_usd REAL NOT NULL DEFAULT 0 CHECK (cost_usd >= 0 AND cost_usd <= {max_cost}),
        last_beat_ms INTEGER,
        verdict TEXT CHECK (verdict IS NULL OR verdict IN ('approve','changes')),
        verdict_notes TEXT,
        merge_tip TEXT,
        merge_onto TEXT,
        diff_lines INTEGER,
        UNIQUE (task, n, role)",
    ),
    (
        "events",
        "seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms INTEGER NOT NULL,
        task TEXT,
        attempt INTEGER,
        actor TEXT NOT NULL CHECK (actor IN ('supervisor','agent','human','check')),
        kind TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'",
    ),
    (
        "idempotency",
        "key TEXT PRIMARY KEY,
        request TEXT NOT NULL,
        reply TEXT NOT NULL,
        exit_code INTEGER NOT NULL,
        ts_ms INTEGER NOT NULL",
    ),
];

/// Indexes and triggers, re-created once the tables have their final names. The transition
/// trigger is generated from `core::state` by the caller.
const AFTER: &str = r#"
CREATE INDEX deps_by_dep ON deps(dep);
CREATE INDEX events_by_task ON events(task, seq);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
CREATE TRIGGER attempts_spend_never_decreases
BEFORE UPDATE OF tokens_in, tokens_out, cost_usd ON attempts
WHEN NEW.tokens_in < OLD.tokens_in OR NEW.tokens_out < OLD.tokens_out OR NEW.cost_usd < OLD.cost_usd
BEGIN SELECT RAISE(ABORT, 'spend never goes down'); END;
"#;

fn table_sql(name: &str, columns: &str, states: &str) -> String {
    let body = columns
        .replace("{states}", states)
        .replace("{max_cost}", &format!("{MAX_TOTAL_COST_USD:.1}"));
    format!("CREATE TABLE {name} (\n        {body}\n) STRICT;")
}

fn columns_of(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let cols = stmt
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<Vec<String>, _>>()?;
    Ok(cols)
}

/// Rebuild every table STRICT. Runs inside the migration's transaction with foreign keys off.
pub(super) fn to_v3(tx: &Connection, states: &str) -> Result<()> {
    repair_spend(tx)?;
    for (name, columns) in TABLES {
        let new = format!("v3_{name}");
        tx.execute_batch(&table_sql(&new, columns, states))?;
        let old_cols = columns_of(tx, name)?;
        let new_cols = columns_of(tx, &new)?;
        // A column this migration does not know would be lost: refuse rather than drop data.
        if let Some(lost) = old_cols.iter().find(|c| !new_cols.contains(c)) {
            return Err(LedgerError::BadInput(format!(
                "cannot migrate the ledger to schema v3: column {name}.{lost} is not in the v3 \
                 table (this orch-tui build is inconsistent; nothing was changed)"
            )));
        }
        let list = old_cols.join(", ");
        tx.execute_batch(&format!(
            "INSERT INTO {new} ({list}) SELECT {list} FROM {name};"
        ))?;
    }
    // Children before parents is not needed with foreign keys off, but keeps the intent clear.
    for (name, _) in TABLES.iter().rev() {
        tx.execute_batch(&format!("DROP TABLE {name};"))?;
    }
    for (name, _) in TABLES {
        tx.execute_batch(&format!("ALTER TABLE v3_{name} RENAME TO {name};"))?;
    }
    tx.execute_batch(AFTER)?;
    Ok(())
}

/// Clamp spend values that a STRICT table (or its checks) would refuse, recording each repair.
/// Tokens past the 64-bit range (stored as a REAL, or wrapped to a negative number) become the
/// largest total allowed; a cost past its limit (infinity included) becomes the limit.
fn repair_spend(tx: &Connection) -> Result<()> {
    let mut bad = Vec::new();
    {
        let mut stmt = tx.prepare(
            "SELECT id, task, n, tokens_in, tokens_out, cost_usd FROM attempts
             WHERE typeof(tokens_in) <> 'integer' OR tokens_in < 0
                OR typeof(tokens_out) <> 'integer' OR tokens_out < 0
                OR typeof(cost_usd) NOT IN ('real', 'integer') OR NOT (cost_usd >= 0 AND cost_usd <= ?1)",
        )?;
        let mut rows = stmt.query([MAX_TOTAL_COST_USD])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let task: String = r.get(1)?;
            let n: i64 = r.get(2)?;
            let was = (
                text(r.get_ref(3)?),
                text(r.get_ref(4)?),
                text(r.get_ref(5)?),
            );
            let now = (
                clamp_tokens(r.get_ref(3)?),
                clamp_tokens(r.get_ref(4)?),
                clamp_cost(r.get_ref(5)?),
            );
            bad.push((id, task, n, was, now));
        }
    }
    for (id, task, n, was, now) in bad {
        tx.execute(
            "UPDATE attempts SET tokens_in = ?2, tokens_out = ?3, cost_usd = ?4 WHERE id = ?1",
            params![id, now.0, now.1, now.2],
        )?;
        let data = serde_json::json!({
            "migration": 3,
            "repaired": "spend out of range, clamped",
            "was": { "tokens_in": was.0, "tokens_out": was.1, "cost_usd": was.2 },
            "now": { "tokens_in": now.0, "tokens_out": now.1, "cost_usd": now.2 },
        });
        tx.execute(
            "INSERT INTO events (ts_ms, task, attempt, actor, kind, data)
             VALUES (?1, ?2, ?3, 'supervisor', 'note', ?4)",
            params![now_ms() as i64, task, n, data.to_string()],
        )?;
    }
    Ok(())
}

fn text(v: ValueRef) -> String {
    match v {
        ValueRef::Null => "null".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

fn clamp_tokens(v: ValueRef) -> i64 {
    let max = MAX_TOTAL_TOKENS as i64;
    match v {
        ValueRef::Integer(i) if i >= 0 => i,
        // Negative: a u64 past i64::MAX, wrapped. Either way the agent reported more than fits.
        ValueRef::Integer(_) => max,
        ValueRef::Real(f) if (0.0..max as f64).contains(&f) => f as i64,
        ValueRef::Real(f) if f.is_nan() => 0,
        ValueRef::Real(_) => max,
        _ => 0,
    }
}

fn clamp_cost(v: ValueRef) -> f64 {
    let f = match v {
        ValueRef::Real(f) => f,
        ValueRef::Integer(i) => i as f64,
        _ => 0.0,
    };
    if f.is_nan() || f < 0.0 {
        0.0
    } else {
        f.min(MAX_TOTAL_COST_USD)
    }
}
