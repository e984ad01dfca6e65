//! Holders: one small process per agent (the `orch-tui __hold` mode) that owns the agent's PTY,
//! its logs and its screen, so the agent outlives the supervisor that started it (issue 10).
//!
//! Files, all in `.orch/holders/` (0700; files 0600), named by the attempt's ledger id:
//! - `<id>.sock`: the holder's Unix socket (`proto`); present while the holder runs;
//! - `<id>.exit`: how the agent ended (JSON `proto::ExitRecord`), written, fsynced and renamed
//!   into place before anyone hears of the exit, so a supervisor that was not running then
//!   still finishes the attempt from it;
//! - `<id>.log`: the holder's own stderr (why it could not start the agent, protocol errors);
//! - `<id>.branches`: the branches that existed before the agent ran, for whoever collects its
//!   work (it tells the branches the agent made by them);
//! - `spare-<pid>/`: a spare holder's files, made before its attempt is known and renamed
//!   into place when it is (`spare.rs`).
//!
//! The exit is a file and not a ledger write: the holder never opens the ledger (no schema
//! versions, no fencing tokens, no busy database to wait out); the supervisor that adopts the
//! attempt reads the file and makes the one ledger write, as for any exit.

pub mod client;
pub mod proto;
pub mod serve;
pub mod spare;

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use proto::ExitRecord;

/// What `__hold` reads on stdin: everything about the agent to start. On stdin and not in argv
/// because the environment carries the attempt's token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldSpec {
    pub attempt: i64,
    pub task: String,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub log_dir: PathBuf,
    pub rotate_bytes: u64,
    pub rows: u16,
    pub cols: u16,
    /// `.orch/holders/`.
    pub dir: PathBuf,
    /// Kept for the supervisor that adopts the attempt (see `engine::world::Launch`).
    #[serde(default)]
    pub branches_before: Vec<String>,
    /// How long the holder waits for its first client before it stops the agent and exits
    /// (its spawner died before connecting); None: `serve::FIRST_CLIENT`.
    #[serde(default)]
    pub first_client_ms: Option<u64>,
    /// The file the agent reads its prompt from, written by the holder before the agent
    /// starts.
    #[serde(default)]
    pub prompt_file: Option<crate::agent::PromptFile>,
}

/// `.orch/holders/` of an `.orch/` directory.
pub fn holders_dir(orch: &Path) -> PathBuf {
    orch.join("holders")
}

pub fn socket_path(dir: &Path, attempt: i64) -> PathBuf {
    dir.join(format!("{attempt}.sock"))
}

pub fn exit_path(dir: &Path, attempt: i64) -> PathBuf {
    dir.join(format!("{attempt}.exit"))
}

/// The branches that existed before the agent ran, kept for the supervisor that finishes the
/// attempt (`engine::world::Launch::branches_before`).
pub fn branches_path(dir: &Path, attempt: i64) -> PathBuf {
    dir.join(format!("{attempt}.branches"))
}

pub fn read_branches(dir: &Path, attempt: i64) -> Vec<String> {
    std::fs::read(branches_path(dir, attempt))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn log_path(dir: &Path, attempt: i64) -> PathBuf {
    dir.join(format!("{attempt}.log"))
}

/// Records how the agent ended: a temporary file, fsynced, renamed over `<id>.exit`, and the
/// directory fsynced, so after a crash the file is either absent or whole.
pub fn write_exit(dir: &Path, attempt: i64, rec: &ExitRecord) -> io::Result<()> {
    use std::io::Write;
    let path = exit_path(dir, attempt);
    let tmp = dir.join(format!("{attempt}.exit.tmp"));
    let bytes = serde_json::to_vec(rec).map_err(io::Error::other)?;
    crate::os::files::write_private(&tmp, &bytes)?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&tmp)
        .and_then(|mut f| f.flush().and_then(|_| f.sync_all()))?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

/// The recorded exit of an attempt's agent, if its holder wrote one.
pub fn read_exit(dir: &Path, attempt: i64) -> Option<ExitRecord> {
    let bytes = std::fs::read(exit_path(dir, attempt)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every attempt id that has a socket or an exit file in `dir`.
pub fn listed(dir: &Path) -> Vec<i64> {
    let mut ids: Vec<i64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (id, ext) = name.split_once('.')?;
            matches!(ext, "sock" | "exit").then(|| id.parse().ok())?
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Removes every file of an attempt's holder (socket, exit record, log).
pub fn remove_files(dir: &Path, attempt: i64) {
    for p in [
        socket_path(dir, attempt),
        exit_path(dir, attempt),
        log_path(dir, attempt),
        branches_path(dir, attempt),
    ] {
        let _ = std::fs::remove_file(p);
    }
}

/// A Unix socket path may be at most 107 bytes; a deeper `.orch/` is reached through
/// `/proc/self/fd/<dir fd>/<name>`, which the kernel resolves like the long path. `f` gets the
/// path to use; the directory stays open while it runs.
pub fn with_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    if path.as_os_str().len() < 100 {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    let d = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd())).join(name);
    let out = f(&short);
    drop(d);
    out
}

/// The peer's uid is ours (SO_PEERCRED); anything else is refused.
pub fn same_user(peer_uid: u32) -> bool {
    // SAFETY: geteuid has no failure mode.
    peer_uid == unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_record_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let rec = ExitRecord {
            code: Some(0),
            signal: None,
            ended_ms: 42,
        };
        write_exit(dir.path(), 7, &rec).unwrap();
        assert_eq!(read_exit(dir.path(), 7), Some(rec));
        assert_eq!(
            crate::os::files::mode_of(&exit_path(dir.path(), 7)).unwrap() & 0o777,
            0o600
        );
        assert_eq!(listed(dir.path()), vec![7]);
        remove_files(dir.path(), 7);
        assert!(listed(dir.path()).is_empty());
    }
}
