//! The text log's line format, shared by its writer and its readers.
//!
//! One line per logical line the agent printed (wrapped rows joined), each stamped:
//!
//! ```text
//! 2026-05-20T13:54:34.123Z   compiling parser v0.3.1
//! 2026-05-20T13:54:40.002Z # full-screen app: screen before it left the alternate screen
//! 2026-05-20T13:54:40.002Z | ~ vim: src/main.rs
//! ```
//!
//! The stamp is UTC with milliseconds (sortable, no time-zone database needed); the character
//! after it says what the line is: ` ` text the agent printed, `|` a row of a screen snapshot
//! (what the human saw on a redrawing or full-screen agent), `#` a note from orch-tui.

use std::fmt::Write as _;

/// What a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// A line the agent printed, final (it left the screen, or was complete and untouched).
    Output,
    /// A row of a screen snapshot: before a clear, before leaving the alternate screen, at a
    /// quiet moment, at exit.
    Screen,
    /// orch-tui's own note (what a snapshot is, that the agent exited).
    Note,
}

impl LineKind {
    pub fn mark(self) -> char {
        match self {
            LineKind::Output => ' ',
            LineKind::Screen => '|',
            LineKind::Note => '#',
        }
    }

    fn from_mark(c: char) -> Option<LineKind> {
        match c {
            ' ' => Some(LineKind::Output),
            '|' => Some(LineKind::Screen),
            '#' => Some(LineKind::Note),
            _ => None,
        }
    }
}

/// One line of the text log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLine {
    /// Unix time in milliseconds.
    pub ms: u64,
    pub kind: LineKind,
    pub text: String,
}

impl TextLine {
    pub fn new(ms: u64, kind: LineKind, text: impl Into<String>) -> TextLine {
        TextLine {
            ms,
            kind,
            text: text.into(),
        }
    }
}

/// Lines for the log with their texts in one buffer: a flooding agent's lines cost no
/// allocation each. What `LineTracker` hands the recorder.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogLines {
    text: String,
    /// Each line's stamp, kind and the end of its text in `text`.
    lines: Vec<(u64, LineKind, usize)>,
}

impl LogLines {
    pub fn push(&mut self, ms: u64, kind: LineKind, text: &str) {
        self.text.push_str(text);
        self.lines.push((ms, kind, self.text.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.lines.clear();
    }

    /// Each line's stamp, kind and text, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, LineKind, &str)> {
        let mut from = 0;
        self.lines.iter().map(move |&(ms, kind, end)| {
            let text = &self.text[from..end];
            from = end;
            (ms, kind, text)
        })
    }

    pub fn to_lines(&self) -> Vec<TextLine> {
        self.iter()
            .map(|(ms, kind, text)| TextLine::new(ms, kind, text))
            .collect()
    }
}

/// Length of a stamp: `2026-05-20T13:54:34.123Z`.
pub const STAMP_LEN: usize = 24;

/// Appends `line` as one line of the log (the text's own newlines and carriage returns become
/// spaces, so one record is always one line).
pub fn write_line(out: &mut Vec<u8>, stamps: &mut StampCache, line: &TextLine) {
    write_record(out, stamps, line.ms, line.kind, &line.text);
}

/// [`write_line`] from the parts of a line.
pub fn write_record(
    out: &mut Vec<u8>,
    stamps: &mut StampCache,
    ms: u64,
    kind: LineKind,
    text: &str,
) {
    out.extend_from_slice(stamps.get(ms).as_bytes());
    out.push(b' ');
    let mut mark = [0u8; 4];
    out.extend_from_slice(kind.mark().encode_utf8(&mut mark).as_bytes());
    out.push(b' ');
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some() {
        out.extend_from_slice(text.replace(['\n', '\r'], " ").as_bytes());
    } else {
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b'\n');
}

/// Reads one line of the log back. `None` for a line without a valid stamp (a checks log, or a
/// line cut by a crash): callers decide its time.
pub fn parse_line(line: &str) -> Option<TextLine> {
    let stamp = line.get(..STAMP_LEN)?;
    let ms = parse_stamp(stamp)?;
    let rest = &line[STAMP_LEN..];
    let mut chars = rest.chars();
    if chars.next()? != ' ' {
        return None;
    }
    let kind = LineKind::from_mark(chars.next()?)?;
    let text = chars.as_str();
    let text = text.strip_prefix(' ').unwrap_or(text);
    Some(TextLine {
        ms,
        kind,
        text: text.to_string(),
    })
}

/// Formats the same millisecond once: every line of one PTY read shares its stamp.
#[derive(Debug, Default)]
pub struct StampCache {
    ms: Option<u64>,
    text: String,
}

impl StampCache {
    pub fn get(&mut self, ms: u64) -> &str {
        if self.ms != Some(ms) {
            self.text = format_stamp(ms);
            self.ms = Some(ms);
        }
        &self.text
    }
}

/// `2026-05-20T13:54:34.123Z` for a Unix time in milliseconds.
pub fn format_stamp(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let day = secs.rem_euclid(86_400);
    let mut s = String::with_capacity(STAMP_LEN);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        day / 3600,
        day / 60 % 60,
        day % 60,
        ms % 1000
    );
    s
}

