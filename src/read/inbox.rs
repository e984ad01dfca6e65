//! THE inbox: every decision waiting for the human, as one list of typed items, derived from the
//! ledger alone. The TUI's inbox view, its header count, `status` and `status --json` all show
//! this list.
//!
//! To add a kind: a variant of [`InboxKind`] (its data), its place in [`InboxKind::rank`] and
//! [`InboxKind::title`], and the rule that finds it in [`collect`]. The compiler then points at
//! every front end that must say something about it (the TUI's label and keys, `status`'s hint).

use std::collections::HashMap;

use serde::Serialize;

use super::query::CheckEvent;
use super::{RunView, TaskView};
use crate::core::domain::{
    AttemptId, AttemptNo, AttemptState, FunnelStage, Role, Substatus, Verdict,
};
use crate::core::state::TaskState;
use crate::ledger::AttemptRow;

/// A live attempt that has used this share of a budget is in the inbox (budget warning).
pub const WARN_AT: f64 = 0.8;

/// One thing waiting for the human.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxItem {
    /// The task it is about (`None`: the whole run, e.g. a hold).
    pub task: Option<String>,
    /// The live attempt (its row id) to focus, when an agent is waiting.
    pub attempt: Option<AttemptId>,
    /// What waits, in words, from the ledger alone (no time-relative text, no keys or commands:
    /// each front end adds its own).
    pub text: String,
    #[serde(flatten)]
    pub kind: InboxKind,
}

/// Why an item is in the inbox. In JSON, `kind` is the variant's snake_case name and its fields
/// sit beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboxKind {
    /// The whole run is held (e.g. the integration branch moved under it): no dispatch and no
    /// merges until the human settles it.
    Held,
    /// The last `orch-tui sync` stopped without moving the branch (a conflict, a failing
    /// check); `text` says why and what to do.
    Sync,
    /// An agent account's usage limit: its agents are paused until `until_ms` (Unix ms).
    Limited {
        profile: String,
        until_ms: Option<u64>,
    },
    /// An agent asks permission for a tool use; allow once, allow for the run, or deny.
    Permission { tool: String },
    /// An agent waits at a dialog of its own (a first run's trust or login screen): focus it.
    Dialog,
    /// A live agent asked a question and waits for an answer (focus it and type).
    Question,
    /// A live agent's turn ended without a result; `text` is its last message.
    IdleTurn,
    /// A task in review at stage `human`, or `veto` (merges at `until_ms` unless rejected).
    Approval(Box<Approval>),
    /// The supervisor handed the task to the human (conflict, empty change, moved branch...).
    Escalated,
    /// The task's agent was stopped because a budget ran out (those at or over their limit).
    BudgetExhausted { budgets: Vec<BudgetUse> },
    /// Attempts exhausted or unrecoverable.
    Failed { failures: u32, max_attempts: u32 },
    /// A live attempt has used at least [`WARN_AT`] of a budget (those that have).
    BudgetWarning { budgets: Vec<BudgetUse> },
}

impl InboxKind {
    /// The order of the list: what holds everything first, then what holds a live agent, then
    /// the funnel, then what ended; items of one rank stay in plan order.
    pub fn rank(&self) -> u8 {
        match self {
            InboxKind::Held | InboxKind::Sync => 0,
            InboxKind::Limited { .. } => 1,
            InboxKind::Permission { .. } | InboxKind::Dialog => 2,
            InboxKind::Question => 3,
            InboxKind::IdleTurn => 4,
            InboxKind::Approval(_) => 5,
            InboxKind::Escalated => 6,
            InboxKind::BudgetExhausted { .. } => 7,
            InboxKind::Failed { .. } => 8,
            InboxKind::BudgetWarning { .. } => 9,
        }
    }

    /// A short label, the same in the TUI's list and in `status`.
    pub fn title(&self) -> &'static str {
        match self {
            InboxKind::Held => "held",
            InboxKind::Sync => "sync",
            InboxKind::Limited { .. } => "limited",
            InboxKind::Permission { .. } => "permission",
            InboxKind::Dialog => "dialog",
            InboxKind::Question => "question",
            InboxKind::IdleTurn => "idle",
            InboxKind::Approval(_) => "approval",
            InboxKind::Escalated => "escalated",
            InboxKind::BudgetExhausted { .. } => "budget out",
            InboxKind::Failed { .. } => "failed",
            InboxKind::BudgetWarning { .. } => "budget",
        }
    }
}

/// What the human needs to decide on an approval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// `human` or `veto`.
    pub stage: FunnelStage,
    /// The veto deadline (Unix ms).
    pub until_ms: Option<u64>,
    /// The agent attempt under review.
    pub n: AttemptNo,
    /// Its change: `base..commit` (the TUI shows `git diff --stat` of it).
    pub base: Option<String>,
    pub commit: Option<String>,
    /// Lines added plus removed, as recorded when the attempt was committed.
    pub diff_lines: Option<i64>,
    /// Its funnel checks, in the order they ran.
    pub checks: Vec<CheckResult>,
    /// The reviewer's verdict and notes.
    pub verdict: Option<Verdict>,
    pub verdict_notes: Option<String>,
}

