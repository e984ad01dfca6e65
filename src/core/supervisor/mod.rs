//! The supervisor's decisions as one pure function: `step(now, event) -> effects`.
//!
//! The engine (an executor) performs the effects — ledger writes, git jobs, agent processes — and
//! feeds their results back as events. Decisions are level-triggered: after every event the rules
//! look at the whole state (the ledger's rows plus what is running) and emit what is missing, so
//! a lost race, a restart or a human command in between is never a special case: the rows are
//! re-read and the same rules decide again.
//!
//! A write is only a request: the model changes when the executor says it committed
//! (`Event::Written`), and effects that depend on a write are emitted by the rules once its rows
//! say so. A task with a write in flight is left alone until the answer comes.

mod adopt;
mod agents;
mod ahead;
mod boot;
mod budget;
mod collect;
mod dag;
mod events;
mod exits;
mod funnel;
mod kept;
mod limits;
mod live;
mod merge;
pub mod model;
mod model_check;
mod pause;
mod progress;
mod speculate;
mod sync;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;
mod turns;
mod waiting;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use adopt::holders_to_probe;
pub use agents::{AgentFacts, Baseline, attempt_spend, failure_words};
pub use events::{
    Adopt, Boot, Change, CheckOutcome, Collect, Effect, Event, Exit, HolderFact, JobFailure,
    MergeOutcome, MergePrep, MoveOutcome, Observed, PromptSpec, Setup, Started, Stray, SyncOutcome,
    SyncPrep, SyncRequest, SyncState, Tidy, WorktreeFact,
};
pub use kept::{TYPING_QUIET_MS, change_request_text};
pub use live::{prompt_text, trailers};
pub use model::{AttemptRec, Model, TaskRec};
pub use pause::{Held, HoldHow, prompt_hash};
pub use speculate::Candidate;
pub use sync::ref_label;
pub use waiting::screen_replaces;

use crate::core::config::Config;
use crate::core::domain::{AttemptId, AttemptNo, Role};
use crate::core::ops::Op;

/// Old bugs, switchable back on, so a test can show the simulator finds each of them. Every
/// switch is off in a run; nothing but the simulator's own tests turns one on.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// A task approved with nothing to merge is skipped by the merge queue (it then waits
    /// forever).
    pub approve_empty_waits: bool,
    /// A blocked task is unblocked as soon as any one dependency stops blocking it.
    pub unblock_on_any: bool,
    /// Recovery takes a recorded merge as landed without looking at the branch.
    pub trust_recorded_merge: bool,
    /// A merge whose branch moved under it is taken as merged.
    pub ignore_moved_integration: bool,
    /// Worktrees of finished tasks left by a crash stay.
    pub keep_leftovers: bool,
    /// A sync moves the integration branch without recording its new tip first.
    pub sync_unrecorded_tip: bool,
    /// The time a paused task's agent was held counts against its time budget.
    pub count_paused_time: bool,
}

/// Identifies one write request, so its answer finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

/// Where attempts' worktrees and logs go (absolute paths, as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    pub worktrees: String,
    pub logs: String,
}

/// Where a live attempt's process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Worktree and process being made.
    SettingUp,
    Running {
        pid: u32,
    },
    /// Exited well (or, an interactive session, said it is done and stays): its work is being
    /// committed.
    Collecting,
    /// An interactive session whose work is in review: its attempt is closed, its process
    /// stays idle at its prompt for a change request (`kept.rs`).
    InReview {
        pid: u32,
    },
    /// Its end is decided and being written.
    Closing,
}

/// A live attempt: what runs, not what the ledger says (that is `model.attempts`).
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub task: String,
    pub n: AttemptNo,
    pub role: Role,
    pub profile: String,
    pub phase: Phase,
    /// Why we asked it to stop, once we did.
    pub stop: Option<String>,
    pub deadline_ms: Option<u64>,
    pub exit: Option<Exit>,
    pub started_ms: u64,
    /// What the agent's own output said (spend, failures, its conversation).
    pub facts: AgentFacts,
    /// Held for a paused task (frozen or interrupted) since this moment: its clock stands
    /// still until it is let go on (`deadline_ms` and `started_ms` then move by the pause).
    pub held: Option<Held>,
    /// Time spent held so far (what a time budget does not count).
    pub held_ms: u64,
    /// The prompt it was started with (a hash): an edit while paused means a fresh attempt.
    pub prompt_hash: u64,
    /// Its work is collected while its process stays (an interactive session that said it
    /// is done): the pid it keeps.
    pub kept: Option<u32>,
    /// The human types into its pane until then: nothing is typed into it before.
    pub typing_until_ms: u64,
    /// A change request to type into its session as its next turn (once nobody types).
    pub turn: Option<String>,
}

