//! Reading text logs for people: the lines appended since the last look (the TUI's logs view and
//! `orch-tui logs --follow`), bounded so a 16 MiB log is never read whole on the UI thread, and
//! robust to rotation (the renamed file is finished, then the new one read from its start), and
//! whole histories merged by time (`orch-tui logs --all`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::text::{LineKind, parse_line};
use crate::agent::logs::{KEEP_GENERATIONS, generation};

/// Whose output a log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// The agent doing the task (`screen.log`).
    Agent,
    /// The reviewer agent of that attempt (`screen.log` in its own folder).
    Reviewer,
    /// The checks run on the attempt (`checks.log`).
    Checks,
    /// The checks re-run before the merge (`merge-checks.log`).
    MergeChecks,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Agent => "agent",
            SourceKind::Reviewer => "review",
            SourceKind::Checks => "checks",
            SourceKind::MergeChecks => "merge",
        }
    }

    pub fn parse(s: &str) -> Option<SourceKind> {
        [
            SourceKind::Agent,
            SourceKind::Reviewer,
            SourceKind::Checks,
            SourceKind::MergeChecks,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The tag of a line from this source: `task#2`, `task#2 review`, `task#2 checks`.
    pub fn tag(self, task: &str, n: u32) -> String {
        match self {
            SourceKind::Agent => format!("{task}#{n}"),
            k => format!("{task}#{n} {}", k.as_str()),
        }
    }
}

/// One log file of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub task: String,
    pub n: u32,
    pub kind: SourceKind,
    /// The agent profile (for filters).
    pub profile: String,
    /// Later attempts that print into this file, as (start in Unix ms, attempt number) in
    /// order: a session kept alive through review takes its change requests as new attempts
    /// in the same process, whose files were opened when it started.
    pub later: Vec<(u64, u32)>,
}

impl Source {
    /// The tag of the file's first attempt (the widest of its tags but for the number).
    pub fn tag(&self) -> String {
        self.kind.tag(&self.task, self.n)
    }

    /// The attempt a line printed at `ms` belongs to.
    pub fn n_at(&self, ms: u64) -> u32 {
        self.later
            .iter()
            .take_while(|(from, _)| *from <= ms)
            .last()
            .map_or(self.n, |(_, n)| *n)
    }

    /// The tag of a line printed at `ms`: `task#3` for a kept session's third attempt.
    pub fn tag_at(&self, ms: u64) -> String {
        self.kind.tag(&self.task, self.n_at(ms))
    }

    /// The widest tag a line of this file can carry.
    pub fn tag_width(&self) -> usize {
        let n = self.later.last().map_or(self.n, |(_, n)| *n).max(self.n);
        self.kind.tag(&self.task, n).len()
    }
}

/// One line of a merged view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub ms: u64,
    /// Index of its source in the caller's list.
    pub source: usize,
    pub kind: LineKind,
    pub text: String,
}

/// A line as read from a file: stamped lines carry their time; others (check output) get
/// `untimed_ms`, the caller's best knowledge of when it was written.
pub fn to_log_line(raw: &str, source: usize, untimed_ms: u64, last_ms: &mut u64) -> LogLine {
    match parse_line(raw) {
        Some(t) => {
            *last_ms = (*last_ms).max(t.ms);
            LogLine {
                ms: t.ms,
                source,
                kind: t.kind,
                text: t.text,
            }
        }
        None => LogLine {
            ms: untimed_ms.max(*last_ms),
            source,
            kind: LineKind::Output,
            text: raw.trim_end_matches('\r').to_string(),
        },
    }
}

/// Follows one file: what was appended since the last [`Tail::poll`], in whole lines.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    partial: Vec<u8>,
    /// Skip up to the first newline (the read started mid-file).
    skip_partial: bool,
    start_back: u64,
}

