//! Attempts: one run of an agent on a task, fenced by epoch and a random token.

use rusqlite::types::{FromSqlError, ValueRef};
use rusqlite::{OptionalExtension, Row};
use serde::Serialize;

use super::{Ledger, Result};
use crate::core::domain::{AttemptId, AttemptNo, AttemptState, Reported, Role, Substatus, Verdict};

/// One row of `attempts`. Its text is `String`s, or with `S = &str` borrowed from the row being
/// stepped ([`Ledger::each_attempt_borrowed`]: no allocation, for `status --json` on large
/// ledgers).
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow<S = String> {
    pub id: AttemptId,
    pub task: S,
    pub n: AttemptNo,
    /// The fencing secret: never printed, never in `status --json`.
    #[serde(skip_serializing)]
    pub token: S,
    pub epoch: i64,
    pub profile: S,
    /// `agent` (does the task) or `reviewer` (judges an agent attempt with the same `n`).
    pub role: Role,
    pub state: AttemptState,
    pub substatus: Substatus,
    pub reported: Option<Reported>,
    pub question: Option<S>,
    pub pid: Option<i64>,
    pub worktree: Option<S>,
    pub branch: Option<S>,
    pub base: Option<S>,
    pub commit_oid: Option<S>,
    pub log_dir: Option<S>,
    pub started_ms: i64,
    pub running_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub reason: Option<S>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub last_beat_ms: Option<i64>,
    pub verdict: Option<Verdict>,
    pub verdict_notes: Option<S>,
    /// The integration tip this attempt's merge writes, recorded before the ref moves.
    pub merge_tip: Option<S>,
    /// The integration tip that merge replaces.
    pub merge_onto: Option<S>,
    /// Lines added plus removed by the attempt's change.
    pub diff_lines: Option<i64>,
    /// The agent's conversation id (Claude `session_id`, Codex `thread_id`).
    pub session: Option<S>,
    /// The earlier attempt this one continues (same worktree and conversation).
    pub continues: Option<AttemptId>,
    /// Time held for a paused task (not running time).
    pub held_ms: i64,
    /// The dependency whose candidate tip it started on (its veto window running), if any.
    pub spec_on: Option<S>,
}

/// What [`Ledger::each_attempt_spend`] reads of an attempt.
#[derive(Debug, Clone, Copy)]
pub struct AttemptSpend<'r> {
    pub task: &'r str,
    pub n: AttemptNo,
    pub role: Role,
    pub id: AttemptId,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
}

const COLS: &str = "id, task, n, token, epoch, profile, state, substatus, reported, question, pid, \
    worktree, branch, base, commit_oid, log_dir, started_ms, running_ms, ended_ms, exit_code, reason, \
    tokens_in, tokens_out, cost_usd, last_beat_ms, role, verdict, verdict_notes, merge_tip, merge_onto, diff_lines, session, continues, held_ms, spec_on";

