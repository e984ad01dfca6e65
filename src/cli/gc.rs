//! `orch-tui gc [--dry-run] [--older-than AGE]`: drops backup refs older than AGE and the
//! leftovers of finished tasks, and says exactly what it removed (docs/git.md, "orch-tui gc").
//!
//! It refuses (exit 3) while a supervisor runs: the worktrees, prompts and branches it would
//! remove may be in use. `--dry-run` only reads, so it works either way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{CliError, CliResult, Context, EXIT_OK, EXIT_UNFINISHED};
use crate::core::duration::parse_duration;
use crate::core::state::TaskState;
use crate::git::{BackupRef, OrchWorktree, Repo, backup_ref_name};

/// Backups younger than this are kept unless `--older-than` says otherwise.
pub const DEFAULT_AGE: &str = "30d";

/// What gc found to remove, and notes on what it keeps.
#[derive(Default)]
struct Plan {
    /// Worktree, why it goes, and the backup ref for its work (None: a scratch worktree).
    worktrees: Vec<(OrchWorktree, String, Option<String>)>,
    backups: Vec<(BackupRef, String)>,
    prompts: Vec<(PathBuf, String)>,
    branches: Vec<String>,
    /// The integration branch the `branches` are merged into.
    integration: String,
    kept: Vec<String>,
}

pub fn gc(ctx: &Context, dry_run: bool, older_than: Option<&str>) -> CliResult {
    let age_text = older_than.unwrap_or(DEFAULT_AGE);
    let age_ms = parse_duration(age_text).map_err(|e| {
        CliError::bad_input(format!(
            "--older-than {age_text:?}: {e}; write a duration such as \"30d\", \"12h\", or \"0s\" for all"
        ))
    })?;
    let cfg = ctx.config()?;
    let ledger = ctx.open_ledger()?;
    let repo = Repo::open(&ctx.paths.repo)
        .map_err(|e| CliError::failed(e.to_string()))?
        .with_timeout(Duration::from_millis(cfg.git.timeout_ms));
    let _lock = match lock_out_supervisor(&ctx.paths.orch) {
        Ok(lock) => Some(lock),
        Err(holder) if dry_run => {
            out!("note: a supervisor ({holder}) is running; gc will refuse until it stops");
            None
        }
        Err(holder) => {
            return Err(CliError::refused(format!(
                "a supervisor ({holder}) is running on this repository, and gc would remove \
                 worktrees, prompts and branches it may be using; stop it first (q in the TUI, \
                 or Ctrl-C), then run `orch-tui gc` again (`orch-tui gc --dry-run` shows what \
                 would go)"
            )));
        }
    };
    let states: BTreeMap<String, Option<TaskState>> = ledger
        .tasks()?
        .into_iter()
        .map(|t| (t.id.clone(), Some(t.state)))
        .collect();
    let mut plan = Plan {
        integration: cfg.integration_branch.clone(),
        ..Plan::default()
    };
    let git_err = |e: crate::git::GitError| CliError::failed(e.to_string());
    plan_worktrees(&mut plan, &repo, &ctx.paths.worktrees, &states).map_err(git_err)?;
    plan_backups(&mut plan, &repo, age_ms, age_text).map_err(git_err)?;
    plan_prompts(&mut plan, &ctx.paths.prompts, &states);
    plan_branches(&mut plan, &repo, &cfg.integration_branch, &states).map_err(git_err)?;
    let mut failures = if dry_run {
        show(&plan, &repo)
    } else {
        execute(&plan, &repo)
    };
    failures += idle_pool(&repo, &cfg, dry_run);
    failures += staging_leftovers(&repo, dry_run);
    failures += spare_leftovers(&crate::agent::holder::holders_dir(&ctx.paths.orch), dry_run);
    super::attach::gc_holders(ctx, dry_run)?;
    for note in &plan.kept {
        out!("kept {note}");
    }
    if dry_run {
        out!("dry run: nothing was removed");
    }
    Ok(if failures == 0 {
        EXIT_OK
    } else {
        EXIT_UNFINISHED
    })
}

/// Holds `.orch/supervisor.lock` while gc runs, so no supervisor starts meanwhile. Err: who
/// holds it (the lock file names the holder's pid).
fn lock_out_supervisor(orch: &Path) -> Result<crate::os::lock::Held, String> {
    use crate::os::lock::{LockError, lock_exclusive_as};
    lock_exclusive_as(orch, "(orch-tui gc)").map_err(|e| match e {
        LockError::HeldBy(Some(pid)) => format!("pid {pid}"),
        LockError::HeldBy(None) => "pid unknown".to_string(),
        LockError::Io(msg) => msg,
    })
}

