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
    secure_orch(&ctx.paths)?;
    let repo =
        crate::git::Repo::open(&ctx.paths.repo).map_err(|e| CliError::failed(e.to_string()))?;
    repo.ensure_excluded(".orch/")
        .map_err(|e| CliError::failed(e.to_string()))?;
    let cfg_path = ctx.paths.orch.join("config.toml");
    if !cfg_path.exists() {
        crate::os::files::write_private(&cfg_path, STARTER_CONFIG.as_bytes())
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", cfg_path.display())))?;
        out::say(&format!("wrote {}", cfg_path.display()));
    }
    // Validate it now, so a broken file is reported where it was written.
    ctx.config()?;
    Ledger::open(&ctx.paths.ledger)?;
    out::say(&format!("ledger ready at {}", ctx.paths.ledger.display()));
    out::say("next: write plan.toml, then `orch-tui plan validate plan.toml` and `orch-tui run`");
    Ok(EXIT_OK)
}

const STARTER_CONFIG: &str = "\
# orch-tui configuration. Every option, with its default, is in config.example.toml at the
# orch-tui repository root; this file only needs what you change.
#
# slots = 4
# default_agent = \"sim\"
";

pub fn validate(file: &Path, cfg: &crate::core::config::Config) -> CliResult {
    let plan = load::load_plan_checked(file, cfg).map_err(diagnostics_error)?;
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
    let problems = crate::core::config::check_plan_against_config(&plan, &cfg);
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
