//! An attempt's work as the supervisor sees it: what it changed (committed by the agent or left
//! uncommitted), and tidying its worktree and branch once the task is finished.

use std::path::Path;

use super::run::Git;
use super::{GitError, Repo};
use crate::core::supervisor::{Change, Collect, Tidy};

impl Repo {
    /// Local branch names (`main`, `orch/x`, ...).
    pub fn branch_names(&self) -> Result<Vec<String>, GitError> {
        let out = Git::new(self.root())
            .args(["for-each-ref", "--format=%(refname:short)", "refs/heads"])
            .run()?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Commit what the agent left uncommitted (as the profile's author, hooks run), then take
    /// everything past the attempt's base as its change — the agent's own commits included.
    pub fn collect_attempt(
        &self,
        c: &Collect,
        _branches_before: &[String],
    ) -> Result<Change, GitError> {
        let wt = Path::new(&c.worktree);
        self.commit_all(wt, &c.author_name, &c.author_email, &c.message)?;
        let head = Git::new(wt).args(["rev-parse", "HEAD"]).run()?;
        if head == c.base || c.base.is_empty() {
            return Ok(Change {
                tip: None,
                diff_lines: 0,
                agent_committed: false,
                strays: Vec::new(),
            });
        }
        let commits = self.commits_between(&c.base, &head)?;
        let ours = self
            .one_line(&head)
            .is_ok_and(|l| l.contains(&format!("[{}]", c.task)));
        Ok(Change {
            diff_lines: self.diff_lines(&c.base, &head)?,
            agent_committed: commits.len() > usize::from(ours),
            tip: Some(head),
            strays: Vec::new(),
        })
    }

    /// A finished attempt's worktree goes (its uncommitted files snapshotted and backed up if
    /// anything would be lost). After a merge the task branch points at what landed, and the
    /// agent's own commit is backed up only when the merge rewrote it (not a fast-forward).
    pub fn tidy_attempt(&self, t: &Tidy) -> Result<(), GitError> {
        let n = t.n.map_or("stale".to_string(), |n| n.to_string());
        let backup = format!("refs/orch/backup/{}/{n}", t.task);
        if let Some((merged, agent)) = &t.merged
            && merged != agent
        {
            self.backup_ref(&backup, agent)?;
        }
        let path = Path::new(&t.worktree);
        if path.exists() {
            self.remove_worktree(path, &backup)?;
        }
        if let Some((merged, agent)) = &t.merged {
            let _ = self.cas_update_ref(&format!("refs/heads/{}", t.branch), merged, agent);
        }
        Ok(())
    }
}