impl Approval {
    /// `base..commit`, when the attempt has a commit.
    pub fn range(&self) -> Option<String> {
        Some(format!(
            "{}..{}",
            self.base.as_ref()?,
            self.commit.as_ref()?
        ))
    }

    pub fn checks_passed(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub command: String,
    pub passed: bool,
}

/// Which budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    /// Milliseconds of the attempt's wall time.
    Time,
    Tokens,
    CostUsd,
}

/// How much of one budget an attempt used, in the budget's unit (ms, tokens, USD).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetUse {
    pub budget: BudgetKind,
    pub used: f64,
    pub limit: f64,
}

impl BudgetUse {
    /// Used over limit (a zero limit is full as soon as anything is used).
    pub fn ratio(&self) -> f64 {
        if self.limit > 0.0 {
            self.used / self.limit
        } else if self.used > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }

    /// `tokens 41.0k of 50.0k (82%)`.
    pub fn describe(&self) -> String {
        let (used, limit) = match self.budget {
            BudgetKind::Time => (seconds(self.used), seconds(self.limit)),
            BudgetKind::Tokens => (count(self.used), count(self.limit)),
            BudgetKind::CostUsd => (format!("${:.2}", self.used), format!("${:.2}", self.limit)),
        };
        let name = match self.budget {
            BudgetKind::Time => "time",
            BudgetKind::Tokens => "tokens",
            BudgetKind::CostUsd => "cost",
        };
        let pct = (self.ratio() * 100.0).min(9999.0).floor();
        format!("{name} {used} of {limit} ({pct}%)")
    }
}

/// Whole seconds: `1m30s`.
fn seconds(ms: f64) -> String {
    crate::core::duration::format_duration((ms.max(0.0) as u64) / 1000 * 1000)
}

fn count(n: f64) -> String {
    match n {
        n if n >= 1e6 => format!("{:.1}M", n / 1e6),
        n if n >= 1e3 => format!("{:.1}k", n / 1e3),
        n => format!("{n}"),
    }
}

/// How much of each of its task's budgets an agent attempt used: its own spend and wall time
/// (ended, or until `now_ms` while live) against the task's per-attempt budgets. The TUI's
/// gauges show the same numbers.
pub fn budget_use(t: &TaskView, a: &AttemptRow, now_ms: u64) -> Vec<BudgetUse> {
    let mut out = Vec::new();
    if let Some(limit) = t.budget.time_ms {
        let end = a.ended_ms.unwrap_or(now_ms as i64);
        out.push(BudgetUse {
            budget: BudgetKind::Time,
            used: end.saturating_sub(a.started_ms).max(0) as f64,
            limit: limit as f64,
        });
    }
    // Token and cost budgets count every attempt of the task, as the supervisor enforces them.
    if let Some(limit) = t.budget.tokens {
        out.push(BudgetUse {
            budget: BudgetKind::Tokens,
            used: t.spend.tokens as f64,
            limit: limit as f64,
        });
    }
    if let Some(limit) = t.budget.cost_usd {
        out.push(BudgetUse {
            budget: BudgetKind::CostUsd,
            used: t.spend.cost_usd,
            limit,
        });
    }
    out
}

/// Whether a task in this state and stage waits for the human's approval.
pub fn waits_for_approval(t: &TaskView) -> bool {
    t.state == TaskState::Review && matches!(t.stage, Some(FunnelStage::Human | FunnelStage::Veto))
}

/// Which attempts [`collect`] reads besides the live ones (of any task): every attempt of a
/// task waiting for approval, escalated or failed (to find its newest agent attempt and that
/// one's reviewer); of the others only the task's spend. `status --json` copies only these
/// into rows (`json.rs`), finding the tasks with this SQL over `tasks` (it reads the attempts
/// before or beside the tasks). Keep it in step with `collect` and [`waits_for_approval`].
pub(super) fn tasks_read_whole_sql() -> String {
    format!(
        "SELECT id FROM tasks WHERE (state = '{}' AND stage IN ('{}', '{}')) OR state IN ('{}', '{}')",
        TaskState::Review.as_str(),
        FunnelStage::Human.as_str(),
        FunnelStage::Veto.as_str(),
        TaskState::Escalated.as_str(),
        TaskState::Failed.as_str(),
    )
}

