//! File modes for `.orch/`: the directory is 0700 and every file orch-tui creates in it 0600.
//! The ledger holds every attempt's token and `pty.raw` every keystroke typed into an agent,
//! so no other user may read them (docs/security.md).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory orch-tui creates under `.orch/`.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file orch-tui creates under `.orch/`.
pub const FILE_MODE: u32 = 0o600;

/// Create `dir` and any missing parents 0700, and make `dir` itself 0700 if it existed.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
}

/// Open `path` for appending, creating it 0600 if missing.
pub fn append_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Write `bytes` to `path`, creating it 0600 (an existing file keeps its mode but loses any
/// group/other bits).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    restrict(&f)?;
    f.write_all(bytes)
}

/// Create `path` 0600 if it does not exist yet; if it does, take group/other bits away.
pub fn touch_private(path: &Path) -> io::Result<()> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    restrict(&f)
}

/// Make sure `path` exists with no group/other bits, without ever opening an existing file: a
/// SQLite database must not be opened by anything but SQLite while a connection to it may be
/// open in this process (closing any other descriptor of the file drops SQLite's POSIX locks).
/// A missing file is created empty, 0600; an existing one is chmod-ed by path.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Set `path` to exactly 0600 (a socket, or a file that must not stay executable).
pub fn set_private(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
}

fn restrict(f: &File) -> io::Result<()> {
    let mode = f.metadata()?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// What [`tighten`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tightened {
    pub dirs: usize,
    pub files: usize,
}

/// Fix the modes of an existing `.orch/` (made by an older orch-tui, or by hand): directories
/// 0700, files lose every group/other bit (the owner's bits stay, so an executable stays one).
/// The contents of `worktrees/` are the user's checked-out files and are left alone; the
/// worktree directories themselves are tightened. Symlinks are never followed.
pub fn tighten(orch_dir: &Path) -> io::Result<Tightened> {
    let mut done = Tightened::default();
    if !orch_dir.is_dir() {
        return Ok(done);
    }
    tighten_dir(orch_dir, 0, &mut done)?;
    Ok(done)
}

fn tighten_dir(dir: &Path, depth: usize, done: &mut Tightened) -> io::Result<()> {
    set_mode(dir, DIR_MODE, &mut done.dirs)?;
    // `.orch/worktrees/<name>/` is a checkout: stop below its top.
    let in_worktrees =
        depth >= 1 && dir.parent().and_then(Path::file_name) == Some("worktrees".as_ref());
    if in_worktrees {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        // Holders of running agents write here while we walk (a log rotates, a socket goes, an
        // exit record is renamed into place): what vanished meanwhile needs no fixing.
        let tightened = entry.and_then(|entry| {
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_symlink() {
                Ok(())
            } else if kind.is_dir() {
                tighten_dir(&path, depth + 1, done)
            } else if kind.is_socket() {
                set_mode(&path, FILE_MODE, &mut done.files)
            } else if kind.is_file() {
                let mode = entry.metadata()?.permissions().mode() & 0o7777;
                set_mode(&path, mode & 0o700, &mut done.files)
            } else {
                Ok(())
            }
        });
        match tightened {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

fn set_mode(path: &Path, want: u32, count: &mut usize) -> io::Result<()> {
    let mode = std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if mode != want {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
        *count += 1;
    }
    Ok(())
}

/// The permission bits of `path` (for checks and tests).
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighten_fixes_an_old_tree_but_leaves_worktree_contents_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let orch = tmp.path().join(".orch");
        let wt = orch.join("worktrees").join("a-1");
        std::fs::create_dir_all(wt.join("src")).unwrap();
        std::fs::create_dir_all(orch.join("logs/a/1")).unwrap();
        for (p, m) in [
            (orch.join("ledger.db"), 0o644),
            (orch.join("logs/a/1/pty.raw"), 0o664),
            (orch.join("hook.sh"), 0o755),
            (wt.join("src/lib.rs"), 0o644),
        ] {
            std::fs::write(&p, "x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        }
        std::fs::set_permissions(&orch, std::fs::Permissions::from_mode(0o755)).unwrap();
        let done = tighten(&orch).unwrap();
        assert_eq!(mode_of(&orch).unwrap(), 0o700);
        assert_eq!(mode_of(&orch.join("ledger.db")).unwrap(), 0o600);
        assert_eq!(mode_of(&orch.join("logs/a/1/pty.raw")).unwrap(), 0o600);
        assert_eq!(mode_of(&orch.join("hook.sh")).unwrap(), 0o700);
        assert_eq!(mode_of(&wt).unwrap(), 0o700);
        assert_eq!(
            mode_of(&wt.join("src/lib.rs")).unwrap(),
            0o644,
            "user's file untouched"
        );
        assert!(done.files == 3 && done.dirs >= 5, "{done:?}");
        assert_eq!(tighten(&orch).unwrap(), Tightened::default(), "idempotent");
    }

    #[test]
    fn private_files_are_0600_whatever_existed() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        write_private(&p, b"1").unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        touch_private(&p).unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"1", "touch keeps the content");
        let d = tmp.path().join("a/b");
        private_dir(&d).unwrap();
        assert_eq!(mode_of(&d).unwrap(), 0o700);
    }
}
