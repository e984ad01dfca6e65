//! `orch-tui logs`: one attempt's log, or every attempt's merged by time (`--all`), optionally
//! followed as agents print (`--follow`), like `docker compose logs -f`: a coloured tag per
//! attempt (plain when piped or with `NO_COLOR`), the reviewer's and the checks' lines tagged
//! as such.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::agent::record::tail::{LogLine, Source, Tail, all_lines, merge_by_time, to_log_line};
use crate::agent::record::text::{LineKind, local_clock};
use crate::agent::record::{RAW_LOG, TEXT_LOG};
use crate::core::domain::{AttemptNo, Role};
use crate::ledger::{Ledger, now_ms};
use crate::tui::logfeed::{BlockClock, check_blocks, sources};

/// What `orch-tui logs` was asked for.
pub struct LogsArgs<'a> {
    pub task: Option<&'a str>,
    pub all: bool,
    pub follow: bool,
    pub raw: bool,
    pub attempt: Option<u32>,
    pub since: Option<&'a str>,
    pub tasks: &'a [String],
}

/// How often a follower looks again without a file-system event (NFS, WSL, a missed event).
const FALLBACK_WAKE: Duration = Duration::from_millis(250);
/// How often a follower re-reads the ledger for new attempts.
const SOURCES_EVERY: Duration = Duration::from_millis(100);

pub fn logs(ctx: &Context, a: &LogsArgs) -> CliResult {
    let since_ms = match a.since {
        Some(s) => {
            let ms = crate::core::duration::parse_duration(s).map_err(|e| {
                CliError::bad_input(format!(
                    "--since {s:?}: {e}; write a duration such as \"10m\", \"90s\" or \"2h\""
                ))
            })?;
            Some(now_ms().saturating_sub(ms))
        }
        None => None,
    };
    match (a.task, a.all) {
        (Some(t), true) => Err(CliError::bad_input(format!(
            "give a task or --all, not both (`orch-tui logs --all --task {t}` merges that task's attempts)"
        ))),
        (None, false) => Err(CliError::bad_input(
            "name a task (`orch-tui logs TASK`) or ask for every attempt with `orch-tui logs --all`",
        )),
        (Some(task), false) => {
            if !a.tasks.is_empty() {
                return Err(CliError::bad_input(
                    "--task goes with --all; `orch-tui logs TASK` already names the task",
                ));
            }
            one(ctx, task, a, since_ms)
        }
        (None, true) => {
            if a.raw || a.attempt.is_some() {
                return Err(CliError::bad_input(
                    "--raw and --attempt show one attempt: `orch-tui logs TASK --raw`",
                ));
            }
            all(ctx, a.tasks, a.follow, since_ms)
        }
    }
}

/// Writes to stdout; a reader that went away (`| head`) ends the command quietly.
struct Out {
    out: std::io::StdoutLock<'static>,
    colour: bool,
    closed: bool,
}

impl Out {
    fn new() -> Out {
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Out {
            out: std::io::stdout().lock(),
            colour,
            closed: false,
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        if !self.closed && self.out.write_all(b).is_err() {
            self.closed = true;
        }
    }

    fn flush(&mut self) {
        if !self.closed && self.out.flush().is_err() {
            self.closed = true;
        }
    }

    /// `HH:MM:SS tag │ text`; snapshot rows and notes set apart.
    fn line(&mut self, l: &LogLine, tag: &str, task: &str, width: usize) {
        let text = match l.kind {
            LineKind::Output => l.text.clone(),
            LineKind::Screen => format!("┊ {}", l.text),
            LineKind::Note => format!("── {} ──", l.text),
        };
        let s = if self.colour {
            let dim = if l.kind == LineKind::Output {
                ""
            } else {
                "\x1b[2m"
            };
            format!(
                "\x1b[2m{}\x1b[0m \x1b[{}m{tag:<width$} │\x1b[0m {dim}{text}\x1b[0m\n",
                local_clock(l.ms),
                colour_code(task)
            )
        } else {
            format!("{} {tag:<width$} │ {text}\n", local_clock(l.ms))
        };
        self.bytes(s.as_bytes());
    }
}

/// A stable ANSI colour per task, as `docker compose logs` colours its services.
fn colour_code(task: &str) -> &'static str {
    const CODES: [&str; 6] = ["36", "35", "33", "32", "34", "91"];
    let h = task
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    CODES[h % CODES.len()]
}

