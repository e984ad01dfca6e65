//! `run [--headless]` (and the default command): supervise until every task is settled.

use std::path::Path;

use super::{CliError, CliResult, Context, EXIT_OK, EXIT_UNFINISHED};
use crate::engine::summary::{integration_summary, summary_table};
use crate::engine::{Engine, EngineOptions, RunEnd};
use crate::os::out;

/// `run`'s flags (the bare `orch-tui` is `run` with none of them).
#[derive(Debug, Default)]
pub struct RunArgs<'a> {
    pub headless: bool,
    pub plan: Option<&'a Path>,
    pub slots: Option<usize>,
    /// `in`, `on`, `out` (or the config's long names), for this run only.
    pub autonomy: Option<&'a str>,
    /// The veto window of on-the-loop, for this run only.
    pub veto: Option<&'a str>,
    /// The base branch asked for (`--base`).
    pub base: Option<&'a str>,
    /// This is the background supervisor `run --detach` started: it writes its pid file.
    pub detached: bool,
}

pub fn run(ctx: &Context, args: &RunArgs) -> CliResult {
    let mut config = ctx.config()?;
    override_config(&mut config, args)?;
    if let Some(b) = args.base {
        config.base = Some(b.to_string());
    }
    // The base asked for must be a branch, and the recorded one if one is (a switch is a sync):
    // said here, exit 2, before anything is written.
    if let Some(asked) = config.base.clone() {
        let recorded = match ctx.ledger_exists() {
            true => ctx.open_ledger()?.integration()?.sync.base_ref,
            false => None,
        };
        let repo = crate::git::Repo::open(&ctx.paths.repo)
            .map_err(|e| CliError::bad_input(e.to_string()))?;
        config.base = crate::engine::base::for_run(
            &repo,
            recorded.as_deref(),
            Some(&asked),
            &config.integration_branch,
        )?;
    }
    let (headless, plan) = (args.headless, args.plan);
    // The TUI opens on an empty ledger, ready for `orch-tui add`; a headless run with nothing
    // to do would end at once, so it is refused instead.
    let empty_ok = !headless && has_terminal();
    if !ctx.ledger_exists() {
        if plan.is_none() && !empty_ok {
            return Err(CliError::bad_input(format!(
                "no ledger at {}: add a task with `orch-tui add \"PROMPT\"`, or load a plan \
                 with `orch-tui plan load plan.toml` (or `orch-tui run --plan plan.toml`)",
                ctx.paths.ledger.display()
            )));
        }
        if plan.is_none() {
            super::init::implied_init(ctx)?;
        }
        super::init::secure_orch(&ctx.paths)?;
    }
    if let Some(p) = plan {
        // Validate everything before the ledger is created or touched.
        let parsed = super::load::load_plan(p).map_err(super::diagnostics_error)?;
        let problems = crate::core::config::check_plan_against_config(&parsed, &config);
        if !problems.is_empty() {
            return Err(super::diagnostics_error(problems));
        }
        crate::ledger::Ledger::open(&ctx.paths.ledger)?;
        let report = super::init::load_into(ctx, p)?;
        if !report.added.is_empty() || !report.changed.is_empty() {
            out::say(&format!(
                "plan {}: {} added, {} changed",
                p.display(),
                report.added.len(),
                report.changed.len()
            ));
        }
    }
    {
        let ledger = ctx.open_ledger()?;
        if ledger.tasks()?.is_empty() && !empty_ok {
            return Err(CliError::bad_input(
                "the ledger holds no tasks: add one with `orch-tui add \"PROMPT\"`, or load a plan \
                 with `orch-tui plan load plan.toml` or `orch-tui run --plan plan.toml`",
            ));
        }
    }
    // An .orch/ made by an older orch-tui (or by hand) gets its modes fixed before anything
    // else is written there.
    super::init::secure_orch(&ctx.paths)?;
    // Block the stop signals before the log writer's thread starts: every thread inherits the
    // mask, and only the supervisor's waiter thread may take SIGINT/SIGTERM.
    block_stop_signals();
    let _log = init_tracing(&ctx.paths.logs);
    if headless {
        supervise_as(ctx, config, args.detached)
    } else {
        // Another process may supervise already: the TUI then watches it.
        super::watch::tui(ctx, config)
    }
}

