//! `status --json` on one line (for a pipe) without building every attempt's row: the same
//! bytes as `serde_json::to_writer` of [`super::snapshot`], in about half its time on a large
//! ledger (issue #11: p99 < 50 ms at 10,000 tasks; docs/benchmarks.md, "Read model
//! benchmarks"). Indented output (a terminal) is the snapshot's, through serde_json.
//!
//! Attempts are three quarters of the output. They are stepped in the order of their rows (a
//! sort of them all doubled SQLite's time), each written at once as JSON into one buffer from
//! its text borrowed from the row (no `String` per field); the tasks are then written in plan
//! order, each followed by its attempts' bytes in their order. Only the attempts the inbox
//! reads (`inbox::tasks_read_whole_sql`, and the live ones) are copied into rows.
//!
//! Two connections read at once (`paired.rs`: at the same point of the ledger's history): the
//! tasks on the caller's, and meanwhile three quarters of the attempts on a second one on a
//! thread of its own; the last quarter is read on the caller's after the tasks. The attempts'
//! tasks are numbered as met and mapped to the task list once both are read.
//!
//! The writers here name the fields of [`Snapshot`], [`TaskView`] and `AttemptRow` once more,
//! beside their derives; each destructures its struct, so a field added there does not compile
//! until it is written here, and the tests compare both outputs byte for byte. Every value goes
//! through serde_json, so only the keys and the punctuation are written here.

use std::io::{self, Write};
use std::ops::RangeInclusive;

use serde::Serialize;

use super::{Snapshot, Spend, TaskView, inbox, paired, query};
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

/// How many connections [`write_json_using`] reads the ledger with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// The tasks on the caller's connection and, at the same time on a thread of its own, the
    /// attempts on a second one at the same point of the ledger's history (`paired.rs`);
    /// one reader when that point cannot be had (a writer kept committing between them).
    Two,
    /// Everything on the caller's connection, one after the other.
    One,
}

/// Write the snapshot at `now_ms` to `out` as one line of JSON: the bytes
/// `serde_json::to_writer` writes for [`super::snapshot`] at the same point of the ledger's
/// history. Everything is read (in read transactions at one point of the ledger's history)
/// before the first byte is written. Reads with two connections ([`Readers::Two`]) when the
/// ledger is large and a second core is there.
pub fn write_json(ledger: &Ledger, now_ms: u64, out: &mut impl Write) -> Result<(), JsonError> {
    write_json_using(ledger, now_ms, out, readers_for(ledger))
}

/// Below this many attempts one reader is done before a second one is open (its thread, its
/// connection and its page faults cost ~7 ms of CPU: docs/benchmarks.md).
const TWO_READERS_FROM: i64 = 2_000;

/// Two readers only where they pay: a large ledger and a second core to read it on.
fn readers_for(ledger: &Ledger) -> Readers {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let attempts: i64 = ledger
        .conn()
        .query_row("SELECT COALESCE(MAX(id), 0) FROM attempts", [], |r| {
            r.get(0)
        })
        .unwrap_or(0);
    if cores >= 2 && attempts >= TWO_READERS_FROM {
        Readers::Two
    } else {
        Readers::One
    }
}

