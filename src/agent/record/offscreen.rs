//! Lines that scroll off within the read that printed them need no emulation.
//!
//! The byte path (`stream.rs`) already takes a streamed chunk's lines from its bytes; the
//! emulator still had to print every one of them, though a screen without scrollback keeps only
//! the last screenful. When such a chunk holds more lines than the screen has rows, the screen
//! after it depends on the lines before the last screenful only through the colours they leave
//! set and the bells they ring. So the emulator is given: the chunk up to its first line end (it
//! finishes whatever the last chunk left open), then only the colour sequences and bells of the
//! middle lines and one line end, then the last `rows` lines — the same screen, cursor,
//! colours, wrap marks and callbacks as the whole chunk (a test compares them on random
//! output), for a fraction of the work on a flooding agent.
//!
//! Only when that equivalence is plain: no scrollback (rows scrolled off would be kept there),
//! no scroll region ever set (a newline on the last row then scrolls the whole screen), and the
//! kept lines print a character (vt100 remembers the last one for `CSI b`).

/// Fewer middle lines than this are emulated as they are: not worth a second pass.
const MIN_SKIPPED: usize = 4;

/// Where a chunk taken by the byte path splits (see the module's note).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// The chunk up to and including its first line end.
    pub head_end: usize,
    /// Where the last `rows` lines (and the open line after them) begin.
    pub tail_start: usize,
}

/// The split of `chunk` (a chunk the byte path took: text, SGR, BEL and `\r\n` only) for a
/// screen of `rows` rows whose cursor is on its last row, with the stand-in for the middle
/// lines appended to `middle` (their SGRs since the last full reset, their bells, one `\r\n`).
/// `None`: the chunk is emulated whole.
pub fn split(chunk: &[u8], rows: u16, middle: &mut Vec<u8>) -> Option<Split> {
    let head_end = memchr::memchr(b'\n', chunk)? + 1;
    // The last `rows` line ends stay; the one before them ends the skipped part.
    let tail_start = memchr::memrchr_iter(b'\n', chunk).nth(usize::from(rows))? + 1;
    if tail_start <= head_end {
        return None;
    }
    let skipped = &chunk[head_end..tail_start];
    if memchr::memchr_iter(b'\n', skipped).count() < MIN_SKIPPED || !prints(&chunk[tail_start..]) {
        return None;
    }
    middle.clear();
    // What came before the last full reset of the attributes cannot matter after it.
    let from = [&b"\x1b[0m"[..], b"\x1b[m"]
        .iter()
        .filter_map(|reset| memchr::memmem::rfind(skipped, reset))
        .max()
        .unwrap_or(0);
    let mut i = from;
    while let Some(k) = memchr::memchr(0x1b, &skipped[i..]) {
        let at = i + k;
        // The byte path let through complete SGRs only: `ESC [` params `m`.
        let end = skipped[at..]
            .iter()
            .position(|&b| b == b'm')
            .map_or(skipped.len(), |m| at + m + 1);
        middle.extend_from_slice(&skipped[at..end]);
        i = end;
    }
    middle.extend(memchr::memchr_iter(0x07, skipped).map(|_| 0x07u8));
    middle.extend_from_slice(b"\r\n");
    Some(Split {
        head_end,
        tail_start,
    })
}

