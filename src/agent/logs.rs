//! Per-agent log files: a size-rotating appender, a JSONL appender on top of it, and a tail
//! follower that survives rotation (research/pty.md §3).
//!
//! Rotation renames `x` -> `x.1` -> `x.2` -> `x.3` (the oldest is dropped) and starts a new `x`.
//! Readers find history by concatenating `x.3 x.2 x.1 x`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Generations kept besides the live file.
pub const KEEP_GENERATIONS: u32 = 3;

/// Path of generation `n` of `path` (`n == 0` is the live file).
pub fn generation(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Appends to a file and rotates it once it reaches `limit` bytes. Rotation happens only between
/// writes, so one `write` (a PTY chunk, a JSON line) is never split across generations.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    limit: u64,
}

impl RotatingFile {
    /// Opens `path` for appending, creating it (not its directory) if missing.
    /// `limit == 0` disables rotation.
    pub fn open(path: &Path, limit: u64) -> io::Result<RotatingFile> {
        let file = open_append(path)?;
        let size = file
            .metadata()
            .map_err(|e| with_path(e, "cannot stat log", path))?
            .len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            size,
            limit,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the live generation (0 right after a rotation).
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends all of `bytes`, then rotates if the file has reached the limit.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .map_err(|e| with_path(e, "cannot append to log", &self.path))?;
        self.size += bytes.len() as u64;
        if self.limit > 0 && self.size >= self.limit {
            self.rotate()?;
        }
        Ok(())
    }

    /// Flushes to disk; done at rotation and exit only, to keep the hot path cheap.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file
            .sync_all()
            .map_err(|e| with_path(e, "cannot fsync log", &self.path))
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        for n in (1..KEEP_GENERATIONS).rev() {
            let from = generation(&self.path, n);
            if from.exists() {
                let to = generation(&self.path, n + 1);
                std::fs::rename(&from, &to)
                    .map_err(|e| with_path(e, "cannot rotate log", &from))?;
            }
        }
        let first = generation(&self.path, 1);
        std::fs::rename(&self.path, &first)
            .map_err(|e| with_path(e, "cannot rotate log", &self.path))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // 0600: raw logs hold every keystroke typed into an agent (docs/security.md).
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(crate::os::files::FILE_MODE)
        .open(path)
        .map_err(|e| {
            with_path(
                e,
                "cannot open log for appending (check the directory exists and is writable)",
                path,
            )
        })
}

/// `events.jsonl`: one JSON value per line, rotated like the other logs.
#[derive(Debug)]
pub struct JsonlAppender {
    file: RotatingFile,
}

impl JsonlAppender {
    pub fn open(path: &Path, limit: u64) -> io::Result<JsonlAppender> {
        Ok(JsonlAppender {
            file: RotatingFile::open(path, limit)?,
        })
    }

    /// Appends `value` as one line (serde_json never emits a raw newline inside a value).
    pub fn append(&mut self, value: &serde_json::Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync()
    }
}

/// The whole log, oldest generation first. A missing live file with no generations is an error
/// (`NotFound`) so `orch-tui logs` can say the attempt has no log yet.
pub fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut found = false;
    for n in (0..=KEEP_GENERATIONS).rev() {
        let p = generation(path, n);
        match File::open(&p) {
            Ok(mut f) => {
                found = true;
                f.read_to_end(&mut out)
                    .map_err(|e| with_path(e, "cannot read log", &p))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_path(e, "cannot open log", &p)),
        }
    }
    if !found {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no log at {} (has the attempt started?)", path.display()),
        ));
    }
    Ok(out)
}

/// The file being followed: its handle, inode and how far it has been copied.
struct Followed {
    file: File,
    ino: u64,
}