impl Tail {
    /// A tail that first returns the last `back` bytes of the file (whole lines only), then what
    /// is appended. `u64::MAX` reads the whole live generation. A missing file is waited for.
    pub fn new(path: &Path, back: u64) -> Tail {
        Tail {
            path: path.to_path_buf(),
            file: None,
            ino: 0,
            partial: Vec::new(),
            skip_partial: false,
            start_back: back,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// New complete lines, reading at most `budget` bytes (the rest waits for the next poll).
    pub fn poll(&mut self, budget: u64) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        if self.file.is_none() {
            let mut f = File::open(&self.path)?;
            let len = meta.len();
            if self.start_back < len {
                f.seek(SeekFrom::Start(len - self.start_back))?;
                self.skip_partial = true;
            }
            self.file = Some(f);
            self.ino = meta.ino();
        } else if meta.ino() != self.ino {
            // Rotated: the rest of the old file, then the new one from its start.
            self.read_into(u64::MAX, &mut out)?;
            self.partial.clear();
            self.file = Some(File::open(&self.path)?);
            self.ino = meta.ino();
        } else if let Some(f) = &mut self.file
            && meta.len() < f.stream_position()?
        {
            f.seek(SeekFrom::Start(0))?;
            self.partial.clear();
        }
        self.read_into(budget, &mut out)?;
        Ok(out)
    }

    fn read_into(&mut self, budget: u64, out: &mut Vec<String>) -> io::Result<()> {
        let Some(f) = &mut self.file else {
            return Ok(());
        };
        let mut buf = Vec::new();
        f.take(budget).read_to_end(&mut buf)?;
        let mut rest = buf.as_slice();
        while let Some(i) = memchr::memchr(b'\n', rest) {
            self.partial.extend_from_slice(&rest[..i]);
            rest = &rest[i + 1..];
            let line = std::mem::take(&mut self.partial);
            if std::mem::take(&mut self.skip_partial) {
                continue;
            }
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }
}

/// Every line of a log, oldest generation first, streamed (for `orch-tui logs`).
pub fn all_lines(path: &Path) -> io::Result<impl Iterator<Item = String> + use<>> {
    let mut readers = Vec::new();
    for n in (0..=KEEP_GENERATIONS).rev() {
        match File::open(generation(path, n)) {
            Ok(f) => readers.push(BufReader::new(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(readers.into_iter().flat_map(|r| {
        r.split(b'\n')
            .map_while(Result::ok)
            .map(|l| String::from_utf8_lossy(&l).into_owned())
    }))
}

/// Merges per-source line streams (each in time order) into one, by time; ties keep the order
/// of `streams`, so a line never overtakes an earlier one of its own source.
pub fn merge_by_time<I: Iterator<Item = LogLine>>(
    streams: Vec<I>,
) -> impl Iterator<Item = LogLine> {
    let mut streams: Vec<std::iter::Peekable<I>> =
        streams.into_iter().map(Iterator::peekable).collect();
    std::iter::from_fn(move || {
        let mut best: Option<(usize, u64)> = None;
        for (i, s) in streams.iter_mut().enumerate() {
            if let Some(l) = s.peek()
                && best.is_none_or(|(_, ms)| l.ms < ms)
            {
                best = Some((i, l.ms));
            }
        }
        best.and_then(|(i, _)| streams[i].next())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::logs::RotatingFile;

    #[test]
    fn a_tail_starts_at_whole_lines_and_follows_appends_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("screen.log");
        let mut f = RotatingFile::open(&path, 60).unwrap();
        f.write_all(b"first line\nsecond line\n").unwrap();
        let mut t = Tail::new(&path, 15);
        assert_eq!(t.poll(1 << 20).unwrap(), vec!["second line"]);
        f.write_all(b"third ").unwrap();
        assert!(t.poll(1 << 20).unwrap().is_empty(), "half a line waits");
        f.write_all(b"line\nfourth line that rotates the file\n")
            .unwrap();
        f.write_all(b"fifth\n").unwrap();
        assert!(generation(&path, 1).exists());
        assert_eq!(
            t.poll(1 << 20).unwrap(),
            vec!["third line", "fourth line that rotates the file", "fifth"]
        );
        assert!(t.poll(1 << 20).unwrap().is_empty());
    }

    #[test]
    fn a_small_budget_reads_the_rest_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let mut t = Tail::new(&path, u64::MAX);
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(t.poll(64).unwrap());
        }
        assert_eq!(got.len(), 100);
        assert_eq!(got[99], "line 99");
    }

    #[test]
    fn merging_orders_by_time_and_keeps_each_source_in_order() {
        let l = |ms, source, text: &str| LogLine {
            ms,
            source,
            kind: LineKind::Output,
            text: text.into(),
        };
        let a = vec![l(1, 0, "a1"), l(5, 0, "a5"), l(5, 0, "a5b")];
        let b = vec![l(2, 1, "b2"), l(5, 1, "b5"), l(9, 1, "b9")];
        let got: Vec<String> = merge_by_time(vec![a.into_iter(), b.into_iter()])
            .map(|l| l.text)
            .collect();
        assert_eq!(got, vec!["a1", "b2", "a5", "a5b", "b5", "b9"]);
    }
}
