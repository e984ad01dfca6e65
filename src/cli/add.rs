//! `orch-tui add PROMPT [...]`: a task without a plan file; `orch-tui edit TASK`: a new prompt
//! for a task whose next attempt has not started. Both also while a supervisor runs: they write
//! the ledger in one transaction and poke it.

use std::io::Read;

use super::{CliError, CliResult, Context, EXIT_OK, diagnostics_error};
use crate::core::new_task::{Draft, about_flag};
use crate::core::state::TaskState;
use crate::engine::new_tasks::{
    Edited, add_task, draft_task, edit_task, existing_tasks, one_task_plan, prompt_of,
};
use crate::os::out;

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The instructions for the agent ("-": read them from standard input).
    pub prompt: String,
    /// The task id (a-z, 0-9, '-'); default: made from the title.
    #[arg(long)]
    pub id: Option<String>,
    /// One line saying what the task does; default: the prompt's first line.
    #[arg(long)]
    pub title: Option<String>,
    /// Tasks that must be merged first (comma-separated, or repeated).
    #[arg(long, value_delimiter = ',', value_name = "TASK")]
    pub after: Vec<String>,
    /// The agent profile that runs it (default: the config's default_agent).
    #[arg(long, value_name = "PROFILE")]
    pub agent: Option<String>,
    /// Limits, any of: time=20m,tokens=400000,cost_usd=3 (the config's task budget fills in
    /// the rest).
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub budget: Option<String>,
    /// Higher runs first among ready tasks.
    #[arg(long, allow_hyphen_values = true)]
    pub priority: Option<i64>,
    /// A command its result must pass (repeatable), besides the config's [funnel] checks.
    #[arg(long = "check", value_name = "CMD")]
    pub checks: Vec<String>,
}

#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct EditArgs {
    /// The new prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Read the new prompt from this file ("-": standard input).
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<std::path::PathBuf>,
    /// Edit the prompt in $VISUAL or $EDITOR (default vi).
    #[arg(long)]
    pub editor: bool,
}

pub fn add(ctx: &Context, args: AddArgs) -> CliResult {
    let prompt = if args.prompt == "-" {
        read_stdin()?
    } else {
        args.prompt
    };
    let draft = Draft {
        prompt,
        id: args.id,
        title: args.title,
        after: args
            .after
            .into_iter()
            .map(|a| a.trim().to_string())
            .collect(),
        agent: args.agent,
        budget: args.budget,
        priority: args.priority,
        checks: args.checks,
    };
    let cfg = super::init::config_or_starter(ctx)?;
    // Everything is checked before anything is created: a refused task leaves no trace.
    let existing = if ctx.ledger_exists() {
        existing_tasks(&ctx.open_ledger()?)?
    } else {
        Default::default()
    };
    let spec = draft_task(&existing, &draft, &cfg).map_err(diagnostics_error)?;
    let programs = super::load::check_programs(&one_task_plan(&spec), &cfg, &ctx.paths.repo);
    if !programs.is_empty() {
        let diags = programs.into_iter().map(|d| about_flag("--agent", d));
        return Err(diagnostics_error(diags.collect()));
    }
    if !ctx.ledger_exists() {
        super::init::implied_init(ctx)?;
    }
    let mut ledger = ctx.open_ledger()?;
    let added = add_task(&mut ledger, &spec, &cfg)?;
    let running = crate::os::supervisor_running(&ctx.paths.orch).is_some();
    let next = match (added.state, running) {
        (TaskState::Blocked, _) => format!(
            "blocked: {}; `orch-tui retry` that task to unblock it",
            added
                .reason
                .as_deref()
                .unwrap_or("an upstream task did not finish")
        ),
        (TaskState::Pending, true) => {
            "pending: it starts once its dependencies are merged".to_string()
        }
        (_, true) => "the running supervisor picks it up now".to_string(),
        (_, false) => "no supervisor runs: `orch-tui run` (or `orch-tui`) starts it".to_string(),
    };
    out::say(&format!("added `{}` ({}): {next}", added.id, added.state));
    crate::engine::poke(&ctx.paths.orch);
    Ok(EXIT_OK)
}

pub fn edit(ctx: &Context, task: &str, args: EditArgs) -> CliResult {
    let mut ledger = ctx.open_ledger()?;
    let prompt = match (args.prompt, args.prompt_file) {
        (Some(p), _) => p,
        (None, Some(f)) if f.as_os_str() == "-" => read_stdin()?,
        (None, Some(f)) => std::fs::read_to_string(&f).map_err(|e| {
            CliError::bad_input(format!(
                "--prompt-file {}: cannot read it: {e}; nothing was changed",
                f.display()
            ))
        })?,
        (None, None) => {
            // Refuse before the editor opens, so no typing is lost to a refusal after it.
            let row = ledger.task(task)?;
            if let Some(row) = &row {
                let hash = crate::core::plan::content_hash(&row.prompt);
                crate::core::new_task::decide_edit(task, row.state, &hash, "-")
                    .map_err(CliError::bad_input)?;
            }
            let current = prompt_of(&ledger, task)?;
            in_editor(ctx, task, &current)?
        }
    };
    match edit_task(&mut ledger, task, &prompt)? {
        Edited::Unchanged => {
            out::say(&format!("{task}: the prompt is unchanged; nothing written"));
        }
        Edited::Changed { version, state } => {
            let next = match state {
                TaskState::Paused => "; `orch-tui resume` it to start the next attempt",
                TaskState::Failed | TaskState::Escalated | TaskState::Cancelled => {
                    "; `orch-tui retry` it to start the next attempt"
                }
                _ => "; its next attempt uses it",
            };
            out::say(&format!(
                "{task}: prompt changed (spec version {version}){next}"
            ));
            crate::engine::poke(&ctx.paths.orch);
        }
    }
    Ok(EXIT_OK)
}

fn read_stdin() -> Result<String, CliError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| CliError::bad_input(format!("cannot read the prompt from stdin: {e}")))?;
    Ok(s)
}

/// The prompt as the human leaves it in their editor: a private file under `.orch/`, removed
/// afterwards. An editor that fails (or is quit with an error, like `:cq` in vim) changes
/// nothing.
fn in_editor(ctx: &Context, task: &str, current: &str) -> Result<String, CliError> {
    let file = ctx.paths.orch.join(format!("edit-{task}.md"));
    crate::os::files::write_private(&file, current.as_bytes())
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", file.display())))?;
    let set = |name: &str| std::env::var(name).ok().filter(|e| !e.trim().is_empty());
    let editor = set("VISUAL")
        .or_else(|| set("EDITOR"))
        .unwrap_or_else(|| "vi".into());
    // $EDITOR may carry arguments ("code --wait"): a shell splits it, the file is passed apart.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("orch-tui-editor")
        .arg(&file)
        .status();
    let text = std::fs::read_to_string(&file);
    let _ = std::fs::remove_file(&file);
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            return Err(CliError::bad_input(format!(
                "the editor `{editor}` exited with {s}: nothing was changed"
            )));
        }
        Err(e) => {
            return Err(CliError::bad_input(format!(
                "cannot start the editor `{editor}`: {e}; set $EDITOR, or use --prompt"
            )));
        }
    }
    text.map_err(|e| CliError::failed(format!("cannot read back {}: {e}", file.display())))
}
