//! A pool of ready worktrees, so an attempt's worktree costs what changed since it was last used
//! instead of a full checkout.
//!
//! `git worktree add` writes every file of the tree: seconds on a repository of 100,000 files.
//! A worktree given back after an attempt is kept, clean, under the pool's folder; the next
//! attempt moves it to its own path (`git worktree move`, a rename) and checks its base out
//! there, which rewrites only the files that differ. Nothing of the previous attempt comes
//! along: its work is kept first exactly as when a worktree is removed (snapshot, backup ref),
//! then tracked files are reset and every untracked file goes — ignored ones too, except the
//! build caches the user opted into (`[worktree] reuse`, e.g. `target`), which is the point of
//! reusing a worktree for a build.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::retire::Retired;
use super::worktree::WorktreeInfo;
use super::{GitError, Repo, safe_rev};

mod by_hand;
mod ready;

pub use ready::{Readied, takes_waiting_for_refresh};
mod take;

/// Idle worktrees kept for reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Where idle worktrees wait (`.orch/pool`); relative paths are relative to the repository.
    pub dir: PathBuf,
    /// Ignored paths (relative to a worktree's top, e.g. `target`, `web/node_modules`) a reused
    /// worktree keeps: `[worktree] reuse`. Untracked files that are not ignored never stay.
    pub reuse: Vec<String>,
    /// At most this many idle worktrees; a worktree given back to a full pool is removed.
    pub max_idle: usize,
    /// Idle worktrees left when a run ends (`trim_pool`; `[worktree] keep_idle`).
    pub keep_idle: usize,
}

/// What `take_worktree` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// An idle worktree was moved to the path and reset to the base.
    Reused,
    /// The pool was empty: a new worktree (a full checkout).
    Created,
}

/// Only one thread at a time picks an idle worktree or a free name in the pool: two setups
/// must not take the same one. (The supervisor lock makes this the only process doing so.)
static POOL_LOCK: Mutex<()> = Mutex::new(());

/// An idle worktree this process cleaned itself (parked or made), with the `[worktree] reuse`
/// it was cleaned for and the commit it is checked out at when known: taking one of those
/// needs no second clean, and one already at the base needs no checkout (`take.rs`), which
/// keeps git processes off the path from dispatch to a running agent. Anything else (left by
/// an earlier process, or cleaned for other caches) is cleaned again when taken.
struct Known {
    path: PathBuf,
    reuse: Vec<String>,
    head: Option<String>,
}

static CLEANED: Mutex<Vec<Known>> = Mutex::new(Vec::new());

fn mark_cleaned(path: &Path, pool: &Pool, head: Option<&str>) {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut c = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
    c.retain(|k| k.path != path);
    c.push(Known {
        path,
        reuse: pool.reuse.clone(),
        head: head.map(str::to_string),
    });
}

/// Whether this process cleaned the idle worktree at `path` for `pool`'s caches (and forgets
/// it): `Some(the commit it is checked out at, when known)`.
fn take_cleaned(path: &Path, pool: &Pool) -> Option<Option<String>> {
    let mut c = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
    let i = c
        .iter()
        .position(|k| super::worktree::same_path(&k.path, path))?;
    let k = c.swap_remove(i);
    (k.reuse == pool.reuse).then_some(k.head)
}

impl Repo {
    fn pool_dir(&self, pool: &Pool) -> PathBuf {
        self.root.join(&pool.dir)
    }

    /// The idle worktrees of `pool`: registered with git, directory present, under its folder.
    pub fn pool_idle(&self, pool: &Pool) -> Result<Vec<WorktreeInfo>, GitError> {
        Ok(self.idle_in(pool, self.worktrees()?))
    }

    /// The idle worktrees of `pool` among `all` (`worktrees()`, taken under the pool lock).
    fn idle_in(&self, pool: &Pool, all: Vec<WorktreeInfo>) -> Vec<WorktreeInfo> {
        self.pool_worktrees_in(pool, all)
            .into_iter()
            .filter(|w| w.path.exists() && !w.locked)
            .collect()
    }

    /// Every worktree registered under the pool's folder, half-made (locked) or gone ones too.
    fn pool_worktrees(&self, pool: &Pool) -> Result<Vec<WorktreeInfo>, GitError> {
        Ok(self.pool_worktrees_in(pool, self.worktrees()?))
    }

    fn pool_worktrees_in(&self, pool: &Pool, all: Vec<WorktreeInfo>) -> Vec<WorktreeInfo> {
        let dir = self.pool_dir(pool);
        let dir = dir.canonicalize().unwrap_or(dir);
        all.into_iter()
            .skip(1)
            .filter(|w| {
                let parent = w
                    .path
                    .parent()
                    .map(|p| p.canonicalize().unwrap_or(p.into()));
                parent.as_deref() == Some(dir.as_path())
            })
            .collect()
    }

