//! From the emulated screen to the lines of the text log: what the agent printed, each line once,
//! written as soon as it is final, plus snapshots of what the human saw on agents that redraw.
//!
//! The screen is split by a *commit line*: rows above it are in the log and never change again;
//! rows below it are live. The cursor never sits above the commit line: any move up (a redraw)
//! lowers it to the cursor's row, so a rewritten row is logged again only once it is final.
//! Rows cross the commit line
//! - at once, when the agent only streams text (no cursor moved up for [`STREAM_AFTER_MS`]):
//!   every complete line above the cursor is final — a plain program's lines are in the log the
//!   moment their newline is read;
//! - after [`SETTLE_MS`] untouched, on a redrawing agent: rows above the top of the region it
//!   keeps redrawing (its spinner, its input box) are static output;
//! - when they scroll off the top (vt100's `on_scroll`, from the emulator itself).
//!
//! What never crosses (the redrawn region, a full-screen app on the alternate screen) is kept as
//! snapshots: before a clear, before leaving the alternate screen, at a quiet moment after
//! output ([`QUIET_MS`]) and at exit — each only when its letters changed, so a spinner's frames
//! or a clock's ticks are not repeated.

use std::collections::{HashSet, VecDeque};

mod bytes;
mod stamps;

pub use super::feed::{LogCallbacks, feed, finish, quiet};
use super::feed::{PlainSink, Probe};
use super::scan::{Scanner, Seq};
use super::text::{LineKind, LogLines, TextLine};

/// No output for this long is a quiet moment: the screen the human sees is snapshotted.
pub const QUIET_MS: u64 = 400;
/// A row of a redrawing agent that the cursor has not visited for this long is final.
pub const SETTLE_MS: u64 = 1000;
/// An agent that moved no cursor up for this long is streaming again: lines are final at once.
pub const STREAM_AFTER_MS: u64 = 2000;

/// Why a snapshot was taken, as the note before it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotReason {
    Clear,
    LeaveAlternate,
    Quiet,
    Exit,
}

impl SnapshotReason {
    fn words(self) -> &'static str {
        match self {
            SnapshotReason::Clear => "screen before a clear",
            SnapshotReason::LeaveAlternate => "screen before the full-screen app left",
            SnapshotReason::Quiet => "screen at a quiet moment",
            SnapshotReason::Exit => "screen at exit",
        }
    }
}

/// The text log's view of one emulated screen. Lives inside the screen's vt100 callbacks (it
/// hears `on_scroll`); [`feed`] drives the rest.
#[derive(Debug)]
pub struct LineTracker {
    rows: u16,
    /// Rows `0..committed` of the main screen are in the log.
    committed: u16,
    /// Per main-screen row: the time of the read that printed its first character since it
    /// was last blank (the stamp of the line that starts there), 0 for none yet (`stamps.rs`).
    row_ms: VecDeque<u64>,
    /// Per main-screen row: a hash of the line that starts there as last written to the log,
    /// 0 for none (a redraw that lowers the commit line and writes the same again adds nothing).
    written: VecDeque<u64>,
    /// The highest row the cursor visited in this settle window and the previous one.
    touched_now: u16,
    touched_before: u16,
    window_start_ms: u64,
    last_redraw_ms: Option<u64>,
    /// Cursor row when the current chunk started, moved up by the rows scrolled since.
    chunk_start_row: i32,
    /// A logical line whose first rows scrolled off wrapped: it goes on in the next row.
    pending: Option<String>,
    /// The stamp of `pending`'s first row.
    pending_ms: u64,
    /// Keys of the rows on screen at the last main-screen snapshot (so a quiet moment or a
    /// clear repeats nothing already shown), and their exact texts (for the exit).
    main_keys: HashSet<String>,
    main_exact: HashSet<String>,
    /// Keys of the last alternate-screen snapshot.
    alt_key: Option<String>,
    /// Output was processed since the last quiet snapshot.
    quiet_due: bool,
    last_output_ms: u64,
    now_ms: u64,
    /// Never stamp a line before the previous one: the log reads in time order.
    last_ms: u64,
    out: LogLines,
    pub(crate) scanner: Scanner,
    capture: vt100::capture::BasicFormattedCaptureState,
    /// The chunk being parsed has its lines from its bytes (`stream.rs`): a row scrolling off
    /// is already accounted for.
    from_bytes: bool,
    /// The start of a UTF-8 character the last chunk ended in (the emulator holds it).
    utf8_carry: Vec<u8>,
    /// The byte path's buffers (texts, line ends), kept between chunks.
    bytes_buf: (Vec<u8>, Vec<usize>),
    /// The agent set a scroll region at some point (lines then may not scroll the whole
    /// screen: `offscreen` emulates every line).
    pub(crate) region_set: bool,
    /// The cursor's column before the `\r` the last chunk (a byte-path one) ended in.
    pub(super) cr_col: Option<u16>,
    /// The stand-in for lines that scroll off unseen (`offscreen::split`), kept between chunks.
    pub(super) middle: Vec<u8>,
    /// Off only to compare the byte-stream path with the screen path in tests.
    pub(crate) stream_path: bool,
    /// Chunks whose lines came from their bytes (for tests and benches).
    pub(crate) chunks_from_bytes: u64,
    /// Of those, chunks whose unseen lines were not emulated (`offscreen`).
    pub(crate) chunks_skipping: u64,
}