/// `--slots`, `--autonomy` and `--veto` over the config, for this run only.
fn override_config(
    config: &mut crate::core::config::Config,
    args: &RunArgs,
) -> Result<(), CliError> {
    use crate::core::config::Autonomy;
    if let Some(n) = args.slots {
        if !(1..=64).contains(&n) {
            return Err(CliError::bad_input(format!(
                "--slots {n}: choose between 1 and 64 concurrent agents"
            )));
        }
        config.slots = n;
    }
    if let Some(a) = args.autonomy {
        config.funnel.autonomy = match a {
            "in" => Autonomy::InTheLoop,
            "on" => Autonomy::OnTheLoop,
            "out" => Autonomy::OutOfTheLoop,
            long => Autonomy::parse(long).ok_or_else(|| {
                CliError::bad_input(format!(
                    "--autonomy {long}: choose in (you approve every merge), on (merges go \
                     ahead after the veto window) or out (no wait)"
                ))
            })?,
        };
    }
    if let Some(v) = args.veto {
        let ms = crate::core::duration::parse_duration(v).map_err(|e| {
            CliError::bad_input(format!(
                "--veto {v}: {e}; write a duration such as 30s or 2m"
            ))
        })?;
        if config.funnel.autonomy != Autonomy::OnTheLoop {
            return Err(CliError::bad_input(format!(
                "--veto {v}: only on-the-loop has a veto window, and this run is {}; \
                 add --autonomy on, or leave --veto out",
                config.funnel.autonomy.as_str()
            )));
        }
        config.funnel.veto_window_ms = ms;
    }
    // Every slot's ports must fit (the config checks its own `slots`; --slots may ask more).
    if let Err(why) = config.worktree.port_of(config.slots as u32) {
        return Err(CliError::bad_input(why));
    }
    Ok(())
}

