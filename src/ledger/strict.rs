//! Schema v3: every table STRICT, so a column can never change type (DESIGN §4).
//!
//! Before v3 a column declared INTEGER took whatever SQLite made of a value: two reports of
//! `--tokens-in 9223372036854775807` overflowed `tokens_in + ?` into a REAL, and every later read
//! failed ("Invalid column type Real") — `status` and `run` broke for good. A STRICT table
//! refuses such a write instead, and spend also refuses to go down or below zero.
//!
//! SQLite cannot make a table STRICT in place, so the migration rebuilds each table (the
//! "other kinds of table schema changes" procedure of sqlite.org/lang_altertable.html): create
//! the STRICT copy, copy every row, drop the old table, rename, then re-create its indexes and
//! triggers — all inside the migration's one transaction, with foreign keys off for its length
//! and checked before the commit. Each copy is the table's own definition as the ledger stores
//! it, plus `STRICT`: every column, constraint and index the earlier versions made (whatever
//! they were in the build that made the file) carries over, and nothing is written twice here.
//! The transition trigger is generated afresh from `core::state`; the spend rules are triggers.
//! Spend values that earlier versions let through (a REAL from an overflow, a negative number
//! from a wrapped u64, infinity) are first clamped into range, each repair recorded as an event
//! with the old value.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};

use super::{LedgerError, Result, now_ms};
use crate::core::usage::{MAX_TOTAL_COST_USD, MAX_TOTAL_TOKENS};

/// The trigger the caller re-creates from `core::state`, so it is not carried over.
const TRANSITION_TRIGGER: &str = "tasks_legal_transition";

/// Spend is never negative, never past its limit, and never goes down, whoever writes it.
fn spend_triggers() -> String {
    let max = format!("{MAX_TOTAL_COST_USD:.1}");
    format!(
        "CREATE TRIGGER attempts_spend_valid_insert BEFORE INSERT ON attempts
         WHEN NEW.tokens_in < 0 OR NEW.tokens_out < 0 OR NOT (NEW.cost_usd BETWEEN 0 AND {max})
         BEGIN SELECT RAISE(ABORT, 'spend out of range'); END;
         CREATE TRIGGER attempts_spend_never_decreases
         BEFORE UPDATE OF tokens_in, tokens_out, cost_usd ON attempts
         WHEN NEW.tokens_in < OLD.tokens_in OR NEW.tokens_out < OLD.tokens_out
           OR NEW.cost_usd < OLD.cost_usd OR NEW.cost_usd > {max}
         BEGIN SELECT RAISE(ABORT, 'spend never goes down (nor past its limit)'); END;"
    )
}

/// `CREATE TABLE name (...)` as stored in `sqlite_schema` → `CREATE TABLE v3_name (...) STRICT`.
fn strict_copy(name: &str, sql: &str) -> Result<String> {
    let bad = || {
        LedgerError::BadInput(format!(
            "cannot migrate the ledger to schema v3: table `{name}` has a definition this \
             orch-tui cannot read ({sql}); nothing was changed"
        ))
    };
    let open = sql.find('(').ok_or_else(bad)?;
    let head = sql[..open].trim();
    let quoted = [name.to_string(), format!("\"{name}\""), format!("'{name}'")];
    let named = head
        .strip_prefix("CREATE TABLE")
        .map(str::trim)
        .is_some_and(|n| quoted.iter().any(|q| q == n));
    let body = sql[open..].trim_end();
    if !named || !body.ends_with(')') {
        return Err(bad());
    }
    Ok(format!("CREATE TABLE v3_{name} {body} STRICT;"))
}

fn schema_rows(tx: &Connection, kinds: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT name, sql FROM sqlite_schema WHERE type IN ({kinds}) AND sql IS NOT NULL
         AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
    ))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<Vec<(String, String)>, _>>()?;
    Ok(rows)
}

/// Rebuild every table STRICT. Runs inside the migration's transaction with foreign keys off.
pub(super) fn to_v3(tx: &Connection) -> Result<()> {
    repair_spend(tx)?;
    let tables = schema_rows(tx, "'table'")?;
    // Explicit indexes and triggers; the automatic ones of UNIQUE constraints have no SQL and
    // come back with their table.
    let extras: Vec<String> = schema_rows(tx, "'index', 'trigger'")?
        .into_iter()
        .filter(|(name, _)| name != TRANSITION_TRIGGER)
        .map(|(_, sql)| sql)
        .collect();
    for (name, sql) in &tables {
        tx.execute_batch(&strict_copy(name, sql)?)?;
        // The same definition, so the same columns in the same order.
        tx.execute_batch(&format!("INSERT INTO v3_{name} SELECT * FROM {name};"))?;
    }
    for (name, _) in tables.iter().rev() {
        tx.execute_batch(&format!("DROP TABLE {name};"))?;
    }
    for (name, _) in &tables {
        tx.execute_batch(&format!("ALTER TABLE v3_{name} RENAME TO {name};"))?;
    }
    for sql in &extras {
        tx.execute_batch(sql)?;
    }
    tx.execute_batch(&spend_triggers())?;
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
