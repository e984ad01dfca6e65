//! What the supervisor knows of the ledger: tasks and attempts as rows, kept in step with the file
//! by applying the same ops the ledger applied (and replaced by fresh rows when a write lost).

use std::collections::{BTreeMap, BTreeSet};

use crate::core::domain::{
    AttemptId, AttemptNo, AttemptState, FunnelStage, Reported, Role, Substatus, Verdict,
};
use crate::core::ops::{GateKind, Op};
use crate::core::state::TaskState;

/// A task row, as far as decisions need it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRec {
    pub id: String,
    pub ord: i64,
    pub title: String,
    pub prompt: String,
    pub state: TaskState,
    pub deps: Vec<String>,
    pub priority: i64,
    pub ready_since_ms: u64,
    pub not_before_ms: u64,
    pub capabilities: Vec<String>,
    pub agent: Option<String>,
    pub failures: u32,
    pub max_attempts: u32,
    pub budget_time_ms: Option<u64>,
    pub budget_tokens: Option<u64>,
    pub budget_cost_usd: Option<f64>,
    pub checks: Vec<String>,
    pub risk_high: bool,
    pub stage: Option<FunnelStage>,
    pub stage_until_ms: Option<u64>,
    pub note: Option<String>,
    pub reason: Option<String>,
    pub paused_from: Option<TaskState>,
    /// The attempt the next one continues (its worktree and conversation).
    pub resume_attempt: Option<AttemptId>,
    /// When its state last changed (for a paused task: when it was paused).
    pub changed_ms: u64,
}

/// An attempt row, as far as decisions need it (never its token).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRec {
    pub id: AttemptId,
    pub task: String,
    pub n: AttemptNo,
    pub role: Role,
    pub profile: String,
    pub epoch: i64,
    pub state: AttemptState,
    pub substatus: Substatus,
    pub pid: Option<u32>,
    pub reported: Option<Reported>,
    pub verdict: Option<Verdict>,
    pub verdict_notes: Option<String>,
    pub worktree: String,
    pub branch: String,
    pub log_dir: String,
    pub base: Option<String>,
    pub commit: Option<String>,
    pub diff_lines: Option<u64>,
    pub merge_tip: Option<String>,
    pub merge_onto: Option<String>,
    pub started_ms: u64,
    /// When it ended (0 while live, and for rows read back from older ledgers).
    pub ended_ms: u64,
    /// The agent's conversation id.
    pub session: Option<String>,
    /// The earlier attempt this one continues.
    pub continues: Option<AttemptId>,
    /// Time it was held for a paused task (its clock stood still).
    pub held_ms: u64,
    /// The dependency whose candidate tip it started on, if it started during its veto window.
    pub spec_on: Option<String>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

impl AttemptRec {
    /// Tokens spent (in and out), the figure token budgets compare against.
    pub fn tokens(&self) -> u64 {
        self.tokens_in.saturating_add(self.tokens_out)
    }
}

