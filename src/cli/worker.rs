//! `orch-tui worker ...`: reports from inside an agent, fenced by ORCH_TOKEN and by the caller's
//! ancestry (it must descend from the attempt's agent).
//!
//! A report that cannot be written because the ledger is busy or the disk is full is retried
//! (full-jitter backoff) for `--retry-for` (default 30 s); then it exits 75, "try again later",
//! so an agent can tell that from "refused" (3) and "bad input" (2). Nothing is written by a
//! call that does not exit 0.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;

use super::{CliError, CliResult, EXIT_OK};
use crate::core::usage::Usage;
use crate::ledger::{Ledger, LedgerError, WorkerCall};
use crate::os::out;

/// How long a worker call waits out a busy ledger or a full disk by default.
pub const DEFAULT_RETRY_FOR: &str = "30s";
/// How long one try may wait for the ledger's write lock.
const TRY_WAIT: Duration = Duration::from_secs(2);

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
    /// Token and cost figures (added to the attempt's totals; see docs/cli.md for the ranges).
    Usage {
        #[arg(long, default_value_t = 0)]
        tokens_in: u64,
        #[arg(long, default_value_t = 0)]
        tokens_out: u64,
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
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

/// The report, checked before the ledger is opened: bad input changes nothing.
fn call_of(cmd: WorkerCmd) -> Result<WorkerCall, CliError> {
    Ok(match cmd {
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
        } => {
            let usage = Usage {
                tokens_in,
                tokens_out,
                cost_usd,
            };
            usage
                .validate()
                .map_err(|e| CliError::bad_input(format!("worker usage: {e}")))?;
            WorkerCall::Usage {
                tokens_in,
                tokens_out,
                cost_usd,
            }
        }
    })
}

pub fn worker(cmd: WorkerCmd, key: Option<&str>, retry_for: &str) -> CliResult {
    let ledger_path = PathBuf::from(env("ORCH_LEDGER")?);
    let task = env("ORCH_TASK")?;
    let attempt: u32 = env("ORCH_ATTEMPT")?
        .parse()
        .map_err(|_| CliError::bad_input("ORCH_ATTEMPT must be a whole number"))?;
    let token = env("ORCH_TOKEN")?;
    let budget = crate::core::duration::parse_duration(retry_for)
        .map(Duration::from_millis)
        .map_err(|e| CliError::bad_input(format!("--retry-for: {e}")))?;
    if !ledger_path.exists() {
        return Err(CliError::bad_input(format!(
            "ORCH_LEDGER names {}, which does not exist",
            ledger_path.display()
        )));
    }
    let call = call_of(cmd)?;
    let n = crate::core::domain::AttemptNo(attempt);
    let reply = retry_transient(budget, |wait| {
        Ledger::open_waiting(&ledger_path, wait)?.worker_report(
            &task,
            n,
            &token,
            &call,
            key,
            &crate::ledger::Caller::this_process(),
        )
    })?;
    out::say(&reply.message);
    if let Some(orch) = ledger_path.parent() {
        crate::engine::poke(orch);
    }
    Ok(EXIT_OK)
}

/// Run `attempt` until it succeeds, fails for good, or `budget` is spent on transient errors
/// (busy, locked, disk full). `attempt` gets how long it may wait on its own. Says once on
/// stderr that it is waiting, and why.
pub(super) fn retry_transient<R>(
    budget: Duration,
    mut attempt: impl FnMut(Duration) -> Result<R, LedgerError>,
) -> Result<R, CliError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    let mut announced = false;
    loop {
        let left = budget.saturating_sub(start.elapsed());
        // Each try waits briefly on its own (SQLite's busy handler), so the wait is announced
        // early and a full disk is tried again soon.
        match attempt(left.clamp(Duration::from_millis(1), TRY_WAIT)) {
            Ok(r) => return Ok(r),
            Err(e) if e.is_transient() => {
                let left = budget.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(CliError::try_again(format!(
                        "{} for {}: nothing was recorded; try again later ({e})",
                        e.transient_reason(),
                        crate::core::duration::format_duration(budget.as_millis() as u64),
                    )));
                }
                if !announced {
                    out::warn(&format!(
                        "orch-tui: {}; retrying for up to {}",
                        e.transient_reason(),
                        crate::core::duration::format_duration(left.as_millis() as u64)
                    ));
                    announced = true;
                }
                // Full jitter, so several agents waiting on the same ledger do not retry together.
                let jitter =
                    crate::ledger::now_ms() ^ u64::from(std::process::id()).rotate_left(17);
                let sleep = Duration::from_millis(jitter % (pause.as_millis() as u64).max(1) + 1);
                std::thread::sleep(sleep.min(left));
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
