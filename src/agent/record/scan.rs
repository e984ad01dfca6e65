//! Finds, in the bytes an agent prints, the control sequences after which the text log must look
//! at the screen: a clear (snapshot what is about to vanish), a switch to or from the alternate
//! screen, and cursor movement that can rewrite rows already on screen (redraws).
//!
//! vt100 offers no callback for these, so the stream is scanned beside it. The scan only decides
//! where to pause the emulator; vt100 stays the one that interprets the bytes, so a sequence the
//! scan misreads costs at most a needless or a missed snapshot, never a wrong screen.
//! A sequence split across two reads is handled: the scan keeps its state between chunks and
//! reports the offset of the sequence's final byte, before which the screen is still unchanged.

/// Something to act on, at `at`: the index of the sequence's final byte in the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub at: usize,
    pub what: Seq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seq {
    /// `CSI n J`: 0 (or none) below the cursor, 1 above, 2 all. (3, the scrollback, is not
    /// reported: nothing visible goes.)
    EraseDisplay(u16),
    /// `ESC c`: full reset.
    Reset,
    /// `CSI ? 1049 h` and its older forms 47 and 1047.
    AltEnter,
    AltLeave,
    /// A sequence that may move the cursor up or shift rows already on screen: CUU, CPL, CUP,
    /// HVP, VPA, RI, restore cursor, SD, IL, DL, and a scroll region (with its top row, 1-based).
    Redraw {
        region_top: Option<u16>,
    },
    /// Not from the scan: a screenful of newlines went by (`lines::feed` pauses there).
    Newlines,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    Esc,
    /// `ESC` + intermediates (`ESC ( B`): one more byte ends it.
    EscIntermediate,
    Csi,
    /// OSC, DCS, SOS, PM, APC: skipped up to BEL or ST.
    Str,
    StrEsc,
}

const MAX_PARAMS: usize = 4;

/// The scanner's state between chunks.
#[derive(Debug, Default, Clone)]
pub struct Scanner {
    state: State,
    private: Option<u8>,
    intermediate: bool,
    params: [u16; MAX_PARAMS],
    nparams: usize,
}

impl Scanner {
    /// Where the next chunk starts for the byte-stream path of the text log (`stream.rs`):
    /// between sequences, after an `ESC`, or inside what can still be an SGR; `None` inside
    /// anything else.
    pub fn plain_start(&self) -> Option<super::stream::Start> {
        use super::stream::Start;
        match self.state {
            State::Ground => Some(Start::Ground),
            State::Esc => Some(Start::Esc),
            State::Csi if self.private.is_none() && !self.intermediate => Some(Start::Csi),
            _ => None,
        }
    }

    /// Moves past a chunk of text and colours only (one the byte path took): its state at the
    /// end is that of its last sequence, if one is cut there.
    pub fn skip_plain(&mut self, chunk: &[u8]) {
        let mut none = Vec::new();
        match memchr::memrchr(0x1b, chunk) {
            Some(at) => {
                *self = Scanner::default();
                self.scan(&chunk[at..], &mut none);
            }
            // No sequence starts here: one cut at the last chunk's end may go on.
            None if self.state != State::Ground => self.scan(chunk, &mut none),
            None => {}
        }
    }

    /// Appends to `out` every point of interest in `chunk`, in order.
    pub fn scan(&mut self, chunk: &[u8], out: &mut Vec<Point>) {
        let mut i = 0;
        while i < chunk.len() {
            if self.state == State::Ground {
                // Text is most of the stream: jump to the next ESC.
                match memchr::memchr(0x1b, &chunk[i..]) {
                    Some(k) => {
                        i += k + 1;
                        self.state = State::Esc;
                    }
                    None => return,
                }
                continue;
            }
            let b = chunk[i];
            match self.state {
                State::Ground => {}
                State::Esc => self.esc(b, i, out),
                State::EscIntermediate => self.state = State::Ground,
                State::Csi => self.csi(b, i, out),
                State::Str => {
                    if b == 0x07 {
                        self.state = State::Ground;
                    } else if b == 0x1b {
                        self.state = State::StrEsc;
                    }
                }
                State::StrEsc => {
                    // ST is ESC \; any other ESC starts a new sequence.
                    if b == b'\\' {
                        self.state = State::Ground;
                    } else {
                        self.state = State::Esc;
                        continue;
                    }
                }
            }
            i += 1;
        }
    }

