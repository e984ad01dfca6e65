//! The read model: one query layer over the ledger that the TUI, `status` and `status --json`
//! all use, so they cannot disagree (issue #7, part 3).
//!
//! [`snapshot`] reads everything a front end shows in ONE read transaction on one connection
//! (a consistent point in the ledger's history, never half a write): the run (plan, epoch,
//! whether a supervisor runs, a hold), every task with its attempts and spend, the run's spend,
//! counts per state, and THE inbox (`inbox.rs`: one list of typed items; its kinds are one enum).
//! It runs no git and reads no log file, so `status --json` stays fast on large plans; the diff
//! stat of an approval is the ledger's `diff_lines`, and the TUI fetches `git diff --stat` for
//! the selected approval in a background job.
//!
//! Arrows: `cli`/`tui` → `read` → `ledger` (queries through its connection) and `os` (the
//! supervisor lock probe) → `core`.

pub mod inbox;
mod json;
mod lean;
mod paired;
mod query;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::domain::{FunnelStage, Role};
use crate::core::state::TaskState;
use crate::ledger::{AttemptRow, Ledger, LedgerError};
pub use inbox::{Approval, BudgetKind, BudgetUse, CheckResult, InboxItem, InboxKind};
pub use json::{JsonError, Readers, write_json, write_json_using};
pub use lean::snapshot_lean;
pub use query::IdHasher;

/// Tokens and cost, per attempt, per task or per run. Sums saturate (a spend reported as
/// `i64::MAX` tokens stays that, never wraps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spend {
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// `tokens_in + tokens_out`.
    pub tokens: i64,
    pub cost_usd: f64,
}

impl Spend {
    pub fn of<S>(a: &AttemptRow<S>) -> Spend {
        let mut s = Spend::default();
        s.add(a);
        s
    }

    pub fn add<S>(&mut self, a: &AttemptRow<S>) {
        self.add_parts(a.tokens_in, a.tokens_out, a.cost_usd);
    }

    fn add_parts(&mut self, tokens_in: i64, tokens_out: i64, cost_usd: f64) {
        self.tokens_in = self.tokens_in.saturating_add(tokens_in);
        self.tokens_out = self.tokens_out.saturating_add(tokens_out);
        self.tokens = self.tokens_in.saturating_add(self.tokens_out);
        self.cost_usd += cost_usd;
    }
}

/// A task's budgets (per attempt of its agent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Budgets {
    pub time_ms: Option<u64>,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// One task as every front end shows it, with its attempts (oldest first: by number, the agent
/// before its reviewer) and what they spent. Field names are `status --json`'s (`json.rs`
/// writes them too).
#[derive(Debug, Clone, Serialize)]
pub struct TaskView {
    pub id: String,
    /// Its place in the plan (the list is in this order).
    #[serde(skip)]
    pub ord: i64,
    pub title: String,
    pub state: TaskState,
    pub priority: i64,
    pub depends_on: Vec<String>,
    /// The agent profile the plan asks for (`None`: the scheduler picks).
    pub agent: Option<String>,
    pub failures: u32,
    pub max_attempts: u32,
    pub reason: Option<String>,
    pub spec_version: i64,
    /// The funnel stage while in `review`.
    pub stage: Option<FunnelStage>,
    /// For `veto`: when the merge goes ahead (Unix ms).
    pub stage_until_ms: Option<u64>,
    pub risk_high: bool,
    /// For `paused`: the state `resume` returns to.
    pub paused_from: Option<TaskState>,
    /// For `ready` after a failure: not before this (Unix ms; 0: now).
    pub not_before_ms: u64,
    pub budget: Budgets,
    /// Every attempt of the task, reviewers included.
    pub spend: Spend,
    pub attempts: Vec<AttemptRow>,
}

impl TaskView {
    /// The newest agent attempt (not a reviewer).
    pub fn latest(&self) -> Option<&AttemptRow> {
        self.attempts
            .iter()
            .filter(|a| a.role == Role::Agent)
            .max_by_key(|a| (a.n, a.id))
    }

    /// The attempts still marked live (starting or running), agents and reviewers.
    pub fn live(&self) -> impl Iterator<Item = &AttemptRow> {
        self.attempts.iter().filter(|a| a.state.is_live())
    }
}

/// Whether a supervisor runs on the ledger: it holds the lock on `.orch/supervisor.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorState {
    /// Running; `pid` 0 while it has not written its pid yet (starting).
    Running { pid: u32 },
    /// None runs; the attempts the ledger still marks live are recovered at the next start.
    NotRunning { attempts_to_recover: usize },
}

impl Serialize for SupervisorState {
    /// `{"running": true, "pid": N}` or `{"running": false, "pid": null, "attempts_to_recover": N}`
    /// (the shape docs/cli.md promises).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match *self {
            SupervisorState::Running { pid } => {
                m.serialize_entry("running", &true)?;
                m.serialize_entry("pid", &pid)?;
            }
            SupervisorState::NotRunning {
                attempts_to_recover,
            } => {
                m.serialize_entry("running", &false)?;
                m.serialize_entry("pid", &None::<u32>)?;
                m.serialize_entry("attempts_to_recover", &attempts_to_recover)?;
            }
        }
        m.end()
    }
}

