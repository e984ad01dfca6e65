//! A world where everything outside the supervisor is instant, for `benches/scale.rs`: git is a
//! map of refs and commits (every call O(1) or a walk of a few generations), an agent exits as
//! soon as its start is taken in, checks pass. What is left to measure is the supervisor itself:
//! the decision function, the executor and the real SQLite ledger.
//!
//! Unlike the simulator's fakes (tests/sim_support), nothing here is random and nothing grows
//! with the plan but the refs of tasks under way, so a cost that grows with the plan is the
//! supervisor's own.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use orch_tui::core::domain::AttemptId;
use orch_tui::core::supervisor::{Change, CheckOutcome, Collect, Event, Exit, Tidy, WorktreeFact};
use orch_tui::engine::world::{
    AgentProc, Agents, Checks, GitOps, Incoming, Job, Launch, Runtime, Sink, Stale,
};
use orch_tui::git::{GitError, Replay};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Commits by id: their parents and generation (longest path to the root), so an ancestry
/// question walks only the generations between the two.
#[derive(Default)]
struct Repo {
    /// Ordered, so the branches are read without walking the backups beside them.
    refs: BTreeMap<String, String>,
    commits: HashMap<String, (Vec<String>, u64)>,
    /// For a commit whose line back is single-parent: its ancestors 1, 2, 4, ... generations
    /// back (as far as the line stays single-parent), so an ancestry question over a long
    /// history costs its logarithm. Without it the walk from the integration tip back to a
    /// task's base grew with the merges in between (a cost of this fake, not of the supervisor).
    jumps: HashMap<String, Vec<String>>,
    worktrees: HashMap<String, String>,
    next: u64,
}

impl Repo {
    fn commit(&mut self, parents: Vec<String>) -> String {
        self.next += 1;
        let id = format!("{:040x}", self.next);
        let generation = parents
            .iter()
            .filter_map(|p| self.commits.get(p).map(|c| c.1))
            .max()
            .unwrap_or(0)
            + 1;
        if let [p] = parents.as_slice() {
            let mut jumps = vec![p.clone()];
            while let Some(next) = jumps
                .last()
                .and_then(|j| self.jumps.get(j))
                .and_then(|js| js.get(jumps.len() - 1))
            {
                jumps.push(next.clone());
            }
            self.jumps.insert(id.clone(), jumps);
        }
        self.commits.insert(id.clone(), (parents, generation));
        id
    }

    fn generation(&self, c: &str) -> Option<u64> {
        self.commits.get(c).map(|c| c.1)
    }

    fn resolve(&self, rev: &str) -> Option<String> {
        if self.commits.contains_key(rev) {
            return Some(rev.to_string());
        }
        self.refs
            .get(rev)
            .or_else(|| self.refs.get(&format!("refs/heads/{rev}")))
            .cloned()
    }

    fn is_ancestor(&self, a: &str, b: &str) -> bool {
        let Some(ga) = self.generation(a) else {
            return false;
        };
        // Down the single-parent line by the longest jump that does not pass `a`'s generation.
        let mut at = b.to_string();
        while self.generation(&at).is_some_and(|g| g > ga) {
            let Some(next) = self.jumps.get(&at).and_then(|js| {
                js.iter()
                    .rev()
                    .find(|j| self.generation(j).is_some_and(|g| g >= ga))
            }) else {
                break;
            };
            at = next.clone();
        }
        if self.generation(&at) == Some(ga) || !self.jumps.contains_key(&at) {
            return self.walk_is_ancestor(a, &at, ga);
        }
        false
    }

    /// The plain walk, for a history with merges.
    fn walk_is_ancestor(&self, a: &str, b: &str, ga: u64) -> bool {
        // Each commit looked at once: merge commits share history, and without this the walk
        // from a tip far ahead grew with every path to it, a cost of this fake, not git's.
        let mut seen = HashSet::new();
        let mut q = VecDeque::from([b.to_string()]);
        while let Some(c) = q.pop_front() {
            if c == a {
                return true;
            }
            if let Some((parents, g)) = self.commits.get(&c)
                && *g > ga
            {
                q.extend(
                    parents
                        .iter()
                        .filter(|p| seen.insert((*p).clone()))
                        .cloned(),
                );
            }
        }
        false
    }
}

#[derive(Clone, Default)]
pub struct InstantGit {
    repo: Arc<Mutex<Repo>>,
}

