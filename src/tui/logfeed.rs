//! Which log files a run has (from the ledger's attempts) and the merged, time-ordered view of
//! them: the TUI's logs view reads only what was appended since its last look (a tail of each
//! file at first), and `orch-tui logs --all` uses the same sources.
//!
//! Check output (`checks.log`, `merge-checks.log`) is written by the check commands themselves,
//! without stamps: its lines get the times of the ledger's check events (a block `$ cmd` ...
//! `[passed: ...]` starts when its check started and ends when it ended), and while following,
//! the time they were read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::agent::record::tail::{LogLine as RawLine, Source, SourceKind, Tail, to_log_line};
use crate::agent::record::text::local_clock;
use crate::agent::record::{CHECKS_LOG, MERGE_CHECKS_LOG, TEXT_LOG};
use crate::core::domain::{EventKind, Role};
use crate::ledger::{Ledger, LedgerError};

use super::state::LogLine;

/// Lines the view keeps (the rest is in the files: `orch-tui logs`).
pub const MAX_LINES: usize = 5000;
/// What a new source's first look reads from the end of its file.
pub const TAIL_BYTES: u64 = 64 * 1024;
/// What one look reads at most per file, so a flood never stalls the UI.
pub const POLL_BYTES: u64 = 256 * 1024;

/// Every log of every attempt, in the order the attempts started. An attempt that continues
/// a kept session in the same process (same pid) prints into the files of the attempt that
/// started it: it has no sources of its own there, and that file's lines from its start on are
/// tagged with its number.
pub fn sources(ledger: &Ledger) -> Result<Vec<Source>, LedgerError> {
    let mut out = Vec::new();
    let attempts = ledger.all_attempts()?;
    let pid_of: HashMap<_, _> = attempts.iter().map(|a| (a.id, a.pid)).collect();
    // Attempt -> the attempt continuing it in its own process.
    let next_in_process: HashMap<_, _> = attempts
        .iter()
        .filter(|x| x.pid.is_some() && x.continues.is_some_and(|c| pid_of.get(&c) == Some(&x.pid)))
        .filter_map(|x| x.continues.map(|c| (c, x)))
        .collect();
    let continued: HashSet<_> = next_in_process.values().map(|x| x.id).collect();
    for a in &attempts {
        // The chain of attempts continuing this one in its process, in order.
        let mut later = Vec::new();
        let mut last = a.id;
        while let Some(next) = next_in_process.get(&last) {
            later.push((u64::try_from(next.started_ms).unwrap_or(0), next.n.0));
            last = next.id;
            if later.len() > attempts.len() {
                break; // a cycle cannot be in the ledger; never loop on one
            }
        }
        let continued = continued.contains(&a.id);
        let Some(dir) = a.log_dir.as_deref().filter(|d| !d.is_empty()) else {
            continue;
        };
        let dir = Path::new(dir);
        let src = |file: &str, kind: SourceKind| Source {
            path: dir.join(file),
            task: a.task.clone(),
            n: a.n.0,
            kind,
            profile: a.profile.clone(),
            later: if kind == SourceKind::Agent {
                later.clone()
            } else {
                Vec::new()
            },
        };
        match a.role {
            Role::Agent => {
                if !continued {
                    out.push(src(TEXT_LOG, SourceKind::Agent));
                }
                out.push(src(CHECKS_LOG, SourceKind::Checks));
                out.push(src(MERGE_CHECKS_LOG, SourceKind::MergeChecks));
            }
            Role::Reviewer => out.push(src(TEXT_LOG, SourceKind::Reviewer)),
        }
    }
    Ok(out)
}

/// When each check block of an attempt ran: (start, end) in Unix ms, in order, for the checks
/// (`rebased == false`) or the merge re-checks.
pub fn check_blocks(
    ledger: &Ledger,
    task: &str,
    n: u32,
    rebased: bool,
) -> Result<Vec<(u64, u64)>, LedgerError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let batch = ledger.events(after, Some(task), 1000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            if !matches!(e.kind, EventKind::CheckPassed | EventKind::CheckFailed)
                || e.attempt.map(|a| a.0) != Some(n)
            {
                continue;
            }
            let on_rebased = e.data.get("on").and_then(|v| v.as_str()) == Some("rebased");
            if on_rebased != rebased {
                continue;
            }
            let end = e.ts_ms.max(0) as u64;
            let took = e
                .data
                .get("duration_ms")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            out.push((end.saturating_sub(took), end));
        }
    }
    Ok(out)
}

