//! The agent's emulated screen: vt100 callbacks that answer terminal queries, surface bells and
//! notifications, track synchronized output and carry the text log's view of the screen
//! (`record::lines`, which hears every row that scrolls off).
//!
//! Agents such as Codex (crossterm) block for ~2 s on an unanswered cursor-position query
//! (research/pty.md §2.5), so every query a real terminal answers must be answered here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::record::lines::{LineTracker, LogCallbacks};
use super::record::text::TextLine;

/// How long a `CSI ?2026h` (synchronized output) may hold rendering without its `l`.
/// An agent that dies mid-frame must not freeze its pane for ever.
pub const SYNC_OUTPUT_TIMEOUT: Duration = Duration::from_millis(100);

/// Rows kept in the pane's scrollback: none. History lives in `screen.log`, not in memory, and
/// without a scrollback vt100 hands every row that leaves the top of the screen to `on_scroll`
/// at once, so the text log can be written as the agent prints.
pub const SCROLLBACK_ROWS: usize = 0;

/// The emulator the TUI locks to read cells: `screen.lock()?.screen().cell(r, c)`.
pub type Parser = vt100::Parser<ScreenCallbacks>;
/// Shared handle on one agent's emulator.
pub type SharedScreen = Arc<Mutex<Parser>>;

/// Something the terminal stream asked the supervisor's attention for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenEvent {
    Bell,
    Notification(String),
    /// The agent set a new window title (OSC 0 or 2).
    Title(String),
}

/// What a terminal sends an agent that asked for focus reports (DECSET 1004) when its window
/// loses or gains focus.
pub const FOCUS_OUT: &[u8] = b"\x1b[O";
pub const FOCUS_IN: &[u8] = b"\x1b[I";

/// vt100 callbacks for one agent. Output that must leave the parser (replies, log lines, events)
/// is queued here and drained by the reader thread after each `process()`, so no I/O happens
/// while the parser lock is held.
#[derive(Debug)]
pub struct ScreenCallbacks {
    replies: Vec<u8>,
    log: LineTracker,
    events: Vec<ScreenEvent>,
    sync_since: Option<Instant>,
    /// The agent asked for focus reports (DECSET 1004).
    focus_reporting: bool,
    title: String,
}

impl ScreenCallbacks {
    pub fn new(rows: u16) -> ScreenCallbacks {
        ScreenCallbacks {
            replies: Vec::new(),
            log: LineTracker::new(rows),
            events: Vec::new(),
            sync_since: None,
            focus_reporting: false,
            title: String::new(),
        }
    }
}

/// Builds an emulator of the given size (0 is treated as 1, which vt100 requires).
pub fn new_parser(rows: u16, cols: u16) -> Parser {
    vt100::Parser::new_with_callbacks(
        nonzero(rows),
        nonzero(cols),
        SCROLLBACK_ROWS,
        ScreenCallbacks::new(rows.max(1)),
    )
}

pub(crate) fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN)
}

