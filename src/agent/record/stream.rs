//! The text log's fast path: lines taken from the byte stream itself while an agent only streams.
//!
//! Reading every finished row back out of the emulator, cell by cell, cost about as much as the
//! emulation itself. When a chunk holds nothing but text, colours (SGR) and `\r\n` line ends,
//! the screen can only show what was printed, in order, so the chunk's complete lines are its
//! bytes with the colours removed. [`complete_lines`] says whether a chunk is such a chunk and
//! returns those lines; anything else (a cursor move, a lone `\r`, a tab, a zero-width
//! character, invalid UTF-8) sends the chunk down the screen path of `feed`, which is always
//! right. The emulator still parses every byte that can reach the screen either way (lines that
//! scroll off within the chunk it need not: `offscreen.rs`); only the reading back is skipped.

use unicode_width::UnicodeWidthChar;

/// Where the previous chunk left the escape parser (from `Scanner::plain_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Ground,
    /// After `ESC`.
    Esc,
    /// Inside `CSI` with only digits and separators so far: an SGR if it ends in `m`.
    Csi,
    /// After a `\r` that ended the last chunk (the cursor's column is where the line ended).
    Cr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Esc,
    Csi,
    /// A `\r` was read: only `\n` may follow.
    Cr,
}

/// The chunk's complete lines (each ended by `\r\n`), without colours and trailing blanks, if
/// the chunk is plain streamed text: appended to `text`, each line's end pushed to `ends` (no
/// allocation per line; `text` is valid UTF-8 up to the last end). `carry` is the start of a
/// UTF-8 character the previous chunk ended in (the emulator holds it), `col` the cursor's
/// column on a screen `cols` wide. The first line is only what this chunk adds to the line the
/// cursor is on. `false`: the chunk needs the screen path (what was appended is to be dropped).
pub fn complete_lines(
    start: Start,
    carry: &[u8],
    chunk: &[u8],
    (col, cols): (u16, u16),
    text: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> bool {
    let (col, cols) = (usize::from(col), usize::from(cols));
    let mut state = match start {
        Start::Ground => State::Ground,
        Start::Esc => State::Esc,
        Start::Csi => State::Csi,
        Start::Cr => State::Cr,
    };
    let mut line_start = text.len();
    text.extend_from_slice(carry);
    let mut ascii = carry.is_empty();
    let mut first = true;
    let mut i = 0;
    while i < chunk.len() {
        match state {
            State::Ground => {
                // Runs of printable ASCII are most of the stream.
                let run = super::runs::printable(&chunk[i..]);
                text.extend_from_slice(&chunk[i..i + run]);
                i += run;
                let Some(&b) = chunk.get(i) else { break };
                match b {
                    // A whole colour sequence here: past it at once (most are).
                    0x1b if chunk.get(i + 1) == Some(&b'[') => {
                        let params = &chunk[i + 2..];
                        match params.iter().position(|b| !b"0123456789;:".contains(b)) {
                            Some(n) if params[n] == b'm' => i += 2 + n,
                            Some(_) => return false,
                            None => {
                                state = State::Csi;
                                i = chunk.len();
                                continue;
                            }
                        }
                    }
                    0x1b => state = State::Esc,
                    b'\r' => state = State::Cr,
                    // A bell changes nothing on screen.
                    0x07 => {}
                    0x80..=0xff => {
                        ascii = false;
                        text.push(b);
                    }
                    // A lone `\n` (the cursor keeps its column), tab, backspace, other controls.
                    _ => return false,
                }
            }
            State::Esc => match chunk[i] {
                b'[' => state = State::Csi,
                _ => return false,
            },
            State::Csi => match chunk[i] {
                b'0'..=b'9' | b';' | b':' => {}
                b'm' => state = State::Ground,
                _ => return false,
            },
            State::Cr => match chunk[i] {
                b'\n' => {
                    let from = if first { col } else { 0 };
                    let Some(len) = line_len(&text[line_start..], ascii, from, cols) else {
                        return false;
                    };
                    text.truncate(line_start + len);
                    ends.push(text.len());
                    line_start = text.len();
                    ascii = true;
                    first = false;
                    state = State::Ground;
                }
                _ => return false,
            },
        }
        i += 1;
    }
    // What is left is the open line: its characters must be plain too (the screen shows them,
    // and the next chunk's first line continues them), except a character cut at the end.
    // (ASCII is one narrow character per cell: every wrap is clean.)
    if !ascii {
        let from = if first { col } else { 0 };
        let open = &text[line_start..];
        let valid = match std::str::from_utf8(open) {
            Ok(s) => s,
            Err(e) if e.error_len().is_none() => {
                match std::str::from_utf8(&open[..e.valid_up_to()]) {
                    Ok(s) => s,
                    Err(_) => return false,
                }
            }
            Err(_) => return false,
        };
        if clean_wraps(valid, from, cols).is_none() {
            return false;
        }
    }
    true
}

/// The length of a line's text without its trailing blanks, if the screen holds it as the same
/// characters in a row or rows wrapped from one to the next (see [`clean_wraps`]).
fn line_len(bytes: &[u8], ascii: bool, from: usize, cols: usize) -> Option<usize> {
    if ascii {
        // Controls never get here: only spaces can trail.
        return Some(bytes.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1));
    }
    let text = std::str::from_utf8(bytes).ok()?;
    clean_wraps(text, from, cols)?;
    Some(text.trim_end().len())
}