/// One attempt: the newest agent attempt of `task`, or `--attempt N`.
fn one(ctx: &Context, task: &str, a: &LogsArgs, since_ms: Option<u64>) -> CliResult {
    let ledger = ctx.open_ledger()?;
    if ledger.task(task)?.is_none() {
        return Err(CliError::bad_input(format!(
            "no task `{task}` in the ledger: `orch-tui status` lists the tasks"
        )));
    }
    let pick = |ledger: &Ledger| -> Result<Option<crate::ledger::AttemptRow>, CliError> {
        let attempts = ledger.attempts(task)?;
        Ok(match a.attempt {
            Some(n) => attempts
                .into_iter()
                .find(|x| x.n == AttemptNo(n) && x.role == Role::Agent),
            None => attempts.into_iter().rev().find(|x| x.role == Role::Agent),
        })
    };
    let chosen = match pick(&ledger)? {
        Some(x) => x,
        None if a.follow => {
            // Wait for the first attempt instead of exiting (the task may not have started).
            err_out!("orch-tui: waiting for `{task}`'s first attempt (Ctrl-C stops)");
            let wake = watch(&ctx.paths.orch, false);
            loop {
                if let Some(x) = pick(&ledger)? {
                    break x;
                }
                wait(&wake, FALLBACK_WAKE);
            }
        }
        None => {
            return Err(CliError::bad_input(format!(
                "task `{task}` has no attempt{} yet (`--follow` waits for it)",
                a.attempt.map(|n| format!(" {n}")).unwrap_or_default()
            )));
        }
    };
    let part = session_part(&ledger.attempts(task)?, &chosen);
    let dir = part.dir;
    if let Some(note) = &part.note {
        err_out!("orch-tui: {note}");
    }
    if a.raw {
        return raw(ctx, &dir.join(RAW_LOG), chosen.id, a.follow);
    }
    let path = dir.join(TEXT_LOG);
    let tag = format!("{task}#{}", chosen.n);
    let width = tag.len();
    let mut out = Out::new();
    let mut last = 0;
    let keep = |l: &LogLine| {
        since_ms.is_none_or(|s| l.ms >= s)
            && part.from_ms.is_none_or(|f| l.ms >= f)
            && part.until_ms.is_none_or(|u| l.ms < u)
    };
    // Older generations first, then the live file through a tail that goes on from there.
    for n in (1..=crate::agent::logs::KEEP_GENERATIONS).rev() {
        let g = crate::agent::logs::generation(&path, n);
        if let Ok(lines) = all_lines(&g) {
            for raw in lines {
                let l = to_log_line(&raw, 0, last, &mut last);
                if keep(&l) {
                    out.line(&l, &tag, task, width);
                }
            }
        }
    }
    let mut tail = Tail::new(&path, u64::MAX);
    let id = chosen.id;
    let ledger_path = ctx.paths.ledger.clone();
    let wake = a.follow.then(|| watch(&dir, false));
    loop {
        let ended = a.follow
            && Ledger::open(&ledger_path)
                .ok()
                .and_then(|l| l.attempt(id).ok().flatten())
                .is_some_and(|x| x.ended_ms.is_some());
        for raw in tail.poll(u64::MAX).unwrap_or_default() {
            let l = to_log_line(&raw, 0, now_ms(), &mut last);
            if keep(&l) {
                out.line(&l, &tag, task, width);
            }
        }
        out.flush();
        // Stop once the attempt has ended and its log is read to the end.
        if !a.follow || ended || out.closed {
            break;
        }
        if let Some(w) = &wake {
            wait(w, FALLBACK_WAKE);
        }
    }
    if !path.exists() && !a.follow {
        return Err(CliError::failed(format!(
            "no log at {} (has the attempt started?)",
            path.display()
        )));
    }
    Ok(EXIT_OK)
}

