//! The simulated world: a virtual clock, jobs that finish at random moments, fake agents that
//! work, commit, report, hang, lie and die, checks that pass or fail, and a ledger that is
//! sometimes busy. Everything is driven by one seeded random source, so a seed replays exactly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use orch_tui::core::domain::AttemptId;
use orch_tui::core::ops::Op;
use orch_tui::core::supervisor::{Boot, CheckOutcome, Exit, HolderFact, Observed};
use orch_tui::engine::real_store::SqliteStore;
use orch_tui::engine::world::{
    AgentProc, Agents, Checks, Incoming, Job, Launch, Runtime, Sink, Spawned, Store, WriteError,
};
use orch_tui::ledger::{Ledger, with_clock};

use super::fake_agent::*;
use super::fake_git::FakeGit;
use super::launch_checks::*;

/// splitmix64: small, fast, and the same everywhere.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len() as u64) as usize)
        }
    }
}

/// What a fake agent does with its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Writes its work and exits 0 (`commit`: commits it itself; `branch`: on a new branch,
    /// `stay`: and leaves the worktree there; `report`: says `worker done` and waits to be
    /// ended; `shared`: writes the file every such task writes, so merges conflict).
    Work {
        commit: bool,
        branch: bool,
        stay: bool,
        report: bool,
        shared: bool,
    },
    /// Changes nothing and exits 0.
    Nothing,
    /// Exits 1 (after `worker fail` when `report`).
    Fail { report: bool },
    /// Never ends by itself; `stubborn`: ignores TERM.
    Hang { stubborn: bool },
    /// A reviewer: approve, ask for changes, or end without a verdict.
    Review { verdict: Option<bool> },
    /// Hits a usage limit after some spend (its next attempt continues it once it lifts).
    Limited,
    /// The provider fails it (API 500, auth 401): an infrastructure failure, exit 1.
    Infra,
}

pub struct FakeProc {
    pub attempt: AttemptId,
    pub task: String,
    pub n: u32,
    pub token: String,
    pub worktree: String,
    pub epoch: u64,
    pub plan: Plan,
    pub step: u32,
    pub next_at: u64,
    /// TERM asked at, and the grace after which KILL comes.
    pub stop: Option<(u64, u64)>,
    pub alive: bool,
    /// `ORCH_SLOT` it was started with.
    pub slot: u32,
    /// Frozen (its task paused) since then: it does nothing until thawed or stopped.
    pub frozen_since: Option<u64>,
    /// Time spent frozen so far.
    pub frozen_ms: u64,
    pub generation: u64,
    /// What it has spent, as its own total would say.
    pub spent: (u64, u64, f64),
    /// An interactive session (Codex): it reads keys, stays after `worker done`, takes a
    /// change request as its next turn and ends on its exit command.
    pub interactive: bool,
    /// Its turn was interrupted (Escape): it does nothing until the next turn is sent.
    pub interrupted: bool,
    /// What was pasted or typed into its input box and not sent yet.
    pub input: String,
    /// It was asked to exit (`/quit` and Enter): it ends by itself next.
    pub quitting: bool,
    /// When the human last typed into its pane.
    pub human_key_at: Option<u64>,
    /// A headless session (`codex exec`): never frozen, ended at a pause.
    pub headless_session: bool,
    /// Its conversation: the one its argv resumes, else its own; and what that conversation
    /// had spent before it started (its own total counts the whole conversation, as the real
    /// CLIs' do after a resume).
    pub conversation: String,
    pub earlier: (u64, u64, f64),
    /// A restarted supervisor adopted it from its holder.
    pub adopted: bool,
    /// It runs in a holder: it outlives a crashed supervisor, and how it ended is recorded.
    pub held: bool,
    pub recorded_exit: Option<Exit>,
    /// What its holder keeps for an adopting supervisor.
    pub branches_before: Vec<String>,
}

