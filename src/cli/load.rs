//! The I/O side of plan and config loading: read the files, hand the text to `core`, and turn
//! file-system problems into the same `Diagnostic`s (line 0: the file as a whole).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::core::config::{Config, check_plan_against_config, default_config, parse_config};
use crate::core::diag::Diagnostic;
use crate::core::plan::{Plan, parse_plan};

/// Reads and validates a plan file. Spec files named by its tasks are read relative to the
/// plan file's folder, so a plan and its `specs/` move together.
pub fn load_plan(path: &Path) -> Result<Plan, Vec<Diagnostic>> {
    let file = path.display().to_string();
    let text = read_text(path).map_err(|why| {
        vec![Diagnostic::whole_file(
            &file,
            format!("cannot read the plan: {why}"),
            "check the path; `orch-tui plan validate FILE` takes the plan file's path",
        )]
    })?;
    let dir = plan_dir(path);
    let specs = |spec: &str| -> Result<String, String> {
        let full = dir.join(spec);
        read_text(&full).map_err(|why| format!("{why} (looked for {})", full.display()))
    };
    parse_plan(&file, &text, &specs)
}

/// `load_plan`, then the checks that need the config (agents exist, capabilities match, each
/// agent's program can be started).
pub fn load_plan_checked(path: &Path, cfg: &Config) -> Result<Plan, Vec<Diagnostic>> {
    let plan = load_plan(path)?;
    let mut diags = check_plan_against_config(&plan, cfg);
    if diags.is_empty() {
        diags = check_programs(&plan, cfg, &plan_dir(path));
    }
    if diags.is_empty() {
        Ok(plan)
    } else {
        Err(diags)
    }
}

/// The configuration: the embedded defaults, overridden by the file at `path` if there is one.
/// `None`, or a path where no file exists (a repository without `.orch/config.toml`), gives the
/// defaults. Use `load_config_required` for a file the user named explicitly (`--config`).
pub fn load_config(path: Option<&Path>) -> Result<Config, Vec<Diagnostic>> {
    let Some(path) = path else {
        return Ok(default_config());
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(default_config()),
        _ => load_config_required(path),
    }
}

/// Like `load_config`, but a missing file is an error: when the user passed `--config FILE`,
/// silently running on defaults would hide a typo in the path.
pub fn load_config_required(path: &Path) -> Result<Config, Vec<Diagnostic>> {
    let file = path.display().to_string();
    let text = read_text(path).map_err(|why| {
        vec![Diagnostic::whole_file(
            &file,
            format!("cannot read the config: {why}"),
            "check the path, or run `orch-tui init` to create .orch/config.toml",
        )]
    })?;
    parse_config(&file, &text)
}

/// Every agent profile the plan uses must have a program that can be started: found on PATH
/// (or at its path), executable, its `#!` interpreter present. Otherwise each attempt would
/// fail at spawn. One error per profile, at the first task that uses it.
pub fn check_programs(plan: &Plan, cfg: &Config, cwd: &Path) -> Vec<Diagnostic> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for t in &plan.tasks {
        let name = t.agent.as_deref().unwrap_or(&cfg.default_agent);
        let Some(profile) = cfg.agents.get(name) else {
            continue;
        };
        if !seen.insert(name.to_string()) {
            continue;
        }
        let argv = match profile.mode {
            crate::core::config::AgentMode::Headless => &profile.command,
            crate::core::config::AgentMode::Interactive => &profile.interactive,
        };
        let Some(program) = argv.first() else {
            continue;
        };
        // `{orch}` is this binary, which is running.
        if program.contains("{orch}") {
            continue;
        }
        if let Err(e) = crate::agent::pty::find_program(program, cwd) {
            let users: Vec<String> = plan
                .tasks
                .iter()
                .filter(|u| u.agent.as_deref().unwrap_or(&cfg.default_agent) == name)
                .map(|u| format!("`{}`", u.id))
                .collect();
            let (line, col) = if t.agent_line > 0 {
                (t.agent_line, 1)
            } else {
                (t.line, 1)
            };
            out.push(Diagnostic {
                file: plan.file.clone(),
                line,
                col,
                message: format!(
                    "agent `{name}` cannot be started: {e} (used by {})",
                    users.join(", ")
                ),
                hint: format!(
                    "install `{program}`, put its full path in [agents.{name}] command, or give these tasks another agent (`orch-tui doctor` checks every profile)"
                ),
            });
        }
    }
    out
}

/// The folder relative paths in the plan are resolved against ("plan.toml" -> ".").
fn plan_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A whole file as UTF-8 text, with a leading byte-order mark dropped (some Windows editors
/// write one; TOML does not allow it). The error is a short human reason.
fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => "no such file".to_string(),
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ => e.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "it is not UTF-8 text (bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}
