//! What the supervisor knows of the ledger: tasks and attempts as rows, kept in step with the file
//! by applying the same ops the ledger applied (and replaced by fresh rows when a write lost).

use std::collections::{BTreeMap, BTreeSet};

use crate::core::domain::{
    AttemptId, AttemptNo, AttemptState, FunnelStage, Reported, Role, Substatus, Verdict,
};
use crate::core::ops::Op;
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
    pub checks: Vec<String>,
    pub risk_high: bool,
    pub stage: Option<FunnelStage>,
    pub stage_until_ms: Option<u64>,
    pub note: Option<String>,
    pub reason: Option<String>,
    pub paused_from: Option<TaskState>,
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
}

/// The rows, with the indexes the rules walk.
#[derive(Debug, Default, Clone)]
pub struct Model {
    pub tasks: BTreeMap<String, TaskRec>,
    pub attempts: BTreeMap<AttemptId, AttemptRec>,
    /// task -> the tasks that depend on it.
    pub dependents: BTreeMap<String, BTreeSet<String>>,
    /// state -> tasks in it.
    pub by_state: BTreeMap<TaskState, BTreeSet<String>>,
    /// The integration tip the supervisor last wrote or adopted.
    pub integration_tip: Option<String>,
    /// Why the whole run is held (the integration branch moved under it), if it is.
    pub hold: Option<String>,
    /// Tasks whose state changed since the DAG rules last looked at their dependents.
    pub dirty: BTreeSet<String>,
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
        self.attempts
            .values()
            .filter(|a| a.task == task && a.role == Role::Agent)
            .max_by_key(|a| (a.n, a.id))
    }

    pub fn next_attempt_no(&self, task: &str) -> AttemptNo {
        AttemptNo(self.latest_agent(task).map_or(0, |a| a.n.0) + 1)
    }

    pub fn next_attempt_id(&self) -> AttemptId {
        AttemptId(self.attempts.keys().next_back().map_or(0, |a| a.0) + 1)
    }

    /// Put (or replace) a task row, keeping the indexes true.
    pub fn put_task(&mut self, t: TaskRec) {
        if let Some(old) = self.tasks.get(&t.id) {
            if let Some(set) = self.by_state.get_mut(&old.state) {
                set.remove(&t.id);
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
                self.attempts.insert(
                    a.id,
                    AttemptRec {
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
                    },
                );
            }
            Op::AttemptRunning { id, pid, base } => {
                if let Some(a) = self.attempts.get_mut(id) {
                    a.state = AttemptState::Running;
                    if a.substatus == Substatus::Starting {
                        a.substatus = Substatus::Busy;
                    }
                    a.pid = Some(*pid);
                    a.base = Some(base.clone());
                }
            }
            Op::FinishAttempt(f) => {
                if let Some(a) = self.attempts.get_mut(&f.id) {
                    a.state = f.outcome;
                    a.substatus = Substatus::Ended;
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
            Op::Answered { id } => {
                if let Some(a) = self.attempts.get_mut(id)
                    && a.substatus == Substatus::WaitingInput
                {
                    a.substatus = Substatus::Busy;
                }
            }
            Op::Event { .. } | Op::ExpectStage { .. } => {}
        }
    }

    /// Replace rows with fresh ones read from the ledger.
    pub fn refresh(&mut self, tasks: Vec<TaskRec>, attempts: Vec<AttemptRec>) {
        for t in tasks {
            self.put_task(t);
        }
        for a in attempts {
            self.attempts.insert(a.id, a);
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
