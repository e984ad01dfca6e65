//! The record of one attempt's terminal session, under its log folder:
//! - `pty.raw`: the bytes read from the PTY, exactly, written before anything parses them;
//! - `pty.cast`: the same output as an asciicast v2 file, with times, resizes and input markers
//!   (`cast.rs`);
//! - `screen.log`: what the agent printed as stamped text lines, once each, with snapshots of
//!   what the human saw on redrawing and full-screen agents (`lines.rs`, `text.rs`).
//!
//! Every write is a `write(2)` of whole lines or whole chunks, made as the output arrives, so a
//! reader sees it at once and a `kill -9` of the writer loses nothing already written; files are
//! fsynced when they rotate and when the session ends. A log that cannot be written (disk full)
//! is dropped with one error in the tracing log; the agent keeps running.
//!
//! Nothing here knows about the engine: the owner of the PTY (the reader thread of
//! `agent::pty` today, a holder process later) feeds it bytes and the lines the screen gave
//! ([`lines::feed`]), and calls [`lines::quiet`] when [`lines::LineTracker::quiet_deadline`]
//! passes without output.

pub mod cast;
pub mod feed;
pub mod lines;
mod offscreen;
pub mod retention;
mod runs;
pub mod scan;
pub mod stream;
pub mod tail;
pub mod text;
pub mod transcript;

use std::io;
use std::path::{Path, PathBuf};

use crate::agent::logs::RotatingFile;
use cast::CastWriter;
use text::{LogLines, StampCache, TextLine};

/// Raw PTY bytes, written before parsing: the lossless record.
pub const RAW_LOG: &str = "pty.raw";
/// The session as asciicast v2.
pub const CAST_LOG: &str = "pty.cast";
/// The readable, stamped text log.
pub const TEXT_LOG: &str = "screen.log";
/// Check output, written by the engine's checks into the agent attempt's folder.
pub const CHECKS_LOG: &str = "checks.log";
pub const MERGE_CHECKS_LOG: &str = "merge-checks.log";
/// A link to the agent's own conversation transcript (Claude Code, Codex), when known.
pub const TRANSCRIPT_LINK: &str = "transcript.jsonl";

/// What a recorder needs to start.
#[derive(Debug, Clone)]
pub struct RecordSpec {
    /// The attempt's log folder (created if missing).
    pub dir: PathBuf,
    /// Each file rotates at this size (0: never), keeping `logs::KEEP_GENERATIONS` older ones.
    pub rotate_bytes: u64,
    pub rows: u16,
    pub cols: u16,
    /// The cast's title (the program, or `task#n`).
    pub title: String,
}

/// The files of one session.
#[derive(Debug)]
pub struct Recorder {
    raw: Option<RotatingFile>,
    cast: Option<CastWriter>,
    text: Option<RotatingFile>,
    stamps: StampCache,
    buf: Vec<u8>,
}

impl Recorder {
    pub fn open(spec: &RecordSpec) -> io::Result<Recorder> {
        std::fs::create_dir_all(&spec.dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create agent log directory {}: {e}; check permissions and free space",
                    spec.dir.display()
                ),
            )
        })?;
        let at = |name: &str| spec.dir.join(name);
        Ok(Recorder {
            raw: Some(RotatingFile::open(&at(RAW_LOG), spec.rotate_bytes)?),
            cast: Some(CastWriter::open(
                &at(CAST_LOG),
                spec.rotate_bytes,
                spec.cols,
                spec.rows,
                &spec.title,
            )?),
            text: Some(RotatingFile::open(&at(TEXT_LOG), spec.rotate_bytes)?),
            stamps: StampCache::default(),
            buf: Vec::new(),
        })
    }

    /// Output read from the PTY at `now_ms`: to `pty.raw`, then to the cast.
    pub fn output(&mut self, now_ms: u64, bytes: &[u8]) {
        if let Some(f) = &mut self.raw
            && let Err(e) = f.write_all(bytes)
        {
            disable(&mut self.raw, "pty.raw", &e);
        }
        if let Some(c) = &mut self.cast
            && let Err(e) = c.output(now_ms, bytes)
        {
            disable(&mut self.cast, "pty.cast", &e);
        }
    }

    /// Lines for `screen.log`, in one write.
    pub fn lines(&mut self, lines: &[TextLine]) {
        if lines.is_empty() {
            return;
        }
        self.buf.clear();
        for l in lines {
            text::write_line(&mut self.buf, &mut self.stamps, l);
        }
        if let Some(f) = &mut self.text
            && let Err(e) = f.write_all(&self.buf)
        {
            disable(&mut self.text, "screen.log", &e);
        }
    }

    /// Lines for `screen.log` as the screen hands them over ([`lines::LineTracker::take_log`]),
    /// in one write.
    pub fn log(&mut self, lines: &LogLines) {
        if lines.is_empty() {
            return;
        }
        self.buf.clear();
        for (ms, kind, t) in lines.iter() {
            text::write_record(&mut self.buf, &mut self.stamps, ms, kind, t);
        }
        if let Some(f) = &mut self.text
            && let Err(e) = f.write_all(&self.buf)
        {
            disable(&mut self.text, "screen.log", &e);
        }
    }

    /// The human typed `n` bytes into the agent (a marker in the cast; the bytes are not kept).
    pub fn input(&mut self, now_ms: u64, n: usize) {
        let label = format!("input ({n} byte{})", if n == 1 { "" } else { "s" });
        if let Some(c) = &mut self.cast
            && let Err(e) = c.marker(now_ms, &label)
        {
            disable(&mut self.cast, "pty.cast", &e);
        }
    }

    pub fn resize(&mut self, now_ms: u64, rows: u16, cols: u16) {
        if let Some(c) = &mut self.cast
            && let Err(e) = c.resize(now_ms, rows, cols)
        {
            disable(&mut self.cast, "pty.cast", &e);
        }
    }

    /// Flushes every file to disk (at the end of the session).
    pub fn sync(&mut self) {
        let mut failed = false;
        if let Some(f) = &mut self.raw {
            failed |= f.sync().is_err();
        }
        if let Some(f) = &mut self.text {
            failed |= f.sync().is_err();
        }
        if let Some(c) = &mut self.cast {
            failed |= c.sync().is_err();
        }
        if failed {
            tracing::warn!("agent logs may be incomplete after a crash: fsync failed");
        }
    }
}

fn disable<T>(slot: &mut Option<T>, name: &str, e: &io::Error) {
    tracing::error!(error = %e, "agent {name} disabled; free disk space to keep logs for new agents");
    *slot = None;
}

/// The files of an attempt's log folder that make up its record, for readers.
pub fn text_log(dir: &Path) -> PathBuf {
    dir.join(TEXT_LOG)
}