pub struct World {
    pub now: u64,
    pub rng: Rng,
    jobs: Vec<(u64, u64, Job)>,
    pub inbox: VecDeque<Incoming>,
    pub procs: BTreeMap<u32, FakeProc>,
    next_pid: u32,
    /// Bumped at every crash: what a dead supervisor's jobs and agents report goes nowhere.
    pub generation: u64,
    pub epoch: u64,
    pub git: FakeGit,
    pub ledger: Ledger,
    /// Every work token an agent wrote, with its attempt (for "no work is ever lost").
    pub work: Vec<(String, String, u32)>,
    pub violations: Vec<String>,
    /// The next writes the ledger refuses as busy.
    pub busy_writes: u32,
    /// Reviewers and agents: chosen per attempt from these weights.
    pub hang_percent: u64,
    pub check_fail_percent: u64,
    /// The old reap: only by pid, so a pid never recorded escapes.
    pub fault_reap_by_pid_only: bool,
    /// Agents frozen for a paused task, over the run.
    pub holds: usize,
    /// Change requests sent into live sessions, over the run.
    pub turns: usize,
    /// Headless sessions stopped while their task was paused, and agents started resuming a
    /// conversation, over the run.
    pub pause_ends: usize,
    pub resumed: usize,
    /// What each conversation spent so far (by session id).
    pub conversations: BTreeMap<String, (u64, u64, f64)>,
    /// Agents that run in holders (the rest die with a crashed supervisor's PTYs, as in
    /// process), per hundred; and the attempts a restarted supervisor adopted.
    pub holder_percent: u64,
    pub adoptions: usize,
    /// Of them: held for a paused task (frozen or interrupted), and sessions kept through
    /// review.
    pub adopted_held: usize,
    pub adopted_kept: usize,
    pub trace: VecDeque<String>,
    /// The integration tip and number of done tasks the funnel invariant last looked at.
    pub last_checked: Option<(Option<String>, usize)>,
    /// Someone other than orch-tui moved the integration branch at some point.
    pub meddled: bool,
    /// The base commit the last sync asked for was to go onto.
    pub sync_asked: Option<String>,
    /// Attempts whose agent hit a limit (they must never count as failures).
    pub limited: std::collections::BTreeSet<AttemptId>,
    /// Each attempt's spend as last seen in the ledger (it never goes down).
    pub spend_seen: BTreeMap<i64, (i64, i64, f64)>,
}

pub type Shared = Arc<Mutex<World>>;

pub fn lock(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    pub fn note(&mut self, line: String) {
        if self.trace.len() >= 60 {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("[{:>7}] {line}", self.now));
    }

    fn next_due(&self) -> Option<u64> {
        let jobs = self.jobs.iter().map(|(t, _, _)| *t);
        let procs = self
            .procs
            .values()
            .filter(|p| p.alive)
            .map(FakeProc::due_at);
        jobs.chain(procs).min()
    }
}

impl FakeProc {
    /// When it acts next: its script's next step, or — once asked to stop — its death (at once
    /// on TERM, or at KILL after the grace when it ignores TERM).
    fn due_at(&self) -> u64 {
        match self.stop {
            Some((at, grace)) if matches!(self.plan, Plan::Hang { stubborn: true }) => at + grace,
            Some((at, _)) => at + 5,
            None if self.quitting => self.next_at,
            None if self.frozen_since.is_some() || self.interrupted => u64::MAX,
            None => self.next_at,
        }
    }

    /// Time it ran, not frozen, from `since` to `now`.
    pub fn running_ms(&self, since: u64, now: u64) -> u64 {
        let frozen_now = self.frozen_since.map_or(0, |f| now.saturating_sub(f));
        now.saturating_sub(since)
            .saturating_sub(self.frozen_ms + frozen_now)
    }
}

/// The runtime: a virtual clock; jobs finish, agents act, in an order the seed chooses.
pub struct SimRuntime {
    pub world: Shared,
}

