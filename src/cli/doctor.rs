//! `orch-tui doctor` (DESIGN §7): git and its version, each agent profile's program, its
//! version and whether the flags its adapter passes are there (an offline self-test: the
//! program's own help text), the terminal, and what a run survives here (`survival.rs`). A
//! table; exit 1 on any problem.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{CliError, CliResult, Context, EXIT_OK, EXIT_UNFINISHED, load};
use crate::agent::adapter;
use crate::core::config::{Adapter, AgentProfile, Config};

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub what: String,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Worth knowing, not a problem (an unused built-in profile whose CLI is not installed).
    Note,
    Problem,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

pub fn doctor(repo: Option<&Path>, config: Option<&Path>) -> CliResult {
    let (cfg, cwd, user_profiles) = match Context::find(repo, config) {
        Ok(ctx) => {
            let cfg = ctx.config()?;
            let named = user_profile_names(&ctx.config_file);
            (cfg, ctx.paths.repo.clone(), named)
        }
        Err(_) => {
            let cfg = match config {
                Some(f) => load::load_config_required(f).map_err(super::diagnostics_error)?,
                None => crate::core::config::default_config(),
            };
            let cwd = std::env::current_dir().map_err(|e| {
                CliError::bad_input(format!("cannot read the current directory: {e}"))
            })?;
            (cfg, cwd, Vec::new())
        }
    };
    let rows = check_all(&cfg, &cwd, &user_profiles);
    crate::os::out::print(&render(&rows));
    let problems = rows.iter().filter(|r| r.status == Status::Problem).count();
    if problems == 0 {
        out!("doctor: no problems");
        Ok(EXIT_OK)
    } else {
        out!(
            "doctor: {problems} problem{}",
            if problems == 1 { "" } else { "s" }
        );
        Ok(EXIT_UNFINISHED)
    }
}

