//! `status`, `events`: read-only views of the ledger (`logs` is in `logs.rs`).

use std::sync::mpsc::channel;
use std::time::Duration;

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::core::domain::{EventKind, FunnelStage, Substatus};
use crate::core::state::TaskState;
use crate::engine::summary::format_ms;
use crate::ledger::{EventRow, Ledger, now_ms};
use crate::os::out;

/// Items waiting on the human: escalated tasks and agents' open questions.
fn inbox(ledger: &Ledger) -> Result<Vec<serde_json::Value>, CliError> {
    let mut items = Vec::new();
    for t in ledger.tasks()? {
        if t.state == TaskState::Escalated {
            items.push(serde_json::json!({
                "task": t.id, "kind": "escalation",
                "text": t.reason.clone().unwrap_or_default(),
            }));
        }
        if t.state == TaskState::Review
            && matches!(t.stage, Some(FunnelStage::Human | FunnelStage::Veto))
        {
            let text = match (t.stage, t.stage_until_ms) {
                (Some(FunnelStage::Veto), Some(u)) => format!(
                    "merges in {} unless vetoed: `orch-tui reject {} --note ...`",
                    format_ms(u.saturating_sub(now_ms())),
                    t.id
                ),
                _ => format!("waiting for approval: `orch-tui approve {}`", t.id),
            };
            items.push(serde_json::json!({
                "task": t.id, "kind": "approval", "stage": t.stage, "text": text,
            }));
        }
    }
    for a in ledger.live_attempts()? {
        if let Some(q) = &a.question
            && a.substatus == Substatus::WaitingInput
        {
            items.push(serde_json::json!({
                "task": a.task, "attempt": a.n, "kind": "question", "text": q,
            }));
        }
    }
    // Budgets past 80%, permissions and first-run dialogs (issue #8).
    for al in ledger
        .alerts(now_ms())?
        .into_iter()
        .filter(|a| a.for_inbox())
    {
        items.push(serde_json::to_value(&al).unwrap_or_default());
    }
    Ok(items)
}

/// Whether a supervisor runs on this ledger (its lock is held), and what that means for the
/// attempts the ledger still calls live.
fn supervisor_json(pid: Option<u32>, live: usize) -> serde_json::Value {
    match pid {
        Some(pid) => serde_json::json!({ "running": true, "pid": pid }),
        None => serde_json::json!({
            "running": false,
            "pid": null,
            // Marked live in the ledger, but nothing supervises them: the next start ends their
            // processes and runs their tasks again.
            "attempts_to_recover": live,
        }),
    }
}