impl Runtime for SimRuntime {
    fn now_ms(&self) -> u64 {
        lock(&self.world).now
    }

    fn sink(&self) -> Sink {
        let world = self.world.clone();
        let generation = lock(&world).generation;
        Arc::new(move |i| {
            let mut w = lock(&world);
            if w.generation == generation {
                w.inbox.push_back(i);
            }
        })
    }

    fn spawn(&mut self, job: Job) {
        let mut w = lock(&self.world);
        let at = w.now + w.rng.below(400);
        let generation = w.generation;
        w.jobs.push((at, generation, job));
    }

    fn next(&mut self, deadline_ms: u64) -> Incoming {
        loop {
            let mut w = lock(&self.world);
            if let Some(i) = w.inbox.pop_front() {
                return i;
            }
            let now = w.now;
            let due: Vec<usize> = (0..w.jobs.len()).filter(|&i| w.jobs[i].0 <= now).collect();
            if !due.is_empty() {
                let pick = due[w.rng.below(due.len() as u64) as usize];
                let (_, generation, job) = w.jobs.swap_remove(pick);
                let current = w.generation;
                drop(w);
                let out = job();
                if generation == current {
                    return out;
                }
                continue;
            }
            let acting: Vec<u32> = w
                .procs
                .iter()
                .filter(|(_, p)| p.alive && p.due_at() <= now)
                .map(|(pid, _)| *pid)
                .collect();
            if let Some(&pid) = w.rng.pick(&acting) {
                act(&mut w, pid);
                continue;
            }
            match w.next_due() {
                Some(t) if t <= deadline_ms => w.now = t.max(now),
                _ => {
                    w.now = deadline_ms.max(now);
                    return Incoming::Timeout;
                }
            }
        }
    }

    fn pause(&mut self, ms: u64) {
        lock(&self.world).now += ms;
    }

    fn spawn_after(&mut self, delay_ms: u64, job: Job) {
        let mut w = lock(&self.world);
        let at = w.now + delay_ms;
        let generation = w.generation;
        w.jobs.push((at, generation, job));
    }
}

pub struct SimProc {
    world: Shared,
    pid: u32,
}

impl AgentProc for SimProc {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn write(&self, bytes: Vec<u8>) {
        let mut w = lock(&self.world);
        keys(&mut w, self.pid, &bytes);
    }
    fn resize(&self, _rows: u16, _cols: u16) {}
    fn stop(&self, grace: Duration) {
        let mut w = lock(&self.world);
        let now = w.now;
        let mut ended_at_pause = false;
        if let Some(p) = w.procs.get(&self.pid)
            && p.stop.is_none()
            && p.headless_session
        {
            let state = w.ledger.task(&p.task).ok().flatten().map(|t| t.state);
            ended_at_pause = state == Some(orch_tui::core::state::TaskState::Paused);
        }
        if let Some(p) = w.procs.get_mut(&self.pid)
            && p.stop.is_none()
        {
            p.stop = Some((now, grace.as_millis() as u64));
        }
        if ended_at_pause {
            w.pause_ends += 1;
        }
    }
    fn freeze(&self, freeze: bool) {
        let mut w = lock(&self.world);
        let now = w.now;
        let Some(p) = w.procs.get_mut(&self.pid) else {
            return;
        };
        if p.headless_session {
            // Its connection to the API would time out while it is stopped.
            let line = format!("{}#{}: a headless session was frozen", p.task, p.n);
            w.violations.push(line);
            return;
        }
        match (freeze, p.frozen_since) {
            (true, None) => {
                p.frozen_since = Some(now);
                w.holds += 1;
            }
            (false, Some(since)) => {
                // It goes on where it stood: its next step is as far away as it was.
                let held = now.saturating_sub(since);
                p.frozen_ms += held;
                p.next_at = p.next_at.saturating_add(held);
                p.frozen_since = None;
            }
            _ => {
                let line = format!("{}#{} frozen={freeze} twice", p.task, p.n);
                w.violations.push(line);
            }
        }
    }
    fn screen(&self) -> Option<orch_tui::agent::screen::SharedScreen> {
        None
    }
}