/// Profiles the user's config file defines or changes (their CLI must be there).
fn user_profile_names(config_file: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(config_file) else {
        return Vec::new();
    };
    let Ok(v) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    v.get("agents")
        .and_then(|a| a.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn check_all(cfg: &Config, cwd: &Path, user_profiles: &[String]) -> Vec<Row> {
    let mut rows = vec![git_row()];
    for p in cfg.agents.values() {
        let used = cfg.default_agent == p.name
            || cfg.funnel.reviewer.as_deref() == Some(p.name.as_str())
            || user_profiles.contains(&p.name);
        rows.extend(profile_rows(p, cwd, used));
    }
    if cfg.default_agent.is_empty() {
        rows.push(Row {
            what: "default_agent".into(),
            status: Status::Note,
            detail: "none: every task must name its agent (`orch-tui init` picks one it finds)"
                .into(),
        });
    } else if cfg
        .agents
        .get(&cfg.default_agent)
        .is_some_and(|p| p.adapter == Adapter::Sim)
    {
        rows.push(Row {
            what: "default_agent".into(),
            status: Status::Problem,
            detail: format!(
                "`{}` is the built-in simulator: tasks without `agent =` get fake work; set default_agent to a real agent",
                cfg.default_agent
            ),
        });
    }
    rows.push(terminal_row());
    rows.extend(super::survival::rows());
    rows
}

fn git_row() -> Row {
    match probe(Path::new("git"), &["--version"], Path::new(".")) {
        Ok(out) => {
            let version = out.split_whitespace().nth(2).unwrap_or("").to_string();
            let parts: Vec<u32> = version.split('.').filter_map(|n| n.parse().ok()).collect();
            let new_enough = parts.first().copied().unwrap_or(0) > 2
                || (parts.first() == Some(&2) && parts.get(1).copied().unwrap_or(0) >= 40);
            Row {
                what: "git".into(),
                status: if new_enough {
                    Status::Ok
                } else {
                    Status::Problem
                },
                detail: if new_enough {
                    version
                } else {
                    format!("{version}: orch-tui needs git 2.40 or newer (merge-tree --write-tree)")
                },
            }
        }
        Err(e) => Row {
            what: "git".into(),
            status: Status::Problem,
            detail: format!("{e}; install git 2.40 or newer"),
        },
    }
}

/// The program a profile starts, `{orch}` being this binary.
fn program_of(p: &AgentProfile) -> Option<String> {
    let first = p.command.first()?;
    if first.contains("{orch}") {
        let me = std::env::current_exe().ok()?;
        return Some(first.replace("{orch}", &me.to_string_lossy()));
    }
    Some(first.clone())
}

pub fn profile_rows(p: &AgentProfile, cwd: &Path, used: bool) -> Vec<Row> {
    let what = format!("agent {} ({})", p.name, p.adapter.as_str());
    let Some(name) = program_of(p) else {
        return vec![Row {
            what,
            status: Status::Problem,
            detail: "no command".into(),
        }];
    };
    let program = match crate::agent::pty::find_program(&name, cwd) {
        Ok(path) => path,
        Err(e) => {
            let status = if used { Status::Problem } else { Status::Note };
            let detail = if used {
                e.to_string()
            } else {
                format!("`{name}` not installed (profile unused)")
            };
            return vec![Row {
                what,
                status,
                detail,
            }];
        }
    };
    if p.adapter == Adapter::Sim {
        return vec![Row {
            what,
            status: Status::Ok,
            detail: "built-in simulator".into(),
        }];
    }
    let version = probe(&program, &["--version"], cwd)
        .map(|v| v.lines().next().unwrap_or("").trim().to_string());
    let mut rows = vec![match &version {
        Ok(v) => Row {
            what: what.clone(),
            status: Status::Ok,
            detail: format!("{} · {v}", program.display()),
        },
        Err(e) => Row {
            what: what.clone(),
            status: Status::Problem,
            detail: format!("{}: {e}", program.display()),
        },
    }];
    for check in adapter::kind(p.adapter).flag_checks() {
        rows.push(flag_row(p, &program, cwd, check));
    }
    rows
}

fn flag_row(p: &AgentProfile, program: &Path, cwd: &Path, check: &adapter::FlagCheck) -> Row {
    let what = format!("  {} {}", p.name, check.args.join(" "));
    match probe(program, check.args, cwd) {
        Ok(help) => {
            let missing: Vec<&str> = check
                .flags
                .iter()
                .copied()
                .filter(|f| !help.contains(f))
                .collect();
            if missing.is_empty() {
                Row {
                    what,
                    status: Status::Ok,
                    detail: format!("has {}", check.flags.join(" ")),
                }
            } else {
                Row {
                    what,
                    status: Status::Problem,
                    detail: format!(
                        "missing {}: this version does not take the flags orch-tui passes; install a current one (see docs/agents.md)",
                        missing.join(" ")
                    ),
                }
            }
        }
        Err(e) => Row {
            what,
            status: Status::Problem,
            detail: e,
        },
    }
}

fn terminal_row() -> Row {
    let term = std::env::var("TERM").unwrap_or_default();
    let tty = unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1;
    let size = crossterm::terminal::size().ok();
    let detail = format!(
        "TERM={} · {} · {}",
        if term.is_empty() { "(unset)" } else { &term },
        if tty {
            "a terminal"
        } else {
            "not a terminal (the TUI needs one; `run --headless` does not)"
        },
        size.map_or("size unknown".to_string(), |(c, r)| format!("{c}x{r}"))
    );
    let small = size.is_some_and(|(c, r)| c < 80 || r < 24);
    Row {
        what: "terminal".into(),
        status: if tty && (term == "dumb" || small) {
            Status::Problem
        } else {
            Status::Ok
        },
        detail: if small && tty {
            format!("{detail}: the TUI needs at least 80x24")
        } else {
            detail
        },
    }
}

/// Runs `program args` with a deadline and returns what it printed (stdout and stderr).
fn probe(program: &Path, args: &[&str], cwd: &Path) -> Result<String, String> {
    let shown = format!("`{} {}`", program.display(), args.join(" "));
    let child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("DISABLE_AUTOUPDATER", "1")
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(PROBE_TIMEOUT) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("{shown}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on the child we started; the waiter thread reaps it.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            return Err(format!(
                "{shown} did not answer within {}s",
                PROBE_TIMEOUT.as_secs()
            ));
        }
    };
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{shown} failed ({}): {}", out.status, text.trim()))
    }
}

pub fn render(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.what.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for r in rows {
        let mark = match r.status {
            Status::Ok => "ok     ",
            Status::Note => "note   ",
            Status::Problem => "PROBLEM",
        };
        out.push_str(&format!("{mark}  {:width$}  {}\n", r.what, r.detail));
    }
    out
}
