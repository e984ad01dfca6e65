//! The one-supervisor-per-ledger lock: an exclusive open-file-description lock (`F_OFD_SETLK`) on
//! `.orch/supervisor.lock`, holding the supervisor's pid as text. The kernel drops the lock when
//! its holder dies, however it dies (`q`, Ctrl-C, SIGHUP, `kill -9`), so "is a supervisor
//! running?" is "is the lock held?".
//!
//! Why OFD locks and not `flock`: the probe must not take the lock itself. A `flock(LOCK_SH)`
//! probe holds the lock for an instant, and on a loaded machine that instant can be a
//! descheduled second, during which a starting supervisor is refused ("already running"). An
//! OFD lock is tested with `F_OFD_GETLK`, which only looks.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

/// Take the exclusive lock without waiting for another supervisor, then write our pid into the
/// file. The file is created 0600.
pub fn lock_exclusive(orch_dir: &Path) -> Result<Held, LockError> {
    lock_exclusive_as(orch_dir, "")
}

/// [`lock_exclusive`] with a note after the pid (gc writes `(orch-tui gc)`: a supervisor refused
/// meanwhile names it).
pub fn lock_exclusive_as(orch_dir: &Path, note: &str) -> Result<Held, LockError> {
    let path = lock_path(orch_dir);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| LockError::Io(format!("cannot open {}: {e}", path.display())))?;
    match set_write_lock(&file) {
        Ok(true) => {}
        Ok(false) => return Err(LockError::HeldBy(read_pid(&mut file))),
        Err(e) => {
            return Err(LockError::Io(format!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = if note.is_empty() {
        write!(file, "{}", std::process::id())
    } else {
        write!(file, "{} {note}", std::process::id())
    };
    let _ = file.flush();
    Ok(Held { _file: file })
}

/// The pid of the supervisor running on this `.orch/`, or `None` when none runs (never started,
/// stopped, or killed). `Some(0)` when one holds the lock but has not written its pid yet.
/// Changes nothing: a missing lock file is not created.
pub fn supervisor_running(orch_dir: &Path) -> Option<u32> {
    let mut file = File::open(lock_path(orch_dir)).ok()?;
    if !write_lock_held(&file) {
        return None;
    }
    Some(read_pid(&mut file).unwrap_or(0))
}

/// The whole-file write lock request both calls below pass to the kernel.
fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value (l_pid must be 0 for OFD).
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l.l_start = 0;
    l.l_len = 0; // to the end, however long the file grows
    l
}

/// Ok(true) locked, Ok(false) another open file holds it.
fn set_write_lock(file: &File) -> std::io::Result<bool> {
    let l = whole_file(libc::F_WRLCK as libc::c_short);
    loop {
        // SAFETY: fcntl on a valid, owned descriptor with a pointer to a live `flock`.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &l) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// Whether another open file holds the write lock; looks without taking anything.
fn write_lock_held(file: &File) -> bool {
    let mut l = whole_file(libc::F_WRLCK as libc::c_short);
    // SAFETY: fcntl on a valid, owned descriptor with a pointer to a live, writable `flock`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut l) };
    rc == 0 && l.l_type != libc::F_UNLCK as libc::c_short
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    file.read_to_string(&mut text).ok()?;
    // The pid comes first; gc adds a note after it.
    text.split_whitespace().next()?.parse().ok()
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
        // OFD locks belong to the open file description: a second open conflicts even here.
        assert_eq!(
            lock_exclusive(tmp.path()).unwrap_err(),
            LockError::HeldBy(Some(std::process::id()))
        );
        drop(held);
        assert_eq!(supervisor_running(tmp.path()), None);
        drop(lock_exclusive(tmp.path()).unwrap());
    }
}
