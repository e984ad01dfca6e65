//! The command line (DESIGN.md §7): parse, dispatch to a subcommand, map errors to exit codes.

mod add;
mod answer;
mod attach;
mod demo;
mod detach;
mod doctor;
mod explain;
mod extend;
mod gc;
mod hook;
mod human;
mod init;
mod install;
mod integration;
pub mod load;
mod logs;
mod pr;
mod replay;
mod run;
mod signals;
mod status;
mod survival;
mod sync;
mod timeline;
mod watch;
mod worker;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// Exit codes (DESIGN.md §7).
pub const EXIT_OK: i32 = 0;
pub const EXIT_UNFINISHED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_REFUSED: i32 = 3;
/// Try again later: the ledger stayed busy or the disk full for the whole wait (EX_TEMPFAIL of
/// sysexits.h). Nothing was written.
pub const EXIT_TRY_AGAIN: i32 = 75;

/// A user-facing error: what went wrong and what to do, with its exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn bad_input(m: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_BAD_INPUT,
            message: m.into(),
        }
    }
    pub fn refused(m: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_REFUSED,
            message: m.into(),
        }
    }
    pub fn failed(m: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_UNFINISHED,
            message: m.into(),
        }
    }
    pub fn try_again(m: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_TRY_AGAIN,
            message: m.into(),
        }
    }
}

impl From<crate::ledger::LedgerError> for CliError {
    fn from(e: crate::ledger::LedgerError) -> Self {
        use crate::ledger::LedgerError as L;
        if e.is_transient() {
            return CliError::try_again(format!(
                "{}: nothing was written; try again later ({e})",
                e.transient_reason()
            ));
        }
        match e {
            L::TooNew { .. } | L::Refused(_) | L::Restarting(_) => CliError::refused(e.to_string()),
            L::BadInput(_) | L::Conflict(_) => CliError::bad_input(e.to_string()),
            L::Sql(_) => CliError::failed(e.to_string()),
        }
    }
}

impl From<crate::engine::EngineError> for CliError {
    fn from(e: crate::engine::EngineError) -> Self {
        match e {
            crate::engine::EngineError::Refused(m) => CliError::refused(m),
            crate::engine::EngineError::Failed(m) => CliError::failed(m),
        }
    }
}

pub type CliResult = Result<i32, CliError>;