impl Live {
    /// Attempt `a`'s agent in `phase`, started at `started_ms` with the prompt hashed as
    /// `prompt_hash`: no deadline, not asked to stop, not held, not kept, nothing known of its
    /// output yet. Each way an agent becomes live sets what differs.
    fn of(a: &AttemptRec, phase: Phase, started_ms: u64, prompt_hash: u64) -> Live {
        Live {
            task: a.task.clone(),
            n: a.n,
            role: a.role,
            profile: a.profile.clone(),
            phase,
            stop: None,
            deadline_ms: None,
            exit: None,
            started_ms,
            facts: AgentFacts::default(),
            held: None,
            held_ms: 0,
            prompt_hash,
            kept: None,
            typing_until_ms: 0,
            turn: None,
        }
    }
}

/// Where the merge queue's one merge stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeRun {
    /// Replaying (and re-checking) onto the integration tip.
    Preparing { task: String, attempt: AttemptId },
    /// The new tip is being recorded in the ledger.
    Recording {
        task: String,
        attempt: AttemptId,
        tip: String,
        onto: String,
        from: String,
    },
    /// The integration branch is being moved.
    Moving {
        task: String,
        attempt: AttemptId,
        tip: String,
        onto: String,
        from: String,
    },
    /// The outcome is being written.
    Closing { task: String },
}

impl MergeRun {
    pub fn task(&self) -> &str {
        match self {
            MergeRun::Preparing { task, .. }
            | MergeRun::Recording { task, .. }
            | MergeRun::Moving { task, .. }
            | MergeRun::Closing { task } => task,
        }
    }
}

/// A write waiting for its answer, and what to do once it committed.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    ops: Vec<Op>,
    tasks: Vec<String>,
    then: Then,
}

/// Follow-ups of a write that are not visible in the rows it writes.
#[derive(Debug, Clone, PartialEq)]
enum Then {
    Nothing,
    /// Say this once the write landed.
    Say(String),
    /// The merge's new tip is recorded: move the branch.
    MoveIntegration,
    /// The merge is written: tidy the merged attempt's worktree and branch.
    TidyMerged(Tidy, String),
    /// The merge's outcome is written: the queue is free again.
    MergeClosed(Option<String>),
    /// A boot write: nothing more, but the boot is only done when every one answered.
    Boot,
    /// The sync's new tip is recorded: move the branch.
    MoveSync,
    /// The sync's outcome is written: the queue is free again.
    SyncClosed(Option<String>),
    /// A limit of this account was lifted.
    Lifted(String),
    /// This profile's breaker was closed.
    Closed(String),
}

pub struct Supervisor {
    cfg: Config,
    roots: Roots,
    epoch: i64,
    pub model: Model,
    live: BTreeMap<AttemptId, Live>,
    /// Tasks whose checks run.
    checking: BTreeSet<String>,
    merge: Option<MergeRun>,
    /// The queue's next merge, prepared while `merge` lands.
    ahead: Option<ahead::Ahead>,
    /// The sync in flight (never beside a merge).
    sync: Option<sync::SyncRun>,
    /// Boot, sync and stop: no agent, check or task merge is started (`orch-tui sync` with no
    /// supervisor running).
    only_sync: bool,
    /// Approved tasks in the order they were approved.
    queue: VecDeque<String>,
    /// Worktrees being tidied away.
    tidying: BTreeSet<String>,
    /// Worktrees found at start that belong to no live attempt (and ones a tidy-up failed on).
    leftovers: Vec<WorktreeFact>,
    /// Failed tidy-ups per worktree: tried again a few times, then left for the next start.
    tidy_failures: BTreeMap<String, u32>,
    busy: BTreeSet<String>,
    pending: BTreeMap<WriteId, Pending>,
    next_write: u64,
    next_attempt: AttemptId,
    rng: u64,
    booted: bool,
    stopping: bool,
    /// Stopping, and leaving the agents running for the next start to recover.
    leave_agents: bool,
    now: u64,
    out: Vec<Effect>,
    faults: Faults,
    /// When this supervisor booted (the run's time budget counts from here).
    booted_ms: u64,
    /// Time the run stood paused (its time budget does not count it), and the start of the
    /// stretch under way, if it stands paused now.
    run_paused_ms: u64,
    run_paused_since: Option<u64>,
    /// The local zone's offset from UTC in seconds (a limit's "try again at 3:28 PM").
    utc_offset_s: i64,
    /// Budgets already warned about at 80%: (task or "" for the run, which budget).
    warned: BTreeSet<(String, String)>,
    /// Profiles' runs of infrastructure failures.
    breakers: BTreeMap<String, limits::Breaker>,
    /// Accounts close to their limit (`allowed_warning`): one agent at a time.
    slow: BTreeSet<String>,
    /// The human trusted the run's worktrees: trust dialogs are answered for them.
    trusted: bool,
    /// Limits and breakers whose lifting is being written.
    lifting: BTreeSet<String>,
    closing: BTreeSet<String>,
}