impl InstantGit {
    /// A repository with one commit on `main`, the integration branch at the same commit.
    pub fn new() -> InstantGit {
        let git = InstantGit::default();
        {
            let mut r = lock(&git.repo);
            let root = r.commit(Vec::new());
            r.refs.insert("refs/heads/main".into(), root.clone());
            r.refs.insert("refs/heads/orch/integration".into(), root);
        }
        git
    }

    /// Commits on the integration branch's first-parent line: the tasks merged.
    pub fn merged(&self) -> usize {
        let r = lock(&self.repo);
        let mut n = 0;
        let mut at = r.refs.get("refs/heads/orch/integration").cloned();
        while let Some(c) = at {
            at = r.commits.get(&c).and_then(|(p, _)| p.first().cloned());
            n += 1;
        }
        n - 1
    }
}

impl GitOps for InstantGit {
    fn rev_parse(&self, rev: &str) -> Result<Option<String>, GitError> {
        Ok(lock(&self.repo).resolve(rev))
    }

    fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, GitError> {
        let r = lock(&self.repo);
        Ok(match (r.resolve(a), r.resolve(b)) {
            (Some(a), Some(b)) => r.is_ancestor(&a, &b),
            _ => false,
        })
    }

    fn branch_names(&self) -> Result<Vec<String>, GitError> {
        Ok(lock(&self.repo)
            .refs
            .range::<str, _>((
                std::ops::Bound::Included("refs/heads/"),
                std::ops::Bound::Excluded("refs/heads0"),
            ))
            .filter_map(|(r, _)| r.strip_prefix("refs/heads/").map(String::from))
            .collect())
    }

    fn prepare_worktree(
        &self,
        path: &str,
        branch: &str,
        base: &str,
        _backup_prefix: &str,
    ) -> Result<(), GitError> {
        let mut r = lock(&self.repo);
        let full = format!("refs/heads/{branch}");
        r.refs.insert(full.clone(), base.to_string());
        r.worktrees.insert(path.to_string(), full);
        Ok(())
    }

    fn collect(&self, c: &Collect, _before: &[String]) -> Result<Change, GitError> {
        let mut r = lock(&self.repo);
        let full = format!("refs/heads/{}", c.branch);
        let head = r.refs.get(&full).cloned().unwrap_or_else(|| c.base.clone());
        let tip = r.commit(vec![head]);
        r.refs.insert(full, tip.clone());
        Ok(Change {
            tip: Some(tip),
            diff_lines: 1,
            agent_committed: false,
            strays: Vec::new(),
        })
    }

    fn replay_onto(&self, _base: &str, _commit: &str, onto: &str) -> Result<Replay, GitError> {
        let tip = lock(&self.repo).commit(vec![onto.to_string()]);
        Ok(Replay::Clean { tip })
    }

    fn merge_base(&self, a: &str, b: &str) -> Result<String, GitError> {
        let r = lock(&self.repo);
        let mut q = VecDeque::from([a.to_string()]);
        while let Some(c) = q.pop_front() {
            if r.is_ancestor(&c, b) {
                return Ok(c);
            }
            if let Some((parents, _)) = r.commits.get(&c) {
                q.extend(parents.iter().cloned());
            }
        }
        Ok(a.to_string())
    }

    fn checkout_scratch(&self, _path: &str, _rev: &str) -> Result<(), GitError> {
        Ok(())
    }

    fn drop_scratch(&self, _path: &str) -> Result<(), GitError> {
        Ok(())
    }

    fn cas_update_ref(&self, refname: &str, new: &str, old: &str) -> Result<bool, GitError> {
        let mut r = lock(&self.repo);
        let matches = match r.refs.get(refname) {
            None => old.is_empty(),
            Some(c) => c == old,
        };
        if matches {
            r.refs.insert(refname.to_string(), new.to_string());
        }
        Ok(matches)
    }

    fn backup_ref(&self, name: &str, oid: &str) -> Result<String, GitError> {
        lock(&self.repo)
            .refs
            .insert(name.to_string(), oid.to_string());
        Ok(name.to_string())
    }

    fn tidy(&self, t: &Tidy) -> Result<(), GitError> {
        let mut r = lock(&self.repo);
        r.worktrees.remove(&t.worktree);
        if t.merged.is_some() {
            r.refs.remove(&format!("refs/heads/{}", t.branch));
        }
        Ok(())
    }

    fn diff(&self, _base: &str, _tip: &str) -> Result<String, GitError> {
        Ok("1 file changed".into())
    }