/// Where an attempt's output is, and which of its lines are that attempt's.
struct Part {
    dir: PathBuf,
    from_ms: Option<u64>,
    until_ms: Option<u64>,
    /// Said on stderr when the lines come from another attempt's folder.
    note: Option<String>,
}

/// A kept session (an interactive agent that lived on through review, `core/supervisor/kept.rs`)
/// is one process whose files were opened when it started: its later attempts (`continues`, same
/// worktree) print into the folder of the attempt that started it, while their own folders hold
/// what is theirs alone (checks). So an attempt's lines are its session's from when it began
/// until the attempt continuing it began. (Splitting the files per attempt would need the
/// holder, a process that outlives the supervisor, to reopen them on cue.)
fn session_part(
    attempts: &[crate::ledger::AttemptRow],
    chosen: &crate::ledger::AttemptRow,
) -> Part {
    let dir_of =
        |a: &crate::ledger::AttemptRow| PathBuf::from(a.log_dir.clone().unwrap_or_default());
    let has_log = |a: &crate::ledger::AttemptRow| {
        let d = dir_of(a);
        d.join(TEXT_LOG).exists() || d.join(RAW_LOG).exists()
    };
    let same_session = |later: &crate::ledger::AttemptRow, earlier: &crate::ledger::AttemptRow| {
        later.continues == Some(earlier.id) && later.worktree == earlier.worktree
    };
    let ms = |v: i64| u64::try_from(v).ok();
    // The attempt that continues this one in its process, if any: where this one's lines end.
    let until_ms = attempts
        .iter()
        .find(|x| same_session(x, chosen) && !has_log(x))
        .and_then(|x| ms(x.started_ms));
    let mut root = chosen;
    while !has_log(root) {
        match attempts.iter().find(|x| same_session(root, x)) {
            Some(prev) => root = prev,
            None => break,
        }
    }
    if root.id == chosen.id || !has_log(root) {
        return Part {
            dir: dir_of(chosen),
            from_ms: None,
            until_ms,
            note: None,
        };
    }
    let from_ms = ms(chosen.started_ms);
    let since = from_ms.map(local_clock).unwrap_or_default();
    Part {
        dir: dir_of(root),
        from_ms,
        until_ms,
        note: Some(format!(
            "attempt {} continues attempt {}'s live session, whose log is {}: its lines since {since}",
            chosen.n,
            root.n,
            dir_of(root).display()
        )),
    }
}

fn raw(ctx: &Context, file: &Path, id: crate::core::domain::AttemptId, follow: bool) -> CliResult {
    let mut out = std::io::stdout();
    if follow {
        let ledger_path = ctx.paths.ledger.clone();
        let ended = move || {
            Ledger::open(&ledger_path)
                .ok()
                .and_then(|l| l.attempt(id).ok().flatten())
                .is_some_and(|a| a.ended_ms.is_some())
        };
        crate::agent::logs::follow(file, true, &mut out, &ended)
            .map_err(|e| CliError::failed(format!("cannot follow {}: {e}", file.display())))?;
    } else {
        let bytes = crate::agent::logs::read_all(file)
            .map_err(|e| CliError::failed(format!("cannot read {}: {e}", file.display())))?;
        let _ = out.write_all(&bytes);
    }
    Ok(EXIT_OK)
}

/// A source with the clock for its unstamped lines.
struct Followed {
    src: Source,
    tail: Tail,
    clock: Option<BlockClock>,
    last: u64,
}

fn follower(ledger: &Ledger, src: Source) -> Result<Followed, CliError> {
    use crate::agent::record::tail::SourceKind;
    let clock = match src.kind {
        SourceKind::Checks | SourceKind::MergeChecks => Some(BlockClock::new(check_blocks(
            ledger,
            &src.task,
            src.n,
            src.kind == SourceKind::MergeChecks,
        )?)),
        _ => None,
    };
    Ok(Followed {
        tail: Tail::new(&src.path, u64::MAX),
        src,
        clock,
        last: 0,
    })
}

