//! The executor: feeds events to the supervisor's decision function and performs the effects it
//! returns — ledger writes here and now, slow work as jobs — until the run settles or stops.
//! It decides nothing itself: a write that lost its race goes back as an event with fresh rows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::jobs::{self, JobCtx, SetupPlan};
use super::world::{AgentProc, Incoming, Runtime, Store, WriteError};
use super::{AgentView, EngineError, EngineEvent, RunEnd};
use crate::core::config::Config;
use crate::core::domain::{AttemptId, Role};
use crate::core::supervisor::{Effect, Event, PromptSpec, Setup, Started, Supervisor};

/// The fallback tick: the loop looks at the ledger this often even without a poke, in case one
/// was lost. Nothing waits for it in the normal path.
pub const FALLBACK_TICK_MS: u64 = 1000;

/// Events one round may take (plus 20 a task) before the rules are taken to be going round in
/// circles: far more than any real round needs (a task moves a handful of times in a round).
mod agents;

const MAX_STEPS_PER_ROUND: usize = 100_000;

/// Between an interactive session's interrupt, its exit command and the Enter after it.
const STOP_KEY_GAP_MS: u64 = 300;

/// A busy ledger or a full disk: how often to try again, and how often to say so.
const RETRY_MS: u64 = 250;
const REPORT_EVERY: u32 = 8;

/// What the executor needs to turn a setup into a process.
#[derive(Clone)]
pub struct SetupEnv {
    pub ledger_path: String,
    pub prompts_dir: String,
    pub worktrees_dir: String,
    pub orch_bin: String,
    pub rotate_bytes: u64,
}

/// A live agent process and what clients show of it.
struct Running {
    process: Box<dyn AgentProc>,
    /// When it started, moved later by the time it was held (a paused task's clock stands).
    started_wall: std::time::Instant,
    /// Held (frozen or interrupted) since then.
    held_since: Option<std::time::Instant>,
}

pub struct Executor {
    pub(crate) core: Supervisor,
    store: Box<dyn Store>,
    rt: Box<dyn Runtime>,
    ctx: JobCtx,
    env: SetupEnv,
    procs: BTreeMap<AttemptId, Running>,
    /// The branches that existed when each attempt started (its process may be gone by the
    /// time its work is collected).
    branches_before: BTreeMap<AttemptId, Vec<String>>,
    /// The slot of each attempt whose process is being set up or runs: the smallest number
    /// free when its setup started, kept until its process is gone (`ORCH_SLOT`, its ports).
    /// The decision function does not number slots; this is the executor's bookkeeping.
    slots: BTreeMap<AttemptId, u32>,
    queue: VecDeque<Event>,
    /// Answers to this step's writes, in the order they were written.
    answers: Vec<Event>,
    /// Writes made so far, and how many there were when the ledger was last read for an
    /// `Observed`: rows read before a later write may be older than the model (an integration
    /// tip that moved since), so they are read again before the supervisor sees them.
    writes: u64,
    observed_at: u64,
    pub(crate) views: Arc<Mutex<BTreeMap<AttemptId, AgentView>>>,
    pub(crate) observers: Vec<std::sync::mpsc::Sender<EngineEvent>>,
    progress: Box<dyn FnMut(&str) + Send>,
    stay_open: bool,
    /// `Finished` was sent for the current settled state.
    announced: bool,
    /// Attempts whose process now runs a later attempt (a session kept through review): what
    /// it says, and what is addressed to it, is that attempt's.
    aliases: BTreeMap<AttemptId, AttemptId>,
    /// Readies the worktree pool off the dispatch path.
    pool: super::pool_keeper::PoolKeeper,
}

impl Executor {
    pub fn new(
        core: Supervisor,
        store: Box<dyn Store>,
        rt: Box<dyn Runtime>,
        ctx: JobCtx,
        env: SetupEnv,
        progress: Box<dyn FnMut(&str) + Send>,
        stay_open: bool,
    ) -> Executor {
        Executor {
            core,
            store,
            rt,
            ctx,
            env,
            procs: BTreeMap::new(),
            branches_before: BTreeMap::new(),
            slots: BTreeMap::new(),
            queue: VecDeque::new(),
            answers: Vec::new(),
            writes: 0,
            observed_at: 0,
            views: Arc::new(Mutex::new(BTreeMap::new())),
            observers: Vec::new(),
            progress,
            stay_open,
            announced: false,
            aliases: BTreeMap::new(),
            pool: Default::default(),
        }
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.core
    }