impl Supervisor {
    /// A supervisor for epoch `epoch`; nothing happens until `Event::Boot`.
    pub fn new(cfg: Config, roots: Roots, epoch: i64, seed: u64) -> Supervisor {
        Supervisor {
            cfg,
            roots,
            epoch,
            model: Model::default(),
            live: BTreeMap::new(),
            checking: BTreeSet::new(),
            merge: None,
            ahead: None,
            sync: None,
            only_sync: false,
            queue: VecDeque::new(),
            tidying: BTreeSet::new(),
            leftovers: Vec::new(),
            tidy_failures: BTreeMap::new(),
            busy: BTreeSet::new(),
            pending: BTreeMap::new(),
            next_write: 1,
            next_attempt: AttemptId(1),
            rng: seed,
            booted: false,
            stopping: false,
            leave_agents: false,
            now: 0,
            out: Vec::new(),
            faults: Faults::default(),
            booted_ms: 0,
            run_paused_ms: 0,
            run_paused_since: None,
            utc_offset_s: 0,
            warned: BTreeSet::new(),
            breakers: BTreeMap::new(),
            slow: BTreeSet::new(),
            trusted: false,
            lifting: BTreeSet::new(),
            closing: BTreeSet::new(),
        }
    }

    /// The local zone's offset from UTC (east positive), for limits that reset at a clock time.
    pub fn set_utc_offset(&mut self, seconds: i64) {
        self.utc_offset_s = seconds;
    }

    #[doc(hidden)]
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Only recover and sync: start no agent, check or task merge, and be settled once no sync
    /// is due (`orch-tui sync` when no supervisor runs).
    pub fn set_only_sync(&mut self) {
        self.only_sync = true;
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// What runs now (for the clients' view of live agents).
    pub fn live(&self) -> &BTreeMap<AttemptId, Live> {
        &self.live
    }

    /// One event in, the effects it calls for out.
    pub fn step(&mut self, now_ms: u64, event: Event) -> Vec<Effect> {
        self.now = now_ms;
        self.on_event(event);
        if self.booted {
            self.reconcile();
            self.run_clock();
        }
        self.record_session_stops();
        std::mem::take(&mut self.out)
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Boot(b) => self.on_boot(*b),
            Event::Observed(o) => self.on_observed(o),
            Event::Written(id) => self.on_written(id),
            Event::Lost { write, observed } => {
                if let Some(p) = self.pending.remove(&write) {
                    for t in p.tasks {
                        self.busy.remove(&t);
                    }
                    self.on_lost(p.then);
                }
                self.on_observed(observed);
            }
            Event::Tick => {}
            Event::SetupDone { attempt, result } => self.on_setup_done(attempt, result),
            Event::Exited { attempt, exit } => self.on_exit(attempt, exit),
            Event::Collected { attempt, result } => self.on_collected(attempt, result),
            Event::ChecksDone { task, n, results } => self.on_checks_done(&task, n, results),
            Event::MergePrepared { task, result } => self.on_merge_prepared(&task, result),
            Event::IntegrationMoved { task, result } => self.on_integration_moved(&task, result),
            Event::SyncPrepared { onto, from, result } => {
                self.on_sync_prepared(&onto, &from, result)
            }
            Event::SyncMoved { tip, result } => self.on_sync_moved(&tip, result),
            Event::Tidied { tidy, result } => self.on_tidied(tidy, result),
            Event::Answered { attempt } => self.on_answered(attempt),
            Event::Agent { attempt, event } => self.on_agent(attempt, event),
            Event::Screen { attempt, seen } => self.on_screen(attempt, seen),
            Event::Stop { stop_agents } => self.on_stop(stop_agents),
            Event::HumanTyping { attempt } => self.on_typing(attempt),
        }
    }

