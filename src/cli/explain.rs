//! `orch-tui explain TASK [--attempt N] [--json]`: why a task is where it is, from the ledger's
//! events (read only; no supervisor needed). The words come from `core::explain`.

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::core::domain::AttemptNo;
use crate::core::explain::{Fact, explain as build, render};
use crate::core::ops::EventData;

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    pub task: String,
    /// Only this attempt's story.
    #[arg(long)]
    pub attempt: Option<u32>,
    /// One JSON object instead of words.
    #[arg(long)]
    pub json: bool,
}

pub fn explain(ctx: &Context, a: ExplainArgs) -> CliResult {
    let ledger = ctx.open_ledger()?;
    let Some(task) = ledger.task(&a.task)? else {
        return Err(CliError::bad_input(format!(
            "no task `{}` in the ledger: `orch-tui status` lists the tasks",
            a.task
        )));
    };
    let attempts = ledger.attempts(&a.task)?;
    if let Some(n) = a.attempt
        && !attempts.iter().any(|x| x.n == AttemptNo(n))
    {
        let known: Vec<String> = attempts.iter().map(|x| x.n.to_string()).collect();
        return Err(CliError::bad_input(format!(
            "task `{}` has no attempt {n}{}",
            a.task,
            if known.is_empty() {
                ": it has not started yet".to_string()
            } else {
                format!(" (its attempts: {})", dedup(known).join(", "))
            }
        )));
    }
    let facts: Vec<Fact> = ledger
        .events(0, Some(&a.task), usize::MAX >> 1)?
        .into_iter()
        .map(|e| Fact {
            seq: e.seq,
            ts_ms: e.ts_ms,
            attempt: e.attempt,
            actor: e.actor,
            kind: e.kind,
            // An event whose data this version cannot read still says what kind it was.
            data: serde_json::from_value::<EventData>(e.data).unwrap_or_default(),
        })
        .collect();
    let e = build(
        &a.task,
        task.state,
        task.stage,
        task.reason.as_deref(),
        &facts,
        a.attempt.map(AttemptNo),
    );
    if a.json {
        out!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
    } else {
        for line in render(&e) {
            out!("{line}");
        }
    }
    Ok(EXIT_OK)
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.dedup();
    v
}
