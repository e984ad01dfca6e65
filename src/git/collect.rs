//! What an attempt changed, whoever committed it (DESIGN §5: everything past the attempt's base
//! is the agent's change).
//!
//! Agents such as aider commit by themselves, sometimes on a branch of their own or on a
//! detached HEAD. `collect_attempt` commits what was left uncommitted, gathers the change onto
//! the task branch with the worktree checked out on it, keeps whatever does not fit under backup
//! refs, and removes the branches the agent created.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use super::files::GitDirs;
use super::{BACKUP_PREFIX, GitError, Repo, backup_ref_name, safe_rev};

/// The reflog message of the checkout that hands a pooled worktree to an attempt
/// (`GIT_REFLOG_ACTION`). A pooled worktree's HEAD reflog holds every earlier attempt's visits
/// too, all kept when those attempts ended; reading it only back to this entry keeps the
/// orphans' check to this attempt's commits (it grew by a few commits per reuse, each looked up
/// among every backup ref). An agent never writes it: git writes it only when told to.
pub(super) const ATTEMPT_START_REFLOG: &str = "orch-tui: worktree taken for an attempt";

/// The attempt whose change is collected.
#[derive(Debug, Clone)]
pub struct Collect<'a> {
    pub worktree: &'a Path,
    pub task: &'a str,
    /// The attempt number (names the backup refs).
    pub attempt: u32,
    /// The task branch without `refs/heads/`, e.g. `orch/<task>`.
    pub task_branch: &'a str,
    /// The commit the attempt started from.
    pub base: &'a str,
    /// `Repo::branch_names()` taken when the attempt was set up: branches that existed before
    /// the agent could make any.
    pub branches_before: &'a BTreeSet<String>,
    /// Author and committer of the commit made for what the agent left uncommitted.
    pub author_name: &'a str,
    pub author_email: &'a str,
    /// Its message, ending with the caller's trailers (see `trailers`).
    pub message: &'a str,
}

/// Where the change was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSource {
    /// On the task branch, the worktree still on it.
    TaskBranch,
    /// The worktree had been switched to this branch; its HEAD is the change.
    SwitchedBranch(String),
    /// The worktree was on a detached HEAD; that HEAD is the change.
    Detached,
    /// The task branch had nothing past base; the work of this branch the agent made was taken.
    Adopted(String),
    /// Nothing past base anywhere.
    Nothing,
}

/// Commits the agent left outside its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// The branch the agent created (deleted now). None: commits the worktree's HEAD made or
    /// visited that no branch holds any more (a detached HEAD left behind, or a reset).
    pub branch: Option<String>,
    pub tip: String,
    /// Where its commits are kept; None when the change or the base already holds them all.
    pub backup_ref: Option<String>,
    /// Its commits are in the change.
    pub adopted: bool,
}

/// What `collect_attempt` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptChange {
    /// The change's tip, now the task branch's tip and checked out in the worktree. None: really
    /// nothing changed (no commit past base anywhere, nothing uncommitted).
    pub tip: Option<String>,
    pub source: ChangeSource,
    /// Commits in the change that the agent made itself (not counting `committed_for_agent`).
    pub agent_commits: usize,
    /// The commit made for what the agent left uncommitted.
    pub committed_for_agent: Option<String>,
    /// Task branch commits that are not in the change, kept under this ref.
    pub task_branch_backup: Option<String>,
    /// Branches the agent created (removed now) and commits its HEAD left behind.
    pub strays: Vec<Stray>,
}

/// The worktree's HEAD: the branch it names (full ref; None when detached) and its commit.
struct Head {
    branch: Option<String>,
    oid: String,
}

/// The worktree's HEAD reflog: commits it pointed at, and branches it was switched to.
#[derive(Default)]
struct Visited {
    oids: Vec<String>,
    checked_out: HashSet<String>,
}

impl Repo {
    /// Every local branch name (without `refs/heads/`). Cheap: one ref listing. The attempt's
    /// setup takes it so `collect_attempt` can tell the branches the agent created.
    pub fn branch_names(&self) -> Result<BTreeSet<String>, GitError> {
        Ok(self.branch_tips()?.into_iter().map(|(n, _)| n).collect())
    }

