//! A task's events as a person tells them: `14:02:11  you    cancel: working → cancelled`,
//! one line each — time, who, what. Liveness noise (heartbeats, usage reports) is left out;
//! the raw JSON stays one key away in the task detail (`J`).

use serde_json::Value;

use crate::core::domain::{Actor, AttemptNo, EventKind};

/// The line for one event, or `None` for events a person does not need to read.
pub fn line(
    ts_ms: u64,
    actor: Actor,
    attempt: Option<AttemptNo>,
    kind: EventKind,
    data: &Value,
) -> Option<String> {
    // A stage change is written by the supervisor's funnel even when a human asked for it (a
    // veto window held): the event says who in `by`.
    let by_human = data.get("by").and_then(Value::as_str) == Some("human");
    let who = match (actor, attempt) {
        (Actor::Human, _) => "you".to_string(),
        (Actor::Supervisor, _) if by_human => "you".to_string(),
        (Actor::Supervisor, _) => "orch".to_string(),
        (Actor::Agent, Some(n)) => format!("agent#{}", n.0),
        (Actor::Agent, None) => "agent".to_string(),
        (Actor::Check, _) => "check".to_string(),
    };
    let what = what(kind, attempt, data)?;
    Some(format!(
        "{}  {who:<8} {what}",
        crate::agent::record::text::local_clock(ts_ms)
    ))
}

fn text<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// ` — why` / `: note`, when the event carries them.
fn because(data: &Value) -> String {
    let mut out = String::new();
    if let Some(n) = text(data, "note") {
        out.push_str(&format!(" · note: {n}"));
    }
    if let Some(w) = text(data, "why").or_else(|| text(data, "outcome")) {
        out.push_str(&format!(" — {w}"));
    }
    out
}

fn what(kind: EventKind, attempt: Option<AttemptNo>, data: &Value) -> Option<String> {
    let n = attempt.map_or(String::new(), |n| format!(" #{}", n.0));
    Some(match kind {
        EventKind::Heartbeat | EventKind::Usage => return None,
        EventKind::EpochStarted => "supervisor started".into(),
        EventKind::TaskAdded => "added the task".into(),
        EventKind::SpecChanged => "changed the prompt".into(),
        EventKind::State => {
            let from = text(data, "from").unwrap_or("?");
            let to = text(data, "to").unwrap_or("?");
            let cmd = text(data, "command").map_or(String::new(), |c| format!("{c}: "));
            format!("{cmd}{from} → {to}{}", because(data))
        }
        EventKind::Funnel => {
            let by_human = text(data, "by") == Some("human");
            match (text(data, "stage"), by_human) {
                (Some("human"), true) => "stopped the veto window: waits for you".into(),
                (Some("veto"), _) => match data.get("until_ms").and_then(Value::as_u64) {
                    Some(u) => format!(
                        "veto window: merges at {} unless vetoed",
                        crate::agent::record::text::local_clock(u)
                    ),
                    None => "veto window".into(),
                },
                (Some("human"), false) => "waits for your approval".into(),
                (Some(stage), _) => format!("review: {stage}"),
                (None, _) => format!("review over{}", because(data)),
            }
        }
        EventKind::AttemptStarted => format!(
            "attempt{n} started{}",
            text(data, "profile").map_or(String::new(), |p| format!(" ({p})"))
        ),
        EventKind::ReviewStarted => format!(
            "reviewer{n} started{}",
            text(data, "profile").map_or(String::new(), |p| format!(" ({p})"))
        ),
        EventKind::AttemptEnded => format!("attempt{n} ended{}", because(data)),
        EventKind::AgentDone => format!("reported done{}", because(data)),
        EventKind::AgentFail => format!("reported a failure{}", because(data)),
        EventKind::AgentQuestion => match text(data, "question").or_else(|| text(data, "why")) {
            Some(q) => format!("asks: {q}"),
            None => "asks a question".into(),
        },
        EventKind::Verdict => {
            let approve = data.get("approve").and_then(Value::as_bool) == Some(true);
            let notes = text(data, "notes").map_or(String::new(), |n| format!(" — {n}"));
            format!(
                "reviewer: {}{notes}",
                if approve { "approve" } else { "changes" }
            )
        }
        EventKind::Answered => "answered the agent".into(),
        EventKind::CheckPassed => format!("✓ {}", text(data, "command").unwrap_or("check")),
        EventKind::CheckFailed => format!(
            "✗ {}{}",
            text(data, "command").unwrap_or("check"),
            data.get("exit_code")
                .and_then(Value::as_i64)
                .map_or(String::new(), |c| format!(" (exit {c})"))
        ),
        EventKind::MergeRecorded => "merging into the integration branch".into(),
        EventKind::IntegrationMoved => "the integration branch moved outside orch-tui".into(),
        EventKind::StrayBranch => format!(
            "kept a branch the agent made{}",
            text(data, "branch").map_or(String::new(), |b| format!(": {b}"))
        ),
        EventKind::Note => format!("note{}", because(data)),
        EventKind::BaseRecorded => format!(
            "base recorded{}",
            text(data, "base").map_or(String::new(), |b| format!(": {b}"))
        ),
        EventKind::SyncRequested => "asked for a sync onto the base".into(),
        EventKind::SyncRecorded => "syncing the integration branch".into(),
        EventKind::Synced => format!("synced onto the base{}", because(data)),
        EventKind::SyncStopped => format!("the sync stopped{}", because(data)),
        // Spend, conversation ids and raw hooks are figures and plumbing, not moments.
        EventKind::Spend | EventKind::Session | EventKind::Hook => return None,
        EventKind::AgentState => format!(
            "agent {}{}",
            text(data, "substatus").unwrap_or("changed state"),
            text(data, "rule").map_or(String::new(), |r| format!(" ({r})"))
        ),
        EventKind::BudgetWarning => format!(
            "80% of its {} budget used",
            text(data, "budget").unwrap_or("")
        ),
        EventKind::BudgetExhausted => format!("budget used up{}", because(data)),
        EventKind::Extended => format!("budget raised{}", because(data)),
        EventKind::Limit => format!(
            "usage limit{}{}",
            text(data, "account").map_or(String::new(), |a| format!(" of {a}")),
            because(data)
        ),
        EventKind::Breaker => format!("circuit breaker{}", because(data)),
        EventKind::Permission => match text(data, "decision") {
            Some(d) => format!("permission: {d}{}", because(data)),
            None => format!(
                "asks permission: {}{}",
                text(data, "tool").unwrap_or("?"),
                text(data, "subject").map_or(String::new(), |s| format!(" {s}"))
            ),
        },
        EventKind::TurnSent => "sent the agent its next turn".into(),
        EventKind::ChangeRequestTyped => format!("change request typed into its session{n}"),
        EventKind::KeptAlive => "its session stays alive through review".into(),
        EventKind::SessionEnded => format!("its session ended{}", because(data)),
        EventKind::AgentStop => {
            format!("ending its session: interrupt, then exit{}", because(data))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_veto_window_is_told_as_the_humans_doing() {
        let data = serde_json::json!({"stage": "human", "by": "human"});
        let l = line(0, Actor::Supervisor, None, EventKind::Funnel, &data).unwrap_or_default();
        assert!(
            l.contains("you") && l.contains("stopped the veto window"),
            "{l}"
        );
        let data = serde_json::json!({"stage": "human"});
        let l = line(0, Actor::Supervisor, None, EventKind::Funnel, &data).unwrap_or_default();
        assert!(
            l.contains("orch") && l.contains("waits for your approval"),
            "{l}"
        );
    }
}