/// Whether `bytes` (text, SGR, BEL, `\r\n`) print a character.
fn prints(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            0x1b => match bytes[i..].iter().position(|&b| b == b'm') {
                Some(m) => i += m + 1,
                None => return false,
            },
            b'\r' | b'\n' | 0x07 => i += 1,
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_of_many_lines_keeps_its_head_its_last_screenful_and_the_colours_between() {
        let mut chunk = b"end of open\r\n".to_vec();
        for i in 0..10 {
            chunk.extend_from_slice(format!("\x1b[1m\x1b[3{i}mline {i}\x07\r\n").as_bytes());
        }
        chunk.extend_from_slice(b"\x1b[0mlast\r\n\x1b[32mtail\r\nopen");
        let mut middle = Vec::new();
        let s = split(&chunk, 2, &mut middle).unwrap();
        assert_eq!(&chunk[..s.head_end], b"end of open\r\n");
        assert_eq!(
            &chunk[s.tail_start..],
            b"\x1b[0mlast\r\n\x1b[32mtail\r\nopen"
        );
        // The skipped part holds no full reset: all its colours, all its bells.
        let want: Vec<u8> = (0..10)
            .flat_map(|i| format!("\x1b[1m\x1b[3{i}m").into_bytes())
            .chain(std::iter::repeat_n(0x07, 10))
            .chain(*b"\r\n")
            .collect();
        assert_eq!(middle, want);
    }

    #[test]
    fn colours_before_the_last_full_reset_are_dropped() {
        let mut chunk = b"a\r\n".to_vec();
        for i in 0..8 {
            chunk.extend_from_slice(format!("\x1b[31m{i}\x1b[0m x \x1b[4m\r\n").as_bytes());
        }
        chunk.extend_from_slice(b"y\r\nz\r\n");
        let mut middle = Vec::new();
        let s = split(&chunk, 2, &mut middle).unwrap();
        assert_eq!(&chunk[s.tail_start..], b"y\r\nz\r\n");
        assert_eq!(middle, b"\x1b[0m\x1b[4m\r\n");
    }

    #[test]
    fn short_chunks_and_tails_that_print_nothing_are_emulated_whole() {
        let mut middle = Vec::new();
        assert_eq!(split(b"a\r\nb\r\nc\r\n", 2, &mut middle), None);
        let mut blank_tail = b"a\r\n".repeat(10);
        blank_tail.extend_from_slice(b"\x1b[0m\r\n\r\n");
        assert_eq!(split(&blank_tail, 2, &mut middle), None);
        assert_eq!(split(b"no line end", 2, &mut middle), None);
    }

    /// Counts bells, as the agent's screen reports them.
    #[derive(Default)]
    struct Bells(usize);

    impl vt100::Callbacks for Bells {
        fn audible_bell(&mut self, _: &mut vt100::Screen) {
            self.0 += 1;
        }
    }

    /// Streamed agent output: coloured lines (resets, 256 colours, bold left on), wide and
    /// accented characters, lines longer than the screen, blank lines, bells.
    fn streamed(seed: u32, lines: usize) -> Vec<u8> {
        let mut s = seed;
        let mut next = |m: u32| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) % m
        };
        let words = ["alpha", "✓ ok", "界面", "bravo  ", "x", "über", "\x07"];
        let mut out = Vec::new();
        for i in 0..lines {
            match next(12) {
                0 => out.extend_from_slice(b"\r\n"),
                1 => out.extend_from_slice(b"\x1b[1m\x1b[38;5;208mstays bold\r\n"),
                _ => {
                    let colour = 31 + next(6);
                    out.extend_from_slice(format!("\x1b[{colour}m[{i:05}]\x1b[0m").as_bytes());
                    let most = if next(8) == 0 { 60 } else { 8 };
                    for _ in 0..next(most) {
                        out.push(b' ');
                        out.extend_from_slice(words[next(words.len() as u32) as usize].as_bytes());
                    }
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        out
    }

    /// The agent's screen, fed through the byte path with lines skipped, ends every chunk
    /// exactly as a bare vt100 fed every byte: cells, colours, wrap marks, cursor, bells.
    #[test]
    fn skipping_unseen_lines_leaves_the_screen_a_bare_emulator_has() {
        use crate::agent::record::lines::{LogCallbacks, feed};
        use crate::agent::screen::{ScreenEvent, new_parser};
        let nz = |n: u16| std::num::NonZeroU16::new(n).unwrap();
        let mut skipped = 0;
        for seed in 0..40u32 {
            let (rows, cols) = (4 + (seed % 5) as u16, 20 + (seed % 3) as u16 * 17);
            let input = streamed(seed, 1_500);
            let mut ours = new_parser(rows, cols);
            let mut bare = vt100::Parser::new_with_callbacks(nz(rows), nz(cols), 0, Bells(0));
            let (mut at, mut s, mut bells) = (0, seed, 0);
            let mut now = 1_000_000u64;
            while at < input.len() {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let n = 1 + (s >> 12) as usize % 3_000;
                let chunk = &input[at..(at + n).min(input.len())];
                at += chunk.len();
                now += 5;
                feed(&mut ours, chunk, now);
                bare.process(chunk);
                ours.callbacks_mut().tracker().drop_lines();
                bells += ours
                    .callbacks_mut()
                    .take_events()
                    .iter()
                    .filter(|e| **e == ScreenEvent::Bell)
                    .count();
                let (a, b) = (ours.screen(), bare.screen());
                assert_eq!(
                    (a.state_formatted(), a.cursor_position()),
                    (b.state_formatted(), b.cursor_position()),
                    "seed {seed}, {rows}x{cols}, after byte {at}"
                );
                for r in 0..rows {
                    assert_eq!(a.row_wrapped(r), b.row_wrapped(r), "seed {seed}, row {r}");
                }
                assert_eq!(bells, bare.callbacks().0, "seed {seed}: bells");
            }
            skipped += ours.callbacks_mut().tracker().chunks_skipping;
        }
        assert!(skipped > 200, "only {skipped} chunks skipped lines");
    }
}
