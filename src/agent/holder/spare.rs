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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn ino(p: &Path) -> u64 {
        std::fs::symlink_metadata(p).unwrap().ino()
    }

    #[test]
    fn every_prepared_file_is_renamed_into_place_and_the_folder_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("holders");
        crate::os::files::private_dir(&dir).unwrap();
        // stderr of the test process is redirected by `prepare`: keep it and put it back.
        let saved = unsafe { libc::dup(2) };
        let mut p = prepare(&dir).unwrap();
        let root = dir.join(format!("{PREFIX}{}", std::process::id()));
        assert!(
            leftovers(&dir).is_empty(),
            "a live spare's folder is no leftover"
        );
        let dead = dir.join(format!("{PREFIX}99999999"));
        std::fs::create_dir(&dead).unwrap();
        assert_eq!(leftovers(&dir), vec![dead.clone()]);
        std::fs::remove_dir(&dead).unwrap();
        let before = [
            ino(&root.join(LOG)),
            ino(&root.join(BRANCHES)),
            ino(&root.join(SOCKET)),
            ino(&root.join(LOGS).join(RAW_LOG)),
            ino(&root.join(PARENT)),
        ];
        std::fs::create_dir(tmp.path().join("logs")).unwrap();
        let logs = tmp.path().join("logs/task/1");
        assert!(p.log_to(&dir.join("7.log")));
        assert!(p.branches_to(&dir.join("7.branches"), b"[\"main\"]"));
        let prompt_ino = ino(&root.join(PROMPT));
        assert!(p.prompt_to(&crate::agent::PromptFile {
            path: tmp.path().join("7.md"),
            text: "do it".into(),
        }));
        assert_eq!(ino(&tmp.path().join("7.md")), prompt_ino);
        assert_eq!(std::fs::read(tmp.path().join("7.md")).unwrap(), b"do it");
        let listener = p.socket_to(&dir.join("7.sock")).unwrap();
        assert!(p.logs_to(&logs));
        drop(p);
        unsafe { libc::dup2(saved, 2) };
        let after = [
            ino(&dir.join("7.log")),
            ino(&dir.join("7.branches")),
            ino(&dir.join("7.sock")),
            ino(&logs.join(RAW_LOG)),
            ino(&tmp.path().join("logs/task")),
        ];
        assert_eq!(before, after, "the same files, renamed");
        assert!(!root.exists() && leftovers(&dir).is_empty());
        assert_eq!(
            std::fs::read(dir.join("7.branches")).unwrap(),
            b"[\"main\"]"
        );
        for f in [CAST_LOG, TEXT_LOG] {
            assert_eq!(std::fs::metadata(logs.join(f)).unwrap().len(), 0);
        }
        assert_eq!(
            crate::os::files::mode_of(&logs.join(RAW_LOG)).unwrap() & 0o777,
            0o600
        );
        // The renamed socket still takes connections.
        std::os::unix::net::UnixStream::connect(dir.join("7.sock")).unwrap();
        drop(listener);
    }

    #[test]
    fn a_log_folder_that_has_files_is_left_alone_and_the_spare_folder_still_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("holders");
        let saved = unsafe { libc::dup(2) };
        let p = prepare(&dir).unwrap();
        unsafe { libc::dup2(saved, 2) };
        let logs = tmp.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join(RAW_LOG), b"an earlier attempt").unwrap();
        assert!(!p.logs_to(&logs));
        drop(p);
        assert!(leftovers(&dir).is_empty());
        assert_eq!(
            std::fs::read(logs.join(RAW_LOG)).unwrap(),
            b"an earlier attempt"
        );
    }
}