/// [`write_json`] with the readers chosen: the bytes are the same either way.
pub fn write_json_using(
    ledger: &Ledger,
    now_ms: u64,
    out: &mut impl Write,
    readers: Readers,
) -> Result<(), JsonError> {
    // Pages read through a map of the file rather than copied into SQLite's page cache: a
    // tenth fewer page faults on a large ledger. This one-shot connection reads only.
    ledger
        .conn()
        .execute_batch("PRAGMA mmap_size = 268435456")?;
    let second = match readers {
        Readers::Two => paired::second_reader(ledger),
        Readers::One => None,
    };
    let (tx, second) = match second {
        Some(second) => paired::begin_pair(ledger, second, || {})?,
        None => (ledger.conn().unchecked_transaction()?, None),
    };
    let whole = tasks_read_whole(ledger)?;
    let (mut tasks, index, mut attempts) = match second {
        Some(second) => {
            // The attempts with the lower ids on the second connection's thread while this one
            // reads the tasks, then the rest here: about a quarter of the attempts, so both
            // threads end at about the same time (10,000 tasks took about half as long as
            // 12,792 attempts).
            let (lo, hi, all): (Option<i64>, Option<i64>, i64) =
                tx.query_row("SELECT MIN(id), MAX(id), COUNT(*) FROM attempts", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            let all = usize::try_from(all).unwrap_or(0);
            let (lo, hi) = (lo.unwrap_or(0), hi.unwrap_or(0));
            let cut = lo.saturating_add(hi.saturating_sub(lo) / 4 * 3);
            std::thread::scope(|s| {
                // The second connection is closed on its thread too.
                let whole = &whole;
                let first = s.spawn(move || Attempts::read(&second, lo..=cut, whole, all));
                let tasks = query::task_rows(ledger);
                let rest = tasks
                    .as_ref()
                    .ok()
                    .map(|_| Attempts::read(ledger, cut.saturating_add(1)..=i64::MAX, whole, 0));
                let first = first.join().unwrap_or_else(|_| {
                    Err(LedgerError::BadInput(
                        "the reader of the attempts stopped".into(),
                    ))
                });
                let (tasks, index) = tasks?;
                let mut attempts = first?;
                if let Some(rest) = rest {
                    attempts.append(rest?);
                }
                Ok::<_, LedgerError>((tasks, index, attempts))
            })?
        }
        None => {
            let (tasks, index) = query::task_rows(ledger)?;
            let attempts = Attempts::read(ledger, i64::MIN..=i64::MAX, &whole, 0)?;
            (tasks, index, attempts)
        }
    };
    attempts.place(&mut tasks, &index);
    // The inbox reads these attempts (copied into rows as they were read).
    super::give_rows(&mut tasks, std::mem::take(&mut attempts.rows));
    attempts.spans.sort_by_key(|s| s.order);
    // The run's spend adds every attempt's in the order they are listed, as the snapshot does
    // (a float sum in another order can differ in its last digit).
    let mut spend = Spend::default();
    for s in &attempts.spans {
        spend.add_parts(s.spent.0, s.spent.1, s.spent.2);
    }
    let snap = super::assemble(ledger, tasks, attempts.live, spend, now_ms)?;
    drop(tx);
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

/// The tasks whose every attempt the inbox reads (few: waiting for approval, escalated,
/// failed); of the others it reads only the live attempts.
type Whole = std::collections::HashSet<String>;

/// [`Whole`], read inside the caller's read transaction on `ledger`.
fn tasks_read_whole(ledger: &Ledger) -> Result<Whole, LedgerError> {
    let mut stmt = ledger
        .conn()
        .prepare_cached(&inbox::tasks_read_whole_sql())?;
    let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Every attempt written as JSON, where each one's bytes are, and the rows the inbox reads.
/// Read without the task list (it may be read at the same time on another connection): the
/// attempts' tasks are numbered as first met, and [`Attempts::place`] maps them to the list.
struct Attempts {
    json: Vec<u8>,
    spans: Vec<Span>,
    /// (task, row) of the attempts the inbox reads (`inbox::tasks_read_whole_sql`, live).
    rows: Vec<(usize, AttemptRow)>,
    /// Attempts marked live.
    live: usize,
    /// The ids of the tasks met, by their number here.
    tasks: Vec<String>,
}

/// One attempt's bytes in [`Attempts::json`], and its place among its task's attempts.
struct Span {
    /// Its task (its number in [`Attempts::tasks`], then after [`Attempts::place`] its index
    /// in the task list), then [`query::attempt_order`].
    order: (usize, AttemptNo, Role, AttemptId),
    start: usize,
    end: usize,
    /// Its tokens in and out, and its cost.
    spent: (i64, i64, f64),
}

impl Attempts {
    /// Step every attempt whose row id is in `ids` once, in row order: its JSON, its spend, and
    /// a copy of the rows the inbox reads (those of the tasks in `whole`, and the live ones).
    /// Inside the caller's read transaction on `ledger`.
    fn read(
        ledger: &Ledger,
        ids: RangeInclusive<i64>,
        whole: &Whole,
        room: usize,
    ) -> Result<Attempts, LedgerError> {
        let c = ledger.conn();
        let n: i64 = c.query_row(
            "SELECT COUNT(*) FROM attempts WHERE id BETWEEN ?1 AND ?2",
            [ids.start(), ids.end()],
            |r| r.get(0),
        )?;
        let n = usize::try_from(n).unwrap_or(0);
        let mut me = Attempts {
            // About 500 bytes an attempt: one allocation of about the final size, with room
            // for the attempts `append`ed after these (`room` in all).
            json: Vec::with_capacity(n.max(room) * 600),
            spans: Vec::with_capacity(n),
            rows: Vec::new(),
            live: 0,
            tasks: Vec::new(),
        };
        let mut numbers = query::TaskIndex::default();
        // Rows of one task usually follow each other: its id is looked up once per run.
        let mut last: Option<(usize, bool)> = None;
        ledger.each_attempt_borrowed(ids, |a| {
            let (i, reads_whole) = match last {
                Some((i, w)) if me.tasks[i] == a.task => (i, w),
                _ => match numbers.get(a.task) {
                    Some(&i) => (i, whole.contains(a.task)),
                    None => {
                        let i = me.tasks.len();
                        me.tasks.push(a.task.to_string());
                        numbers.insert(a.task.to_string(), i);
                        (i, whole.contains(a.task))
                    }
                },
            };
            last = Some((i, reads_whole));
            let live = a.state.is_live();
            me.live += usize::from(live);
            if live || reads_whole {
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

    /// `rest`, read after these (higher row ids), after these.
    fn append(&mut self, rest: Attempts) {
        let (bytes, numbers) = (self.json.len(), self.tasks.len());
        self.json.extend_from_slice(&rest.json);
        self.spans.extend(rest.spans.into_iter().map(|mut s| {
            s.order.0 += numbers;
            s.start += bytes;
            s.end += bytes;
            s
        }));
        self.rows
            .extend(rest.rows.into_iter().map(|(i, a)| (i + numbers, a)));
        self.live += rest.live;
        self.tasks.extend(rest.tasks);
    }

    /// Number the attempts' tasks as in `tasks` (`index`) and give each task its spend, added
    /// in row order as the snapshot adds it (a float sum in another order can differ in its
    /// last digit). An attempt of a task not in the list (foreign keys forbid it) is in no list.
    fn place(&mut self, tasks: &mut [TaskView], index: &query::TaskIndex) {
        let to: Vec<Option<usize>> = self
            .tasks
            .iter()
            .map(|id| index.get(id.as_str()).copied())
            .collect();
        self.spans.retain_mut(|s| match to[s.order.0] {
            Some(i) => {
                s.order.0 = i;
                let (tokens_in, tokens_out, cost_usd) = s.spent;
                tasks[i].spend.add_parts(tokens_in, tokens_out, cost_usd);
                true
            }
            None => false,
        });
        self.rows.retain_mut(|(i, _)| match to[*i] {
            Some(to) => {
                *i = to;
                true
            }
            None => false,
        });
    }
}