#[derive(Parser, Debug)]
#[command(
    name = "orch-tui",
    version,
    about = "Supervise several coding agents over a plan of tasks, each in its own PTY and git worktree"
)]
pub struct Cli {
    /// The git repository to work in (default: the current directory's repository).
    #[arg(long, global = true)]
    pub repo: Option<PathBuf>,
    /// The config file (default: .orch/config.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create .orch/ (config, ledger) and exclude it from git.
    Init,
    /// Add a task without a plan file (also while a supervisor runs: it picks the task up).
    Add(add::AddArgs),
    /// Give a task that has not started its next attempt a new prompt (pending, paused,
    /// escalated, failed or cancelled); the next attempt uses it.
    Edit {
        task: String,
        #[command(flatten)]
        with: add::EditArgs,
    },
    /// Validate or load a plan file.
    Plan {
        #[command(subcommand)]
        action: PlanAction,
    },
    /// Supervise until every task is settled.
    Run {
        #[arg(long)]
        headless: bool,
        /// Load (or reload) this plan first.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Concurrent agents (overrides the config's `slots`).
        #[arg(long)]
        slots: Option<usize>,
        /// How much you are asked, for this run: in (approve every merge), on (a veto window
        /// before each merge) or out (no wait). Overrides [funnel] autonomy.
        #[arg(long, value_name = "in|on|out")]
        autonomy: Option<String>,
        /// The veto window of on-the-loop for this run (e.g. 30s). Overrides [funnel]
        /// veto_window.
        #[arg(long, value_name = "DURATION")]
        veto: Option<String>,
        /// The branch the integration branch is cut from at the first start (overrides the
        /// config's `base`; later runs keep the recorded one: `orch-tui sync --base` switches).
        #[arg(long, value_name = "REF")]
        base: Option<String>,
        /// Supervise in the background (output in .orch/supervisor.log); returns once it
        /// supervises. Watch it with `orch-tui`, end it with `orch-tui stop`.
        #[arg(long, conflicts_with = "headless")]
        detach: bool,
        /// (The background supervisor `--detach` starts: writes .orch/supervisor.pid.)
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// End the running supervisor cleanly (its agents are stopped; `orch-tui run` resumes).
    /// Exit 1 when none runs.
    Stop {
        /// Kill the supervisor if a clean stop has not ended it within 3 seconds.
        #[arg(long)]
        now: bool,
    },
    /// Tasks, attempts, budgets and the inbox.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The event log.
    Events {
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        task: Option<String>,
    },
    /// An attempt's log (the newest attempt unless --attempt), or every attempt's merged by
    /// time with --all.
    Logs {
        task: Option<String>,
        /// Every attempt's log, the reviewers' and the checks' too, merged by time.
        #[arg(long)]
        all: bool,
        /// Keep printing as agents print (with a task: until its attempt ends; waits for the
        /// first attempt if none started yet).
        #[arg(long, short)]
        follow: bool,
        /// Only lines from the last DURATION (e.g. 10m, 90s, 2h).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// With --all: only these tasks (repeatable).
        #[arg(long = "task", value_name = "TASK")]
        tasks: Vec<String>,
        /// The raw PTY bytes instead of the readable text.
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        attempt: Option<u32>,
    },
    /// Play an attempt's terminal session back (its asciicast), with its timing.
    Replay {
        task: String,
        /// The attempt number (default: the newest).
        #[arg(long)]
        attempt: Option<u32>,
        /// Playback speed: 2 is twice as fast.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// The reviewer's session of that attempt instead of the agent's.
        #[arg(long)]
        review: bool,
    },
    /// Why a task is where it is: each state change of its attempts with the rule that fired,
    /// waits and who answered, budgets, limits, verdicts (from the ledger; words, or --json).
    Explain(explain::ExplainArgs),
    /// Where the run's time went: one row per slot, bars by phase, the human's decisions.
    Timeline {
        #[arg(long)]
        json: bool,
    },
    /// Approve a task waiting in review or escalated.
    Approve(HumanArgs),
    /// Send a task in review back for another attempt, with a note.
    Reject(HumanArgs),
    /// Retry a failed or escalated task (fresh attempts; the note goes to the next attempt).
    Retry(HumanArgs),
    /// Cancel a task (its dependents are blocked).
    Cancel(HumanArgs),
    /// Hold a task: its agent, if it works, is held (frozen, or its session's turn interrupted)
    /// and keeps its attempt, or a headless Claude/Codex run is ended and its conversation
    /// resumed later; `--all`: every ready, assigned and working task.
    Pause(human::FleetArgs),
    /// Release a paused task: a held agent continues the same attempt (an ended headless run, its
    /// conversation); `--all`: every paused task.
    Resume(human::FleetArgs),
    /// When the integration branch moved under the supervisor (the run is held): put it back, or
    /// take it as it is now.
    Integration {
        #[command(subcommand)]
        action: integration::IntegrationCmd,
    },
    /// Fetch the base branch and, when it moved, replay the integration branch onto it through
    /// the merge queue and its checks (done by the running supervisor, or here without agents).
    Sync {
        /// Sync onto this branch instead of the recorded base, and make it the base.
        #[arg(long, value_name = "REF")]
        base: Option<String>,
        /// Ask for the sync and return; `orch-tui status` shows how it went.
        #[arg(long)]
        no_wait: bool,
    },
    /// Raise a task's budget; a task stopped by its budget goes on where it stopped.
    Extend(extend::ExtendArgs),
    /// Answer the permission request a task's agent waits on: allow, always (for this run), deny.
    Answer(answer::AnswerArgs),
    /// Say an agent's finished turn completed its task: its work is committed and reviewed.
    Done(answer::DoneArgs),
    /// Drop backup refs older than AGE and the leftovers of finished tasks (worktrees, prompt
    /// files, merged task branches); says what it removed. Refused while a supervisor runs.
    Gc {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Drop backup refs at least this old (default 30d; "0s" drops them all).
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
    },
    /// A scratch repository, a plan and simulated agents.
    Demo {
        #[arg(long)]
        headless: bool,
        /// Where to create the scratch repository (default: a new temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        slots: Option<usize>,
    },
    /// Reports from inside an agent (reads ORCH_* from the environment).
    Worker {
        #[command(subcommand)]
        call: worker::WorkerCmd,
        /// A repeated call with the same key returns the first reply and writes nothing.
        #[arg(long, global = true)]
        idempotency_key: Option<String>,
        /// How long to wait out a busy ledger or a full disk before exiting 75 (try again).
        #[arg(long, global = true, value_name = "DURATION", default_value = worker::DEFAULT_RETRY_FOR)]
        retry_for: String,
    },
    /// The built-in simulated agent (see docs/sim-agent.md).
    SimAgent,
    /// Internal: hold one agent's PTY for the supervisor (docs/architecture.md, holders).
    #[command(name = "__hold", hide = true)]
    Hold {
        /// A spare's `.orch/holders/`: it makes its files there while it waits for a spec.
        prepare_in: Option<std::path::PathBuf>,
    },
    /// Called by an agent's hooks: appends the event to the attempt's hook log (always exit 0).
    Hook {
        /// The agent kind: claude, codex, aider.
        agent: String,
        /// The attempt's hook log (orch-tui writes this path into the agent's hook settings).
        #[arg(long)]
        log: PathBuf,
        /// The event as an argument (Codex `notify`); without it, read from stdin (Claude).
        payload: Option<String>,
    },
    /// Check the setup: git, each agent profile's program and flags, the terminal (exit 1 on
    /// any problem).
    Doctor,
    /// Push the integration branch and open a pull request with `gh` (or print the commands
    /// when gh is not installed).
    Pr(pr::PrArgs),
    /// Open $SHELL in a task's worktree.
    Shell { task: String },
    /// Put a running agent's live terminal in yours (through its holder); Ctrl-] detaches
    /// and the agent runs on.
    Attach { task: String },
    /// A shell completion script on stdout, e.g. `orch-tui completions bash >
    /// ~/.local/share/bash-completion/completions/orch-tui`.
    Completions { shell: install::Shell },
    /// The man page (roff) on stdout: `orch-tui man | man -l -`.
    Man {
        /// Write orch-tui.1 and a page per command (orch-tui-add.1, ...) into DIR instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The config's options.
    Config {
        /// Every option at its default, explained (config.example.toml): a start for
        /// .orch/config.toml.
        #[arg(long, required = true)]
        defaults: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlanAction {
    /// Exit 0, or 2 with every error listed.
    Validate { file: PathBuf },
    /// Validate and load into the ledger; loading the same plan again changes nothing.
    Load { file: PathBuf },
}

#[derive(clap::Args, Debug)]
pub struct HumanArgs {
    pub task: String,
    #[arg(long)]
    pub note: Option<String>,
}

pub fn main() -> i32 {
    // A holder starts on every dispatch, always as exactly `orch-tui __hold [DIR]`: it skips
    // building the whole command tree to parse one hidden word.
    let mut args = std::env::args_os().skip(1);
    if let (Some(mode), dir, None) = (args.next(), args.next(), args.next())
        && mode == "__hold"
    {
        let dir = dir.map(std::path::PathBuf::from);
        return crate::agent::holder::serve::main(dir.as_deref());
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    EXIT_OK
                }
                _ => EXIT_BAD_INPUT,
            };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            crate::os::out::warn(&format!("orch-tui: {}", e.message));
            e.code
        }
    }
}

fn dispatch(cli: Cli) -> CliResult {
    let repo = cli.repo.clone();
    let config = cli.config.clone();
    // A config named with --config is read (and its errors reported, exit 2) by every command
    // that works on a repository, even those that need nothing from it: a broken file the user
    // pointed at must never be ignored silently.
    let ctx = || {
        let ctx = Context::find(repo.as_deref(), config.as_deref())?;
        if ctx.config_given {
            ctx.config()?;
        }
        Ok::<Context, CliError>(ctx)
    };
    match cli.command {
        None => run::run(&ctx()?, &run::RunArgs::default()),
        Some(Command::Init) => init::init(&ctx()?),
        Some(Command::Add(a)) => add::add(&ctx()?, a),
        Some(Command::Edit { task, with }) => add::edit(&ctx()?, &task, with),
        Some(Command::Plan { action }) => match action {
            PlanAction::Validate { file } => {
                // Check the plan against the config it would run with (the named one, else the
                // repository's, else the defaults), so `validate` never passes what `load` refuses.
                let cfg = match Context::find(repo.as_deref(), config.as_deref()) {
                    Ok(c) => c.config()?,
                    Err(_) => match config.as_deref() {
                        Some(f) => load::load_config_required(f).map_err(diagnostics_error)?,
                        None => crate::core::config::default_config(),
                    },
                };
                init::validate(&file, &cfg)
            }
            PlanAction::Load { file } => init::load(&ctx()?, &file),
        },
        Some(Command::Run {
            headless,
            plan,
            slots,
            autonomy,
            veto,
            base,
            detach,
            detached,
        }) if !detach => run::run(
            &ctx()?,
            &run::RunArgs {
                headless,
                plan: plan.as_deref(),
                slots,
                autonomy: autonomy.as_deref(),
                veto: veto.as_deref(),
                base: base.as_deref(),
                detached,
            },
        ),
        Some(Command::Run { .. }) => detach::detach(&ctx()?),
        Some(Command::Stop { now }) => detach::stop(&ctx()?, now),
        Some(Command::Status { json }) => status::status(&ctx()?, json),
        Some(Command::Events { follow, json, task }) => {
            status::events(&ctx()?, follow, json, task.as_deref())
        }
        Some(Command::Logs {
            task,
            all,
            follow,
            since,
            tasks,
            raw,
            attempt,
        }) => logs::logs(
            &ctx()?,
            &logs::LogsArgs {
                task: task.as_deref(),
                all,
                follow,
                raw,
                attempt,
                since: since.as_deref(),
                tasks: &tasks,
            },
        ),
        Some(Command::Replay {
            task,
            attempt,
            speed,
            review,
        }) => replay::replay(&ctx()?, &task, attempt, speed, review),
        Some(Command::Timeline { json }) => timeline::timeline(&ctx()?, json),
        Some(Command::Explain(a)) => explain::explain(&ctx()?, a),
        Some(Command::Approve(a)) => human::human(&ctx()?, crate::engine::HumanCommand::Approve, a),
        Some(Command::Reject(a)) => human::human(&ctx()?, crate::engine::HumanCommand::Reject, a),
        Some(Command::Retry(a)) => human::human(&ctx()?, crate::engine::HumanCommand::Retry, a),
        Some(Command::Cancel(a)) => human::human(&ctx()?, crate::engine::HumanCommand::Cancel, a),
        Some(Command::Pause(a)) => human::fleet(&ctx()?, crate::engine::HumanCommand::Pause, a),
        Some(Command::Resume(a)) => human::fleet(&ctx()?, crate::engine::HumanCommand::Resume, a),
        Some(Command::Integration { action }) => integration::integration(&ctx()?, action),
        Some(Command::Sync { base, no_wait }) => sync::sync(&ctx()?, base.as_deref(), !no_wait),
        Some(Command::Extend(a)) => extend::extend(&ctx()?, a),
        Some(Command::Answer(a)) => answer::answer(&ctx()?, a),
        Some(Command::Done(a)) => answer::done(&ctx()?, a),
        Some(Command::Gc {
            dry_run,
            older_than,
        }) => gc::gc(&ctx()?, dry_run, older_than.as_deref()),
        Some(Command::Demo {
            headless,
            dir,
            slots,
        }) => demo::demo(headless, dir.as_deref(), slots),
        Some(Command::Worker {
            call,
            idempotency_key,
            retry_for,
        }) => worker::worker(call, idempotency_key.as_deref(), &retry_for),
        Some(Command::SimAgent) => Ok(crate::agent::sim::run()),
        Some(Command::Hold { prepare_in }) => {
            Ok(crate::agent::holder::serve::main(prepare_in.as_deref()))
        }
        Some(Command::Hook {
            agent,
            log,
            payload,
        }) => hook::hook(&agent, &log, payload.as_deref()),
        Some(Command::Doctor) => doctor::doctor(repo.as_deref(), config.as_deref()),
        Some(Command::Pr(a)) => pr::pr(&ctx()?, a),
        Some(Command::Shell { task }) => pr::shell(&ctx()?, &task),
        Some(Command::Attach { task }) => attach::attach(&ctx()?, &task),
        Some(Command::Completions { shell }) => install::completions(shell),
        Some(Command::Man { dir }) => install::man(dir.as_deref()),
        Some(Command::Config { .. }) => install::config_defaults(),
    }
}

/// The repository and config a command works on.
pub struct Context {
    pub paths: crate::engine::Paths,
    pub config_file: PathBuf,
    pub config_given: bool,
}

impl Context {
    pub fn find(repo: Option<&Path>, config: Option<&Path>) -> Result<Context, CliError> {
        let start = match repo {
            Some(r) => r.to_path_buf(),
            None => std::env::current_dir().map_err(|e| {
                CliError::bad_input(format!("cannot read the current directory: {e}"))
            })?,
        };
        let git = crate::git::Repo::open(&start).map_err(|e| {
            CliError::bad_input(format!(
                "{} is not inside a git repository ({e}); run `git init` there or pass --repo DIR",
                start.display()
            ))
        })?;
        let paths = crate::engine::Paths::new(git.root());
        let config_file = config
            .map(Path::to_path_buf)
            .unwrap_or_else(|| paths.orch.join("config.toml"));
        Ok(Context {
            paths,
            config_file,
            config_given: config.is_some(),
        })
    }

