//! Worktrees: one per attempt, created from the integration tip, committed by the supervisor,
//! removed after the merge — with a backup ref before anything could drop work.

use std::path::{Path, PathBuf};

use super::run::split_nul;
use super::{GitError, Repo, safe_rev};

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    pub path: PathBuf,
    /// The commit checked out (None for a worktree whose HEAD is unborn).
    pub head: Option<String>,
    /// `refs/heads/...`, None when detached.
    pub branch: Option<String>,
    /// Locked (e.g. by a `worktree add` that was interrupted while "initializing").
    pub locked: bool,
}

/// Compares paths the way they point on disk: git prints absolute paths that may or may not go
/// through symlinks (`/tmp` on macOS), so canonicalize whatever still exists.
pub(super) fn same_path(a: &Path, b: &Path) -> bool {
    let ca = a.canonicalize().unwrap_or_else(|_| a.to_path_buf());
    let cb = b.canonicalize().unwrap_or_else(|_| b.to_path_buf());
    ca == cb
}

/// How many times a listing that met a worktree being added is asked again.
const HALF_WRITTEN_RETRIES: u32 = 5;

/// git failed on a worktree's admin file that another git is still writing.
fn half_written_admin(e: &GitError) -> bool {
    e.stderr.contains("failed to read") && e.stderr.contains("/commondir")
}

impl Repo {
    /// Every worktree git knows of, the main one first.
    pub fn worktrees(&self) -> Result<Vec<WorktreeInfo>, GitError> {
        // Read from git's files when they plainly answer (`worktree_list.rs`): no process.
        if let Some(list) = super::worktree_list::worktrees_from_files(&self.root) {
            return Ok(list);
        }
        self.worktrees_by_git()
    }