/// The rows, with the indexes the rules walk.
#[derive(Debug, Default, Clone)]
pub struct Model {
    pub tasks: BTreeMap<String, TaskRec>,
    pub attempts: BTreeMap<AttemptId, AttemptRec>,
    /// task -> its attempts (every role), so the rules that ask about one task's attempts
    /// walk those, not the whole run's (`benches/scale.rs`: the supervisor's cost per task
    /// grew with the plan while they did).
    pub attempts_of: BTreeMap<String, BTreeSet<AttemptId>>,
    /// Attempts written as starting: the setup rule looks at these after every event, not at
    /// every attempt of the run.
    pub starting: BTreeSet<AttemptId>,
    /// task -> the tasks that depend on it.
    pub dependents: BTreeMap<String, BTreeSet<String>>,
    /// state -> tasks in it.
    pub by_state: BTreeMap<TaskState, BTreeSet<String>>,
    /// The integration tip the supervisor last wrote or adopted.
    pub integration_tip: Option<String>,
    /// Why the whole run is held (the integration branch moved under it), if it is.
    pub hold: Option<String>,
    /// The base branch and any sync onto it.
    pub sync: super::SyncState,
    /// Tasks whose state changed since the DAG rules last looked at their dependents.
    pub dirty: BTreeSet<String>,
    /// Tasks whose row or spend changed since the budget rules last looked at them (a ready
    /// task's budget can only run out when one of them does).
    pub budget_dirty: BTreeSet<String>,
    /// Ready tasks waiting out a retry's backoff: (not before, task), so the next wake-up is
    /// found without walking every ready task.
    pub backoffs: BTreeSet<(u64, String)>,
    /// Tasks that became ready since dispatch last looked: while every slot is taken, only
    /// these are looked at (for a task no profile can take, which is held at once).
    pub fresh_ready: BTreeSet<String>,
    /// The ready tasks in dispatch order (`schedule::dispatch_key`): dispatch looks at the
    /// first few, not at every ready task.
    pub ready_order: BTreeSet<(i128, u64, String)>,
    /// Ready tasks that were put while one of their dependencies was not done: the only
    /// ready tasks that can have started on a candidate's tip (`speculate.rs`). Entries may
    /// outlive that (a dependency merged since); the rule that reads them drops those.
    pub ready_on_undone: BTreeSet<String>,
    /// Tasks with an attempt started on a candidate's tip (`spec_on`): the only ones that can
    /// wait for a candidate (`speculate.rs`). The rule that reads them drops finished ones.
    pub on_candidates: BTreeSet<String>,
    /// Tasks that became approved or stopped being approved since the merge queue last
    /// looked: the queue follows them instead of comparing itself with every approved task.
    pub approval_changes: BTreeSet<String>,
    /// What holds dispatch back: (kind, account or profile) -> (until, why).
    pub gates: BTreeMap<(GateKind, String), (u64, String)>,
}

impl Model {
    pub fn task(&self, id: &str) -> Option<&TaskRec> {
        self.tasks.get(id)
    }

    pub fn in_state(&self, s: TaskState) -> impl Iterator<Item = &TaskRec> {
        self.by_state
            .get(&s)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    pub fn count(&self, s: TaskState) -> usize {
        self.by_state.get(&s).map_or(0, BTreeSet::len)
    }

    /// The newest agent attempt of a task.
    pub fn latest_agent(&self, task: &str) -> Option<&AttemptRec> {
        self.attempts_for(task)
            .filter(|a| a.role == Role::Agent)
            .max_by_key(|a| (a.n, a.id))
    }

    /// A task's attempts, every role, oldest first.
    pub fn attempts_for<'a>(&'a self, task: &str) -> impl Iterator<Item = &'a AttemptRec> + 'a {
        self.attempts_of
            .get(task)
            .into_iter()
            .flatten()
            .filter_map(|id| self.attempts.get(id))
    }

    /// Put (or replace) an attempt row, keeping the per-task index true.
    fn put_attempt(&mut self, a: AttemptRec) {
        if let Some(old) = self.attempts.get(&a.id)
            && old.task != a.task
            && let Some(set) = self.attempts_of.get_mut(&old.task)
        {
            set.remove(&a.id);
        }
        self.attempts_of
            .entry(a.task.clone())
            .or_default()
            .insert(a.id);
        if a.state == AttemptState::Starting {
            self.starting.insert(a.id);
        } else {
            self.starting.remove(&a.id);
        }
        self.budget_dirty.insert(a.task.clone());
        if a.spec_on.is_some() {
            self.on_candidates.insert(a.task.clone());
        }
        self.attempts.insert(a.id, a);
    }

    /// What a task has spent over all its attempts (reviewers' too): tokens and dollars.
    pub fn task_spend(&self, task: &str) -> (u64, f64) {
        self.attempts_for(task).fold((0u64, 0.0), |(t, c), a| {
            (t.saturating_add(a.tokens()), c + a.cost_usd)
        })
    }

