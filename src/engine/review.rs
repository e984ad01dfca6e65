//! The reviewer stage: an agent profile reads the task, the diff and the check results in the
//! attempt's worktree and answers with `orch-tui worker verdict approve|changes --notes TEXT`.

use crate::core::domain::{AttemptNo, EventKind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::dispatch::SetupJob;
use super::{Engine, EngineError, Live, Role, random_token};
use crate::ledger::{Actor, NewAttempt, TaskRow};

impl Engine {
    pub(crate) fn dispatch_reviewer(
        &mut self,
        task_id: &str,
        n: AttemptNo,
    ) -> Result<(), EngineError> {
        let reviewer = self.opts.config.funnel.reviewer.clone().unwrap_or_default();
        let Some(profile) = self.opts.config.agents.get(&reviewer).cloned() else {
            self.say(&format!(
                "✗ {task_id}: reviewer profile `{reviewer}` is not configured"
            ));
            return self.on_verdict(task_id, n, None);
        };
        let (Some(task), Some(agent)) = (
            self.ledger.task(task_id)?,
            self.ledger.latest_attempt(task_id)?,
        ) else {
            return Ok(());
        };
        let token = random_token(self);
        let epoch = self.epoch;
        let prefix = self
            .opts
            .paths
            .worktrees
            .join(task_id)
            .to_string_lossy()
            .to_string();
        let logs_root = self.opts.paths.logs.to_string_lossy().to_string();
        let branch = format!("orch/{task_id}");
        let (attempt, _) = self.ledger.write(|tx| {
            crate::ledger::insert_attempt(
                tx,
                &NewAttempt {
                    task: task_id,
                    token: &token,
                    epoch,
                    profile: &reviewer,
                    worktree: &prefix,
                    branch: &branch,
                    log_dir_root: &logs_root,
                    reviews: Some(n),
                },
            )
        })?;
        let row = self.ledger.attempt(attempt)?;
        let log_dir = PathBuf::from(row.and_then(|r| r.log_dir).unwrap_or_default());
        let worktree = PathBuf::from(agent.worktree.clone().unwrap_or_default());
        let diff = match (&agent.base, &agent.commit_oid) {
            (Some(b), Some(c)) => self.repo.diff(b, c).unwrap_or_default(),
            _ => String::new(),
        };
        let checks = self.check_summary(task_id, n)?;
        let prompt = review_prompt(&task, n, &diff, &checks);
        self.live.insert(
            attempt,
            Live {
                role: Role::Reviewer,
                task: task_id.to_string(),
                n,
                profile: reviewer.clone(),
                process: None,
                worktree: worktree.clone(),
                base: agent.base.clone().unwrap_or_default(),
                deadline: task
                    .budget_time_ms
                    .map(|ms| Instant::now() + Duration::from_millis(ms)),
                started: Instant::now(),
                stopped_for: None,
                committing: false,
            },
        );
        self.say(&format!("🔎 {task_id} attempt {n}: review by {reviewer}"));
        self.spawn_setup(SetupJob {
            repo: self.repo.clone(),
            integration: self.opts.config.integration_branch.clone(),
            task,
            n,
            token,
            attempt,
            profile,
            worktree,
            branch,
            log_dir,
            prompt_file: self
                .opts
                .paths
                .prompts
                .join(format!("{task_id}-{n}-review.md")),
            prompt,
            create_worktree: false,
            extra_env: vec![("ORCH_ROLE".into(), "reviewer".into())],
            ledger_path: self.opts.paths.ledger.clone(),
            orch_bin: self.opts.orch_bin.clone(),
            rotate_bytes: self.opts.config.log_rotate_bytes,
            on_output: self.opts.on_output.clone(),
        })
    }

    /// "passed: cargo test -q" lines from this attempt's check events.
    fn check_summary(&self, task: &str, n: AttemptNo) -> Result<String, EngineError> {
        let mut out = String::new();
        for e in self.ledger.events(0, Some(task), 100_000)? {
            if e.attempt != Some(n) || e.actor != Actor::Check {
                continue;
            }
            let cmd = e.data["command"].as_str().unwrap_or("?");
            let verdict = if e.kind == EventKind::CheckPassed {
                "passed"
            } else {
                "FAILED"
            };
            out.push_str(&format!("- {verdict}: `{cmd}`\n"));
        }
        if out.is_empty() {
            out.push_str("(no checks configured)\n");
        }
        Ok(out)
    }
}

/// The reviewer's prompt. Directives meant for the task's agent are defused (a simulated
/// reviewer must not replay them); `@review ...` lines become the reviewer's own directives.
fn review_prompt(task: &TaskRow, n: AttemptNo, diff: &str, checks: &str) -> String {
    let mut directives = Vec::new();
    let mut quoted = String::new();
    for line in task.prompt.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("@review ") {
            directives.push(review_directive(rest.trim(), n));
        } else {
            quoted.push_str(&line.replace("@sim", "(sim)"));
            quoted.push('\n');
        }
    }
    let mut p = format!(
        "You are reviewing attempt {n} of task `{id}`: {title}\n\n\
         ## The task\n\n{quoted}\n## Check results\n\n{checks}\n## The change\n\n```diff\n{diff}```\n\n\
         Answer by running exactly one of:\n\n\
         \x20   \"$ORCH_BIN\" worker verdict approve [--notes TEXT]\n\
         \x20   \"$ORCH_BIN\" worker verdict changes --notes \"what to change\"\n",
        id = task.id,
        title = task.title,
    );
    if directives.is_empty() {
        // A simulated reviewer with no script approves; a real one ignores this line.
        directives.push("@sim verdict approve".to_string());
    }
    for d in directives {
        p.push('\n');
        p.push_str(&d);
    }
    p.push('\n');
    p
}

/// `approve`, `changes NOTES`, or `changes-attempts K NOTES` (ask for changes on attempts up to
/// K, then approve): the simulated reviewer's script, for tests and the demo.
fn review_directive(rest: &str, n: AttemptNo) -> String {
    if let Some(more) = rest.strip_prefix("changes-attempts ") {
        let (k, notes) = more.split_once(' ').unwrap_or((more, "please revise"));
        let k: u32 = k.parse().unwrap_or(0);
        return if n.0 <= k {
            format!("@sim verdict changes {notes}")
        } else {
            "@sim verdict approve".to_string()
        };
    }
    format!("@sim verdict {rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviewer_script_follows_the_attempt_number() {
        assert_eq!(
            review_directive("approve", AttemptNo(1)),
            "@sim verdict approve"
        );
        assert_eq!(
            review_directive("changes-attempts 1 name it better", AttemptNo(1)),
            "@sim verdict changes name it better"
        );
        assert_eq!(
            review_directive("changes-attempts 1 x", AttemptNo(2)),
            "@sim verdict approve"
        );
    }
}
