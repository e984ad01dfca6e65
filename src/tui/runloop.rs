//! The UI thread's loop: one channel of `UiEvent`s in; state changes from `App` (keys in
//! `app.rs`, job answers and engine events in `update.rs`); effects carried out here by handing
//! them to the engine's handle or to a background job — never by blocking; a frame when dirty.

use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyEventKind, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::app::{App, Effect};
use super::input::Modes;
use super::jobs::{Command, JobDone, Jobs};
use super::keymap::Action;
use super::notify::{self, Focus};
use super::outside::{self, InputGate};
use super::state::{AgentInfo, View, ViewState};
use super::{TuiContext, TuiEnd, UiEvent, data, render, terminal};
use crate::engine::{EngineEvent, RunEnd};

/// The minimum time between frames (60 fps).
const FRAME: Duration = Duration::from_millis(16);
/// Elapsed-time clocks tick once a second, only while an agent is live.
const CLOCK: Duration = Duration::from_secs(1);
/// While an agent holds synchronized output, look again this soon (the lock itself times out
/// after 100 ms, so a dead agent cannot freeze the screen).
const SYNC_RETRY: Duration = Duration::from_millis(10);
/// The logs view re-reads files at most this often while agents print.
const LOGS_REFRESH: Duration = Duration::from_millis(500);
/// Ledger refreshes start at most this often (a busy run changes it many times a second; the
/// lane also keeps at most one waiting) ...
const REFRESH_GAP: Duration = Duration::from_millis(50);
/// ... and at least this many times their own duration apart, so a large plan's refreshes take
/// at most a third of a core however busy the run.
const REFRESH_SHARE: u32 = 2;

struct Loop {
    dirty: bool,
    /// The ledger changed since the last refresh was started.
    ledger_dirty: bool,
    logs_dirty: bool,
    last_draw: Instant,
    last_refresh: Instant,
    /// The gap before the next refresh may start (grows with what a refresh costs).
    refresh_gap: Duration,
    last_logs: Instant,
    last_tick: Instant,
    engine_end: Option<Result<RunEnd, String>>,
    /// While an agent holds synchronized output, the next look is not before this.
    sync_retry_at: Instant,
    stopping: bool,
    exit: bool,
    inbox_seen: usize,
    title_shown: Option<usize>,
    /// Whether the terminal has the user's attention (its focus events).
    focus: Focus,
    /// A program to hand the terminal to (after this batch of events).
    outside: Option<Outside>,
    /// The terminal hung up: leave without drawing again.
    lost_terminal: bool,
    /// Watching, the supervisor went away: leave so this process can supervise.
    take_over: bool,
    /// "Leave it running": a background supervisor takes over once this engine ended.
    detach: bool,
}

/// What runs outside the TUI, with the terminal handed over.
enum Outside {
    /// The new task's prompt in $EDITOR.
    EditText(String),
    /// A shell, or $EDITOR, in a task's worktree.
    In {
        task: String,
        dir: std::path::PathBuf,
        editor: bool,
    },
    /// A diff in $EDITOR.
    Diff { task: String, lines: Vec<String> },
}