    /// What the whole run has spent: tokens and dollars.
    pub fn run_spend(&self) -> (u64, f64) {
        self.attempts.values().fold((0u64, 0.0), |(t, c), a| {
            (t.saturating_add(a.tokens()), c + a.cost_usd)
        })
    }

    pub fn next_attempt_no(&self, task: &str) -> AttemptNo {
        AttemptNo(self.latest_agent(task).map_or(0, |a| a.n.0) + 1)
    }

    pub fn next_attempt_id(&self) -> AttemptId {
        AttemptId(self.attempts.keys().next_back().map_or(0, |a| a.0) + 1)
    }

    /// Put (or replace) a task row, keeping the indexes true.
    pub fn put_task(&mut self, t: TaskRec) {
        self.budget_dirty.insert(t.id.clone());
        if let Some(old) = self.tasks.get(&t.id) {
            if let Some(set) = self.by_state.get_mut(&old.state) {
                set.remove(&t.id);
            }
            self.backoffs.remove(&(old.not_before_ms, t.id.clone()));
            if old.state == TaskState::Ready {
                self.ready_order
                    .remove(&crate::core::schedule::dispatch_key(
                        old.priority,
                        old.ready_since_ms,
                        &old.id,
                    ));
            }
            for d in &old.deps {
                if let Some(set) = self.dependents.get_mut(d) {
                    set.remove(&t.id);
                }
            }
            if old.state != t.state {
                self.dirty.insert(t.id.clone());
            }
        } else {
            self.dirty.insert(t.id.clone());
        }
        self.by_state
            .entry(t.state)
            .or_default()
            .insert(t.id.clone());
        if t.state == TaskState::Ready
            && self
                .tasks
                .get(&t.id)
                .is_none_or(|o| o.state != TaskState::Ready)
        {
            self.fresh_ready.insert(t.id.clone());
        }
        let was_approved = self
            .tasks
            .get(&t.id)
            .is_some_and(|o| o.state == TaskState::Approved);
        if was_approved != (t.state == TaskState::Approved) {
            self.approval_changes.insert(t.id.clone());
        }
        if t.state == TaskState::Ready
            && t.deps
                .iter()
                .any(|d| self.tasks.get(d).is_none_or(|u| u.state != TaskState::Done))
        {
            self.ready_on_undone.insert(t.id.clone());
        }
        if t.state == TaskState::Ready {
            self.ready_order.insert(crate::core::schedule::dispatch_key(
                t.priority,
                t.ready_since_ms,
                &t.id,
            ));
        }
        if t.state == TaskState::Ready && t.not_before_ms > 0 {
            self.backoffs.insert((t.not_before_ms, t.id.clone()));
        }
        for d in &t.deps {
            self.dependents
                .entry(d.clone())
                .or_default()
                .insert(t.id.clone());
        }
        self.tasks.insert(t.id.clone(), t);
    }

