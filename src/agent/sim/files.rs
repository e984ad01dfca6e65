//! File edits of the simulated agent, confined to its worktree.
//!
//! A prompt is user input, so a directive must not be able to write outside the worktree:
//! absolute paths and `..` are refused, and so is a path that leaves the worktree through a
//! symlink already present in it.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

/// `relative` joined onto `worktree`, or why it is refused.
pub(super) fn resolve(worktree: &Path, relative: &str) -> Result<PathBuf, String> {
    let rel = Path::new(relative);
    if rel.as_os_str().is_empty() {
        return Err("the path is empty; give a path relative to the worktree".into());
    }
    for component in rel.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "`{relative}` contains `..`; the sim agent only writes inside its worktree, \
                     give a path relative to it without `..`"
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "`{relative}` is absolute; the sim agent only writes inside its worktree, \
                     give a path relative to it"
                ));
            }
        }
    }
    let full = worktree.join(rel);
    // The deepest ancestor that exists must still be inside the worktree once symlinks are
    // resolved; checked before creating any directory, so nothing is created outside.
    let root = fs::canonicalize(worktree).map_err(|e| {
        format!(
            "cannot resolve the worktree {}: {e}; check that it exists",
            worktree.display()
        )
    })?;
    let mut existing = full.as_path();
    while fs::symlink_metadata(existing).is_err() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    let existing = fs::canonicalize(existing)
        .map_err(|e| format!("cannot resolve {}: {e}", existing.display()))?;
    if !existing.starts_with(&root) {
        return Err(format!(
            "`{relative}` leads outside the worktree through a symlink ({}); \
             the sim agent only writes inside its worktree",
            existing.display()
        ));
    }
    Ok(full)
}

fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create the folder {}: {e}", parent.display())),
        None => Ok(()),
    }
}

/// Replaces the file with `content`, ending it with a newline as editors do.
pub(super) fn write(worktree: &Path, relative: &str, content: &str) -> Result<PathBuf, String> {
    let path = resolve(worktree, relative)?;
    create_parent(&path)?;
    let mut text = content.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Appends `content` as a line, first ending an unterminated last line so lines never merge.
pub(super) fn append(worktree: &Path, relative: &str, content: &str) -> Result<PathBuf, String> {
    let path = resolve(worktree, relative)?;
    create_parent(&path)?;
    let fail = |e: std::io::Error| format!("cannot append to {}: {e}", path.display());
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(fail)?;
    let mut text = String::new();
    let len = file.metadata().map_err(fail)?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1)).map_err(fail)?;
        file.read_exact(&mut last).map_err(fail)?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    text.push_str(content);
    if !content.ends_with('\n') {
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(fail)?;
    Ok(path)
}

/// The relative path of the default edit for `task`: one file per task, so tasks run in
/// parallel never touch the same file and never conflict at merge time.
pub(super) fn default_edit_path(task: &str) -> String {
    format!("work/{task}.md")
}

/// The content of the default edit: a title from the prompt and a few lines chosen from the
/// task id, so the same task always produces the same file (reproducible demos and tests).
pub(super) fn default_edit_content(task: &str, title: Option<&str>) -> String {
    const LINES: [&str; 10] = [
        "Read the surrounding code and noted the conventions it follows.",
        "Split the change into small steps that each keep the build green.",
        "Added a test that fails without the change.",
        "Kept the public interface unchanged.",
        "Named things after what they mean to the user.",
        "Removed a helper that had become dead code.",
        "Documented why the edge case is handled here.",
        "Checked the error messages say what to do next.",
        "Ran the whole test suite before finishing.",
        "Left a note for the reviewer about the trade-off.",
    ];
    let hash = fnv1a(task.as_bytes());
    let mut text = format!(
        "# {}\n\nWork notes from the simulated agent for task `{task}`.\n\n",
        title.unwrap_or(task)
    );
    for i in 0..3u64 {
        // Three distinct lines: consecutive offsets from a task-dependent start.
        let index = (hash.wrapping_add(i * 3) % LINES.len() as u64) as usize;
        text.push_str("- ");
        text.push_str(LINES[index]);
        text.push('\n');
    }
    text.push_str(&format!("\nChecksum of the task id: {hash:016x}\n"));
    text
}

/// FNV-1a: stable across runs and platforms, unlike `std`'s randomly seeded hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
