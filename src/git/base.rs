//! What the base branch needs from git: which branch is checked out, what a name the user gave
//! means, which upstream a branch tracks, and fetching one branch of a remote (docs/git.md).

use super::{GitError, Repo, safe_rev};

/// Where a remote-tracking ref comes from: `git fetch <remote> +<branch>:<tracking>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBranch {
    pub remote: String,
    /// The branch on the remote (`refs/heads/main`).
    pub branch: String,
    /// The local remote-tracking ref it is fetched into (`refs/remotes/origin/main`).
    pub tracking: String,
}

impl Repo {
    /// The branch checked out in this worktree (`refs/heads/...`); `None` when HEAD is detached.
    pub fn current_branch(&self) -> Result<Option<String>, GitError> {
        let out = self
            .git()
            .args(["symbolic-ref", "--quiet", "HEAD"])
            .output()?;
        match out.status.code() {
            Some(0) => Ok(Some(
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )),
            Some(1) => Ok(None),
            code => Err(GitError::exit(
                vec!["symbolic-ref".into(), "HEAD".into()],
                code,
                String::from_utf8_lossy(&out.stderr),
            )),
        }
    }

    /// The full ref name `name` stands for (`main` → `refs/heads/main`, `origin/main` →
    /// `refs/remotes/origin/main`, a tag → `refs/tags/...`); `None` when it names no ref (a
    /// commit id, or nothing at all).
    pub fn full_ref_name(&self, name: &str) -> Result<Option<String>, GitError> {
        let out = self
            .git()
            .args([
                "rev-parse",
                "--symbolic-full-name",
                "--verify",
                "--quiet",
                "--end-of-options",
                name,
            ])
            .output()?;
        match out.status.code() {
            Some(0) => {
                let full = String::from_utf8_lossy(&out.stdout).trim().to_string();
                Ok((!full.is_empty()).then_some(full))
            }
            Some(1) => Ok(None),
            code => Err(GitError::exit(
                vec![
                    "rev-parse".into(),
                    "--symbolic-full-name".into(),
                    name.into(),
                ],
                code,
                String::from_utf8_lossy(&out.stderr),
            )),
        }
    }

    /// The upstream a local branch tracks (`branch.<name>.remote` and `.merge`): its
    /// remote-tracking ref and where that is fetched from, or a local branch (`remote = .`) with
    /// nothing to fetch. `None` when it tracks nothing.
    pub fn upstream(
        &self,
        branch_ref: &str,
    ) -> Result<Option<(String, Option<RemoteBranch>)>, GitError> {
        let out = self
            .git()
            .args([
                "for-each-ref",
                "--format=%(upstream)%00%(upstream:remotename)%00%(upstream:remoteref)",
                "--end-of-options",
                branch_ref,
            ])
            .run()?;
        let mut f = out.split('\0');
        let (tracking, remote, branch) = (
            f.next().unwrap_or_default().to_string(),
            f.next().unwrap_or_default().to_string(),
            f.next().unwrap_or_default().to_string(),
        );
        if tracking.is_empty() {
            return Ok(None);
        }
        let fetch =
            (!remote.is_empty() && remote != "." && !branch.is_empty()).then(|| RemoteBranch {
                remote,
                branch,
                tracking: tracking.clone(),
            });
        Ok(Some((tracking, fetch)))
    }

    /// The remote and branch behind `name` when it reads as `<remote>/<branch>` (or
    /// `refs/remotes/<remote>/<branch>`) for a configured remote — the longest remote name that
    /// fits, since remote names may hold a `/`.
    pub fn remote_branch(&self, name: &str) -> Result<Option<RemoteBranch>, GitError> {
        let short = name.strip_prefix("refs/remotes/").unwrap_or(name);
        let remotes = self.git().arg("remote").run()?;
        let mut best: Option<RemoteBranch> = None;
        for r in remotes.lines().map(str::trim).filter(|r| !r.is_empty()) {
            let Some(branch) = short
                .strip_prefix(r)
                .and_then(|rest| rest.strip_prefix('/'))
            else {
                continue;
            };
            if branch.is_empty() || best.as_ref().is_some_and(|b| b.remote.len() >= r.len()) {
                continue;
            }
            best = Some(RemoteBranch {
                remote: r.to_string(),
                branch: format!("refs/heads/{branch}"),
                tracking: format!("refs/remotes/{r}/{branch}"),
            });
        }
        Ok(best)
    }

    /// `git fetch <remote> +<branch>:<tracking>`: that one branch, no tags, within this
    /// handle's timeout. Credentials are never asked for on the terminal (`GIT_TERMINAL_PROMPT`).
    pub fn fetch_branch(&self, b: &RemoteBranch) -> Result<(), GitError> {
        safe_rev(&b.remote)?;
        let spec = format!("+{}:{}", b.branch, b.tracking);
        self.git()
            .args(["fetch", "--quiet", "--no-tags"])
            .args([b.remote.as_str(), spec.as_str()])
            .run()
            .map(|_| ())
    }

    /// Makes sure `refs/heads/<branch>` exists, creating it at `start` when missing (with
    /// `update-ref`: nothing checked out is touched). Returns its tip.
    pub fn ensure_branch_at(&self, branch: &str, start: &str) -> Result<String, GitError> {
        let refname = format!("refs/heads/{branch}");
        if let Some(oid) = self.rev_parse(&refname)? {
            return Ok(oid);
        }
        let start = self.commit_oid(start)?;
        if self.cas_update_ref(&refname, &start, "")? {
            return Ok(start);
        }
        // Lost a race with someone creating it at the same moment: theirs stands.
        self.commit_oid(&refname)
    }
}
