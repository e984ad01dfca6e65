//! Taking a worktree from the pool for an attempt: an idle one moved to the attempt's path and
//! the task branch made there at the base, with as few git processes as the usual case allows
//! (they are the dispatch's latency: docs/benchmarks.md, "Dispatch").

use std::path::{Path, PathBuf};

use super::{CLEANED, POOL_LOCK, Pool, Taken, by_hand, ready, take_cleaned};
use crate::git::{GitError, Repo, safe_rev};

/// An idle worktree claimed: where it was, and whether this process cleaned it for the pool's
/// caches (`Some`, with the commit it is checked out at when known).
type Claimed = (PathBuf, Option<Option<String>>);

/// A pooled worktree being taken for an attempt: where to, on which branch and base.
struct Taking<'a> {
    pool: &'a Pool,
    path: &'a Path,
    branch: &'a str,
    base: &'a str,
    backup_ref: &'a str,
}

/// Milliseconds between two instants, for the steps a dispatch logs (`setup steps` in
/// `engine::jobs`; the throughput bench splits `assigned -> running` by them).
/// How long a take waits for an idle worktree being checked out at its base before it checks
/// one out itself: far above a refresh here (tens of ms; only the files that differ are
/// written), and short enough that a stuck one costs a dispatch little.
const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn ms(a: std::time::Instant, b: std::time::Instant) -> f64 {
    (b - a).as_secs_f64() * 1e3
}

impl Repo {
    /// The worktree for an attempt at `path`, on `branch` (created, or reset after its commits
    /// that `base` lacks are kept under `backup_ref`), with `base` checked out: an idle one from
    /// `pool` when there is one, else a new one (`create_worktree`). What the pool gives holds
    /// no untracked file but the opted-in caches.
    pub fn take_worktree(
        &self,
        pool: &Pool,
        path: &Path,
        branch: &str,
        base: &str,
        backup_ref: &str,
    ) -> Result<Taken, GitError> {
        self.take_worktree_releasing(pool, path, branch, base, backup_ref, &|| Ok(()))
    }

    /// `take_worktree` for a branch another worktree may still have checked out (an earlier
    /// attempt's, which git refuses to check out twice): `release` takes it off that one,
    /// keeping its work. It is called only when needed — before a new worktree is made, or
    /// when the checkout in a pooled one failed — so the usual dispatch lists no worktree.
    pub fn take_worktree_releasing(
        &self,
        pool: &Pool,
        path: &Path,
        branch: &str,
        base: &str,
        backup_ref: &str,
        release: &dyn Fn() -> Result<(), GitError>,
    ) -> Result<Taken, GitError> {
        let path = &self.root.join(path);
        let base = safe_rev(base)?;
        let create = || {
            release()?;
            self.create_watched(path, branch, base, backup_ref)
        };
        if path.exists() {
            // Something is in the way (a crash's leftover): the usual path deals with it.
            return create();
        }
        let (idle, cleaned) = match self.claim_idle(pool, path, base) {
            Ok(Some(idle)) => idle,
            Ok(None) => return create(),
            Err(e) => {
                // git refuses to move some worktrees (one holding submodules): the pool is only
                // a shortcut, so the attempt gets a new worktree all the same.
                tracing::warn!(error = %e, "git: could not take a pooled worktree; creating a new one");
                return create();
            }
        };
        // Watched before the checkout, which then records the journal's first token in the
        // index while it refreshes anyway: the first commit already skips the scan.
        let t0 = std::time::Instant::now();
        self.watch_worktree(path);
        let t1 = std::time::Instant::now();
        tracing::info!(target: "orch_tui::setup", "pool take watch_ms={:.2}", ms(t0, t1));
        // Readied at the base (`ready.rs`) and cleaned: only the branch is missing, and a new
        // one needs no git process.
        if cleaned
            .as_ref()
            .is_some_and(|head| head.as_deref() == Some(base))
            && by_hand::new_branch_at_head(path, branch, base)
        {
            tracing::info!(target: "orch_tui::setup", "pool take branch_by_hand_ms={:.2}", ms(t1, std::time::Instant::now()));
            return Ok(Taken::Reused);
        }
        let cleaned = cleaned.is_some();
        let taken = Taking {
            pool,
            path,
            branch,
            base,
            backup_ref,
        };
        let reset = self.reset_taken(&taken, cleaned, release);
        let t2 = std::time::Instant::now();
        tracing::info!(target: "orch_tui::setup", "pool take checkout_ms={:.2}", ms(t1, t2));
        match reset {
            Ok(()) => Ok(Taken::Reused),
            Err(e) => {
                // Its state is unknown now; it held nothing of value (everything in the pool
                // was kept before it got there): make a fresh one instead.
                tracing::warn!(error = %e, from = %idle.display(), "git: a pooled worktree could not be reset; creating a new one");
                let _ = self
                    .git()
                    .args(["worktree", "remove", "--force", "--force"])
                    .arg(path)
                    .run();
                create()
            }
        }
    }

