//! `[git]`: how orch-tui runs git; `[worktree]`: what attempts' worktrees keep.

use toml::de::{DeTable, DeValue};

use super::{GitSettings, WorktreeSettings};
use crate::core::diag::Sink;

pub(super) const GIT_KEYS: &[&str] = &["timeout"];
pub(super) const WORKTREE_KEYS: &[&str] = &["reuse"];

pub(super) fn apply_git(sink: &mut Sink<'_>, g: &mut GitSettings, t: &DeTable<'_>) {
    if let Some(v) = t.get("timeout") {
        match sink.duration(v, "[git] timeout") {
            Some(0) => sink.error(
                &v.span(),
                "[git] timeout is zero",
                "every git call needs time to run (commits run your hooks), e.g. timeout = \"10m\"",
            ),
            Some(ms) => g.timeout_ms = ms,
            None => {}
        }
    }
}

pub(super) fn apply_worktree(sink: &mut Sink<'_>, w: &mut WorktreeSettings, t: &DeTable<'_>) {
    let Some(v) = t.get("reuse") else {
        return;
    };
    let Some(paths) = sink.strings(v, "[worktree] reuse", "reuse = [\"target\"]") else {
        return;
    };
    let DeValue::Array(items) = v.get_ref() else {
        return;
    };
    let mut ok = Vec::new();
    for (path, item) in paths.into_iter().zip(items.iter()) {
        match reuse_problem(&path) {
            Some(why) => sink.error(
                &item.span(),
                format!("[worktree] reuse entry \"{path}\" {why}"),
                "name an ignored folder or file relative to the top of the repository, e.g. reuse = [\"target\", \"web/node_modules\"]",
            ),
            None => ok.push(path.trim_matches('/').to_string()),
        }
    }
    w.reuse = ok;
}

/// Why a `[worktree] reuse` entry cannot name a path inside a worktree, or None.
fn reuse_problem(path: &str) -> Option<&'static str> {
    let p = path.trim_matches('/');
    if p.is_empty() {
        Some("names no path (the whole worktree cannot be kept)")
    } else if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        Some("must stay inside the worktree (no empty, `.` or `..` parts)")
    } else if p.split('/').any(|c| c == ".git") {
        Some("names git's own files")
    } else if p.contains(['*', '?', '[', '\\', '!', '\n', '\0']) {
        Some("holds a pattern character; name the path itself")
    } else {
        None
    }
}