    fn config(&self) -> &Config {
        self.core.config()
    }

    /// Read the ledger and the world, and let the supervisor settle what a previous one left.
    pub fn boot(&mut self) -> Result<(), EngineError> {
        let mut boot = self.store.boot().map_err(EngineError::Failed)?;
        let branch = format!("refs/heads/{}", self.config().integration_branch);
        let git = self.ctx.git.clone();
        boot.actual_tip = git
            .rev_parse(&branch)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        if let Some(actual) = &boot.actual_tip {
            // Only a merge that was in flight is in question: asking git about every merge ever
            // made cost 40 ms a done task at each start.
            let merging: std::collections::BTreeSet<&str> = boot
                .tasks
                .iter()
                .filter(|t| t.state == crate::core::state::TaskState::Merging)
                .map(|t| t.id.as_str())
                .collect();
            for a in boot
                .attempts
                .iter()
                .filter(|a| merging.contains(a.task.as_str()))
            {
                if let Some(tip) = &a.merge_tip {
                    let yes = git.is_ancestor(tip, actual).unwrap_or(false);
                    boot.merged.push((a.id, yes));
                }
            }
        }
        boot.worktrees = git.orch_worktrees().unwrap_or_default();
        // Agents an earlier supervisor left in holders: adopted, or finished from their record.
        let epoch = self.core.epoch();
        let probed: Vec<_> =
            crate::core::supervisor::holders_to_probe(&boot.attempts, &boot.tasks, epoch)
                .into_iter()
                .filter_map(|(attempt, holder)| {
                    let (mut fact, branches) = self.ctx.agents.probe(holder)?;
                    fact.attempt = attempt;
                    fact.holder = holder;
                    Some((fact, branches))
                })
                .collect();
        for (fact, branches) in probed {
            // Collecting an adopted attempt's work tells the branches it made by these.
            self.branches_before.insert(fact.attempt, branches);
            boot.holders.push(fact);
        }
        // No base recorded yet (the first start, or a ledger from before bases): this run's,
        // with the commit where the integration branch meets it.
        if boot.sync.base_ref.is_none()
            && let (Some(base), Some(actual)) = (self.config().base.clone(), &boot.actual_tip)
            && let Ok(Some(oid)) = git.rev_parse(&base)
            && let Ok(meet) = git.merge_base(actual, &oid)
        {
            boot.base = Some((base, meet));
        }
        self.queue.push_back(Event::Boot(Box::new(boot)));
        self.drain()
    }

    /// Supervise until everything settled (or a stop).
    pub fn run(&mut self) -> Result<RunEnd, EngineError> {
        loop {
            if let Some(end) = self.step_once()? {
                return Ok(end);
            }
        }
    }

    /// One round: act on everything queued, end the run if it is over, else wait for the next
    /// thing (or the next timer) and take in whatever else already waits.
    pub fn step_once(&mut self) -> Result<Option<RunEnd>, EngineError> {
        self.drain()?;
        if self.core.is_settled() || self.core.is_stopped() {
            // Before ending, take in what already waits (a human command that just landed).
            self.absorb_waiting()?;
        }
        if self.core.is_stopped() {
            self.finish_stop();
            // A stop after everything settled ends the run as it stands.
            return Ok(Some(if self.core.is_settled() {
                self.settled_end()
            } else {
                RunEnd::Stopped
            }));
        }
        if self.core.is_settled() {
            if !self.announced {
                let scratch = format!("{}/{}", self.env.worktrees_dir, RECHECK_WORKTREE);
                let _ = self.ctx.git.drop_scratch(&scratch);
                self.pool.quiesce();
                let _ = self.ctx.git.trim_pool();
                self.emit(EngineEvent::Finished);
                self.announced = true;
            }
            if !self.stay_open {
                return Ok(Some(self.settled_end()));
            }
        } else {
            self.announced = false;
            tracing::debug!(activity = %self.core.activity(), "not settled");
        }
        let now = self.rt.now_ms();
        let wake = self
            .core
            .next_wake_ms()
            .map_or(now + FALLBACK_TICK_MS, |w| w.min(now + FALLBACK_TICK_MS));
        let first = self.rt.next(wake.max(now));
        self.take(first)?;
        // Whatever else already waits joins this round (coalescing).
        self.absorb_waiting()?;
        self.queue.push_back(Event::Tick);
        Ok(None)
    }