    fn branch_tips(&self) -> Result<Vec<(String, String)>, GitError> {
        if let Some(tips) = GitDirs::of(&self.root).and_then(|d| d.branch_tips()) {
            return Ok(tips);
        }
        // Ref names cannot hold spaces or newlines, so one line per ref splits safely.
        let out = self
            .git()
            .args([
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/heads/",
            ])
            .run()?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let (name, oid) = l.split_once(' ')?;
                Some((
                    name.strip_prefix("refs/heads/")?.to_string(),
                    oid.to_string(),
                ))
            })
            .collect())
    }

    /// Commits what the agent left uncommitted, takes everything past base as the change (on the
    /// task branch, or on whatever the worktree was switched to, or on the one branch the agent
    /// created), points the task branch at it with the worktree checked out there, and removes
    /// the branches the agent created. Every commit that stops being reachable from a branch is
    /// kept under `refs/orch/backup/<task>/<attempt>...` first.
    pub fn collect_attempt(&self, c: &Collect<'_>) -> Result<AttemptChange, GitError> {
        let base = self.full_oid(c.base)?;
        let task_ref = format!("refs/heads/{}", c.task_branch);
        let mut head = self.worktree_head(c.worktree)?;
        // Where HEAD was before our commit: on the base, the agent made no commit of its own.
        let agent_left_base = head.oid != base;
        let on_task = head.branch.as_deref() == Some(task_ref.as_str());
        if !on_task && head.branch.is_some() {
            // Our commit lands on the task branch or on no branch, never on one the agent
            // switched to (it may be the user's); the files stay as they are.
            self.git_in(c.worktree)
                .args(["checkout", "--quiet", "--detach"])
                .run()?;
        }
        let committed = self.commit_all(c.worktree, c.author_name, c.author_email, c.message)?;
        if let Some(oid) = &committed {
            head.oid = oid.clone();
        }
        let visited = self.visited(c.worktree)?;
        // On the task branch, HEAD is its tip (our commit included): the same answer a second
        // `rev-parse` would give, one git process less (the agent has stopped; nothing else
        // moves a task branch while its attempt is collected).
        let task_tip = match on_task {
            true => Some(head.oid.clone()),
            false => self.rev_parse(&task_ref)?,
        };
        let strays = self.stray_branches(c, &head, &visited, &base)?;
        // A commit we just made on the task branch is past base without asking git.
        let fresh = committed.is_some() && on_task;
        let (source, tip) =
            self.pick_change(&base, &head, on_task, fresh, task_tip.as_deref(), &strays)?;
        let target = tip.clone().unwrap_or_else(|| base.clone());
        let in_place = on_task && head.oid == target;
        let task_branch_backup =
            self.move_task_branch(c, task_tip.as_deref(), &target, in_place)?;
        let mut kept = self.remove_strays(c, strays, &base, &target)?;
        kept.extend(self.keep_orphans(c, &visited, &[&base, &target])?);
        let agent_commits = match &tip {
            None => 0,
            // Our commit straight on the base is the whole change: nothing to count.
            Some(t) if !agent_left_base && committed.as_deref() == Some(t.as_str()) => 0,
            Some(t) => {
                let all = self.commits_between(&base, t)?;
                let ours = committed.as_ref().is_some_and(|o| all.contains(o));
                all.len() - usize::from(ours)
            }
        };
        Ok(AttemptChange {
            tip,
            source,
            agent_commits,
            committed_for_agent: committed,
            task_branch_backup,
            strays: kept,
        })
    }

    /// Which commit is the change: the worktree's HEAD when the agent switched away from the
    /// task branch (and it holds work), else the task branch, else a stray branch's work.
    fn pick_change(
        &self,
        base: &str,
        head: &Head,
        on_task: bool,
        fresh: bool,
        task_tip: Option<&str>,
        strays: &[(String, String)],
    ) -> Result<(ChangeSource, Option<String>), GitError> {
        if !on_task && self.past(&head.oid, base)? {
            let source = match head
                .branch
                .as_deref()
                .and_then(|b| b.strip_prefix("refs/heads/"))
            {
                Some(b) => ChangeSource::SwitchedBranch(b.to_string()),
                None => ChangeSource::Detached,
            };
            return Ok((source, Some(head.oid.clone())));
        }
        if let Some(t) = task_tip
            && (fresh || self.past(t, base)?)
        {
            return Ok((ChangeSource::TaskBranch, Some(t.to_string())));
        }
        Ok(match self.adoptable(strays, base)? {
            Some((name, tip)) => (ChangeSource::Adopted(name), Some(tip)),
            None => (ChangeSource::Nothing, None),
        })
    }

    /// `rev` as a full object id: as it is when it already is one (the engine passes the base it
    /// recorded), else resolved.
    fn full_oid(&self, rev: &str) -> Result<String, GitError> {
        if matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(rev.to_ascii_lowercase());
        }
        self.commit_oid(rev)
    }

    /// True when `oid` has commits that `base` lacks.
    fn past(&self, oid: &str, base: &str) -> Result<bool, GitError> {
        self.has_unsaved_commits(oid, &[safe_rev(base)?])
    }

    fn worktree_head(&self, worktree: &Path) -> Result<Head, GitError> {
        if let Some((branch, oid)) = GitDirs::of(&self.root.join(worktree)).and_then(|d| d.head()) {
            return Ok(Head { branch, oid });
        }
        let out = self
            .git_in(worktree)
            .args(["rev-parse", "HEAD", "--symbolic-full-name", "HEAD"])
            .run()?;
        let mut lines = out.lines();
        let oid = lines.next().unwrap_or_default().to_string();
        let branch = lines
            .next()
            .filter(|b| b.starts_with("refs/heads/"))
            .map(str::to_string);
        Ok(Head { branch, oid })
    }

    /// Reads the worktree's HEAD reflog (empty when reflogs are turned off), newest first, back
    /// to the entry that handed it to this attempt when it came from the pool.
    fn visited(&self, worktree: &Path) -> Result<Visited, GitError> {
        let entries = match GitDirs::of(&self.root.join(worktree)).and_then(|d| d.head_reflog()) {
            Some(read) => read,
            None => self
                .git_in(worktree)
                .args(["reflog", "show", "--format=%H %gs", "HEAD", "--"])
                .run()?
                .lines()
                .map(|l| {
                    let (oid, subject) = l.split_once(' ').unwrap_or((l, ""));
                    (oid.to_string(), subject.to_string())
                })
                .collect(),
        };
        let mut v = Visited::default();
        for (oid, subject) in &entries {
            let (oid, subject) = (oid.as_str(), subject.as_str());
            if subject == ATTEMPT_START_REFLOG {
                // The base, checked out for this attempt; older entries are earlier attempts'.
                if !v.oids.iter().any(|o| o == oid) {
                    v.oids.push(oid.to_string());
                }
                break;
            }
            if !v.oids.iter().any(|o| o == oid) {
                v.oids.push(oid.to_string());
            }
            if let Some(to) = subject
                .strip_prefix("checkout: moving from ")
                .and_then(|m| m.rsplit_once(" to "))
            {
                v.checked_out.insert(to.1.to_string());
            }
        }
        Ok(v)
    }

    /// Branches this attempt's agent created: new since the setup, not under `orch/`, not
    /// checked out in another worktree, and tied to this worktree — checked out here now or
    /// before, or pointing at a commit its HEAD made or visited (other than the base, where a
    /// branch anyone creates from the integration tip would also point).
    fn stray_branches(
        &self,
        c: &Collect<'_>,
        head: &Head,
        visited: &Visited,
        base: &str,
    ) -> Result<Vec<(String, String)>, GitError> {
        let here = head
            .branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/"));
        let new: Vec<(String, String)> = self
            .branch_tips()?
            .into_iter()
            .filter(|(name, _)| !c.branches_before.contains(name) && !name.starts_with("orch/"))
            .filter(|(name, tip)| {
                here == Some(name.as_str())
                    || visited.checked_out.contains(name)
                    || (tip != base && visited.oids.contains(tip))
            })
            .collect();
        if new.is_empty() {
            return Ok(new);
        }
        let elsewhere: HashSet<String> = self
            .worktrees()?
            .into_iter()
            .filter(|w| !super::worktree::same_path(&w.path, c.worktree))
            .filter_map(|w| w.branch?.strip_prefix("refs/heads/").map(str::to_string))
            .collect();
        Ok(new
            .into_iter()
            .filter(|(name, _)| !elsewhere.contains(name))
            .collect())
    }

    /// The stray branch whose work can be the change: among those with commits past base, the
    /// one that contains all the others. None when there is none, or they diverge.
    fn adoptable(
        &self,
        strays: &[(String, String)],
        base: &str,
    ) -> Result<Option<(String, String)>, GitError> {
        let mut with_work = Vec::new();
        for s in strays {
            if self.past(&s.1, base)? {
                with_work.push(s);
            }
        }
        for cand in &with_work {
            let mut contains_all = true;
            for other in &with_work {
                if other.1 != cand.1 && !self.is_ancestor(&other.1, &cand.1)? {
                    contains_all = false;
                    break;
                }
            }
            if contains_all {
                return Ok(Some((*cand).clone()));
            }
        }
        Ok(None)
    }

    /// Points the task branch at `target` and checks it out in the worktree, after backing up
    /// task branch commits that `target` lacks. Returns that backup.
    fn move_task_branch(
        &self,
        c: &Collect<'_>,
        task_tip: Option<&str>,
        target: &str,
        in_place: bool,
    ) -> Result<Option<String>, GitError> {
        let mut backup = None;
        if let Some(t) = task_tip
            && t != target
            && self.has_unsaved_commits(t, &[safe_rev(target)?])?
        {
            backup = Some(self.backup_ref(&backup_ref_name(c.task, c.attempt), t)?);
        }
        if !in_place {
            // Everything is committed, so this only moves HEAD (and, when a stray branch's work
            // is adopted, rewrites the files to it); ignored files stay.
            self.git_in(c.worktree)
                .args([
                    "checkout",
                    "--quiet",
                    "-B",
                    c.task_branch,
                    safe_rev(target)?,
                ])
                .run()?;
        }
        Ok(backup)
    }

    /// Deletes each stray branch, first backing up commits that neither the change nor the base
    /// holds.
    fn remove_strays(
        &self,
        c: &Collect<'_>,
        strays: Vec<(String, String)>,
        base: &str,
        target: &str,
    ) -> Result<Vec<Stray>, GitError> {
        let mut out = Vec::new();
        for (name, tip) in strays {
            let has_work = self.past(&tip, base)?;
            let adopted = has_work && self.is_ancestor(&tip, target)?;
            let backup_ref = if has_work && self.has_unsaved_commits(&tip, &[target, base])? {
                let flat = name.replace('/', "-");
                let refname = format!("{BACKUP_PREFIX}{}/{}-stray-{flat}", c.task, c.attempt);
                Some(self.backup_ref(&refname, &tip)?)
            } else {
                None
            };
            self.git()
                .args(["update-ref", "-m", "orch-tui: stray branch removed", "-d"])
                .args([format!("refs/heads/{name}"), tip.clone()])
                .run()?;
            tracing::info!(task = c.task, branch = %name, ?backup_ref, adopted, "git: stray branch");
            out.push(Stray {
                branch: Some(name),
                tip,
                backup_ref,
                adopted,
            });
        }
        Ok(out)
    }

    /// Commits the worktree's HEAD made or visited that no branch, tag or backup holds any more
    /// (left on a detached HEAD, or dropped by a reset): kept under `<attempt>-orphan` refs,
    /// since the worktree's reflog goes with the worktree.
    fn keep_orphans(
        &self,
        c: &Collect<'_>,
        visited: &Visited,
        known: &[&str],
    ) -> Result<Vec<Stray>, GitError> {
        // The base and the change's tip are on branches: skip them, and in the usual case (no
        // other commit visited) git is not asked at all.
        let oids: Vec<&str> = visited
            .oids
            .iter()
            .map(String::as_str)
            .filter(|o| !known.contains(o) && safe_rev(o).is_ok())
            .collect();
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        // This task's backups, as when a worktree is retired (`backup_scope`).
        let glob = format!(
            "--glob={}",
            super::backup::backup_scope(&backup_ref_name(c.task, c.attempt))
        );
        let unsaved = self
            .git()
            .arg("rev-list")
            .args(&oids)
            .args(["--not", "--branches", "--tags", "--remotes", &glob])
            .run()?;
        let unsaved: HashSet<&str> = unsaved.lines().collect();
        let lost: Vec<&str> = oids.into_iter().filter(|o| unsaved.contains(o)).collect();
        if lost.is_empty() {
            return Ok(Vec::new());
        }
        let tips = self
            .git()
            .args(["merge-base", "--independent"])
            .args(&lost)
            .run()?;
        let refname = format!("{BACKUP_PREFIX}{}/{}-orphan", c.task, c.attempt);
        let mut out = Vec::new();
        for tip in tips.lines() {
            let kept = self.backup_ref(&refname, tip)?;
            out.push(Stray {
                branch: None,
                tip: tip.to_string(),
                backup_ref: Some(kept),
                adopted: false,
            });
        }
        Ok(out)
    }
}