impl LineTracker {
    pub fn new(rows: u16) -> LineTracker {
        LineTracker {
            rows,
            committed: 0,
            row_ms: VecDeque::from(vec![0; usize::from(rows)]),
            written: VecDeque::from(vec![0; usize::from(rows)]),
            touched_now: u16::MAX,
            touched_before: u16::MAX,
            window_start_ms: 0,
            last_redraw_ms: None,
            chunk_start_row: 0,
            pending: None,
            pending_ms: 0,
            main_keys: HashSet::new(),
            main_exact: HashSet::new(),
            alt_key: None,
            quiet_due: false,
            last_output_ms: 0,
            now_ms: 0,
            last_ms: 0,
            out: LogLines::default(),
            scanner: Scanner::default(),
            capture: Default::default(),
            from_bytes: false,
            utf8_carry: Vec::new(),
            bytes_buf: (Vec::new(), Vec::new()),
            region_set: false,
            cr_col: None,
            middle: Vec::new(),
            stream_path: true,
            chunks_from_bytes: 0,
            chunks_skipping: 0,
        }
    }

    /// Lines ready for the log since the last call, in order.
    pub fn take_lines(&mut self) -> Vec<TextLine> {
        let lines = self.out.to_lines();
        self.out.clear();
        lines
    }

    /// Drops the lines ready for the log (nobody writes this screen's log).
    pub fn drop_lines(&mut self) {
        self.out.clear();
    }

    /// Lines ready for the log since the last call, in order, swapped into `into` (whose old
    /// contents are dropped): the reader's path, with no allocation per line.
    pub fn take_log(&mut self, into: &mut LogLines) {
        into.clear();
        std::mem::swap(&mut self.out, into);
    }

    /// Emulates every line from now on, also those that scroll off unseen within one read
    /// (`offscreen`): what a scroll region forces, and what benches compare with.
    pub fn emulate_every_line(&mut self) {
        self.region_set = true;
    }

    /// When a quiet-moment snapshot is due if no output arrives before (Unix ms).
    pub fn quiet_deadline(&self) -> Option<u64> {
        self.quiet_due.then(|| self.last_output_ms + QUIET_MS)
    }

    fn emit(&mut self, ms: u64, kind: LineKind, text: String) {
        self.emit_str(ms, kind, &text);
    }

    fn emit_str(&mut self, ms: u64, kind: LineKind, text: &str) {
        let ms = ms.max(self.last_ms);
        self.last_ms = ms;
        self.out.push(ms, kind, text);
    }