    /// Take in everything that waits right now, and what other processes wrote, and act on it.
    fn absorb_waiting(&mut self) -> Result<(), EngineError> {
        loop {
            let now = self.rt.now_ms();
            match self.rt.next(now) {
                Incoming::Timeout => break,
                other => self.take(other)?,
            }
        }
        self.look_at_ledger()?;
        self.drain()
    }

    /// Stop every agent this executor started, at once and with their whole trees (after a
    /// panic: nothing else of the run can be trusted).
    pub fn kill_agents_now(&mut self) {
        let grace = Duration::from_millis(self.config().stop_grace_ms);
        let ids: Vec<AttemptId> = self.procs.keys().copied().collect();
        for id in ids {
            let token = self.store.token(id);
            if let Some(r) = self.procs.remove(&id) {
                crate::os::kill_tree(r.process.pid() as i32, token.as_deref(), grace);
            }
        }
    }

    fn settled_end(&self) -> RunEnd {
        if self.core.all_done() {
            RunEnd::AllDone
        } else {
            RunEnd::Unfinished
        }
    }

    /// Wait for the agents the stop asked to end (each is stopped with its tree), bounded.
    fn finish_stop(&mut self) {
        let scratch = format!("{}/{}", self.env.worktrees_dir, RECHECK_WORKTREE);
        let _ = self.ctx.git.drop_scratch(&scratch);
        self.pool.quiesce();
        let _ = self.ctx.git.trim_pool();
        self.publish_views();
    }

    /// The attempt a process runs now (it may have been started for an earlier one).
    fn current(&self, id: AttemptId) -> AttemptId {
        let mut at = id;
        // Bounded: one link per change request.
        for _ in 0..1000 {
            match self.aliases.get(&at) {
                Some(next) => at = *next,
                None => break,
            }
        }
        at
    }

    /// A process's event, addressed to the attempt it runs now.
    fn readdress(&self, e: Event) -> Event {
        match e {
            Event::Exited { attempt, exit } => Event::Exited {
                attempt: self.current(attempt),
                exit,
            },
            Event::Agent { attempt, event } => Event::Agent {
                attempt: self.current(attempt),
                event,
            },
            Event::Screen { attempt, seen } => Event::Screen {
                attempt: self.current(attempt),
                seen,
            },
            e => e,
        }
    }

    /// Keys into an agent: the human's, or orch-tui's own. Enter after a question: answered.
    fn keys(&mut self, attempt: AttemptId, bytes: Vec<u8>, human: bool) {
        let attempt = self.current(attempt);
        let enter = bytes.contains(&b'\r');
        if let Some(r) = self.procs.get(&attempt) {
            r.process.write(bytes);
        }
        if enter {
            self.queue.push_back(Event::Answered { attempt });
        }
        if human {
            self.queue.push_back(Event::HumanTyping { attempt });
        }
    }