pub struct SimAgents {
    pub world: Shared,
}

impl Agents for SimAgents {
    fn spawn(&self, l: Launch, _sink: Sink) -> Result<Box<dyn AgentProc>, String> {
        let mut w = lock(&self.world);
        let env = |k: &str| {
            l.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let reviewer = env("ORCH_ROLE") == "reviewer";
        let interactive = l.profile.mode == orch_tui::core::config::AgentMode::Interactive;
        let r = w.rng.below(100);
        let plan = if reviewer {
            match r {
                0..=69 => Plan::Review {
                    verdict: Some(true),
                },
                70..=89 => Plan::Review {
                    verdict: Some(false),
                },
                _ => Plan::Review { verdict: None },
            }
        } else {
            let hang = w.hang_percent;
            match r {
                _ if r < hang => Plan::Hang {
                    stubborn: w.rng.chance(50),
                },
                _ if r >= 96 => Plan::Limited,
                _ if r >= 93 => Plan::Infra,
                _ if r < hang + 8 => Plan::Fail {
                    report: w.rng.chance(50),
                },
                _ if r < hang + 12 => Plan::Nothing,
                _ => Plan::Work {
                    commit: w.rng.chance(25),
                    branch: w.rng.chance(12),
                    stay: w.rng.chance(50),
                    // A session's turn ends at its prompt: it says `worker done` far more
                    // often than it exits by itself.
                    report: w.rng.chance(if interactive { 80 } else { 20 }),
                    shared: w.rng.chance(15),
                },
            }
        };
        if !reviewer {
            base_holds_dependencies(&mut w, &env("ORCH_TASK"), l.attempt, &l.cwd);
            resumes_its_conversation(&mut w, &env("ORCH_TASK"), &l);
        }
        let headless_session = !interactive
            && !reviewer
            && l.profile.adapter == orch_tui::core::config::Adapter::Codex;
        // `exec resume ID` (`--resume ID` for Claude): the conversation goes on.
        let resumed = l
            .argv
            .windows(2)
            .find(|a| a[0] == "resume" || a[0] == "--resume")
            .map(|a| a[1].clone());
        if resumed.is_some() {
            w.resumed += 1;
        }
        let conversation = resumed
            .clone()
            .unwrap_or_else(|| format!("session-{}-{}", env("ORCH_TASK"), l.attempt.0));
        let earlier = resumed
            .and_then(|r| w.conversations.get(&r).copied())
            .unwrap_or_default();
        w.next_pid += 1;
        let pid = w.next_pid;
        let (generation, epoch) = (w.generation, w.epoch);
        let holder_percent = w.holder_percent;
        let held = w.rng.chance(holder_percent);
        let next_at = w.now + 20 + w.rng.below(500);
        let task = env("ORCH_TASK");
        let n: u32 = env("ORCH_ATTEMPT").parse().unwrap_or(0);
        // Slots are the executor's: a live agent of this supervisor never shares one.
        let slot: u32 = env("ORCH_SLOT").parse().unwrap_or(0);
        let taken = w
            .procs
            .values()
            .any(|p| p.alive && p.generation == generation && p.slot == slot);
        if slot == 0 || taken {
            w.violations.push(format!(
                "{task}#{n} started in slot {slot}, which a live agent holds (or no slot)"
            ));
        }
        w.note(format!("spawn {task}#{n} slot {slot} {plan:?}"));
        w.procs.insert(
            pid,
            FakeProc {
                attempt: l.attempt,
                task,
                n,
                token: env("ORCH_TOKEN"),
                worktree: l.cwd.clone(),
                epoch,
                plan,
                step: 0,
                next_at,
                stop: None,
                alive: true,
                slot,
                frozen_since: None,
                frozen_ms: 0,
                generation,
                spent: (0, 0, 0.0),
                interactive,
                headless_session,
                conversation,
                earlier,
                adopted: false,
                interrupted: false,
                input: String::new(),
                quitting: false,
                human_key_at: None,
                held,
                recorded_exit: None,
                branches_before: l.branches_before.clone(),
            },
        );
        Ok(Box::new(SimProc {
            world: self.world.clone(),
            pid,
        }))
    }

    fn reap_stale(&self, stale: &orch_tui::engine::world::Stale) {
        let pids: Vec<u32> = stale.agents.iter().filter_map(|(p, _)| *p).collect();
        let mut w = lock(&self.world);
        let epoch = w.epoch;
        let by_pid_only = w.fault_reap_by_pid_only;
        let stale: Vec<u32> = w
            .procs
            .iter()
            .filter(|(pid, p)| p.alive && p.epoch < epoch && (!by_pid_only || pids.contains(pid)))
            .filter(|(_, p)| !stale.keep.contains(&p.token))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in stale {
            if let Some(p) = w.procs.get_mut(&pid) {
                p.alive = false;
                if p.held {
                    p.recorded_exit = Some(Exit {
                        code: None,
                        signal: Some(9),
                    });
                }
            }
        }
    }

    fn probe(&self, attempt: AttemptId) -> Option<(HolderFact, Vec<String>)> {
        let w = lock(&self.world);
        let (pid, p) = w
            .procs
            .iter()
            .find(|(_, p)| p.attempt == attempt && p.held && p.epoch < w.epoch)?;
        let now = w.now;
        let fact = HolderFact {
            attempt,
            holder: attempt,
            live_pid: p.alive.then_some(*pid),
            exit: p.recorded_exit,
            held_ms: p.frozen_ms + p.frozen_since.map_or(0, |f| now.saturating_sub(f)),
            frozen: p.alive && p.frozen_since.is_some(),
        };
        (fact.live_pid.is_some() || fact.exit.is_some()).then(|| (fact, p.branches_before.clone()))
    }

    fn adopt(&self, holder: AttemptId, l: Launch, _sink: Sink) -> Result<Spawned, String> {
        let mut w = lock(&self.world);
        let (generation, epoch) = (w.generation, w.epoch);
        let slot: u32 = l
            .env
            .iter()
            .find(|(k, _)| k == "ORCH_SLOT")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let found = w
            .procs
            .iter()
            .find(|(_, p)| p.attempt == holder && p.held && p.alive)
            .map(|(pid, _)| *pid);
        let Some(pid) = found else {
            return Err("its holder is gone".into());
        };
        let recorded = w
            .ledger
            .attempts(&l.task)
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.id == l.attempt)
            .and_then(|a| a.pid);
        if recorded.map(|p| p as u32) != Some(pid) {
            let v = format!(
                "attempt {} adopted with pid {pid}, recorded {recorded:?}",
                l.attempt
            );
            w.violations.push(v);
        }
        let taken = w
            .procs
            .iter()
            // This supervisor's own (a dead one's leftover job may still start an agent).
            .any(|(q, p)| *q != pid && p.alive && p.epoch == epoch && p.slot == slot);
        if slot == 0 || taken {
            let v = format!(
                "adopted attempt {} got slot {slot}, held by a live agent",
                l.attempt
            );
            w.violations.push(v);
        }
        if let Some(p) = w.procs.get_mut(&pid) {
            // Its reports and its exit reach this supervisor from now on.
            p.generation = generation;
            p.epoch = epoch;
            p.slot = slot;
            p.adopted = true;
        }
        w.adoptions += 1;
        let kept = w
            .ledger
            .attempts(&l.task)
            .unwrap_or_default()
            .into_iter()
            .any(|a| a.id == l.attempt && !a.state.is_live());
        let held = w
            .procs
            .get(&pid)
            .is_some_and(|p| p.frozen_since.is_some() || p.interrupted);
        w.adopted_kept += usize::from(kept);
        w.adopted_held += usize::from(held && !kept);
        w.note(format!("adopt attempt {} pid {pid}", l.attempt));
        let branches = w
            .procs
            .get(&pid)
            .map(|p| p.branches_before.clone())
            .unwrap_or_default();
        Ok(Spawned {
            process: Box::new(SimProc {
                world: self.world.clone(),
                pid,
            }),
            base: String::new(),
            branches,
        })
    }
}

