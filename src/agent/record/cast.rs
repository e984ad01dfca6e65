//! `pty.cast`: the terminal session as an asciicast v2 file — a JSON header line, then one JSON
//! array per event: `[seconds, "o", text]` output, `[seconds, "r", "COLSxROWS"]` a resize,
//! `[seconds, "m", label]` a marker (the human typed into the agent; what was typed is not kept:
//! it may be a secret). Any asciinema player plays it; `orch-tui replay` does too.
//!
//! The file rotates with the other logs; each generation starts with its own header, whose
//! `timestamp` is a whole second at or before its first event, so `timestamp + time` is exact
//! across generations. Output is UTF-8 text: a character split between two reads waits for its
//! end, and bytes that are not UTF-8 become U+FFFD (`pty.raw` keeps the exact bytes).

use std::io;
use std::path::Path;

use serde_json::Value;

use crate::agent::logs::RotatingFile;

/// Writes one attempt's cast.
#[derive(Debug)]
pub struct CastWriter {
    file: RotatingFile,
    /// The current generation's header time, Unix ms (a whole second).
    base_ms: u64,
    cols: u16,
    rows: u16,
    title: String,
    /// An incomplete UTF-8 sequence at the end of the last chunk.
    carry: Vec<u8>,
    line: Vec<u8>,
}

impl CastWriter {
    /// Opens (appending to) `path`; a new or rotated file gets a header at the first event.
    pub fn open(
        path: &Path,
        rotate_bytes: u64,
        cols: u16,
        rows: u16,
        title: &str,
    ) -> io::Result<CastWriter> {
        let file = RotatingFile::open(path, rotate_bytes)?;
        Ok(CastWriter {
            base_ms: if file.is_empty() { u64::MAX } else { 0 },
            file,
            cols,
            rows,
            title: title.to_string(),
            carry: Vec::new(),
            line: Vec::new(),
        })
    }

    /// Output the agent printed at `now_ms`: escaped for JSON straight from the bytes, in
    /// one pass (no string in between; this runs for every read of a flooding agent).
    pub fn output(&mut self, now_ms: u64, bytes: &[u8]) -> io::Result<()> {
        let joined;
        let data = if self.carry.is_empty() {
            bytes
        } else {
            let mut d = std::mem::take(&mut self.carry);
            d.extend_from_slice(bytes);
            joined = d;
            &joined
        };
        // A character cut at the end waits for the rest of it.
        let cut = super::stream::utf8_tail(data);
        let body = &data[..data.len() - cut.len()];
        self.carry = cut.to_vec();
        if body.is_empty() {
            return Ok(());
        }
        self.start_event(now_ms, "o")?;
        if std::str::from_utf8(body).is_ok() {
            // The common case, checked by the standard library's fast path.
            escape_json(&mut self.line, body);
        } else {
            for chunk in body.utf8_chunks() {
                escape_json(&mut self.line, chunk.valid().as_bytes());
                if !chunk.invalid().is_empty() {
                    self.line.extend_from_slice("\u{fffd}".as_bytes());
                }
            }
        }
        self.end_event()
    }

    /// The terminal was resized.
    pub fn resize(&mut self, now_ms: u64, rows: u16, cols: u16) -> io::Result<()> {
        self.rows = rows;
        self.cols = cols;
        self.event(now_ms, "r", &format!("{cols}x{rows}"))
    }

    /// A marker (`m` event) with a label.
    pub fn marker(&mut self, now_ms: u64, label: &str) -> io::Result<()> {
        self.event(now_ms, "m", label)
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync()
    }

    fn event(&mut self, now_ms: u64, code: &str, data: &str) -> io::Result<()> {
        self.start_event(now_ms, code)?;
        escape_json(&mut self.line, data.as_bytes());
        self.end_event()
    }