    /// Adds idle worktrees checked out at `rev` until the pool holds `max_idle` (full checkouts:
    /// run it when nothing waits on it, e.g. at the start of a run). Returns how many it made.
    pub fn fill_pool(&self, pool: &Pool, rev: &str) -> Result<usize, GitError> {
        self.fill_pool_to(pool, rev, pool.max_idle)
    }

    /// `fill_pool` up to `want` idle worktrees (at most `max_idle`).
    pub fn fill_pool_to(&self, pool: &Pool, rev: &str, want: usize) -> Result<usize, GitError> {
        let rev = safe_rev(rev)?;
        // Known by its commit, a worktree made here can be taken without a checkout.
        let oid = self.rev_parse(&format!("{rev}^{{commit}}"))?;
        self.fill_up(pool, oid.as_deref().unwrap_or(rev), want, usize::MAX)
    }

    /// Makes up to `at_most` idle worktrees at the commit `oid` while the pool holds fewer
    /// than `want` (at most `max_idle`).
    fn fill_up(
        &self,
        pool: &Pool,
        oid: &str,
        want: usize,
        at_most: usize,
    ) -> Result<usize, GitError> {
        let want = want.min(pool.max_idle);
        let mut made = 0;
        while made < at_most {
            let (path, registered) = {
                let _one = POOL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                // One listing answers both questions: nothing else changes the pool while
                // the lock is held.
                let all = self.worktrees()?;
                if self.idle_in(pool, all.clone()).len() >= want {
                    return Ok(made);
                }
                let path = self.free_pool_name(pool, &all)?;
                // Registered at once but locked, so no one takes it half checked out; the
                // checkout itself runs outside git's worktree bookkeeping (which other setups
                // wait on meanwhile). In one rename when it can be (`worktree_new.rs`: an
                // agent's git listing worktrees meanwhile never reads it half written).
                let registered = self.register_worktree(&path, oid);
                if registered.is_none() {
                    self.git()
                        .args(["worktree", "add", "--quiet", "--no-checkout", "--detach"])
                        .args(["--lock", "--reason", "orch-tui: filling the pool"])
                        .arg(&path)
                        .arg(oid)
                        .run()?;
                }
                (path, registered)
            };
            let filled = self
                .git_in(&path)
                .args(["reset", "--quiet", "--hard"])
                .run()
                .and_then(|_| match &registered {
                    Some(r) => {
                        r.unlock();
                        Ok(String::new())
                    }
                    None => self.git().args(["worktree", "unlock"]).arg(&path).run(),
                });
            if let Err(e) = filled {
                match registered {
                    Some(r) => r.unregister(),
                    None => {
                        let _ = self
                            .git()
                            .args(["worktree", "remove", "--force", "--force"])
                            .arg(&path)
                            .run();
                    }
                }
                return Err(e);
            }
            mark_cleaned(&path, pool, Some(oid));
            tracing::debug!(path = %path.display(), "git: pooled a new worktree");
            made += 1;
        }
        Ok(made)
    }

    /// Instead of removing the worktree at `path`: keeps its work as removing it would
    /// (snapshot of uncommitted files, backup ref for what nothing else holds), then resets it,
    /// removes every untracked file but the opted-in ignored caches, and parks it in the pool —
    /// or removes it when the pool is full or it cannot be cleaned. Missing = nothing done.
    pub fn give_back_worktree(
        &self,
        pool: &Pool,
        path: &Path,
        backup_ref: &str,
    ) -> Result<Retired, GitError> {
        match self.find_worktree(&self.root.join(path))? {
            Some(wt) => self.retire_or_park(&wt, backup_ref, Some(pool)),
            None => Ok(Retired::default()),
        }
    }

    /// `retire_merged`, with the worktree given back to `pool` instead of removed.
    pub fn retire_merged_to_pool(
        &self,
        pool: &Pool,
        worktree: &Path,
        task_branch: &str,
        merged_commit: &str,
        agent_commit: &str,
        backup_ref: &str,
    ) -> Result<Retired, GitError> {
        self.retire_merged_with(
            Some(pool),
            worktree,
            task_branch,
            merged_commit,
            agent_commit,
            backup_ref,
        )
    }

    /// Keeps the worktree's work, then parks it in `pool` (when given, with room, and it can be
    /// cleaned) or removes it.
    pub(super) fn retire_or_park(
        &self,
        wt: &WorktreeInfo,
        backup_ref: &str,
        pool: Option<&Pool>,
    ) -> Result<Retired, GitError> {
        let mut done = self.keep_worktree_work(wt, backup_ref)?;
        self.park_or_remove(wt, pool, done.snapshot.is_none())?;
        done.worktree_removed = true;
        Ok(done)
    }