    fn esc(&mut self, b: u8, i: usize, out: &mut Vec<Point>) {
        self.state = State::Ground;
        match b {
            b'[' => {
                self.state = State::Csi;
                self.private = None;
                self.intermediate = false;
                self.params = [0; MAX_PARAMS];
                self.nparams = 0;
            }
            b']' | b'P' | b'X' | b'^' | b'_' => self.state = State::Str,
            b'c' => out.push(Point {
                at: i,
                what: Seq::Reset,
            }),
            // RI (reverse index) and DECRC (restore cursor).
            b'M' | b'8' => out.push(Point {
                at: i,
                what: Seq::Redraw { region_top: None },
            }),
            0x20..=0x2f => self.state = State::EscIntermediate,
            0x1b => self.state = State::Esc,
            _ => {}
        }
    }

    fn csi(&mut self, b: u8, i: usize, out: &mut Vec<Point>) {
        match b {
            b'0'..=b'9' => {
                if self.nparams == 0 {
                    self.nparams = 1;
                }
                let k = self.nparams - 1;
                self.params[k] = self.params[k]
                    .saturating_mul(10)
                    .saturating_add(u16::from(b - b'0'));
            }
            b';' | b':' => {
                if self.nparams == 0 {
                    self.nparams = 1;
                }
                self.nparams = (self.nparams + 1).min(MAX_PARAMS);
            }
            b'<'..=b'?' => self.private = Some(b),
            0x20..=0x2f => self.intermediate = true,
            0x40..=0x7e => {
                self.state = State::Ground;
                if let Some(what) = self.finish(b) {
                    out.push(Point { at: i, what });
                }
            }
            // A control character inside a CSI is executed by the terminal; keep scanning.
            0x00..=0x1a | 0x1c..=0x1f => {}
            0x1b => self.state = State::Esc,
            _ => self.state = State::Ground,
        }
    }

    fn finish(&self, fin: u8) -> Option<Seq> {
        let params = &self.params[..self.nparams];
        let first = params.first().copied().unwrap_or(0);
        if self.intermediate {
            return None;
        }
        match (self.private, fin) {
            (None, b'J') if first != 3 => Some(Seq::EraseDisplay(first)),
            (None, b'A' | b'F' | b'H' | b'f' | b'd' | b'T' | b'L' | b'M' | b'u') => {
                Some(Seq::Redraw { region_top: None })
            }
            (None, b'r') => Some(Seq::Redraw {
                region_top: Some(first.max(1)),
            }),
            (Some(b'?'), b'h' | b'l') => {
                let alt = params.iter().any(|&p| matches!(p, 47 | 1047 | 1049));
                match (alt, fin) {
                    (true, b'h') => Some(Seq::AltEnter),
                    (true, _) => Some(Seq::AltLeave),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(parts: &[&[u8]]) -> Vec<(usize, usize, Seq)> {
        let mut s = Scanner::default();
        let mut out = Vec::new();
        for (k, p) in parts.iter().enumerate() {
            let mut pts = Vec::new();
            s.scan(p, &mut pts);
            out.extend(pts.into_iter().map(|pt| (k, pt.at, pt.what)));
        }
        out
    }

    #[test]
    fn finds_clears_alt_screen_and_cursor_moves_at_their_final_byte() {
        let input = b"hi\x1b[2J\x1b[H\x1b[?1049h\x1b[31mred\x1b[0m\x1b[?1049l\x1b[3A\x1bc";
        let got = scan_all(&[input]);
        let want = vec![
            (0, 5, Seq::EraseDisplay(2)),
            (0, 8, Seq::Redraw { region_top: None }),
            (0, 16, Seq::AltEnter),
            (0, 36, Seq::AltLeave),
            (0, 40, Seq::Redraw { region_top: None }),
            (0, 42, Seq::Reset),
        ];
        assert_eq!(got, want);
        assert_eq!(input[5], b'J');
        assert_eq!(input[36], b'l');
    }

    #[test]
    fn a_sequence_split_between_reads_is_reported_in_the_read_holding_its_end() {
        let got = scan_all(&[b"abc\x1b[", b"?104", b"9l rest"]);
        assert_eq!(got, vec![(2, 1, Seq::AltLeave)]);
    }

    #[test]
    fn text_inside_strings_and_plain_sgr_is_not_a_point() {
        let got = scan_all(&[b"\x1b]0;title [2J inside\x07\x1b[1;31mx\x1b[K\x1b[3J\x1b(B"]);
        assert_eq!(got, vec![]);
        // ESC ends a string, as in vte: what follows is a sequence again.
        let got = scan_all(&[b"\x1b]0;title\x1b[2J"]);
        assert_eq!(got, vec![(0, 12, Seq::EraseDisplay(2))]);
    }

    #[test]
    fn scroll_regions_carry_their_top_row() {
        let got = scan_all(&[b"\x1b[5;20r\x1b[r"]);
        assert_eq!(
            got,
            vec![
                (
                    0,
                    6,
                    Seq::Redraw {
                        region_top: Some(5)
                    }
                ),
                (
                    0,
                    9,
                    Seq::Redraw {
                        region_top: Some(1)
                    }
                ),
            ]
        );
    }
}