/// The supervisor's own log, `.orch/logs/orch-tui.log` (level from `ORCH_LOG`: error, warn,
/// info (default), debug, trace). Never the terminal: the TUI owns it. Keep the guard alive
/// for the run; dropping it flushes the file.
pub fn init_tracing(logs: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    crate::os::files::private_dir(logs).ok()?;
    // The appender creates its file with the umask's mode: make it 0600 first.
    crate::os::files::ensure_private_file(&logs.join("orch-tui.log")).ok()?;
    let level = match std::env::var("ORCH_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("warn") => tracing::Level::WARN,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    let appender = tracing_appender::rolling::never(logs, "orch-tui.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_max_level(level)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Whether the TUI can run: stdin and stdout are terminals. Without one (CI, pipes) the run
/// goes headless, with a note, rather than failing.
pub fn has_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The same engine as headless, with the TUI as its client: the engine loop on its own thread,
/// the TUI on this one. The summary table is printed after the terminal is restored.
/// `ask_quit`: open with the quit question (a watching TUI's, whose supervisor went away).
pub fn supervise_tui(
    ctx: &Context,
    config: crate::core::config::Config,
    ask_quit: bool,
) -> CliResult {
    // Every panic is logged and kept, so the run can say it after the terminal is restored.
    crate::engine::panics::install();
    if !has_terminal() {
        out::warn("orch-tui: no terminal here; running headless (pass --headless to be explicit)");
        return supervise(ctx, config);
    }
    let orch_bin = std::env::current_exe()
        .map_err(|e| CliError::failed(format!("cannot find the orch-tui binary: {e}")))?;
    block_stop_signals();
    become_subreaper();
    let keymap = config.ui.keymap.clone();
    let tui_config = std::sync::Arc::new(config.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let (hook, output_flag) = crate::tui::output_hook(tx.clone());
    let mut engine = Engine::start(EngineOptions {
        paths: ctx.paths.clone(),
        config,
        orch_bin,
        // Progress lines would scribble over the TUI; the ledger has them all.
        print_progress: false,
        on_output: Some(hook),
        stay_open: true,
    })?;
    stop_on_signals(engine.stopper());
    let events = engine.subscribe();
    let handle = engine.handle();
    let fwd = tx.clone();
    std::thread::Builder::new()
        .name("tui-engine-events".into())
        .spawn(move || {
            while let Ok(e) = events.recv() {
                if fwd.send(crate::tui::UiEvent::Engine(e)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| CliError::failed(format!("cannot start a thread: {e}")))?;
    let done = tx.clone();
    let engine_thread = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            // A panic in the engine must still reach the TUI, as its error state (its agents are
            // stopped; the message is printed after the terminal is restored).
            let end = engine.run_guarded().map_err(|e| e.to_string());
            let _ = done.send(crate::tui::UiEvent::EngineEnded(end.clone()));
            end
        })
        .map_err(|e| CliError::failed(format!("cannot start the engine thread: {e}")))?;
    // The terminal closing (SIGHUP) ends the TUI, never the run: see below.
    let lost = tx.clone();
    super::signals::on_hangup(move || {
        let _ = lost.send(crate::tui::UiEvent::TerminalLost);
    });
    let tui = crate::tui::run(crate::tui::TuiContext {
        ledger_path: ctx.paths.ledger.clone(),
        handle: Some(handle.clone()),
        watching: None,
        ask_quit,
        rx,
        tx,
        output_flag,
        keymap,
        run_started: std::time::Instant::now(),
        config: tui_config,
    });
    let end = match tui {
        Ok(t) if t.detach => {
            // Its lock goes with the engine: the background supervisor takes it after.
            handle.stop(false);
            let _ = engine_thread.join();
            return super::detach::hand_over(ctx);
        }
        Ok(t) if t.engine.is_some() => t.engine,
        _ if super::signals::terminal_lost() => {
            // The terminal closed under the TUI (a closed window, a dropped SSH connection):
            // the agents never noticed. Nobody can approve or retry from here any more, so the
            // run goes on headless and ends once settled; its log says how it went.
            tracing::warn!("the TUI lost its terminal; supervising headless until the run settles");
            handle.end_when_settled();
            engine_thread.join().ok()
        }
        r => {
            // The TUI ended without the engine (terminal error): stop it cleanly and wait.
            if let Err(e) = r {
                out::warn(&format!("orch-tui: {e}"));
            }
            handle.stop(true);
            engine_thread.join().ok()
        }
    };
    let ledger = ctx.open_ledger()?;
    out::print(&summary_table(&ledger)?);
    match end {
        Some(Ok(RunEnd::AllDone)) => Ok(EXIT_OK),
        Some(Ok(RunEnd::Unfinished)) => {
            out::say("some tasks did not finish: see `orch-tui status` and `orch-tui logs TASK`");
            Ok(EXIT_UNFINISHED)
        }
        Some(Ok(RunEnd::Stopped)) | None => {
            out::say("stopped: `orch-tui run` resumes where this run left off");
            Ok(EXIT_UNFINISHED)
        }
        Some(Err(e)) => Err(CliError::failed(e)),
    }
}

/// Start the engine and print the summary table at the end.
pub fn supervise(ctx: &Context, config: crate::core::config::Config) -> CliResult {
    supervise_as(ctx, config, false)
}

/// [`supervise`]; `detached`: the background supervisor of `run --detach`, which writes its pid
/// file once it holds the lock.
fn supervise_as(ctx: &Context, config: crate::core::config::Config, detached: bool) -> CliResult {
    crate::engine::panics::install();
    let orch_bin = std::env::current_exe()
        .map_err(|e| CliError::failed(format!("cannot find the orch-tui binary: {e}")))?;
    // Block before any thread starts, so every thread inherits the mask and only the waiter
    // sees the signals.
    block_stop_signals();
    become_subreaper();
    // A closed terminal is noted in the log; the run goes on (a detached run has none).
    super::signals::start();
    let integration = config.integration_branch.clone();
    let mut engine = Engine::start(EngineOptions {
        paths: ctx.paths.clone(),
        config,
        orch_bin,
        print_progress: true,
        on_output: None,
        stay_open: false,
    })?;
    stop_on_signals(engine.stopper());
    let _pid_file = detached
        .then(|| super::detach::PidFile::write(&ctx.paths.orch))
        .flatten();
    out::say(&format!(
        "supervising {} (epoch {})",
        ctx.paths.repo.display(),
        engine.epoch()
    ));
    let end = engine.run_guarded()?;
    out::say("");
    let ledger = crate::ledger::Ledger::open(engine.ledger_path())?;
    out::print(&summary_table(&ledger)?);
    if let Ok(repo) = crate::git::Repo::open(&ctx.paths.repo) {
        out::say("");
        out::print(&integration_summary(&repo, &integration));
    }
    Ok(match end {
        RunEnd::AllDone => EXIT_OK,
        RunEnd::Unfinished => {
            if let Some(hold) = held(&ledger) {
                out::say(&format!("the run is held: {hold}"));
            }
            out::say(
                "some tasks did not finish: see the outcomes above, `orch-tui status` and `orch-tui logs TASK`",
            );
            EXIT_UNFINISHED
        }
        RunEnd::Stopped => {
            out::say("stopped: `orch-tui run` resumes where this run left off");
            EXIT_UNFINISHED
        }
    })
}

/// Blocks SIGINT, SIGTERM and SIGCHLD in this thread (and every thread started after it) and
/// returns the stop signals' set. SIGCHLD is taken by the orphan reaper's thread
/// ([`become_subreaper`]). Children start with an empty mask (std resets it before exec).
/// Why the whole run is held (the integration branch moved under it), if it is.
fn held(ledger: &crate::ledger::Ledger) -> Option<String> {
    ledger
        .conn()
        .query_row("SELECT hold FROM supervisor WHERE id = 1", [], |r| r.get(0))
        .ok()
        .flatten()
}

pub(crate) fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set calls on local, initialised sigset_t values.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let mut all = set;
        libc::sigaddset(&mut all, libc::SIGCHLD);
        // Taken by the signal thread (`signals.rs`): a closed terminal never ends the run.
        libc::sigaddset(&mut all, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        set
    }
}

/// The least time between two passes of the orphan reaper.
const ORPHAN_SCAN_GAP_MS: u64 = 200;

/// The supervisor parents every agent: orphans an agent leaves (a daemon whose parent died)
/// are re-parented to it rather than to init, so they stay findable, and a thread reaps them
/// when they exit — only them: see `os::reap` for why that never takes the exit status of a
/// child someone else waits for. Needs SIGCHLD blocked first ([`block_stop_signals`]).
fn become_subreaper() {
    if crate::os::reap::is_child_subreaper() {
        return;
    }
    if let Err(e) = crate::os::reap::set_child_subreaper() {
        tracing::warn!(error = %e, "not a child subreaper: orphaned agent processes go to init");
        return;
    }
    // Agent cgroups a killed supervisor left behind, once empty.
    crate::os::reap::sweep_agent_cgroups();
    let _ = std::thread::Builder::new()
        .name("orphan-reaper".into())
        .spawn(|| {
            // SAFETY: plain libc signal-set calls on a local, initialised sigset_t; sigwait on a
            // signal every thread has blocked.
            let set = unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGCHLD);
                set
            };
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: as above.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    return;
                }
                for r in crate::os::reap::reap_adopted() {
                    tracing::info!(pid = r.pid, code = ?r.code, signal = ?r.signal, "reaped an orphaned agent process");
                }
                // A pass reads every process's stat, and SIGCHLD comes for each of the dozens
                // of git commands a task runs: at most a few passes a second (a quarter of the
                // supervisor's CPU in the throughput bench otherwise). Signals that come
                // meanwhile stay pending; an orphan's zombie waits this long at most.
                std::thread::sleep(std::time::Duration::from_millis(ORPHAN_SCAN_GAP_MS));
            }
        });
}

/// SIGINT / SIGTERM end the agents cleanly and leave the run resumable (`orch-tui stop` sends
/// SIGTERM). The signal thread of `signals.rs` takes them, so no work happens in a handler.
fn stop_on_signals(stopper: crate::engine::Stopper) {
    super::signals::on_stop(move |sig| {
        out::warn(&format!("orch-tui: stopping the agents (signal {sig})"));
        tracing::info!(signal = sig, "stopping the agents");
        stopper.stop(true);
    });
}