    /// A new worktree (`create_worktree`), its changes journaled from the start.
    fn create_watched(
        &self,
        path: &Path,
        branch: &str,
        base: &str,
        backup_ref: &str,
    ) -> Result<Taken, GitError> {
        let t0 = std::time::Instant::now();
        self.create_worktree(path, branch, base, backup_ref)?;
        tracing::info!(target: "orch_tui::setup", "pool take created_ms={:.2}", ms(t0, std::time::Instant::now()));
        self.watch_worktree(path);
        Ok(Taken::Created)
    }

    /// Moves an idle worktree to `path` under the pool lock (one at `base` if there is one).
    /// Returns where it came from, and whether this process cleaned it for the pool's caches
    /// (`Some`, with the commit it is checked out at when known).
    fn claim_idle(
        &self,
        pool: &Pool,
        path: &Path,
        base: &str,
    ) -> Result<Option<Claimed>, GitError> {
        let asked = std::time::Instant::now();
        let mut one = POOL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let locked = std::time::Instant::now();
        tracing::debug!(%base, "git: taking a pooled worktree");
        if !self
            .known_idle(pool, base)
            .is_some_and(|(_, at_base)| at_base)
        {
            let dir = self.pool_dir(pool);
            let dir = dir.canonicalize().unwrap_or(dir);
            let (again, waited) = ready::wait_for_refresh(one, &dir, base, REFRESH_WAIT);
            one = again;
            if waited {
                tracing::info!(target: "orch_tui::setup", "pool take refresh_wait_ms={:.2}", ms(locked, std::time::Instant::now()));
            }
        }
        let claiming = std::time::Instant::now();
        let claimed = self.claim_locked(pool, path, base);
        drop(one);
        tracing::info!(target: "orch_tui::setup", "pool take lock_ms={:.2} claim_ms={:.2}", ms(asked, locked), ms(claiming, std::time::Instant::now()));
        claimed
    }