    /// Apply one op that the ledger committed, exactly as the ledger did.
    pub fn apply(&mut self, op: &Op, now_ms: u64) {
        match op {
            Op::Transition {
                task, to, patch, ..
            } => {
                let Some(mut t) = self.tasks.get(task).cloned() else {
                    return;
                };
                if *to == TaskState::Ready {
                    t.ready_since_ms = now_ms;
                }
                t.changed_ms = now_ms;
                if let Some(f) = patch.failures {
                    t.failures = f;
                }
                if let Some(nb) = patch.not_before_ms {
                    t.not_before_ms = nb;
                }
                if let Some(n) = &patch.note {
                    t.note = n.clone();
                }
                if let Some(r) = &patch.reason {
                    t.reason = r.clone();
                }
                if let Some(p) = patch.paused_from {
                    t.paused_from = p;
                }
                if let Some(r) = patch.resume_attempt {
                    t.resume_attempt = r;
                }
                t.state = *to;
                self.put_task(t);
            }
            Op::SetStage {
                task,
                stage,
                until_ms,
                ..
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.stage = *stage;
                    t.stage_until_ms = *until_ms;
                }
            }
            Op::InsertAttempt(a) => {
                self.put_attempt(AttemptRec {
                    id: a.id,
                    task: a.task.clone(),
                    n: a.n,
                    role: a.role,
                    profile: a.profile.clone(),
                    epoch: a.epoch,
                    state: AttemptState::Starting,
                    substatus: Substatus::Starting,
                    pid: None,
                    reported: None,
                    verdict: None,
                    verdict_notes: None,
                    worktree: a.worktree.clone(),
                    branch: a.branch.clone(),
                    log_dir: a.log_dir.clone(),
                    base: None,
                    commit: None,
                    diff_lines: None,
                    merge_tip: None,
                    merge_onto: None,
                    started_ms: now_ms,
                    ended_ms: 0,
                    session: None,
                    continues: a.continues,
                    held_ms: 0,
                    spec_on: a.spec_on.clone(),
                    tokens_in: 0,
                    tokens_out: 0,
                    cost_usd: 0.0,
                });
            }
            Op::AttemptRunning { id, pid, base } => {
                self.starting.remove(id);
                if let Some(a) = self.attempts.get_mut(id) {
                    a.state = AttemptState::Running;
                    if a.substatus == Substatus::Starting {
                        a.substatus = Substatus::Busy;
                    }
                    a.pid = Some(*pid);
                    a.base = Some(base.clone());
                }
            }
            Op::Adopt { id, epoch, .. } => {
                if let Some(a) = self.attempts.get_mut(id) {
                    a.epoch = *epoch;
                }
            }
            Op::FinishAttempt(f) => {
                self.starting.remove(&f.id);
                if let Some(a) = self.attempts.get_mut(&f.id) {
                    a.state = f.outcome;
                    a.substatus = Substatus::Ended;
                    a.ended_ms = now_ms;
                    if f.commit.is_some() {
                        a.commit = f.commit.clone();
                    }
                    if f.diff_lines.is_some() {
                        a.diff_lines = f.diff_lines;
                    }
                }
            }
            Op::RecordMerge { id, tip, onto } => {
                if let Some(a) = self.attempts.get_mut(id) {
                    a.merge_tip = Some(tip.clone());
                    a.merge_onto = Some(onto.clone());
                }
            }
            Op::SetIntegrationTip { tip, .. } => self.integration_tip = Some(tip.clone()),
            Op::SetHold { hold } => self.hold = hold.clone(),
            Op::RequestSync { refname, onto } => {
                self.sync.request = Some(super::SyncRequest {
                    refname: refname.clone(),
                    onto: onto.clone(),
                    recorded: None,
                });
                self.sync.problem = None;
            }
            Op::RecordSync { onto, from, tip } => {
                if let Some(r) = self.sync.request.as_mut().filter(|r| &r.onto == onto) {
                    r.recorded = Some((from.clone(), tip.clone()));
                }
            }
            Op::EndSync {
                onto,
                moved,
                problem,
            } => {
                if let Some(r) = self.sync.request.take_if(|r| &r.onto == onto) {
                    if *moved {
                        self.sync.base_ref = Some(r.refname);
                        self.sync.base_oid = Some(r.onto);
                    }
                    self.sync.problem = problem.clone();
                }
            }
            Op::SetBase { refname, oid } => {
                self.sync.base_ref = Some(refname.clone());
                self.sync.base_oid = Some(oid.clone());
            }
            Op::Answered { id } => {
                if let Some(a) = self.attempts.get_mut(id)
                    && a.substatus.is_waiting()
                {
                    a.substatus = Substatus::Busy;
                }
            }
            Op::RecordSpend {
                id,
                tokens_in,
                tokens_out,
                cost_usd,
            } => {
                if let Some(a) = self.attempts.get_mut(id) {
                    self.budget_dirty.insert(a.task.clone());
                    if a.spec_on.is_some() {
                        self.on_candidates.insert(a.task.clone());
                    }
                    a.tokens_in = a.tokens_in.max(*tokens_in);
                    a.tokens_out = a.tokens_out.max(*tokens_out);
                    if cost_usd.is_finite() {
                        a.cost_usd = a.cost_usd.max(*cost_usd);
                    }
                }
            }
            Op::HeldTime { id, ms } => {
                if let Some(a) = self.attempts.get_mut(id) {
                    a.held_ms = a.held_ms.saturating_add(*ms).min((1 << 53) - 1);
                }
            }
            Op::Session { id, session } => {
                if let Some(a) = self.attempts.get_mut(id) {
                    a.session = Some(session.clone());
                }
            }
            Op::AgentState { id, substatus, .. } => {
                if let Some(a) = self.attempts.get_mut(id)
                    && a.state.is_live()
                {
                    a.substatus = *substatus;
                }
            }
            Op::SetBudget {
                task,
                time_ms,
                tokens,
                cost_usd,
                ..
            } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.budget_time_ms = time_ms.or(t.budget_time_ms);
                    t.budget_tokens = tokens.or(t.budget_tokens);
                    t.budget_cost_usd = cost_usd.or(t.budget_cost_usd);
                }
            }
            Op::SetGate {
                kind,
                name,
                until_ms,
                why,
            } => match until_ms {
                Some(u) => {
                    self.gates.insert((*kind, name.clone()), (*u, why.clone()));
                }
                None => {
                    self.gates.remove(&(*kind, name.clone()));
                }
            },
            Op::Event { .. } | Op::ExpectStage { .. } => {}
        }
    }

    /// Replace rows with fresh ones read from the ledger.
    pub fn refresh(&mut self, tasks: Vec<TaskRec>, attempts: Vec<AttemptRec>) {
        for t in tasks {
            self.put_task(t);
        }
        for a in attempts {
            self.put_attempt(a);
        }
    }

    #[cfg(test)]
    pub fn force_state(&mut self, id: &str, to: TaskState) {
        if let Some(mut t) = self.tasks.get(id).cloned() {
            t.state = to;
            self.put_task(t);
        }
    }
}

