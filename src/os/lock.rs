//! The one-supervisor-per-ledger lock: an exclusive `flock` on `.orch/supervisor.lock`, holding
//! the supervisor's pid as text. The kernel drops the lock when its holder dies, however it
//! dies (`q`, Ctrl-C, SIGHUP, `kill -9`), so "is a supervisor running?" is "is the lock held?".

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::files::FILE_MODE;

/// The lock file's name under `.orch/`.
pub const LOCK_FILE: &str = "supervisor.lock";

pub fn lock_path(orch_dir: &Path) -> PathBuf {
    orch_dir.join(LOCK_FILE)
}

/// The held lock; released when dropped or when the process ends.
#[derive(Debug)]
pub struct Held {
    _file: File,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LockError {
    /// Another process holds it; its pid, when it has written it.
    HeldBy(Option<u32>),
    /// The lock file cannot be opened (the message names it).
    Io(String),
}

/// How long taking the lock rides out a probe: `supervisor_running` holds a shared lock for
/// microseconds, and a supervisor starting at that instant must not be refused for it.
const PROBE_RIDE_OUT: Duration = Duration::from_millis(200);

/// Take the exclusive lock without waiting for another supervisor, then write our pid into the
/// file. The file is created 0600.
pub fn lock_exclusive(orch_dir: &Path) -> Result<Held, LockError> {
    let path = lock_path(orch_dir);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| LockError::Io(format!("cannot open {}: {e}", path.display())))?;
    let start = std::time::Instant::now();
    while !try_flock(&file, libc::LOCK_EX) {
        if start.elapsed() >= PROBE_RIDE_OUT {
            return Err(LockError::HeldBy(read_pid(&mut file)));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(Held { _file: file })
}

/// The pid of the supervisor running on this `.orch/`, or `None` when none runs (never started,
/// stopped, or killed). `Some(0)` when one holds the lock but has not written its pid yet.
/// Changes nothing: a missing lock file is not created.
pub fn supervisor_running(orch_dir: &Path) -> Option<u32> {
    let mut file = File::open(lock_path(orch_dir)).ok()?;
    // A shared lock conflicts only with the supervisor's exclusive one.
    if try_flock(&file, libc::LOCK_SH) {
        // SAFETY: unlocking the fd we locked; closing it would unlock it too.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return None;
    }
    Some(read_pid(&mut file).unwrap_or(0))
}

fn try_flock(file: &File, kind: libc::c_int) -> bool {
    loop {
        // SAFETY: flock on a valid, owned file descriptor; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) } == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_seen_while_held_and_gone_when_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(supervisor_running(tmp.path()), None);
        assert!(!lock_path(tmp.path()).exists(), "a probe creates nothing");
        let held = lock_exclusive(tmp.path()).unwrap();
        assert_eq!(
            super::super::files::mode_of(&lock_path(tmp.path())).unwrap(),
            0o600
        );
        assert_eq!(supervisor_running(tmp.path()), Some(std::process::id()));
        // flock locks belong to the open file description: a second open conflicts even here.
        assert_eq!(
            lock_exclusive(tmp.path()).unwrap_err(),
            LockError::HeldBy(Some(std::process::id()))
        );
        drop(held);
        assert_eq!(supervisor_running(tmp.path()), None);
        drop(lock_exclusive(tmp.path()).unwrap());
    }
}