    /// The config: embedded defaults plus the user's file (a missing default file is fine;
    /// a missing file named with --config is an error).
    pub fn config(&self) -> Result<crate::core::config::Config, CliError> {
        if self.config_given && !self.config_file.exists() {
            return Err(CliError::bad_input(format!(
                "{}: no such config file",
                self.config_file.display()
            )));
        }
        load::load_config(Some(&self.config_file)).map_err(diagnostics_error)
    }

    pub fn ledger_exists(&self) -> bool {
        self.paths.ledger.exists()
    }

    /// Open the ledger of an initialised repository (never creates one).
    pub fn open_ledger(&self) -> Result<crate::ledger::Ledger, CliError> {
        if !self.ledger_exists() {
            return Err(CliError::bad_input(format!(
                "no ledger at {}: run `orch-tui init` first",
                self.paths.ledger.display()
            )));
        }
        Ok(crate::ledger::Ledger::open(&self.paths.ledger)?)
    }
}

/// Every diagnostic, one per block, as exit 2.
pub fn diagnostics_error(diags: Vec<crate::core::diag::Diagnostic>) -> CliError {
    let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    CliError::bad_input(format!(
        "{} error{}:\n{}",
        diags.len(),
        if diags.len() == 1 { "" } else { "s" },
        text.join("\n")
    ))
}
