//! `orch-tui integration restore|accept`: the two ways on when the integration branch moved under
//! the supervisor (it holds the run and says so in the inbox and `status`).
//!
//! - `restore` puts the branch back at the tip orch-tui last wrote; what someone put there is kept
//!   under `refs/orch/backup/integration/replaced-<ms>`.
//! - `accept` takes the branch as it is now, but only when it still holds that tip (commits were
//!   added on top): work already merged is never dropped this way.
//!
//! Both release the hold in the same transaction as its event; a running supervisor sees it and
//! goes on.

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::core::domain::{Actor, EventKind};
use crate::core::ops::{EventData, Op};
use crate::git::Repo;
use crate::ledger::apply_ops;

#[derive(clap::Subcommand, Debug)]
pub enum IntegrationCmd {
    /// Put the integration branch back where orch-tui left it (what is there now is kept under a
    /// backup ref) and go on.
    Restore,
    /// Take the integration branch as it is now (only if it still holds what orch-tui merged)
    /// and go on.
    Accept,
}

fn short(oid: &str) -> &str {
    oid.get(..8).unwrap_or(oid)
}

pub fn integration(ctx: &Context, cmd: IntegrationCmd) -> CliResult {
    let cfg = ctx.config()?;
    let mut ledger = ctx.open_ledger()?;
    let (recorded, hold): (Option<String>, Option<String>) = ledger
        .conn()
        .query_row(
            "SELECT integration_tip, hold FROM supervisor WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| CliError::failed(format!("cannot read the ledger: {e}")))?;
    let Some(recorded) = recorded else {
        return Err(CliError::bad_input(
            "no integration tip is recorded yet: orch-tui has not run on this ledger",
        ));
    };
    let repo = Repo::open(&ctx.paths.repo).map_err(|e| CliError::failed(e.to_string()))?;
    let branch = cfg.integration_branch.clone();
    let refname = format!("refs/heads/{branch}");
    let now = repo
        .rev_parse(&refname)
        .map_err(|e| CliError::failed(e.to_string()))?;
    let (mut ops, said) = match cmd {
        IntegrationCmd::Restore => {
            let current = now.clone().unwrap_or_default();
            if current != recorded {
                if !current.is_empty() {
                    let name = format!(
                        "refs/orch/backup/integration/replaced-{}",
                        crate::ledger::now_ms()
                    );
                    repo.backup_ref(&name, &current)
                        .map_err(|e| CliError::failed(e.to_string()))?;
                    out!("kept {branch} as it was ({}) under {name}", short(&current));
                }
                let moved = repo
                    .cas_update_ref(&refname, &recorded, &current)
                    .map_err(|e| CliError::failed(e.to_string()))?;
                if !moved {
                    return Err(CliError::failed(format!(
                        "{branch} moved again while it was being restored; run this again"
                    )));
                }
            }
            (
                Vec::new(),
                format!("{branch} is back at {}", short(&recorded)),
            )
        }
        IntegrationCmd::Accept => {
            let Some(current) = now else {
                return Err(CliError::bad_input(format!(
                    "{branch} does not exist: there is nothing to accept; \
                     `orch-tui integration restore` puts it back"
                )));
            };
            let holds = repo
                .is_ancestor(&recorded, &current)
                .map_err(|e| CliError::failed(e.to_string()))?;
            if !holds {
                return Err(CliError::refused(format!(
                    "{branch} ({}) no longer holds {} — work orch-tui merged is missing from it; \
                     accepting it would drop that work. `orch-tui integration restore` puts the \
                     branch back (what is there now is kept under a backup ref)",
                    short(&current),
                    short(&recorded)
                )));
            }
            (
                vec![Op::SetIntegrationTip {
                    expected: Some(recorded.clone()),
                    tip: current.clone(),
                }],
                format!("{branch} accepted at {}", short(&current)),
            )
        }
    };
    ops.push(Op::SetHold { hold: None });
    ops.push(Op::Event {
        task: None,
        attempt: None,
        actor: Actor::Human,
        kind: EventKind::Note,
        data: EventData {
            command: Some(
                match cmd {
                    IntegrationCmd::Restore => "integration restore",
                    IntegrationCmd::Accept => "integration accept",
                }
                .into(),
            ),
            why: Some(said.clone()),
            note: hold,
            ..EventData::default()
        },
    });
    ledger.write(|tx| apply_ops(tx, &ops, &mut String::new))?;
    out!("{said}; the run goes on");
    crate::engine::poke(&ctx.paths.orch);
    Ok(EXIT_OK)
}
