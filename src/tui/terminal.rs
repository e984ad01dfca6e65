//! Entering and leaving the terminal's TUI modes. Restoring happens on every exit path: the
//! guard's Drop, and a panic hook that restores before the default hook prints the message (so
//! the message lands on the normal screen, readable).

use std::io::{Write, stdout};

use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste,
    EnableFocusChange, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, SetTitle, disable_raw_mode, enable_raw_mode,
};

/// Leaves raw mode, the alternate screen, mouse capture and bracketed paste; shows the cursor.
/// Safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let mut out = stdout();
    let _ = execute!(
        out,
        DisableBracketedPaste,
        DisableMouseCapture,
        DisableFocusChange,
        LeaveAlternateScreen,
        crossterm::cursor::Show,
        SetTitle("")
    );
    let _ = out.flush();
}

/// The terminal hung up (a hung-up tty fails every `ioctl`, so it is no terminal any more).
pub fn gone() -> bool {
    use std::io::IsTerminal;
    !stdout().is_terminal()
}

/// Restores the terminal when dropped.
pub struct Guard;

/// Set when the terminal hung up: there is nothing left to restore.
static FORGOTTEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The terminal is gone (SIGHUP): the guard restores nothing.
pub fn forget() {
    FORGOTTEN.store(true, std::sync::atomic::Ordering::Release);
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !FORGOTTEN.load(std::sync::atomic::Ordering::Acquire) {
            restore();
        }
    }
}

pub fn enter() -> std::io::Result<Guard> {
    install_panic_hook();
    enable_raw_mode()?;
    let guard = Guard;
    execute!(
        stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste,
        EnableFocusChange
    )?;
    Ok(guard)
}

/// Back into the TUI's modes after another program had the terminal (`outside.rs`).
pub fn resume() -> std::io::Result<()> {
    enable_raw_mode()?;
    execute!(
        stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste,
        EnableFocusChange
    )
}

fn install_panic_hook() {
    let ui_thread = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A panic on the UI thread ends the TUI: restore first so the message is readable.
        // Elsewhere (the engine thread) the TUI lives on and shows the error state, so the
        // terminal must stay in TUI mode.
        if std::thread::current().id() == ui_thread {
            restore();
            previous(info);
        } else {
            // Printing now would land on the alternate screen and be lost: keep it; the run
            // prints it once the terminal is back.
            crate::engine::panics::record(info);
        }
    }));
}

pub fn set_title(title: &str) {
    let _ = execute!(stdout(), SetTitle(title));
}