impl ScreenCallbacks {
    /// Bytes to write back to the agent (answers to its queries), in order.
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.replies)
    }

    /// Lines for the text log that became final since the last call.
    pub fn take_lines(&mut self) -> Vec<TextLine> {
        self.log.take_lines()
    }

    /// Drops the lines that became final: for a screen that writes no text log (a watching
    /// client's copy), without building them as lines first.
    pub fn drop_lines(&mut self) {
        self.log.drop_lines();
    }

    /// [`Self::take_lines`] for the reader: swapped into `into`, no allocation per line.
    pub fn take_log(&mut self, into: &mut crate::agent::record::text::LogLines) {
        self.log.take_log(into);
    }

    /// When the text log wants a quiet-moment look at the screen, if no output comes first.
    pub fn quiet_deadline(&self) -> Option<u64> {
        self.log.quiet_deadline()
    }

    /// Bells and notifications seen since the last call.
    pub fn take_events(&mut self) -> Vec<ScreenEvent> {
        std::mem::take(&mut self.events)
    }

    /// True while the agent holds synchronized output (`CSI ?2026h`) and less than
    /// [`SYNC_OUTPUT_TIMEOUT`] has passed since it began; a renderer skips the pane meanwhile.
    pub fn is_render_locked(&self, now: Instant) -> bool {
        self.sync_since
            .is_some_and(|since| now.saturating_duration_since(since) < SYNC_OUTPUT_TIMEOUT)
    }

    /// True once the agent enabled focus reporting (DECSET 1004) and until it disables it:
    /// whoever shows the pane reports focus in and out (`FOCUS_IN`, `FOCUS_OUT`).
    pub fn focus_reporting(&self) -> bool {
        self.focus_reporting
    }

    fn reply(&mut self, s: &str) {
        self.replies.extend_from_slice(s.as_bytes());
    }

    fn decrqm_private(&self, screen: &vt100::Screen, mode: u16) -> u8 {
        // 1 = set, 2 = reset, 0 = not recognized (DEC STD 070).
        let flag = |on: bool| if on { 1 } else { 2 };
        match mode {
            1 => flag(screen.application_cursor()),
            25 => flag(!screen.hide_cursor()),
            47 | 1049 => flag(screen.alternate_screen()),
            2004 => flag(screen.bracketed_paste()),
            2026 => flag(self.sync_since.is_some()),
            _ => 0,
        }
    }
}

fn first(params: &[&[u16]]) -> u16 {
    params.first().and_then(|p| p.first()).copied().unwrap_or(0)
}

fn has_param(params: &[&[u16]], value: u16) -> bool {
    params.iter().any(|p| p.first() == Some(&value))
}

impl vt100::Callbacks for ScreenCallbacks {
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.events.push(ScreenEvent::Bell);
    }

    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        // Spinners redraw the same title many times a second: only a change is a fact.
        let title = String::from_utf8_lossy(title).into_owned();
        if title != self.title {
            self.title = title.clone();
            self.events.push(ScreenEvent::Title(title));
        }
    }

    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        match (i1, i2, c) {
            // DSR: cursor position (1-based), and "terminal OK".
            (None, None, 'n') if first(params) == 6 => {
                let (row, col) = screen.cursor_position();
                self.reply(&format!("\x1b[{};{}R", row + 1, col + 1));
            }
            (None, None, 'n') if first(params) == 5 => self.reply("\x1b[0n"),
            (Some(b'?'), None, 'n') if first(params) == 6 => {
                let (row, col) = screen.cursor_position();
                self.reply(&format!("\x1b[?{};{}R", row + 1, col + 1));
            }
            // DA1: a VT220-class terminal with ANSI colour.
            (None, None, 'c') if first(params) == 0 => self.reply("\x1b[?62;22c"),
            // DA2.
            (Some(b'>'), None, 'c') if first(params) == 0 => self.reply("\x1b[>0;0;0c"),
            // Kitty keyboard protocol query: flags 0, i.e. not supported (as zellij answers).
            (Some(b'?'), None, 'u') => self.reply("\x1b[?0u"),
            // DECRQM for private modes.
            (Some(b'?'), Some(b'$'), 'p') => {
                let mode = first(params);
                let value = self.decrqm_private(screen, mode);
                self.reply(&format!("\x1b[?{mode};{value}$y"));
            }
            // DECRQM for ANSI modes: none tracked.
            (Some(b'$'), None, 'p') => {
                self.reply(&format!("\x1b[{};0$y", first(params)));
            }
            // XTWINOPS 18: text area size in characters.
            (None, None, 't') if first(params) == 18 => {
                let (rows, cols) = screen.size();
                self.reply(&format!("\x1b[8;{rows};{cols}t"));
            }
            // Private modes vt100 does not track: synchronized output (2026) and focus reports
            // (1004), possibly several in one sequence.
            (Some(b'?'), None, 'h' | 'l') => {
                let on = c == 'h';
                if has_param(params, 2026) {
                    self.sync_since = on.then(Instant::now);
                }
                if has_param(params, 1004) {
                    // The pane starts unseen (the human looks at the dashboard or another pane):
                    // say so at once, as a terminal would, so an agent that notifies only when
                    // unfocused (Codex's approvals) does. Focusing the pane sends FOCUS_IN.
                    if on && !self.focus_reporting {
                        self.replies.extend_from_slice(FOCUS_OUT);
                    }
                    self.focus_reporting = on;
                }
            }
            _ => {}
        }
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        match params {
            // Colour queries: white on black, so agents pick a dark theme.
            [b"10", b"?"] => self.reply("\x1b]10;rgb:ffff/ffff/ffff\x1b\\"),
            [b"11", b"?"] => self.reply("\x1b]11;rgb:0000/0000/0000\x1b\\"),
            // OSC 9;4;... is ConEmu's progress bar, not a notification.
            [b"9", b"4", ..] => {}
            [b"9", rest @ ..] if !rest.is_empty() => {
                let text = join(rest);
                self.events.push(ScreenEvent::Notification(text));
            }
            [b"777", b"notify", rest @ ..] => {
                let text = rest
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(": ");
                self.events.push(ScreenEvent::Notification(text));
            }
            _ => {}
        }
    }

    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        self.log.on_scroll(contents, alternate_screen);
    }
}

