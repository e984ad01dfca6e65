//! The interactive TUI: a client of the engine (DESIGN.md §9). The engine runs on its own thread;
//! this thread owns the terminal, a read-only use of its own ledger connection (plus human
//! commands through `apply_human`), and redraws only when something changed.
//!
//! Every input arrives as one `UiEvent` on one channel (codex's app-event pattern); a frame is
//! drawn when the state is dirty, at most 60 per second.

pub mod app;
pub mod data;
pub mod funnel;
pub mod input;
pub mod keymap;
pub mod logfeed;
mod prompt;
pub mod render;
pub mod state;
mod terminal;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyEventKind, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::engine::{EngineEvent, EngineHandle, HumanCommand, RunEnd, apply_human};
use crate::ledger::Ledger;
use app::{App, Effect};
use input::Modes;
use keymap::{Action, Keymap};
use state::{View, ViewState};

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
}

/// The minimum time between frames (60 fps).
const FRAME: Duration = Duration::from_millis(16);
/// Elapsed-time clocks tick once a second, only while an agent is live.
const CLOCK: Duration = Duration::from_secs(1);
/// While an agent holds synchronized output, look again this soon (the lock itself times out
/// after 100 ms, so a dead agent cannot freeze the screen).
const SYNC_RETRY: Duration = Duration::from_millis(10);
/// The logs view re-reads files at most this often while agents print.
const LOGS_REFRESH: Duration = Duration::from_millis(500);

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
    pub ledger: Ledger,
    pub handle: EngineHandle,
    pub rx: Receiver<UiEvent>,
    pub tx: Sender<UiEvent>,
    pub output_flag: Arc<AtomicBool>,
    pub keymap: std::collections::BTreeMap<String, String>,
    pub run_started: Instant,
}

/// How the TUI ended.
pub struct TuiEnd {
    /// The engine's result, when it ended (None: the TUI quit first, e.g. terminal lost).
    pub engine: Option<Result<RunEnd, String>>,
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
    let guard = terminal::enter().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))
        .map_err(|e| format!("cannot set up the terminal: {e}"))?;
    if let Ok(size) = term.size() {
        app.size = (size.width, size.height);
    }
    spawn_input_thread(ctx.tx.clone());
    let result = event_loop(&mut ctx, &mut app, &mut term);
    drop(term);
    drop(guard);
    result
}

fn spawn_input_thread(tx: Sender<UiEvent>) {
    let _ = std::thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || {
            while let Ok(ev) = crossterm::event::read() {
                if tx.send(UiEvent::Term(ev)).is_err() {
                    break;
                }
            }
        });
}

struct Loop {
    /// The logs view's sources and merged lines (read incrementally).
    feed: logfeed::LogFeed,
    dirty: bool,
    ledger_dirty: bool,
    logs_dirty: bool,
    last_draw: Instant,
    last_logs: Instant,
    last_tick: Instant,
    engine_end: Option<Result<RunEnd, String>>,
    /// While an agent holds synchronized output, the next look is not before this.
    sync_retry_at: Instant,
    stopping: bool,
    exit: bool,
    inbox_seen: usize,
}

fn event_loop(
    ctx: &mut TuiContext,
    app: &mut App,
    term: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
) -> Result<TuiEnd, String> {
    let now = Instant::now();
    let mut l = Loop {
        feed: logfeed::LogFeed::default(),
        dirty: true,
        ledger_dirty: true,
        logs_dirty: false,
        last_draw: now - FRAME,
        last_logs: now - LOGS_REFRESH,
        last_tick: now,
        engine_end: None,
        sync_retry_at: now,
        stopping: false,
        exit: false,
        inbox_seen: 0,
    };
    while !l.exit {
        let now = Instant::now();
        // Stale logs only matter while the logs view is on screen; waking for them anywhere
        // else would spin (nothing clears the flag outside that view).
        let logs_due = l.logs_dirty && app.state.view == View::Logs;
        let wake = if l.dirty {
            (l.last_draw + FRAME).max(l.sync_retry_at)
        } else if ticking(&app.state) || logs_due {
            (l.last_tick + CLOCK).min(if logs_due {
                l.last_logs + LOGS_REFRESH
            } else {
                l.last_tick + CLOCK
            })
        } else {
            now + Duration::from_secs(3600)
        };
        match ctx.rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(ev) => on_event(ctx, app, &mut l, ev),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(ev) = ctx.rx.try_recv() {
            on_event(ctx, app, &mut l, ev);
        }
        let now = Instant::now();
        if ticking(&app.state) && now >= l.last_tick + CLOCK {
            l.last_tick = now;
            l.dirty = true;
        }
        if l.ledger_dirty {
            l.ledger_dirty = false;
            refresh(ctx, app, &mut l, now);
        }
        if l.logs_dirty && app.state.view == View::Logs && now >= l.last_logs + LOGS_REFRESH {
            load_logs(ctx, app, &mut l, now);
        }
        if l.dirty && now >= l.last_draw + FRAME && now >= l.sync_retry_at {
            if render_locked(&app.state, now) {
                // Wait for the agent's frame to complete (bounded by the lock's own timeout),
                // without blocking: keys are still handled meanwhile.
                l.sync_retry_at = now + SYNC_RETRY;
                continue;
            }
            data::tick(&mut app.state, ctx.run_started, now);
            term.draw(|f| render::render(&app.state, f))
                .map_err(|e| format!("cannot draw: {e}"))?;
            l.dirty = false;
            l.last_draw = now;
        }
    }
    Ok(TuiEnd {
        engine: l.engine_end,
    })
}