/// Rows for the decision tests (`tests.rs`, `sync_tests.rs`, `tests/pause_tests.rs`): each sets
/// what its case is about over these.
#[cfg(test)]
impl TaskRec {
    pub(super) fn sample(id: &str, state: TaskState) -> TaskRec {
        TaskRec {
            id: id.into(),
            ord: 0,
            title: id.into(),
            prompt: format!("do {id}"),
            state,
            deps: Vec::new(),
            priority: 0,
            ready_since_ms: 0,
            not_before_ms: 0,
            capabilities: Vec::new(),
            agent: None,
            failures: 0,
            max_attempts: 3,
            budget_time_ms: None,
            checks: Vec::new(),
            risk_high: false,
            stage: None,
            stage_until_ms: None,
            note: None,
            reason: None,
            paused_from: None,
            budget_tokens: None,
            budget_cost_usd: None,
            resume_attempt: None,
            changed_ms: 0,
        }
    }
}

#[cfg(test)]
impl AttemptRec {
    /// A finished agent attempt `n` of `task`, with no commit.
    pub(super) fn sample(task: &str, n: u32) -> AttemptRec {
        AttemptRec {
            id: AttemptId(i64::from(n)),
            task: task.into(),
            n: AttemptNo(n),
            role: Role::Agent,
            profile: "sim".into(),
            epoch: 1,
            state: AttemptState::Succeeded,
            substatus: Substatus::Ended,
            pid: None,
            reported: None,
            verdict: None,
            verdict_notes: None,
            worktree: format!("/w/{task}-{n}"),
            branch: format!("orch/{task}"),
            log_dir: format!("/l/{task}/{n}"),
            base: None,
            commit: None,
            diff_lines: None,
            merge_tip: None,
            merge_onto: None,
            started_ms: 0,
            ended_ms: 0,
            session: None,
            continues: None,
            held_ms: 0,
            spec_on: None,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
        }
    }
}
