//! approve | reject | retry | cancel | pause | resume TASK [--note TEXT]

use super::{CliResult, Context, EXIT_OK, HumanArgs};
use crate::engine::{HumanCommand, apply_human};
use crate::os::out;

pub fn human(ctx: &Context, cmd: HumanCommand, args: HumanArgs) -> CliResult {
    let mut ledger = ctx.open_ledger()?;
    let said = apply_human(&mut ledger, cmd, &args.task, args.note.as_deref())?;
    out::say(&said);
    // Wake a running supervisor so it acts now (stops an agent, dispatches).
    crate::engine::poke(&ctx.paths.orch);
    Ok(EXIT_OK)
}
