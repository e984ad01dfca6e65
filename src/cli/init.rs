//! `init`, `plan validate`, `plan load`.

use std::path::Path;

use super::{CliError, CliResult, Context, EXIT_OK, diagnostics_error, load};
use crate::ledger::{Ledger, TaskDefaults};
use crate::os::out;

/// `.orch/` and its folders 0700, every file in it 0600: created so, and an existing tree made
/// by an older orch-tui (or by hand) fixed (docs/security.md).
pub fn secure_orch(paths: &crate::engine::Paths) -> Result<(), CliError> {
    let fail = |p: &Path, e: std::io::Error| {
        CliError::failed(format!(
            "cannot create or secure {}: {e}; check that it is yours and writable",
            p.display()
        ))
    };
    for dir in [&paths.orch, &paths.worktrees, &paths.logs, &paths.prompts] {
        crate::os::files::private_dir(dir).map_err(|e| fail(dir, e))?;
    }
    let fixed = crate::os::files::tighten(&paths.orch).map_err(|e| fail(&paths.orch, e))?;
    if fixed.files + fixed.dirs > 0 {
        tracing::info!(
            files = fixed.files,
            dirs = fixed.dirs,
            "made .orch/ private"
        );
    }
    Ok(())
}

pub fn init(ctx: &Context) -> CliResult {
    for line in set_up(ctx)? {
        out::say(&line);
    }
    out::say(&format!("ledger ready at {}", ctx.paths.ledger.display()));
    out::say(
        "next: `orch-tui add \"PROMPT\"` for a task, or write plan.toml, then \
         `orch-tui plan validate plan.toml` and `orch-tui run`",
    );
    Ok(EXIT_OK)
}

/// What `init` does, for commands that need a ledger and find none (`add`, the TUI): nothing
/// here touches the user's files — `.orch/` is excluded from git — so it is done for them, with
/// one line on stderr saying so.
pub fn implied_init(ctx: &Context) -> Result<(), CliError> {
    set_up(ctx)?;
    out::warn(&format!(
        "orch-tui: set up {} (config, ledger; excluded from git), as `orch-tui init` does",
        ctx.paths.orch.display()
    ));
    Ok(())
}

/// The config a command works with: the repository's, or — before there is one — the one
/// `implied_init` would write (so `add` in a fresh repository already knows the agent CLI it
/// will find on PATH).
pub fn config_or_starter(ctx: &Context) -> Result<crate::core::config::Config, CliError> {
    if ctx.config_given || ctx.config_file.exists() {
        return ctx.config();
    }
    let text = starter_config(&agent_clis_on_path(&ctx.paths.repo));
    crate::core::config::parse_config("<starter config>", &text).map_err(diagnostics_error)
}

/// `.orch/` private and excluded from git, a starter config unless there is one, the ledger.
/// Returns what it wrote, in words.
fn set_up(ctx: &Context) -> Result<Vec<String>, CliError> {
    let mut said = Vec::new();
    secure_orch(&ctx.paths)?;
    let repo =
        crate::git::Repo::open(&ctx.paths.repo).map_err(|e| CliError::failed(e.to_string()))?;
    repo.ensure_excluded(".orch/")
        .map_err(|e| CliError::failed(e.to_string()))?;
    let cfg_path = ctx.paths.orch.join("config.toml");
    if !cfg_path.exists() {
        let found = agent_clis_on_path(&ctx.paths.repo);
        crate::os::files::write_private(&cfg_path, starter_config(&found).as_bytes())
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", cfg_path.display())))?;
        said.push(format!("wrote {}", cfg_path.display()));
        said.push(match found.first() {
            Some(first) => format!(
                "agent CLIs found on PATH: {} (default_agent = \"{first}\")",
                found.join(", ")
            ),
            None => format!(
                "no agent CLI (claude, codex, aider) found on PATH: install one, then set default_agent in {}",
                cfg_path.display()
            ),
        });
    }
    // Validate it now, so a broken file is reported where it was written.
    ctx.config()?;
    Ledger::open(&ctx.paths.ledger)?;
    Ok(said)
}