/// How a text column becomes a row's string: an owned `String`, or a `&str` borrowed from the
/// row being stepped (valid until the next step).
pub trait Text<'r>: Sized {
    fn text(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Self>;
    fn text_or_null(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<Self>>;
}

impl Text<'_> for String {
    fn text(r: &Row<'_>, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }

    fn text_or_null(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Self>> {
        r.get(i)
    }
}

impl<'r> Text<'r> for &'r str {
    fn text(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Self> {
        let v = r.get_ref(i)?;
        v.as_str().map_err(|e| text_error(r, i, v, e))
    }

    fn text_or_null(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<Self>> {
        let v = r.get_ref(i)?;
        v.as_str_or_null().map_err(|e| text_error(r, i, v, e))
    }
}

/// The error `Row::get::<String>` gives for the same value.
fn text_error(r: &Row<'_>, i: usize, v: ValueRef<'_>, e: FromSqlError) -> rusqlite::Error {
    match e {
        FromSqlError::Utf8Error(e) => rusqlite::Error::Utf8Error(i, e),
        FromSqlError::InvalidType => rusqlite::Error::InvalidColumnType(
            i,
            r.as_ref().column_name(i).unwrap_or("?").to_string(),
            v.data_type(),
        ),
        e => rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(e)),
    }
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<AttemptRow> {
    row_as(r)
}

fn row_as<'r, S: Text<'r>>(r: &'r Row<'_>) -> rusqlite::Result<AttemptRow<S>> {
    let (text, opt) = (S::text, S::text_or_null);
    Ok(AttemptRow {
        id: r.get(0)?,
        task: text(r, 1)?,
        n: r.get(2)?,
        token: text(r, 3)?,
        epoch: r.get(4)?,
        profile: text(r, 5)?,
        state: r.get(6)?,
        substatus: r.get(7)?,
        reported: r.get(8)?,
        question: opt(r, 9)?,
        pid: r.get(10)?,
        worktree: opt(r, 11)?,
        branch: opt(r, 12)?,
        base: opt(r, 13)?,
        commit_oid: opt(r, 14)?,
        log_dir: opt(r, 15)?,
        started_ms: r.get(16)?,
        running_ms: r.get(17)?,
        ended_ms: r.get(18)?,
        exit_code: r.get(19)?,
        reason: opt(r, 20)?,
        tokens_in: r.get(21)?,
        tokens_out: r.get(22)?,
        cost_usd: r.get(23)?,
        last_beat_ms: r.get(24)?,
        role: r.get(25)?,
        verdict: r.get(26)?,
        verdict_notes: opt(r, 27)?,
        merge_tip: opt(r, 28)?,
        merge_onto: opt(r, 29)?,
        diff_lines: r.get(30)?,
        session: opt(r, 31)?,
        continues: r.get(32)?,
        held_ms: r.get(33)?,
        spec_on: opt(r, 34)?,
    })
}

impl AttemptRow<&str> {
    /// The same row with its text copied.
    pub fn to_owned_row(&self) -> AttemptRow {
        let s = |v: &str| v.to_string();
        let o = |v: Option<&str>| v.map(str::to_string);
        AttemptRow {
            id: self.id,
            task: s(self.task),
            n: self.n,
            token: s(self.token),
            epoch: self.epoch,
            profile: s(self.profile),
            state: self.state,
            substatus: self.substatus,
            reported: self.reported,
            question: o(self.question),
            pid: self.pid,
            worktree: o(self.worktree),
            branch: o(self.branch),
            base: o(self.base),
            commit_oid: o(self.commit_oid),
            log_dir: o(self.log_dir),
            started_ms: self.started_ms,
            running_ms: self.running_ms,
            ended_ms: self.ended_ms,
            exit_code: self.exit_code,
            reason: o(self.reason),
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost_usd: self.cost_usd,
            last_beat_ms: self.last_beat_ms,
            role: self.role,
            verdict: self.verdict,
            verdict_notes: o(self.verdict_notes),
            merge_tip: o(self.merge_tip),
            merge_onto: o(self.merge_onto),
            diff_lines: self.diff_lines,
            session: o(self.session),
            continues: self.continues,
            held_ms: self.held_ms,
            spec_on: o(self.spec_on),
        }
    }
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

    /// [`Ledger::each_attempt`] without copying, of the attempts whose row ids are in `ids`:
    /// each row's text is borrowed from the row being stepped, for as long as `f` runs.
    pub fn each_attempt_borrowed(
        &self,
        ids: std::ops::RangeInclusive<i64>,
        mut f: impl FnMut(&AttemptRow<&str>) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM attempts WHERE id BETWEEN ?1 AND ?2 ORDER BY id"
        ))?;
        let mut rows = stmt.query([ids.start(), ids.end()])?;
        while let Some(r) = rows.next()? {
            f(&row_as::<&str>(r)?)?;
        }
        Ok(())
    }

    /// Every attempt's task, place among its task's attempts and spend, in row order, the task
    /// borrowed from the row being stepped: a run's and its tasks' spend without reading the
    /// other 27 columns (the TUI's lean refresh, `read::snapshot_lean`).
    pub fn each_attempt_spend(&self, mut f: impl FnMut(AttemptSpend<'_>)) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT task, n, role, id, tokens_in, tokens_out, cost_usd FROM attempts ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(AttemptSpend {
                task: <&str as Text>::text(r, 0)?,
                n: r.get(1)?,
                role: r.get(2)?,
                id: r.get(3)?,
                tokens_in: r.get(4)?,
                tokens_out: r.get(5)?,
                cost_usd: r.get(6)?,
            });
        }
        Ok(())
    }

    /// The attempts marked live, and every attempt of the tasks `tasks_sql` selects (a
    /// `SELECT id FROM tasks ...` of the caller's), in row order.
    pub fn attempts_live_or_of(&self, tasks_sql: &str) -> Result<Vec<AttemptRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLS} FROM attempts WHERE state IN ('starting', 'running') OR task IN ({tasks_sql}) ORDER BY id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
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