    fn on_observed(&mut self, o: Observed) {
        for a in &o.attempts {
            use crate::core::domain::Substatus as S;
            let what = match a.substatus {
                S::WaitingInput => "waits for an answer",
                S::WaitingPermission => "asks permission",
                S::WaitingDialog => "waits at a first-run dialog",
                _ => continue,
            };
            let was = self
                .model
                .attempts
                .get(&a.id)
                .is_some_and(|old| old.substatus == a.substatus);
            if !was {
                self.say(format!("? {} attempt {} {what}", a.task, a.n));
            }
        }
        self.model.refresh(o.tasks, o.attempts);
        if let Some(hold) = o.hold {
            self.model.hold = hold;
        }
        if let Some(tip) = o.integration_tip {
            self.model.integration_tip = Some(tip);
        }
        if let Some(sync) = o.sync {
            self.model.sync = *sync;
        }
        self.trusted |= o.trusted;
        for (attempt, seq, decision) in o.screen_answers {
            self.type_answer(attempt, seq, &decision);
        }
    }

    fn on_written(&mut self, id: WriteId) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        for op in &p.ops {
            self.model.apply(op, self.now);
        }
        for t in &p.tasks {
            self.busy.remove(t);
        }
        match p.then {
            Then::Nothing | Then::Boot => {}
            Then::Lifted(name) => {
                self.lifting.remove(&name);
                self.slow.remove(&name);
                self.say(format!("▶ {name}: the limit lifted; its agents go on"));
            }
            Then::Closed(name) => {
                self.closing.remove(&name);
            }
            Then::Say(line) => self.say(line),
            Then::MoveIntegration => self.move_integration(),
            Then::TidyMerged(tidy, line) => {
                self.say(line);
                self.merge = None;
                self.tidy_finished(tidy);
            }
            Then::MergeClosed(line) => {
                self.merge = None;
                if let Some(l) = line {
                    self.say(l);
                }
            }
            Then::MoveSync => self.move_sync(),
            Then::SyncClosed(line) => {
                self.sync = None;
                if let Some(l) = line {
                    self.say(l);
                }
            }
        }
    }

    /// A write lost: what it was to start is not started; the rules decide again on fresh rows.
    fn on_lost(&mut self, then: Then) {
        match then {
            Then::MoveIntegration | Then::TidyMerged(..) | Then::MergeClosed(_) => {
                self.merge = None;
            }
            Then::MoveSync | Then::SyncClosed(_) => self.sync = None,
            Then::Lifted(name) => {
                self.lifting.remove(&name);
            }
            Then::Closed(name) => {
                self.closing.remove(&name);
            }
            Then::Nothing | Then::Say(_) | Then::Boot => {}
        }
    }

    /// Ask the executor to write `ops` as one transaction; the tasks named are left alone until
    /// the answer comes.
    fn write(&mut self, mut ops: Vec<Op>, then: Then) {
        if ops.is_empty() {
            return;
        }
        // A held attempt that finishes keeps the last stretch of its hold, in the same write.
        let held = self.held_time_ops(&ops);
        ops.splice(0..0, held);
        let mut tasks: Vec<String> = ops
            .iter()
            .filter_map(|o| {
                let by_id = o
                    .attempt_id()
                    .and_then(|id| self.model.attempts.get(&id))
                    .map(|a| a.task.clone());
                o.task().map(String::from).or(by_id)
            })
            .collect();
        tasks.sort();
        tasks.dedup();
        for t in &tasks {
            self.busy.insert(t.clone());
        }
        let id = WriteId(self.next_write);
        self.next_write += 1;
        self.pending.insert(
            id,
            Pending {
                ops: ops.clone(),
                tasks: tasks.clone(),
                then,
            },
        );
        self.out.push(Effect::Write { id, ops, tasks });
    }

    fn say(&mut self, line: impl Into<String>) {
        self.out.push(Effect::Say(line.into()));
    }

    fn is_busy(&self, task: &str) -> bool {
        self.busy.contains(task)
    }

    /// splitmix64: backoff jitter; seeded by the executor (the OS in a run, the seed in a test).
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Every rule, in an order where each sees what the ones before decided.
    fn reconcile(&mut self) {
        self.dag_rules();
        self.gate_rules();
        self.budget_rules();
        self.live_rules();
        self.kept_rules();
        self.pause_rules();
        if !self.only_sync {
            self.speculation_rules();
        }
        if !self.only_sync {
            self.funnel_rules();
            self.merge_rules();
        }
        self.sync_rules();
        if !self.only_sync {
            self.dispatch_rules();
            self.setup_rules();
        }
        self.tidy_rules();
        self.waiting_rules();
    }
}
