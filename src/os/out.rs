//! Printing that a closed pipe cannot crash. `println!` panics when stdout is a pipe whose
//! reader went away (`orch-tui status | head -1`): Rust ignores SIGPIPE, so the write fails with
//! EPIPE and the macro turns that into a panic. These helpers stop printing instead.
//!
//! Once a write to stdout fails, every later one is skipped: the reader is gone for good, and a
//! supervisor keeps supervising without its progress lines. Read-only commands check
//! [`say`]'s answer and end normally (exit 0).

use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Print `line` and a newline to stdout. False when stdout is closed (now or before): the
/// caller should stop producing output.
pub fn say(line: &str) -> bool {
    write(&STDOUT_GONE, &mut std::io::stdout().lock(), line, true)
}

/// Print `text` to stdout as it is (no newline added).
pub fn print(text: &str) -> bool {
    write(&STDOUT_GONE, &mut std::io::stdout().lock(), text, false)
}

/// Print `line` and a newline to stderr (warnings, errors); skipped once stderr is closed.
pub fn warn(line: &str) -> bool {
    write(&STDERR_GONE, &mut std::io::stderr().lock(), line, true)
}

/// Write raw bytes to stdout (logs, raw PTY output).
pub fn write_bytes(bytes: &[u8]) -> bool {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    let ok = out.write_all(bytes).and_then(|()| out.flush()).is_ok();
    if !ok {
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
    ok
}

/// Whether an earlier write found stdout closed.
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

/// Whether the reader of stdout went away, without writing anything: a pipe whose other end is
/// closed reports POLLERR. For commands that wait a long time between lines (`events --follow`).
pub fn stdout_closed_by_reader() -> bool {
    if stdout_gone() {
        return true;
    }
    let mut fds = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd that we own, no waiting.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    let closed = n > 0 && fds.revents & (libc::POLLERR | libc::POLLHUP) != 0;
    if closed {
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
    closed
}

fn write(gone: &AtomicBool, out: &mut dyn Write, text: &str, newline: bool) -> bool {
    if gone.load(Ordering::Relaxed) {
        return false;
    }
    let mut res = out.write_all(text.as_bytes());
    if newline && res.is_ok() {
        res = out.write_all(b"\n");
    }
    // Flush per call: a progress line must reach the reader now, and a closed pipe must be
    // found at this line, not at exit.
    if res.is_ok() {
        res = out.flush();
    }
    if res.is_err() {
        // EPIPE, or any other failure (a full disk behind a redirect): stop writing either way.
        gone.store(true, Ordering::Relaxed);
        return false;
    }
    true
}

/// For a command about to print megabytes to a pipe (`status --json`: 11 MB at 10,000 tasks):
/// the pipe widened to 1 MiB, so the reader and this process take turns a sixteenth as often
/// (8 ms less of its ~48 ms, docs/benchmarks.md). Linux only (`linux.rs`).
pub fn widen_stdout_pipe() {
    super::sys::widen_pipe(std::io::stdout().as_fd(), 1 << 20);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_writer_is_reported_once_and_then_skipped() {
        let gone = AtomicBool::new(false);
        assert!(!write(&gone, &mut Broken, "a", true));
        assert!(gone.load(Ordering::Relaxed));
        let mut v = Vec::new();
        assert!(
            !write(&gone, &mut v, "b", true),
            "skipped after the first failure"
        );
        assert!(v.is_empty());
        let fresh = AtomicBool::new(false);
        assert!(write(&fresh, &mut v, "c", true));
        assert_eq!(v, b"c\n");
    }
}
