//! The merge queue: one merge at a time. Replay the task's commits onto the integration tip
//! (no working tree needed), then fast-forward the integration branch by compare-and-swap.

use std::path::PathBuf;

use super::outcome::short;
use super::{Engine, EngineError, EngineEvent, Msg};
use crate::core::state::TaskState;
use crate::git::{Replay, Repo};
use crate::ledger::{Actor, Patch};

pub(crate) enum MergeResult {
    Merged { tip: String },
    Conflict { files: Vec<String> },
    Error(String),
}

struct MergeJob {
    repo: Repo,
    integration: String,
    task: String,
    n: u32,
    base: String,
    commit: String,
    branch: String,
    worktree: PathBuf,
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
            let moved = self.ledger.write(|tx| {
                crate::ledger::transition_task(
                    tx,
                    &task,
                    TaskState::Approved,
                    TaskState::Merging,
                    &Patch::default(),
                    Actor::Supervisor,
                    Some(i64::from(a.n)),
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
            };
            self.merging = Some(task.clone());
            let tx = self.tx.clone();
            let attempt = a.id;
            std::thread::Builder::new()
                .name(format!("merge-{task}"))
                .spawn(move || {
                    let task = job.task.clone();
                    let result = run_merge(&job);
                    let _ = tx.send(Msg::MergeDone {
                        task,
                        attempt,
                        result,
                    });
                })
                .map_err(|e| EngineError::Failed(format!("cannot start a merge thread: {e}")))?;
        }
        Ok(())
    }

    pub(crate) fn on_merge_done(
        &mut self,
        task: &str,
        attempt: i64,
        result: MergeResult,
    ) -> Result<(), EngineError> {
        self.merging = None;
        let n = self.ledger.attempt(attempt)?.map(|a| i64::from(a.n));
        match result {
            MergeResult::Merged { tip } => {
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
                let why = format!(
                    "merge conflict with the integration branch in: {}",
                    files.join(", ")
                );
                self.ledger.write(|tx| {
                    crate::ledger::transition_task(
                        tx,
                        task,
                        TaskState::Merging,
                        TaskState::Escalated,
                        &Patch {
                            reason: Some(Some(why.clone())),
                            ..Patch::default()
                        },
                        Actor::Supervisor,
                        n,
                        serde_json::json!({ "why": "conflict", "files": files }),
                    )
                })?;
                self.say(&format!("⚑ {task}: escalated: {why}"));
            }
            MergeResult::Error(why) => {
                self.ledger.write(|tx| {
                    crate::ledger::transition_task(
                        tx,
                        task,
                        TaskState::Merging,
                        TaskState::Escalated,
                        &Patch {
                            reason: Some(Some(format!("merge failed: {why}"))),
                            ..Patch::default()
                        },
                        Actor::Supervisor,
                        n,
                        serde_json::json!({ "why": "merge error", "error": why }),
                    )
                })?;
                self.say(&format!("⚑ {task}: merge failed: {why}"));
            }
        }
        self.start_next_merge()?;
        self.emit(EngineEvent::Changed);
        Ok(())
    }
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
        let new_tip = match job.repo.replay_onto(&job.base, &job.commit, &tip) {
            Ok(Replay::Clean { tip }) => tip,
            Ok(Replay::Conflict { files }) => return MergeResult::Conflict { files },
            Err(e) => return MergeResult::Error(e.to_string()),
        };
        let refname = format!("refs/heads/{}", job.integration);
        match job.repo.cas_update_ref(&refname, &new_tip, &tip) {
            Ok(true) => {
                // Keep the task branch pointing at what merged, then drop the worktree
                // (the git module backs up anything not merged first).
                let _ = job.repo.backup_ref(
                    &format!("refs/orch/backup/{}/{}", job.task, job.n),
                    &job.commit,
                );
                let _ = job.repo.cas_update_ref(
                    &format!("refs/heads/{}", job.branch),
                    &new_tip,
                    &job.commit,
                );
                let _ = job.repo.remove_worktree(
                    &job.worktree,
                    &format!("refs/orch/backup/{}/{}", job.task, job.n),
                );
                return MergeResult::Merged { tip: new_tip };
            }
            Ok(false) => continue,
            Err(e) => return MergeResult::Error(e.to_string()),
        }
    }
    MergeResult::Error("the integration branch kept moving during the merge".into())
}
