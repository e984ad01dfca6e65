//! `status --json` on one line (for a pipe) without building every attempt's row: the same
//! bytes as `serde_json::to_writer` of [`super::snapshot`], in about half its time on a large
//! ledger (issue #11: p99 < 50 ms at 10,000 tasks; docs/benchmarks.md, "Read model
//! benchmarks"). Indented output (a terminal) is the snapshot's, through serde_json.
//!
//! Attempts are three quarters of the output. They are stepped in the order of their rows (a
//! sort of them all doubled SQLite's time), each written at once as JSON into one buffer from
//! its text borrowed from the row (no `String` per field); the tasks are then written in plan
//! order, each followed by its attempts' bytes in their order. Only the attempts the inbox
//! reads ([`inbox::reads_attempt`]) are copied into rows.
//!
//! The writers here name the fields of [`Snapshot`], [`TaskView`] and `AttemptRow` once more,
//! beside their derives; each destructures its struct, so a field added there does not compile
//! until it is written here, and the tests compare both outputs byte for byte. Every value goes
//! through serde_json, so only the keys and the punctuation are written here.

use std::io::{self, Write};

use serde::Serialize;

use super::{Snapshot, Spend, TaskView, inbox, query};
use crate::core::domain::{AttemptId, AttemptNo, Role};
use crate::ledger::{AttemptRow, Ledger, LedgerError};

/// `"name":value,"name":value` for each variable, its name the key.
macro_rules! fields {
    ($out:expr; $first:ident $(, $rest:ident)*) => {
        $out.extend_from_slice(concat!("\"", stringify!($first), "\":").as_bytes());
        value(&mut $out, $first)?;
        $(
            $out.extend_from_slice(concat!(",\"", stringify!($rest), "\":").as_bytes());
            value(&mut $out, $rest)?;
        )*
    };
}

/// Why `status --json` stopped: the ledger could not be read (nothing was written), or the
/// output could not be written.
#[derive(Debug)]
pub enum JsonError {
    Ledger(LedgerError),
    Write(io::Error),
}

impl From<LedgerError> for JsonError {
    fn from(e: LedgerError) -> JsonError {
        JsonError::Ledger(e)
    }
}

impl From<rusqlite::Error> for JsonError {
    fn from(e: rusqlite::Error) -> JsonError {
        JsonError::Ledger(e.into())
    }
}

/// Write the snapshot at `now_ms` to `out` as one line of JSON: the bytes
/// `serde_json::to_writer` writes for [`super::snapshot`] at the same point of the ledger's
/// history. Everything is read (in one read transaction) before the first byte is written.
pub fn write_json(ledger: &Ledger, now_ms: u64, out: &mut impl Write) -> Result<(), JsonError> {
    // Pages read through a map of the file rather than copied into SQLite's page cache: a
    // tenth fewer page faults on a large ledger. This one-shot connection reads only.
    ledger
        .conn()
        .execute_batch("PRAGMA mmap_size = 268435456")?;
    let tx = ledger.conn().unchecked_transaction()?;
    let (mut tasks, index) = query::task_rows(ledger)?;
    let mut attempts = Attempts::read(ledger, &mut tasks, &index)?;
    // The inbox reads these tasks' attempts: the ones `reads_attempt` named, in their order.
    let mut rows = std::mem::take(&mut attempts.rows);
    rows.sort_by_key(|(i, a)| (*i, query::attempt_order(a)));
    for (i, a) in rows {
        tasks[i].attempts.push(a);
    }
    let run = super::run_view(ledger, attempts.live, now_ms)?;
    let checks = query::approval_checks(ledger, &tasks)?;
    let inbox = inbox::collect(&run, &tasks, &checks, now_ms);
    drop(tx);
    attempts.spans.sort_by_key(|s| s.order);
    // The run's spend adds every attempt's in the order they are listed, as the snapshot does
    // (a float sum in another order can differ in its last digit).
    let mut spend = Spend::default();
    for s in &attempts.spans {
        spend.add_parts(s.spent.0, s.spent.1, s.spent.2);
    }
    let snap = Snapshot {
        at_ms: now_ms,
        run,
        counts: super::counts(&tasks),
        spend,
        tasks,
        inbox,
    };
    let written = write_snapshot(&snap, &attempts, out);
    // Freeing tens of thousands of small allocations one by one would cost a large plan's
    // status a tenth of its time; the process ends right after.
    std::mem::forget(snap);
    std::mem::forget(attempts);
    written.map_err(JsonError::Write)
}

/// The snapshot's fields in its derive's order, its tasks' attempts from `attempts`.
fn write_snapshot(snap: &Snapshot, attempts: &Attempts, out: &mut impl Write) -> io::Result<()> {
    let Snapshot {
        at_ms: _,
        run,
        counts,
        spend,
        tasks,
        inbox,
    } = snap;
    let mut buf = Vec::with_capacity(CHUNK * 2);
    // `run` is flattened into the snapshot: its fields, without its closing brace.
    value(&mut buf, run)?;
    if buf.pop() != Some(b'}') {
        return Err(io::Error::other("the run did not serialize as an object"));
    }
    buf.push(b',');
    fields!(buf; counts, spend);
    buf.extend_from_slice(b",\"tasks\":[");
    let mut spans = attempts.spans.iter().peekable();
    for (i, t) in tasks.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_task(&mut buf, t)?;
        let mut first = true;
        while let Some(s) = spans.next_if(|s| s.order.0 == i) {
            if !first {
                buf.push(b',');
            }
            first = false;
            buf.extend_from_slice(&attempts.json[s.start..s.end]);
        }
        buf.extend_from_slice(b"]}");
        if buf.len() >= CHUNK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.push(b']');
    buf.push(b',');
    fields!(buf; inbox);
    buf.push(b'}');
    out.write_all(&buf)
}

