//! The supervisor's signals, taken by one thread with `sigwait` (so no work happens in a signal
//! handler): SIGINT/SIGTERM ask for a stop, SIGHUP says the terminal is gone.
//!
//! SIGHUP — a closed window, a dropped SSH connection, `tmux kill-session` — never takes the
//! agents with it: it is blocked in every thread (`run::block_stop_signals`; agents start with
//! an empty mask, so theirs is untouched), a headless or detached supervisor notes it in its log
//! and goes on, and a TUI supervisor leaves its dead terminal alone and goes on headless.
//!
//! One thread for the whole process, whose handlers change: a TUI that watches another
//! supervisor quits on SIGTERM, and the same process, once it took supervision over, stops its
//! agents on it. Two threads waiting on one signal would each get some of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

type OnStop = Box<dyn Fn(i32) + Send>;
type OnHangup = Box<dyn FnOnce() + Send>;

static HUNG_UP: AtomicBool = AtomicBool::new(false);
static STARTED: Once = Once::new();
static ON_STOP: Mutex<Option<OnStop>> = Mutex::new(None);
static ON_HANGUP: Mutex<Option<OnHangup>> = Mutex::new(None);

/// Whether this process's terminal hung up, or it has none any more (a hung-up tty answers
/// every `ioctl` with EIO, so it no longer counts as a terminal).
pub fn terminal_lost() -> bool {
    HUNG_UP.load(Ordering::Acquire) || !super::run::has_terminal()
}

/// SIGINT/SIGTERM call `f` (with the signal) from now on, instead of the previous handler.
/// The signals must be blocked already (`run::block_stop_signals`).
pub fn on_stop(f: impl Fn(i32) + Send + 'static) {
    if let Ok(mut h) = ON_STOP.lock() {
        *h = Some(Box::new(f));
    }
    start();
}

/// The next SIGHUP calls `f` once (at once, if the terminal already hung up).
pub fn on_hangup(f: impl FnOnce() + Send + 'static) {
    if HUNG_UP.load(Ordering::Acquire) {
        f();
        return;
    }
    if let Ok(mut h) = ON_HANGUP.lock() {
        *h = Some(Box::new(f));
    }
    start();
}

/// Start the signal thread (once per process). SIGHUP alone is then noted and ignored.
pub fn start() {
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("signals".into())
            .spawn(wait_for_signals);
    });
}

fn wait_for_signals() {
    // SAFETY: plain libc signal-set calls on a local, initialised sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    };
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait on signals every thread has blocked.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        if sig == libc::SIGHUP {
            HUNG_UP.store(true, Ordering::Release);
            tracing::warn!("SIGHUP: the terminal is gone; supervising on without it");
            let f = ON_HANGUP.lock().ok().and_then(|mut h| h.take());
            if let Some(f) = f {
                f();
            }
        } else if let Ok(h) = ON_STOP.lock()
            && let Some(f) = h.as_ref()
        {
            f(sig);
        }
    }
}
