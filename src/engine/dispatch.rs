//! From a ready task to a running agent: the scheduler's decision, the ledger claim, and the
//! setup thread (worktree, prompt file, PTY spawn).

use crate::core::domain::{AttemptId, AttemptNo, AttemptState};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Engine, EngineError, EngineEvent, Live, Msg, random_token};
use crate::agent::pty::{AgentProcess, SpawnSpec};
use crate::core::config::AgentProfile;
use crate::core::schedule::{ProfileLoad, ReadyTask, decide};
use crate::core::state::TaskState;
use crate::git::Repo;
use crate::ledger::{Actor, NewAttempt, TaskRow, now_ms};

/// What the setup thread hands back.
pub(crate) struct Started {
    pub process: AgentProcess,
    pub base: String,
}

pub(crate) struct SetupJob {
    pub repo: Repo,
    pub integration: String,
    pub task: TaskRow,
    pub n: AttemptNo,
    pub token: String,
    pub attempt: AttemptId,
    pub profile: AgentProfile,
    pub worktree: PathBuf,
    pub branch: String,
    pub log_dir: PathBuf,
    pub prompt_file: PathBuf,
    pub prompt: String,
    /// Agents get a fresh worktree from the integration tip; a reviewer reads the agent's.
    pub create_worktree: bool,
    pub extra_env: Vec<(String, String)>,
    pub ledger_path: PathBuf,
    pub orch_bin: PathBuf,
    pub rotate_bytes: u64,
    pub on_output: Option<super::OutputHook>,
}

impl Engine {
    /// Fill free slots from the ready set, at once (called after every change).
    pub(crate) fn schedule(&mut self) -> Result<(), EngineError> {
        let tasks = self.ledger.tasks_in(TaskState::Ready)?;
        let ready: Vec<ReadyTask> = tasks
            .iter()
            .map(|t| ReadyTask {
                id: t.id.clone(),
                priority: t.priority,
                ready_since_ms: t.ready_since_ms,
                not_before_ms: t.not_before_ms,
                capabilities: t.capabilities.clone(),
                agent: t
                    .agent
                    .clone()
                    .or_else(|| Some(self.opts.config.default_agent.clone())),
            })
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        let agents_running = self.live.len();
        let free = self.opts.config.slots.saturating_sub(agents_running);
        let profiles: Vec<ProfileLoad> = self
            .opts
            .config
            .agents
            .values()
            .map(|p| ProfileLoad {
                name: p.name.clone(),
                capabilities: p.capabilities.clone(),
                max_concurrent: p.max_concurrent,
                running: self.live.values().filter(|l| l.profile == p.name).count(),
            })
            .collect();
        let decision = decide(&ready, &profiles, free, now_ms());
        for id in &decision.unroutable {
            self.escalate_unroutable(id)?;
        }
        for (task, profile) in decision.dispatch {
            self.dispatch(&task, &profile)?;
        }
        Ok(())
    }

    fn escalate_unroutable(&mut self, id: &str) -> Result<(), EngineError> {
        let why = format!(
            "no agent profile can take task `{id}`: check its `agent` and `capabilities` against [agents] in the config"
        );
        // ready -> paused is the legal way to hold it; say why in the reason.
        let res = self.ledger.write(|tx| {
            crate::ledger::transition_task(
                tx,
                id,
                TaskState::Ready,
                TaskState::Paused,
                &crate::ledger::Patch {
                    reason: Some(Some(why.clone())),
                    paused_from: Some(Some("ready".into())),
                    ..Default::default()
                },
                Actor::Supervisor,
                None,
                serde_json::json!({ "why": why }),
            )
        });
        res?;
        self.say(&format!("✋ {id}: {why}"));
        Ok(())
    }

