//! Startup recovery after a crash or `kill -9`: end the previous supervisor's agents, abandon
//! their attempts, settle half-done merges by looking at git, and re-queue approved work.

use std::time::Duration;

use super::{Engine, EngineError};
use crate::core::domain::{AttemptNo, AttemptState, FunnelStage};
use crate::core::funnel::Stage;
use crate::core::state::TaskState;
use crate::ledger::{Actor, Patch};

impl Engine {
    pub(crate) fn recover(&mut self) -> Result<(), EngineError> {
        let grace = Duration::from_millis(self.opts.config.stop_grace_ms);
        for a in self.ledger.live_attempts()? {
            if a.epoch >= self.epoch {
                continue;
            }
            // The recorded pid only if it still carries the attempt's token (a reused pid is
            // someone else's); the token also finds what the pid cannot: an agent whose pid was
            // never recorded, and descendants whose parent is gone or that left the group.
            let root = a
                .pid
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| crate::os::has_token(*p, &a.token))
                .unwrap_or(0);
            crate::os::kill_tree(root, Some(&a.token), grace);
            let state = self.ledger.task(&a.task)?.map(|t| t.state);
            self.ledger.write(|tx| {
                crate::ledger::finish_attempt(
                    tx,
                    a.id,
                    AttemptState::Abandoned,
                    None,
                    Some("the supervisor stopped while it ran"),
                    None,
                )?;
                if let Some(from @ (TaskState::Assigned | TaskState::Working)) = state {
                    // Not the agent's fault: no failure is counted, and it runs again at once.
                    crate::ledger::transition_task(
                        tx,
                        &a.task,
                        from,
                        TaskState::Ready,
                        &Patch::default(),
                        Actor::Supervisor,
                        Some(a.n),
                        serde_json::json!({ "why": "recovered after supervisor restart" }),
                    )?;
                }
                Ok(())
            })?;
            self.say(&format!(
                "↺ {}: attempt {} abandoned at restart",
                a.task, a.n
            ));
        }
        for t in self.ledger.tasks()? {
            match t.state {
                TaskState::Merging => self.recover_merge(&t.id)?,
                TaskState::Review => {
                    // Pick the funnel up where it stopped: a human or veto stage just waits
                    // (the veto timer is in the ledger); checks and reviews run again.
                    let n = self
                        .ledger
                        .latest_attempt(&t.id)?
                        .map_or(AttemptNo(0), |a| a.n);
                    match t.stage {
                        Some(FunnelStage::Human | FunnelStage::Veto) => {}
                        Some(FunnelStage::Checks) => self.advance(&t.id, n, Stage::Checks)?,
                        Some(FunnelStage::Reviewer) => self.advance(&t.id, n, Stage::Reviewer)?,
                        _ => self.enter_funnel(&t.id, n)?,
                    }
                }
                TaskState::Approved => self.merge_queue.push_back(t.id.clone()),
                _ => {}
            }
        }
        self.ledger.write(|tx| crate::ledger::promote_ready(tx))?;
        self.start_next_merge()?;
        Ok(())
    }

    /// A merge was in flight: if the integration branch already holds this attempt's commit the
    /// merge happened (mark done, never merge twice); otherwise queue it again.
    fn recover_merge(&mut self, task: &str) -> Result<(), EngineError> {
        let Some(a) = self.ledger.latest_attempt(task)? else {
            return Ok(());
        };
        let found = self
            .repo
            .find_task_commit(&self.opts.config.integration_branch, task, a.n.0)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        let to = if found.is_some() {
            TaskState::Done
        } else {
            TaskState::Approved
        };
        self.ledger.write(|tx| {
            crate::ledger::transition_task(
                tx,
                task,
                TaskState::Merging,
                to,
                &Patch::default(),
                Actor::Supervisor,
                Some(a.n),
                serde_json::json!({ "why": "recovered an interrupted merge", "commit": found }),
            )?;
            crate::ledger::promote_ready(tx)?;
            Ok(())
        })?;
        if to == TaskState::Approved {
            self.merge_queue.push_back(task.to_string());
        } else {
            let _ = self.repo.remove_worktree(
                std::path::Path::new(a.worktree.as_deref().unwrap_or("")),
                &format!("refs/orch/backup/{task}/{}", a.n),
            );
        }
        Ok(())
    }
}