    /// A row left the top of the screen (vt100's `on_scroll`).
    pub fn on_scroll(&mut self, row: vt100::capture::RowContents<'_>, alternate: bool) {
        // A full-screen app's rows pushed off the alternate screen are redraw artefacts.
        if alternate {
            return;
        }
        let stamp = self.row_ms.front().copied().filter(|&t| t > 0);
        self.shift_up();
        self.chunk_start_row -= 1;
        if self.committed > 0 || self.from_bytes {
            // Already in the log (or taken from the bytes): nothing to format.
            self.committed = self.committed.saturating_sub(1);
            return;
        }
        let (mut text, stamp) = match self.pending.take() {
            Some(p) => (p, Some(self.pending_ms)),
            None => (String::new(), stamp),
        };
        let _ = row.write_formatted_basic(
            &mut PlainSink {
                out: &mut text,
                in_escape: false,
            },
            &mut self.capture,
        );
        // The capture state now says whether this row ended its line; a second call that stops
        // at its first character reads that without formatting the row again.
        let mut probe = Probe { first: None };
        let _ = row.write_formatted_basic(&mut probe, &mut self.capture);
        if probe.first == Some('\n') {
            let text = text.trim_end().to_string();
            self.emit(stamp.unwrap_or(self.now_ms), LineKind::Output, text);
        } else {
            self.pending = Some(text);
            self.pending_ms = stamp.unwrap_or(self.now_ms);
        }
    }

    fn shift_up(&mut self) {
        if !self.row_ms.is_empty() {
            self.row_ms.pop_front();
            self.row_ms.push_back(0);
            self.written.pop_front();
            self.written.push_back(0);
        }
        self.touched_now = self.touched_now.saturating_sub(1);
        self.touched_before = self.touched_before.saturating_sub(1);
    }

    /// A chunk begins: its time, and the screen before it.
    pub(super) fn begin(&mut self, screen: &vt100::Screen, now_ms: u64) {
        self.now_ms = now_ms;
        let (rows, _) = screen.size();
        if rows.get() != self.rows {
            self.resized(rows.get());
        }
        self.chunk_start_row = i32::from(screen.cursor_position().0);
    }

    fn resized(&mut self, rows: u16) {
        self.rows = rows;
        self.row_ms.resize(usize::from(rows), 0);
        self.written.resize(usize::from(rows), 0);
        self.committed = self.committed.min(rows);
    }

    /// Before the final byte of `seq` is processed (`Point::at`).
    pub(super) fn before(&mut self, screen: &vt100::Screen, seq: Seq) {
        match seq {
            Seq::EraseDisplay(mode) if !screen.alternate_screen() => {
                let (row, col) = screen.cursor_position();
                if mode == 1 || mode == 2 || (row, col) == (0, 0) {
                    self.main_snapshot(screen, SnapshotReason::Clear, self.now_ms);
                }
                self.erased(mode, row, col);
            }
            Seq::EraseDisplay(_) | Seq::Reset if screen.alternate_screen() => {
                self.alt_snapshot(screen, SnapshotReason::Clear, self.now_ms);
            }
            Seq::Reset => {
                self.main_snapshot(screen, SnapshotReason::Clear, self.now_ms);
                self.erased(2, 0, 0);
            }
            Seq::AltLeave if screen.alternate_screen() => {
                self.alt_snapshot(screen, SnapshotReason::LeaveAlternate, self.now_ms);
            }
            Seq::AltEnter if !screen.alternate_screen() => {
                // The main screen waits unchanged behind the full-screen app; what is complete
                // on it is final (and would otherwise be lost if the agent ends in there).
                let row = screen.cursor_position().0;
                self.touch_rows(screen, row);
                self.commit(screen, row);
            }
            _ => {}
        }
    }

    /// After a sequence that may have moved the cursor up or shifted rows (`Seq::Redraw`).
    pub(super) fn after_redraw(&mut self, screen: &vt100::Screen, region_top: Option<u16>) {
        if screen.alternate_screen() {
            return;
        }
        let row = screen.cursor_position().0;
        let mut line = row;
        if let Some(top) = region_top {
            // Rows inside a scroll region that does not start at the top shift in place.
            line = line.min(top.saturating_sub(1));
        }
        // Above where this chunk began writing: rows already printed may be rewritten (a
        // status line drawn at the bottom and the cursor restored is not that).
        if i32::from(line) < self.chunk_start_row {
            // What is drawn from here down is new: stamped when it is printed.
            self.forget_rows(line, self.rows);
            self.last_redraw_ms = Some(self.now_ms);
            self.touched_now = self.touched_now.min(line);
            self.chunk_start_row = i32::from(line);
        }
        if line < self.committed {
            self.committed = line;
        }
    }