/// Walks `text` from column `from` as vt100 places it, and says whether the screen will read it
/// back as this text: every character takes one or two cells of its own (a zero-width mark or a
/// joiner is appended to the cell before it, a control is dropped), and a row the line goes on
/// from is marked wrapped — which vt100 does only when its last cell holds a character, not
/// when a wide character did not fit there or ended there.
fn clean_wraps(text: &str, from: usize, cols: usize) -> Option<()> {
    let mut at = from;
    let mut last_wide = false;
    for c in text.chars() {
        let w = match c.width() {
            Some(w @ (1 | 2)) => w,
            _ => return None,
        };
        if at + w > cols {
            if at < cols || last_wide {
                return None;
            }
            at = 0;
        }
        at += w;
        last_wide = w == 2;
    }
    Some(())
}

/// The bytes at the end of `chunk` that start a UTF-8 character not complete yet.
pub fn utf8_tail(chunk: &[u8]) -> &[u8] {
    let n = chunk.len();
    for back in 1..=3.min(n) {
        let b = chunk[n - back];
        if b & 0xc0 == 0x80 {
            continue; // a continuation byte: look further back for its lead
        }
        let need = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return &[],
        };
        return if need > back { &chunk[n - back..] } else { &[] };
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(
        start: Start,
        carry: &[u8],
        chunk: &[u8],
        col: u16,
        cols: u16,
    ) -> Option<Vec<String>> {
        let (mut text, mut ends) = (Vec::new(), Vec::new());
        if !complete_lines(start, carry, chunk, (col, cols), &mut text, &mut ends) {
            return None;
        }
        let mut from = 0;
        let lines = ends.iter().map(|&end| {
            let line = String::from_utf8(text[from..end].to_vec()).unwrap();
            from = end;
            line
        });
        Some(lines.collect())
    }

    fn lines(chunk: &[u8]) -> Option<Vec<String>> {
        collect(Start::Ground, &[], chunk, 0, 80)
    }

    #[test]
    fn colours_go_and_trailing_blanks_are_trimmed() {
        assert_eq!(
            lines(b"\x1b[31m[flood 1]\x1b[0m alpha  \r\n\x1b[1;32mok\x1b[m\r\npart"),
            Some(vec!["[flood 1] alpha".to_string(), "ok".to_string()])
        );
        assert_eq!(lines(b"\r\n\r\n"), Some(vec![String::new(), String::new()]));
        assert_eq!(lines(b"no newline yet\x07"), Some(vec![]));
    }

    #[test]
    fn anything_that_moves_the_cursor_or_overwrites_needs_the_screen() {
        for chunk in [
            &b"progress 45%\rprogress 46%"[..],
            b"a\nb\r\n",
            b"a\tb\r\n",
            b"ab\x08c\r\n",
            b"\x1b[2K\r\n",
            b"\x1b[?25l\r\n",
            b"\x1b]0;title\x07\r\n",
            b"\x1b(B\r\n",
            b"e\xcc\x81\r\n",     // a combining accent
            b"\xc2\x85\r\n",      // C1 next line
            b"bad \xff\r\n",      // not UTF-8
            b"half \xe2\x9c\r\n", // a cut character inside a line
        ] {
            assert_eq!(lines(chunk), None, "{chunk:?}");
        }
    }

    #[test]
    fn sequences_and_characters_cut_between_reads_continue() {
        assert_eq!(
            collect(Start::Csi, &[], b"1;31mred\x1b[0m\r\n", 0, 80),
            Some(vec!["red".to_string()])
        );
        assert_eq!(
            collect(Start::Esc, &[], b"[0mx\r\n", 0, 80),
            Some(vec!["x".to_string()])
        );
        assert_eq!(
            collect(Start::Cr, &[], b"\nnext\r\n", 5, 80),
            Some(vec![String::new(), "next".to_string()])
        );
        assert_eq!(collect(Start::Cr, &[], b"x\r\n", 5, 80), None);
        let first = b"done \xe2\x9c";
        assert_eq!(utf8_tail(first), b"\xe2\x9c");
        assert_eq!(lines(first), Some(vec![]));
        assert_eq!(
            collect(
                Start::Ground,
                utf8_tail(first),
                b"\x94 \xe7\x95\x8c\r\n",
                0,
                80
            ),
            Some(vec!["\u{2714} \u{754c}".to_string()])
        );
        assert_eq!(utf8_tail(b"ok \xe2\x9c\x94"), b"");
        assert_eq!(utf8_tail(b"ascii"), b"");
    }
}