    fn take(&mut self, incoming: Incoming) -> Result<(), EngineError> {
        match incoming {
            Incoming::Event(e) => {
                let e = self.readdress(e);
                // A prepared merge that will not land (or lands only once the supervisor asks
                // for the move) takes back the tip the pool was told of ahead.
                if matches!(
                    e,
                    Event::IntegrationMoved { .. } | Event::MergePrepared { .. }
                ) {
                    self.pool.moved();
                }
                if let Event::Exited { attempt, .. } = &e {
                    self.procs.remove(attempt);
                    self.slots.remove(attempt);
                    // What the agent reported before it exited (`worker done`, a verdict) is in
                    // the ledger by now: let the supervisor see it before the exit.
                    self.look_at_ledger()?;
                }
                self.queue.push_back(e);
            }
            Incoming::Spawned { attempt, result } => {
                let result = match result {
                    Ok(s) => {
                        let pid = s.process.pid();
                        let base = s.base.clone();
                        self.branches_before.insert(attempt, s.branches);
                        self.procs.insert(
                            attempt,
                            Running {
                                process: s.process,
                                started_wall: std::time::Instant::now(),
                                held_since: None,
                            },
                        );
                        Ok(Started { pid, base })
                    }
                    Err(e) => {
                        self.slots.remove(&attempt);
                        Err(e)
                    }
                };
                self.queue.push_back(Event::SetupDone { attempt, result });
            }
            Incoming::Poke => self.look_at_ledger()?,
            Incoming::Input { attempt, bytes } => self.keys(attempt, bytes, true),
            Incoming::Keys { attempt, bytes } => self.keys(attempt, bytes, false),
            Incoming::HardStop { attempt } => {
                let grace = Duration::from_millis(self.config().stop_grace_ms);
                if let Some(r) = self.procs.get(&self.current(attempt)) {
                    tracing::info!(%attempt, "the session did not exit by itself: TERM");
                    r.process.stop(grace);
                }
            }
            Incoming::Resize {
                attempt,
                rows,
                cols,
            } => {
                if let Some(r) = self.procs.get(&self.current(attempt)) {
                    r.process.resize(rows, cols);
                }
            }
            Incoming::Stop { stop_agents } => self.queue.push_back(Event::Stop { stop_agents }),
            Incoming::EndWhenSettled => self.stay_open = false,
            Incoming::TipComing { tip } => self.pool.moving(&tip),
            Incoming::Timeout => {}
        }
        Ok(())
    }

    /// Other processes wrote the ledger: hand the supervisor the rows they touched.
    fn look_at_ledger(&mut self) -> Result<(), EngineError> {
        let (tasks, hold) = self.store.foreign_changes().map_err(EngineError::Failed)?;
        if tasks.is_empty() && !hold {
            return Ok(());
        }
        let observed = self.store.rows(&tasks).map_err(EngineError::Failed)?;
        self.observed_at = self.writes;
        self.queue.push_back(Event::Observed(observed));
        Ok(())
    }

    /// Step the supervisor through every queued event, performing what it asks for.
    fn drain(&mut self) -> Result<(), EngineError> {
        let mut changed = false;
        let mut steps = 0usize;
        while let Some(event) = self.queue.pop_front() {
            // Decisions that keep answering themselves would spin here for ever; end the run
            // loudly instead (a bug in the rules: nothing outside can settle it).
            steps += 1;
            let limit = MAX_STEPS_PER_ROUND + 20 * self.core.model.tasks.len();
            if steps > limit {
                return Err(EngineError::Failed(format!(
                    "the supervisor's decisions did not settle after {limit} steps \
                     in one round (last: {event:?}); this is a bug in orch-tui: please report it \
                     with .orch/logs/orch-tui.log"
                )));
            }
            // Rows another process wrote were read when it poked; this supervisor's own writes
            // may have landed since (their answers go first): read them again now, or the model
            // would go back to an older integration tip, hold or task state.
            let event = match event {
                Event::Observed(o) if self.writes != self.observed_at => {
                    let tasks: Vec<String> = o.tasks.iter().map(|t| t.id.clone()).collect();
                    self.observed_at = self.writes;
                    Event::Observed(self.store.rows(&tasks).map_err(EngineError::Failed)?)
                }
                e => e,
            };
            // What clients show changes with everything but the clock's tick.
            changed |= !matches!(event, Event::Tick);
            let now = self.rt.now_ms();
            let effects = self.core.step(now, event);
            for e in effects {
                self.perform(e)?;
            }
            // The writes' answers come next, in the order the writes landed, before anything
            // else: the supervisor's rows follow the ledger's order.
            for answer in self.answers.drain(..).rev() {
                self.queue.push_front(answer);
            }
        }
        if changed {
            self.emit(EngineEvent::Changed);
        }
        if !self.core.is_settled() && !self.core.is_stopped() {
            let tip = self.core.model.integration_tip.clone();
            self.pool.tend(tip.as_deref(), &self.ctx, self.rt.as_mut());
        }
        Ok(())
    }