    /// True while the agent only streams text (see [`STREAM_AFTER_MS`]).
    fn streaming(&self) -> bool {
        self.last_redraw_ms
            .is_none_or(|t| self.now_ms.saturating_sub(t) >= STREAM_AFTER_MS)
    }

    /// Mid-chunk, before rows printed so far can scroll off: while streaming, commit them now
    /// (reading them as plain text is cheaper than formatting them in `on_scroll`).
    pub(super) fn between(&mut self, screen: &vt100::Screen) {
        if screen.alternate_screen() || !self.streaming() {
            return;
        }
        let row = screen.cursor_position().0;
        self.touch_rows(screen, row);
        self.commit(screen, row);
    }

    /// After the whole chunk: commit what is final.
    pub(super) fn end(&mut self, screen: &vt100::Screen) {
        self.quiet_due = true;
        self.last_output_ms = self.now_ms;
        if screen.alternate_screen() {
            return;
        }
        let row = screen.cursor_position().0;
        self.touch_rows(screen, row);
        if self.streaming() {
            self.touched_now = u16::MAX;
            self.touched_before = u16::MAX;
            self.commit(screen, row);
            return;
        }
        if self.now_ms.saturating_sub(self.window_start_ms) >= SETTLE_MS {
            self.touched_before = self.touched_now;
            self.touched_now = row;
            self.window_start_ms = self.now_ms;
        }
        let settled = row.min(self.touched_now).min(self.touched_before);
        self.commit(screen, settled);
    }

    /// No output for [`QUIET_MS`]: what is settled is committed, the rest of the screen is
    /// snapshotted (once per change).
    pub fn quiet(&mut self, screen: &vt100::Screen) {
        if !std::mem::take(&mut self.quiet_due) {
            return;
        }
        let at = self.last_output_ms;
        if screen.alternate_screen() {
            self.alt_snapshot(screen, SnapshotReason::Quiet, at);
            return;
        }
        let row = screen.cursor_position().0;
        let settled = row.min(self.touched_now).min(self.touched_before);
        self.commit(screen, settled);
        self.main_snapshot(screen, SnapshotReason::Quiet, at);
    }

    /// The agent's output ended: everything still on screen goes in, once.
    pub fn finish(&mut self, screen: &vt100::Screen, now_ms: u64) {
        self.now_ms = now_ms;
        self.quiet_due = false;
        if self.committed > 0
            && let Some(p) = self.pending.take()
        {
            self.emit(now_ms, LineKind::Output, p.trim_end().to_string());
        }
        if screen.alternate_screen() {
            self.alt_snapshot(screen, SnapshotReason::Exit, now_ms);
            return;
        }
        let (rows, _) = screen.size();
        let mut live = self.live_lines(screen, self.committed, rows.get());
        while live.last().is_some_and(|(_, _, t)| t.is_empty()) {
            live.pop();
        }
        let seen = std::mem::take(&mut self.main_exact);
        for (row, ms, text) in live {
            // A row the last snapshot showed, or already written there, is not repeated.
            if !seen.contains(text.as_str()) && !self.is_written(row, &text) {
                self.emit(ms, LineKind::Output, text);
            }
        }
        self.committed = rows.get();
    }

    /// Commits the complete logical lines between the commit line and row `to` (exclusive).
    fn commit(&mut self, screen: &vt100::Screen, to: u16) {
        let from = self.committed;
        if to <= from {
            return;
        }
        // The last committed row must end its line: a wrapped row continues below.
        let mut end = to;
        while end > from && screen.row_wrapped(end - 1) {
            end -= 1;
        }
        if end <= from {
            return;
        }
        for (row, ms, text) in self.live_lines(screen, from, end) {
            if !self.is_written(row, &text) {
                self.mark_written(row, &text);
                self.emit(ms, LineKind::Output, text);
            }
        }
        self.committed = end;
    }