/// The clocks tick while an agent is live or a veto window counts down.
fn ticking(s: &ViewState) -> bool {
    !s.agents.is_empty() || s.has_countdown()
}

/// True while a visible agent pane holds synchronized output.
fn render_locked(s: &ViewState, now: Instant) -> bool {
    let visible: Vec<&state::AgentInfo> = match s.view {
        View::Dashboard => s.agents.iter().collect(),
        View::Focus => s.focus.and_then(|id| s.agent(id)).into_iter().collect(),
        _ => Vec::new(),
    };
    visible
        .iter()
        .filter_map(|a| a.screen.as_ref())
        .any(|sc| render::term::is_locked(sc, now))
}

fn refresh(ctx: &TuiContext, app: &mut App, l: &mut Loop, now: Instant) {
    let views = ctx.handle.agents();
    if let Err(e) = data::refresh(&mut app.state, &ctx.ledger, &views, now) {
        app.state.message = Some(format!("cannot read the ledger: {e}"));
    }
    let n = app.state.inbox.len();
    if n > l.inbox_seen {
        terminal::notify(&format!("orch-tui: {n} item(s) wait in the inbox"));
    }
    l.inbox_seen = n;
    terminal::set_title(&format!("orch-tui · inbox {n}"));
    if app.state.view == View::Detail
        && let Some(task) = app.state.detail.as_ref().map(|d| d.task.clone())
    {
        load_detail(ctx, app, &task);
    }
    if app.state.view == View::Timeline {
        load_timeline(ctx, app);
    }
    l.logs_dirty = true;
    l.dirty = true;
}

fn load_detail(ctx: &TuiContext, app: &mut App, task: &str) {
    let scroll = app.state.detail.as_ref().map_or(0, |d| d.scroll);
    match data::load_detail(&ctx.ledger, task) {
        Ok(Some(mut d)) => {
            if d.task == task {
                d.scroll = scroll;
            }
            app.state.detail = Some(d);
        }
        Ok(None) => app.state.detail = None,
        Err(e) => app.state.message = Some(format!("cannot read task {task}: {e}")),
    }
}

fn load_timeline(ctx: &TuiContext, app: &mut App) {
    match data::load_timeline(&ctx.ledger, crate::ledger::now_ms()) {
        Ok(t) => app.state.timeline = Some(t),
        Err(e) => app.state.message = Some(format!("cannot read the events: {e}")),
    }
}

fn load_logs(ctx: &TuiContext, app: &mut App, l: &mut Loop, now: Instant) {
    if let Err(e) = l.feed.refresh(&ctx.ledger) {
        app.state.message = Some(format!("cannot read the logs: {e}"));
    }
    if l.feed.poll(crate::ledger::now_ms()) {
        app.state.logs.lines = l.feed.lines().to_vec();
    }
    l.logs_dirty = false;
    l.last_logs = now;
    l.dirty = true;
}

fn focused_modes(s: &ViewState) -> Modes {
    s.focus
        .and_then(|id| s.agent(id))
        .and_then(|a| a.screen.as_ref())
        .and_then(|sc| {
            sc.lock().ok().map(|p| Modes {
                application_cursor: p.screen().application_cursor(),
                bracketed_paste: p.screen().bracketed_paste(),
            })
        })
        .unwrap_or_default()
}