    fn claim_locked(
        &self,
        pool: &Pool,
        path: &Path,
        base: &str,
    ) -> Result<Option<Claimed>, GitError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                GitError::ours(
                    &["worktree", "move"],
                    format!("cannot create {}: {e}", parent.display()),
                )
            })?;
        }
        // One this process parked (or made) and cleaned is idle until this lock hands it out:
        // no need to ask git which ones are. It is still checked by the move itself.
        if let Some((known, _)) = self.known_idle(pool, base) {
            let cleaned = take_cleaned(&known, pool);
            if by_hand::move_worktree(&known, path) || self.move_worktree(&known, path).is_ok() {
                return Ok(Some((known, cleaned)));
            }
            // Gone or changed behind our back (a `gc`, someone's `git worktree lock`): ask git.
            tracing::debug!(path = %known.display(), "git: a known idle worktree could not be moved; listing the pool");
        }
        let mut idle = self.pool_idle(pool)?.into_iter();
        let Some(idle) = idle.find(|w| !ready::refreshing(&w.path)) else {
            return Ok(None);
        };
        // Asked while it is still there to be compared with what was parked.
        let cleaned = take_cleaned(&idle.path, pool);
        if let Err(e) = self.move_worktree(&idle.path, path) {
            // It would fail the same way next time; it holds nothing of value.
            let _ = self
                .git()
                .args(["worktree", "remove", "--force", "--force"])
                .arg(&idle.path)
                .run();
            return Err(e);
        }
        Ok(Some((idle.path, cleaned)))
    }

    fn move_worktree(&self, from: &Path, to: &Path) -> Result<(), GitError> {
        self.git()
            .args(["worktree", "move"])
            .arg(from)
            .arg(to)
            .run()
            .map(|_| ())
    }

    /// An idle worktree of `pool` this process cleaned (parked or made), still there, one
    /// checked out at `base` first (then true). Called under the pool lock.
    fn known_idle(&self, pool: &Pool, base: &str) -> Option<(PathBuf, bool)> {
        let dir = self.pool_dir(pool);
        let dir = dir.canonicalize().unwrap_or(dir);
        let c = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
        let mut ours = c
            .iter()
            .filter(|k| k.reuse == pool.reuse)
            .filter(|k| k.path.parent() == Some(dir.as_path()) && k.path.exists());
        let first = ours.next()?;
        let at_base = std::iter::once(first)
            .chain(ours)
            .find(|k| k.head.as_deref() == Some(base));
        Some(match at_base {
            Some(k) => (k.path.clone(), true),
            None => (first.path.clone(), false),
        })
    }

    /// In a worktree just taken from the pool: the branch at `base` checked out (only files
    /// that differ are written), then nothing untracked but the opted-in caches (`cleaned`:
    /// this process cleaned it so when it parked it).
    fn reset_taken(
        &self,
        t: &Taking,
        cleaned: bool,
        release: &dyn Fn() -> Result<(), GitError>,
    ) -> Result<(), GitError> {
        let fsmonitor = self.fsmonitor_args(t.path).unwrap_or_default();
        let checkout = |flag: &str| {
            self.git_in(t.path)
                .args(&fsmonitor)
                // Marks where this attempt's visits start in the worktree's reflog (collect).
                .env(
                    "GIT_REFLOG_ACTION",
                    crate::git::collect::ATTEMPT_START_REFLOG,
                )
                .args(["checkout", "--quiet", "--force", "--no-track", flag])
                .args([t.branch, t.base])
                .run()
                .map(|_| ())
        };
        // A new task's branch, the usual case: `-b` refuses an existing branch before it
        // touches anything, so only then is the branch looked at.
        if let Err(first) = checkout("-b") {
            // The branch exists (an earlier attempt), another worktree may have it checked out,
            // or git tripped over a worktree being added beside this one (it reads every
            // worktree's files, and a half-written one fails it): keep what the branch holds,
            // reset it; then release it from another worktree and try once more.
            tracing::debug!(error = %first, "git: checkout -b in a pooled worktree failed");
            self.keep_branch_commits(t)?;
            if let Err(e) = checkout("-B") {
                tracing::debug!(error = %e, "git: checkout -B failed; releasing the branch");
                release()?;
                self.keep_branch_commits(t)?;
                checkout("-B")?;
            }
        }
        // Cleaned when it was given back; again here if another process parked it (its
        // `[worktree] reuse` may have been another).
        if cleaned {
            return Ok(());
        }
        self.clean_untracked(t.pool, t.path)
    }

    /// Before the task branch is reset to the base: its commits the base lacks go under the
    /// backup ref.
    fn keep_branch_commits(&self, t: &Taking) -> Result<(), GitError> {
        let refname = format!("refs/heads/{}", t.branch);
        if let Some(old) = self.rev_parse(&refname)?
            && self.has_unsaved_commits(&old, &[t.base])?
        {
            self.backup_ref(t.backup_ref, &old)?;
        }
        Ok(())
    }
}
