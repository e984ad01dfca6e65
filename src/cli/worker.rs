//! `orch-tui worker ...`: reports from inside an agent, fenced by ORCH_TOKEN.

use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, CliResult, EXIT_OK};
use crate::ledger::{Ledger, WorkerCall};

#[derive(Subcommand, Debug)]
pub enum WorkerCmd {
    /// I am alive and making progress.
    Heartbeat {
        #[arg(long)]
        note: Option<String>,
    },
    /// The task is done (the supervisor then ends the agent and commits its work).
    Done {
        #[arg(long)]
        summary: Option<String>,
    },
    /// The task failed (the supervisor retries per policy).
    Fail {
        #[arg(long)]
        reason: Option<String>,
    },
    /// Ask the human (a question, a blocker); the agent keeps waiting for input.
    Escalate {
        #[arg(long)]
        reason: String,
    },
    /// A reviewer's answer: `approve`, or `changes` with notes for the next attempt.
    Verdict {
        #[arg(value_parser = ["approve", "changes"])]
        verdict: String,
        #[arg(long)]
        notes: Option<String>,
    },
    /// Token and cost figures (added to the attempt's totals).
    Usage {
        #[arg(long, default_value_t = 0)]
        tokens_in: u64,
        #[arg(long, default_value_t = 0)]
        tokens_out: u64,
        #[arg(long, default_value_t = 0.0)]
        cost_usd: f64,
    },
}

fn env(name: &str) -> Result<String, CliError> {
    std::env::var(name).map_err(|_| {
        CliError::bad_input(format!(
            "{name} is not set: `orch-tui worker` runs inside an agent started by orch-tui"
        ))
    })
}

pub fn worker(cmd: WorkerCmd, key: Option<&str>) -> CliResult {
    let ledger_path = PathBuf::from(env("ORCH_LEDGER")?);
    let task = env("ORCH_TASK")?;
    let attempt: u32 = env("ORCH_ATTEMPT")?
        .parse()
        .map_err(|_| CliError::bad_input("ORCH_ATTEMPT must be a whole number"))?;
    let token = env("ORCH_TOKEN")?;
    if !ledger_path.exists() {
        return Err(CliError::bad_input(format!(
            "ORCH_LEDGER names {}, which does not exist",
            ledger_path.display()
        )));
    }
    let call = match cmd {
        WorkerCmd::Heartbeat { note } => WorkerCall::Heartbeat { note },
        WorkerCmd::Done { summary } => WorkerCall::Done { summary },
        WorkerCmd::Fail { reason } => WorkerCall::Fail { reason },
        WorkerCmd::Escalate { reason } => WorkerCall::Escalate { reason },
        WorkerCmd::Verdict { verdict, notes } => {
            if verdict == "changes" && notes.as_deref().is_none_or(|n| n.trim().is_empty()) {
                return Err(CliError::bad_input(
                    "`worker verdict changes` needs --notes saying what to change",
                ));
            }
            WorkerCall::Verdict {
                approve: verdict == "approve",
                notes,
            }
        }
        WorkerCmd::Usage {
            tokens_in,
            tokens_out,
            cost_usd,
        } => WorkerCall::Usage {
            tokens_in,
            tokens_out,
            cost_usd,
        },
    };
    let mut ledger = Ledger::open(&ledger_path)?;
    let reply = ledger.worker_report(
        &task,
        crate::core::domain::AttemptNo(attempt),
        &token,
        &call,
        key,
    )?;
    println!("{}", reply.message);
    if let Some(orch) = ledger_path.parent() {
        crate::engine::poke(orch);
    }
    Ok(EXIT_OK)
}
