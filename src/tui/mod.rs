//! The interactive TUI: a client of the engine (DESIGN.md §9). The engine runs on its own thread;
//! this thread owns the terminal and the view state, and redraws only when something changed.
//! Nothing that can block runs here: ledger reads (the read model, `crate::read`) and writes
//! (human commands), git and log files go to background lanes (`lanes.rs`, `jobs.rs`) that
//! answer on the same channel.
//!
//! Every input arrives as one `UiEvent` on one channel (codex's app-event pattern); a frame is
//! drawn when the state is dirty, at most 60 per second (`runloop.rs`).

mod actions;
pub mod app;
pub mod client;
pub mod confirm;
pub mod data;
pub mod effect;
pub mod form;
pub mod funnel;
pub mod history;
pub mod input;
pub mod jobs;
pub mod keymap;
pub mod lanes;
pub mod logfeed;
pub mod notify;
mod outside;
mod pointer;
mod prompt;
pub mod render;
mod runloop;
pub mod state;
mod task_jobs;
mod terminal;
mod typist;
mod update;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use crossterm::event::Event;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::engine::{EngineEvent, EngineHandle, RunEnd};
use app::App;
use keymap::Keymap;
use state::ViewState;

/// Everything that wakes the UI loop.
pub enum UiEvent {
    /// A key, paste, mouse event or resize from the terminal (input thread).
    Term(Event),
    /// The engine's observer channel (forwarding thread).
    Engine(EngineEvent),
    /// Some agent printed (the output hook; coalesced by a flag).
    Output,
    /// `Engine::run` returned (engine thread).
    EngineEnded(Result<RunEnd, String>),
    /// A background job answered (a lane's thread).
    Job(jobs::JobDone),
    /// SIGHUP: the terminal is gone (the signal thread). Nothing more is drawn.
    TerminalLost,
    /// SIGINT/SIGTERM to a watching TUI: quit (the run is another process's).
    Quit,
    /// Watching another supervisor: who holds the supervisor lock now (`None`: nobody; this
    /// TUI takes supervision over). From the client's watcher thread (`client.rs`).
    Supervisor(Option<u32>),
}

/// The output hook and the flag it shares with the loop: one wake per burst of output.
pub fn output_hook(tx: Sender<UiEvent>) -> (crate::engine::OutputHook, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let tx = std::sync::Mutex::new(tx);
    let hook: crate::engine::OutputHook = Arc::new(move |_task: &str| {
        if !f.swap(true, Ordering::AcqRel)
            && let Ok(tx) = tx.lock()
        {
            let _ = tx.send(UiEvent::Output);
        }
    });
    (hook, flag)
}

pub struct TuiContext {
    /// The ledger the background lanes open their own connections to.
    pub ledger_path: PathBuf,
    /// The engine in this process; `None` while another process supervises and this TUI
    /// watches it (its agents' screens come from their logs: `client.rs`).
    pub handle: Option<EngineHandle>,
    /// The pid of the supervisor this TUI watches (with `handle: None`).
    pub watching: Option<u32>,
    /// A watching TUI whose supervisor went away while its quit question was open: this TUI
    /// took over and asks again (its answers are a supervisor's now), instead of dropping the
    /// question and letting its answer key land on whatever view shows.
    pub ask_quit: bool,
    pub rx: Receiver<UiEvent>,
    pub tx: Sender<UiEvent>,
    pub output_flag: Arc<AtomicBool>,
    pub keymap: std::collections::BTreeMap<String, String>,
    pub run_started: Instant,
    /// The run's config: tasks added from the TUI are checked against it (as `orch-tui add`
    /// checks them).
    pub config: Arc<crate::core::config::Config>,
}

/// How the TUI ended.
pub struct TuiEnd {
    /// The engine's result, when it ended (None: the TUI quit first, e.g. terminal lost).
    pub engine: Option<Result<RunEnd, String>>,
    /// The terminal hung up under the TUI (nothing was restored on it).
    pub lost_terminal: bool,
    /// Watching, the supervisor went away: this process should supervise now.
    pub take_over: bool,
    /// The quit question was open when the TUI ended (carried into the TUI that takes over).
    pub quit_asked: bool,
    /// The user chose "leave it running": the engine ended with its agents left running, and a
    /// background supervisor is to take them over now.
    pub detach: bool,
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Run the TUI until the user quits (after the engine ended or was stopped).
pub fn run(mut ctx: TuiContext) -> Result<TuiEnd, String> {
    let (km, problems) = Keymap::new(&ctx.keymap);
    let mut app = App::new(ViewState::new(!no_color()), km);
    if !problems.is_empty() {
        app.state.message = Some(problems.join("; "));
    }
    app.state.integration_branch = ctx.config.integration_branch.clone();
    app.state.profiles = ctx.config.agents.keys().cloned().collect();
    app.state.default_agent = ctx.config.default_agent.clone();
    app.state.watching = ctx.watching;
    if ctx.ask_quit {
        app.state.quit_prompt = true;
        app.state.message =
            Some("the supervisor you watched ended; this window supervises the run now".into());
    }
    let guard = terminal::enter().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))
        .map_err(|e| format!("cannot set up the terminal: {e}"))?;
    if let Ok(size) = term.size() {
        app.size = (size.width, size.height);
    }
    let gate = Arc::new(outside::InputGate::default());
    outside::spawn_input_thread(ctx.tx.clone(), gate.clone());
    let lanes = lanes::Lanes::start(ctx.ledger_path.clone(), ctx.tx.clone());
    let link: Arc<dyn jobs::EngineLink> = match &ctx.handle {
        Some(h) => Arc::new(h.clone()),
        None => Arc::new(client::ClientLink::start(
            ctx.ledger_path.clone(),
            ctx.tx.clone(),
            ctx.output_flag.clone(),
        )),
    };
    let jobs = jobs::Jobs::new(lanes, link);
    let result = runloop::event_loop(&mut ctx, &jobs, &gate, &mut app, &mut term);
    if result.as_ref().is_ok_and(|e| e.take_over) {
        // The TUI that supervises next reads the terminal with its own thread: this one must
        // not take its keys.
        gate.pause();
    }
    if result.as_ref().is_ok_and(|e| e.lost_terminal) {
        // A hung-up tty takes no writes: restoring it would only fail, and ratatui's drop
        // reports that failure with `eprintln!`, which panics on a dead stderr.
        terminal::forget();
        std::mem::forget(term);
    } else {
        drop(term);
    }
    drop(guard);
    result
}
