//! Retention of attempt logs, for `orch-tui gc`: by age (a log folder untouched for longer than
//! the age goes, and so do rotated generations that old) and by size (beyond a total, the
//! folders untouched longest go first). Files rotate by size as they are written
//! (`logs::RotatingFile`); this decides what is dropped afterwards.
//!
//! Planning only reads; [`execute`] removes exactly what the plan lists, so `gc --dry-run` can
//! print the plan. Folders the caller must keep (live attempts) are never planned.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Folders (and rotated generations) untouched for longer than this go.
    pub older_than: Duration,
    /// Beyond this many bytes in all, the oldest folders go too (`None`: no cap).
    pub max_total_bytes: Option<u64>,
}

/// One thing the plan removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub path: PathBuf,
    pub bytes: u64,
    pub why: String,
}

struct Folder {
    path: PathBuf,
    bytes: u64,
    newest: SystemTime,
}

fn age_words(d: Duration) -> String {
    crate::core::timeline::human_ms(d.as_millis() as u64)
}

/// The attempt log folders under `logs_root` (`TASK/N`, `TASK/N-review`).
fn folders(logs_root: &Path) -> io::Result<Vec<Folder>> {
    let mut out = Vec::new();
    let tasks = match std::fs::read_dir(logs_root) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for task in tasks.flatten() {
        if !task.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        for attempt in std::fs::read_dir(task.path())?.flatten() {
            if !attempt.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let mut bytes = 0;
            let mut newest = SystemTime::UNIX_EPOCH;
            for f in std::fs::read_dir(attempt.path())?.flatten() {
                // symlink_metadata: a transcript link counts as the link, not the agent's file.
                if let Ok(m) = f.path().symlink_metadata() {
                    bytes += m.len();
                    if let Ok(t) = m.modified() {
                        newest = newest.max(t);
                    }
                }
            }
            out.push(Folder {
                path: attempt.path(),
                bytes,
                newest,
            });
        }
    }
    out.sort_by_key(|f| f.newest);
    Ok(out)
}

/// What gc would remove from `logs_root` (the `.orch/logs` folder) under `policy` at `now`,
/// never touching the folders in `keep` (pass the log folders of live attempts).
pub fn plan(
    logs_root: &Path,
    keep: &HashSet<PathBuf>,
    policy: &Policy,
    now: SystemTime,
) -> io::Result<Vec<Removal>> {
    let mut out = Vec::new();
    let mut left: Vec<Folder> = Vec::new();
    let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    let all = folders(logs_root)?;
    let total: u64 = all.iter().map(|f| f.bytes).sum();
    for f in all {
        let kept = keep.contains(&f.path);
        if !kept && age(f.newest) > policy.older_than {
            out.push(Removal {
                why: format!("logs untouched for {}", age_words(age(f.newest))),
                path: f.path,
                bytes: f.bytes,
            });
            continue;
        }
        // Rotated generations that old go even from folders that stay.
        for e in std::fs::read_dir(&f.path)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rotated = name
                .rsplit_once('.')
                .is_some_and(|(_, n)| n.len() == 1 && n.as_bytes()[0].is_ascii_digit());
            if let (true, Ok(m)) = (rotated, e.metadata())
                && m.modified().is_ok_and(|t| age(t) > policy.older_than)
            {
                out.push(Removal {
                    path: e.path(),
                    bytes: m.len(),
                    why: "a rotated log generation past the age".into(),
                });
            }
        }
        if !kept {
            left.push(f);
        }
    }
    if let Some(cap) = policy.max_total_bytes {
        let mut remaining = total.saturating_sub(out.iter().map(|r| r.bytes).sum());
        for f in left {
            if remaining <= cap {
                break;
            }
            // Its rotated files already planned go with the folder.
            let inside: u64 = out
                .iter()
                .filter(|r| r.path.starts_with(&f.path))
                .map(|r| r.bytes)
                .sum();
            out.retain(|r| !r.path.starts_with(&f.path));
            remaining = remaining.saturating_sub(f.bytes.saturating_sub(inside));
            out.push(Removal {
                why: format!(
                    "over the {} MB kept for logs (oldest first)",
                    cap / 1_000_000
                ),
                path: f.path,
                bytes: f.bytes,
            });
        }
    }
    Ok(out)
}

/// Removes what `plan` listed, and task folders left empty. Returns what could not be removed.
pub fn execute(removals: &[Removal]) -> Vec<(PathBuf, io::Error)> {
    let mut failed = Vec::new();
    for r in removals {
        let res = if r.path.is_dir() {
            std::fs::remove_dir_all(&r.path)
        } else {
            std::fs::remove_file(&r.path)
        };
        match res {
            Ok(()) => {
                if let Some(task) = r
                    .path
                    .parent()
                    .filter(|_| r.path.is_dir() || !r.path.exists())
                {
                    // Only if empty: remove_dir refuses otherwise.
                    let _ = std::fs::remove_dir(task);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => failed.push((r.path.clone(), e)),
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, bytes: usize, age: Duration) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![b'x'; bytes]).unwrap();
        let t = SystemTime::now() - age;
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(t).unwrap();
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn old_folders_and_old_generations_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("old/1/screen.log"), 10, 40 * DAY);
        touch(&root.join("old/1/pty.raw"), 20, 40 * DAY);
        touch(&root.join("live/2/screen.log"), 10, 40 * DAY);
        touch(&root.join("new/1/screen.log"), 10, DAY);
        touch(&root.join("new/1/screen.log.1"), 30, 35 * DAY);
        let keep: HashSet<PathBuf> = [root.join("live/2")].into();
        let policy = Policy {
            older_than: 30 * DAY,
            max_total_bytes: None,
        };
        let p = plan(root, &keep, &policy, SystemTime::now()).unwrap();
        let mut got: Vec<(String, u64)> = p
            .iter()
            .map(|r| {
                (
                    r.path.strip_prefix(root).unwrap().display().to_string(),
                    r.bytes,
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![("new/1/screen.log.1".into(), 30), ("old/1".into(), 30)]
        );
        assert!(root.join("old/1").exists(), "planning removes nothing");
        assert!(execute(&p).is_empty());
        assert!(
            !root.join("old").exists(),
            "an emptied task folder goes too"
        );
        assert!(root.join("live/2/screen.log").exists());
        assert!(root.join("new/1/screen.log").exists());
        assert!(!root.join("new/1/screen.log.1").exists());
    }

    #[test]
    fn beyond_the_size_cap_the_oldest_folders_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("a/1/screen.log"), 400, 3 * DAY);
        touch(&root.join("b/1/screen.log"), 400, 2 * DAY);
        touch(&root.join("c/1/screen.log"), 400, DAY);
        let policy = Policy {
            older_than: 30 * DAY,
            max_total_bytes: Some(900),
        };
        let p = plan(root, &HashSet::new(), &policy, SystemTime::now()).unwrap();
        let paths: Vec<PathBuf> = p.iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths, vec![root.join("a/1")]);
    }
}