    fn orch_worktrees(&self) -> Result<Vec<WorktreeFact>, GitError> {
        Ok(lock(&self.repo)
            .worktrees
            .keys()
            .filter_map(|p| {
                let name = p.rsplit('/').next()?;
                let (task, n) = name.rsplit_once('-')?;
                Some(WorktreeFact {
                    path: p.clone(),
                    task: task.to_string(),
                    n: n.parse().ok().map(orch_tui::core::domain::AttemptNo),
                })
            })
            .collect())
    }
}

/// Agents started and not yet reported as exited: the runtime reports each once nothing else
/// waits (after the loop took in its start).
#[derive(Clone, Default)]
pub struct InstantAgents {
    exiting: Arc<Mutex<VecDeque<AttemptId>>>,
}

struct InstantProc {
    attempt: AttemptId,
    exiting: Arc<Mutex<VecDeque<AttemptId>>>,
}

impl AgentProc for InstantProc {
    fn pid(&self) -> u32 {
        40_000 + self.attempt.0 as u32
    }
    fn write(&self, _bytes: Vec<u8>) {}
    fn resize(&self, _rows: u16, _cols: u16) {}
    fn stop(&self, _grace: Duration) {
        lock(&self.exiting).push_back(self.attempt);
    }
    fn freeze(&self, _freeze: bool) {}
    fn screen(&self) -> Option<orch_tui::agent::screen::SharedScreen> {
        None
    }
}

impl Agents for InstantAgents {
    fn spawn(&self, launch: Launch, _sink: Sink) -> Result<Box<dyn AgentProc>, String> {
        lock(&self.exiting).push_back(launch.attempt);
        Ok(Box::new(InstantProc {
            attempt: launch.attempt,
            exiting: self.exiting.clone(),
        }))
    }
    fn reap_stale(&self, _stale: &Stale) {}
}

pub struct PassingChecks;

impl Checks for PassingChecks {
    fn run(&self, _dir: &str, commands: &[String], _log: &str) -> Vec<CheckOutcome> {
        commands
            .iter()
            .map(|c| CheckOutcome {
                command: c.clone(),
                passed: true,
                exit_code: Some(0),
                timed_out: false,
                duration_ms: 0,
                tail: String::new(),
            })
            .collect()
    }
}

/// What the runtime did, for the bench to print per task.
#[derive(Default)]
pub struct Counters {
    pub exits: AtomicU64,
    pub jobs: AtomicU64,
    /// How long the loop waited for a timer with nothing else to do (a retry's backoff, say).
    pub idle_ms: AtomicU64,
}

/// Jobs run on the loop's thread when the loop asks for the next thing (no thread per job: a
/// thread's start would be most of what is measured); the clock is the real one.
pub struct InlineRuntime {
    inbox: Arc<Mutex<VecDeque<Incoming>>>,
    jobs: VecDeque<Job>,
    agents: InstantAgents,
    counters: Arc<Counters>,
}

impl InlineRuntime {
    pub fn new(agents: InstantAgents, counters: Arc<Counters>) -> InlineRuntime {
        InlineRuntime {
            inbox: Arc::default(),
            jobs: VecDeque::new(),
            agents,
            counters,
        }
    }
}

impl Runtime for InlineRuntime {
    fn now_ms(&self) -> u64 {
        orch_tui::ledger::now_ms()
    }

    fn sink(&self) -> Sink {
        let inbox = self.inbox.clone();
        Arc::new(move |i| lock(&inbox).push_back(i))
    }

    fn spawn(&mut self, job: Job) {
        self.jobs.push_back(job);
    }

    fn next(&mut self, deadline_ms: u64) -> Incoming {
        if let Some(i) = lock(&self.inbox).pop_front() {
            return i;
        }
        if let Some(job) = self.jobs.pop_front() {
            self.counters.jobs.fetch_add(1, Ordering::Relaxed);
            return job();
        }
        if let Some(attempt) = lock(&self.agents.exiting).pop_front() {
            self.counters.exits.fetch_add(1, Ordering::Relaxed);
            return Incoming::Event(Event::Exited {
                attempt,
                exit: Exit {
                    code: Some(0),
                    signal: None,
                },
            });
        }
        let now = self.now_ms();
        if deadline_ms > now {
            std::thread::sleep(Duration::from_millis(deadline_ms - now));
            self.counters
                .idle_ms
                .fetch_add(deadline_ms - now, Ordering::Relaxed);
        }
        Incoming::Timeout
    }

    fn pause(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}