    /// `git worktree list`, asked of git.
    pub(super) fn worktrees_by_git(&self) -> Result<Vec<WorktreeInfo>, GitError> {
        // git reads every worktree's admin files, and writes a new worktree's `commondir` in
        // place: while another process (a supervisor's pool keeper, say) adds one, the listing
        // can fail with "failed to read .git/worktrees/<n>/commondir". That passes within
        // milliseconds, so it is asked again a few times (10, 20, 40, 80, 160 ms apart).
        let mut retried = 0;
        let out = loop {
            match self
                .git()
                .args(["worktree", "list", "--porcelain", "-z"])
                .run_bytes()
            {
                Err(e) if retried < HALF_WRITTEN_RETRIES && half_written_admin(&e) => {
                    retried += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5 << retried));
                }
                other => break other?,
            }
        };
        let mut list = Vec::new();
        let mut cur: Option<WorktreeInfo> = None;
        // Fields are NUL-terminated; an empty field ends one worktree's record.
        for field in split_nul(&out) {
            if field.is_empty() {
                list.extend(cur.take());
            } else if let Some(p) = field.strip_prefix("worktree ") {
                list.extend(cur.take());
                cur = Some(WorktreeInfo {
                    path: PathBuf::from(p),
                    head: None,
                    branch: None,
                    locked: false,
                });
            } else if let Some(w) = cur.as_mut() {
                if let Some(h) = field.strip_prefix("HEAD ") {
                    w.head = Some(h.to_string()).filter(|h| h.bytes().any(|b| b != b'0'));
                } else if let Some(b) = field.strip_prefix("branch ") {
                    w.branch = Some(b.to_string());
                } else if field == "locked" || field.starts_with("locked ") {
                    w.locked = true;
                }
            }
        }
        list.extend(cur);
        Ok(list)
    }

    pub(super) fn find_worktree(&self, path: &Path) -> Result<Option<WorktreeInfo>, GitError> {
        Ok(self
            .worktrees()?
            .into_iter()
            .skip(1) // the main working tree is never ours to remove
            .find(|w| same_path(&w.path, path)))
    }

    /// Creates a worktree at `path` on `branch`, starting at `base`.
    ///
    /// `branch` may exist from an earlier attempt: its tip is saved under `backup_ref` first
    /// (when it has commits that `base` lacks), then it is reset to `base`
    /// (`worktree add -B`). A worktree left at `path` by a crash is retired first: its
    /// uncommitted files are snapshotted into a commit, backed up, and it is removed.
    pub fn create_worktree(
        &self,
        path: &Path,
        branch: &str,
        base: &str,
        backup_ref: &str,
    ) -> Result<(), GitError> {
        // A relative path means relative to the repository, as it does for git run there.
        let path = &self.root.join(path);
        let base = safe_rev(base)?;
        if path.exists() {
            match self.find_worktree(path)? {
                Some(stale) => {
                    tracing::warn!(path = %path.display(), "git: retiring a stale worktree");
                    self.retire(&stale, backup_ref)?;
                }
                None => {
                    let empty = path
                        .read_dir()
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false);
                    if !empty {
                        return Err(GitError::ours(
                            &["worktree", "add"],
                            format!(
                                "{} exists and is not a worktree of this repository; \
                                 move it away (it may hold someone's files)",
                                path.display()
                            ),
                        ));
                    }
                }
            }
        }
        let add = |flag: &str| {
            // In one rename when it can be (`worktree_new.rs`): an agent's git listing the
            // worktrees meanwhile never reads this one half written.
            match self.add_worktree_in_one_rename(
                path,
                base,
                &["--no-track", flag, branch, base],
                false,
            ) {
                Some(added) => added.map(|_| String::new()),
                None => self
                    .git()
                    .args(["worktree", "add", "--quiet", "--no-track", flag, branch])
                    .arg(path)
                    .arg(base)
                    .run(),
            }
        };
        // The common case, a new task, costs one git call: `-b` refuses an existing branch
        // before touching anything, and only then do we look at what the branch holds.
        let first = match add("-b") {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let refname = format!("refs/heads/{branch}");
        if let Some(old) = self.rev_parse(&refname)?
            && self.has_unsaved_commits(&old, &[base])?
        {
            self.backup_ref(backup_ref, &old)?;
        }
        match add("-B") {
            Ok(_) => Ok(()),
            Err(e) => {
                // A worktree whose directory vanished (deleted by hand, or a crash before git
                // wrote it) still holds the branch or the path until pruned: prune, try once more.
                tracing::debug!(first = %first, error = %e, "git: worktree add failed; pruning");
                self.git().args(["worktree", "prune"]).run()?;
                add("-B").map(|_| ())
            }
        }
    }

    /// Removes the worktree at `path` (missing = Ok). Uncommitted files are snapshotted into a
    /// commit first, and its HEAD (or the snapshot) is saved under `backup_ref` unless another
    /// branch, tag or backup already holds those commits.
    pub fn remove_worktree(&self, path: &Path, backup_ref: &str) -> Result<(), GitError> {
        let path = &self.root.join(path);
        match self.find_worktree(path)? {
            Some(wt) => self.retire(&wt, backup_ref).map(|_| ()),
            None if path.exists() => Err(GitError::ours(
                &["worktree", "remove"],
                format!(
                    "{} is not a worktree of this repository; not removing it",
                    path.display()
                ),
            )),
            None => Ok(()),
        }
    }

    /// Commits everything the agent left in `worktree` (as `add -A` would: `.gitignore`d files
    /// stay out) with the agent as author and committer. `message` should end with the caller's
    /// trailers (see `trailers`). None when there was nothing to commit.
    pub fn commit_all(
        &self,
        worktree: &Path,
        author_name: &str,
        author_email: &str,
        message: &str,
    ) -> Result<Option<String>, GitError> {
        // With the change journal (`watch.rs`) git checks only the paths touched since the last
        // call, so `add` and the commit each cost an index read and write, not a scan; `add`
        // looks for new files only where the journal saw something happen.
        let root = self.root.join(worktree);
        let journal = self.watches.answer(&root, true);
        let plain = || self.git_in(worktree);
        let fsmonitor = match &journal {
            Some(answer) => {
                self.add_with_journal(worktree, answer)?;
                self.watches.vouch(&root, answer);
                // The same answer serves the commit: the add changed no file.
                Some(answer.args.clone())
            }
            None => {
                // What `add -A` stages, in one scan of the tracked files instead of two: new
                // files are added by name, changed and deleted ones by `commit -a`. (`add -A`
                // and then commit's own index refresh each `lstat` every file: ~0.2 s of CPU
                // apiece on 100,000 files.)
                let new = plain()
                    .args(["ls-files", "-z", "--others", "--exclude-standard"])
                    .run_bytes()?;
                if !new.is_empty() {
                    plain()
                        .args([
                            "--literal-pathspecs",
                            "add",
                            "--pathspec-from-file=-",
                            "--pathspec-file-nul",
                        ])
                        .stdin(&new)
                        .run()?;
                }
                None
            }
        };
        let g = || match &fsmonitor {
            Some(c) => self.git_in(worktree).args(c),
            None => self.git_in(worktree),
        };
        // Porcelain commit (not commit-tree) so the user's commit hooks still run; the message
        // goes through stdin so its size and characters do not matter.
        // `--all` stages the tracked files changed or deleted (with the journal, only those it
        // names are looked at).
        // git's housekeeping after the commit is left to the tidy (`housekeeping.rs`).
        let mut commit = g();
        for (key, value) in super::housekeeping::NO_AUTO_MAINTENANCE {
            commit = commit.config(key, value);
        }
        let committed = commit
            .args([
                "commit",
                "--all",
                "--quiet",
                "--no-edit",
                "--cleanup=whitespace",
                "-F",
                "-",
            ])
            .env("GIT_AUTHOR_NAME", author_name)
            .env("GIT_AUTHOR_EMAIL", author_email)
            .env("GIT_COMMITTER_NAME", author_name)
            .env("GIT_COMMITTER_EMAIL", author_email)
            .stdin(message.as_bytes())
            .run();
        if let Err(e) = committed {
            // Asked only after a failure, to keep the usual path one call shorter: an empty
            // change is "nothing to commit"; anything else (a hook said no) is the error. The
            // working tree is compared, not the index: a refused `commit -a` leaves the changed
            // tracked files unstaged.
            // The index's stat information is refreshed first: plumbing trusts it, and a file
            // merely touched (a checkout into a reused worktree, an agent that rewrote a file
            // unchanged) would otherwise count as a change and an empty turn as a refusal.
            let _ = g().args(["update-index", "-q", "--refresh"]).run();
            if g().args(["diff-index", "--quiet", "HEAD", "--"]).yes_no()? {
                return Ok(None);
            }
            return Err(e);
        }
        match super::files::head_from_files(&root) {
            Some(oid) => Ok(Some(oid)),
            None => Ok(Some(g().args(["rev-parse", "HEAD"]).run()?)),
        }
    }
}

#[cfg(test)]
mod half_written_tests {
    use super::*;

    #[test]
    fn only_an_admin_file_being_written_is_asked_again() {
        let err = |stderr: &str| GitError {
            args: vec!["worktree".into(), "list".into()],
            code: Some(128),
            stderr: stderr.into(),
            timed_out: None,
        };
        assert!(half_written_admin(&err(
            "fatal: failed to read .git/worktrees/idle-2/commondir: Success"
        )));
        assert!(!half_written_admin(&err("fatal: not a git repository")));
        assert!(!half_written_admin(&err(
            "fatal: failed to read object 1234: Input/output error"
        )));
    }
}
