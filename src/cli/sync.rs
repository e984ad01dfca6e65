//! `orch-tui sync [--base REF] [--no-wait]`: bring the integration branch onto its base when the
//! base moved. The base is fetched (when it is, or tracks, a remote branch), the sync is asked
//! for in the ledger, and the supervisor's merge queue does it — the running supervisor's, or,
//! when none runs, one started for this alone: it recovers, syncs and stops, starting no agent.
//!
//! Exit 0: synced, or nothing to do; 1: the sync stopped (a conflict, a failing check, a held
//! run) with what to do; 2: bad input; 3: refused (the base and its upstream diverged).

use std::time::Duration;

use super::{CliError, CliResult, Context, EXIT_OK, EXIT_UNFINISHED};
use crate::core::base::label;
use crate::core::domain::{Actor, EventKind};
use crate::core::ops::{EventData, Op};
use crate::engine::base::{BaseError, for_run, resolve_name, sync_target};
use crate::engine::{Engine, EngineOptions};
use crate::git::Repo;
use crate::ledger::{IntegrationRow, Ledger, LedgerError, apply_ops};
use crate::os::out;

fn short(oid: &str) -> &str {
    oid.get(..8).unwrap_or(oid)
}

impl From<BaseError> for CliError {
    fn from(e: BaseError) -> Self {
        match e {
            BaseError::BadInput(m) => CliError::bad_input(m),
            BaseError::Refused(m) => CliError::refused(m),
            BaseError::Failed(m) => CliError::failed(m),
        }
    }
}

pub fn sync(ctx: &Context, base: Option<&str>, wait: bool) -> CliResult {
    let mut cfg = ctx.config()?;
    let mut ledger = ctx.open_ledger()?;
    let row = ledger.integration()?;
    let repo = Repo::open(&ctx.paths.repo)
        .map_err(|e| CliError::bad_input(e.to_string()))?
        .with_timeout(Duration::from_millis(cfg.git.timeout_ms));
    let branch = cfg.integration_branch.clone();
    // --base, else the recorded base, else the config's or the default (a ledger of an older
    // orch-tui, which recorded none).
    let refname = match (base, &row.sync.base_ref, &cfg.base) {
        (Some(name), _, _) => resolve_name(&repo, name, &branch)?,
        (None, Some(recorded), _) => recorded.clone(),
        (None, None, asked) => {
            for_run(&repo, None, asked.as_deref(), &branch)?.ok_or_else(|| {
                CliError::bad_input(
                    "no base is recorded and none can be chosen (HEAD is detached and there is no \
                 `main`): name it, e.g. `orch-tui sync --base origin/main`",
                )
            })?
        }
    };
    let Some(tip) = row.tip.clone() else {
        out::say(&format!(
            "nothing to sync: orch-tui has not run here yet; the first `orch-tui run` cuts \
             {branch} from {}",
            label(&refname)
        ));
        return Ok(EXIT_OK);
    };
    let target = sync_target(&repo, &refname)?;
    for line in &target.said {
        out::say(line);
    }
    let onto = target.oid;
    let switching = row.sync.base_ref.as_deref().is_some_and(|r| r != refname);
    let holds = repo
        .is_ancestor(&onto, &tip)
        .map_err(|e| CliError::failed(e.to_string()))?;
    if holds && !switching && row.sync.request.is_none() {
        if row.sync.problem.is_some() {
            // The last sync's problem is settled: the branch holds the base now.
            let ops = [
                Op::RequestSync {
                    refname: refname.clone(),
                    onto: onto.clone(),
                },
                Op::EndSync {
                    onto: onto.clone(),
                    moved: false,
                    problem: None,
                },
            ];
            write(&mut ledger, &ops)?;
        }
        out::say(&format!(
            "{branch} is up to date with {} ({}): nothing to sync",
            label(&refname),
            short(&onto)
        ));
        return Ok(EXIT_OK);
    }
    let asked_already = row
        .sync
        .request
        .as_ref()
        .is_some_and(|r| r.refname == refname && r.onto == onto);
    if !asked_already {
        let ops = [
            Op::RequestSync {
                refname: refname.clone(),
                onto: onto.clone(),
            },
            Op::Event {
                task: None,
                attempt: None,
                actor: Actor::Human,
                kind: EventKind::SyncRequested,
                data: EventData {
                    command: Some("sync".into()),
                    branch: Some(refname.clone()),
                    commit: Some(onto.clone()),
                    ..EventData::default()
                },
            },
        ];
        write(&mut ledger, &ops)?;
    }
    crate::engine::poke(&ctx.paths.orch);
    let what = format!(
        "the sync of {branch} onto {} ({})",
        label(&refname),
        short(&onto)
    );
    if !wait {
        out::say(&format!(
            "asked for {what}; the supervisor does it when no merge is in flight (`orch-tui \
             status` shows how it went)"
        ));
        return Ok(EXIT_OK);
    }
    // The engine started here must use the recorded base, or record this one (an older ledger).
    cfg.base = row.sync.base_ref.is_none().then(|| refname.clone());
    wait_for(ctx, &mut ledger, cfg, &refname, &onto, &what)
}

