//! The scratch worktree where a merge's checks run again on exactly the tree that would land
//! (`.orch/worktrees/_recheck`): reused from merge to merge, nothing in it is ever kept.
//!
//! It is watched like an attempt's worktree (`watch.rs`): git's checkout then looks only at
//! what changed, and `git clean` runs only when something was written there since the last
//! switch (by the checks, the setup, anyone) that may still be there. A switch used to be a
//! checkout and a clean every merge, a clean that in the usual case removed nothing.

use std::path::Path;

use super::watch::NewFiles;
use super::{GitError, Repo};

impl Repo {
    /// Point the reusable scratch worktree at `rev` (to run checks on a rebased tree): switch it
    /// if it exists (only changed files are rewritten; untracked files are removed, ignored build
    /// outputs kept so checks build incrementally), else create it. Nothing in it is ever kept.
    pub fn checkout_scratch(&self, path: &Path, rev: &str) -> Result<(), GitError> {
        let root = self.root.join(path);
        if root.join(".git").exists() {
            // What was written since the last switch: only those paths can be untracked files.
            let answer = self.watches.answer(&root, true);
            let maybe_untracked = match answer.as_ref().map(|a| &a.new_files) {
                Some(NewFiles::Listed(paths)) => paths
                    .iter()
                    .any(|p| root.join(p).symlink_metadata().is_ok()),
                Some(NewFiles::Walk(_)) | None => true,
            };
            let checkout = match &answer {
                Some(a) => self.git_in(&root).args(&a.args),
                None => self.git_in(&root),
            };
            let switched = checkout
                .args(["checkout", "--quiet", "--detach", "--force", rev])
                .run()
                .and_then(|_| match maybe_untracked {
                    // Plain: `clean` writes no index, so the journal's token stays in it.
                    true => self.git_in(&root).args(["clean", "--quiet", "-ffd"]).run(),
                    false => Ok(String::new()),
                });
            if switched.is_ok() {
                match answer {
                    Some(_) => self.scratch_is_clean(&root),
                    // Not watched (made before this supervisor started) or the journal failed:
                    // it holds nothing untracked now, the condition to start one.
                    None => self.watch_worktree(&root),
                }
                return Ok(());
            }
        }
        self.add_scratch_worktree(path, rev)
    }

    /// The scratch worktree holds exactly a commit's files (and ignored ones): from now on the
    /// journal's paths are where untracked files can be.
    fn scratch_is_clean(&self, root: &Path) {
        if let Some(now) = self.watches.answer(root, true) {
            self.watches.vouch(root, &now);
        }
    }

    /// A detached scratch worktree at `rev`, watched. Nothing in it is kept:
    /// `drop_scratch_worktree` removes it without a backup.
    pub fn add_scratch_worktree(&self, path: &Path, rev: &str) -> Result<(), GitError> {
        if path.exists() {
            self.drop_scratch_worktree(path)?;
        }
        let p = path.to_string_lossy().to_string();
        match self.add_worktree_in_one_rename(&self.root.join(path), rev, &["--detach", rev], false)
        {
            Some(added) => added.map(|_| ())?,
            None => {
                self.git()
                    .args(["worktree", "add", "--quiet", "--detach", &p, rev])
                    .run()?;
            }
        }
        self.watch_worktree(path);
        Ok(())
    }

    pub fn drop_scratch_worktree(&self, path: &Path) -> Result<(), GitError> {
        self.watches.forget(&self.root.join(path));
        let p = path.to_string_lossy().to_string();
        let removed = self
            .git()
            .args(["worktree", "remove", "--force", "--force", &p])
            .run();
        if removed.is_err() {
            let _ = std::fs::remove_dir_all(path);
            self.git().args(["worktree", "prune"]).run()?;
        }
        Ok(())
    }
}
