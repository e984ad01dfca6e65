//! `status`, `events`: read-only views of the ledger (`logs` is in `logs.rs`).

use std::sync::mpsc::channel;
use std::time::Duration;

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::core::domain::{EventKind, FunnelStage, Substatus};
use crate::core::state::TaskState;
use crate::engine::summary::format_ms;
use crate::ledger::{EventRow, Ledger, now_ms};

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
    Ok(items)
}

pub fn status(ctx: &Context, json: bool) -> CliResult {
    let ledger = ctx.open_ledger()?;
    let tasks = ledger.tasks()?;
    let (tokens, cost) = ledger.spend()?;
    let inbox = inbox(&ledger)?;
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
        let out = serde_json::json!({
            "plan": ledger.plan_name()?,
            "epoch": ledger.epoch()?,
            "counts": ledger.state_counts()?,
            "spend": { "tokens": tokens, "cost_usd": cost },
            "tasks": list,
            "inbox": inbox,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(EXIT_OK);
    }
    println!(
        "plan {}  ·  {} tasks  ·  spend {} tokens, ${:.2}",
        ledger
            .plan_name()?
            .unwrap_or_else(|| "(none loaded)".into()),
        tasks.len(),
        tokens,
        cost
    );
    let counts = ledger.state_counts()?;
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("{}\n", parts.join(", "));
    let w = tasks.iter().map(|t| t.id.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<w$}  {:<9}  {:>8}  {:<10}  detail",
        "task", "state", "attempts", "agent"
    );
    for t in &tasks {
        let attempts = ledger.attempts(&t.id)?;
        let last = attempts.last();
        let agent = last
            .map(|a| a.profile.clone())
            .unwrap_or_else(|| "-".into());
        let detail = match (t.state, last) {
            (TaskState::Working, Some(a)) => format!(
                "{} for {}, {} tokens",
                a.substatus,
                format_ms(now_ms().saturating_sub(a.started_ms as u64)),
                a.tokens_in + a.tokens_out
            ),
            (TaskState::Review, _) => {
                format!("stage: {}", t.stage.map_or("-", FunnelStage::as_str))
            }
            (_, _) => t.reason.clone().unwrap_or_default(),
        };
        println!(
            "{:<w$}  {:<9}  {:>8}  {:<10}  {}",
            t.id,
            t.state,
            attempts.len(),
            agent,
            detail
        );
    }
    if !inbox.is_empty() {
        println!("\ninbox ({}):", inbox.len());
        for i in &inbox {
            println!(
                "  {} [{}] {}",
                i["task"].as_str().unwrap_or(""),
                i["kind"].as_str().unwrap_or(""),
                i["text"].as_str().unwrap_or("")
            );
        }
    }
    Ok(EXIT_OK)
}

fn print_event(e: &EventRow, json: bool) {
    if json {
        println!("{}", serde_json::to_string(e).unwrap_or_default());
        return;
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
    println!(
        "{:>6} {h:02}:{m:02}:{s:02} {:<10} {:<22} {:<14} {detail}",
        e.seq, e.actor, who, e.kind
    );
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
                print_event(e, json);
            }
        }
        if !follow {
            return Ok(EXIT_OK);
        }
        // A long timeout only guards against a missed notification.
        let _ = rx.recv_timeout(Duration::from_secs(2));
        while rx.try_recv().is_ok() {}
    }
}
