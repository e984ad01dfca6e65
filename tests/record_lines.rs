//! The text log's lines from an emulated screen, fed the byte streams real agents print: plain
//! streams, long wrapped lines, carriage-return progress, Ink-style redrawn regions (Claude
//! Code's classic renderer), clear-and-redraw, full-screen apps on the alternate screen.
//! (The same logic on real PTYs, with files: tests/record.rs.)

use orch_tui::agent::record::lines::{QUIET_MS, SETTLE_MS, feed, finish, quiet};
use orch_tui::agent::record::text::{LineKind, TextLine};
use orch_tui::agent::screen::{Parser, new_parser};

struct Term {
    p: Parser,
    now: u64,
    lines: Vec<TextLine>,
}

impl Term {
    fn new(rows: u16, cols: u16) -> Term {
        Term {
            p: new_parser(rows, cols),
            now: 1_700_000_000_000,
            lines: Vec::new(),
        }
    }
    /// Output arriving `after_ms` after the previous.
    fn out(&mut self, after_ms: u64, bytes: &str) {
        self.now += after_ms;
        feed(&mut self.p, bytes.as_bytes(), self.now);
        self.drain();
    }
    fn quiet(&mut self) {
        self.now += QUIET_MS;
        quiet(&mut self.p);
        self.drain();
    }
    fn finish(&mut self) {
        finish(&mut self.p, self.now);
        self.drain();
    }
    fn drain(&mut self) {
        self.lines.extend(self.p.callbacks_mut().take_lines());
    }
    fn texts(&self, kind: LineKind) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.text.clone())
            .collect()
    }
    fn all(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| format!("{}{}", l.kind.mark(), l.text))
            .collect()
    }
}

#[test]
fn a_plain_stream_is_in_the_log_line_by_line_as_printed() {
    let mut t = Term::new(5, 40);
    for i in 0..30 {
        t.out(10, &format!("\x1b[32mline {i}\x1b[0m\r\n"));
        assert_eq!(t.lines.len(), i + 1, "line {i} is in the log at once");
        assert_eq!(t.lines[i].ms, t.now, "stamped when printed");
    }
    t.out(10, "partial");
    t.finish();
    let mut want: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
    want.push("partial".into());
    assert_eq!(t.texts(LineKind::Output), want);
}

#[test]
fn one_big_read_of_many_screens_keeps_every_line_once() {
    let mut t = Term::new(4, 30);
    let text: String = (0..1000).map(|i| format!("row {i}\r\n")).collect();
    t.out(1, &text);
    t.finish();
    let want: Vec<String> = (0..1000).map(|i| format!("row {i}")).collect();
    assert_eq!(t.texts(LineKind::Output), want);
}

#[test]
fn long_lines_that_wrap_are_one_line_in_the_log() {
    let mut t = Term::new(4, 20);
    let json = format!(
        "{{\"type\":\"assistant\",\"text\":\"{}\"}}",
        "x".repeat(150)
    );
    // In pieces, as a PTY delivers it, with other lines around.
    t.out(1, "before\r\n");
    for piece in json.as_bytes().chunks(7) {
        t.out(1, std::str::from_utf8(piece).unwrap());
    }
    t.out(1, "\r\nafter\r\n");
    let many: String = (0..10).map(|i| format!("{json}{i}\r\n")).collect();
    t.out(1, &many);
    t.finish();
    let mut want = vec!["before".to_string(), json.clone(), "after".to_string()];
    want.extend((0..10).map(|i| format!("{json}{i}")));
    assert_eq!(t.texts(LineKind::Output), want);
}

#[test]
fn carriage_return_progress_logs_its_final_state_only() {
    let mut t = Term::new(5, 40);
    for p in 0..=100 {
        t.out(5, &format!("\rdownloading {p:3}%"));
    }
    t.out(5, "\r\ndone\r\n");
    t.finish();
    assert_eq!(
        t.texts(LineKind::Output),
        vec!["downloading 100%", "done"],
        "{:?}",
        t.all()
    );
}