    fn perform(&mut self, effect: Effect) -> Result<(), EngineError> {
        match effect {
            Effect::Write { id, ops, tasks } => {
                let event = self.write(&ops, &tasks, id)?;
                self.answers.push(event);
            }
            Effect::Setup(s) => {
                self.pool.taken();
                self.start_setup(s)
            }
            Effect::Stop { attempt, why } => {
                tracing::info!(%attempt, %why, "stopping an agent");
                self.stop_agent(attempt);
            }
            Effect::SendTurn { attempt, text } => {
                use crate::agent::adapter::pause;
                tracing::info!(%attempt, "typing its next turn");
                if let Some(r) = self.procs.get(&attempt) {
                    let bracketed = r
                        .process
                        .screen()
                        .is_some_and(|s| s.lock().is_ok_and(|p| p.screen().bracketed_paste()));
                    r.process.write(pause::paste(&text, bracketed));
                    self.type_later(attempt, vec![b"\r".to_vec()], pause::ENTER_AFTER_MS);
                }
            }
            Effect::HandOver { from, to } => {
                if let Some(r) = self.procs.remove(&from) {
                    self.procs.insert(to, r);
                }
                if let Some(slot) = self.slots.remove(&from) {
                    self.slots.insert(to, slot);
                }
                self.aliases.insert(from, to);
            }
            Effect::Freeze { attempt } | Effect::Interrupt { attempt } => {
                let frozen = matches!(effect, Effect::Freeze { .. });
                if let Some(r) = self.procs.get_mut(&attempt) {
                    if frozen {
                        r.process.freeze(true);
                    } else {
                        r.process
                            .write(crate::agent::adapter::pause::INTERRUPT.to_vec());
                    }
                    r.held_since.get_or_insert_with(std::time::Instant::now);
                }
            }
            Effect::Thaw { attempt } | Effect::Continue { attempt } => {
                let thaw = matches!(effect, Effect::Thaw { .. });
                if let Some(r) = self.procs.get_mut(&attempt) {
                    if let Some(since) = r.held_since.take() {
                        r.started_wall += since.elapsed();
                    }
                    if thaw {
                        r.process.freeze(false);
                    } else {
                        use crate::agent::adapter::pause;
                        let bracketed = r
                            .process
                            .screen()
                            .is_some_and(|s| s.lock().is_ok_and(|p| p.screen().bracketed_paste()));
                        r.process.write(pause::continue_paste(bracketed));
                        self.type_later(attempt, vec![b"\r".to_vec()], pause::ENTER_AFTER_MS);
                    }
                }
            }
            Effect::Type { attempt, keys } => {
                tracing::info!(%attempt, chunks = keys.len(), "typing an answer");
                let mut keys = keys.into_iter();
                if let (Some(first), Some(r)) = (keys.next(), self.procs.get(&attempt)) {
                    r.process.write(first);
                }
                // The rest a moment apart, through the loop.
                self.type_later(attempt, keys.collect(), 150);
            }
            Effect::Collect(c) => {
                // Unknown (empty) after a restart: then no branch is taken for the agent's.
                let before = self.branches_before.remove(&c.attempt).unwrap_or_default();
                let job = jobs::collect_job(&self.ctx, c, before);
                self.rt.spawn(job);
            }
            Effect::RunChecks {
                task,
                n,
                worktree,
                log,
                commands,
            } => {
                let job = jobs::checks_job(&self.ctx, task, n, worktree, log, commands);
                self.rt.spawn(job);
            }
            Effect::PrepareMerge(m) => {
                let scratch = format!("{}/{}", self.env.worktrees_dir, RECHECK_WORKTREE);
                let job = jobs::merge_job(&self.ctx, m, scratch, self.worktree_prep());
                self.rt.spawn(job);
            }
            Effect::MoveIntegration { task, tip, onto } => {
                self.pool.moving(&tip);
                let refname = format!("refs/heads/{}", self.config().integration_branch);
                let job = jobs::move_job(&self.ctx, task, refname, tip, onto);
                self.rt.spawn(job);
            }
            Effect::Tidy(t) => {
                self.pool.used();
                let job = jobs::tidy_job(&self.ctx, t);
                self.rt.spawn(job);
            }
            Effect::PrepareSync(p) => {
                let scratch = format!("{}/{}", self.env.worktrees_dir, RECHECK_WORKTREE);
                let job = jobs::sync_job(&self.ctx, p, scratch, self.worktree_prep());
                self.rt.spawn(job);
            }
            Effect::MoveSync { tip, from } => {
                let refname = format!("refs/heads/{}", self.config().integration_branch);
                let job = jobs::sync_move_job(&self.ctx, refname, tip, from);
                self.rt.spawn(job);
            }
            Effect::Backup { name, oid } => {
                if let Err(e) = self.ctx.git.backup_ref(&name, &oid) {
                    tracing::error!(%name, %oid, error = %e, "could not write a backup ref");
                }
            }
            Effect::Adopt(a) => self.adopt(a),
            Effect::ReapStale { attempts, keep } => {
                // Before anything of this epoch starts: nothing of an earlier supervisor may run
                // beside it (with its old token it could still write to the worktree).
                let agents = attempts
                    .iter()
                    .map(|(id, pid)| (*pid, self.store.token(*id).unwrap_or_default()))
                    .collect();
                self.ctx.agents.reap_stale(&super::world::Stale {
                    agents,
                    ledger: self.env.ledger_path.clone(),
                    epoch: self.core.epoch(),
                    keep: keep.iter().filter_map(|id| self.store.token(*id)).collect(),
                });
            }
            Effect::Say(line) => {
                tracing::info!("{line}");
                (self.progress)(&line);
            }
        }
        Ok(())
    }