fn all(ctx: &Context, tasks: &[String], follow: bool, since_ms: Option<u64>) -> CliResult {
    let ledger = ctx.open_ledger()?;
    for t in tasks {
        if ledger.task(t)?.is_none() {
            return Err(CliError::bad_input(format!(
                "--task {t}: no such task in the ledger; `orch-tui status` lists the tasks"
            )));
        }
    }
    let wanted = |s: &Source| tasks.is_empty() || tasks.contains(&s.task);
    let mut followed: Vec<Followed> = Vec::new();
    for src in sources(&ledger)?.into_iter().filter(wanted) {
        followed.push(follower(&ledger, src)?);
    }
    let mut out = Out::new();
    let mut width = followed
        .iter()
        .map(|f| f.src.tag_width())
        .max()
        .unwrap_or(0);
    let keep = |l: &LogLine| since_ms.is_none_or(|s| l.ms >= s);
    // History: every source's rotated generations, then its live file, merged by time.
    let now = now_ms();
    let mut streams = Vec::new();
    for (i, f) in followed.iter_mut().enumerate() {
        let mut lines = Vec::new();
        for n in (1..=crate::agent::logs::KEEP_GENERATIONS).rev() {
            let g = crate::agent::logs::generation(&f.src.path, n);
            if let Ok(it) = all_lines(&g) {
                lines.extend(it);
            }
        }
        lines.extend(f.tail.poll(u64::MAX).unwrap_or_default());
        let mut v = Vec::with_capacity(lines.len());
        for raw in lines {
            let untimed = match &mut f.clock {
                Some(c) => c.time(&raw, now),
                None => now,
            };
            v.push(to_log_line(&raw, i, untimed, &mut f.last));
        }
        streams.push(v.into_iter());
    }
    for l in merge_by_time(streams).filter(keep) {
        let f = &followed[l.source];
        out.line(&l, &f.src.tag_at(l.ms), &f.src.task, width);
        if out.closed {
            return Ok(EXIT_OK);
        }
    }
    out.flush();
    if !follow {
        return Ok(EXIT_OK);
    }
    // The logs folder (and new attempts' folders in it); before the first attempt there is
    // none yet, and the periodic look finds them.
    let wake = watch(&ctx.paths.logs, true);
    let mut last_sources = Instant::now();
    while !out.closed {
        wait(&wake, FALLBACK_WAKE);
        if last_sources.elapsed() >= SOURCES_EVERY {
            last_sources = Instant::now();
            let known: std::collections::HashSet<PathBuf> =
                followed.iter().map(|f| f.src.path.clone()).collect();
            for src in sources(&ledger)?.into_iter().filter(wanted) {
                if !known.contains(&src.path) {
                    width = width.max(src.tag_width());
                    followed.push(follower(&ledger, src)?);
                }
            }
        }
        let now = now_ms();
        let mut batch = Vec::new();
        for (i, f) in followed.iter_mut().enumerate() {
            for raw in f.tail.poll(u64::MAX).unwrap_or_default() {
                // Read as it is written: an unstamped line's time is now.
                let untimed = match &mut f.clock {
                    Some(c) => c.time(&raw, now),
                    None => now,
                };
                batch.push(to_log_line(&raw, i, untimed, &mut f.last));
            }
        }
        batch.sort_by_key(|l| l.ms);
        for l in batch.iter().filter(|l| keep(l)) {
            let f = &followed[l.source];
            out.line(l, &f.src.tag_at(l.ms), &f.src.task, width);
        }
        out.flush();
    }
    Ok(EXIT_OK)
}

/// Wakes on any change under `dir` (the logs and the ledger's WAL are under `.orch/`).
fn watch(dir: &Path, recursive: bool) -> (Option<notify::RecommendedWatcher>, Receiver<()>) {
    use notify::Watcher as _;
    let (tx, rx) = channel();
    let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .and_then(|mut w| {
        let mode = if recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        w.watch(dir, mode).map(|()| w)
    })
    .ok();
    (watcher, rx)
}

fn wait(w: &(Option<notify::RecommendedWatcher>, Receiver<()>), fallback: Duration) {
    if w.1.recv_timeout(fallback).is_ok() {
        while w.1.try_recv().is_ok() {}
    }
}
