//! The merge queue: one merge at a time. Replay the task's commits onto the integration tip
//! (no working tree needed), then fast-forward the integration branch by compare-and-swap.

use crate::core::domain::{AttemptId, AttemptNo, EventKind};
use std::path::PathBuf;
use std::time::Duration;

use super::checks::{CheckResult, run_checks};

use super::outcome::short;
use super::{Engine, EngineError, EngineEvent, Msg};
use crate::core::state::TaskState;
use crate::git::{Replay, Repo};
use crate::ledger::{Actor, Patch};

/// The reusable worktree re-checks run in (task ids cannot start with `_`).
pub(crate) const RECHECK_WORKTREE: &str = "_recheck";

pub(crate) enum MergeResult {
    Merged {
        tip: String,
        rechecked: bool,
        /// The task branch's commit before the replay (kept under a backup ref).
        replayed_from: String,
    },
    Conflict {
        files: Vec<String>,
    },
    /// The base moved and the checks fail on the rebased tree.
    ChecksFailed {
        results: Vec<CheckResult>,
    },
    Error(String),
}

struct MergeJob {
    repo: Repo,
    integration: String,
    task: String,
    n: AttemptNo,
    base: String,
    commit: String,
    branch: String,
    worktree: PathBuf,
    checks: Vec<String>,
    check_timeout: Duration,
    scratch: PathBuf,
    log: PathBuf,
}

