//! Keeping the pool ready off the dispatch path: enough idle worktrees, checked out at the
//! integration tip, so a dispatch moves one and makes its branch without a checkout
//! (`take.rs`). Run from a job whenever a worktree was taken or given back or the tip moved
//! (`engine::pool_keeper`); nothing waits on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{CLEANED, POOL_LOCK, Pool, mark_cleaned, take_cleaned};
use crate::git::{GitError, Repo, safe_rev};

/// Idle worktrees being checked out right now, with the commit each goes to: no take may claim
/// them meanwhile; a take at that commit waits for one instead (`wait_for_refresh`).
static REFRESHING: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
/// Notified, under the pool lock, whenever a refresh ends.
static REFRESHED: Condvar = Condvar::new();
/// Takes waiting for a refresh right now.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Whether the idle worktree at `path` is being refreshed (a take skips it).
pub(super) fn refreshing(path: &Path) -> bool {
    let r = REFRESHING.lock().unwrap_or_else(|e| e.into_inner());
    r.iter()
        .any(|(p, _)| crate::git::worktree::same_path(p, path))
}

fn refreshing_to(dir: &Path, oid: &str) -> bool {
    let r = REFRESHING.lock().unwrap_or_else(|e| e.into_inner());
    r.iter().any(|(p, to)| to == oid && p.parent() == Some(dir))
}

/// How many takes are waiting for an idle worktree being checked out at their base.
pub fn takes_waiting_for_refresh() -> usize {
    WAITING.load(Ordering::Relaxed)
}

/// Under the pool lock (`one`): while an idle worktree of the pool in `dir` is being checked
/// out at `oid`, waits for that to end (the lock released meanwhile), at most `limit`. The
/// tip just moved and the keeper started readying a worktree there when the move was asked:
/// what is left of its checkout is shorter than one of the take's own, which would also
/// compete with it for the cores. Returns the lock and whether it waited.
pub(super) fn wait_for_refresh(
    mut one: MutexGuard<'static, ()>,
    dir: &Path,
    oid: &str,
    limit: Duration,
) -> (MutexGuard<'static, ()>, bool) {
    let end = Instant::now() + limit;
    let mut waited = false;
    while refreshing_to(dir, oid) {
        let Some(left) = end.checked_duration_since(Instant::now()) else {
            break;
        };
        if !waited {
            WAITING.fetch_add(1, Ordering::Relaxed);
            waited = true;
        }
        one = REFRESHED
            .wait_timeout(one, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    if waited {
        WAITING.fetch_sub(1, Ordering::Relaxed);
    }
    (one, waited)
}

/// What `ready_pool` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readied {
    /// New idle worktrees (full checkouts).
    pub made: usize,
    /// Idle worktrees moved to the tip (only the files that differ written).
    pub refreshed: usize,
}

impl Repo {
    /// At least `want` idle worktrees in `pool` (at most its `max_idle`), and up to `want` of
    /// those this process cleaned checked out (detached) at `tip`. A worktree is never handed
    /// out while it is checked out here. Errors leave the pool as usable as before (a
    /// worktree whose refresh failed is cleaned again when taken).
    pub fn ready_pool(&self, pool: &Pool, tip: &str, want: usize) -> Result<Readied, GitError> {
        let mut done = Readied::default();
        loop {
            let one = self.ready_one(pool, tip, want, want)?;
            if one == Readied::default() {
                return Ok(done);
            }
            done.made += one.made;
            done.refreshed += one.refreshed;
        }
    }

    /// One step of `ready_pool` (nothing done: the pool is ready): one idle worktree made at
    /// `tip` while fewer than `want` are idle, else one moved to `tip` (only the files that
    /// differ are written) while fewer than `at_tip` (at most `want`) are there. A caller that
    /// loops on it can change `tip` between steps (the tip moved meanwhile).
    pub fn ready_one(
        &self,
        pool: &Pool,
        tip: &str,
        want: usize,
        at_tip: usize,
    ) -> Result<Readied, GitError> {
        let tip = safe_rev(tip)?;
        let full_oid = matches!(tip.len(), 40 | 64) && tip.bytes().all(|b| b.is_ascii_hexdigit());
        let oid = match full_oid {
            true => tip.to_string(),
            false => match self.rev_parse(&format!("{tip}^{{commit}}"))? {
                Some(oid) => oid,
                None => return Ok(Readied::default()),
            },
        };
        let want = want.min(pool.max_idle);
        // Short first: a dispatch that finds the pool empty makes a full checkout on its path
        // (the listing under the lock is the judge; this process's own count is the hint).
        if self.known_idle_count(pool) < want {
            let made = self.fill_up(pool, &oid, want, 1)?;
            if made > 0 {
                return Ok(Readied { made, refreshed: 0 });
            }
        }
        let Some(path) = self.stale_idle(pool, &oid, at_tip.min(want)) else {
            return Ok(Readied::default());
        };
        tracing::debug!(tip = %oid, path = %path.display(), "git: moving an idle worktree to the tip");
        let moved = self
            .git_in(&path)
            .args(["checkout", "--quiet", "--force", "--detach", &oid])
            .run();
        let _one = POOL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        REFRESHING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(p, _)| p != &path);
        if moved.is_ok() {
            mark_cleaned(&path, pool, Some(&oid));
        }
        REFRESHED.notify_all();
        match moved {
            Ok(_) => Ok(Readied {
                made: 0,
                refreshed: 1,
            }),
            Err(e) => {
                // Left unknown: a take cleans it again (or drops it if that fails too).
                tracing::debug!(error = %e, path = %path.display(), "git: could not move an idle worktree to the tip");
                Err(e)
            }
        }
    }

    /// How many idle worktrees of `pool` this process cleaned and knows.
    fn known_idle_count(&self, pool: &Pool) -> usize {
        let dir = self.root.join(&pool.dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        let c = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
        c.iter()
            .filter(|k| k.reuse == pool.reuse && k.path.parent() == Some(dir.as_path()))
            .count()
    }

    /// An idle worktree this process cleaned, not at `oid`, marked as being refreshed (taken
    /// off the known ones) — while fewer than `want` are at `oid`.
    fn stale_idle(&self, pool: &Pool, oid: &str, want: usize) -> Option<PathBuf> {
        let _one = POOL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.root.join(&pool.dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        let path = {
            let c = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
            let ours: Vec<_> = c
                .iter()
                .filter(|k| k.reuse == pool.reuse && k.path.parent() == Some(dir.as_path()))
                .filter(|k| k.path.exists())
                .collect();
            if ours
                .iter()
                .filter(|k| k.head.as_deref() == Some(oid))
                .count()
                >= want
            {
                return None;
            }
            ours.iter()
                .find(|k| k.head.as_deref() != Some(oid))?
                .path
                .clone()
        };
        take_cleaned(&path, pool)?;
        REFRESHING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((path.clone(), oid.to_string()));
        Some(path)
    }
}
