//! An interactive agent's screen, watched: once its output pauses, the screen's text is
//! classified by the adapter's screen rules (`core::screen_rules`), and a state that holds for
//! [`HOLD_MS`] reaches the loop as `Event::Screen` with the rule that fired. Screen rules are
//! the last layer (hooks report first, through the ledger); the supervisor decides what a
//! state means.
//!
//! Terminal signals — a title change, an OSC 9/777 notification, the bell — are the middle
//! layer: the PTY reader reports each as a fact, the same rules file maps it
//! (`screen_rules::signals`), and a state it shows counts at once (it is not a redrawing
//! screen). A title never ends a wait: a spinner glyph is too weak to say a prompt was answered.
//!
//! The thread sleeps until the agent prints or signals, or a candidate state must be looked at
//! again: an idle agent costs nothing.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::world::{Incoming, Sink};
use crate::agent::screen::SharedScreen;
use crate::core::domain::AttemptId;
use crate::core::screen_rules::signals::{Signal, classify_signal};
use crate::core::screen_rules::{Debounce, Layer, ScreenRule, ScreenState, classify};
use crate::core::supervisor::Event;

/// How long a classification must hold before it counts (a dialog half drawn, a spinner
/// between frames mean nothing). With [`SETTLE`] a dialog reaches the loop in well under 2 s.
pub const HOLD_MS: u64 = 400;
/// Output comes in bursts: wait this long after a chunk before reading the screen.
const SETTLE: Duration = Duration::from_millis(80);
/// A permission prompt reported with its call and still on screen, unchanged, this long after
/// is reported again (at most [`MAX_REPEATS`] times): a key typed to answer it did not take,
/// and the supervisor retries it or asks the human.
pub const REPEAT_MS: u64 = 1_500;
const MAX_REPEATS: u8 = 2;

/// The last permission prompt reported with its call: the screen as it was, when, how often.
struct Asked {
    seen: crate::core::screen_rules::ScreenMatch,
    text: String,
    at: Instant,
    repeats: u8,
}

pub enum Nudge {
    /// The agent printed.
    Output,
    /// The agent rang the bell, sent a notification or set its title.
    Signal(Signal),
    /// The agent ended: the watch ends.
    End,
}

/// Start watching; `rx` takes nudges (from the PTY's notify callback, which must not block: a
/// send never does).
pub fn start(
    attempt: AttemptId,
    screen: SharedScreen,
    rules: Vec<ScreenRule>,
    sink: Sink,
    rx: Receiver<Nudge>,
) {
    let spawned = std::thread::Builder::new()
        .name(format!("watch-{attempt}"))
        .spawn(move || run(attempt, &screen, &rules, &sink, &rx));
    if let Err(e) = spawned {
        // Hooks still report; only the screen layer is missing.
        tracing::warn!(%attempt, error = %e, "no thread to watch the agent's screen");
    }
}

fn run(
    attempt: AttemptId,
    screen: &SharedScreen,
    rules: &[ScreenRule],
    sink: &Sink,
    rx: &Receiver<Nudge>,
) {
    let start = Instant::now();
    let mut debounce = Debounce::new(HOLD_MS);
    // A candidate state waits to be confirmed: look again without new output.
    let mut pending = false;
    let mut asked: Option<Asked> = None;
    loop {
        let repeat_due = asked
            .as_ref()
            .filter(|a| a.repeats < MAX_REPEATS)
            .map(|a| Duration::from_millis(REPEAT_MS).saturating_sub(a.at.elapsed()));
        let wait = if pending {
            Duration::from_millis(HOLD_MS / 2)
        } else {
            Duration::from_secs(3600)
        };
        let wait = repeat_due.map_or(wait, |r| r.min(wait));
        let mut signals = Vec::new();
        match rx.recv_timeout(wait) {
            Ok(first @ (Nudge::Output | Nudge::Signal(_))) => {
                if let Nudge::Signal(sig) = first {
                    signals.push(sig);
                }
                std::thread::sleep(SETTLE);
                if drain(rx, &mut signals) {
                    return;
                }
            }
            Ok(Nudge::End) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        for sig in &signals {
            let Some(m) = classify_signal(rules, sig, debounce.state()) else {
                continue;
            };
            let waiting = matches!(debounce.state(), Some(ScreenState::Waiting(_)));
            if debounce.state() == Some(m.state) || (m.layer == Layer::Title && waiting) {
                continue;
            }
            debounce.settle(m.state);
            sink(Incoming::Event(Event::Screen { attempt, seen: m }));
        }
        let text = match screen.lock() {
            Ok(s) => s.screen().contents(),
            Err(_) => return,
        };
        let seen = classify(rules, &text);
        let now = start.elapsed().as_millis() as u64;
        if let Some(m) = debounce.observe(seen.as_ref(), now) {
            asked =
                (matches!(m.state, ScreenState::Waiting(_)) && m.call.is_some()).then(|| Asked {
                    seen: m.clone(),
                    text: text.clone(),
                    at: Instant::now(),
                    repeats: 0,
                });
            sink(Incoming::Event(Event::Screen { attempt, seen: m }));
        } else if let Some(a) = asked.as_mut() {
            if a.text != text {
                // The prompt moved on (or is being redrawn): whatever it shows now is
                // classified as always.
                asked = None;
            } else if a.repeats < MAX_REPEATS && a.at.elapsed() >= Duration::from_millis(REPEAT_MS)
            {
                a.repeats += 1;
                a.at = Instant::now();
                sink(Incoming::Event(Event::Screen {
                    attempt,
                    seen: a.seen.clone(),
                }));
            }
        }
        pending = seen.is_some_and(|m| debounce.state() != Some(m.state));
    }
}

/// Take every nudge that waits, keeping the signals; true when the agent ended.
fn drain(rx: &Receiver<Nudge>, signals: &mut Vec<Signal>) -> bool {
    loop {
        match rx.try_recv() {
            Ok(Nudge::Output) => {}
            Ok(Nudge::Signal(s)) => signals.push(s),
            Ok(Nudge::End) => return true,
            Err(std::sync::mpsc::TryRecvError::Empty) => return false,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return true,
        }
    }
}
