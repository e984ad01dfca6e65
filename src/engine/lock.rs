//! One supervisor per ledger (an exclusive OFD lock on `.orch/supervisor.lock`), and the poke
//! socket through which workers and CLI commands wake the supervisor without polling.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::os::lock::{Held, LockError, lock_exclusive};

pub struct SupervisorLock {
    _held: Held,
}

/// Take the lock or say who holds it. The kernel drops the lock when the process dies, so a
/// `kill -9` never leaves a stale lock behind (`os::lock`; `status` probes the same lock).
pub fn acquire(orch_dir: &Path) -> Result<SupervisorLock, String> {
    match lock_exclusive(orch_dir) {
        Ok(held) => Ok(SupervisorLock { _held: held }),
        Err(LockError::Io(m)) => Err(m),
        Err(LockError::HeldBy(pid)) => Err(format!(
            "another orch-tui supervisor (pid {}) is running on this ledger ({}); \
             stop it first, or use `orch-tui status` to watch it",
            pid.map_or("unknown".to_string(), |p| p.to_string()),
            crate::os::lock::lock_path(orch_dir).display()
        )),
    }
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
    let sock =
        UnixDatagram::bind(&path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    // 0600 like everything in .orch/ (bind creates it with the umask's mode).
    let _ = crate::os::files::set_private(&path);
    Ok(sock)
}