pub struct SimChecks {
    pub world: Shared,
}

impl Checks for SimChecks {
    fn run(&self, _dir: &str, commands: &[String], _log: &str) -> Vec<CheckOutcome> {
        let mut w = lock(&self.world);
        let fail = w.check_fail_percent;
        let mut out = Vec::new();
        for c in commands {
            let passed = !w.rng.chance(fail);
            out.push(CheckOutcome {
                command: c.clone(),
                passed,
                exit_code: Some(if passed { 0 } else { 1 }),
                timed_out: false,
                duration_ms: 5,
                tail: if passed { String::new() } else { "boom".into() },
            });
            if !passed {
                break;
            }
        }
        out
    }
}

/// The real ledger store, stamped with the simulated clock, sometimes busy.
pub struct SimStore {
    pub inner: SqliteStore,
    pub world: Shared,
}

impl Store for SimStore {
    fn write(&mut self, ops: &[Op]) -> Result<(), WriteError> {
        let now = {
            let mut w = lock(&self.world);
            if w.busy_writes > 0 {
                w.busy_writes -= 1;
                // Both are transient to the executor; alternate so a run meets each.
                let what = if w.busy_writes.is_multiple_of(2) {
                    "database is locked (simulated)"
                } else {
                    "database or disk is full (simulated)"
                };
                return Err(WriteError::Transient(what.into()));
            }
            w.now
        };
        with_clock(now, || self.inner.write(ops))
    }
    fn boot(&mut self) -> Result<Boot, String> {
        self.inner.boot()
    }
    fn rows(&mut self, tasks: &[String]) -> Result<Observed, String> {
        self.inner.rows(tasks)
    }
    fn foreign_changes(&mut self) -> Result<(Vec<String>, bool), String> {
        self.inner.foreign_changes()
    }
    fn token(&mut self, attempt: AttemptId) -> Option<String> {
        self.inner.token(attempt)
    }
    fn check_summary(&mut self, task: &str, n: u32) -> String {
        self.inner.check_summary(task, n)
    }
}

