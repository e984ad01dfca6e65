//! `GitOps` on a real repository (`crate::git::Repo`).

use std::collections::BTreeSet;
use std::path::Path;

use super::world::{BranchAt, GitOps};
use crate::core::domain::AttemptNo;
use crate::core::supervisor::{Change, Collect, Stray, Tidy, WorktreeFact};
use crate::git::{GitError, Pool, Replay, Repo, backup_ref_name};

pub struct RealGit {
    pub repo: Repo,
    /// `.orch/worktrees`, where every attempt's worktree lives.
    pub worktrees_dir: String,
    /// Ready worktrees reused instead of a full checkout (`git::pool`); `None`: every attempt
    /// gets a fresh `git worktree add` and a finished one is removed.
    pub pool: Option<Pool>,
}

impl RealGit {
    /// The pool the engine uses: up to two idle worktrees per slot under `.orch/pool`, keeping
    /// the build caches `[worktree] reuse` names. Two: a finished task holds its worktree
    /// through review and the merge queue while its slot already runs the next one, so with
    /// one per slot a full pool removed worktrees that the next burst of dispatches then made
    /// again with a full checkout (42 of 200 dispatches in the throughput bench).
    pub fn default_pool(slots: usize, w: &crate::core::config::WorktreeSettings) -> Pool {
        Pool {
            dir: ".orch/pool".into(),
            reuse: w.reuse.clone(),
            max_idle: slots.saturating_mul(2),
            keep_idle: w.keep_idle,
        }
    }
}

/// `TASK-N` → (task, N); `_recheck` and other names are not attempts.
fn parse_worktree_name(name: &str) -> Option<(String, Option<AttemptNo>)> {
    if name.starts_with('_') {
        return None;
    }
    match name.rsplit_once('-') {
        Some((task, n)) if n.parse::<u32>().is_ok() => {
            Some((task.to_string(), n.parse().ok().map(AttemptNo)))
        }
        _ => Some((name.to_string(), None)),
    }
}

impl RealGit {
    /// An earlier attempt's worktree still has the task branch checked out (git refuses to
    /// check a branch out twice): remove it, after its tip is kept under that attempt's backup.
    fn release_branch(&self, path: &str, branch: &str, prefix: &str) -> Result<(), GitError> {
        let full = format!("refs/heads/{branch}");
        for w in self.repo.worktrees()?.iter().skip(1) {
            if w.branch.as_deref() != Some(full.as_str()) || w.path == Path::new(path) {
                continue;
            }
            let name = w
                .path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let old = parse_worktree_name(&name)
                .and_then(|(_, n)| n)
                .map_or("stale".to_string(), |n| n.to_string());
            self.repo
                .remove_worktree(&w.path, &format!("{prefix}/{old}"))?;
        }
        Ok(())
    }
}

impl GitOps for RealGit {
    fn rev_parse(&self, rev: &str) -> Result<Option<String>, GitError> {
        self.repo.rev_parse(rev)
    }

    fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, GitError> {
        self.repo.is_ancestor(a, b)
    }

    fn branch_names(&self) -> Result<Vec<String>, GitError> {
        Ok(self.repo.branch_names()?.into_iter().collect())
    }

    fn branch_against(&self, refname: &str, onto: &str) -> Result<BranchAt, GitError> {
        if let Some(tip) = self.repo.tip_unless_in(refname, onto)? {
            return Ok(BranchAt::Tip(tip));
        }
        // Rare (the work is merged already, or the branch went): which of the two.
        Ok(match self.repo.rev_parse(refname)? {
            Some(_) => BranchAt::InOnto,
            None => BranchAt::Missing,
        })
    }

    fn prepare_worktree(
        &self,
        path: &str,
        branch: &str,
        base: &str,
        backup_prefix: &str,
    ) -> Result<(), GitError> {
        let n = Path::new(path)
            .file_name()
            .and_then(|f| parse_worktree_name(&f.to_string_lossy()))
            .and_then(|(_, n)| n)
            .map_or("stale".to_string(), |n| n.to_string());
        let backup = format!("{backup_prefix}/{n}");
        match &self.pool {
            // The branch is released from an earlier attempt's worktree only when the pooled
            // checkout finds it held, or before a new worktree is made: no listing otherwise.
            Some(pool) => self
                .repo
                .take_worktree_releasing(pool, Path::new(path), branch, base, &backup, &|| {
                    self.release_branch(path, branch, backup_prefix)
                })
                .map(|_| ()),
            None => {
                self.release_branch(path, branch, backup_prefix)?;
                self.repo
                    .create_worktree(Path::new(path), branch, base, &backup)?;
                self.repo.watch_worktree(Path::new(path));
                Ok(())
            }
        }
    }