pub(super) fn event_loop(
    ctx: &mut TuiContext,
    jobs: &Jobs,
    gate: &InputGate,
    app: &mut App,
    term: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
) -> Result<TuiEnd, String> {
    let now = Instant::now();
    let mut l = Loop {
        dirty: true,
        ledger_dirty: true,
        logs_dirty: false,
        last_draw: now - FRAME,
        last_refresh: now - REFRESH_GAP,
        refresh_gap: REFRESH_GAP,
        last_logs: now - LOGS_REFRESH,
        last_tick: now,
        engine_end: None,
        sync_retry_at: now,
        stopping: false,
        exit: false,
        inbox_seen: 0,
        title_shown: None,
        focus: Focus::Unknown,
        outside: None,
        lost_terminal: false,
        take_over: false,
        detach: false,
    };
    while !l.exit {
        let now = Instant::now();
        let wake = next_wake(&l, &app.state, now);
        match ctx.rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(ev) => on_event(ctx, jobs, app, &mut l, ev),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Ok(ev) = ctx.rx.try_recv() {
            on_event(ctx, jobs, app, &mut l, ev);
        }
        if let Some(o) = l.outside.take() {
            run_outside(ctx, gate, app, term, o)?;
            l.dirty = true;
        }
        let now = Instant::now();
        if ticking(&app.state) && now >= l.last_tick + CLOCK {
            l.last_tick = now;
            l.dirty = true;
        }
        if l.ledger_dirty && now >= l.last_refresh + l.refresh_gap {
            l.ledger_dirty = false;
            l.last_refresh = now;
            jobs.refresh();
        }
        if l.logs_dirty && app.state.view == View::Logs && now >= l.last_logs + LOGS_REFRESH {
            l.logs_dirty = false;
            l.last_logs = now;
            jobs.logs();
        }
        if l.dirty && now >= l.last_draw + FRAME && now >= l.sync_retry_at {
            if render_locked(&app.state, now) {
                // Wait for the agent's frame to complete (bounded by the lock's own timeout),
                // without blocking: keys are still handled meanwhile.
                l.sync_retry_at = now + SYNC_RETRY;
                continue;
            }
            data::tick(&mut app.state, ctx.run_started, now);
            if let Err(e) = term.draw(|f| render::render(&app.state, f)) {
                // A hung-up terminal fails every write, maybe before its SIGHUP is taken.
                if terminal::gone() {
                    l.lost_terminal = true;
                    break;
                }
                return Err(format!("cannot draw: {e}"));
            }
            l.dirty = false;
            l.last_draw = now;
        }
    }
    Ok(TuiEnd {
        engine: l.engine_end,
        lost_terminal: l.lost_terminal,
        take_over: l.take_over,
        quit_asked: app.state.quit_prompt,
        detach: l.detach,
    })
}

/// When the loop must look again without an event: the next frame, clock tick, refresh or
/// logs look that is due.
fn next_wake(l: &Loop, s: &ViewState, now: Instant) -> Instant {
    let mut wake = now + Duration::from_secs(3600);
    if l.dirty {
        wake = wake.min((l.last_draw + FRAME).max(l.sync_retry_at));
    }
    if ticking(s) {
        wake = wake.min(l.last_tick + CLOCK);
    }
    if l.ledger_dirty {
        wake = wake.min(l.last_refresh + l.refresh_gap);
    }
    // Stale logs only matter while the logs view is on screen; waking for them anywhere else
    // would spin (nothing clears the flag outside that view).
    if l.logs_dirty && s.view == View::Logs {
        wake = wake.min(l.last_logs + LOGS_REFRESH);
    }
    wake
}

/// The clocks tick while an agent is live or a veto window counts down.
fn ticking(s: &ViewState) -> bool {
    !s.agents.is_empty() || s.has_countdown()
}