/// The inbox of a run, in [`InboxKind::rank`] order (plan order within a rank).
pub(super) fn collect(
    run: &RunView,
    tasks: &[TaskView],
    checks: &HashMap<String, Vec<CheckEvent>>,
    now_ms: u64,
) -> Vec<InboxItem> {
    let mut items = Vec::new();
    if let Some(why) = &run.hold {
        items.push(InboxItem {
            task: None,
            attempt: None,
            text: why.clone(),
            kind: InboxKind::Held,
        });
    }
    for a in &run.alerts {
        if let (crate::ledger::AlertKind::Limit, Some(name)) = (a.kind, &a.name) {
            items.push(InboxItem {
                task: None,
                attempt: None,
                text: a.text.clone(),
                kind: InboxKind::Limited {
                    profile: name.clone(),
                    until_ms: a.until_ms,
                },
            });
        }
    }
    if let Some(problem) = &run.integration.sync.problem {
        items.push(InboxItem {
            task: None,
            attempt: None,
            text: problem.clone(),
            kind: InboxKind::Sync,
        });
    }
    for t in tasks {
        live_items(t, now_ms, &mut items);
        if waits_for_approval(t) {
            let none = Vec::new();
            items.push(approval(t, checks.get(&t.id).unwrap_or(&none)));
        }
        if let Some(item) = ended_item(t) {
            items.push(item);
        }
    }
    items.sort_by_key(|i| i.kind.rank());
    items
}

/// Questions, idle turns and budget warnings of a task's live attempts.
fn live_items(t: &TaskView, now_ms: u64, items: &mut Vec<InboxItem>) {
    for a in t.live() {
        let item = |text: String, kind: InboxKind| InboxItem {
            task: Some(t.id.clone()),
            attempt: Some(a.id),
            text,
            kind,
        };
        match (a.substatus, &a.question) {
            (Substatus::WaitingInput, Some(q)) => items.push(item(q.clone(), InboxKind::Question)),
            // Hooks record `TOOL: subject` (core::hooks); the screen rules, what they matched.
            (Substatus::WaitingPermission, q) => {
                let text = q.clone().unwrap_or_else(|| "asks permission".into());
                let tool = text
                    .split_once(": ")
                    .map_or("?", |(tool, _)| tool)
                    .to_string();
                items.push(item(text, InboxKind::Permission { tool }));
            }
            (Substatus::WaitingDialog, q) => items.push(item(
                q.clone()
                    .unwrap_or_else(|| "waits at a dialog of its own".into()),
                InboxKind::Dialog,
            )),
            (Substatus::Idle, q) if a.role == Role::Agent => items.push(item(
                q.clone()
                    .unwrap_or_else(|| "its turn ended without a result".into()),
                InboxKind::IdleTurn,
            )),
            _ => {}
        }
        if a.role != Role::Agent {
            continue;
        }
        let near: Vec<BudgetUse> = budget_use(t, a, now_ms)
            .into_iter()
            .filter(|b| b.ratio() >= WARN_AT)
            .collect();
        if !near.is_empty() {
            let text = near
                .iter()
                .map(BudgetUse::describe)
                .collect::<Vec<_>>()
                .join(", ");
            items.push(item(text, InboxKind::BudgetWarning { budgets: near }));
        }
    }
}

fn approval(t: &TaskView, checks: &[CheckEvent]) -> InboxItem {
    let agent = t.latest();
    let n = agent.map_or(AttemptNo(0), |a| a.n);
    let reviewer = t
        .attempts
        .iter()
        .filter(|a| a.role == Role::Reviewer && a.n == n)
        .max_by_key(|a| a.id);
    let stage = t.stage.unwrap_or(FunnelStage::Human);
    let text = match (stage, t.stage_until_ms) {
        (FunnelStage::Veto, Some(_)) => "merges when the veto window closes unless rejected",
        _ => "waits for approval",
    };
    InboxItem {
        task: Some(t.id.clone()),
        attempt: None,
        text: text.to_string(),
        kind: InboxKind::Approval(Box::new(Approval {
            stage,
            until_ms: t.stage_until_ms,
            n,
            base: agent.and_then(|a| a.base.clone()),
            commit: agent.and_then(|a| a.commit_oid.clone()),
            diff_lines: agent.and_then(|a| a.diff_lines),
            checks: checks
                .iter()
                .filter(|c| c.attempt == Some(n) && !c.rebased)
                .map(|c| CheckResult {
                    command: c.command.clone(),
                    passed: c.passed,
                })
                .collect(),
            verdict: reviewer.and_then(|r| r.verdict),
            verdict_notes: reviewer.and_then(|r| r.verdict_notes.clone()),
        })),
    }
}

/// An escalated or failed task: a budget that ran out (its agent was stopped and the numbers
/// say which budget), or the supervisor's reason.
fn ended_item(t: &TaskView) -> Option<InboxItem> {
    if !matches!(t.state, TaskState::Escalated | TaskState::Failed) {
        return None;
    }
    let reason = t.reason.clone().unwrap_or_default();
    let spent: Vec<BudgetUse> = t
        .latest()
        .filter(|a| a.state == AttemptState::Killed)
        .map(|a| budget_use(t, a, 0))
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b.ratio() >= 1.0)
        .collect();
    let kind = if !spent.is_empty() {
        InboxKind::BudgetExhausted { budgets: spent }
    } else if t.state == TaskState::Escalated {
        InboxKind::Escalated
    } else {
        InboxKind::Failed {
            failures: t.failures,
            max_attempts: t.max_attempts,
        }
    };
    Some(InboxItem {
        task: Some(t.id.clone()),
        attempt: None,
        text: reason,
        kind,
    })
}
