//! The read model (`crate::read`) → view data, and the reads behind the task detail and the
//! timeline. Everything here that touches the ledger or a file runs in a background job
//! (`jobs.rs`); the UI thread only swaps the result in (`apply`) and updates the clocks (`tick`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::render::DagLayout;
use super::state::{AgentInfo, AttemptInfo, DetailInfo, InboxItem, TaskInfo, ViewState};
use crate::core::domain::{AttemptId, Role, Substatus};
use crate::core::state::TaskState;
use crate::engine::AgentView;
use crate::ledger::{AttemptRow, Ledger, LedgerError};
use crate::read::{Snapshot, Spend, TaskView};

/// Ended agents whose last screen focus mode can still show.
const KEEP_ENDED_SCREENS: usize = 16;

/// A refresh's result, built off the UI thread: everything the views show from the ledger.
pub struct Refreshed {
    pub plan: String,
    pub tasks: Vec<TaskInfo>,
    pub dag: DagLayout,
    pub inbox: Vec<InboxItem>,
    pub agents: Vec<AgentInfo>,
    pub spend: Spend,
    /// Limits, breakers, a spent run budget (the header's).
    pub alerts: Vec<crate::ledger::Alert>,
    /// Tasks done, and in all.
    pub done: usize,
    pub total: usize,
    /// What the refresh cost (the loop spaces refreshes by it).
    pub took: Duration,
}

/// View data from a snapshot and the engine's live agents (their screens). `now` is when the
/// refresh started (elapsed times are counted from it, and its cost until it is built).
pub fn build(snap: Snapshot, views: &[AgentView], now: Instant) -> Refreshed {
    let by_task: HashMap<&str, &AgentView> = views.iter().map(|v| (v.task.as_str(), v)).collect();
    let live: HashMap<AttemptId, (&TaskView, &AttemptRow)> = snap
        .tasks
        .iter()
        .flat_map(|t| t.live().map(move |a| (a.id, (t, a))))
        .collect();
    let agents = views
        .iter()
        .map(|v| {
            let found = live.get(&v.attempt).copied();
            let row = found.map(|(_, a)| a);
            let task = found.map(|(t, _)| t);
            AgentInfo {
                attempt: v.attempt,
                task: v.task.clone(),
                n: v.n,
                profile: v.profile.clone(),
                substatus: row.map_or(Substatus::Starting, |r| r.substatus),
                question: row
                    .filter(|r| r.substatus == Substatus::WaitingInput)
                    .and_then(|r| r.question.clone()),
                elapsed: v
                    .held_since
                    .unwrap_or(now)
                    .saturating_duration_since(v.started),
                time_budget: v.deadline.map(|d| d.saturating_duration_since(v.started)),
                started: v.started,
                held_since: v.held_since,
                // Budgets count every attempt of a task: the gauges show the task's spend.
                tokens: task.map_or(0, |t| t.spend.tokens),
                cost_usd: task.map_or(0.0, |t| t.spend.cost_usd),
                budget_tokens: task.and_then(|t| t.budget.tokens),
                budget_cost_usd: task.and_then(|t| t.budget.cost_usd),
                screen: v.screen.clone(),
            }
        })
        .collect();
    let (done, total) = (snap.count(TaskState::Done), snap.tasks.len());
    // Moved out of the snapshot, not copied: at 10,000 tasks the copies of ids, titles and
    // dependency lists were a fifth of a refresh.
    let tasks: Vec<TaskInfo> = snap
        .tasks
        .into_iter()
        .map(|t| {
            let review = t.state == TaskState::Review;
            TaskInfo {
                agent: by_task.get(t.id.as_str()).map(|v| v.profile.clone()),
                id: t.id,
                title: t.title,
                state: t.state,
                deps: t.depends_on,
                reason: t.reason,
                stage: if review { t.stage } else { None },
                stage_until_ms: if review { t.stage_until_ms } else { None },
            }
        })
        .collect();
    let dag = super::render::dag_layout(&tasks);
    Refreshed {
        plan: snap.run.plan.clone().unwrap_or_default(),
        done,
        total,
        dag,
        tasks,
        inbox: snap.inbox,
        agents,
        spend: snap.spend,
        alerts: snap.run.alerts.clone(),
        took: now.elapsed(),
    }
}

/// Swap a refresh into the view state (cheap: moves, plus the few agents).
/// Lists keep the selected ITEM across refreshes, not its row number: an item arriving above
/// must not move a key's target to another task. A selected item that left keeps its row (the
/// next item takes it).
pub fn apply(s: &mut ViewState, r: Refreshed) {
    let task = s.selected_task().map(|t| t.id.clone());
    let item = s.inbox.get(s.selected_inbox).map(inbox_key);
    let agent = s.agents.get(s.selected_agent).map(|a| a.attempt);
    swap_in(s, r);
    if let Some(i) = task.and_then(|id| s.tasks.iter().position(|t| t.id == id)) {
        s.selected_task = i;
    }
    if let Some(i) = item.and_then(|k| s.inbox.iter().position(|it| inbox_key(it) == k)) {
        s.selected_inbox = i;
    }
    if let Some(i) = agent.and_then(|id| s.agents.iter().position(|a| a.attempt == id)) {
        s.selected_agent = i;
    }
}

/// What makes an inbox item the same item in the next refresh: its kind, task and attempt
/// (run-wide items, which have neither, by their text).
pub fn inbox_key(i: &InboxItem) -> (std::mem::Discriminant<crate::read::InboxKind>, String) {
    let who = match (&i.task, i.attempt) {
        (Some(t), Some(a)) => format!("{t}/{}", a.0),
        (Some(t), None) => t.clone(),
        (None, _) => i.text.clone(),
    };
    (std::mem::discriminant(&i.kind), who)
}

fn swap_in(s: &mut ViewState, r: Refreshed) {
    s.loaded = true;
    s.plan = r.plan;
    s.tasks = r.tasks;
    s.dag = r.dag;
    s.inbox = r.inbox;
    s.spend_tokens = r.spend.tokens;
    s.spend_usd = r.spend.cost_usd;
    // Agents that ended keep their last screen for focus mode.
    for old in std::mem::take(&mut s.agents) {
        if !r.agents.iter().any(|a| a.attempt == old.attempt) && old.screen.is_some() {
            s.ended.retain(|e| e.attempt != old.attempt);
            s.ended.push(old);
        }
    }
    if s.ended.len() > KEEP_ENDED_SCREENS {
        let cut = s.ended.len() - KEEP_ENDED_SCREENS;
        s.ended.drain(..cut);
    }
    s.agents = r.agents;
    s.alerts = r.alerts;
    s.clamp();
}

/// Update the elapsed times (run and agents) without touching the ledger.
pub fn tick(s: &mut ViewState, run_started: Instant, now: Instant) {
    s.elapsed = now.saturating_duration_since(run_started);
    s.wall_ms = crate::ledger::now_ms();
    for a in &mut s.agents {
        a.elapsed = a
            .held_since
            .unwrap_or(now)
            .saturating_duration_since(a.started);
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
    let history = all
        .iter()
        .filter_map(|e| {
            super::history::line(e.ts_ms.max(0) as u64, e.actor, e.attempt, e.kind, &e.data)
        })
        .collect();
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
        history,
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