/// Ink's log-update, as Claude Code's classic renderer draws: erase the previous frame line by
/// line (`ESC[2K ESC[1A`), then write the new one; committed output goes above the frame.
fn ink_frame(prev_lines: usize, frame: &[String]) -> String {
    let mut s = String::new();
    for i in 0..prev_lines {
        s.push_str("\x1b[2K");
        if i + 1 < prev_lines {
            s.push_str("\x1b[1A");
        }
    }
    s.push_str("\x1b[G");
    s.push_str(&frame.join("\r\n"));
    s
}

#[test]
fn an_ink_spinner_region_is_not_repeated_and_static_output_goes_in_once() {
    let mut t = Term::new(12, 50);
    let spinner = ['✻', '✶', '✢', '·'];
    let mut prev = 0;
    let mut statics = 0;
    for frame in 0..200u64 {
        let mut lines: Vec<String> = Vec::new();
        // Every 40 frames a tool call is committed above the region (Ink's <Static>).
        if frame % 40 == 39 {
            lines.push(format!("● Read src/file{statics}.rs"));
            statics += 1;
        }
        lines.push(format!(
            "{} Thinking… ({}s · esc to interrupt)",
            spinner[frame as usize % 4],
            frame / 10
        ));
        lines.push("╭────────────────────╮".into());
        lines.push("│ >                  │".into());
        lines.push("╰────────────────────╯".into());
        let text = ink_frame(prev, &lines);
        // Static lines stay above: the next frame only erases the region.
        prev = 4;
        t.out(80, &text);
    }
    t.quiet();
    t.finish();
    // Each committed line once: the last one, printed just before the agent went quiet, as the
    // quiet moment's snapshot (it could still have been part of the redrawn region).
    let reads: Vec<&String> = t
        .lines
        .iter()
        .map(|l| &l.text)
        .filter(|l| l.starts_with("● Read"))
        .collect();
    assert_eq!(reads.len(), 5, "{:#?}", t.all());
    for (i, r) in reads.iter().enumerate() {
        assert_eq!(**r, format!("● Read src/file{i}.rs"));
    }
    let spin = t
        .lines
        .iter()
        .filter(|l| l.text.contains("Thinking"))
        .count();
    assert!(
        spin <= 3,
        "the spinner line is logged at most a few times, not per frame ({spin}): {:#?}",
        t.all()
    );
    // What the human saw when it went quiet is there.
    assert!(
        t.lines.iter().any(|l| l.text.starts_with("│ >")),
        "{:#?}",
        t.all()
    );
}

#[test]
fn static_output_of_a_redrawing_agent_is_final_after_it_settles() {
    let mut t = Term::new(12, 50);
    let mut prev = 0;
    for frame in 0..40u64 {
        let mut lines = Vec::new();
        if frame == 5 {
            lines.push("● Wrote README.md".to_string());
        }
        lines.push(format!("⠋ working {frame}"));
        t.out(100, &ink_frame(prev, &lines));
        prev = 1;
    }
    let wrote = t
        .lines
        .iter()
        .find(|l| l.text == "● Wrote README.md")
        .expect("committed while the spinner still runs");
    assert_eq!(wrote.kind, LineKind::Output);
    assert!(wrote.ms <= 1_700_000_000_000 + 6 * 100 + SETTLE_MS * 3);
}