/// How much is written at once.
const CHUNK: usize = 1 << 16;

/// `v` as serde_json writes it on one line.
fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> io::Result<()> {
    v.serialize(&mut serde_json::Serializer::new(out))
        .map_err(io::Error::from)
}

/// A task's fields in its derive's order, up to the opening bracket of its attempts.
fn write_task(out: &mut Vec<u8>, t: &TaskView) -> io::Result<()> {
    let TaskView {
        id,
        ord: _,
        title,
        state,
        priority,
        depends_on,
        agent,
        failures,
        max_attempts,
        reason,
        spec_version,
        stage,
        stage_until_ms,
        risk_high,
        paused_from,
        not_before_ms,
        budget,
        spend,
        attempts: _,
    } = t;
    out.push(b'{');
    fields!(*out; id, title, state, priority, depends_on, agent, failures, max_attempts, reason,
        spec_version, stage, stage_until_ms, risk_high, paused_from, not_before_ms, budget,
        spend);
    out.extend_from_slice(b",\"attempts\":[");
    Ok(())
}

/// An attempt's fields in its derive's order; never its token (`skip_serializing`).
fn write_attempt(out: &mut Vec<u8>, a: &AttemptRow<&str>) -> io::Result<()> {
    let AttemptRow {
        id,
        task,
        n,
        token: _,
        epoch,
        profile,
        role,
        state,
        substatus,
        reported,
        question,
        pid,
        worktree,
        branch,
        base,
        commit_oid,
        log_dir,
        started_ms,
        running_ms,
        ended_ms,
        exit_code,
        reason,
        tokens_in,
        tokens_out,
        cost_usd,
        last_beat_ms,
        verdict,
        verdict_notes,
        merge_tip,
        merge_onto,
        diff_lines,
        session,
        continues,
        held_ms,
        spec_on,
    } = a;
    out.push(b'{');
    fields!(*out; id, task, n, epoch, profile, role, state, substatus, reported, question, pid,
        worktree, branch, base, commit_oid, log_dir, started_ms, running_ms, ended_ms,
        exit_code, reason, tokens_in, tokens_out, cost_usd, last_beat_ms, verdict,
        verdict_notes, merge_tip, merge_onto, diff_lines, session, continues, held_ms, spec_on);
    out.push(b'}');
    Ok(())
}

/// Every attempt written as JSON, where each one's bytes are, and the rows the inbox reads.
struct Attempts {
    json: Vec<u8>,
    spans: Vec<Span>,
    /// (task index, row) of the attempts [`inbox::reads_attempt`] names.
    rows: Vec<(usize, AttemptRow)>,
    /// Attempts marked live.
    live: usize,
}

/// One attempt's bytes in [`Attempts::json`], and its place among its task's attempts.
struct Span {
    /// Its task's index, then [`query::attempt_order`].
    order: (usize, AttemptNo, Role, AttemptId),
    start: usize,
    end: usize,
    /// Its tokens in and out, and its cost.
    spent: (i64, i64, f64),
}

impl Attempts {
    /// Step every attempt once, in row order: its JSON, its task's spend, and a copy of the
    /// rows the inbox reads.
    fn read(
        ledger: &Ledger,
        tasks: &mut [TaskView],
        index: &query::TaskIndex,
    ) -> Result<Attempts, LedgerError> {
        let n: i64 = ledger
            .conn()
            .query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))?;
        let n = usize::try_from(n).unwrap_or(0);
        let mut me = Attempts {
            // About 500 bytes an attempt: one allocation of about the final size.
            json: Vec::with_capacity(n * 600),
            spans: Vec::with_capacity(n),
            rows: Vec::new(),
            live: 0,
        };
        // Rows of one task usually follow each other: its id is looked up once per run.
        let mut last = usize::MAX;
        ledger.each_attempt_borrowed(|a| {
            let i = match tasks.get(last) {
                Some(t) if t.id == a.task => last,
                _ => match index.get(a.task) {
                    Some(&i) => i,
                    // An attempt of no task (foreign keys forbid it) is in no list.
                    None => return Ok(()),
                },
            };
            last = i;
            let t = &mut tasks[i];
            t.spend.add(a);
            let live = a.state.is_live();
            me.live += usize::from(live);
            if inbox::reads_attempt(t, live) {
                me.rows.push((i, a.to_owned_row()));
            }
            let start = me.json.len();
            write_attempt(&mut me.json, a).map_err(|e| {
                LedgerError::BadInput(format!("attempt {}: cannot write it as JSON: {e}", a.id))
            })?;
            let (n, role, id) = query::attempt_order(a);
            me.spans.push(Span {
                order: (i, n, role, id),
                start,
                end: me.json.len(),
                spent: (a.tokens_in, a.tokens_out, a.cost_usd),
            });
            Ok(())
        })?;
        Ok(me)
    }
}