/// The idle worktrees of the pool (a run that was killed leaves them; a run that ends drains
/// them): checkouts of nothing of value. Returns the failures.
fn idle_pool(repo: &Repo, cfg: &crate::core::config::Config, dry_run: bool) -> usize {
    let pool = crate::engine::real_git::RealGit::default_pool(cfg.slots, &cfg.worktree);
    let idle = repo.pool_idle(&pool).map(|v| v.len()).unwrap_or(0);
    if idle == 0 {
        return 0;
    }
    if dry_run {
        out!(
            "would remove {idle} idle worktree(s) of the pool under .orch/pool (they hold nothing)"
        );
        return 0;
    }
    match repo.drain_pool(&pool) {
        Ok(n) => {
            out!("removed {n} idle worktree(s) of the pool under .orch/pool");
            0
        }
        Err(e) => {
            out!("could not remove the pool's idle worktrees: {e}");
            1
        }
    }
}

/// Admin folders of new worktrees a crash left before renaming them into place
/// (`git::worktree_new`): they hold nothing.
fn staging_leftovers(repo: &Repo, dry_run: bool) -> usize {
    remove_folders(
        &repo.staging_leftovers(),
        "half-made worktree admin folder(s) under .git/orch-staging",
        "a crash's leftovers; they hold nothing",
        dry_run,
    )
}

/// The folders of spare holders killed before they got an attempt (`holder::spare`): their
/// empty logs and a dead socket.
fn spare_leftovers(holders: &std::path::Path, dry_run: bool) -> usize {
    remove_folders(
        &crate::agent::holder::spare::leftovers(holders),
        "spare holder folder(s) under .orch/holders",
        "spares that never got an attempt; they hold empty logs",
        dry_run,
    )
}

