//! `demo`: a scratch repository holding a small project, the embedded demo plan, simulated
//! agents; no API key, nothing outside the scratch folder is touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CliError, CliResult, Context};
use crate::os::out;

const DEMO_PLAN: &str = include_str!("../../assets/demo/plan.toml");
const DEMO_CONFIG: &str = include_str!("../../assets/demo/config.toml");

const PROJECT: &[(&str, &str)] = &[
    (
        "README.md",
        "# wordstat\n\nA tiny text-statistics tool, built task by task by simulated agents.\n",
    ),
    (".gitignore", "__pycache__/\n"),
    (
        "sample.txt",
        "the quick brown fox\njumps over the lazy dog\nthe end\n",
    ),
];

fn git(dir: &Path, args: &[&str]) -> Result<(), CliError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| CliError::failed(format!("cannot run git: {e}; is git installed?")))?;
    if !out.status.success() {
        return Err(CliError::failed(format!(
            "git {} failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn scratch_dir(dir: Option<&Path>) -> Result<PathBuf, CliError> {
    let path = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!(
            "orch-demo-{}-{}",
            std::process::id(),
            crate::ledger::now_ms()
        )),
    };
    if path.exists()
        && std::fs::read_dir(&path)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(CliError::bad_input(format!(
            "{} exists and is not empty: the demo needs a new or empty folder (pass --dir NEW_DIR)",
            path.display()
        )));
    }
    std::fs::create_dir_all(&path)
        .map_err(|e| CliError::failed(format!("cannot create {}: {e}", path.display())))?;
    Ok(path)
}

pub fn demo(headless: bool, dir: Option<&Path>, slots: Option<usize>) -> CliResult {
    let root = scratch_dir(dir)?;
    for (name, text) in PROJECT {
        std::fs::write(root.join(name), text)
            .map_err(|e| CliError::failed(format!("cannot write the demo project: {e}")))?;
    }
    // In the TUI the agents draw their progress slowly enough to watch; headless runs (CI,
    // scripts) keep the fast default.
    let plan = if headless {
        DEMO_PLAN.to_string()
    } else {
        DEMO_PLAN.replace("@sim progress", "@sim speed 400ms\n@sim progress")
    };
    std::fs::write(root.join("plan.toml"), plan)
        .map_err(|e| CliError::failed(format!("cannot write the demo plan: {e}")))?;
    git(&root, &["init", "-q", "-b", "main"])?;
    git(&root, &["add", "-A"])?;
    git(
        &root,
        &[
            "-c",
            "user.name=orch-tui demo",
            "-c",
            "user.email=demo@orch.invalid",
            "commit",
            "-q",
            "-m",
            "wordstat: empty project and its plan",
        ],
    )?;
    out::say(&format!("demo repository: {}", root.display()));
    let ctx = Context::find(Some(&root), None)?;
    super::init::secure_orch(&ctx.paths)?;
    crate::os::files::write_private(&ctx.config_file, DEMO_CONFIG.as_bytes())
        .map_err(|e| CliError::failed(format!("cannot write the demo config: {e}")))?;
    let repo = crate::git::Repo::open(&root).map_err(|e| CliError::failed(e.to_string()))?;
    repo.ensure_excluded(".orch/")
        .map_err(|e| CliError::failed(e.to_string()))?;
    crate::ledger::Ledger::open(&ctx.paths.ledger)?;
    super::init::load_into(&ctx, &root.join("plan.toml"))?;
    super::run::block_stop_signals();
    let _log = super::run::init_tracing(&ctx.paths.logs);
    let mut config = ctx.config()?;
    if let Some(n) = slots {
        config.slots = n.clamp(1, 64);
    }
    let code = if headless {
        super::run::supervise(&ctx, config)?
    } else {
        super::run::supervise_tui(&ctx, config, false)?
    };
    out::say(&format!(
        "\nthe integration branch:  git -C {} log --format='%h %an: %s' orch/integration",
        root.display()
    ));
    Ok(code)
}
