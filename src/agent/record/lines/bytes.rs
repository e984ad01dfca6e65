//! The text log's byte-stream path on the tracker's side (the bytes themselves are read in
//! `record::stream`): when a chunk's lines may come from its bytes, and the commit line and
//! "written here" marks left where the screen path would leave them.

use super::{LineTracker, text_hash};
use crate::agent::record::stream::{Start, complete_lines, utf8_tail};
use crate::agent::record::text::LineKind;

/// A chunk whose lines come from its bytes: the cursor row's text before it, whether that
/// row's line was already written there, and the chunk's complete lines (their texts in one
/// buffer, `ends` where each ends; the buffers go back to the tracker for the next chunk).
pub(in crate::agent::record) struct FromBytes {
    prefix: String,
    prefix_written: u64,
    /// The stamp of the first line: the cursor row's, if its first characters came earlier.
    first_ms: u64,
    text: Vec<u8>,
    ends: Vec<usize>,
}

impl LineTracker {
    /// Whether this chunk's lines can come from its bytes (see `stream.rs`): the agent streams
    /// on the main screen, the cursor is on the last row with every row above it in the log,
    /// and nothing is right of the cursor. `start` is where the scanner was before the chunk.
    pub(in crate::agent::record) fn lines_from_bytes(
        &mut self,
        screen: &vt100::Screen,
        start: Option<Start>,
        chunk: &[u8],
    ) -> Option<FromBytes> {
        let (rows, cols) = (screen.size().0.get(), screen.size().1.get());
        let (row, mut col) = screen.cursor_position();
        let mut start = start;
        // The last chunk ended between a line's `\r` and its `\n`: the line goes on from
        // where its text ended, the `\r` already read.
        if let Some(end) = self.cr_col.take()
            && col == 0
            && start == Some(Start::Ground)
            && chunk.first() == Some(&b'\n')
        {
            col = end;
            start = Some(Start::Cr);
        }
        if !self.stream_path
            || screen.alternate_screen()
            || !self.streaming()
            || row + 1 != rows
            || self.committed != row
            || self.pending.is_some()
            || cols < 2
        {
            return None;
        }
        let start = start?;
        let carry = if start == Start::Ground {
            self.utf8_carry.as_slice()
        } else {
            &[]
        };
        let cell = |c: u16| screen.cell(row, c);
        // The cell before the cursor holds a character (or the right half of a wide one).
        let printed = |c: u16| {
            let wide = c > 0 && cell(c).is_some_and(vt100::Cell::is_wide_continuation);
            cell(if wide { c - 1 } else { c }).is_some_and(vt100::Cell::has_contents)
        };
        if (col..cols).any(|c| cell(c).is_some_and(vt100::Cell::has_contents))
            || (col > 0 && !printed(col - 1))
        {
            return None;
        }
        let (mut text, mut ends) = std::mem::take(&mut self.bytes_buf);
        text.clear();
        ends.clear();
        if !complete_lines(start, carry, chunk, (col, cols), &mut text, &mut ends) {
            self.bytes_buf = (text, ends);
            return None;
        }
        text.truncate(ends.last().copied().unwrap_or(0));
        let mut prefix = String::new();
        if !ends.is_empty() {
            // As vt100 reads a row: a blank before later text is a space.
            for c in 0..col {
                match cell(c) {
                    Some(x) if x.is_wide_continuation() => {}
                    Some(x) if x.has_contents() => prefix.push_str(x.contents()),
                    _ => prefix.push(' '),
                }
            }
        }
        self.from_bytes = true;
        self.chunks_from_bytes += 1;
        Some(FromBytes {
            prefix,
            prefix_written: self.written.get(usize::from(row)).copied().unwrap_or(0),
            first_ms: self.row_stamp(row).unwrap_or(self.now_ms),
            text,
            ends,
        })
    }

    /// After the emulator parsed a chunk whose lines came from its bytes: they go in the log,
    /// and the commit line and the "written here" marks are where the screen path leaves them.
    pub(in crate::agent::record) fn bytes_done(
        &mut self,
        screen: &vt100::Screen,
        chunk: FromBytes,
    ) {
        self.from_bytes = false;
        let FromBytes {
            prefix,
            prefix_written,
            first_ms,
            text,
            ends,
        } = chunk;
        // `complete_lines` checked every line it ended.
        let all = std::str::from_utf8(&text).unwrap_or_default();
        let line = |i: usize| {
            let from = if i == 0 { 0 } else { ends[i - 1] };
            all.get(from..ends[i]).unwrap_or_default()
        };
        let first = (!ends.is_empty()).then(|| {
            let mut first = prefix;
            first.push_str(line(0));
            first.truncate(first.trim_end().len());
            first
        });
        let text_of = |i: usize| match (&first, i) {
            (Some(f), 0) => f.as_str(),
            _ => line(i),
        };
        // The open line starts on the cursor row, or higher if it wrapped.
        let mut open = screen.cursor_position().0;
        while open > 0 && screen.row_wrapped(open - 1) {
            open -= 1;
        }
        self.committed = open;
        let mut end = open;
        for i in (0..ends.len()).rev() {
            if end == 0 {
                break;
            }
            let mut first_row = end - 1;
            while first_row > 0 && screen.row_wrapped(first_row - 1) {
                first_row -= 1;
            }
            self.mark_written(first_row, text_of(i));
            end = first_row;
        }
        for i in 0..ends.len() {
            // The screen path does not write again a line already written at its row.
            if i == 0 && prefix_written == text_hash(text_of(0)) {
                continue;
            }
            let ms = if i == 0 { first_ms } else { self.now_ms };
            self.emit_str(ms, LineKind::Output, text_of(i));
        }
        self.bytes_buf = (text, ends);
    }

    /// After every chunk: the UTF-8 character it may have ended in, for the next one.
    pub(in crate::agent::record) fn chunk_done(&mut self, chunk: &[u8]) {
        let at_rest = self.scanner.plain_start() == Some(Start::Ground);
        let mut tail = std::mem::take(&mut self.utf8_carry);
        if at_rest {
            tail.extend_from_slice(&chunk[chunk.len().saturating_sub(3)..]);
            let keep = utf8_tail(&tail).len();
            tail.drain(..tail.len() - keep);
        } else {
            tail.clear();
        }
        self.utf8_carry = tail;
    }
}