    fn dispatch(&mut self, task_id: &str, profile_name: &str) -> Result<(), EngineError> {
        let Some(profile) = self.opts.config.agents.get(profile_name).cloned() else {
            return Ok(());
        };
        let token = random_token(self);
        let epoch = self.epoch;
        let worktree_prefix = self.opts.paths.worktrees.join(task_id);
        let worktree_prefix = worktree_prefix.to_string_lossy().to_string();
        let logs_root = self.opts.paths.logs.to_string_lossy().to_string();
        let branch = format!("orch/{task_id}");
        let claimed = self.ledger.write(|tx| {
            crate::ledger::transition_task(
                tx,
                task_id,
                TaskState::Ready,
                TaskState::Assigned,
                &Default::default(),
                Actor::Supervisor,
                None,
                serde_json::json!({ "profile": profile_name }),
            )?;
            crate::ledger::insert_attempt(
                tx,
                &NewAttempt {
                    task: task_id,
                    token: &token,
                    epoch,
                    profile: profile_name,
                    worktree: &worktree_prefix,
                    branch: &branch,
                    log_dir_root: &logs_root,
                    reviews: None,
                },
            )
        });
        let (attempt, n) = match claimed {
            Ok(v) => v,
            // Someone (a human) moved it meanwhile: nothing to do.
            Err(crate::ledger::LedgerError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(task) = self.ledger.task(task_id)? else {
            return Ok(());
        };
        let row = self.ledger.attempt(attempt)?;
        let worktree = PathBuf::from(
            row.as_ref()
                .and_then(|r| r.worktree.clone())
                .unwrap_or_default(),
        );
        let log_dir = PathBuf::from(
            row.as_ref()
                .and_then(|r| r.log_dir.clone())
                .unwrap_or_default(),
        );
        let deadline = task
            .budget_time_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        self.live.insert(
            attempt,
            Live {
                role: super::Role::Agent,
                task: task_id.to_string(),
                n,
                profile: profile_name.to_string(),
                process: None,
                worktree: worktree.clone(),
                base: String::new(),
                deadline,
                started: Instant::now(),
                stopped_for: None,
                committing: false,
            },
        );
        self.say(&format!("▶ {task_id} attempt {n} on {profile_name}"));
        let prompt = prompt_text(&task);
        let job = SetupJob {
            repo: self.repo.clone(),
            integration: self.opts.config.integration_branch.clone(),
            prompt,
            create_worktree: true,
            extra_env: vec![("ORCH_ROLE".into(), "agent".into())],
            task,
            n,
            token,
            attempt,
            profile,
            worktree,
            branch,
            log_dir,
            prompt_file: self.opts.paths.prompts.join(format!("{task_id}-{n}.md")),
            ledger_path: self.opts.paths.ledger.clone(),
            orch_bin: self.opts.orch_bin.clone(),
            rotate_bytes: self.opts.config.log_rotate_bytes,
            on_output: self.opts.on_output.clone(),
        };
        self.spawn_setup(job)
    }

    /// Set the attempt up on its own thread; the loop hears back through `SetupDone`.
    pub(crate) fn spawn_setup(&mut self, job: SetupJob) -> Result<(), EngineError> {
        let task_id = job.task.id.clone();
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("setup-{task_id}"))
            .spawn(move || {
                let attempt = job.attempt;
                let result = run_setup(job, tx.clone());
                let _ = tx.send(Msg::SetupDone { attempt, result });
            });
        if let Err(e) = spawned {
            return Err(EngineError::Failed(format!(
                "cannot start a setup thread: {e}"
            )));
        }
        self.emit(EngineEvent::Changed);
        Ok(())
    }

    pub(crate) fn on_setup_done(
        &mut self,
        attempt: AttemptId,
        result: Result<Started, String>,
    ) -> Result<(), EngineError> {
        let Some(live) = self.live.get_mut(&attempt) else {
            if let Ok(s) = result {
                s.process.stop(self.grace());
            }
            return Ok(());
        };
        let task = live.task.clone();
        match result {
            Ok(started) => {
                let pid = started.process.pid();
                live.base = started.base.clone();
                if live.role == super::Role::Reviewer {
                    live.process = Some(started.process);
                    self.ledger.write(|tx| {
                        crate::ledger::set_attempt_running(tx, attempt, pid, &started.base)
                    })?;
                    self.emit(EngineEvent::Changed);
                    return Ok(());
                }
                let moved = self.ledger.write(|tx| {
                    crate::ledger::transition_task(
                        tx,
                        &task,
                        TaskState::Assigned,
                        TaskState::Working,
                        &Default::default(),
                        Actor::Supervisor,
                        None,
                        serde_json::json!({ "pid": pid }),
                    )?;
                    crate::ledger::set_attempt_running(tx, attempt, pid, &started.base)
                });
                if let Some(l) = self.live.get_mut(&attempt) {
                    l.process = Some(started.process);
                }
                match moved {
                    Ok(()) => {}
                    // Cancelled or paused while setting up: stop what we just started.
                    Err(crate::ledger::LedgerError::Conflict(_)) => self.reconcile_live()?,
                    Err(e) => return Err(e.into()),
                }
                self.emit(EngineEvent::Changed);
                Ok(())
            }
            Err(why) if live.role == super::Role::Reviewer => {
                self.live.remove(&attempt);
                self.ledger.write(|tx| {
                    crate::ledger::finish_attempt(
                        tx,
                        attempt,
                        AttemptState::Failed,
                        None,
                        Some(&why),
                        None,
                    )
                })?;
                self.say(&format!("✗ {task}: could not start its reviewer: {why}"));
                let n = self.ledger.attempt(attempt)?.map_or(AttemptNo(0), |a| a.n);
                self.on_verdict(&task, n, None)
            }
            Err(why) => {
                self.say(&format!("✗ {task}: could not start its agent: {why}"));
                self.attempt_failed(
                    attempt,
                    None,
                    &format!("setup failed: {why}"),
                    TaskState::Assigned,
                )
            }
        }
    }
}

/// Replace placeholders inside one argument each; never through a shell.
fn expand(arg: &str, job: &SetupJob, prompt: &str) -> String {
    arg.replace("{prompt_file}", &job.prompt_file.to_string_lossy())
        .replace("{prompt}", prompt)
        .replace("{task}", &job.task.id)
        .replace("{worktree}", &job.worktree.to_string_lossy())
        .replace("{orch}", &job.orch_bin.to_string_lossy())
}

/// The task's prompt, plus what the previous attempt ran into (a failed check's output, a
/// reviewer's or human's notes, a merge conflict), so the next attempt does not repeat it.
fn prompt_text(task: &TaskRow) -> String {
    let mut p = task.prompt.clone();
    if task.failures > 0
        && let Some(reason) = &task.reason
    {
        p.push_str(&format!(
            "\n\n## What happened to the previous attempt\n\n{reason}\n"
        ));
    }
    if let Some(note) = &task.note {
        p.push_str(&format!("\n\n## Notes for this attempt\n\n{note}\n"));
    }
    p
}

/// An earlier attempt's worktree still has the task branch checked out (git refuses to check a
/// branch out twice): remove it, after its tip is kept under that attempt's backup ref.
fn release_branch(job: &SetupJob) -> Result<(), String> {
    let full = format!("refs/heads/{}", job.branch);
    let trees = job.repo.worktrees().map_err(|e| e.to_string())?;
    for w in trees.iter().skip(1) {
        if w.branch.as_deref() != Some(full.as_str()) || w.path == job.worktree {
            continue;
        }
        let name = w
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let old = name
            .rsplit('-')
            .next()
            .filter(|s| s.parse::<u32>().is_ok())
            .unwrap_or("stale");
        let backup = format!("refs/orch/backup/{}/{old}", job.task.id);
        job.repo
            .remove_worktree(&w.path, &backup)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn run_setup(job: SetupJob, tx: std::sync::mpsc::Sender<Msg>) -> Result<Started, String> {
    let t0 = Instant::now();
    let base = job
        .repo
        .rev_parse(&job.integration)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("integration branch `{}` is missing", job.integration))?;
    let t_rev = t0.elapsed();
    let mut t_rel = t_rev;
    if job.create_worktree {
        // Only an earlier attempt's worktree can hold the task branch.
        if job.n.0 > 1 {
            release_branch(&job)?;
        }
        t_rel = t0.elapsed();
        let backup = format!("refs/orch/backup/{}/{}", job.task.id, job.n);
        job.repo
            .create_worktree(&job.worktree, &job.branch, &base, &backup)
            .map_err(|e| e.to_string())?;
    }
    let t_git = t0.elapsed();
    let prompt = job.prompt.clone();
    std::fs::write(&job.prompt_file, &prompt)
        .map_err(|e| format!("cannot write {}: {e}", job.prompt_file.display()))?;
    let argv: Vec<String> = job
        .profile
        .command
        .iter()
        .map(|a| expand(a, &job, &prompt))
        .collect();
    let mut env: Vec<(String, String)> = job
        .profile
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let path = |p: &Path| p.to_string_lossy().to_string();
    env.extend([
        ("ORCH_LEDGER".into(), path(&job.ledger_path)),
        ("ORCH_TASK".into(), job.task.id.clone()),
        ("ORCH_ATTEMPT".into(), job.n.to_string()),
        ("ORCH_TOKEN".into(), job.token.clone()),
        ("ORCH_WORKTREE".into(), path(&job.worktree)),
        ("ORCH_PROMPT_FILE".into(), path(&job.prompt_file)),
        ("ORCH_BIN".into(), path(&job.orch_bin)),
    ]);
    env.extend(job.extra_env.iter().cloned());
    let attempt = job.attempt;
    let on_output = job.on_output.clone();
    let task_id = job.task.id.clone();
    let process = AgentProcess::spawn(
        SpawnSpec {
            argv,
            cwd: job.worktree.clone(),
            env,
            rows: 24,
            cols: 100,
            log_dir: job.log_dir.clone(),
            log_rotate_bytes: job.rotate_bytes,
        },
        Box::new(move |signal| {
            // Output is read from the screen by whoever draws it; only events that change
            // what the supervisor does travel to its loop.
            if signal == crate::agent::pty::AgentSignal::Output {
                if let Some(f) = &on_output {
                    f(&task_id);
                }
            } else {
                let _ = tx.send(Msg::Agent { attempt, signal });
            }
        }),
    )
    .map_err(|e| e.to_string())?;
    tracing::debug!(
        task = %job.task.id,
        rev_parse_ms = t_rev.as_millis() as u64,
        release_ms = (t_rel - t_rev).as_millis() as u64,
        worktree_ms = (t_git - t_rel).as_millis() as u64,
        total_ms = t0.elapsed().as_millis() as u64,
        "attempt set up"
    );
    Ok(Started { process, base })
}