/// The run as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// The plan's name, if one was loaded.
    pub plan: Option<String>,
    /// The newest supervisor epoch (0: none ever started).
    pub epoch: i64,
    pub supervisor: SupervisorState,
    /// Why the whole run is held (no dispatch, no merges), when it is.
    pub hold: Option<String>,
    /// The base the integration branch stands on, its tip, a sync asked for or stopped.
    pub integration: IntegrationView,
    /// What stops dispatch: accounts paused by a usage limit, open breakers, a spent run
    /// budget (with their countdowns' ends).
    pub alerts: Vec<crate::ledger::Alert>,
}

/// The integration branch's base and sync, as `status --json` shows them (docs/cli.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntegrationView {
    pub base: BaseView,
    /// The tip the supervisor last wrote (or adopted).
    pub integration_tip: Option<String>,
    pub sync: SyncView,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BaseView {
    /// The full ref name (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub refname: Option<String>,
    pub commit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncView {
    /// A sync asked for and not over yet.
    pub requested: Option<SyncRequestView>,
    /// Why the last sync stopped without moving the branch.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncRequestView {
    #[serde(rename = "ref")]
    pub refname: String,
    pub onto: String,
    /// The replayed tip, once recorded (before the branch moves).
    pub recorded_tip: Option<String>,
}

impl IntegrationView {
    fn of(row: crate::ledger::IntegrationRow) -> IntegrationView {
        let s = row.sync;
        IntegrationView {
            base: BaseView {
                refname: s.base_ref,
                commit: s.base_oid,
            },
            integration_tip: row.tip,
            sync: SyncView {
                requested: s.request.map(|r| SyncRequestView {
                    refname: r.refname,
                    onto: r.onto,
                    recorded_tip: r.recorded.map(|(_, tip)| tip),
                }),
                problem: s.problem,
            },
        }
    }
}

/// Everything the front ends show, read at one point of the ledger's history. (`json.rs`
/// writes its fields too.)
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The wall clock the snapshot was judged at (budget use of live attempts), Unix ms.
    #[serde(skip)]
    pub at_ms: u64,
    #[serde(flatten)]
    pub run: RunView,
    /// Tasks per state (states with none are left out).
    pub counts: BTreeMap<String, usize>,
    /// The run's spend: every attempt of every task.
    pub spend: Spend,
    /// In plan order.
    pub tasks: Vec<TaskView>,
    pub inbox: Vec<InboxItem>,
}

impl Snapshot {
    pub fn count(&self, s: TaskState) -> usize {
        self.counts.get(s.as_str()).copied().unwrap_or(0)
    }
}

/// Read the whole picture at `now_ms` (wall clock, Unix ms). Whether a supervisor runs is
/// probed on the lock beside the ledger (`.orch/supervisor.lock`).
pub fn snapshot(ledger: &Ledger, now_ms: u64) -> Result<Snapshot, LedgerError> {
    // One deferred transaction: every query below sees the same committed state. Reading never
    // waits for a writer (WAL), so a ledger locked by another process is still readable.
    // The queries go through `ledger`, whose connection this transaction is on.
    let tx = ledger.conn().unchecked_transaction()?;
    let tasks = query::tasks(ledger)?;
    let mut spend = Spend::default();
    for t in &tasks {
        for a in &t.attempts {
            spend.add(a);
        }
    }
    let live = tasks.iter().map(|t| t.live().count()).sum();
    let snap = assemble(ledger, tasks, live, spend, now_ms);
    drop(tx);
    snap
}

/// A snapshot from its tasks (each with at least the attempts the inbox reads), the count of
/// live attempts and the run's spend: the run, the approval checks and the inbox read inside
/// the caller's read transaction, and the counts. Shared by the whole snapshot, the lean one
/// (`lean.rs`) and `status --json` (`json.rs`).
fn assemble(
    ledger: &Ledger,
    tasks: Vec<TaskView>,
    live: usize,
    spend: Spend,
    now_ms: u64,
) -> Result<Snapshot, LedgerError> {
    let run = run_view(ledger, live, now_ms)?;
    let checks = query::approval_checks(ledger, &tasks)?;
    let inbox = inbox::collect(&run, &tasks, &checks, now_ms);
    Ok(Snapshot {
        at_ms: now_ms,
        run,
        counts: counts(&tasks),
        spend,
        tasks,
        inbox,
    })
}

/// Gives each task the attempt rows read for it (`(index in tasks, row)`, in any order), in
/// the order its attempts are listed.
fn give_rows(tasks: &mut [TaskView], mut rows: Vec<(usize, AttemptRow)>) {
    rows.sort_by_key(|(i, a)| (*i, query::attempt_order(a)));
    for (i, a) in rows {
        tasks[i].attempts.push(a);
    }
}

/// The run as a whole, `live` attempts marked live (recovered at the next start when no
/// supervisor runs). Inside the caller's read transaction.
fn run_view(ledger: &Ledger, live: usize, now_ms: u64) -> Result<RunView, LedgerError> {
    let orch = ledger.path().parent().map(|p| p.to_path_buf());
    let supervisor = orch
        .as_deref()
        .and_then(crate::os::supervisor_running)
        .map(|pid| SupervisorState::Running { pid });
    let run = query::run(ledger)?;
    Ok(RunView {
        plan: run.plan,
        epoch: run.epoch,
        supervisor: supervisor.unwrap_or(SupervisorState::NotRunning {
            attempts_to_recover: live,
        }),
        hold: run.hold,
        integration: IntegrationView::of(ledger.integration()?),
        alerts: ledger.gate_alerts(now_ms)?,
    })
}

/// Tasks per state (states with none left out).
fn counts(tasks: &[TaskView]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.state.as_str().to_string()).or_insert(0) += 1;
    }
    counts
}