#[test]
fn a_full_screen_app_is_kept_as_a_snapshot_before_it_leaves() {
    let mut t = Term::new(6, 30);
    t.out(1, "$ vim notes.txt\r\n");
    t.out(1, "\x1b[?1049h\x1b[H\x1b[2J");
    for frame in 0..50 {
        // An editor redraws with cursor addressing; nothing scrolls.
        t.out(
            20,
            &format!(
                "\x1b[1;1Hfirst line\x1b[2;1Hsecond line {frame}\x1b[6;1H-- INSERT -- {frame}"
            ),
        );
    }
    t.out(1, "\x1b[?1049l");
    t.out(1, "$ echo back\r\nback\r\n");
    t.finish();
    let all = t.all();
    let note = all
        .iter()
        .position(|l| l.starts_with("#full-screen app: screen before"))
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert_eq!(all[note + 1], "|first line");
    assert_eq!(all[note + 2], "|second line 49");
    assert_eq!(all[0], " $ vim notes.txt", "{all:#?}");
    assert!(
        all.ends_with(&[" $ echo back".to_string(), " back".to_string()]),
        "{all:#?}"
    );
    // Frames in between are not in the log.
    assert!(
        !all.iter().any(|l| l.contains("second line 10")),
        "{all:#?}"
    );
}

#[test]
fn a_full_screen_app_at_a_quiet_moment_and_at_exit() {
    let mut t = Term::new(6, 30);
    t.out(
        1,
        "\x1b[?1049h\x1b[H\x1b[2Jtop - load 0.5\x1b[2;1Hpid 1 init",
    );
    t.quiet();
    t.out(1, "\x1b[1;1Htop - load 0.7");
    t.quiet();
    t.out(1, "\x1b[2;1Hpid 2 kthreadd");
    t.finish();
    let notes: Vec<String> = t.texts(LineKind::Note);
    // The load changing is not new text: one snapshot for it; the new process is.
    assert_eq!(notes.len(), 2, "{:#?}", t.all());
    assert!(notes[1].contains("at exit"), "{notes:?}");
    assert!(
        t.texts(LineKind::Screen)
            .contains(&"pid 2 kthreadd".to_string())
    );
}

#[test]
fn a_clear_keeps_what_was_on_screen_before_it() {
    let mut t = Term::new(6, 40);
    let jobs = ["fetch", "build", "test", "lint", "package"];
    for (round, job) in jobs.iter().enumerate() {
        // A dashboard redrawn from a clear, as `watch` or Ink's overflow mode do.
        t.out(
            500,
            &format!("\x1b[H\x1b[2JBuild dashboard\r\njob {job}: running\r\nelapsed {round}s"),
        );
    }
    t.finish();
    let all = t.all();
    for job in jobs {
        let n = all
            .iter()
            .filter(|l| l.ends_with(&format!("job {job}: running")))
            .count();
        assert_eq!(n, 1, "{job}: {all:#?}");
    }
    // Neither the unchanged title nor the ticking counter is repeated at every clear.
    let titles = all
        .iter()
        .filter(|l| l.ends_with("Build dashboard"))
        .count();
    assert!(titles <= 2, "{all:#?}");
    let elapsed = all.iter().filter(|l| l.contains("elapsed")).count();
    assert!(elapsed <= 2, "{all:#?}");
}

#[test]
fn the_partial_line_at_a_quiet_moment_is_what_the_human_saw() {
    let mut t = Term::new(5, 40);
    t.out(1, "? Which branch should I use?\r\n> ");
    t.quiet();
    assert_eq!(
        t.all(),
        vec![" ? Which branch should I use?", "|>"],
        "{:#?}",
        t.all()
    );
    // The same screen again adds nothing.
    t.out(1, "");
    t.quiet();
    assert_eq!(t.lines.len(), 2);
}

#[test]
fn stamps_never_go_back_in_time() {
    let mut t = Term::new(8, 40);
    let mut prev = 0;
    for frame in 0..60u64 {
        let mut lines = vec![format!("frame {frame} status")];
        if frame % 7 == 0 {
            lines.insert(0, format!("static {frame}"));
        }
        t.out(50, &ink_frame(prev, &lines));
        prev = 1;
        if frame % 13 == 0 {
            t.quiet();
        }
    }
    t.finish();
    assert!(t.lines.windows(2).all(|w| w[0].ms <= w[1].ms));
}