    /// Starts an event line in `self.line` (after a header, on a new generation), up to the
    /// opening quote of its data.
    fn start_event(&mut self, now_ms: u64, code: &str) -> io::Result<()> {
        self.line.clear();
        if self.base_ms == u64::MAX || self.file.is_empty() {
            // A new generation: its header first, stamped with a whole second.
            self.base_ms = now_ms / 1000 * 1000;
            let title = serde_json::to_string(&self.title).map_err(io::Error::other)?;
            let _ = io::Write::write_fmt(
                &mut self.line,
                format_args!(
                    "{{\"version\": 2, \"width\": {}, \"height\": {}, \"timestamp\": {}, \"title\": {title}, \"env\": {{\"TERM\": \"xterm-256color\"}}}}\n",
                    self.cols,
                    self.rows,
                    self.base_ms / 1000
                ),
            );
        } else if self.base_ms == 0 {
            // Appending to a cast written by an earlier process: continue its clock.
            self.base_ms = last_base_ms(self.file.path()).unwrap_or(now_ms / 1000 * 1000);
        }
        let ms = now_ms.saturating_sub(self.base_ms);
        let _ = io::Write::write_fmt(
            &mut self.line,
            format_args!("[{}.{:03}, \"{code}\", \"", ms / 1000, ms % 1000),
        );
        Ok(())
    }

    fn end_event(&mut self) -> io::Result<()> {
        self.line.extend_from_slice(b"\"]\n");
        self.file.write_all(&self.line)
    }
}

/// What a byte becomes inside a JSON string: 0 itself, `u` a `\u00XX` escape, else the letter
/// after a backslash. Only controls, `"` and `\` are escaped (UTF-8 passes as it is).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends `text` (valid UTF-8) escaped for the inside of a JSON string.
fn escape_json(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + text.len() / 8);
    let mut i = 0;
    loop {
        let run = super::runs::json_plain(&text[i..]);
        out.extend_from_slice(&text[i..i + run]);
        i += run;
        let Some(&b) = text.get(i) else { return };
        i += 1;
        let e = ESCAPE[usize::from(b)];
        if e == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
    }
}

fn last_base_ms(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let header = text.lines().next()?;
    let v: Value = serde_json::from_str(header).ok()?;
    v.get("timestamp")?.as_u64().map(|s| s * 1000)
}

/// One event of a cast.
#[derive(Debug, Clone, PartialEq)]
pub struct CastEvent {
    /// Unix ms (header timestamp + event time).
    pub ms: u64,
    /// `o`, `i`, `r`, `m`.
    pub code: String,
    pub data: String,
}

/// A cast read back: the first header's size and title, every event in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    pub cols: u16,
    pub rows: u16,
    pub title: String,
    pub events: Vec<CastEvent>,
}

/// Reads a cast and its rotated generations (oldest first). Every line must be asciicast v2:
/// the error names the file and line otherwise.
pub fn read_cast(path: &Path) -> io::Result<Cast> {
    let mut cast: Option<Cast> = None;
    for n in (0..=crate::agent::logs::KEEP_GENERATIONS).rev() {
        let p = crate::agent::logs::generation(path, n);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
        };
        parse_generation(&p, &text, &mut cast)?;
    }
    cast.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no session recording at {}", path.display()),
        )
    })
}