pub fn status(ctx: &Context, json: bool) -> CliResult {
    let ledger = ctx.open_ledger()?;
    let tasks = ledger.tasks()?;
    let (tokens, cost) = ledger.spend()?;
    let inbox = inbox(&ledger)?;
    let supervisor = crate::os::supervisor_running(&ctx.paths.orch);
    let live = ledger.live_attempts()?.len();
    // Limits, breakers and a spent run budget: why nothing (new) starts.
    let alerts: Vec<crate::ledger::Alert> = ledger
        .alerts(now_ms())?
        .into_iter()
        .filter(|a| !a.for_inbox())
        .collect();
    if json {
        let mut list = Vec::new();
        for t in &tasks {
            let attempts = ledger.attempts(&t.id)?;
            list.push(serde_json::json!({
                "id": t.id, "title": t.title, "state": t.state, "priority": t.priority,
                "depends_on": t.depends_on, "agent": t.agent, "failures": t.failures,
                "max_attempts": t.max_attempts, "reason": t.reason, "spec_version": t.spec_version,
                "stage": t.stage, "stage_until_ms": t.stage_until_ms, "risk_high": t.risk_high,
                "budget": { "time_ms": t.budget_time_ms, "tokens": t.budget_tokens, "cost_usd": t.budget_cost_usd },
                "attempts": attempts,
            }));
        }
        let doc = serde_json::json!({
            "plan": ledger.plan_name()?,
            "epoch": ledger.epoch()?,
            "supervisor": supervisor_json(supervisor, live),
            "counts": ledger.state_counts()?,
            "spend": { "tokens": tokens, "cost_usd": cost },
            "alerts": alerts,
            "tasks": list,
            "inbox": inbox,
        });
        out::say(&serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(EXIT_OK);
    }
    let mut lines = vec![format!(
        "plan {}  ·  {} tasks  ·  spend {} tokens, ${:.2}",
        ledger
            .plan_name()?
            .unwrap_or_else(|| "(none loaded)".into()),
        tasks.len(),
        tokens,
        cost
    )];
    lines.push(match supervisor {
        Some(0) => "supervisor: starting".to_string(),
        Some(pid) => format!("supervisor: running (pid {pid})"),
        None if live > 0 => format!(
            "supervisor: none running; {live} attempt{} marked live will be recovered at the \
             next `orch-tui run` (their agents are stopped and their tasks run again)",
            if live == 1 { "" } else { "s" }
        ),
        None => "supervisor: none running".to_string(),
    });
    for a in &alerts {
        lines.push(a.line(now_ms()));
    }
    let counts = ledger.state_counts()?;
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    lines.push(format!("{}\n", parts.join(", ")));
    let w = tasks.iter().map(|t| t.id.len()).max().unwrap_or(4).max(4);
    lines.push(format!(
        "{:<w$}  {:<9}  {:>8}  {:<10}  detail",
        "task", "state", "attempts", "agent"
    ));
    for t in &tasks {
        let attempts = ledger.attempts(&t.id)?;
        let last = attempts.last();
        let agent = last
            .map(|a| a.profile.clone())
            .unwrap_or_else(|| "-".into());
        let detail = match (t.state, last) {
            // Nobody supervises it: its clock is not running, whatever the ledger last said.
            (TaskState::Working | TaskState::Assigned, Some(a))
                if supervisor.is_none() && a.state.is_live() =>
            {
                format!(
                    "no supervisor: recovered at the next start, {} tokens",
                    a.tokens_in.saturating_add(a.tokens_out)
                )
            }
            (TaskState::Working, Some(a)) => format!(
                "{} for {}, {} tokens",
                a.substatus,
                format_ms(now_ms().saturating_sub(a.started_ms as u64)),
                a.tokens_in.saturating_add(a.tokens_out)
            ),
            (TaskState::Review, _) => {
                format!("stage: {}", t.stage.map_or("-", FunnelStage::as_str))
            }
            (_, _) => t.reason.clone().unwrap_or_default(),
        };
        lines.push(format!(
            "{:<w$}  {:<9}  {:>8}  {:<10}  {}",
            t.id,
            t.state,
            attempts.len(),
            agent,
            detail
        ));
    }
    if !inbox.is_empty() {
        lines.push(format!("\ninbox ({}):", inbox.len()));
        for i in &inbox {
            lines.push(format!(
                "  {} [{}] {}",
                i["task"].as_str().unwrap_or(""),
                i["kind"].as_str().unwrap_or(""),
                i["text"].as_str().unwrap_or("")
            ));
        }
    }
    // A reader that went away (`| head -1`) ends the listing; that is a normal end.
    for l in &lines {
        if !out::say(l) {
            break;
        }
    }
    Ok(EXIT_OK)
}

/// False once stdout is closed.
fn print_event(e: &EventRow, json: bool) -> bool {
    if json {
        return out::say(&serde_json::to_string(e).unwrap_or_default());
    }
    let secs = e.ts_ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let who = match (&e.task, e.attempt) {
        (Some(t), Some(a)) => format!("{t}#{a}"),
        (Some(t), None) => t.clone(),
        _ => "-".into(),
    };
    let detail = if e.kind == EventKind::State {
        format!(
            "{} -> {}",
            e.data["from"].as_str().unwrap_or("?"),
            e.data["to"].as_str().unwrap_or("?")
        )
    } else {
        e.data.to_string()
    };
    out::say(&format!(
        "{:>6} {h:02}:{m:02}:{s:02} {:<10} {:<22} {:<14} {detail}",
        e.seq, e.actor, who, e.kind
    ))
}

pub fn events(ctx: &Context, follow: bool, json: bool, task: Option<&str>) -> CliResult {
    let ledger = ctx.open_ledger()?;
    let mut after = 0;
    // Follow by watching .orch/ for writes to the ledger's WAL, not by polling on a timer.
    let (tx, rx) = channel();
    let _watcher = if follow {
        use notify::Watcher;
        let mut w = notify::recommended_watcher(move |_res| {
            let _ = tx.send(());
        })
        .map_err(|e| CliError::failed(format!("cannot watch the ledger: {e}")))?;
        w.watch(&ctx.paths.orch, notify::RecursiveMode::NonRecursive)
            .map_err(|e| {
                CliError::failed(format!("cannot watch {}: {e}", ctx.paths.orch.display()))
            })?;
        Some(w)
    } else {
        None
    };
    loop {
        loop {
            let batch = ledger.events(after, task, 1000)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for e in &batch {
                // The reader went away: a normal end, even while following.
                if !print_event(e, json) {
                    return Ok(EXIT_OK);
                }
            }
        }
        if !follow || out::stdout_closed_by_reader() {
            return Ok(EXIT_OK);
        }
        // A long timeout only guards against a missed notification (and notices a reader that
        // went away while nothing happened).
        let _ = rx.recv_timeout(Duration::from_secs(2));
        while rx.try_recv().is_ok() {}
    }
}
