//! Attempts: one run of an agent on a task, fenced by epoch and a random token.

use rusqlite::{OptionalExtension, Row};
use serde::Serialize;

use super::{Ledger, Result};
use crate::core::domain::{AttemptId, AttemptNo, AttemptState, Reported, Role, Substatus, Verdict};

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub id: AttemptId,
    pub task: String,
    pub n: AttemptNo,
    /// The fencing secret: never printed, never in `status --json`.
    #[serde(skip_serializing)]
    pub token: String,
    pub epoch: i64,
    pub profile: String,
    /// `agent` (does the task) or `reviewer` (judges an agent attempt with the same `n`).
    pub role: Role,
    pub state: AttemptState,
    pub substatus: Substatus,
    pub reported: Option<Reported>,
    pub question: Option<String>,
    pub pid: Option<i64>,
    pub worktree: Option<String>,
    pub branch: Option<String>,
    pub base: Option<String>,
    pub commit_oid: Option<String>,
    pub log_dir: Option<String>,
    pub started_ms: i64,
    pub running_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub last_beat_ms: Option<i64>,
    pub verdict: Option<Verdict>,
    pub verdict_notes: Option<String>,
    /// The integration tip this attempt's merge writes, recorded before the ref moves.
    pub merge_tip: Option<String>,
    /// The integration tip that merge replaces.
    pub merge_onto: Option<String>,
    /// Lines added plus removed by the attempt's change.
    pub diff_lines: Option<i64>,
    /// The agent's conversation id (Claude `session_id`, Codex `thread_id`).
    pub session: Option<String>,
    /// The earlier attempt this one continues (same worktree and conversation).
    pub continues: Option<AttemptId>,
    /// Time held for a paused task (not running time).
    pub held_ms: i64,
    /// The dependency whose candidate tip it started on (its veto window running), if any.
    pub spec_on: Option<String>,
}

const COLS: &str = "id, task, n, token, epoch, profile, state, substatus, reported, question, pid, \
    worktree, branch, base, commit_oid, log_dir, started_ms, running_ms, ended_ms, exit_code, reason, \
    tokens_in, tokens_out, cost_usd, last_beat_ms, role, verdict, verdict_notes, merge_tip, merge_onto, diff_lines, session, continues, held_ms, spec_on";

fn from_row(r: &Row) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        id: r.get(0)?,
        task: r.get(1)?,
        n: r.get(2)?,
        token: r.get(3)?,
        epoch: r.get(4)?,
        profile: r.get(5)?,
        state: r.get(6)?,
        substatus: r.get(7)?,
        reported: r.get(8)?,
        question: r.get(9)?,
        pid: r.get(10)?,
        worktree: r.get(11)?,
        branch: r.get(12)?,
        base: r.get(13)?,
        commit_oid: r.get(14)?,
        log_dir: r.get(15)?,
        started_ms: r.get(16)?,
        running_ms: r.get(17)?,
        ended_ms: r.get(18)?,
        exit_code: r.get(19)?,
        reason: r.get(20)?,
        tokens_in: r.get(21)?,
        tokens_out: r.get(22)?,
        cost_usd: r.get(23)?,
        last_beat_ms: r.get(24)?,
        role: r.get(25)?,
        verdict: r.get(26)?,
        verdict_notes: r.get(27)?,
        merge_tip: r.get(28)?,
        merge_onto: r.get(29)?,
        diff_lines: r.get(30)?,
        session: r.get(31)?,
        continues: r.get(32)?,
        held_ms: r.get(33)?,
        spec_on: r.get(34)?,
    })
}

impl Ledger {
    pub fn attempts(&self, task: &str) -> Result<Vec<AttemptRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM attempts WHERE task = ?1 ORDER BY n, role"
        ))?;
        let rows = stmt.query_map([task], from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    pub fn attempt(&self, id: AttemptId) -> Result<Option<AttemptRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLS} FROM attempts WHERE id = ?1"))?;
        Ok(stmt.query_row([id], from_row).optional()?)
    }

    /// Every attempt of every task, in the order they started.
    pub fn all_attempts(&self) -> Result<Vec<AttemptRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM attempts ORDER BY started_ms, id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Every attempt, handed to `f` one by one in the order their rows were made (by id: no
    /// sort, and no list of them all, for large ledgers).
    pub fn each_attempt(&self, mut f: impl FnMut(AttemptRow)) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLS} FROM attempts ORDER BY id"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(from_row(r)?);
        }
        Ok(())
    }

    /// Attempts still marked live (starting or running), from any epoch.
    pub fn live_attempts(&self) -> Result<Vec<AttemptRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM attempts WHERE state IN ('starting', 'running') ORDER BY id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The newest attempt of a task.
    pub fn latest_attempt(&self, task: &str) -> Result<Option<AttemptRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM attempts WHERE task = ?1 AND role = 'agent' ORDER BY n DESC LIMIT 1"
        ))?;
        Ok(stmt.query_row([task], from_row).optional()?)
    }

    /// Total tokens and cost over every attempt (the run's spend). Summed here, saturating at
    /// i64::MAX: SQLite's SUM fails with "integer overflow" once the totals pass it.
    pub fn spend(&self) -> Result<(i64, f64)> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tokens_in, tokens_out, cost_usd FROM attempts")?;
        let mut rows = stmt.query([])?;
        let (mut tokens, mut cost) = (0i64, 0f64);
        while let Some(r) = rows.next()? {
            let (a, b, c): (i64, i64, f64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            tokens = tokens.saturating_add(a).saturating_add(b);
            cost += c;
        }
        Ok((tokens, cost))
    }
}
