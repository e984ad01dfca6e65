//! Ledger + engine handle → view state. Called when something changed (an engine event, a human
//! command), never per frame; the clock fields are updated by `tick` instead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::state::{AgentInfo, AttemptInfo, DetailInfo, InboxItem, InboxKind, TaskInfo, ViewState};
use crate::core::domain::{AttemptId, Role, Substatus};
use crate::core::state::TaskState;
use crate::engine::AgentView;
use crate::ledger::{Ledger, LedgerError};

/// Ended agents whose last screen focus mode can still show.
const KEEP_ENDED_SCREENS: usize = 16;

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
    // Budgets count every attempt of a task: the gauges show the task's spend.
    let task_spend = ledger.spend_by_task()?;
    // Agents that ended keep their last screen for focus mode.
    for old in std::mem::take(&mut s.agents) {
        if !views.iter().any(|v| v.attempt == old.attempt) && old.screen.is_some() {
            s.ended.retain(|e| e.attempt != old.attempt);
            s.ended.push(old);
        }
    }
    if s.ended.len() > KEEP_ENDED_SCREENS {
        let cut = s.ended.len() - KEEP_ENDED_SCREENS;
        s.ended.drain(..cut);
    }
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
                tokens: task_spend.get(&v.task).map_or(0, |s| s.0),
                cost_usd: task_spend.get(&v.task).map_or(0.0, |s| s.1),
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
    let alerts = ledger.alerts(crate::ledger::now_ms())?;
    for a in alerts.iter().filter(|a| a.for_inbox()) {
        inbox.push(InboxItem {
            task: a.task.clone().unwrap_or_default(),
            kind: InboxKind::Notice,
            text: a.text.clone(),
            attempt: a.attempt.and_then(|n| {
                s.agents
                    .iter()
                    .find(|g| g.task == a.task.clone().unwrap_or_default() && g.n.0 == n)
                    .map(|g| g.attempt)
            }),
        });
    }
    s.alerts = alerts.into_iter().filter(|a| !a.for_inbox()).collect();
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
    let record = load_record(ledger, task)?;
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
        records: record.lines,
        conversation: record.conversation,
        conversation_path: record.conversation_path,
        screen_tail: record.screen_tail,
        scroll: 0,
    }))
}

/// Lines of a screen.log tail kept in the task detail.
const DETAIL_TAIL_LINES: usize = 40;

struct Record {
    lines: Vec<String>,
    conversation: Vec<(crate::tui::state::TranscriptKind, String)>,
    conversation_path: Option<String>,
    screen_tail: Vec<String>,
}

/// `.orch/logs/t/1` rather than the whole path.
fn short_path(p: &std::path::Path) -> String {
    let s = p.to_string_lossy();
    match s.find(".orch/") {
        Some(i) => s[i..].to_string(),
        None => s.into_owned(),
    }
}

/// Each attempt's record (log folder, replay, transcript), the newest agent attempt's
/// conversation and screen log tail. Reads are bounded: a tail of the log, the end of a long
/// transcript.
fn load_record(ledger: &Ledger, task: &str) -> Result<Record, LedgerError> {
    use crate::agent::record::{CAST_LOG, TEXT_LOG, tail::Tail, text, transcript};
    let homes = transcript::Homes::from_env();
    let mut out = Record {
        lines: Vec::new(),
        conversation: Vec::new(),
        conversation_path: None,
        screen_tail: Vec::new(),
    };
    let attempts = ledger.attempts(task)?;
    for a in &attempts {
        let Some(dir) = a.log_dir.as_deref().filter(|d| !d.is_empty()) else {
            continue;
        };
        let dir = std::path::Path::new(dir);
        let review = a.role == Role::Reviewer;
        let mut line = format!(
            "#{}{} {}  {}",
            a.n,
            if review { " review" } else { "" },
            a.profile,
            short_path(dir)
        );
        if dir.join(CAST_LOG).exists() {
            line.push_str(&format!(
                "  replay: orch-tui replay {task} --attempt {}{}",
                a.n,
                if review { " --review" } else { "" }
            ));
        }
        out.lines.push(line);
        if let Some(t) = transcript::locate(dir, &homes) {
            out.lines
                .push(format!("   transcript: {}", t.to_string_lossy()));
        }
    }
    let newest = attempts.iter().rev().find(|a| a.role == Role::Agent);
    if let Some(dir) = newest.and_then(|a| a.log_dir.as_deref()) {
        let dir = std::path::Path::new(dir);
        if let Some(path) = transcript::locate(dir, &homes)
            && let Ok(conv) = transcript::read(&path)
        {
            out.conversation = transcript::render(&conv);
            out.conversation_path = Some(path.to_string_lossy().into_owned());
        }
        let mut tail = Tail::new(&dir.join(TEXT_LOG), 16 * 1024);
        let lines = tail.poll(16 * 1024).unwrap_or_default();
        let start = lines.len().saturating_sub(DETAIL_TAIL_LINES);
        out.screen_tail = lines[start..]
            .iter()
            .map(|raw| match text::parse_line(raw) {
                Some(l) => {
                    let text = match l.kind {
                        text::LineKind::Output => l.text,
                        text::LineKind::Screen => format!("┊ {}", l.text),
                        text::LineKind::Note => format!("── {} ──", l.text),
                    };
                    format!("{} {text}", text::local_clock(l.ms))
                }
                None => raw.clone(),
            })
            .collect();
    }
    Ok(out)
}

/// The run's timeline from every event in the ledger, up to `now_ms`.
pub fn load_timeline(
    ledger: &Ledger,
    now_ms: u64,
) -> Result<crate::core::timeline::Timeline, LedgerError> {
    use crate::core::timeline::{TimelineEvent, build};
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let batch = ledger.events(after, None, 5000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        events.extend(batch.into_iter().map(|e| TimelineEvent {
            ts_ms: e.ts_ms.max(0) as u64,
            task: e.task,
            attempt: e.attempt.map(|a| a.0),
            actor: e.actor,
            kind: e.kind,
            // Keys this build does not know are ignored; an unreadable one is an empty event.
            data: serde_json::from_value(e.data).unwrap_or_default(),
        }));
    }
    Ok(build(&events, now_ms))
}