/// The inverse of [`format_stamp`]; `None` unless the text is exactly one.
pub fn parse_stamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != STAMP_LEN
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, milli) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    let total = days * 86_400 + h * 3600 + mi * 60 + sec;
    u64::try_from(total * 1000 + milli).ok()
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm, public domain).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The local time of day, `HH:MM:SS`, for people reading a log in their own zone.
pub fn local_clock(ms: u64) -> String {
    let secs = (ms / 1000) as libc::time_t;
    // SAFETY: localtime_r writes only into the `tm` we own; a zeroed tm is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return format_stamp(ms)[11..19].to_string();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// Unix time now, in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_sort_as_text() {
        for ms in [
            0u64,
            1_000,
            951_782_400_123,
            1_779_284_074_123,
            4_102_444_799_999,
        ] {
            let s = format_stamp(ms);
            assert_eq!(s.len(), STAMP_LEN, "{s}");
            assert_eq!(parse_stamp(&s), Some(ms), "{s}");
        }
        assert_eq!(format_stamp(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert!(format_stamp(1_000) < format_stamp(86_400_000));
        assert_eq!(parse_stamp("2026-13-01T00:00:00.000Z"), None);
        assert_eq!(parse_stamp("not a stamp at all, no...."), None);
    }

    #[test]
    fn lines_round_trip_with_their_kind() {
        let mut buf = Vec::new();
        let mut cache = StampCache::default();
        let lines = [
            TextLine::new(1_779_284_074_123, LineKind::Output, "cargo build"),
            TextLine::new(1_779_284_074_123, LineKind::Screen, "│ box │"),
            TextLine::new(1_779_284_075_000, LineKind::Note, "screen at exit"),
            TextLine::new(1_779_284_075_000, LineKind::Output, ""),
            TextLine::new(1_779_284_075_000, LineKind::Output, "  indented"),
        ];
        for l in &lines {
            write_line(&mut buf, &mut cache, l);
        }
        let text = String::from_utf8(buf).unwrap();
        let back: Vec<TextLine> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(back, lines);
        assert!(
            text.starts_with("2026-05-20T13:34:34.123Z   cargo build\n"),
            "{text}"
        );
    }

    #[test]
    fn a_newline_inside_text_stays_on_its_line() {
        let mut buf = Vec::new();
        let line = TextLine::new(0, LineKind::Output, "a\nb\r");
        write_line(&mut buf, &mut StampCache::default(), &line);
        assert_eq!(String::from_utf8(buf).unwrap().lines().count(), 1);
    }

    #[test]
    fn unstamped_lines_are_not_log_records() {
        assert_eq!(parse_line("$ cargo test"), None);
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("2026-05-20T13:34:34.123Z?x"), None);
    }
}
