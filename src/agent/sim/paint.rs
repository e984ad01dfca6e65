//! What the simulated agent draws on its terminal.
//!
//! The output imitates real agents on purpose (colours, a spinner redrawn in place with `\r`
//! and `ESC[2K`, committed lines) so the supervisor's screen emulation, text log and
//! quiescence detection are exercised the way Claude Code or Codex exercise them.

use std::io::{self, Write};
use std::thread;
use std::time::Duration;

pub(super) const RESET: &str = "\x1b[0m";
pub(super) const BOLD: &str = "\x1b[1m";
pub(super) const DIM: &str = "\x1b[2m";
pub(super) const RED: &str = "\x1b[31m";
pub(super) const GREEN: &str = "\x1b[32m";
pub(super) const YELLOW: &str = "\x1b[33m";
pub(super) const MAGENTA: &str = "\x1b[35m";
pub(super) const CYAN: &str = "\x1b[36m";

/// Delay per progress step unless `@sim speed` says otherwise.
pub(super) const DEFAULT_STEP_DELAY: Duration = Duration::from_millis(50);

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Spinner frames drawn per step; the step delay is spread over them.
const FRAMES_PER_STEP: u32 = 5;

const ACTIVITIES: [&str; 8] = [
    "reading the code",
    "planning the change",
    "editing files",
    "running the tests",
    "fixing a failing test",
    "re-running the tests",
    "reviewing the diff",
    "tidying up",
];

pub(super) fn banner(out: &mut dyn Write, task: &str, attempt: u32) -> io::Result<()> {
    writeln!(
        out,
        "{BOLD}{MAGENTA}◆ sim-agent{RESET} {DIM}(orch-tui simulated agent){RESET} \
         task {BOLD}{task}{RESET} attempt {BOLD}{attempt}{RESET}"
    )?;
    out.flush()
}

/// The closing line: green for success, red with the code otherwise.
pub(super) fn finish(out: &mut dyn Write, code: i32) -> io::Result<()> {
    if code == 0 {
        writeln!(out, "{GREEN}{BOLD}● done{RESET}")?;
    } else {
        writeln!(out, "{RED}{BOLD}✘ exiting with code {code}{RESET}")?;
    }
    out.flush()
}

/// `steps` steps, each a spinner redrawn in place and then a committed `✔ step k/N` line.
pub(super) fn progress(out: &mut dyn Write, steps: u32, step_delay: Duration) -> io::Result<()> {
    let frame_delay = step_delay / FRAMES_PER_STEP;
    let mut frame = 0usize;
    for k in 1..=steps {
        let activity = ACTIVITIES[(k as usize - 1) % ACTIVITIES.len()];
        for _ in 0..FRAMES_PER_STEP {
            let spin = SPINNER[frame % SPINNER.len()];
            frame += 1;
            write!(
                out,
                "\r\x1b[2K{CYAN}{spin}{RESET} {DIM}step {k}/{steps}{RESET} {activity}…"
            )?;
            // Flushed per frame so a PTY reader sees each redraw, as it would from a real agent.
            out.flush()?;
            if !frame_delay.is_zero() {
                thread::sleep(frame_delay);
            }
        }
        writeln!(out, "\r\x1b[2K{GREEN}✔{RESET} step {k}/{steps} {activity}")?;
    }
    out.flush()
}

/// At least `bytes` bytes of varied coloured text, written in large chunks as fast as the
/// reader takes them. Returns the number of bytes written.
pub(super) fn flood(out: &mut dyn Write, bytes: u64) -> io::Result<u64> {
    const WORDS: [&str; 12] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima",
    ];
    let mut written = 0u64;
    let mut chunk = String::with_capacity(64 * 1024);
    // A tiny LCG keeps the text varied but reproducible, without a random-number crate.
    let mut seed: u32 = 0x2545_f491;
    let mut line = 0u64;
    while written < bytes {
        chunk.clear();
        while chunk.len() < 60 * 1024 && written + (chunk.len() as u64) < bytes {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let colour = 31 + (seed >> 24) % 6;
            let words = 3 + (seed >> 16) as usize % 8;
            chunk.push_str(&format!("\x1b[{colour}m[flood {line:08}]{RESET}"));
            for w in 0..words {
                chunk.push(' ');
                chunk.push_str(WORDS[(seed as usize >> 4).wrapping_add(w * 7) % WORDS.len()]);
            }
            chunk.push('\n');
            line += 1;
        }
        out.write_all(chunk.as_bytes())?;
        written += chunk.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

pub(super) fn question(out: &mut dyn Write, question: &str) -> io::Result<()> {
    writeln!(out, "{BOLD}{YELLOW}?{RESET} {BOLD}{question}{RESET}")?;
    // The prompt mark without a newline looks like an interactive agent waiting for input.
    write!(out, "{BOLD}>{RESET} ")?;
    out.flush()
}

/// An OSC 9 desktop notification (the form iTerm2, kitty and WezTerm understand).
pub(super) fn notify(out: &mut dyn Write, text: &str) -> io::Result<()> {
    // BEL terminates the OSC, so a BEL inside the text would cut it short.
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    write!(out, "\x1b]9;{text}\x07")?;
    out.flush()
}