/// True while a visible agent pane holds synchronized output.
fn render_locked(s: &ViewState, now: Instant) -> bool {
    let visible: Vec<&AgentInfo> = match s.view {
        View::Dashboard => s.agents.iter().collect(),
        View::Focus => s.focus.and_then(|id| s.agent(id)).into_iter().collect(),
        _ => Vec::new(),
    };
    visible
        .iter()
        .filter_map(|a| a.screen.as_ref())
        .any(|sc| render::term::is_locked(sc, now))
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

/// The agent whose pane the human looks at (the focus view).
fn seen_pane(s: &ViewState) -> Option<crate::core::domain::AttemptId> {
    s.focus.filter(|_| s.view == View::Focus)
}

/// Focus reports for agents that asked for them (DECSET 1004), as a terminal sends them when
/// the human's eyes move: out for the pane left, in for the pane entered.
fn focus_reports(
    s: &ViewState,
    before: Option<crate::core::domain::AttemptId>,
    after: Option<crate::core::domain::AttemptId>,
) -> Vec<Effect> {
    use crate::agent::screen::{FOCUS_IN, FOCUS_OUT};
    let wants = |id| {
        s.agent(id)
            .and_then(|a| a.screen.as_ref())
            .and_then(|sc| sc.lock().ok().map(|p| p.callbacks().focus_reporting()))
            .unwrap_or(false)
    };
    [(before, FOCUS_OUT), (after, FOCUS_IN)]
        .into_iter()
        .filter_map(|(id, bytes)| id.filter(|&id| wants(id)).map(|id| (id, bytes)))
        .map(|(attempt, bytes)| Effect::Input {
            attempt,
            bytes: bytes.to_vec(),
        })
        .collect()
}

fn on_event(ctx: &mut TuiContext, jobs: &Jobs, app: &mut App, l: &mut Loop, ev: UiEvent) {
    let seen_before = seen_pane(&app.state);
    let mut effects = on_event_effects(ctx, app, l, ev);
    let seen_after = seen_pane(&app.state);
    if seen_before != seen_after {
        effects.extend(focus_reports(&app.state, seen_before, seen_after));
    }
    carry_out(ctx, jobs, app, l, effects);
}

fn on_event_effects(ctx: &mut TuiContext, app: &mut App, l: &mut Loop, ev: UiEvent) -> Vec<Effect> {
    match ev {
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
        // A question or the form holds the keys; the wheel must not move what they act on.
        UiEvent::Term(Event::Mouse(_))
            if app.state.confirm.is_some() || app.state.form.is_some() =>
        {
            Vec::new()
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
                app.selected_stat()
            }
            _ => Vec::new(),
        },
        UiEvent::Term(Event::FocusGained) => {
            l.focus = Focus::Focused;
            Vec::new()
        }
        UiEvent::Term(Event::FocusLost) => {
            l.focus = Focus::Away;
            Vec::new()
        }
        UiEvent::Term(_) => Vec::new(),
        UiEvent::Engine(EngineEvent::AgentOutput { .. }) | UiEvent::Output => {
            ctx.output_flag.store(false, Ordering::Release);
            // An agent's screen appears after its setup; pick it up without waiting for the
            // next ledger change.
            if app.state.agents.iter().any(|a| a.screen.is_none()) {
                l.ledger_dirty = true;
            }
            l.dirty = true;
            l.logs_dirty = true;
            Vec::new()
        }
        UiEvent::Engine(ev) => {
            l.dirty = true;
            app.on_engine(ev)
        }
        UiEvent::EngineEnded(end) => {
            l.dirty = true;
            let fx = app.on_engine_ended(&end);
            if l.stopping {
                l.exit = true;
            }
            l.engine_end = Some(end);
            fx
        }
        UiEvent::Quit => {
            l.exit = true;
            Vec::new()
        }
        UiEvent::TerminalLost => {
            l.lost_terminal = true;
            l.exit = true;
            Vec::new()
        }
        UiEvent::Supervisor(Some(pid)) => {
            l.dirty = true;
            l.ledger_dirty = true;
            app.state.watching = Some(pid);
            Vec::new()
        }
        UiEvent::Supervisor(None) => {
            l.take_over = true;
            l.exit = true;
            Vec::new()
        }
        UiEvent::Job(done) => {
            l.dirty = true;
            let refreshed = match &done {
                JobDone::Refreshed(r) => {
                    l.refresh_gap = REFRESH_GAP.max(r.took * REFRESH_SHARE);
                    true
                }
                _ => false,
            };
            let fx = app.on_job(done);
            if refreshed {
                attention(&app.state, l, &ctx.config.ui.notify_command);
                // New log files may have appeared (a new attempt).
                l.logs_dirty = true;
            }
            fx
        }
    }
}

fn carry_out(ctx: &mut TuiContext, jobs: &Jobs, app: &mut App, l: &mut Loop, effects: Vec<Effect>) {
    for fx in effects {
        apply(ctx, jobs, app, l, fx);
    }
}

/// A notification when the inbox grew while the user looks elsewhere; the title says how many
/// wait.
fn attention(s: &ViewState, l: &mut Loop, command: &str) {
    let n = s.inbox.len();
    if notify::due(l.inbox_seen, n, l.focus) {
        notify::send(&format!("orch-tui: {n} item(s) wait in the inbox"), command);
    }
    l.inbox_seen = n;
    if l.title_shown != Some(n) {
        terminal::set_title(&format!("orch-tui · inbox {n}"));
        l.title_shown = Some(n);
    }
}

