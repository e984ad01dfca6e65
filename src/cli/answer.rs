//! `orch-tui answer TASK allow|always|deny [--note TEXT]`: answer the permission request a
//! task's agent waits on (the inbox's one key does the same). `always` allows every call the
//! same rule covers for the rest of this run; a deny's note is what the agent is told.

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::core::domain::Actor;
use crate::core::permissions::Decision;
use crate::os::out;

#[derive(clap::Args, Debug)]
pub struct AnswerArgs {
    pub task: String,
    /// allow (this call), always (this kind of call, for the rest of the run), deny; or trust
    /// (a first-run trust dialog: the run's worktrees, for this run).
    pub decision: String,
    /// Why (a deny's note is passed to the agent).
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct DoneArgs {
    pub task: String,
    #[arg(long)]
    pub note: Option<String>,
}

/// `orch-tui done TASK`: the agent's turn finished the task (what `worker done` says from
/// inside): its work is committed and goes to review.
pub fn done(ctx: &Context, a: DoneArgs) -> CliResult {
    let mut ledger = ctx.open_ledger()?;
    let n = ledger.turn_done_by_human(&a.task, a.note.as_deref())?;
    out::say(&format!(
        "{}: attempt {n} is done; its work goes to review",
        a.task
    ));
    crate::engine::poke(&ctx.paths.orch);
    Ok(EXIT_OK)
}

pub fn answer(ctx: &Context, a: AnswerArgs) -> CliResult {
    if a.decision == "trust" {
        let mut ledger = ctx.open_ledger()?;
        let n = ledger.trust_worktrees(&a.task)?;
        out::say(&format!(
            "{}: attempt {n}'s folder trusted; orch-tui answers the trust dialogs of this run's \
             worktrees",
            a.task
        ));
        crate::engine::poke(&ctx.paths.orch);
        return Ok(EXIT_OK);
    }
    let Some(decision) = Decision::parse(&a.decision) else {
        return Err(CliError::bad_input(format!(
            "`{}` is not an answer: use allow, always, deny, or trust (a first-run dialog)",
            a.decision
        )));
    };
    let mut ledger = ctx.open_ledger()?;
    let Some(pending) = ledger.pending_permission(&a.task)? else {
        return Err(CliError::refused(format!(
            "no permission request of task `{}` waits for an answer (`orch-tui status` lists \
             what waits); nothing changed",
            a.task
        )));
    };
    ledger.answer_permission(&pending, decision, a.note.as_deref(), Actor::Human, None)?;
    let what = format!("{} {}", pending.tool, pending.subject);
    out::say(&match decision {
        Decision::Allow => format!("{}: allowed {what} (this call)", a.task),
        Decision::Always => format!(
            "{}: allowed {what}, and every call like it for the rest of this run",
            a.task
        ),
        Decision::Deny => format!("{}: denied {what}", a.task),
    });
    crate::engine::poke(&ctx.paths.orch);
    Ok(EXIT_OK)
}