impl Engine {
    /// Start the next merge if none is running.
    pub(crate) fn start_next_merge(&mut self) -> Result<(), EngineError> {
        while self.merging.is_none() {
            let Some(task) = self.merge_queue.pop_front() else {
                return Ok(());
            };
            let Some(a) = self.ledger.latest_attempt(&task)? else {
                continue;
            };
            let (Some(base), Some(commit)) = (a.base.clone(), a.commit_oid.clone()) else {
                continue;
            };
            let checks = match self.ledger.task(&task)? {
                Some(row) => self.checks_for(&row),
                None => continue,
            };
            let moved = self.ledger.write(|tx| {
                crate::ledger::transition_task(
                    tx,
                    &task,
                    TaskState::Approved,
                    TaskState::Merging,
                    &Patch::default(),
                    Actor::Supervisor,
                    Some(a.n),
                    serde_json::json!({}),
                )
            });
            match moved {
                Ok(()) => {}
                Err(crate::ledger::LedgerError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            let job = MergeJob {
                repo: self.repo.clone(),
                integration: self.opts.config.integration_branch.clone(),
                task: task.clone(),
                n: a.n,
                base,
                commit,
                branch: a.branch.clone().unwrap_or_else(|| format!("orch/{task}")),
                worktree: PathBuf::from(a.worktree.clone().unwrap_or_default()),
                checks,
                check_timeout: Duration::from_millis(self.opts.config.funnel.check_timeout_ms),
                // One reusable worktree for every re-check (merges are one at a time); task
                // ids cannot start with `_`, so it never meets a task's worktree.
                scratch: self.opts.paths.worktrees.join(RECHECK_WORKTREE),
                log: PathBuf::from(a.log_dir.clone().unwrap_or_default()).join("merge-checks.log"),
            };
            self.merging = Some(task.clone());
            let tx = self.tx.clone();
            let attempt = a.id;
            std::thread::Builder::new()
                .name(format!("merge-{task}"))
                .spawn(move || {
                    let task = job.task.clone();
                    let result = run_merge(&job);
                    // Tidying up happens after the queue moves on: the next merge needs only
                    // the integration ref, not this worktree.
                    let tidy = match &result {
                        MergeResult::Merged {
                            tip, replayed_from, ..
                        } => Some((tip.clone(), replayed_from.clone())),
                        _ => None,
                    };
                    let _ = tx.send(Msg::MergeDone {
                        task,
                        attempt,
                        result,
                    });
                    if let Some((tip, from)) = tidy {
                        retire_merged(&job, &tip, &from);
                        let _ = tx.send(Msg::CleanupDone);
                    }
                })
                .map_err(|e| EngineError::Failed(format!("cannot start a merge thread: {e}")))?;
        }
        Ok(())
    }

    pub(crate) fn on_merge_done(
        &mut self,
        task: &str,
        attempt: AttemptId,
        result: MergeResult,
    ) -> Result<(), EngineError> {
        self.merging = None;
        let n = self.ledger.attempt(attempt)?.map(|a| a.n);
        match result {
            MergeResult::ChecksFailed { results } => {
                let bad = results.iter().find(|r| !r.passed);
                let cmd = bad.map(|r| r.command.clone()).unwrap_or_default();
                let tail = bad.map(|r| r.tail.clone()).unwrap_or_default();
                let why = format!(
                    "check `{cmd}` fails once rebased onto the integration branch (it passed on the attempt's own base)"
                );
                self.ledger.write(|tx| {
                    for r in &results {
                        crate::ledger::append_event(
                            tx,
                            Some(task),
                            n,
                            Actor::Check,
                            if r.passed { EventKind::CheckPassed } else { EventKind::CheckFailed },
                            &serde_json::json!({ "command": r.command, "passed": r.passed, "tail": r.tail, "on": "rebased" }),
                        )?;
                    }
                    Ok(())
                })?;
                self.escalate(
                    task,
                    TaskState::Merging,
                    n,
                    &why,
                    Some(format!("{why}:\n{tail}")),
                    serde_json::json!({ "why": "checks failed after rebase", "command": cmd }),
                )?;
            }
            MergeResult::Merged { tip, rechecked, .. } => {
                self.cleanups += 1;
                if rechecked {
                    self.say(&format!(
                        "✓ {task}: checks passed again on the rebased tree"
                    ));
                }
                let promoted = self.ledger.write(|tx| {
                    crate::ledger::transition_task(
                        tx,
                        task,
                        TaskState::Merging,
                        TaskState::Done,
                        &Patch {
                            reason: Some(None),
                            ..Patch::default()
                        },
                        Actor::Supervisor,
                        n,
                        serde_json::json!({ "integration_tip": tip }),
                    )?;
                    crate::ledger::promote_ready(tx)
                })?;
                self.say(&format!("⇢ {task} merged ({})", short(&tip)));
                if !promoted.is_empty() {
                    self.say(&format!("  ready now: {}", promoted.join(", ")));
                }
            }
            MergeResult::Conflict { files } => {
                let worktree = match n {
                    Some(_) => self
                        .ledger
                        .attempt(attempt)?
                        .and_then(|a| a.worktree)
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let why = format!(
                    "merge conflict with the integration branch in: {}. Either `orch-tui retry {task}` \
                     (a new attempt on the new base, told about the conflict), or resolve it by hand \
                     in {worktree} (rebase onto the integration branch, commit) and `orch-tui approve {task}`",
                    files.join(", ")
                );
                self.escalate(
                    task,
                    TaskState::Merging,
                    n,
                    &why,
                    None,
                    serde_json::json!({ "why": "conflict", "files": files }),
                )?;
            }
            MergeResult::Error(why) => {
                self.escalate(
                    task,
                    TaskState::Merging,
                    n,
                    &format!("merge failed: {why}"),
                    None,
                    serde_json::json!({ "why": "merge error", "error": why }),
                )?;
            }
        }
        self.start_next_merge()?;
        self.emit(EngineEvent::Changed);
        Ok(())
    }
}

/// After a merge: keep the agent's original commit under a backup ref (the integration branch
/// holds its replayed copy), drop the worktree, and point the task branch at what merged.
fn retire_merged(job: &MergeJob, tip: &str, from: &str) {
    let backup = format!("refs/orch/backup/{}/{}", job.task, job.n);
    let _ = job.repo.backup_ref(&backup, from);
    let _ = job.repo.remove_worktree(&job.worktree, &backup);
    let _ = job
        .repo
        .cas_update_ref(&format!("refs/heads/{}", job.branch), tip, from);
}

/// The branch as it is now: normally the attempt's commit on its base; after a conflict resolved
/// by hand, whatever the human committed (perhaps rebased onto a newer integration tip).
fn branch_now(job: &MergeJob, integration_tip: &str) -> Result<(String, String), String> {
    let tip = match job.repo.rev_parse(&format!("refs/heads/{}", job.branch)) {
        Ok(Some(t)) => t,
        Ok(None) => return Ok((job.base.clone(), job.commit.clone())),
        Err(e) => return Err(e.to_string()),
    };
    if tip == job.commit {
        return Ok((job.base.clone(), job.commit.clone()));
    }
    let base = job
        .repo
        .merge_base(&tip, integration_tip)
        .map_err(|e| e.to_string())?;
    Ok((base, tip))
}

/// Run the checks on exactly the tree that would land, in a scratch worktree.
fn recheck(job: &MergeJob, rev: &str) -> Result<Vec<CheckResult>, String> {
    job.repo
        .checkout_scratch(&job.scratch, rev)
        .map_err(|e| e.to_string())?;
    Ok(run_checks(
        &job.scratch,
        &job.checks,
        job.check_timeout,
        &job.log,
        &[],
    ))
}

fn run_merge(job: &MergeJob) -> MergeResult {
    // The ref only moves here (one merge at a time), so a lost compare-and-swap means someone
    // else moved it: read the new tip and replay again, a bounded number of times.
    for _ in 0..5 {
        let tip = match job.repo.rev_parse(&job.integration) {
            Ok(Some(t)) => t,
            Ok(None) => {
                return MergeResult::Error(format!("branch {} is missing", job.integration));
            }
            Err(e) => return MergeResult::Error(e.to_string()),
        };
        let (base, commit) = match branch_now(job, &tip) {
            Ok(v) => v,
            Err(e) => return MergeResult::Error(e),
        };
        let new_tip = match job.repo.replay_onto(&base, &commit, &tip) {
            Ok(Replay::Clean { tip }) => tip,
            Ok(Replay::Conflict { files }) => return MergeResult::Conflict { files },
            Err(e) => return MergeResult::Error(e.to_string()),
        };
        // The checks passed on the attempt's base; if the base moved they run again on the
        // rebased tree, so every integration commit passed its checks on exactly that tree.
        let rechecked = base != tip && !job.checks.is_empty();
        if rechecked {
            match recheck(job, &new_tip) {
                Ok(results) if results.iter().all(|r| r.passed) => {}
                Ok(results) => return MergeResult::ChecksFailed { results },
                Err(e) => return MergeResult::Error(e),
            }
        }
        let refname = format!("refs/heads/{}", job.integration);
        match job.repo.cas_update_ref(&refname, &new_tip, &tip) {
            Ok(true) => {
                return MergeResult::Merged {
                    tip: new_tip,
                    rechecked,
                    replayed_from: commit,
                };
            }
            Ok(false) => continue,
            Err(e) => return MergeResult::Error(e.to_string()),
        }
    }
    MergeResult::Error("the integration branch kept moving during the merge".into())
}
