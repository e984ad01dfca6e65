//! Telling the human that something waits for them while they look elsewhere: a desktop
//! notification through the outer terminal (OSC 9, and OSC 777 for the terminals that know that
//! one instead; wrapped for tmux's passthrough inside tmux) and the config's `notify_command`.
//! It fires when the inbox grows while the terminal is not focused (crossterm's focus events);
//! a terminal that never reports focus is treated as not focused, as before focus was known.

use std::io::Write;

/// Whether the terminal has the user's attention, as its focus events say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// No focus event yet (the terminal may not report them).
    Unknown,
    Focused,
    Away,
}

/// A notification is due: the inbox grew and the user is not looking at this terminal.
pub fn due(inbox_before: usize, inbox_now: usize, focus: Focus) -> bool {
    inbox_now > inbox_before && focus != Focus::Focused
}

/// The bytes that ask the outer terminal for a desktop notification. Inside tmux each sequence
/// is wrapped in tmux's passthrough (`ESC P tmux; … ESC \`, with every ESC inside doubled).
pub fn sequences(text: &str, in_tmux: bool) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control() && *c != ';')
        .collect();
    let osc = [
        format!("\x1b]9;{clean}\x07"),
        format!("\x1b]777;notify;orch-tui;{clean}\x07"),
    ];
    osc.iter()
        .map(|s| {
            if in_tmux {
                format!("\x1bPtmux;{}\x1b\\", s.replace('\x1b', "\x1b\x1b"))
            } else {
                s.clone()
            }
        })
        .collect()
}

/// Sends the notification: the bell, the terminal's sequences, and `command` (when set) with
/// the text as its last argument, started in the background and reaped there.
pub fn send(text: &str, command: &str) {
    let in_tmux = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty());
    let mut out = std::io::stdout();
    let _ = write!(out, "\x07{}", sequences(text, in_tmux));
    let _ = out.flush();
    if command.trim().is_empty() {
        return;
    }
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} \"$1\""))
        .arg("orch-tui-notify")
        .arg(text)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        let _ = std::thread::Builder::new()
            .name("tui-notify".into())
            .spawn(move || child.wait());
    }
}
