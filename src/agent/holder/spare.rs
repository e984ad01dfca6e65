//! A spare holder's files, made while it waits for a spec: its log, its branch list, the
//! agent's prompt file, its socket and its agent's log folder with the three log files, in
//! `.orch/holders/spare-<pid>/`. The spec then only renames them into place (`<id>.log`,
//! `<id>.branches`, the prompt file, `<id>.sock`, the attempt's log folder): a rename allocates
//! no inode, and on a disk churned by many deleted files ext4's search for a free inode made
//! the new files of a dispatch most of the holder's handover (13-15 ms against 3 ms on a
//! rested disk, docs/benchmarks.md).
//!
//! Whatever cannot be renamed (a log folder that already has files, another file system) is
//! made the usual way, and what is left of the folder removed. A spare that gets no spec
//! removes its folder as it goes; one killed before that leaves it for `orch-tui gc`.

use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::agent::record::{CAST_LOG, RAW_LOG, TEXT_LOG};

const LOG: &str = "hold.log";
const BRANCHES: &str = "branches";
const PROMPT: &str = "prompt";
const SOCKET: &str = "sock";
const LOGS: &str = "logs";
/// An empty folder for the log folder's parent (`logs/<task>`), when the task has none yet.
const PARENT: &str = "task";
/// The folders of spares are named `spare-<pid>` (no dot: `holder::listed` skips them).
pub const PREFIX: &str = "spare-";

/// The files a spare made, its stderr already in its log.
pub struct Prepared {
    /// `.orch/holders/`, where it was made (a spec for another folder does not use it).
    pub dir: PathBuf,
    root: PathBuf,
    listener: Option<UnixListener>,
}

/// Makes a spare's files in `dir` (`.orch/holders/`) and sends its stderr to its log.
pub fn prepare(dir: &Path) -> io::Result<Prepared> {
    use crate::os::files::{append_private, private_dir, write_private};
    let root = dir.join(format!("{PREFIX}{}", std::process::id()));
    // An earlier process's folder under a pid used again.
    let _ = std::fs::remove_dir_all(&root);
    private_dir(&root)?;
    let made = (|| {
        crate::os::detach::stderr_to(&root.join(LOG))?;
        write_private(&root.join(BRANCHES), b"")?;
        write_private(&root.join(PROMPT), b"")?;
        private_dir(&root.join(PARENT))?;
        let logs = root.join(LOGS);
        private_dir(&logs)?;
        for name in [RAW_LOG, CAST_LOG, TEXT_LOG] {
            append_private(&logs.join(name))?;
        }
        super::with_short_path(&root.join(SOCKET), crate::os::detach::bind_private)
    })();
    match made {
        Ok(listener) => Ok(Prepared {
            dir: dir.to_path_buf(),
            root,
            listener: Some(listener),
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&root);
            Err(e)
        }
    }
}

impl Prepared {
    /// The log, renamed to `to` (stderr goes on into it); false if it could not be.
    pub fn log_to(&self, to: &Path) -> bool {
        std::fs::rename(self.root.join(LOG), to).is_ok()
    }

    /// The branch list written into the prepared file, renamed to `to`.
    pub fn branches_to(&self, to: &Path, bytes: &[u8]) -> bool {
        self.written_to(BRANCHES, to, bytes)
    }

    /// The agent's prompt written into the prepared file, renamed to `to` (its folder,
    /// `.orch/prompts/`, is there: the supervisor makes it as it starts).
    pub fn prompt_to(&self, f: &crate::agent::PromptFile) -> bool {
        self.written_to(PROMPT, &f.path, f.text.as_bytes())
    }

    /// The prepared file `name` with `bytes` in it, renamed to `to`.
    fn written_to(&self, name: &str, to: &Path, bytes: &[u8]) -> bool {
        let file = self.root.join(name);
        crate::os::files::write_private(&file, bytes).is_ok() && std::fs::rename(file, to).is_ok()
    }

    /// The bound socket, renamed to `to` (a client connects by the new name).
    pub fn socket_to(&mut self, to: &Path) -> Option<UnixListener> {
        let listener = self.listener.take()?;
        std::fs::rename(self.root.join(SOCKET), to)
            .is_ok()
            .then_some(listener)
    }

    /// The log folder with its three empty files, renamed to `to`; a missing parent is the
    /// prepared empty folder, renamed too (or made). Refused when `to` has files already.
    pub fn logs_to(&self, to: &Path) -> bool {
        if let Some(parent) = to.parent()
            && !parent.is_dir()
            && std::fs::rename(self.root.join(PARENT), parent).is_err()
            && crate::os::files::private_dir(parent).is_err()
        {
            return false;
        }
        std::fs::rename(self.root.join(LOGS), to).is_ok()
    }
}

/// However the holder goes on (or fails), the spare's folder goes with its `Prepared`: what
/// is left of it (nothing, when every rename went through).
impl Drop for Prepared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.root).or_else(|_| std::fs::remove_dir_all(&self.root));
    }
}

/// The folders in `dir` (`.orch/holders/`) of spares that are gone, for `gc`: a spare killed
/// before its spec leaves one. A live spare's (one waiting, or one removing its own as a run
/// ends) is not listed.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let gone = |name: &str| {
        name.strip_prefix(PREFIX)
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_none_or(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(PREFIX) && gone(&name)
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}