/// Copies `path` to `out` as it grows, until `stop()` returns true, and keeps going across
/// rotation and truncation with no loss and no duplicates.
///
/// Watches the directory, not the file: inotify follows inodes, so a file watch never sees the
/// new file after a rename-rotation (research/pty.md §3.3). Events only wake the loop; each wake
/// compares the path's inode with the open one, so missed or coalesced events cannot lose data.
/// A periodic wake covers file systems without events (NFS, WSL) and checks `stop`.
pub fn follow(
    path: &Path,
    from_start: bool,
    out: &mut dyn Write,
    stop: &dyn Fn() -> bool,
) -> io::Result<()> {
    use notify::Watcher as _;
    const WAKE: Duration = Duration::from_millis(100);

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_os_string());
    let (tx, rx) = mpsc::channel::<()>();
    let _keep_tx = tx.clone(); // so recv_timeout waits even if the watcher is gone
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && ev.paths.iter().any(|p| p.file_name() == name.as_deref())
        {
            let _ = tx.send(());
        }
    })
    .and_then(|mut w| {
        w.watch(&dir, notify::RecursiveMode::NonRecursive)
            .map(|()| w)
    });
    if let Err(e) = &watcher {
        tracing::warn!(dir = %dir.display(), error = %e, "no file events; following by polling");
    }

    let mut cur: Option<Followed> = None;
    let mut first_open = true;
    loop {
        match (&mut cur, std::fs::metadata(path)) {
            (None, Ok(meta)) => {
                let mut file =
                    File::open(path).map_err(|e| with_path(e, "cannot open log", path))?;
                if first_open && !from_start {
                    file.seek(SeekFrom::End(0))?;
                }
                cur = Some(Followed {
                    file,
                    ino: meta.ino(),
                });
            }
            (Some(f), Ok(meta)) if meta.ino() != f.ino => {
                // Rotated: finish the old inode (late writes land there), then any generations
                // rotated past us in between, then start the new file at 0.
                copy_to_end(&mut f.file, out)?;
                let old_ino = f.ino;
                for n in (1..=KEEP_GENERATIONS).rev() {
                    let p = generation(path, n);
                    if std::fs::metadata(&p).is_ok_and(|m| m.ino() == old_ino) {
                        for m in (1..n).rev() {
                            if let Ok(mut g) = File::open(generation(path, m)) {
                                copy_to_end(&mut g, out)?;
                            }
                        }
                        break;
                    }
                }
                let file = File::open(path).map_err(|e| with_path(e, "cannot open log", path))?;
                cur = Some(Followed {
                    file,
                    ino: meta.ino(),
                });
            }
            (Some(f), Ok(meta)) => {
                if meta.len() < f.file.stream_position()? {
                    f.file.seek(SeekFrom::Start(0))?; // truncated in place
                }
            }
            // Gone between rotation steps, or not created yet: keep the old handle and wait.
            (_, Err(_)) => {}
        }
        first_open = false;
        if let Some(f) = &mut cur {
            copy_to_end(&mut f.file, out)?;
        }
        out.flush()?;
        if stop() {
            return Ok(());
        }
        // Wake on an event (then drain the burst) or after WAKE.
        if rx.recv_timeout(WAKE).is_ok() {
            while rx.try_recv().is_ok() {}
        }
    }
}

fn copy_to_end(file: &mut File, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_three_generations_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pty.raw");
        let mut f = RotatingFile::open(&path, 10).unwrap();
        let mut all = Vec::new();
        for i in 0..20 {
            let chunk = format!("chunk{i:02}\n");
            all.extend_from_slice(chunk.as_bytes());
            f.write_all(chunk.as_bytes()).unwrap();
        }
        assert!(generation(&path, 3).exists());
        assert!(!generation(&path, 4).exists());
        let got = read_all(&path).unwrap();
        // Only the newest generations survive (2 chunks each, rotated after the one that
        // reaches 10 bytes), and they are the tail of what was written, in order.
        assert!(all.ends_with(&got), "{}", String::from_utf8_lossy(&got));
        assert_eq!(String::from_utf8_lossy(&got).lines().count(), 6);
        assert_eq!(
            std::fs::read(generation(&path, 1)).unwrap(),
            b"chunk18\nchunk19\n"
        );
    }

    #[test]
    fn reopen_continues_the_size_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("screen.log");
        RotatingFile::open(&path, 10)
            .unwrap()
            .write_all(b"12345")
            .unwrap();
        let mut f = RotatingFile::open(&path, 10).unwrap();
        f.write_all(b"67890").unwrap();
        assert!(generation(&path, 1).exists());
        assert_eq!(read_all(&path).unwrap(), b"1234567890");
    }

    #[test]
    fn jsonl_lines_parse_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut j = JsonlAppender::open(&path, 64).unwrap();
        for i in 0..20 {
            j.append(&serde_json::json!({"n": i, "text": "a\nb"}))
                .unwrap();
        }
        let text = String::from_utf8(read_all(&path).unwrap()).unwrap();
        let ns: Vec<i64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert!(!ns.is_empty());
        assert_eq!(ns, (20 - ns.len() as i64..20).collect::<Vec<_>>());
    }

    #[test]
    fn read_all_of_nothing_says_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_all(&dir.path().join("nope")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