fn apply(ctx: &mut TuiContext, jobs: &Jobs, app: &mut App, l: &mut Loop, fx: Effect) {
    match fx {
        Effect::Human { cmd, task, note } => {
            let what = format!("{} {task}", cmd.name());
            app.sent(what.clone());
            jobs.human(what, vec![Command { cmd, task, note }]);
        }
        Effect::Answer {
            task,
            decision,
            note,
        } => {
            let what = format!("{decision} {task}");
            app.sent(what.clone());
            jobs.answer(what, task, decision, note);
        }
        Effect::ApproveAll { tasks } => {
            let what = format!("approve all ({})", tasks.len());
            app.sent(what.clone());
            let commands = tasks
                .into_iter()
                .map(|task| Command {
                    cmd: crate::engine::HumanCommand::Approve,
                    task,
                    note: None,
                })
                .collect();
            jobs.human(what, commands);
        }
        Effect::Input { attempt, bytes } => match &ctx.handle {
            Some(h) => h.input(attempt, bytes),
            // Watching: straight to the agent's holder.
            None => {
                if let Err(why) = jobs.engine.input(attempt, bytes) {
                    app.state.message = Some(why);
                }
            }
        },
        Effect::Resize {
            attempt,
            rows,
            cols,
        } => match &ctx.handle {
            Some(h) => h.resize(attempt, rows, cols),
            None => jobs.engine.resize(attempt, rows, cols),
        },
        Effect::Refresh => l.ledger_dirty = true,
        Effect::LoadDetail { task } => jobs.detail(task),
        Effect::LoadDiff { task } => jobs.diff(task),
        Effect::LoadDiffStat { base, commit } => jobs.diff_stat(base, commit),
        Effect::LoadLogs => {
            l.logs_dirty = false;
            l.last_logs = Instant::now();
            jobs.logs();
        }
        Effect::LoadTimeline => jobs.timeline(),
        Effect::LoadDone => {
            let repo = ctx
                .ledger_path
                .parent()
                .and_then(std::path::Path::parent)
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default();
            jobs.done_summary(repo, ctx.config.integration_branch.clone());
        }
        Effect::Stop { stop_agents } => {
            let Some(handle) = &ctx.handle else {
                // Watching: the run is another process's; quitting leaves it running.
                l.exit = true;
                return;
            };
            if l.engine_end.is_some() {
                l.exit = true;
            } else if app.state.finished.is_some() {
                // Settled: no agent runs; end the engine and leave when it says it ended.
                l.stopping = true;
                handle.stop(true);
            } else {
                l.stopping = true;
                app.state.message = Some(if stop_agents {
                    "stopping the agents…".into()
                } else {
                    "leaving the run; it resumes with `orch-tui`".into()
                });
                handle.stop(stop_agents);
            }
        }
        Effect::Detach => {
            let Some(handle) = &ctx.handle else {
                l.exit = true;
                return;
            };
            l.detach = true;
            if l.engine_end.is_some() {
                l.exit = true;
            } else {
                l.stopping = true;
                app.state.message =
                    Some("leaving it running: a background supervisor takes over…".into());
                handle.stop(false);
            }
        }
        Effect::Exit => l.exit = true,
        Effect::AddTask { draft } => jobs.add_task(draft, ctx.config.clone()),
        Effect::EditPrompt { task, prompt } => jobs.edit_prompt(task, prompt),
        Effect::LoadPrompt { task } => jobs.prompt(task),
        Effect::EditText { text } => l.outside = Some(Outside::EditText(text)),
        Effect::OpenShell { task } => jobs.worktree(task, false),
        Effect::OpenEditor { task, diff: None } => jobs.worktree(task, true),
        Effect::OpenEditor {
            task,
            diff: Some(lines),
        } => l.outside = Some(Outside::Diff { task, lines }),
        Effect::RunIn { task, dir, editor } => l.outside = Some(Outside::In { task, dir, editor }),
    }
    l.dirty = true;
}

/// Hand the terminal to a shell or an editor, take it back, and redraw everything.
fn run_outside(
    ctx: &TuiContext,
    gate: &InputGate,
    app: &mut App,
    term: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
    o: Outside,
) -> Result<(), String> {
    let orch = ctx
        .ledger_path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    match o {
        Outside::EditText(text) => {
            let r = outside::suspended(gate, || outside::edit_text(&orch, &text))?;
            app.on_editor_text(r);
        }
        Outside::In { task, dir, editor } => {
            let r = outside::suspended(gate, || {
                if editor {
                    outside::edit_dir(&dir)
                } else {
                    outside::shell(&task, &dir)
                }
            })?;
            app.state.message = Some(match r {
                Ok(()) => format!("back from {}", dir.display()),
                Err(e) => e,
            });
        }
        Outside::Diff { task, lines } => {
            let r = outside::suspended(gate, || outside::edit_diff(&orch, &task, &lines))?;
            if let Err(e) = r {
                app.state.message = Some(e);
            }
        }
    }
    term.clear().map_err(|e| format!("cannot draw: {e}"))?;
    if let Ok(size) = term.size() {
        let fx = app.on_resize(size.width, size.height);
        for f in fx {
            if let Effect::Resize {
                attempt,
                rows,
                cols,
            } = f
                && let Some(h) = &ctx.handle
            {
                h.resize(attempt, rows, cols);
            }
        }
    }
    Ok(())
}
