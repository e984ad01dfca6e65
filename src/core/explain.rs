//! `orch-tui explain TASK`: why a task is where it is, in words, from its events alone. Each
//! state change of an attempt names the detection layer and rule that fired (`hook:Stop`,
//! `osc:…`, `title:…`, `bell:…`, `screen:…`) and what showed it; permissions say who answered
//! and by which rule; budgets, limits, checks and verdicts say what they decided. Pure: the CLI
//! reads the ledger and prints what this builds.

use serde::Serialize;

use crate::core::domain::{Actor, AttemptNo, EventKind, FunnelStage};
use crate::core::ops::EventData;
use crate::core::state::TaskState;

/// One event of the task, as the ledger holds it.
#[derive(Debug, Clone)]
pub struct Fact {
    pub seq: i64,
    pub ts_ms: i64,
    pub attempt: Option<AttemptNo>,
    pub actor: Actor,
    pub kind: EventKind,
    pub data: EventData,
}

/// One line of the explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub seq: i64,
    pub ts_ms: i64,
    pub kind: &'static str,
    pub actor: &'static str,
    /// What happened, in words.
    pub what: String,
    /// The detection layer (`hook`, `notify`, `osc`, `title`, `bell`, `screen`) of a state
    /// change, and the rule in that layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What showed it: the hook's text or the screen's line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptStory {
    pub n: u32,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub task: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Events of the task as a whole (state changes, funnel stages, merges).
    pub task_lines: Vec<Line>,
    pub attempts: Vec<AttemptStory>,
}

/// The task's story from its events (oldest first); `only` keeps one attempt's.
pub fn explain(
    task: &str,
    state: TaskState,
    stage: Option<FunnelStage>,
    reason: Option<&str>,
    facts: &[Fact],
    only: Option<AttemptNo>,
) -> Explanation {
    let mut task_lines = Vec::new();
    let mut attempts: Vec<AttemptStory> = Vec::new();
    for f in facts {
        let Some(line) = line_of(f) else { continue };
        match f.attempt {
            None if only.is_none() => task_lines.push(line),
            None => {}
            Some(n) if only.is_some_and(|o| o != n) => {}
            Some(n) => match attempts.iter_mut().find(|a| a.n == n.0) {
                Some(a) => a.lines.push(line),
                None => attempts.push(AttemptStory {
                    n: n.0,
                    lines: vec![line],
                }),
            },
        }
    }
    attempts.sort_by_key(|a| a.n);
    Explanation {
        task: task.to_string(),
        state: state.as_str(),
        stage: stage.map(FunnelStage::as_str),
        reason: reason.map(String::from),
        task_lines,
        attempts,
    }
}