    fn is_written(&self, row: u16, text: &str) -> bool {
        self.written
            .get(usize::from(row))
            .is_some_and(|&w| w == text_hash(text))
    }

    fn mark_written(&mut self, row: u16, text: &str) {
        if let Some(w) = self.written.get_mut(usize::from(row)) {
            *w = text_hash(text);
        }
    }

    /// Logical lines of rows `from..to` (wrapped rows joined), each with its first row and that
    /// row's time. A line that began in rows already scrolled off gets their text in front.
    fn live_lines(
        &mut self,
        screen: &vt100::Screen,
        from: u16,
        to: u16,
    ) -> Vec<(u16, u64, String)> {
        if to <= from {
            return Vec::new();
        }
        let (_, cols) = screen.size();
        let text = screen.contents_between(from, 0, to - 1, cols.get());
        // The first row of each logical line, for its stamp.
        let starts = (from..to).filter(|&r| r == from || !screen.row_wrapped(r - 1));
        let mut out = Vec::new();
        for (i, (part, row)) in text.split('\n').zip(starts).enumerate() {
            let mut ms = self
                .row_ms
                .get(usize::from(row))
                .copied()
                .filter(|&t| t > 0)
                .unwrap_or(self.now_ms);
            let mut line = String::new();
            if i == 0
                && from == 0
                && let Some(p) = self.pending.take()
            {
                line.push_str(&p);
                ms = self.pending_ms;
            }
            line.push_str(part.trim_end());
            out.push((row, ms, line));
        }
        out
    }

    /// The rows of the main screen below the commit line that the last snapshot did not show.
    fn main_snapshot(&mut self, screen: &vt100::Screen, why: SnapshotReason, at: u64) {
        let (rows, _) = screen.size();
        let lines: Vec<(u16, String)> = self
            .live_lines(screen, self.committed, rows.get())
            .into_iter()
            .map(|(row, _, t)| (row, t))
            .filter(|(_, t)| !t.is_empty())
            .collect();
        // New: not in the last snapshot, and not the line already written at that row.
        let fresh: Vec<String> = lines
            .iter()
            .filter(|(row, t)| {
                !self.main_keys.contains(&masked_key(t)) && !self.is_written(*row, t)
            })
            .map(|(_, t)| t.clone())
            .collect();
        self.main_keys = lines.iter().map(|(_, t)| masked_key(t)).collect();
        self.main_exact = lines.into_iter().map(|(_, t)| t).collect();
        if fresh.is_empty() {
            return;
        }
        if why != SnapshotReason::Quiet {
            self.emit(at, LineKind::Note, why.words().to_string());
        }
        for t in fresh {
            self.emit(at, LineKind::Screen, t);
        }
    }

    /// The whole alternate screen as a block, unless its letters are what the last one showed.
    fn alt_snapshot(&mut self, screen: &vt100::Screen, why: SnapshotReason, at: u64) {
        let contents = screen.contents();
        let lines: Vec<&str> = contents.lines().map(str::trim_end).collect();
        let first = lines.iter().position(|l| !l.is_empty());
        let last = lines.iter().rposition(|l| !l.is_empty());
        let (Some(first), Some(last)) = (first, last) else {
            return;
        };
        let block = &lines[first..=last];
        let key: String = block.iter().map(|l| masked_key(l) + "\n").collect();
        if self.alt_key.as_deref() == Some(key.as_str()) {
            return;
        }
        self.alt_key = Some(key);
        self.emit(
            at,
            LineKind::Note,
            format!("full-screen app: {}", why.words()),
        );
        for l in block {
            self.emit(at, LineKind::Screen, (*l).to_string());
        }
    }
}

/// A line's hash for "already written here" (FNV-1a; never 0, which means nothing written).
fn text_hash(text: &str) -> u64 {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h.max(1)
}

/// What a row says, ignoring what changes on its own (spinner glyphs, counters, clocks): its
/// letters. A row without letters (a border) is its own key.
fn masked_key(text: &str) -> String {
    let letters: String = text.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() {
        text.trim().to_string()
    } else {
        letters
    }
}
