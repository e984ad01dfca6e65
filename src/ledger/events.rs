//! The append-only event log.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{Result, now_ms};
pub use crate::core::domain::{Actor, AttemptNo, EventKind};

#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub seq: i64,
    pub ts_ms: i64,
    pub task: Option<String>,
    /// The attempt's number within its task (not its row id).
    pub attempt: Option<AttemptNo>,
    pub actor: Actor,
    pub kind: EventKind,
    pub data: serde_json::Value,
}

pub fn append(
    conn: &Connection,
    task: Option<&str>,
    attempt: Option<AttemptNo>,
    actor: Actor,
    kind: EventKind,
    data: &serde_json::Value,
) -> Result<i64> {
    // Cached: a plan load appends one event per task.
    conn.prepare_cached(
        "INSERT INTO events (ts_ms, task, attempt, actor, kind, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![now_ms() as i64, task, attempt, actor, kind, data.to_string()])?;
    Ok(conn.last_insert_rowid())
}

impl super::Ledger {
    /// Events after `after_seq`, oldest first, optionally for one task; at most `limit`.
    pub fn events(
        &self,
        after_seq: i64,
        task: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, ts_ms, task, attempt, actor, kind, data FROM events
             WHERE seq > ?1 AND (?2 IS NULL OR task = ?2) ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![after_seq, task, limit as i64], |r| {
            let data: String = r.get(6)?;
            Ok(EventRow {
                seq: r.get(0)?,
                ts_ms: r.get(1)?,
                task: r.get(2)?,
                attempt: r.get(3)?,
                actor: r.get(4)?,
                kind: r.get(5)?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn last_seq(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?)
    }

    /// Record an event that changes no state table (e.g. a human note).
    pub fn record(
        &mut self,
        task: Option<&str>,
        attempt: Option<AttemptNo>,
        actor: Actor,
        kind: EventKind,
        data: serde_json::Value,
    ) -> Result<i64> {
        self.write(|tx| append(tx, task, attempt, actor, kind, &data))
    }
}