fn on_event(ctx: &mut TuiContext, app: &mut App, l: &mut Loop, ev: UiEvent) {
    let effects = match ev {
        UiEvent::Term(Event::Key(k)) if k.kind != KeyEventKind::Release => {
            l.dirty = true;
            let modes = focused_modes(&app.state);
            app.on_key(&k, modes)
        }
        UiEvent::Term(Event::Paste(text)) => {
            l.dirty = true;
            let modes = focused_modes(&app.state);
            app.on_paste(&text, modes)
        }
        UiEvent::Term(Event::Resize(cols, rows)) => {
            l.dirty = true;
            app.on_resize(cols, rows)
        }
        UiEvent::Term(Event::Mouse(m)) => match m.kind {
            MouseEventKind::ScrollUp => {
                l.dirty = true;
                app.on_action(Action::Up)
            }
            MouseEventKind::ScrollDown => {
                l.dirty = true;
                app.on_action(Action::Down)
            }
            MouseEventKind::Down(crossterm::event::MouseButton::Left) => {
                l.dirty = true;
                app.on_click(m.column, m.row);
                Vec::new()
            }
            _ => Vec::new(),
        },
        UiEvent::Term(_) => Vec::new(),
        UiEvent::Engine(EngineEvent::AgentOutput { .. }) | UiEvent::Output => {
            ctx.output_flag.store(false, Ordering::Release);
            // An agent's screen appears after its setup; pick it up without waiting for the
            // next ledger change (the handle's list is a cheap in-memory copy).
            if app.state.agents.iter().any(|a| a.screen.is_none()) {
                l.ledger_dirty = true;
            }
            l.dirty = true;
            l.logs_dirty = true;
            Vec::new()
        }
        UiEvent::Engine(EngineEvent::Waiting(why)) => {
            // The supervisor waits for the ledger (busy, disk full): say so where it shows.
            app.state.message = Some(why);
            l.dirty = true;
            Vec::new()
        }
        UiEvent::Engine(EngineEvent::Changed) => {
            // Something moves again (e.g. a retry from the inbox after the run had settled).
            if l.engine_end.is_none() {
                app.state.finished = None;
            }
            l.ledger_dirty = true;
            Vec::new()
        }
        UiEvent::Engine(EngineEvent::Finished) => {
            // The engine keeps supervising (the human may still act on the inbox); say where
            // the run stands and let `q` quit without the stop-or-leave question.
            let counts = ctx.ledger.state_counts().unwrap_or_default();
            let total: usize = counts.values().sum();
            let done = counts.get("done").copied().unwrap_or(0);
            app.state.finished = Some(if done == total {
                "all done · q quits".to_string()
            } else {
                format!(
                    "{} of {total} not done: see the inbox · q quits",
                    total - done
                )
            });
            l.ledger_dirty = true;
            l.dirty = true;
            Vec::new()
        }
        UiEvent::EngineEnded(end) => {
            l.ledger_dirty = true;
            l.dirty = true;
            app.state.finished = Some(match &end {
                Ok(RunEnd::AllDone) => "all done · q quits".to_string(),
                Ok(RunEnd::Unfinished) => "run settled, some tasks unfinished · q quits".into(),
                Ok(RunEnd::Stopped) => "stopped".into(),
                Err(_) => "supervisor failed · q quits".into(),
            });
            if let Err(e) = &end {
                app.state.error = Some(e.clone());
            }
            if l.stopping {
                l.exit = true;
            }
            l.engine_end = Some(end);
            Vec::new()
        }
    };
    for fx in effects {
        apply(ctx, app, l, fx);
    }
}

fn apply(ctx: &mut TuiContext, app: &mut App, l: &mut Loop, fx: Effect) {
    match fx {
        Effect::Human { cmd, task, note } => {
            let r = apply_human(&mut ctx.ledger, cmd, &task, note.as_deref());
            app.state.message = Some(match r {
                Ok(m) => m,
                Err(e) => e.to_string(),
            });
            // The supervisor reads the change from the event log when woken.
            ctx.handle.poke();
            l.ledger_dirty = true;
        }
        Effect::Input { attempt, bytes } => ctx.handle.input(attempt, bytes),
        Effect::Resize {
            attempt,
            rows,
            cols,
        } => ctx.handle.resize(attempt, rows, cols),
        Effect::LoadDetail { task } => {
            app.state.detail = None;
            load_detail(ctx, app, &task);
        }
        Effect::LoadDiff { task } => match funnel::load_diff(&ctx.ledger, &task) {
            Ok(d) => app.state.diff = Some(d),
            Err(e) => {
                app.state.diff = None;
                app.state.message = Some(e);
            }
        },
        Effect::ApproveAll { tasks } => {
            let mut approved = 0;
            let mut errors = Vec::new();
            for task in &tasks {
                match apply_human(&mut ctx.ledger, HumanCommand::Approve, task, None) {
                    Ok(_) => approved += 1,
                    Err(e) => errors.push(e.to_string()),
                }
            }
            let mut m = format!("approved {approved} of {}", tasks.len());
            if !errors.is_empty() {
                m.push_str(&format!(" · {}", errors.join("; ")));
            }
            app.state.message = Some(m);
            ctx.handle.poke();
            l.ledger_dirty = true;
        }
        Effect::LoadLogs => load_logs(ctx, app, l, Instant::now()),
        Effect::LoadTimeline => load_timeline(ctx, app),
        Effect::Stop { stop_agents } => {
            if l.engine_end.is_some() {
                l.exit = true;
            } else if app.state.finished.is_some() {
                // Settled: no agent runs; end the engine and leave when it says it ended.
                l.stopping = true;
                ctx.handle.stop(true);
            } else {
                l.stopping = true;
                app.state.message = Some(if stop_agents {
                    "stopping the agents…".into()
                } else {
                    "leaving the run; it resumes with `orch-tui`".into()
                });
                ctx.handle.stop(stop_agents);
            }
        }
        Effect::Exit => l.exit = true,
    }
    l.dirty = true;
}