/// Times for the unstamped lines of a check log, block by block.
#[derive(Debug, Clone, Default)]
pub struct BlockClock {
    blocks: Vec<(u64, u64)>,
    next: usize,
    current: Option<(u64, u64)>,
}

impl BlockClock {
    pub fn new(blocks: Vec<(u64, u64)>) -> BlockClock {
        BlockClock {
            blocks,
            next: 0,
            current: None,
        }
    }

    /// The time of `line`; `fallback` once the known blocks are used up (a check still running).
    pub fn time(&mut self, line: &str, fallback: u64) -> u64 {
        if line.starts_with("$ ") {
            self.current = self.blocks.get(self.next).copied();
            self.next += 1;
        }
        match self.current {
            Some((_, end)) if line.starts_with("[passed") || line.starts_with("[FAILED") => end,
            Some((start, _)) => start,
            None => fallback,
        }
    }
}

/// A view line from a raw one.
pub fn view_line(src: &Source, raw: RawLine) -> LogLine {
    LogLine {
        ms: raw.ms,
        clock: local_clock(raw.ms),
        tag: src.tag_at(raw.ms),
        task: src.task.clone(),
        n: src.n_at(raw.ms),
        source: src.kind,
        profile: src.profile.clone(),
        kind: raw.kind,
        text: raw.text,
    }
}

struct Followed {
    src: Source,
    tail: Tail,
    clock: Option<BlockClock>,
    last_ms: u64,
}

/// The logs view's data: every source followed from its tail, merged by time.
#[derive(Default)]
pub struct LogFeed {
    followed: Vec<Followed>,
    known: HashSet<PathBuf>,
    lines: Vec<LogLine>,
}

impl LogFeed {
    /// Picks up new attempts' logs (a source is never dropped: its lines stay in view).
    pub fn refresh(&mut self, ledger: &Ledger) -> Result<(), LedgerError> {
        let mut blocks: HashMap<(String, u32, bool), Vec<(u64, u64)>> = HashMap::new();
        for src in sources(ledger)? {
            if self.known.contains(&src.path) {
                continue;
            }
            let clock = match src.kind {
                SourceKind::Checks | SourceKind::MergeChecks => {
                    let key = (src.task.clone(), src.n, src.kind == SourceKind::MergeChecks);
                    if !blocks.contains_key(&key) {
                        let b = check_blocks(ledger, &src.task, src.n, key.2)?;
                        blocks.insert(key.clone(), b);
                    }
                    Some(BlockClock::new(blocks[&key].clone()))
                }
                _ => None,
            };
            self.known.insert(src.path.clone());
            self.followed.push(Followed {
                tail: Tail::new(&src.path, TAIL_BYTES),
                src,
                clock,
                last_ms: 0,
            });
        }
        Ok(())
    }

    /// Reads what every source appended; true when a line was added. `now_ms` times check
    /// output read beyond what the ledger knows of its checks.
    pub fn poll(&mut self, now_ms: u64) -> bool {
        let mut new = Vec::new();
        for (i, f) in self.followed.iter_mut().enumerate() {
            let Ok(raw) = f.tail.poll(POLL_BYTES) else {
                continue;
            };
            for line in raw {
                let untimed = match &mut f.clock {
                    Some(c) => c.time(&line, now_ms),
                    None => now_ms,
                };
                let l = to_log_line(&line, i, untimed, &mut f.last_ms);
                new.push(view_line(&f.src, l));
            }
        }
        if new.is_empty() {
            return false;
        }
        // New lines are mostly newer than all before; a stable sort keeps each file's order.
        self.lines.extend(new);
        self.lines.sort_by_key(|l| l.ms);
        if self.lines.len() > MAX_LINES {
            let cut = self.lines.len() - MAX_LINES;
            self.lines.drain(..cut);
        }
        true
    }

    pub fn lines(&self) -> &[LogLine] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_lines_take_the_times_of_their_blocks() {
        let mut c = BlockClock::new(vec![(100, 200), (300, 450)]);
        let got: Vec<u64> = [
            "$ cargo fmt --check",
            "[passed: exit Some(0) in 100 ms]",
            "$ cargo test",
            "running 3 tests",
            "[FAILED: exit Some(101) in 150 ms]",
            "$ still running",
            "output",
        ]
        .iter()
        .map(|l| c.time(l, 999))
        .collect();
        assert_eq!(got, vec![100, 200, 300, 300, 450, 999, 999]);
    }
}