/// The built-in profiles whose program is on PATH, in order of preference.
fn agent_clis_on_path(cwd: &Path) -> Vec<String> {
    let cfg = crate::core::config::default_config();
    ["claude", "codex", "aider"]
        .iter()
        .filter(|name| {
            cfg.agents
                .get(**name)
                .and_then(|p| p.command.first())
                .is_some_and(|prog| crate::agent::pty::find_program(prog, cwd).is_ok())
        })
        .map(|n| n.to_string())
        .collect()
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The config `init` writes: a profile for each agent CLI found (the built-in one, written out
/// so it can be edited), the first of them as default_agent.
fn starter_config(found: &[String]) -> String {
    let mut out = String::from(
        "# orch-tui configuration. Every option, with its default and what it does:\n\
         # `orch-tui config --defaults` (config.example.toml in the orch-tui source);\n\
         # docs/agents.md explains the agent profiles.\n#\n# slots = 4\n",
    );
    let defaults = crate::core::config::default_config();
    match found.first() {
        Some(first) => out.push_str(&format!(
            "\n# Agent CLIs found on PATH by `orch-tui init`: {}.\ndefault_agent = \"{first}\"\n",
            found.join(", ")
        )),
        None => out.push_str(
            "\n# No agent CLI (claude, codex, aider) was on PATH when `orch-tui init` ran: install\n\
             # one and name it here, or give each task `agent = \"...\"` in the plan.\n\
             # default_agent = \"claude\"\n",
        ),
    }
    for name in found {
        let Some(p) = defaults.agents.get(name) else {
            continue;
        };
        out.push_str(&format!(
            "\n[agents.{name}]\ncommand = {}\ninteractive = {}\nmode = \"{}\"\nmax_concurrent = {}\n",
            toml_list(&p.command),
            toml_list(&p.interactive),
            p.mode.as_str(),
            p.max_concurrent
        ));
    }
    out
}

pub fn validate(file: &Path, cfg: &crate::core::config::Config) -> CliResult {
    let plan = load::load_plan_checked(file, cfg).map_err(diagnostics_error)?;
    // Fake work merged as if real is the worst surprise a plan can hold: say so, loudly.
    for (profile, tasks) in crate::core::config::tasks_on_simulator(&plan, cfg) {
        let list: Vec<String> = tasks.iter().map(|t| format!("`{t}`")).collect();
        out::warn(&format!(
            "WARNING: {} task{} will run on `{profile}`, the built-in SIMULATED agent, which does fake work: {}\n  hint: give them a real agent (agent = \"claude\" in the plan, or default_agent in .orch/config.toml); `orch-tui demo` is the place for the simulator",
            tasks.len(),
            if tasks.len() == 1 { "" } else { "s" },
            list.join(", ")
        ));
    }
    out::say(&format!(
        "{}: ok, plan `{}` with {} task{}",
        file.display(),
        plan.name,
        plan.tasks.len(),
        if plan.tasks.len() == 1 { "" } else { "s" }
    ));
    Ok(EXIT_OK)
}

/// Validate the plan against the config, then load it. Nothing is written unless both are valid.
pub fn load_into(ctx: &Context, file: &Path) -> Result<crate::ledger::LoadReport, CliError> {
    let plan = load::load_plan(file).map_err(diagnostics_error)?;
    let cfg = ctx.config()?;
    let mut problems = crate::core::config::check_plan_against_config(&plan, &cfg);
    if problems.is_empty() {
        problems = load::check_programs(&plan, &cfg, &ctx.paths.repo);
    }
    if !problems.is_empty() {
        return Err(diagnostics_error(problems));
    }
    let mut ledger = ctx.open_ledger()?;
    let defaults = TaskDefaults {
        max_attempts: cfg.retry.max_attempts,
        budget_time_ms: cfg.task_budget.time_ms,
        budget_tokens: cfg.task_budget.tokens,
        budget_cost_usd: cfg.task_budget.cost_usd,
    };
    Ok(ledger.load_plan(&plan, &file.display().to_string(), &defaults)?)
}

pub fn load(ctx: &Context, file: &Path) -> CliResult {
    let report = load_into(ctx, file)?;
    out::say(&format!(
        "loaded {}: {} added, {} changed, {} unchanged",
        file.display(),
        report.added.len(),
        report.changed.len(),
        report.unchanged
    ));
    crate::engine::poke(&ctx.paths.orch);
    Ok(EXIT_OK)
}