#[cfg(test)]
mod parity {
    use crate::agent::record::lines::{LogCallbacks, feed, finish, quiet};
    use crate::agent::record::text::TextLine;
    use crate::agent::screen::{Parser, new_parser};

    /// Agent-like output: coloured lines, wide and non-ASCII characters, lines longer than the
    /// screen, blank lines, and now and then a progress `\r`, a tab, a redraw, a clear.
    fn output(seed: u32, lines: usize) -> Vec<u8> {
        let mut s = seed;
        let mut next = |m: u32| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) % m
        };
        let words = [
            "alpha", "✓ ok", "界面", "bravo  ", "", "x", "⏺ Read", "e\u{301}",
        ];
        let mut out = Vec::new();
        for i in 0..lines {
            match next(40) {
                0 => out.extend_from_slice(b"progress 10%\rprogress 99%\r\n"),
                1 => out.extend_from_slice(b"a\tb\r\n"),
                2 => out.extend_from_slice(b"\x1b[2A\x1b[2K\rredrawn\r\n\r\n"),
                3 => out.extend_from_slice(b"\x1b[2J\x1b[Hcleared\r\n"),
                4 => out.extend_from_slice(b"\r\n"),
                _ => {
                    let colour = 31 + next(6);
                    out.extend_from_slice(format!("\x1b[{colour}m[{i:05}]\x1b[0m").as_bytes());
                    let most = if next(10) == 0 { 40 } else { 9 };
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

    fn run(input: &[u8], seed: u32, stream_path: bool) -> (Vec<TextLine>, u64) {
        let mut p: Parser = new_parser(6, 30);
        p.callbacks_mut().tracker().stream_path = stream_path;
        let mut s = seed;
        let mut at = 0;
        let mut now = 1_000_000u64;
        let mut got = Vec::new();
        while at < input.len() {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let n = 1 + (s >> 16) as usize % 300;
            let chunk = &input[at..(at + n).min(input.len())];
            at += chunk.len();
            // Time moves on, sometimes past the streaming and quiet thresholds.
            now += if s.is_multiple_of(7) { 2_500 } else { 30 };
            if s.is_multiple_of(11) {
                quiet(&mut p);
            }
            feed(&mut p, chunk, now);
            got.extend(p.callbacks_mut().take_lines());
        }
        finish(&mut p, now + 1);
        got.extend(p.callbacks_mut().take_lines());
        (got, p.callbacks_mut().tracker().chunks_from_bytes)
    }

    /// A read that ends between a line's `\r` and its `\n` (a batch cut there) does not send
    /// the next read down the screen path.
    #[test]
    fn a_line_end_cut_between_reads_stays_on_the_byte_path() {
        let mut p: Parser = new_parser(6, 30);
        // The byte path starts once the cursor is on the last row.
        feed(&mut p, b"\r\n\r\n\r\n\r\n\r\n", 5);
        p.callbacks_mut().tracker().drop_lines();
        let before = p.callbacks_mut().tracker().chunks_from_bytes;
        feed(&mut p, b"\x1b[32mone\x1b[0m\r\ntwo \xe7\x95\x8c\r", 10);
        feed(&mut p, b"\nthree\r", 20);
        feed(&mut p, b"\n", 30);
        let lines: Vec<(u64, String)> = p
            .callbacks_mut()
            .take_lines()
            .into_iter()
            .map(|l| (l.ms, l.text))
            .collect();
        let want = [(10, "one"), (10, "two \u{754c}"), (20, "three")];
        let want: Vec<(u64, String)> = want.iter().map(|(t, s)| (*t, s.to_string())).collect();
        assert_eq!(lines, want);
        assert_eq!(p.callbacks_mut().tracker().chunks_from_bytes - before, 3);
    }

    /// The same lines in the same order, with the same stamps: both paths stamp a line with
    /// the read that carried its first printed character.
    #[test]
    fn lines_from_the_bytes_are_the_lines_the_screen_gives() {
        let mut used = 0;
        for seed in 0..60 {
            let input = output(seed, 400);
            let (screen, none) = run(&input, seed, false);
            let (bytes, n) = run(&input, seed, true);
            assert_eq!(none, 0);
            used += n;
            assert!(bytes.windows(2).all(|w| w[0].ms <= w[1].ms), "seed {seed}");
            if let Some(i) =
                (0..bytes.len().max(screen.len())).find(|&i| bytes.get(i) != screen.get(i))
            {
                let window = |v: &[TextLine]| v[i.saturating_sub(3)..(i + 3).min(v.len())].to_vec();
                panic!(
                    "seed {seed}, line {i}\nfrom bytes: {:#?}\nfrom screen: {:#?}",
                    window(&bytes),
                    window(&screen)
                );
            }
        }
        assert!(used > 300, "the byte path took only {used} chunks");
    }
}
