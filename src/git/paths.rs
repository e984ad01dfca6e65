//! What git thinks of a path in a working tree: tracked, ignored, or neither — asked before a
//! file is copied into an agent's worktree, where a file that is neither would be committed
//! with the agent's work.

use std::path::Path;

use super::run::Git;
use super::{GitError, Repo};

/// How git sees a path of a working tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStatus {
    /// In the index: the worktree has git's own copy.
    Tracked,
    /// Matched by .gitignore, .git/info/exclude or core.excludesFile: never committed.
    Ignored,
    /// Neither: `git add -A` would take it.
    Untracked,
}

impl Repo {
    /// How git sees `path` (relative to the worktree's root) in the worktree at `worktree`.
    pub fn path_status(&self, worktree: &Path, path: &str) -> Result<PathStatus, GitError> {
        let git = |args: &[&str]| {
            Git::new(worktree, self.timeout)
                .args(args)
                .arg("--")
                .arg(path)
                .output()
        };
        let tracked = git(&["ls-files", "--error-unmatch"])?;
        if tracked.status.success() {
            return Ok(PathStatus::Tracked);
        }
        let ignored = git(&["check-ignore", "-q", "--no-index"])?;
        match ignored.status.code() {
            Some(0) => Ok(PathStatus::Ignored),
            Some(1) => Ok(PathStatus::Untracked),
            code => Err(GitError::exit(
                vec!["check-ignore".into(), path.into()],
                code,
                String::from_utf8_lossy(&ignored.stderr).into_owned(),
            )),
        }
    }
}