impl World {
    pub fn new(seed: u64, git: FakeGit, ledger: Ledger) -> World {
        World {
            now: 1_000_000,
            rng: Rng(seed),
            jobs: Vec::new(),
            inbox: VecDeque::new(),
            procs: BTreeMap::new(),
            next_pid: 1000,
            generation: 0,
            epoch: 0,
            git,
            ledger,
            work: Vec::new(),
            violations: Vec::new(),
            busy_writes: 0,
            hang_percent: 6,
            check_fail_percent: 10,
            fault_reap_by_pid_only: false,
            holds: 0,
            turns: 0,
            pause_ends: 0,
            resumed: 0,
            conversations: BTreeMap::new(),
            holder_percent: 50,
            adoptions: 0,
            adopted_held: 0,
            adopted_kept: 0,
            trace: VecDeque::new(),
            last_checked: None,
            meddled: false,
            sync_asked: None,
            limited: Default::default(),
            spend_seen: BTreeMap::new(),
        }
    }

    /// The supervisor died: what its jobs and agents report from now on goes nowhere; agents keep
    /// running. Returns the jobs that were under way: the caller runs some of them (they got as
    /// far as their git work before the process died).
    pub fn crash(&mut self) -> Vec<Job> {
        self.generation += 1;
        self.inbox.clear();
        std::mem::take(&mut self.jobs)
            .into_iter()
            .map(|(_, _, job)| job)
            .collect()
    }
}
