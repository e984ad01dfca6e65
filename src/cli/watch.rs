//! The TUI when another process supervises (`orch-tui run --detach`, a TUI in another terminal):
//! it watches instead of refusing — the same views from the ledger, the agents' screens from
//! their logs (`tui::client`), human decisions written to the ledger as the CLI writes them —
//! and supervises itself once that process is gone (its lock released), as a fresh `run` would.

use super::{CliError, CliResult, Context, EXIT_OK, EXIT_REFUSED};
use crate::core::config::Config;

enum Watched {
    /// The user quit, or the terminal went away: the run is the other process's.
    Quit,
    /// The supervisor went away: supervise here (`quit_asked`: with the quit question open).
    TakeOver { quit_asked: bool },
}

/// The TUI: watch while another process supervises, supervise otherwise.
pub fn tui(ctx: &Context, config: Config) -> CliResult {
    let mut ask_quit = false;
    loop {
        if let Some(pid) = crate::os::supervisor_running(&ctx.paths.orch)
            && super::run::has_terminal()
        {
            match watch(ctx, &config, pid)? {
                Watched::Quit => return Ok(EXIT_OK),
                Watched::TakeOver { quit_asked } => {
                    tracing::info!(pid, "the supervisor went away; taking over supervision");
                    ask_quit = quit_asked;
                }
            }
        }
        match super::run::supervise_tui(ctx, config.clone(), ask_quit) {
            // Another process took the lock first: watch that one.
            Err(e)
                if e.code == EXIT_REFUSED
                    && crate::os::supervisor_running(&ctx.paths.orch).is_some() => {}
            r => return r,
        }
    }
}

fn watch(ctx: &Context, config: &Config, pid: u32) -> Result<Watched, CliError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (_hook, output_flag) = crate::tui::output_hook(tx.clone());
    // The stop signals are blocked (`run::block_stop_signals`): they quit this view, which
    // leaves the run to the process that supervises it.
    let quit = std::sync::Mutex::new(tx.clone());
    super::signals::on_stop(move |_| {
        if let Ok(tx) = quit.lock() {
            let _ = tx.send(crate::tui::UiEvent::Quit);
        }
    });
    let lost = tx.clone();
    super::signals::on_hangup(move || {
        let _ = lost.send(crate::tui::UiEvent::TerminalLost);
    });
    let end = crate::tui::run(crate::tui::TuiContext {
        ledger_path: ctx.paths.ledger.clone(),
        handle: None,
        watching: Some(pid),
        ask_quit: false,
        rx,
        tx,
        output_flag,
        keymap: config.ui.keymap.clone(),
        run_started: std::time::Instant::now(),
        config: std::sync::Arc::new(config.clone()),
    })
    .map_err(CliError::failed)?;
    Ok(if end.take_over && !super::signals::terminal_lost() {
        Watched::TakeOver {
            quit_asked: end.quit_asked,
        }
    } else {
        Watched::Quit
    })
}
