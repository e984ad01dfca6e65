//! When a line of the text log happened: the time of the read that carried its first printed
//! character, on the screen path as on the byte path (`bytes.rs`).
//!
//! The screen path sees rows, not bytes, so it stamps a row at the end of each chunk (and at
//! each pause in it) that printed into it; a row keeps its stamp until it is blank again:
//! scrolled in new, erased by a clear, or below the cursor of a redraw (drawn anew). A cursor
//! resting on a blank row does not stamp it: stamping the row the cursor moved to let a line
//! printed much later carry the time of the line before it (two agents printing alternately
//! then merged out of order).

use super::LineTracker;

impl LineTracker {
    /// After (part of) a chunk: the rows the cursor crossed ended their lines in it and the row
    /// it rests on has its first characters if it is not blank; each gets this chunk's time
    /// unless it has one.
    pub(super) fn touch_rows(&mut self, screen: &vt100::Screen, row: u16) {
        let from = self.chunk_start_row.clamp(0, i32::from(row)) as usize;
        let last = usize::from(row);
        let end = (last + 1).min(self.row_ms.len());
        for r in from..end {
            if r == last && !row_has_text(screen, row) {
                // Blank (or erased since): no line has started here yet.
                self.row_ms[r] = 0;
            } else if self.row_ms[r] == 0 {
                self.row_ms[r] = self.now_ms;
            }
        }
        self.chunk_start_row = i32::from(row);
    }

    /// Rows `from..to` are blank or about to be drawn anew: their next characters stamp them.
    pub(super) fn forget_rows(&mut self, from: u16, to: u16) {
        let to = usize::from(to).min(self.row_ms.len());
        for t in self.row_ms.iter_mut().take(to).skip(usize::from(from)) {
            *t = 0;
        }
    }

    /// Before `CSI mode J` with the cursor at (`row`, `col`): the rows it blanks.
    pub(super) fn erased(&mut self, mode: u16, row: u16, col: u16) {
        match mode {
            0 if col == 0 => self.forget_rows(row, self.rows),
            0 => self.forget_rows(row + 1, self.rows),
            1 => self.forget_rows(0, row),
            _ => self.forget_rows(0, self.rows),
        }
    }

    /// The stamp of the line the cursor's row holds, if it has one yet.
    pub(super) fn row_stamp(&self, row: u16) -> Option<u64> {
        self.row_ms
            .get(usize::from(row))
            .copied()
            .filter(|&t| t > 0)
    }
}

fn row_has_text(screen: &vt100::Screen, row: u16) -> bool {
    let cols = screen.size().1.get();
    (0..cols).any(|c| screen.cell(row, c).is_some_and(vt100::Cell::has_contents))
}

#[cfg(test)]
mod tests {
    use crate::agent::record::lines::{LogCallbacks, feed};
    use crate::agent::record::text::TextLine;
    use crate::agent::screen::{Parser, new_parser};

    fn stamp_of(lines: &[TextLine], text: &str) -> u64 {
        lines
            .iter()
            .find(|l| l.text == text)
            .unwrap_or_else(|| panic!("no `{text}` in {lines:?}"))
            .ms
    }

    fn run(p: &mut Parser, chunks: &[(u64, &[u8])]) -> Vec<TextLine> {
        let mut got = Vec::new();
        for (now, chunk) in chunks {
            feed(p, chunk, *now);
            got.extend(p.callbacks_mut().tracker().take_lines());
        }
        got
    }

    /// A redrawing agent (no pause to read rows while it prints) goes quiet with the cursor on
    /// a blank row; the line it prints there much later scrolls off within the same read. It
    /// happened when it was printed, not when the line before it ended.
    #[test]
    fn a_line_printed_after_a_pause_is_stamped_when_printed_not_when_its_row_was_reached() {
        let mut p = new_parser(4, 20);
        let got = run(
            &mut p,
            &[
                (1_000, b"one\r\ntwo\r\n"),
                // A redraw: the cursor goes up over rows already printed.
                (1_100, b"\x1b[2A\x1b[2Kone!\r\n\r\n"),
                (2_000, b"late\r\nw\r\nx\r\ny\r\nz\r\n"),
            ],
        );
        assert_eq!(stamp_of(&got, "late"), 2_000, "{got:?}");
    }

    /// A line whose first characters came in one read and its end in a later one is stamped
    /// with the first, on the byte path (cursor on the last row, plain text) as on the screen.
    #[test]
    fn a_line_split_between_reads_is_stamped_with_its_first_characters() {
        for stream_path in [true, false] {
            let mut p = new_parser(3, 20);
            p.callbacks_mut().tracker().stream_path = stream_path;
            let got = run(
                &mut p,
                &[
                    (1_000, b"a\r\nb\r\nc\r\nA "),
                    (3_000, b"2\r\nB 1\r\n"),
                    (5_000, b"\r\nafter a blank\r\n"),
                ],
            );
            let from_bytes = p.callbacks_mut().tracker().chunks_from_bytes;
            assert_eq!(from_bytes > 0, stream_path);
            assert_eq!(stamp_of(&got, "A 2"), 1_000, "{got:?}");
            assert_eq!(stamp_of(&got, "B 1"), 3_000, "{got:?}");
            assert_eq!(stamp_of(&got, "after a blank"), 5_000, "{got:?}");
        }
    }
}
