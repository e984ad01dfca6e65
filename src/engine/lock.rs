//! One supervisor per ledger (an exclusive `flock` on `.orch/supervisor.lock`), and the poke
//! socket through which workers and CLI commands wake the supervisor without polling.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

pub struct SupervisorLock {
    _file: File,
}

/// Take the lock or say who holds it. The kernel drops the lock when the process dies, so a
/// `kill -9` never leaves a stale lock behind.
pub fn acquire(orch_dir: &Path) -> Result<SupervisorLock, String> {
    let path = orch_dir.join("supervisor.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a valid, owned file descriptor; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        return Err(format!(
            "another orch-tui supervisor (pid {}) is running on this ledger ({}); \
             stop it first, or use `orch-tui status` to watch it",
            if holder.is_empty() { "unknown" } else { holder },
            path.display()
        ));
    }
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(SupervisorLock { _file: file })
}

pub fn socket_path(orch_dir: &Path) -> PathBuf {
    orch_dir.join("supervisor.sock")
}

/// Wake the supervisor, if one listens. Best effort: the ledger is already written, and the
/// supervisor re-reads it on its own fallback tick anyway.
pub fn poke(orch_dir: &Path) {
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.send_to(b"!", socket_path(orch_dir));
    }
}

/// Bind the poke socket (replacing a stale one left by a killed supervisor).
pub fn listen(orch_dir: &Path) -> Result<UnixDatagram, String> {
    let path = socket_path(orch_dir);
    let _ = std::fs::remove_file(&path);
    UnixDatagram::bind(&path).map_err(|e| format!("cannot bind {}: {e}", path.display()))
}
