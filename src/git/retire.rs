//! Retiring worktrees and task branches — after a merge, at start-up for finished tasks, in
//! `orch-tui gc` — keeping under a backup ref whatever would otherwise become unreachable.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::backup::backup_scope;
use super::pool::Pool;
use super::replay::is_full_oid;
use super::watch::NewFiles;
use super::worktree::WorktreeInfo;
use super::{GitError, Repo, safe_rev};

/// The identity used for snapshot commits of work found uncommitted in a worktree we are about
/// to remove: set explicitly so it works in repos where the user configured none.
const SNAPSHOT_NAME: &str = "orch-tui";
const SNAPSHOT_EMAIL: &str = "orch-tui@localhost";

/// A worktree under `.orch/worktrees/`, as found at start-up or by `orch-tui gc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrchWorktree {
    pub path: PathBuf,
    /// Its directory name: `<task>-<attempt>` for an attempt's worktree.
    pub name: String,
    /// The commit checked out (None when unborn or unreadable).
    pub head: Option<String>,
    /// `refs/heads/...`; None when detached.
    pub branch: Option<String>,
    /// Has modified or untracked (not ignored) files.
    pub dirty: bool,
    /// Its directory is gone (git still lists it until pruned).
    pub missing: bool,
}

impl OrchWorktree {
    /// The task and attempt number its name says (`fix-2-1` is task `fix-2`, attempt 1).
    pub fn task_attempt(&self) -> Option<(&str, u32)> {
        let (task, n) = self.name.rsplit_once('-')?;
        Some((task, n.parse().ok()?)).filter(|(t, _)| !t.is_empty())
    }
}

/// What retiring a worktree (and, after a merge, its task branch) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retired {
    /// The commit made of files found uncommitted in the worktree.
    pub snapshot: Option<String>,
    /// Backup refs written: empty when everything was reachable already.
    pub backups: Vec<String>,
    pub worktree_removed: bool,
    pub branch_deleted: bool,
}

impl Repo {
    /// Worktrees git knows of whose path is under `dir` (`.orch/worktrees`), with their state.
    pub fn orch_worktrees(&self, dir: &Path) -> Result<Vec<OrchWorktree>, GitError> {
        self.orch_worktrees_with(dir, true)
    }

    /// [`Repo::orch_worktrees`] without asking each whether it is dirty (`dirty` is false): a
    /// `git status` each is most of the cost, and a start only needs to know which exist.
    pub fn orch_worktrees_listed(&self, dir: &Path) -> Result<Vec<OrchWorktree>, GitError> {
        self.orch_worktrees_with(dir, false)
    }