/// Removes `left`, folders of one kind (`what`, `why` they can go), and says so; 1 when some
/// could not be removed.
fn remove_folders(left: &[std::path::PathBuf], what: &str, why: &str, dry_run: bool) -> usize {
    let n = left.len();
    if n == 0 {
        return 0;
    }
    if dry_run {
        out!("would remove {n} {what} ({why})");
        return 0;
    }
    let failed: Vec<String> = left
        .iter()
        .filter_map(|p| {
            std::fs::remove_dir_all(p)
                .err()
                .map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    if failed.is_empty() {
        out!("removed {n} {what}");
        return 0;
    }
    out!("could not remove these {what}: {}", failed.join("; "));
    1
}

fn is_finished(state: Option<TaskState>) -> bool {
    matches!(
        state,
        Some(TaskState::Done | TaskState::Cancelled | TaskState::Failed)
    )
}

/// Why a task's leftovers may go (None: the task is still in progress).
fn finished_why(task: &str, states: &BTreeMap<String, Option<TaskState>>) -> Option<String> {
    match states.get(task) {
        None => Some(format!("task {task} is unknown to the ledger")),
        Some(s) if is_finished(*s) => {
            let name = s.map_or("?", TaskState::as_str);
            Some(format!("task {task} is {name}"))
        }
        Some(_) => None,
    }
}

fn plan_worktrees(
    plan: &mut Plan,
    repo: &Repo,
    dir: &Path,
    states: &BTreeMap<String, Option<TaskState>>,
) -> Result<(), crate::git::GitError> {
    let mut in_progress = 0;
    for wt in repo.orch_worktrees(dir)? {
        // Task ids cannot start with `_`: such a worktree is the merge queue's scratch space.
        if wt.name.starts_with('_') {
            plan.worktrees
                .push((wt, "scratch worktree of the merge queue".into(), None));
            continue;
        }
        let (why, backup) = match wt.task_attempt() {
            Some((task, n)) => match finished_why(task, states) {
                Some(why) => (why, backup_ref_name(task, n)),
                None => {
                    in_progress += 1;
                    continue;
                }
            },
            None => (
                "not an attempt's worktree".to_string(),
                format!("{}{}/gc", crate::git::BACKUP_PREFIX, wt.name),
            ),
        };
        plan.worktrees.push((wt, why, Some(backup)));
    }
    if in_progress > 0 {
        plan.kept.push(format!(
            "{in_progress} worktree(s) of tasks still in progress"
        ));
    }
    Ok(())
}

fn plan_backups(
    plan: &mut Plan,
    repo: &Repo,
    age_ms: u64,
    age_text: &str,
) -> Result<(), crate::git::GitError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (mut younger, mut unknown) = (0, 0);
    for b in repo.backups()? {
        match b.created {
            Some(t) if now.saturating_sub(t).saturating_mul(1000) >= age_ms => {
                let age = rough_age(now.saturating_sub(t));
                plan.backups.push((b, format!("{age} old")));
            }
            Some(_) => younger += 1,
            None if age_ms == 0 => plan.backups.push((b, "age unknown".into())),
            None => unknown += 1,
        }
    }
    if younger > 0 {
        plan.kept
            .push(format!("{younger} backup ref(s) younger than {age_text}"));
    }
    if unknown > 0 {
        plan.kept.push(format!(
            "{unknown} backup ref(s) of unknown age (made before orch-tui recorded when, or \
             their reflog expired); `--older-than 0s` drops them"
        ));
    }
    Ok(())
}

/// "40d", "5h", "12m", "30s": the largest whole unit.
fn rough_age(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Prompt files are `<task>-<n>.md` (`-review.md` for a reviewer's); anything else is not ours.
fn plan_prompts(plan: &mut Plan, dir: &Path, states: &BTreeMap<String, Option<TaskState>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    found.sort();
    for path in found {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let stem = name.strip_suffix(".md").unwrap_or_default();
        let stem = stem.strip_suffix("-review").unwrap_or(stem);
        let Some((task, n)) = stem.rsplit_once('-') else {
            continue;
        };
        if task.is_empty() || n.parse::<u32>().is_err() {
            continue;
        }
        if let Some(why) = finished_why(task, states) {
            plan.prompts.push((path, why));
        }
    }
}

/// `orch/<task>` branches of done tasks whose every commit is on the integration branch.
fn plan_branches(
    plan: &mut Plan,
    repo: &Repo,
    integration: &str,
    states: &BTreeMap<String, Option<TaskState>>,
) -> Result<(), crate::git::GitError> {
    let Some(tip) = repo.rev_parse(&format!("refs/heads/{integration}"))? else {
        return Ok(());
    };
    for branch in repo.branch_names()? {
        let Some(task) = branch.strip_prefix("orch/") else {
            continue;
        };
        if branch == integration || states.get(task) != Some(&Some(TaskState::Done)) {
            continue;
        }
        let Some(head) = repo.rev_parse(&format!("refs/heads/{branch}"))? else {
            continue;
        };
        if repo.is_ancestor(&head, &tip)? {
            plan.branches.push(branch);
        } else {
            plan.kept.push(format!(
                "branch {branch}: it has commits {integration} lacks (look with \
                 `git log {integration}..{branch}`)"
            ));
        }
    }
    Ok(())
}

/// Prints what would go. Returns the number of failures (always 0).
fn show(plan: &Plan, repo: &Repo) -> usize {
    let prunable = match repo.prune_worktrees(true) {
        Ok(lines) => lines,
        Err(e) => {
            err_out!("orch-tui gc: cannot list worktrees to prune: {e}");
            Vec::new()
        }
    };
    if plan.worktrees.is_empty()
        && prunable.is_empty()
        && plan.backups.is_empty()
        && plan.prompts.is_empty()
        && plan.branches.is_empty()
    {
        out!("nothing to remove");
    }
    for (wt, why, backup) in &plan.worktrees {
        let keep = match backup {
            Some(b) => format!("; work nothing else holds would be kept under {b}"),
            None => String::new(),
        };
        out!("would remove worktree {} ({why}{keep})", wt.path.display());
    }
    for l in &prunable {
        out!("would prune: {l}");
    }
    for (b, age) in &plan.backups {
        out!("would drop backup {} ({age})", b.name);
    }
    for (p, why) in &plan.prompts {
        out!("would remove prompt {} ({why})", p.display());
    }
    for b in &plan.branches {
        out!("would delete branch {b} (merged)");
    }
    0
}

/// Removes what the plan lists, saying what was done; each failure is reported and counted.
fn execute(plan: &Plan, repo: &Repo) -> usize {
    let mut failures = 0;
    let mut fail = |what: String| {
        err_out!("orch-tui gc: {what}");
        failures += 1;
    };
    let mut anything = false;
    for (wt, why, backup) in &plan.worktrees {
        let res = match backup {
            Some(b) => repo.retire_worktree(&wt.path, b).map(|r| r.backups),
            None => repo.drop_scratch_worktree(&wt.path).map(|_| Vec::new()),
        };
        match res {
            Ok(kept) if kept.is_empty() => {
                out!("removed worktree {} ({why})", wt.path.display())
            }
            Ok(kept) => out!(
                "removed worktree {} ({why}); its work is kept under {}",
                wt.path.display(),
                kept.join(", ")
            ),
            Err(e) => fail(format!("cannot remove worktree {}: {e}", wt.path.display())),
        }
        anything = true;
    }
    match repo.prune_worktrees(false) {
        Ok(lines) => lines.iter().for_each(|l| {
            anything = true;
            out!("pruned: {l}")
        }),
        Err(e) => fail(format!("git worktree prune failed: {e}")),
    }
    for (b, age) in &plan.backups {
        anything = true;
        match repo.drop_backup(b) {
            Ok(()) => out!("dropped backup {} ({age})", b.name),
            Err(e) => fail(format!("cannot drop {}: {e}", b.name)),
        }
    }
    for (p, why) in &plan.prompts {
        anything = true;
        match std::fs::remove_file(p) {
            Ok(()) => out!("removed prompt {} ({why})", p.display()),
            Err(e) => fail(format!("cannot remove {}: {e}", p.display())),
        }
    }
    for b in &plan.branches {
        anything = true;
        match repo.delete_branch(b, &plan.integration) {
            Ok(()) => out!("deleted branch {b} (merged)"),
            Err(e) => fail(format!("cannot delete branch {b}: {e}")),
        }
    }
    if !anything {
        out!("nothing to remove");
    }
    failures
}