fn line_of(f: &Fact) -> Option<Line> {
    let d = &f.data;
    let mut line = Line {
        seq: f.seq,
        ts_ms: f.ts_ms,
        kind: f.kind.as_str(),
        actor: f.actor.as_str(),
        what: String::new(),
        layer: None,
        rule: None,
        excerpt: None,
    };
    let why = |s: &mut String| {
        if let Some(w) = d.why.as_deref().or(d.reason.as_deref()) {
            s.push_str(&format!(": {w}"));
        }
    };
    line.what = match f.kind {
        // Bookkeeping that explains nothing.
        EventKind::Heartbeat | EventKind::Usage | EventKind::Spend | EventKind::EpochStarted => {
            return None;
        }
        EventKind::AgentState => {
            let (layer, rule) = split_rule(d.rule.as_deref());
            line.layer = layer;
            line.rule = rule;
            line.excerpt = d.excerpt.clone();
            match d.substatus {
                Some(s) => state_words(s.as_str()).to_string(),
                None => "changed state".into(),
            }
        }
        EventKind::Hook => {
            let (layer, rule) = split_rule(d.rule.as_deref());
            line.layer = layer;
            line.rule = rule;
            format!("hook {}", d.hook.as_deref().unwrap_or("?"))
        }
        EventKind::Permission => permission_words(f, &mut line),
        EventKind::State => {
            let mut s = format!(
                "task {} → {}",
                d.from.map_or("?", TaskState::as_str),
                d.to.map_or("?", TaskState::as_str)
            );
            why(&mut s);
            s
        }
        EventKind::Funnel => match d.stage {
            Some(st) => format!("funnel stage {}", st.as_str()),
            None => "funnel ended".into(),
        },
        EventKind::AttemptStarted => match &d.profile {
            Some(p) => format!("started (profile {p})"),
            None => "started".into(),
        },
        EventKind::ReviewStarted => format!(
            "review started{}",
            d.profile
                .as_ref()
                .map(|p| format!(" (profile {p})"))
                .unwrap_or_default()
        ),
        EventKind::AttemptEnded => {
            let mut s = format!("ended: {}", d.outcome.as_deref().unwrap_or("?"));
            why(&mut s);
            s
        }
        EventKind::AgentDone => format!(
            "agent said done{}",
            d.summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ),
        EventKind::AgentFail => {
            let mut s = "agent said it failed".to_string();
            why(&mut s);
            s
        }
        EventKind::AgentQuestion => {
            line.excerpt = d.note.clone().or(d.excerpt.clone());
            "agent asked a question".into()
        }
        EventKind::Answered => format!(
            "answered by {}{}",
            f.actor.as_str(),
            d.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
        EventKind::Verdict => format!(
            "reviewer verdict: {}{}",
            match d.approve {
                Some(true) => "approve",
                Some(false) => "reject",
                None => "?",
            },
            d.notes
                .as_deref()
                .or(d.summary.as_deref())
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        ),
        EventKind::CheckPassed | EventKind::CheckFailed => format!(
            "check {} `{}`{}",
            if f.kind == EventKind::CheckPassed {
                "passed"
            } else {
                "failed"
            },
            d.command.as_deref().unwrap_or("?"),
            match (d.exit_code, d.timed_out) {
                (_, Some(true)) => " (timed out)".to_string(),
                (Some(c), _) if f.kind == EventKind::CheckFailed => format!(" (exit {c})"),
                _ => String::new(),
            }
        ),
        EventKind::BudgetWarning | EventKind::BudgetExhausted | EventKind::Extended => {
            let what = match f.kind {
                EventKind::BudgetWarning => "budget at 80%",
                EventKind::BudgetExhausted => "budget exhausted",
                _ => "budget extended",
            };
            format!(
                "{what}: {} {} of {}",
                d.budget.as_deref().unwrap_or("?"),
                d.spent.map_or("?".into(), fmt_num),
                d.limit.map_or("?".into(), fmt_num)
            )
        }
        EventKind::Limit => {
            let mut s = format!("limit on account {}", d.account.as_deref().unwrap_or("?"));
            if let Some(until) = d.until_ms {
                s.push_str(&format!(" until {}", clock(until as i64)));
            }
            why(&mut s);
            s
        }
        EventKind::Breaker => {
            let mut s = format!("breaker of profile {}", d.profile.as_deref().unwrap_or("?"));
            if let Some(o) = &d.outcome {
                s.push_str(&format!(" {o}"));
            }
            why(&mut s);
            s
        }
        EventKind::TurnSent => "change request typed into the live session".into(),
        EventKind::MergeRecorded => format!(
            "merge recorded{}",
            d.integration_tip
                .as_deref()
                .map(|t| format!(" (integration tip {})", short(t)))
                .unwrap_or_default()
        ),
        EventKind::Session => format!("conversation {}", d.session.as_deref().unwrap_or("?")),
        EventKind::Note => format!("note: {}", d.note.as_deref().unwrap_or("")),
        other => {
            let mut s = other.as_str().replace('_', " ");
            why(&mut s);
            s
        }
    };
    Some(line)
}

fn permission_words(f: &Fact, line: &mut Line) -> String {
    let d = &f.data;
    let call = format!(
        "{} {}",
        d.tool.as_deref().unwrap_or("?"),
        d.subject.as_deref().unwrap_or("")
    );
    let call = call.trim_end();
    let on = d
        .source
        .as_deref()
        .map(|s| match s {
            "hook" => " (through its hook)".to_string(),
            "screen" => " (on its screen)".to_string(),
            other => format!(" ({other})"),
        })
        .unwrap_or_default();
    line.rule = d.rule.clone();
    match d.decision.as_deref() {
        None => format!("asks permission: {call}{on}"),
        Some("trust") => format!("folder trusted by {}", f.actor.as_str()),
        Some(dec) => {
            let by = match (f.actor, &d.rule) {
                (Actor::Human, _) => "by the human".to_string(),
                (_, Some(r)) => format!("by rule `{r}`"),
                (a, None) => format!("by the {}", a.as_str()),
            };
            let note = d
                .note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default();
            format!("{dec} {call}{on}, {by}{note}")
        }
    }
}

/// `screen:claude-idle-prompt` → (`screen`, `claude-idle-prompt`).
fn split_rule(rule: Option<&str>) -> (Option<String>, Option<String>) {
    match rule.map(|r| r.split_once(':').map_or(("", r), |(l, n)| (l, n))) {
        Some(("", r)) => (None, Some(r.to_string())),
        Some((l, r)) => (Some(l.to_string()), Some(r.to_string())),
        None => (None, None),
    }
}

fn state_words(s: &str) -> &'static str {
    match s {
        "starting" => "starting",
        "busy" => "working",
        "waiting_input" => "waiting (question)",
        "waiting_permission" => "waiting (permission)",
        "waiting_dialog" => "waiting (first-run dialog)",
        "idle" => "idle at its prompt (turn over)",
        "limited" => "limited",
        "ended" => "ended",
        _ => "changed state",
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

fn short(oid: &str) -> &str {
    oid.get(..10).unwrap_or(oid)
}

/// `HH:MM:SS` (UTC) of a ledger timestamp.
pub fn clock(ts_ms: i64) -> String {
    let s = ts_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The explanation in words, one string per output line.
pub fn render(e: &Explanation) -> Vec<String> {
    let mut out = vec![match e.stage {
        Some(st) => format!("task {}: {} (funnel stage {st})", e.task, e.state),
        None => format!("task {}: {}", e.task, e.state),
    }];
    if let Some(r) = &e.reason {
        out.push(format!("  why: {r}"));
    }
    let mut section = |title: String, lines: &[Line]| {
        out.push(title);
        for l in lines {
            let mut s = format!("  {}  {}", clock(l.ts_ms), l.what);
            match (&l.layer, &l.rule) {
                (Some(layer), Some(rule)) => s.push_str(&format!(" — {layer} rule `{rule}`")),
                (None, Some(rule)) if l.kind == "agent_state" => {
                    s.push_str(&format!(" — rule `{rule}`"))
                }
                _ => {}
            }
            if let Some(x) = l.excerpt.as_deref().filter(|x| !x.is_empty()) {
                s.push_str(&format!(": “{x}”"));
            }
            out.push(s);
        }
    };
    if !e.task_lines.is_empty() {
        section("the task:".into(), &e.task_lines);
    }
    for a in &e.attempts {
        section(format!("attempt {}:", a.n), &a.lines);
    }
    if e.task_lines.is_empty() && e.attempts.is_empty() {
        out.push("  nothing has happened to it yet".into());
    }
    out
}

#[cfg(test)]
mod tests;