impl LogCallbacks for ScreenCallbacks {
    fn tracker(&mut self) -> &mut LineTracker {
        &mut self.log
    }
}

/// OSC splits its payload on `;`; a notification body may contain them, so put them back.
fn join(parts: &[&[u8]]) -> String {
    parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies_to(input: &[u8]) -> String {
        let mut p = new_parser(24, 80);
        p.process(input);
        String::from_utf8_lossy(&p.callbacks_mut().take_replies()).into_owned()
    }

    #[test]
    fn cursor_position_is_one_based() {
        assert_eq!(replies_to(b"\x1b[6n"), "\x1b[1;1R");
        assert_eq!(replies_to(b"\x1b[3;7H\x1b[6n"), "\x1b[3;7R");
        assert_eq!(replies_to(b"ab\x1b[?6n"), "\x1b[?1;3R");
    }

    #[test]
    fn status_report() {
        assert_eq!(replies_to(b"\x1b[5n"), "\x1b[0n");
    }

    #[test]
    fn device_attributes() {
        assert_eq!(replies_to(b"\x1b[c"), "\x1b[?62;22c");
        assert_eq!(replies_to(b"\x1b[0c"), "\x1b[?62;22c");
        assert_eq!(replies_to(b"\x1b[>c"), "\x1b[>0;0;0c");
    }

    #[test]
    fn kitty_keyboard_query() {
        assert_eq!(replies_to(b"\x1b[?u"), "\x1b[?0u");
    }

    #[test]
    fn decrqm_sync_output_and_unknown_modes() {
        assert_eq!(replies_to(b"\x1b[?2026$p"), "\x1b[?2026;2$y");
        assert_eq!(replies_to(b"\x1b[?2026h\x1b[?2026$p"), "\x1b[?2026;1$y");
        assert_eq!(replies_to(b"\x1b[?2004h\x1b[?2004$p"), "\x1b[?2004;1$y");
        assert_eq!(replies_to(b"\x1b[?9999$p"), "\x1b[?9999;0$y");
        assert_eq!(replies_to(b"\x1b[4$p"), "\x1b[4;0$y");
    }

    #[test]
    fn colour_queries() {
        assert_eq!(
            replies_to(b"\x1b]10;?\x07"),
            "\x1b]10;rgb:ffff/ffff/ffff\x1b\\"
        );
        assert_eq!(
            replies_to(b"\x1b]11;?\x1b\\"),
            "\x1b]11;rgb:0000/0000/0000\x1b\\"
        );
    }

    #[test]
    fn text_area_size() {
        assert_eq!(replies_to(b"\x1b[18t"), "\x1b[8;24;80t");
        let mut p = new_parser(24, 80);
        p.set_size(nonzero(40), nonzero(100));
        p.process(b"\x1b[18t");
        assert_eq!(p.callbacks_mut().take_replies(), b"\x1b[8;40;100t");
    }

    #[test]
    fn replies_keep_query_order() {
        assert_eq!(
            replies_to(b"\x1b[5n\x1b[6n\x1b[c"),
            "\x1b[0n\x1b[1;1R\x1b[?62;22c"
        );
    }

    #[test]
    fn plain_text_gets_no_reply() {
        assert_eq!(replies_to(b"hello \x1b[31mred\x1b[0m\r\n"), "");
    }

    #[test]
    fn render_lock_times_out_and_releases() {
        let mut p = new_parser(24, 80);
        let before = Instant::now();
        p.process(b"\x1b[?2026h");
        let cb = p.callbacks();
        let now = Instant::now();
        assert!(cb.is_render_locked(now));
        assert!(!cb.is_render_locked(now + SYNC_OUTPUT_TIMEOUT + Duration::from_millis(1)));
        assert!(!cb.is_render_locked(before + SYNC_OUTPUT_TIMEOUT * 2));
        p.process(b"\x1b[?2026l");
        assert!(!p.callbacks().is_render_locked(Instant::now()));
        // Combined with other modes in one sequence.
        p.process(b"\x1b[?25;2026h");
        assert!(p.callbacks().is_render_locked(Instant::now()));
    }

    #[test]
    fn bell_and_notifications() {
        let mut p = new_parser(24, 80);
        p.process(b"a\x07b\x1b]9;done; all good\x07\x1b]777;notify;Claude;needs input\x1b\\");
        p.process(b"\x1b]9;4;1;50\x07\x1b]0;title\x07");
        p.process(b"\x1b]0;title\x07\x1b]2;\xe2\x9c\xb3 idle\x07");
        assert_eq!(
            p.callbacks_mut().take_events(),
            vec![
                ScreenEvent::Bell,
                ScreenEvent::Notification("done; all good".into()),
                ScreenEvent::Notification("Claude: needs input".into()),
                ScreenEvent::Title("title".into()),
                ScreenEvent::Title("✳ idle".into()),
            ],
            "a title is reported when it changes, not when it is set again"
        );
    }

    #[test]
    fn focus_reporting_is_tracked_and_an_unseen_pane_reports_focus_out() {
        let mut p = new_parser(24, 80);
        assert!(!p.callbacks().focus_reporting());
        p.process(b"\x1b[?1004h");
        assert!(p.callbacks().focus_reporting());
        assert_eq!(p.callbacks_mut().take_replies(), FOCUS_OUT);
        // Enabling it again says nothing new; with other modes in one sequence it still counts.
        p.process(b"\x1b[?1004h");
        assert_eq!(p.callbacks_mut().take_replies(), b"");
        p.process(b"\x1b[?2026;1004l");
        assert!(!p.callbacks().focus_reporting());
        assert!(!p.callbacks().is_render_locked(Instant::now()));
        p.process(b"\x1b[?25;1004h");
        assert_eq!(p.callbacks_mut().take_replies(), FOCUS_OUT);
    }

    #[test]
    fn every_line_reaches_the_log_once_as_it_is_printed() {
        use crate::agent::record::lines::{feed, finish};
        let mut p = new_parser(3, 20);
        let mut got = Vec::new();
        for i in 0..10 {
            feed(&mut p, format!("line {i}\r\n").as_bytes(), 1000 + i);
            // Streaming output: the line is in the log as soon as its newline is read.
            got.extend(p.callbacks_mut().take_lines().into_iter().map(|l| l.text));
            assert_eq!(got.len() as u64, i + 1, "{got:?}");
        }
        finish(&mut p, 2000);
        got.extend(p.callbacks_mut().take_lines().into_iter().map(|l| l.text));
        let want: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn spinner_redraws_do_not_reach_the_log() {
        use crate::agent::record::lines::{feed, finish};
        let mut p = new_parser(4, 20);
        feed(&mut p, b"committed\r\n", 1);
        for i in 0..500 {
            feed(&mut p, format!("\x1b[2K\rThinking {i}").as_bytes(), 2 + i);
        }
        finish(&mut p, 1000);
        let text: Vec<String> = p
            .callbacks_mut()
            .take_lines()
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert_eq!(text, vec!["committed", "Thinking 499"]);
    }
}