    fn orch_worktrees_with(&self, dir: &Path, state: bool) -> Result<Vec<OrchWorktree>, GitError> {
        let dir = self.root.join(dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        let mut out = Vec::new();
        for w in self.worktrees()?.into_iter().skip(1) {
            let parent = w
                .path
                .parent()
                .map(|p| p.canonicalize().unwrap_or(p.to_path_buf()));
            if parent.as_deref() != Some(dir.as_path()) {
                continue;
            }
            let missing = !w.path.exists();
            let dirty = state && !missing && self.is_dirty(&w.path)?;
            out.push(OrchWorktree {
                name: w
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path: w.path,
                head: w.head,
                branch: w.branch,
                dirty,
                missing,
            });
        }
        Ok(out)
    }

    /// Modified or untracked (not ignored) files in `worktree`. Untracked files are asked for
    /// explicitly: a user setting that hides them would hide work here.
    fn is_dirty(&self, worktree: &Path) -> Result<bool, GitError> {
        let status = self
            .git_in(worktree)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .args(["status", "--porcelain", "-z", "--untracked-files=normal"])
            .arg("--ignore-submodules=none")
            .run_bytes()?;
        Ok(!status.is_empty())
    }

    /// Removes the worktree at `path` (missing = nothing done): uncommitted files are
    /// snapshotted into a commit first, and its HEAD (or the snapshot) is kept under
    /// `backup_ref` unless a branch, tag or backup already holds it.
    pub fn retire_worktree(&self, path: &Path, backup_ref: &str) -> Result<Retired, GitError> {
        match self.find_worktree(&self.root.join(path))? {
            Some(wt) => self.retire(&wt, backup_ref),
            None => Ok(Retired::default()),
        }
    }

    /// After a merge: removes the attempt's worktree and deletes `task_branch`. A backup ref is
    /// made only for a commit that would otherwise become unreachable: the agent's original
    /// commits when the merge replayed them onto a moved integration branch, a snapshot of
    /// files left uncommitted — never for a fast-forward (`merged_commit` is `agent_commit`).
    pub fn retire_merged(
        &self,
        worktree: &Path,
        task_branch: &str,
        merged_commit: &str,
        agent_commit: &str,
        backup_ref: &str,
    ) -> Result<Retired, GitError> {
        self.retire_merged_with(
            None,
            worktree,
            task_branch,
            merged_commit,
            agent_commit,
            backup_ref,
        )
    }

    /// `retire_merged`, the worktree parked in `pool` (when given and not full) instead of
    /// removed.
    pub(super) fn retire_merged_with(
        &self,
        pool: Option<&Pool>,
        worktree: &Path,
        task_branch: &str,
        merged_commit: &str,
        agent_commit: &str,
        backup_ref: &str,
    ) -> Result<Retired, GitError> {
        let wt = self.find_worktree(&self.root.join(worktree))?;
        let task_ref = format!("refs/heads/{task_branch}");
        // A worktree listed on the task branch gave its tip already; the delete below is a
        // compare-and-swap on it, so a branch moved since is never deleted.
        let task_tip = match &wt {
            Some(w) if w.branch.as_deref() == Some(task_ref.as_str()) && w.head.is_some() => {
                w.head.clone()
            }
            _ => self.rev_parse(&task_ref)?,
        };
        // What could become unreachable: the worktree's HEAD, the agent's commit, the branch's
        // tip — usually one commit.
        let mut at_risk: Vec<&str> = Vec::new();
        let head = wt.as_ref().and_then(|w| w.head.as_deref());
        for oid in [head, Some(agent_commit), task_tip.as_deref()]
            .into_iter()
            .flatten()
        {
            if !at_risk.contains(&oid) {
                at_risk.push(oid);
            }
        }
        // One walk, before anything changes, also checks the merged commit is one: a wrong id
        // fails here and changes nothing.
        let unsaved = self.unsaved_among(&at_risk, task_branch, backup_ref, merged_commit)?;
        let mut done = Retired::default();
        if let Some(w) = &wt {
            if let Some(snap) = self.snapshot_leaving_collected(w, agent_commit)? {
                // Made just now, so nothing else holds it; its backup holds the HEAD below it.
                done.backups.push(self.backup_ref(backup_ref, &snap)?);
                done.snapshot = Some(snap);
            }
            self.park_or_remove(w, pool, done.snapshot.is_none())?;
            done.worktree_removed = true;
        }
        let under_snapshot = done.snapshot.as_ref().and(head);
        let to_keep: Vec<&str> = at_risk
            .into_iter()
            .filter(|o| Some(*o) != under_snapshot)
            .filter(|o| !is_full_oid(o) || unsaved.contains(*o))
            .collect();
        let Some(tip) = task_tip.as_deref() else {
            for oid in to_keep {
                self.keep_unless_reachable(oid, Some(task_branch), backup_ref, &mut done)?;
            }
            return Ok(done);
        };
        // The usual replayed merge: the agent's commit kept and the branch deleted in one
        // transaction (all or nothing); anything else, or a failure, takes the careful way.
        if let [one] = to_keep[..]
            && done.backups.is_empty()
            && self.backup_and_delete(backup_ref, one, &task_ref, tip)
        {
            done.backups.push(backup_ref.to_string());
            done.branch_deleted = true;
            return Ok(done);
        }
        for oid in to_keep {
            self.keep_unless_reachable(oid, Some(task_branch), backup_ref, &mut done)?;
        }
        // Everything on it is reachable elsewhere or backed up now; the old value makes sure a
        // branch that moved meanwhile is not deleted.
        self.git()
            .args(["update-ref", "-m", "orch-tui: merged", "-d", &task_ref, tip])
            .run()?;
        done.branch_deleted = true;
        Ok(done)
    }

    /// Which of `oids` (full ids) no branch but `own_branch`, no tag, remote branch or backup
    /// of this task holds, in one walk that also fails unless `commit` is a commit.
    fn unsaved_among(
        &self,
        oids: &[&str],
        own_branch: &str,
        backup_ref: &str,
        commit: &str,
    ) -> Result<HashSet<String>, GitError> {
        let mut revs = Vec::with_capacity(oids.len() + 1);
        for o in oids {
            revs.push(safe_rev(o)?.to_string());
        }
        revs.push(format!("{}^{{commit}}", safe_rev(commit)?));
        let out = self
            .git()
            .arg("rev-list")
            .args(&revs)
            .arg("--not")
            .arg(format!("--exclude={own_branch}"))
            .args(["--branches", "--tags", "--remotes"])
            .arg(format!("--glob={}", backup_scope(backup_ref)))
            .run()?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// `git worktree prune`: forgets worktrees whose directory is gone. Returns what git said it
    /// removed (or would, with `dry_run`), one line each.
    pub fn prune_worktrees(&self, dry_run: bool) -> Result<Vec<String>, GitError> {
        let mut g = self.git().args(["worktree", "prune", "--verbose"]);
        if dry_run {
            g = g.arg("--dry-run");
        }
        let shown = ["worktree", "prune"];
        let out = g.output()?;
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(GitError::exit(
                shown.iter().map(|s| s.to_string()).collect(),
                out.status.code(),
                said,
            ));
        }
        Ok(said.lines().map(str::to_string).collect())
    }

    /// Backs `oid` up under `backup_ref` when no branch (but `own_branch`, about to go), tag,
    /// remote branch or backup of this task holds it: one walk.
    fn keep_unless_reachable(
        &self,
        oid: &str,
        own_branch: Option<&str>,
        backup_ref: &str,
        done: &mut Retired,
    ) -> Result<(), GitError> {
        let exclude = own_branch.map(|b| format!("--exclude={b}"));
        let glob = format!("--glob={}", backup_scope(backup_ref));
        let mut also: Vec<&str> = exclude.iter().map(String::as_str).collect();
        also.extend(["--branches", "--tags", "--remotes", &glob]);
        if self.has_unsaved_commits(oid, &also)? {
            done.backups.push(self.backup_ref(backup_ref, oid)?);
        }
        Ok(())
    }

    /// Backs up whatever a worktree holds that nothing else does, then removes it.
    pub(super) fn retire(&self, wt: &WorktreeInfo, backup_ref: &str) -> Result<Retired, GitError> {
        let mut done = self.keep_worktree_work(wt, backup_ref)?;
        self.remove_kept_worktree(wt)?;
        done.worktree_removed = true;
        Ok(done)
    }

    /// Removes a worktree whose work `keep_worktree_work` has kept.
    pub(super) fn remove_kept_worktree(&self, wt: &WorktreeInfo) -> Result<(), GitError> {
        let removed = self
            .git()
            .args(["worktree", "remove", "--force", "--force"])
            .arg(&wt.path)
            .run();
        if let Err(e) = removed {
            if wt.path.exists() {
                return Err(e);
            }
            // Its directory is already gone: only the bookkeeping is left.
            self.git().args(["worktree", "prune"]).run()?;
        }
        Ok(())
    }

    /// Records what a worktree holds that nothing else does — uncommitted files as a snapshot
    /// commit, its HEAD or that snapshot under `backup_ref` unless a branch, tag or backup has
    /// it — so the worktree can then be removed or reset without losing work.
    pub(super) fn keep_worktree_work(
        &self,
        wt: &WorktreeInfo,
        backup_ref: &str,
    ) -> Result<Retired, GitError> {
        let mut done = Retired::default();
        let mut keep = wt.head.clone();
        if let Some(snap) = self.snapshot_leaving(wt)? {
            done.snapshot = Some(snap.clone());
            keep = Some(snap);
        }
        if let Some(tip) = keep {
            // The worktree's own branch does not count as a safe place: it is about to be reset
            // or deleted.
            let own = wt
                .branch
                .as_deref()
                .and_then(|b| b.strip_prefix("refs/heads/"));
            self.keep_unless_reachable(&tip, own, backup_ref, &mut done)?;
        }
        Ok(done)
    }

    /// Before a worktree is removed or parked: its uncommitted files as a snapshot commit
    /// (None when clean or gone), its change journal ended.
    /// `snapshot_leaving` for a worktree whose change was collected (`collected`, the commit
    /// the collect left checked out): when HEAD is still there and the change journal saw
    /// nothing written since that collect's commit staged everything (`Listed`, and empty: no
    /// event, no other git writing the index), there is nothing to keep and the `git status`
    /// that would say so is not run.
    fn snapshot_leaving_collected(
        &self,
        wt: &WorktreeInfo,
        collected: &str,
    ) -> Result<Option<String>, GitError> {
        if wt.head.as_deref() == Some(collected) {
            let answer = self.watches.answer(&wt.path, true);
            if matches!(answer.map(|a| a.new_files), Some(NewFiles::Listed(p)) if p.is_empty()) {
                self.watches.forget(&wt.path);
                return Ok(None);
            }
        }
        self.snapshot_leaving(wt)
    }

    fn snapshot_leaving(&self, wt: &WorktreeInfo) -> Result<Option<String>, GitError> {
        // Whatever comes next (removal, the pool) ends the attempt's change journal.
        self.watches.forget(&wt.path);
        if !wt.path.exists() {
            return Ok(None);
        }
        match self.snapshot(&wt.path) {
            // A worktree locked while "initializing" was interrupted by a crash in `worktree
            // add`: no agent ever ran there, so there is nothing of value.
            Err(e) if wt.locked => {
                tracing::warn!(error = %e, "git: could not snapshot a half-made worktree");
                Ok(None)
            }
            other => other,
        }
    }

    /// Records uncommitted files of `worktree` (tracked changes and untracked, not ignored,
    /// files) as a commit on top of its HEAD, without moving any ref. None when it is clean.
    fn snapshot(&self, worktree: &Path) -> Result<Option<String>, GitError> {
        // One status call answers "anything to keep?" in the usual (clean) case.
        if !self.is_dirty(worktree)? {
            return Ok(None);
        }
        let g = || self.git_in(worktree);
        g().args(["add", "-A"]).run()?;
        let tree = g().arg("write-tree").run()?;
        let commit = g()
            .args(["commit-tree", &tree, "-p", "HEAD", "-m"])
            .arg("orch-tui: snapshot of uncommitted work found in a worktree being removed")
            .env("GIT_AUTHOR_NAME", SNAPSHOT_NAME)
            .env("GIT_AUTHOR_EMAIL", SNAPSHOT_EMAIL)
            .env("GIT_COMMITTER_NAME", SNAPSHOT_NAME)
            .env("GIT_COMMITTER_EMAIL", SNAPSHOT_EMAIL)
            .run()?;
        Ok(Some(commit))
    }
}