fn parse_generation(path: &Path, text: &str, cast: &mut Option<Cast>) -> io::Result<()> {
    let bad = |line: usize, what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}:{line}: not asciicast v2: {what}", path.display()),
        )
    };
    let mut base_ms = 0u64;
    for (i, line) in text.lines().enumerate() {
        // The last line may be cut short by a crash mid-write: that is the end, not an error.
        let last = i + 1 == text.lines().count() && !text.ends_with('\n');
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if last => break,
            Err(e) => return Err(bad(i + 1, e.to_string())),
        };
        if i == 0 {
            if v.get("version").and_then(Value::as_u64) != Some(2) {
                return Err(bad(1, "the header has no \"version\": 2".into()));
            }
            let dim = |k: &str| {
                v.get(k)
                    .and_then(Value::as_u64)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| bad(1, format!("the header has no {k}")))
            };
            let (cols, rows) = (dim("width")?, dim("height")?);
            base_ms = v.get("timestamp").and_then(Value::as_u64).unwrap_or(0) * 1000;
            if cast.is_none() {
                *cast = Some(Cast {
                    cols,
                    rows,
                    title: v
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    events: Vec::new(),
                });
            }
            continue;
        }
        let arr = v
            .as_array()
            .filter(|a| a.len() == 3)
            .ok_or_else(|| bad(i + 1, "an event is [time, code, data]".into()))?;
        let t = arr[0]
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| bad(i + 1, "the time is not a number of seconds".into()))?;
        let (Some(code), Some(data)) = (arr[1].as_str(), arr[2].as_str()) else {
            return Err(bad(i + 1, "the code and data are strings".into()));
        };
        if let Some(c) = cast.as_mut() {
            c.events.push(CastEvent {
                ms: base_ms + (t * 1000.0).round() as u64,
                code: code.to_string(),
                data: data.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_header_then_timed_events_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pty.cast");
        let mut w = CastWriter::open(&path, 0, 80, 24, "t#1").unwrap();
        w.output(1_700_000_000_250, b"hello \xe2\x9c").unwrap();
        w.output(1_700_000_000_500, b"\x94 ok\r\n\x1b[31mred\xff")
            .unwrap();
        w.resize(1_700_000_001_000, 30, 100).unwrap();
        w.marker(1_700_000_001_500, "input").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["version"], 2);
        assert_eq!(first["timestamp"], 1_700_000_000u64);
        let cast = read_cast(&path).unwrap();
        assert_eq!((cast.cols, cast.rows, cast.title.as_str()), (80, 24, "t#1"));
        let codes: Vec<(&str, &str, u64)> = cast
            .events
            .iter()
            .map(|e| (e.code.as_str(), e.data.as_str(), e.ms))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("o", "hello ", 1_700_000_000_250),
                ("o", "✔ ok\r\n\x1b[31mred\u{FFFD}", 1_700_000_000_500),
                ("r", "100x30", 1_700_000_001_000),
                ("m", "input", 1_700_000_001_500),
            ]
        );
    }

    /// Every byte a program may print reads back as what serde_json makes of the same text.
    #[test]
    fn output_is_escaped_as_json_strings_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pty.cast");
        let mut w = CastWriter::open(&path, 0, 80, 24, "t").unwrap();
        let mut all: Vec<u8> = (0u8..0x80).collect();
        all.extend_from_slice("\\\" é ✔ 界 \u{1F600}\x7f".as_bytes());
        w.output(1_700_000_000_000, &all).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text.lines().nth(1).unwrap();
        let want = serde_json::to_string(std::str::from_utf8(&all).unwrap()).unwrap();
        assert_eq!(line, format!("[0.000, \"o\", {want}]"));
        assert_eq!(
            read_cast(&path).unwrap().events[0].data.as_bytes(),
            &all[..]
        );
    }

    #[test]
    fn each_generation_has_its_header_and_times_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pty.cast");
        let mut w = CastWriter::open(&path, 200, 80, 24, "x").unwrap();
        let t0 = 1_700_000_000_999u64;
        for i in 0..20u64 {
            w.output(t0 + i * 1_001, format!("line {i}\r\n").as_bytes())
                .unwrap();
        }
        assert!(crate::agent::logs::generation(&path, 1).exists());
        for n in 0..=1 {
            let p = crate::agent::logs::generation(&path, n);
            let head = std::fs::read_to_string(&p).unwrap();
            assert!(head.starts_with("{\"version\": 2,"), "{head}");
        }
        let cast = read_cast(&path).unwrap();
        let last = cast.events.last().unwrap();
        assert_eq!(last.ms, t0 + 19 * 1_001);
        assert_eq!(last.data, "line 19\r\n");
    }

    #[test]
    fn a_line_that_is_not_asciicast_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pty.cast");
        std::fs::write(
            &path,
            "{\"version\":2,\"width\":80,\"height\":24}\n[1.0, \"o\"]\n[2.0, \"o\", \"x\"]\n",
        )
        .unwrap();
        let err = read_cast(&path).unwrap_err().to_string();
        assert!(err.contains("pty.cast:2"), "{err}");
    }
}