    /// Parks a worktree whose work is kept in `pool` (when given, with room, and it can be
    /// cleaned), else removes it. `at_head`: it was just found holding exactly its HEAD's files
    /// in its index and tracked files (nothing to snapshot).
    pub(super) fn park_or_remove(
        &self,
        wt: &WorktreeInfo,
        pool: Option<&Pool>,
        at_head: bool,
    ) -> Result<(), GitError> {
        if let Some(pool) = pool
            && wt.path.exists()
            && !wt.locked
        {
            match self.park(pool, &wt.path, at_head) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, path = %wt.path.display(), "git: could not pool a worktree; removing it");
                }
            }
        }
        self.remove_kept_worktree(wt)
    }

    /// Detached (so the task branch can go), reset, cleaned, moved into the pool. False when the
    /// pool is full. Its work was kept before; `at_head` as in `park_or_remove`.
    fn park(&self, pool: &Pool, path: &Path, at_head: bool) -> Result<bool, GitError> {
        if pool.max_idle == 0 {
            return Ok(false);
        }
        // Detached so the task branch can go, and reset. Already at its HEAD, only HEAD has to
        // change: by hand when plain (one git process fewer).
        if !(at_head && by_hand::detach_head(path)) {
            self.git_in(path)
                .args(["checkout", "--quiet", "--force", "--detach"])
                .run()?;
        }
        self.clean_untracked(pool, path)?;
        let _one = POOL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // One listing for both: the lock keeps the pool as it was listed.
        let all = self.worktrees()?;
        if self.idle_in(pool, all.clone()).len() >= pool.max_idle {
            return Ok(false);
        }
        let to = self.free_pool_name(pool, &all)?;
        if !by_hand::move_worktree(path, &to) {
            self.git()
                .args(["worktree", "move"])
                .arg(path)
                .arg(&to)
                .run()?;
        }
        mark_cleaned(&to, pool, None);
        Ok(true)
    }

    /// Removes every worktree of the pool (`orch-tui gc`, or a change of repository layout),
    /// with the ones a crash left half made (still locked by `fill_pool`): call it when no
    /// supervisor runs. They hold nothing of value. Returns how many went.
    pub fn drain_pool(&self, pool: &Pool) -> Result<usize, GitError> {
        self.remove_pool_but(pool, 0)
    }

    /// When a run ends: the pool's worktrees removed but `pool.keep_idle` idle ones (clean, at
    /// an earlier tip: the next run's keeper moves them to its tip, and its first takes need no
    /// full checkout). Half-made ones go. Returns how many went.
    pub fn trim_pool(&self, pool: &Pool) -> Result<usize, GitError> {
        self.remove_pool_but(pool, pool.keep_idle.min(pool.max_idle))
    }

    fn remove_pool_but(&self, pool: &Pool, keep: usize) -> Result<usize, GitError> {
        let _one = POOL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let all = self.pool_worktrees(pool)?;
        let mut kept = 0;
        let mut removed = 0;
        for w in &all {
            let present = w.path.exists();
            if present && !w.locked && kept < keep {
                kept += 1;
                continue;
            }
            if present {
                self.git()
                    .args(["worktree", "remove", "--force", "--force"])
                    .arg(&w.path)
                    .run()?;
            }
            removed += 1;
        }
        if removed > 0 {
            // Those whose folder is already gone: only git's bookkeeping is left.
            self.git().args(["worktree", "prune"]).run()?;
        }
        Ok(removed)
    }

    /// Removes untracked files that are not ignored, then ignored ones outside `pool.reuse`.
    fn clean_untracked(&self, pool: &Pool, path: &Path) -> Result<(), GitError> {
        // -ff: nested repositories an agent cloned go too.
        if pool.reuse.is_empty() {
            // No cache kept: untracked and ignored files alike go, which is what the two passes
            // below do together; one git process instead of two.
            return self
                .git_in(path)
                .args(["clean", "-ffdxq"])
                .run()
                .map(|_| ());
        }
        self.git_in(path).args(["clean", "-ffdq"]).run()?;
        // -X removes only ignored files; a command-line pattern beats .gitignore, so `!/target/`
        // takes an opted-in cache out of what is removed.
        let keep: Vec<String> = pool
            .reuse
            .iter()
            .map(|r| format!("--exclude=!/{}", r.trim_matches('/')))
            .collect();
        self.git_in(path)
            .args(["clean", "-ffdXq"])
            .args(&keep)
            .run()
            .map(|_| ())
    }

    /// A path in the pool's folder that no worktree of `all` (`worktrees()`) or file uses.
    fn free_pool_name(&self, pool: &Pool, all: &[WorktreeInfo]) -> Result<PathBuf, GitError> {
        let dir = self.pool_dir(pool);
        // Private like the rest of `.orch/` (worktrees can hold copied secrets such as `.env`).
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                GitError::ours(
                    &["worktree", "add"],
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        // A worktree whose directory vanished still holds its name until pruned.
        (0..10_000)
            .map(|n| dir.join(format!("idle-{n}")))
            .find(|p| !p.exists() && !all.iter().any(|r| super::worktree::same_path(&r.path, p)))
            .ok_or_else(|| {
                GitError::ours(
                    &["worktree", "add"],
                    format!("{} is full of leftovers; remove them", dir.display()),
                )
            })
    }
}
