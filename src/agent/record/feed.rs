//! Driving the text log's [`LineTracker`] from the bytes a PTY gives: the emulator is paused at
//! each point where the log must look at the screen (before a clear, around the alternate
//! screen, after a cursor move up, every screenful of newlines while streaming), and vt100's
//! formatted row dump is read as plain text without a second pass.

use super::lines::LineTracker;
use super::offscreen;
use super::scan::{Point, Seq};

/// A `fmt::Write` that keeps the text of vt100's formatted row dump and drops its SGR escapes
/// and newlines, so a scrolled row is captured without a second pass to strip it.
pub(super) struct PlainSink<'a> {
    pub(super) out: &'a mut String,
    pub(super) in_escape: bool,
}

impl std::fmt::Write for PlainSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if !self.in_escape && !s.contains(['\x1b', '\n']) {
            self.out.push_str(s);
            return Ok(());
        }
        for c in s.chars() {
            if self.in_escape {
                self.in_escape = c != 'm';
            } else if c == '\x1b' {
                self.in_escape = true;
            } else if c != '\n' {
                self.out.push(c);
            }
        }
        Ok(())
    }
}

/// Stops vt100's row dump at its first character: a newline there means the row ended its line.
pub(super) struct Probe {
    pub(super) first: Option<char>,
}

impl std::fmt::Write for Probe {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        match s.chars().next() {
            None => Ok(()),
            Some(c) => {
                self.first = Some(c);
                Err(std::fmt::Error)
            }
        }
    }
}

/// Feeds one chunk to the emulator, pausing at each point where the log must look at the
/// screen, and returns the lines that became final.
pub fn feed<CB: LogCallbacks>(parser: &mut vt100::Parser<CB>, chunk: &[u8], now_ms: u64) {
    let mut points: Vec<Point> = Vec::new();
    let from_bytes = {
        let (screen, cb) = parser.screen_and_callbacks_mut();
        let t = cb.tracker();
        t.begin(screen, now_ms);
        let start = t.scanner.plain_start();
        // A chunk the byte path takes holds no sequence but colours: nothing for the scan to
        // find, so it only needs the scanner's state at the chunk's end.
        let taken = t.lines_from_bytes(screen, start, chunk);
        if taken.is_some() {
            t.scanner.skip_plain(chunk);
        } else {
            t.scanner.scan(chunk, &mut points);
        }
        taken
    };
    if let Some(lines) = from_bytes {
        // Plain streamed text: its lines are its bytes, the emulator runs without a pause, and
        // without the lines that would scroll off before anyone could see them.
        let (screen, cb) = parser.screen_and_callbacks_mut();
        let t = cb.tracker();
        let split = (screen.scrollback_capacity() == 0 && !t.region_set)
            .then(|| offscreen::split(chunk, screen.size().0.get(), &mut t.middle))
            .flatten();
        let last = match split {
            Some(s) => {
                let middle = std::mem::take(&mut parser.callbacks_mut().tracker().middle);
                parser.process(&chunk[..s.head_end]);
                parser.process(&middle);
                let t = parser.callbacks_mut().tracker();
                t.middle = middle;
                t.chunks_skipping += 1;
                &chunk[s.tail_start..]
            }
            None => chunk,
        };
        // A chunk that ends between a line's `\r` and its `\n` (a batch cut there): where the
        // line's text ended, so the next chunk can go on from the bytes too.
        let cr_col = match last.split_last() {
            Some((b'\r', before)) => {
                parser.process(before);
                let col = parser.screen().cursor_position().1;
                parser.process(b"\r");
                Some(col)
            }
            _ => {
                parser.process(last);
                None
            }
        };
        parser.callbacks_mut().tracker().cr_col = cr_col;
        let (screen, cb) = parser.screen_and_callbacks_mut();
        let t = cb.tracker();
        t.bytes_done(screen, lines);
        t.end(screen);
        t.chunk_done(chunk);
        return;
    }
    // While streaming, a pause every screenful of newlines, so rows are read before they
    // scroll off.
    let per = usize::from(parser.screen().size().0.get().saturating_sub(1)).max(1);
    let newlines = memchr::memchr_iter(b'\n', chunk)
        .skip(per - 1)
        .step_by(per)
        .map(|at| Point {
            at,
            what: Seq::Newlines,
        });
    let mut merged: Vec<Point> = Vec::with_capacity(points.len() + chunk.len() / 2048);
    let mut newlines = newlines.peekable();
    for p in points {
        while let Some(n) = newlines.next_if(|n| n.at < p.at) {
            merged.push(n);
        }
        merged.push(p);
    }
    merged.extend(newlines);
    let mut from = 0;
    let mut alt = parser.screen().alternate_screen();
    for p in merged {
        if let Seq::Redraw {
            region_top: Some(_),
        } = p.what
        {
            // Kept for good (a reset region is not told from a set one): see `offscreen`.
            parser.callbacks_mut().tracker().region_set = true;
        }
        match p.what {
            Seq::Newlines if alt => {}
            Seq::Newlines => {
                parser.process(&chunk[from..=p.at]);
                from = p.at + 1;
                let (screen, cb) = parser.screen_and_callbacks_mut();
                cb.tracker().between(screen);
            }
            // A cursor move on a full-screen app changes nothing the log keeps.
            Seq::Redraw { .. } if alt => {}
            Seq::Redraw { region_top } => {
                parser.process(&chunk[from..=p.at]);
                from = p.at + 1;
                let (screen, cb) = parser.screen_and_callbacks_mut();
                cb.tracker().after_redraw(screen, region_top);
            }
            seq => {
                parser.process(&chunk[from..p.at]);
                from = p.at;
                let (screen, cb) = parser.screen_and_callbacks_mut();
                cb.tracker().before(screen, seq);
                match seq {
                    Seq::AltEnter => alt = true,
                    Seq::AltLeave | Seq::Reset => alt = false,
                    _ => {}
                }
            }
        }
    }
    parser.process(&chunk[from..]);
    let (screen, cb) = parser.screen_and_callbacks_mut();
    cb.tracker().end(screen);
    cb.tracker().chunk_done(chunk);
}

/// Callbacks that carry a [`LineTracker`] (the screen's own, `ScreenCallbacks`).
pub trait LogCallbacks: vt100::Callbacks {
    fn tracker(&mut self) -> &mut LineTracker;
}

/// A quiet moment (see [`LineTracker::quiet`]).
pub fn quiet<CB: LogCallbacks>(parser: &mut vt100::Parser<CB>) {
    let (screen, cb) = parser.screen_and_callbacks_mut();
    cb.tracker().quiet(screen);
}

/// The output ended (see [`LineTracker::finish`]).
pub fn finish<CB: LogCallbacks>(parser: &mut vt100::Parser<CB>, now_ms: u64) {
    let (screen, cb) = parser.screen_and_callbacks_mut();
    cb.tracker().finish(screen, now_ms);
}