    /// One write, waited out while the ledger is busy or the disk full (saying so), answered
    /// as `Written` or `Lost`.
    fn write(
        &mut self,
        ops: &[crate::core::ops::Op],
        tasks: &[String],
        id: crate::core::supervisor::WriteId,
    ) -> Result<Event, EngineError> {
        let mut tries = 0u32;
        loop {
            match self.store.write(ops) {
                Ok(()) => {
                    self.writes += 1;
                    if tries > 0 {
                        (self.progress)("the ledger is writable again; going on");
                    }
                    return Ok(Event::Written(id));
                }
                Err(WriteError::Conflict(why)) => {
                    tracing::info!(%why, "a write lost its race; deciding again");
                    // Fresh rows of what the write was about (with the run's hold and tip).
                    let observed = self.store.rows(tasks).map_err(EngineError::Failed)?;
                    return Ok(Event::Lost {
                        write: id,
                        observed,
                    });
                }
                Err(WriteError::Transient(why)) => {
                    if tries.is_multiple_of(REPORT_EVERY) {
                        let line = format!("waiting for the ledger: {why}");
                        tracing::warn!("{line}");
                        (self.progress)(&line);
                        self.emit(EngineEvent::Waiting(line));
                    }
                    tries += 1;
                    self.rt.pause(RETRY_MS);
                }
                Err(WriteError::Fatal(why)) => return Err(EngineError::Failed(why)),
            }
        }
    }

    pub(crate) fn emit(&mut self, e: EngineEvent) {
        if matches!(e, EngineEvent::Changed) {
            self.publish_views();
        }
        self.observers.retain(|o| o.send(e.clone()).is_ok());
    }

    /// Keep the clients' view of live agents in step.
    fn publish_views(&self) {
        let Ok(mut v) = self.views.lock() else { return };
        v.clear();
        for (id, l) in self.core.live() {
            let running = self.procs.get(id);
            let budget = l
                .deadline_ms
                .map(|d| Duration::from_millis(d.saturating_sub(l.started_ms)));
            let started = running.map_or_else(std::time::Instant::now, |r| r.started_wall);
            v.insert(
                *id,
                AgentView {
                    attempt: *id,
                    task: l.task.clone(),
                    n: l.n,
                    profile: l.profile.clone(),
                    started,
                    deadline: budget.map(|b| started + b),
                    held_since: running.and_then(|r| r.held_since),
                    screen: running.and_then(|r| r.process.screen()),
                },
            );
        }
    }
}

/// The reusable worktree re-checks run in (task ids cannot start with `_`).
pub const RECHECK_WORKTREE: &str = "_recheck";
