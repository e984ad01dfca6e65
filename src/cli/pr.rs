//! `orch-tui pr`: push the integration branch and open one pull request with `gh` (or, per task,
//! a stack of them), or print the exact commands when `gh` is not installed. `orch-tui shell
//! TASK`: a shell in the task's worktree.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::core::pull_request::{body, section, title};
use crate::engine::pr_facts::{Facts, gather};
use crate::os::out;

#[derive(clap::Args, Debug)]
pub struct PrArgs {
    /// The branch the pull request goes into (default: the branch checked out in your working
    /// tree).
    #[arg(long)]
    pub base: Option<String>,
    /// The remote to push to.
    #[arg(long, default_value = "origin")]
    pub remote: String,
    /// One pull request per task, stacked in merge order (each based on the one before), for
    /// teams that review task by task.
    #[arg(long)]
    pub per_task: bool,
    /// Open them as drafts.
    #[arg(long)]
    pub draft: bool,
    /// Only print the commands (and write the bodies); push nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One pull request to open: the ref to push, the branch it lands on, its text.
struct Request {
    push: String,
    head: String,
    base: String,
    title: String,
    body_file: PathBuf,
}

pub fn pr(ctx: &Context, args: PrArgs) -> CliResult {
    let cfg = ctx.config()?;
    let ledger = ctx.open_ledger()?;
    let repo = crate::git::Repo::open(&ctx.paths.repo)
        .map_err(|e| CliError::bad_input(e.to_string()))?
        .with_timeout(std::time::Duration::from_millis(cfg.git.timeout_ms));
    let branch = cfg.integration_branch.clone();
    let base = match &args.base {
        Some(b) => b.clone(),
        None => current_branch(&ctx.paths.repo)
            .filter(|b| *b != branch)
            .ok_or_else(|| {
                CliError::bad_input(
                    "your working tree is on no branch (or on the integration branch): name the \
                 branch the pull request goes into with --base, e.g. --base main",
                )
            })?,
    };
    let rev = |r: &str| repo.rev_parse(&format!("refs/heads/{r}")).ok().flatten();
    let tip = rev(&branch).ok_or_else(|| {
        CliError::bad_input(format!(
            "no branch `{branch}` yet: nothing was merged; `orch-tui run` first"
        ))
    })?;
    let base_tip = rev(&base).ok_or_else(|| {
        CliError::bad_input(format!(
            "--base {base}: no such local branch; name one of `git branch`"
        ))
    })?;
    let facts =
        gather(&ledger, &repo, &tip, &base_tip).map_err(|e| CliError::failed(e.to_string()))?;
    if facts.merged.is_empty() {
        return Err(CliError::bad_input(format!(
            "`{branch}` holds no merged task that `{base}` lacks: nothing to open a pull request for"
        )));
    }
    let requests = write_bodies(ctx, &args, &ledger.plan_name()?, &facts, &branch, &base)?;
    let gh = crate::agent::pty::find_program("gh", &ctx.paths.repo).ok();
    let push = push_command(&args.remote, &requests);
    if args.dry_run || gh.is_none() {
        if gh.is_none() {
            out::say(
                "gh (the GitHub CLI) is not installed; to open the pull request yourself, run:",
            );
        } else {
            out::say("--dry-run: nothing was pushed; the commands would be:");
        }
        out::say(&format!("  {}", shell_line(&push)));
        for r in &requests {
            out::say(&format!("  {}", shell_line(&create_command(r, args.draft))));
        }
        return Ok(EXIT_OK);
    }
    let gh = gh.unwrap_or_else(|| PathBuf::from("gh"));
    if !has_remote(&ctx.paths.repo, &args.remote) {
        return Err(CliError::bad_input(format!(
            "no git remote `{}`: add one (`git remote add {} URL`) or name yours with --remote",
            args.remote, args.remote
        )));
    }
    run_visible(&ctx.paths.repo, Path::new("git"), &push[1..], "git push")?;
    for r in &requests {
        let existing = Command::new(&gh)
            .args(["pr", "view", &r.head, "--json", "url", "--jq", ".url"])
            .current_dir(&ctx.paths.repo)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|u| !u.is_empty());
        match existing {
            Some(url) => {
                // The branch moved on: its pull request's text follows.
                let edit = edit_command(r);
                run_visible(&ctx.paths.repo, &gh, &edit[1..], "gh pr edit")?;
                out::say(&format!("updated {url}"));
            }
            None => {
                let create = create_command(r, args.draft);
                run_visible(&ctx.paths.repo, &gh, &create[1..], "gh pr create")?;
            }
        }
    }
    Ok(EXIT_OK)
}

