//! The base branch on the real repository: which ref a run's base is, and which commit a sync
//! goes onto (fetching the base, or its upstream, first). The rules are `core::base`'s; this
//! reads the facts they need from git.

use crate::core::base::{Follow, default_base, follow, label, not_a_base, refuse_other_base};
use crate::git::{GitError, Repo};

/// Why a base or a sync target could not be had, by exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseError {
    /// A name that is not a usable branch, a base other than the recorded one (exit 2).
    BadInput(String),
    /// Going on would drop someone's commits (exit 3).
    Refused(String),
    /// git itself failed: a fetch, a read (exit 1).
    Failed(String),
}

impl std::fmt::Display for BaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseError::BadInput(m) | BaseError::Refused(m) | BaseError::Failed(m) => f.write_str(m),
        }
    }
}

fn git_failed(e: GitError) -> BaseError {
    BaseError::Failed(e.to_string())
}

fn short(oid: &str) -> &str {
    oid.get(..8).unwrap_or(oid)
}

/// The full ref of the branch a user named (`main`, `origin/main`, `refs/heads/main`). A remote
/// branch not fetched yet (`origin/develop`) is fetched.
pub fn resolve_name(repo: &Repo, name: &str, integration: &str) -> Result<String, BaseError> {
    let what = "name a local branch (main) or a remote one (origin/main)";
    let full = match repo.full_ref_name(name).map_err(git_failed)? {
        Some(full) => full,
        None => match repo.remote_branch(name).map_err(git_failed)? {
            Some(rb) if repo.rev_parse(&rb.tracking).map_err(git_failed)?.is_none() => {
                repo.fetch_branch(&rb).map_err(|e| {
                    BaseError::BadInput(format!(
                        "base `{name}`: cannot fetch {} from {}: {e}",
                        rb.branch, rb.remote
                    ))
                })?;
                rb.tracking
            }
            _ => {
                return Err(BaseError::BadInput(format!(
                    "base `{name}`: no such branch in {}; {what}",
                    repo.root().display()
                )));
            }
        },
    };
    if repo.rev_parse(&full).map_err(git_failed)?.is_none() {
        return Err(BaseError::BadInput(format!(
            "base `{name}`: {full} does not exist; {what}"
        )));
    }
    match not_a_base(&full, integration) {
        Some(why) => Err(BaseError::BadInput(format!("base `{name}`: {why}"))),
        None => Ok(full),
    }
}

/// The base of a run: the recorded one — a run that asks for another is refused (switching is a
/// sync) — or, at the first start, the one asked for, else the default (`core::base`). `None`
/// when there is no default (HEAD detached and no `main`): the integration branch is then cut
/// from HEAD and no base is recorded until `orch-tui sync --base`.
pub fn for_run(
    repo: &Repo,
    recorded: Option<&str>,
    asked: Option<&str>,
    integration: &str,
) -> Result<Option<String>, BaseError> {
    let asked = match asked {
        Some(name) => Some(resolve_name(repo, name, integration)?),
        None => None,
    };
    if let Some(why) = refuse_other_base(recorded, asked.as_deref()) {
        return Err(BaseError::BadInput(why));
    }
    if let Some(r) = recorded {
        return Ok(Some(r.to_string()));
    }
    if asked.is_some() {
        return Ok(asked);
    }
    let current = repo.current_branch().map_err(git_failed)?;
    let main = repo
        .rev_parse("refs/heads/main")
        .map_err(git_failed)?
        .is_some();
    Ok(default_base(current.as_deref(), integration, main))
}

/// The commit a sync of base `refname` goes onto, and what was done to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub oid: String,
    /// Lines for the user: what was fetched, which side was followed.
    pub said: Vec<String>,
}

/// Where base `refname` stands now: a remote branch is fetched first; a local branch that
/// tracks an upstream has the upstream fetched, and the side that holds the other is followed
/// (`core::base::follow`: unpushed commits are never dropped; diverged is refused).
pub fn sync_target(repo: &Repo, refname: &str) -> Result<Target, BaseError> {
    let mut said = Vec::new();
    let gone = || {
        BaseError::BadInput(format!(
            "the base {} does not exist any more; `orch-tui sync --base REF` names another",
            label(refname)
        ))
    };
    if refname.starts_with("refs/remotes/") {
        if let Some(rb) = repo.remote_branch(refname).map_err(git_failed)? {
            fetch(repo, &rb, &mut said)?;
        }
        let oid = repo
            .rev_parse(refname)
            .map_err(git_failed)?
            .ok_or_else(gone)?;
        return Ok(Target { oid, said });
    }
    let local = repo
        .rev_parse(refname)
        .map_err(git_failed)?
        .ok_or_else(gone)?;
    let Some((tracking, remote)) = repo.upstream(refname).map_err(git_failed)? else {
        return Ok(Target { oid: local, said });
    };
    if let Some(rb) = &remote {
        fetch(repo, rb, &mut said)?;
    }
    let Some(up) = repo.rev_parse(&tracking).map_err(git_failed)? else {
        return Ok(Target { oid: local, said });
    };
    let local_has = repo.is_ancestor(&up, &local).map_err(git_failed)?;
    let up_has = local_has || repo.is_ancestor(&local, &up).map_err(git_failed)?;
    match follow(local_has, up_has) {
        Follow::Local => Ok(Target { oid: local, said }),
        Follow::Upstream => {
            said.push(format!(
                "{} is behind {}: following {} ({})",
                label(refname),
                label(&tracking),
                label(&tracking),
                short(&up)
            ));
            Ok(Target { oid: up, said })
        }
        Follow::Diverged => Err(BaseError::Refused(format!(
            "{} ({}) and its upstream {} ({}) have diverged: following either would drop the \
             other's commits. Bring {} up to date (`git pull --rebase`, or push it), then \
             `orch-tui sync` again",
            label(refname),
            short(&local),
            label(&tracking),
            short(&up),
            label(refname)
        ))),
    }
}

fn fetch(
    repo: &Repo,
    rb: &crate::git::RemoteBranch,
    said: &mut Vec<String>,
) -> Result<(), BaseError> {
    repo.fetch_branch(rb).map_err(|e| {
        BaseError::Failed(format!(
            "cannot fetch {} from {}: {e}. Nothing changed; check the remote (or the network) \
             and try again",
            label(&rb.branch),
            rb.remote
        ))
    })?;
    said.push(format!("fetched {}", label(&rb.tracking)));
    Ok(())
}
