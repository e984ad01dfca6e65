//! `orch-tui extend TASK [--time D] [--tokens N] [--cost USD] [--retry] [--note TEXT]`: raise a
//! task's budget. A task stopped by its budget goes on where it stopped (or starts over with
//! `--retry`); a running one just may spend more.

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::engine::{Extension, apply_extend};
use crate::os::out;

#[derive(clap::Args, Debug)]
pub struct ExtendArgs {
    pub task: String,
    /// More time per attempt (e.g. 10m, 1h30m).
    #[arg(long, value_name = "DURATION")]
    pub time: Option<String>,
    /// More tokens.
    #[arg(long)]
    pub tokens: Option<u64>,
    /// More dollars.
    #[arg(long, value_name = "USD", allow_negative_numbers = true)]
    pub cost: Option<f64>,
    /// Start over in a fresh worktree (the agent's conversation is resumed) instead of
    /// continuing where it was stopped.
    #[arg(long)]
    pub retry: bool,
    #[arg(long)]
    pub note: Option<String>,
}

pub fn extend(ctx: &Context, a: ExtendArgs) -> CliResult {
    let time_ms = match &a.time {
        Some(t) => Some(
            crate::core::duration::parse_duration(t)
                .map_err(|e| CliError::bad_input(format!("--time {t}: {e}")))?,
        ),
        None => None,
    };
    let ext = Extension {
        time_ms,
        tokens: a.tokens,
        cost_usd: a.cost,
        retry: a.retry,
    };
    let mut ledger = ctx.open_ledger()?;
    let said = apply_extend(&mut ledger, &a.task, &ext, a.note.as_deref())?;
    out::say(&said);
    crate::engine::poke(&ctx.paths.orch);
    Ok(EXIT_OK)
}
