//! What a holder (`agent::holder`) needs to outlive the process that started it: a session of
//! its own, stdio away from the spawner's pipes, a socket nobody else can open, and signals
//! taken on one thread (SIGCHLD reaps orphans, SIGTERM stops the agent, SIGHUP is ignored).

use std::io;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// Leaves the spawner's session and process group: the terminal closing, a Ctrl-C to the
/// supervisor's group or the supervisor's death send nothing here.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid takes no arguments; it fails only for a group leader (reported).
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Points stdin and stdout at /dev/null (the spawner read our "ready" line; its pipe may go).
pub fn quiet_stdio() -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in [0, 1] {
        // SAFETY: dup2 of an open descriptor onto 0 or 1.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Points stderr at `path` (appended, created 0600).
pub fn stderr_to(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let log = super::files::append_private(path)?;
    // SAFETY: dup2 of an open descriptor onto 2.
    if unsafe { libc::dup2(log.as_raw_fd(), 2) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Binds a Unix socket created 0600 from the start (umask 177 around `bind`, restored after,
/// so children started later keep the user's umask). A stale file at `path` is replaced.
pub fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    // SAFETY: umask only swaps the process's file-creation mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    bound
}

/// Blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP in this thread (call before any other thread
/// starts, so all inherit it) and serves them on a thread of their own: SIGCHLD reaps adopted
/// orphans (`reap::reap_adopted`), SIGTERM and SIGINT call `on_stop`, SIGHUP does nothing.
/// Children started by portable-pty get every signal back at its default.
pub fn take_signals(on_stop: Box<dyn Fn() + Send>) -> io::Result<()> {
    // SAFETY: plain signal-set calls on a local, initialised sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: sigwait on signals every thread has blocked.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    return;
                }
                match sig {
                    libc::SIGCHLD => {
                        super::reap::reap_adopted();
                    }
                    libc::SIGTERM | libc::SIGINT => on_stop(),
                    _ => {}
                }
            }
        })
        .map(|_| ())
}