/// Each request's body under `.orch/pr/`, and the requests in the order to open them.
fn write_bodies(
    ctx: &Context,
    args: &PrArgs,
    plan: &Option<String>,
    facts: &Facts,
    branch: &str,
    base: &str,
) -> Result<Vec<Request>, CliError> {
    let dir = ctx.paths.orch.join("pr");
    crate::os::files::private_dir(&dir)
        .map_err(|e| CliError::failed(format!("cannot create {}: {e}", dir.display())))?;
    let write = |name: &str, text: &str| {
        let file = dir.join(format!("{}.md", name.replace('/', "-")));
        crate::os::files::write_private(&file, text.as_bytes())
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", file.display())))?;
        Ok::<PathBuf, CliError>(file)
    };
    let tasks: Vec<_> = facts.merged.iter().map(|(t, _)| t.clone()).collect();
    if !args.per_task {
        let text = body(branch, base, &tasks, &facts.left_out);
        return Ok(vec![Request {
            push: format!("{branch}:refs/heads/{branch}"),
            head: branch.to_string(),
            base: base.to_string(),
            title: title(plan.as_deref(), &tasks),
            body_file: write(branch, &text)?,
        }]);
    }
    let mut out = Vec::new();
    let mut below = base.to_string();
    let total = facts.merged.len();
    for (i, (t, merge_tip)) in facts.merged.iter().enumerate() {
        let head = format!("orch/pr/{}", t.id);
        let stacked = if i == 0 {
            format!("Part 1 of {total}, onto `{base}`.")
        } else {
            format!(
                "Part {} of {total}, stacked on `{below}`: merge the parts in order (when a \
                 part's branch is deleted on merge, GitHub retargets the next one).",
                i + 1
            )
        };
        let text = format!("{stacked}\n\n{}", section(t));
        out.push(Request {
            push: format!("{merge_tip}:refs/heads/{head}"),
            head: head.clone(),
            base: below.clone(),
            title: t.title.clone(),
            body_file: write(&head, &text)?,
        });
        below = head;
    }
    Ok(out)
}

fn push_command(remote: &str, requests: &[Request]) -> Vec<String> {
    let mut cmd = vec!["git".to_string(), "push".into(), remote.into()];
    cmd.extend(requests.iter().map(|r| r.push.clone()));
    cmd
}

fn create_command(r: &Request, draft: bool) -> Vec<String> {
    let mut cmd: Vec<String> = ["gh", "pr", "create", "--base", &r.base, "--head", &r.head]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cmd.extend(["--title".into(), r.title.clone(), "--body-file".into()]);
    cmd.push(r.body_file.to_string_lossy().into_owned());
    if draft {
        cmd.push("--draft".into());
    }
    cmd
}

fn edit_command(r: &Request) -> Vec<String> {
    vec![
        "gh".into(),
        "pr".into(),
        "edit".into(),
        r.head.clone(),
        "--title".into(),
        r.title.clone(),
        "--body-file".into(),
        r.body_file.to_string_lossy().into_owned(),
    ]
}

/// A command as a line to paste into a POSIX shell.
fn shell_line(argv: &[String]) -> String {
    let quote = |a: &String| {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
        if plain {
            a.clone()
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    argv.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Runs a command with its output on the terminal (git's progress, gh's URL); fails loudly.
fn run_visible(dir: &Path, program: &Path, args: &[String], what: &str) -> Result<(), CliError> {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| CliError::failed(format!("cannot run {what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{what} failed ({status}): see its message above; nothing after it was done"
        )))
    }
}

fn git_out(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn current_branch(dir: &Path) -> Option<String> {
    git_out(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"]).filter(|b| !b.is_empty())
}

fn has_remote(dir: &Path, remote: &str) -> bool {
    git_out(dir, &["remote"]).is_some_and(|r| r.lines().any(|l| l == remote))
}

/// `orch-tui shell TASK`: `$SHELL` (else /bin/sh) in the newest worktree of the task; its exit
/// code is the command's.
pub fn shell(ctx: &Context, task: &str) -> CliResult {
    let ledger = ctx.open_ledger()?;
    let row = ledger.task(task)?.ok_or_else(|| {
        CliError::bad_input(format!(
            "no task `{task}` in the ledger: `orch-tui status` lists the tasks"
        ))
    })?;
    let attempts = ledger.attempts(task)?;
    let newest = attempts
        .iter()
        .filter(|a| a.role == crate::core::domain::Role::Agent)
        .max_by_key(|a| a.n.0);
    let Some(a) = newest else {
        return Err(CliError::bad_input(format!(
            "task `{task}` has no worktree: no attempt has started yet (it is {})",
            row.state
        )));
    };
    let dir = a.worktree.clone().unwrap_or_default();
    if dir.is_empty() || !Path::new(&dir).is_dir() {
        let why = match row.state {
            crate::core::state::TaskState::Done => {
                "it is done: its worktree was removed after the merge (the work is on the \
                 integration branch)"
                    .to_string()
            }
            s => format!(
                "its attempt {}'s worktree is gone (it is {s}; `orch-tui gc` or a retry may have \
                 removed it)",
                a.n
            ),
        };
        return Err(CliError::bad_input(format!(
            "task `{task}` has no worktree: {why}"
        )));
    }
    let sh = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let live = a.state.is_live();
    out::warn(&format!(
        "orch-tui: {sh} in {dir} (task `{task}`, attempt {}){}; exit to come back",
        a.n,
        if live {
            ": its agent is still working here, and what you change becomes part of its attempt"
        } else {
            ""
        }
    ));
    let status = Command::new(&sh)
        .current_dir(&dir)
        .env("ORCH_SHELL_TASK", task)
        .status()
        .map_err(|e| CliError::failed(format!("cannot start {sh}: {e}; set $SHELL")))?;
    Ok(status.code().unwrap_or(super::EXIT_UNFINISHED))
}
