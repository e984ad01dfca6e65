//! A model of git for the simulator: commits of whole files, refs, worktrees with their working
//! files. It answers the executor's `GitOps` the way the real repository does (tests/sim.rs holds
//! it to real git on the same operations), and can fail or time out on demand.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use orch_tui::core::domain::AttemptNo;
use orch_tui::core::supervisor::{Change, Collect, Stray, Tidy, WorktreeFact};
use orch_tui::engine::world::GitOps;
use orch_tui::git::{GitError, Replay};

pub type Files = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Commit {
    pub parents: Vec<String>,
    pub files: Files,
    /// Which attempt's work it carries (copied when replayed), for the invariants.
    pub origin: Option<(String, u32)>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Worktree {
    /// `refs/heads/...`, or None when detached.
    pub branch: Option<String>,
    pub head: String,
    pub files: Files,
    /// Branches this worktree had checked out (its HEAD reflog): only those can be its agent's.
    pub visited: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct Repo {
    pub commits: BTreeMap<String, Commit>,
    pub refs: BTreeMap<String, String>,
    pub worktrees: BTreeMap<String, Worktree>,
    next: u64,
    /// Failures to inject: the next git operation whose name is listed fails (or times out).
    pub fail_next: VecDeque<(&'static str, bool)>,
    /// The bug of old: an agent's own commits are not its change.
    pub fault_own_commits_ignored: bool,
}

fn err(op: &str, msg: &str) -> GitError {
    GitError {
        args: vec![op.to_string()],
        code: Some(128),
        stderr: msg.to_string(),
        timed_out: None,
    }
}

impl Repo {
    pub fn new(initial: Files) -> Repo {
        let mut r = Repo::default();
        let c = r.commit(Vec::new(), initial, None, "initial");
        r.refs.insert("refs/heads/main".into(), c);
        r
    }

    pub fn commit(
        &mut self,
        parents: Vec<String>,
        files: Files,
        origin: Option<(String, u32)>,
        message: &str,
    ) -> String {
        self.next += 1;
        let id = format!("{:040x}", self.next);
        self.commits.insert(
            id.clone(),
            Commit {
                parents,
                files,
                origin,
                message: message.to_string(),
            },
        );
        id
    }

    fn injected(&mut self, op: &'static str) -> Result<(), GitError> {
        if let Some(pos) = self.fail_next.iter().position(|(o, _)| *o == op) {
            let (_, timeout) = self.fail_next.remove(pos).unwrap_or((op, false));
            let mut e = err(op, "simulated failure");
            if timeout {
                e.timed_out = Some(std::time::Duration::from_secs(120));
            }
            return Err(e);
        }
        Ok(())
    }

    pub fn resolve(&self, rev: &str) -> Option<String> {
        if self.commits.contains_key(rev) {
            return Some(rev.to_string());
        }
        let full = if rev.starts_with("refs/") {
            rev.to_string()
        } else {
            format!("refs/heads/{rev}")
        };
        self.refs.get(&full).cloned()
    }

    /// Every commit reachable from `oid` (itself included).
    pub fn ancestors(&self, oid: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut q = VecDeque::from([oid.to_string()]);
        while let Some(c) = q.pop_front() {
            if !seen.insert(c.clone()) {
                continue;
            }
            if let Some(commit) = self.commits.get(&c) {
                q.extend(commit.parents.iter().cloned());
            }
        }
        seen
    }

    pub fn is_ancestor(&self, a: &str, b: &str) -> bool {
        self.ancestors(b).contains(a)
    }

    fn files(&self, oid: &str) -> Files {
        self.commits
            .get(oid)
            .map(|c| c.files.clone())
            .unwrap_or_default()
    }

    /// Reachable from a ref other than `except`.
    fn kept_elsewhere(&self, oid: &str, except: Option<&str>) -> bool {
        self.refs
            .iter()
            .filter(|(name, _)| Some(name.as_str()) != except)
            .any(|(_, tip)| self.is_ancestor(oid, tip))
    }

    pub fn backup(&mut self, name: &str, oid: &str) -> String {
        for n in 1..1000 {
            let candidate = if n == 1 {
                name.to_string()
            } else {
                format!("{name}-{n}")
            };
            match self.refs.get(&candidate) {
                None => {
                    self.refs.insert(candidate.clone(), oid.to_string());
                    return candidate;
                }
                Some(cur) if cur == oid => return candidate,
                Some(_) => {}
            }
        }
        name.to_string()
    }

    /// Remove a worktree: its uncommitted files become a snapshot commit, kept under `backup`
    /// unless another ref already holds it.
    pub fn retire(&mut self, path: &str, backup: &str) {
        let Some(wt) = self.worktrees.remove(path) else {
            return;
        };
        let mut keep = wt.head.clone();
        if wt.files != self.files(&wt.head) {
            let origin = self.commits.get(&wt.head).and_then(|c| c.origin.clone());
            keep = self.commit(vec![wt.head.clone()], wt.files.clone(), origin, "snapshot");
        }
        if !self.kept_elsewhere(&keep, wt.branch.as_deref()) {
            self.backup(backup, &keep);
        }
    }

    fn diff_count(a: &Files, b: &Files) -> u64 {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).count() as u64
    }

    /// Three-way merge of whole files: a side's change wins over an unchanged side; two different
    /// changes to one file conflict.
    fn merge3(base: &Files, ours: &Files, theirs: &Files) -> Result<Files, Vec<String>> {
        let keys: BTreeSet<&String> = base
            .keys()
            .chain(ours.keys())
            .chain(theirs.keys())
            .collect();
        let (mut out, mut conflicts) = (Files::new(), Vec::new());
        for k in keys {
            let (b, o, t) = (base.get(k), ours.get(k), theirs.get(k));
            let pick = if t == b {
                o
            } else if o == b || o == t {
                t
            } else {
                conflicts.push(k.clone());
                continue;
            };
            if let Some(v) = pick {
                out.insert(k.clone(), v.clone());
            }
        }
        if conflicts.is_empty() {
            Ok(out)
        } else {
            Err(conflicts)
        }
    }

    /// First-parent commits of base..tip, oldest first.
    fn chain(&self, base: &str, tip: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = tip.to_string();
        while cur != base {
            let Some(c) = self.commits.get(&cur) else {
                break;
            };
            out.push(cur.clone());
            match c.parents.first() {
                Some(p) => cur = p.clone(),
                None => break,
            }
        }
        out.reverse();
        out
    }

    pub fn replay(&mut self, base: &str, tip: &str, onto: &str) -> Replay {
        if base == onto {
            return Replay::Clean {
                tip: tip.to_string(),
            };
        }
        let mut cur = onto.to_string();
        for c in self.chain(base, tip) {
            let commit = self.commits[&c].clone();
            let parent = commit.parents.first().cloned().unwrap_or_default();
            match Self::merge3(&self.files(&parent), &self.files(&cur), &commit.files) {
                Ok(files) => {
                    cur = self.commit(vec![cur], files, commit.origin.clone(), &commit.message);
                }
                Err(files) => return Replay::Conflict { files },
            }
        }
        Replay::Clean { tip: cur }
    }
}

/// The executor's git: a handle on the shared model.
#[derive(Clone)]
pub struct FakeGit {
    pub repo: Arc<Mutex<Repo>>,
    pub worktrees_dir: String,
}

impl FakeGit {
    pub fn lock(&self) -> MutexGuard<'_, Repo> {
        self.repo.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl GitOps for FakeGit {
    fn rev_parse(&self, rev: &str) -> Result<Option<String>, GitError> {
        Ok(self.lock().resolve(rev))
    }

    fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, GitError> {
        let r = self.lock();
        // Like git, it takes branch names as well as commit ids.
        match (r.resolve(a), r.resolve(b)) {
            (Some(a), Some(b)) => Ok(r.is_ancestor(&a, &b)),
            _ => Err(err("merge-base", "not a valid commit name")),
        }
    }

    fn branch_names(&self) -> Result<Vec<String>, GitError> {
        Ok(self
            .lock()
            .refs
            .keys()
            .filter_map(|r| r.strip_prefix("refs/heads/").map(String::from))
            .collect())
    }

    fn prepare_worktree(
        &self,
        path: &str,
        branch: &str,
        base: &str,
        prefix: &str,
    ) -> Result<(), GitError> {
        let mut r = self.lock();
        r.injected("prepare_worktree")?;
        let full = format!("refs/heads/{branch}");
        let n_of = |p: &str| p.rsplit('-').next().unwrap_or("stale").to_string();
        let holders: Vec<String> = r
            .worktrees
            .iter()
            .filter(|(p, w)| w.branch.as_deref() == Some(full.as_str()) && p.as_str() != path)
            .map(|(p, _)| p.clone())
            .collect();
        for p in holders {
            let backup = format!("{prefix}/{}", n_of(&p));
            r.retire(&p, &backup);
        }
        let backup = format!("{prefix}/{}", n_of(path));
        if r.worktrees.contains_key(path) {
            r.retire(path, &backup);
        }
        if let Some(old) = r.refs.get(&full).cloned()
            && !r.is_ancestor(&old, base)
        {
            r.backup(&backup, &old);
        }
        let files = r.files(base);
        r.refs.insert(full.clone(), base.to_string());
        r.worktrees.insert(
            path.to_string(),
            Worktree {
                branch: Some(full.clone()),
                head: base.to_string(),
                files,
                visited: BTreeSet::from([full]),
            },
        );
        Ok(())
    }

    fn collect(&self, c: &Collect, before: &[String]) -> Result<Change, GitError> {
        let mut r = self.lock();
        r.injected("collect")?;
        let Some(mut wt) = r.worktrees.get(&c.worktree).cloned() else {
            return Err(err("collect", "no such worktree"));
        };
        let origin = Some((c.task.clone(), c.n.0));
        let head_files = r.files(&wt.head);
        let mut committed_here = false;
        if wt.files != head_files {
            wt.head = r.commit(vec![wt.head.clone()], wt.files.clone(), origin, &c.message);
            committed_here = true;
        }
        let task_ref = format!("refs/heads/{}", c.branch);
        // The branch the agent left its worktree on, when it is not the task's.
        let switched_to = wt.branch.clone().filter(|b| *b != task_ref);
        if let Some(b) = &wt.branch {
            r.refs.insert(b.clone(), wt.head.clone());
        }
        if wt.branch.as_deref() != Some(task_ref.as_str()) {
            // The agent switched branches: its HEAD is the change; keep the task branch's own.
            if let Some(old) = r.refs.get(&task_ref).cloned()
                && !r.is_ancestor(&old, &wt.head)
            {
                r.backup(&format!("refs/orch/backup/{}/{}", c.task, c.n), &old);
            }
            r.refs.insert(task_ref.clone(), wt.head.clone());
            wt.branch = Some(task_ref.clone());
        }
        // Branches the agent made: kept under backup refs and deleted; one with the work is
        // adopted when nothing else is there.
        let known = !before.is_empty();
        let new: Vec<(String, String)> = r
            .refs
            .iter()
            .filter_map(|(name, tip)| {
                let short = name.strip_prefix("refs/heads/")?;
                (known
                    && !before.iter().any(|b| b == short)
                    && !short.starts_with("orch/")
                    && wt.visited.contains(name))
                .then(|| (short.to_string(), tip.clone()))
            })
            .collect();
        let mut strays = Vec::new();
        let unadopted = new
            .iter()
            .filter(|(_, tip)| !r.is_ancestor(tip, &wt.head))
            .count();
        for (name, tip) in new {
            let full = format!("refs/heads/{name}");
            let taken = wt.head == c.base && unadopted == 1 && r.is_ancestor(&c.base, &tip);
            if taken {
                wt.head = tip.clone();
                wt.files = r.files(&tip);
                r.refs.insert(task_ref.clone(), tip.clone());
            }
            // Adopted: its work is the change (taken now, or the branch the agent stayed on).
            let adopted = taken || switched_to.as_deref() == Some(full.as_str());
            r.refs.remove(&full);
            // Kept under a backup ref only when the change does not hold its commits.
            let backup = (!r.is_ancestor(&tip, &wt.head)).then(|| {
                r.backup(
                    &format!("refs/orch/backup/{}/{}-stray-{name}", c.task, c.n),
                    &tip,
                )
            });
            strays.push(Stray {
                branch: name,
                tip,
                backup_ref: backup,
                adopted,
            });
        }
        let agent_committed = r.chain(&c.base, &wt.head).len() > usize::from(committed_here);
        let changed = wt.head != c.base;
        let ignore = r.fault_own_commits_ignored && !committed_here && strays.is_empty();
        let tip = (changed && !ignore).then(|| wt.head.clone());
        let diff_lines = Repo::diff_count(&r.files(&c.base), &r.files(&wt.head));
        r.worktrees.insert(c.worktree.clone(), wt);
        Ok(Change {
            tip,
            diff_lines,
            agent_committed,
            strays,
        })
    }

    fn replay_onto(&self, base: &str, commit: &str, onto: &str) -> Result<Replay, GitError> {
        let mut r = self.lock();
        r.injected("replay_onto")?;
        let out = r.replay(base, commit, onto);
        if std::env::var("SIM_DEBUG").is_ok() {
            eprintln!("replay {base}..{commit} onto {onto}: {out:?}");
        }
        Ok(out)
    }

    fn merge_base(&self, a: &str, b: &str) -> Result<String, GitError> {
        let r = self.lock();
        let theirs = r.ancestors(b);
        let mut q = VecDeque::from([a.to_string()]);
        let mut seen = BTreeSet::new();
        while let Some(c) = q.pop_front() {
            if theirs.contains(&c) {
                return Ok(c);
            }
            if seen.insert(c.clone())
                && let Some(commit) = r.commits.get(&c)
            {
                q.extend(commit.parents.iter().cloned());
            }
        }
        Err(err("merge-base", "no common ancestor"))
    }

    fn checkout_scratch(&self, _path: &str, rev: &str) -> Result<(), GitError> {
        let mut r = self.lock();
        r.injected("checkout_scratch")?;
        if r.commits.contains_key(rev) {
            Ok(())
        } else {
            Err(err("checkout", "no such commit"))
        }
    }

    fn drop_scratch(&self, _path: &str) -> Result<(), GitError> {
        Ok(())
    }

    fn cas_update_ref(&self, refname: &str, new: &str, old: &str) -> Result<bool, GitError> {
        let mut r = self.lock();
        r.injected("cas_update_ref")?;
        let cur = r.refs.get(refname).cloned();
        let matches = match cur.as_deref() {
            None => old.is_empty(),
            Some(c) => c == old,
        };
        if matches {
            r.refs.insert(refname.to_string(), new.to_string());
        }
        if std::env::var("SIM_DEBUG").is_ok() {
            eprintln!("cas {refname} {old} -> {new}: {matches}");
        }
        Ok(matches)
    }

    fn backup_ref(&self, name: &str, oid: &str) -> Result<String, GitError> {
        Ok(self.lock().backup(name, oid))
    }

    fn tidy(&self, t: &Tidy) -> Result<(), GitError> {
        let mut r = self.lock();
        r.injected("tidy")?;
        let n = t.n.map_or("stale".to_string(), |n| n.to_string());
        let backup = format!("refs/orch/backup/{}/{n}", t.task);
        if let Some((merged, agent)) = &t.merged
            && merged != agent
            && !r.kept_elsewhere(agent, Some(&format!("refs/heads/{}", t.branch)))
        {
            r.backup(&backup, agent);
        }
        r.retire(&t.worktree, &backup);
        if t.merged.is_some() {
            // Merged: the task branch goes, after anything only it held is backed up.
            let full = format!("refs/heads/{}", t.branch);
            if let Some(tip) = r.refs.get(&full).cloned()
                && !r.kept_elsewhere(&tip, Some(&full))
            {
                r.backup(&backup, &tip);
            }
            r.refs.remove(&full);
        }
        Ok(())
    }

    fn diff(&self, base: &str, tip: &str) -> Result<String, GitError> {
        let r = self.lock();
        Ok(format!(
            "{} file(s) changed",
            Repo::diff_count(&r.files(base), &r.files(tip))
        ))
    }

    fn orch_worktrees(&self) -> Result<Vec<WorktreeFact>, GitError> {
        let r = self.lock();
        let prefix = format!("{}/", self.worktrees_dir);
        Ok(r.worktrees
            .keys()
            .filter_map(|p| {
                let name = p.strip_prefix(&prefix)?;
                let (task, n) = name.rsplit_once('-')?;
                Some(WorktreeFact {
                    path: p.clone(),
                    task: task.to_string(),
                    n: n.parse().ok().map(AttemptNo),
                })
            })
            .collect())
    }
}
