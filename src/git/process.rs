//! Waiting for one git process under a deadline.
//!
//! git runs in a process group of its own (set by the caller at spawn), so whatever it started —
//! a `pre-commit` hook and the test suite that hook runs — can be stopped with it. On expiry the
//! group gets SIGTERM, a short grace to exit, then SIGKILL, and git is reaped: nothing is left
//! running and no zombie is left behind.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStderr, ChildStdout, ExitStatus};
use std::time::{Duration, Instant};

/// Between SIGTERM and SIGKILL once the deadline has passed.
const KILL_GRACE: Duration = Duration::from_millis(500);

/// How often a long call checks whether git itself has exited while something it started (a
/// hook's background job) still holds its output pipes open; git's result then stands.
const EXIT_CHECK: Duration = Duration::from_millis(200);

/// How one wait ended.
pub(crate) enum Waited {
    Exited {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// The deadline passed; the process group was stopped and git reaped.
    TimedOut { stderr: Vec<u8> },
}

/// Reads git's stdout and stderr as they come, so neither pipe can fill up and block git.
struct Pipes {
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Pipes {
    fn closed(&self) -> bool {
        self.out.is_none() && self.err.is_none()
    }

    /// Waits up to `limit` for output, reads what came. False when nothing happened.
    fn pump(&mut self, limit: Duration) -> std::io::Result<bool> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(2);
        for fd in [
            self.out.as_ref().map(|p| p.as_raw_fd()),
            self.err.as_ref().map(|p| p.as_raw_fd()),
        ]
        .into_iter()
        .flatten()
        {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ms = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call, and
        // every fd in it belongs to a pipe this struct owns and keeps open.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::Interrupted => Ok(true),
                _ => Err(e),
            };
        }
        for p in fds.iter().filter(|p| p.revents != 0) {
            self.read_one(p.fd)?;
        }
        Ok(n > 0)
    }

    /// One read from the pipe with this fd; end of file closes our end.
    fn read_one(&mut self, fd: i32) -> std::io::Result<()> {
        let mut buf = [0u8; 64 * 1024];
        if self.out.as_ref().is_some_and(|p| p.as_raw_fd() == fd) {
            let got = read_some(self.out.as_mut(), &mut buf)?;
            match got {
                0 => self.out = None,
                n => self.stdout.extend_from_slice(&buf[..n]),
            }
        } else {
            let got = read_some(self.err.as_mut(), &mut buf)?;
            match got {
                0 => self.err = None,
                n => self.stderr.extend_from_slice(&buf[..n]),
            }
        }
        Ok(())
    }
}

fn read_some(pipe: Option<&mut impl Read>, buf: &mut [u8]) -> std::io::Result<usize> {
    let Some(p) = pipe else { return Ok(0) };
    loop {
        match p.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Sends `sig` to the process group led by `pid` (git, spawned with `process_group(0)`). git is
/// not reaped yet when this is called, so the group id cannot have been reused.
fn signal_group(pid: u32, sig: i32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-pid, sig);
    }
}

/// Collects git's output until it exits or `timeout` passes (then stops its whole group). On an
/// error while waiting, git's group is killed and git reaped all the same.
pub(crate) fn wait_with_deadline(child: &mut Child, timeout: Duration) -> std::io::Result<Waited> {
    let mut pipes = Pipes {
        out: child.stdout.take(),
        err: child.stderr.take(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    match pump_until(child, &mut pipes, Instant::now() + timeout) {
        Ok(Some(status)) => Ok(exited(status, pipes)),
        Ok(None) => {
            stop_group(child, &mut pipes)?;
            Ok(Waited::TimedOut {
                stderr: pipes.stderr,
            })
        }
        Err(e) => {
            signal_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Reads output until git exits (its status) or the deadline passes (None).
fn pump_until(
    child: &mut Child,
    pipes: &mut Pipes,
    deadline: Instant,
) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if pipes.closed() {
            return child.wait().map(Some);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        if !pipes.pump((deadline - now).min(EXIT_CHECK))?
            && let Some(status) = child.try_wait()?
        {
            // git is done; what still holds the pipes is not git's result.
            pipes.pump(Duration::ZERO)?;
            return Ok(Some(status));
        }
    }
}

/// SIGTERM to git's group, a short grace to exit, SIGKILL to whatever is left, reap git.
fn stop_group(child: &mut Child, pipes: &mut Pipes) -> std::io::Result<()> {
    signal_group(child.id(), libc::SIGTERM);
    let grace_end = Instant::now() + KILL_GRACE;
    while !pipes.closed() {
        let now = Instant::now();
        if now >= grace_end {
            break;
        }
        if pipes.pump(grace_end - now).is_err() {
            break;
        }
    }
    signal_group(child.id(), libc::SIGKILL);
    child.wait().map(|_| ())
}

fn exited(status: ExitStatus, pipes: Pipes) -> Waited {
    Waited::Exited {
        status,
        stdout: pipes.stdout,
        stderr: pipes.stderr,
    }
}