    fn prepare_worktree_listing(
        &self,
        path: &str,
        branch: &str,
        base: &str,
        backup_prefix: &str,
    ) -> Result<Option<Vec<String>>, GitError> {
        // `for-each-ref` on a thread of its own while the worktree is taken: one git process
        // less on the way to the agent. Whether it sees the task branch made meanwhile does
        // not matter: collecting never counts `orch/` branches as the agent's.
        std::thread::scope(|scope| {
            let names = std::thread::Builder::new()
                .name("branch-names".into())
                .spawn_scoped(scope, || self.branch_names());
            let prepared = self.prepare_worktree(path, branch, base, backup_prefix);
            let t0 = std::time::Instant::now();
            let names = match names {
                Ok(h) => h.join().ok(),
                Err(_) => None,
            };
            // Beside the take's own steps (`git::pool::take`), for the bench's split.
            let waited = t0.elapsed().as_secs_f64() * 1e3;
            tracing::info!(target: "orch_tui::setup", "pool take names_wait_ms={waited:.2}");
            prepared?;
            Ok(match names {
                Some(listed) => Some(listed?),
                None => None,
            })
        })
    }

    fn collect(&self, c: &Collect, branches_before: &[String]) -> Result<Change, GitError> {
        let before: BTreeSet<String> = branches_before.iter().cloned().collect();
        let found = self.repo.collect_attempt(&crate::git::Collect {
            worktree: Path::new(&c.worktree),
            task: &c.task,
            attempt: c.n.0,
            task_branch: &c.branch,
            base: &c.base,
            branches_before: &before,
            author_name: &c.author_name,
            author_email: &c.author_email,
            message: &c.message,
        })?;
        let diff_lines = match &found.tip {
            Some(tip) => self.repo.diff_lines(&c.base, tip)?,
            None => 0,
        };
        Ok(Change {
            tip: found.tip,
            diff_lines,
            agent_committed: found.agent_commits > 0,
            strays: found
                .strays
                .into_iter()
                .map(|s| Stray {
                    branch: s.branch.unwrap_or_else(|| "(detached HEAD)".into()),
                    tip: s.tip,
                    backup_ref: s.backup_ref,
                    adopted: s.adopted,
                })
                .collect(),
        })
    }

    fn replay_onto(&self, base: &str, commit: &str, onto: &str) -> Result<Replay, GitError> {
        self.repo.replay_onto(base, commit, onto)
    }

    fn merge_base(&self, a: &str, b: &str) -> Result<String, GitError> {
        self.repo.merge_base(a, b)
    }

    fn checkout_scratch(&self, path: &str, rev: &str) -> Result<(), GitError> {
        self.repo.checkout_scratch(Path::new(path), rev)
    }

    fn drop_scratch(&self, path: &str) -> Result<(), GitError> {
        if Path::new(path).exists() {
            self.repo.drop_scratch_worktree(Path::new(path))
        } else {
            Ok(())
        }
    }

    fn cas_update_ref(&self, refname: &str, new: &str, old: &str) -> Result<bool, GitError> {
        self.repo.cas_update_ref(refname, new, old)
    }

    fn trim_pool(&self) -> Result<(), GitError> {
        match &self.pool {
            Some(pool) => self.repo.trim_pool(pool).map(|_| ()),
            None => Ok(()),
        }
    }

    fn has_pool(&self) -> bool {
        self.pool.is_some()
    }

    fn ready_pool(&self, tip: &str, at_tip: usize) -> Result<bool, GitError> {
        let Some(pool) = &self.pool else {
            return Ok(false);
        };
        // One ready per slot (`default_pool` keeps two per slot, the other half for worktrees
        // given back through review and the merge queue).
        let want = pool.max_idle.div_ceil(2);
        let r = self.repo.ready_one(pool, tip, want, at_tip)?;
        tracing::debug!(made = r.made, refreshed = r.refreshed, "git: pool readied");
        Ok(r != crate::git::Readied::default())
    }

    fn backup_ref(&self, name: &str, oid: &str) -> Result<String, GitError> {
        self.repo.backup_ref(name, oid)
    }

    fn tidy(&self, t: &Tidy) -> Result<(), GitError> {
        let backup = backup_ref_name(&t.task, t.n.map_or(0, |n| n.0));
        let wt = Path::new(&t.worktree);
        let tidied = match (&t.merged, &self.pool) {
            (Some((merged, agent)), Some(pool)) => self
                .repo
                .retire_merged_to_pool(pool, wt, &t.branch, merged, agent, &backup)
                .map(|_| ()),
            (Some((merged, agent)), None) => self
                .repo
                .retire_merged(wt, &t.branch, merged, agent, &backup)
                .map(|_| ()),
            (None, Some(pool)) => self.repo.give_back_worktree(pool, wt, &backup).map(|_| ()),
            (None, None) => self.repo.retire_worktree(wt, &backup).map(|_| ()),
        };
        // Our commits leave git's housekeeping to here, off the merge's path.
        self.repo.housekeeping_after_tidy();
        tidied
    }

    fn diff(&self, base: &str, tip: &str) -> Result<String, GitError> {
        self.repo.diff(base, tip)
    }

    fn orch_worktrees(&self) -> Result<Vec<WorktreeFact>, GitError> {
        let found = self
            .repo
            .orch_worktrees_listed(Path::new(&self.worktrees_dir))?;
        Ok(found
            .iter()
            .filter_map(|w| {
                let (task, n) = w.task_attempt()?;
                Some(WorktreeFact {
                    path: w.path.to_string_lossy().to_string(),
                    task: task.to_string(),
                    n: Some(AttemptNo(n)),
                })
            })
            .collect())
    }
}