fn write(ledger: &mut Ledger, ops: &[Op]) -> Result<(), CliError> {
    match ledger.write(|tx| apply_ops(tx, ops, &mut String::new)) {
        Ok(()) => Ok(()),
        Err(LedgerError::Conflict(m)) => Err(CliError::try_again(format!("{m}; nothing changed"))),
        Err(e) => Err(e.into()),
    }
}

/// Wait for the sync asked for to be over — done by the running supervisor, or by one started
/// here when none runs — and say how it went.
fn wait_for(
    ctx: &Context,
    ledger: &mut Ledger,
    cfg: crate::core::config::Config,
    refname: &str,
    onto: &str,
    what: &str,
) -> CliResult {
    let mut ran_here = false;
    let mut said_waiting = false;
    loop {
        let row = ledger.integration()?;
        match &row.sync.request {
            Some(r) if r.refname == refname && r.onto == onto => {}
            Some(_) => {
                return Err(CliError::failed(format!(
                    "another sync was asked for meanwhile; `orch-tui status` follows it ({what} \
                     is not done)"
                )));
            }
            None => return outcome(&row, refname, onto, what, &cfg.integration_branch),
        }
        if let Some(hold) = &row.hold {
            return Err(CliError::failed(format!(
                "the run is held: {hold}. {what} waits until the hold is released"
            )));
        }
        match crate::os::supervisor_running(&ctx.paths.orch) {
            None if ran_here => {
                return Err(CliError::failed(format!(
                    "{what} did not finish; see .orch/logs/orch-tui.log, then `orch-tui sync` \
                     again"
                )));
            }
            None => {
                ran_here = sync_here(ctx, cfg.clone())?;
            }
            Some(pid) => {
                if !said_waiting {
                    out::say(&format!(
                        "the supervisor (pid {pid}) does {what} when no merge is in flight; \
                         waiting for it (Ctrl-C stops the waiting, not the sync)"
                    ));
                    said_waiting = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// No supervisor runs: start one that only recovers and syncs. `false` when another supervisor
/// took the lock first (it does the sync).
fn sync_here(ctx: &Context, cfg: crate::core::config::Config) -> Result<bool, CliError> {
    let orch_bin = std::env::current_exe()
        .map_err(|e| CliError::failed(format!("cannot find the orch-tui binary: {e}")))?;
    super::init::secure_orch(&ctx.paths)?;
    let _log = super::run::init_tracing(&ctx.paths.logs);
    let mut engine = match Engine::start_sync(EngineOptions {
        paths: ctx.paths.clone(),
        config: cfg,
        orch_bin,
        print_progress: true,
        on_output: None,
        stay_open: false,
    }) {
        Ok(e) => e,
        // Another supervisor (or `gc`) took the lock first: it is waited for.
        Err(crate::engine::EngineError::Refused(_))
            if crate::os::supervisor_running(&ctx.paths.orch).is_some() =>
        {
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    engine.run_guarded()?;
    Ok(true)
}

fn outcome(row: &IntegrationRow, refname: &str, onto: &str, what: &str, branch: &str) -> CliResult {
    if let Some(problem) = &row.sync.problem {
        out::say(problem);
        return Ok(EXIT_UNFINISHED);
    }
    let synced =
        row.sync.base_ref.as_deref() == Some(refname) && row.sync.base_oid.as_deref() == Some(onto);
    if !synced {
        return Err(CliError::failed(format!(
            "{what} was replaced by another before it ran; `orch-tui status` shows the base"
        )));
    }
    out::say(&format!(
        "synced: {branch} stands on {} ({}), tip {}",
        label(refname),
        short(onto),
        row.tip.as_deref().map_or("?", short)
    ));
    Ok(EXIT_OK)
}
