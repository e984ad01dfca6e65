//! Ledger + engine handle → view state. Called when something changed (an engine event, a human
//! command), never per frame; the clock fields are updated by `tick` instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::render::term;
use super::state::{
    AgentInfo, AttemptInfo, DetailInfo, InboxItem, InboxKind, LogLine, TaskInfo, ViewState,
};
use crate::core::domain::{AttemptId, Role, Substatus};
use crate::core::state::TaskState;
use crate::engine::AgentView;
use crate::ledger::{Ledger, LedgerError};

/// Log lines kept per attempt file: the view is a tail, not an archive (`orch-tui logs` is).
const LOG_TAIL_LINES: usize = 500;

pub fn refresh(
    s: &mut ViewState,
    ledger: &Ledger,
    views: &[AgentView],
    now: Instant,
) -> Result<(), LedgerError> {
    s.plan = ledger.plan_name()?.unwrap_or_default();
    let live: HashMap<AttemptId, crate::ledger::AttemptRow> = ledger
        .live_attempts()?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let rows = ledger.tasks()?;
    let by_task: HashMap<&str, &AgentView> = views.iter().map(|v| (v.task.as_str(), v)).collect();
    s.tasks = rows
        .iter()
        .map(|t| TaskInfo {
            id: t.id.clone(),
            title: t.title.clone(),
            state: t.state,
            deps: t.depends_on.clone(),
            agent: by_task.get(t.id.as_str()).map(|v| v.profile.clone()),
            reason: t.reason.clone(),
            stage: (t.state == TaskState::Review).then_some(t.stage).flatten(),
            stage_until_ms: (t.state == TaskState::Review)
                .then_some(t.stage_until_ms)
                .flatten(),
        })
        .collect();
    let task_rows: HashMap<&str, &crate::ledger::TaskRow> =
        rows.iter().map(|t| (t.id.as_str(), t)).collect();
    s.agents = views
        .iter()
        .map(|v| {
            let row = live.get(&v.attempt);
            let task = task_rows.get(v.task.as_str());
            AgentInfo {
                attempt: v.attempt,
                task: v.task.clone(),
                n: v.n,
                profile: v.profile.clone(),
                substatus: row.map_or(Substatus::Starting, |r| r.substatus),
                question: row
                    .filter(|r| r.substatus == Substatus::WaitingInput)
                    .and_then(|r| r.question.clone()),
                elapsed: now.saturating_duration_since(v.started),
                time_budget: v.deadline.map(|d| d.saturating_duration_since(v.started)),
                started: v.started,
                tokens: row.map_or(0, |r| r.tokens_in.saturating_add(r.tokens_out)),
                cost_usd: row.map_or(0.0, |r| r.cost_usd),
                budget_tokens: task.and_then(|t| t.budget_tokens),
                budget_cost_usd: task.and_then(|t| t.budget_cost_usd),
                screen: v.screen.clone(),
            }
        })
        .collect();
    let mut inbox = Vec::new();
    for a in &s.agents {
        if let Some(q) = &a.question {
            inbox.push(InboxItem {
                task: a.task.clone(),
                kind: InboxKind::Question,
                text: q.clone(),
                attempt: Some(a.attempt),
            });
        }
    }
    inbox.extend(super::funnel::approval_items(
        ledger,
        &rows,
        &mut s.stat_cache,
    )?);
    for t in &rows {
        let kind = match t.state {
            TaskState::Escalated => InboxKind::Escalated,
            TaskState::Failed => InboxKind::Failed,
            _ => continue,
        };
        inbox.push(InboxItem {
            task: t.id.clone(),
            kind,
            text: t.reason.clone().unwrap_or_default(),
            attempt: None,
        });
    }
    s.inbox = inbox;
    let (tokens, usd) = ledger.spend()?;
    s.spend_tokens = tokens;
    s.spend_usd = usd;
    s.clamp();
    Ok(())
}

/// Update the elapsed times (run and agents) without touching the ledger.
pub fn tick(s: &mut ViewState, run_started: Instant, now: Instant) {
    s.elapsed = now.saturating_duration_since(run_started);
    s.wall_ms = crate::ledger::now_ms();
    for a in &mut s.agents {
        a.elapsed = now.saturating_duration_since(a.started);
    }
}

pub fn load_detail(ledger: &Ledger, task: &str) -> Result<Option<DetailInfo>, LedgerError> {
    let Some(t) = ledger.task(task)? else {
        return Ok(None);
    };
    let attempts = ledger
        .attempts(task)?
        .into_iter()
        .map(|a| AttemptInfo {
            n: a.n,
            // An agent attempt and its reviewer share `n`; say which is which.
            profile: if a.role == Role::Reviewer {
                format!("{} (review)", a.profile)
            } else {
                a.profile
            },
            outcome: match (a.exit_code, a.reason) {
                (_, Some(r)) => r,
                (Some(c), None) => format!("exit {c}"),
                (None, None) => a.substatus.to_string(),
            },
            state: a.state,
            duration: a
                .ended_ms
                .map(|e| Duration::from_millis(e.saturating_sub(a.started_ms).max(0) as u64)),
        })
        .collect();
    let all = ledger.events(0, Some(task), 2000)?;
    let funnel = super::funnel::history(&all);
    let events = all
        .iter()
        .take(200)
        .map(|e| {
            let data = match &e.data {
                serde_json::Value::Null => String::new(),
                v => v.to_string(),
            };
            format!("#{} {} {} {}", e.seq, e.actor, e.kind, data)
        })
        .collect();
    Ok(Some(DetailInfo {
        task: t.id.clone(),
        title: t.title.clone(),
        state: t.state,
        prompt: t.prompt.clone(),
        deps: t.depends_on.clone(),
        note: t.note.clone(),
        reason: t.reason.clone(),
        attempts,
        events,
        funnel,
        scroll: 0,
    }))
}

/// The merged tail: each attempt's `screen.log` (rows that left its screen), then, for a live
/// agent, what is on its screen now; attempts in start order.
pub fn load_logs(ledger: &Ledger, views: &[AgentView]) -> Result<Vec<LogLine>, LedgerError> {
    let mut attempts = Vec::new();
    for t in ledger.tasks()? {
        attempts.extend(ledger.attempts(&t.id)?);
    }
    attempts.sort_by_key(|a| (a.started_ms, a.id));
    let mut out = Vec::new();
    for a in attempts {
        let tag = format!("{}#{}", a.task, a.n);
        if let Some(dir) = &a.log_dir {
            let path = PathBuf::from(dir).join("screen.log");
            if let Ok(bytes) = crate::agent::logs::read_all(&path) {
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(LOG_TAIL_LINES);
                out.extend(lines[start..].iter().map(|l| LogLine {
                    task: tag.clone(),
                    text: (*l).to_string(),
                }));
            }
        }
        if let Some(sc) = views
            .iter()
            .find(|v| v.attempt == a.id)
            .and_then(|v| v.screen.as_ref())
        {
            out.extend(term::screen_lines(sc).into_iter().map(|text| LogLine {
                task: tag.clone(),
                text,
            }));
        }
    }
    Ok(out)
}
