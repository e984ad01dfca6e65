//! approve | reject | retry | cancel | pause | resume TASK [--note TEXT];
//! pause | resume --all (the whole fleet).

use super::{CliResult, Context, EXIT_OK, HumanArgs};
use crate::engine::{HumanCommand, apply_human, apply_human_all};
use crate::os::out;

pub fn human(ctx: &Context, cmd: HumanCommand, args: HumanArgs) -> CliResult {
    let mut ledger = ctx.open_ledger()?;
    let said = apply_human(&mut ledger, cmd, &args.task, args.note.as_deref())?;
    out::say(&said);
    // Wake a running supervisor so it acts now (stops an agent, dispatches).
    crate::engine::poke(&ctx.paths.orch);
    Ok(EXIT_OK)
}

/// `pause` and `resume`: one task, or `--all`.
#[derive(clap::Args, Debug)]
pub struct FleetArgs {
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub task: Option<String>,
    /// Pause: every ready, assigned and working task. Resume: every paused task.
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub note: Option<String>,
}

pub fn fleet(ctx: &Context, cmd: HumanCommand, args: FleetArgs) -> CliResult {
    let Some(task) = args.task else {
        let mut ledger = ctx.open_ledger()?;
        let said = apply_human_all(&mut ledger, cmd, args.note.as_deref())?;
        if said.is_empty() {
            let none = match cmd {
                HumanCommand::Pause => "nothing to pause: no task is ready, assigned or working",
                _ => "nothing to resume: no task is paused",
            };
            out::say(none);
        }
        for line in &said {
            out::say(line);
        }
        crate::engine::poke(&ctx.paths.orch);
        return Ok(EXIT_OK);
    };
    human(
        ctx,
        cmd,
        HumanArgs {
            task,
            note: args.note,
        },
    )
}
