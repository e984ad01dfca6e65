//! The slow work behind the supervisor's effects — worktrees, spawning, commits, checks, merges,
//! tidying — as jobs that run off the loop and answer with an event. Each one is written against
//! the world's traits, so the same code runs with real git and agents and in the simulator.

use std::sync::Arc;

use super::world::{Agents, BranchAt, Checks, GitOps, Incoming, Job, Launch, Sink, Spawned};
use crate::core::config::AgentProfile;
use crate::core::supervisor::{
    Collect, Event, JobFailure, MergeOutcome, MergePrep, MoveOutcome, Setup, SyncOutcome, SyncPrep,
    Tidy,
};
use crate::git::{GitError, Replay};

/// What every job may use.
#[derive(Clone)]
pub struct JobCtx {
    pub git: Arc<dyn GitOps>,
    pub agents: Arc<dyn Agents>,
    pub checks: Arc<dyn Checks>,
    pub sink: Sink,
}

fn failure(e: GitError) -> JobFailure {
    JobFailure {
        timed_out: e.is_timeout(),
        message: e.to_string(),
    }
}

/// Everything a setup needs besides the supervisor's `Setup`.
pub struct SetupPlan {
    pub setup: Setup,
    pub profile: AgentProfile,
    pub prompt: String,
    pub prompt_file: String,
    pub env: Vec<(String, String)>,
    pub orch_bin: String,
    pub rotate_bytes: u64,
    /// The attempt's slot (from 1), stable while its process lives: `ORCH_SLOT` and its ports.
    pub slot: u32,
    /// What `[worktree]` asks of a new worktree (`prepare::ready_worktree`).
    pub prep: super::prepare::WorktreePrep,
    /// For an interactive agent: the rules its screen is classified by.
    pub screen_rules: Vec<crate::core::screen_rules::ScreenRule>,
    /// An attempt that continues an earlier one in its worktree: the branches that existed
    /// before that one started, so the branches the earlier agent made are still its (reported
    /// and kept when this attempt is collected) rather than taken for the user's.
    pub branches_before: Option<Vec<String>>,
}

pub fn setup_job(ctx: &JobCtx, plan: SetupPlan) -> Job {
    let ctx = ctx.clone();
    Box::new(move || {
        let attempt = plan.setup.attempt;
        let result = run_setup(&ctx, plan);
        Incoming::Spawned { attempt, result }
    })
}

/// Where a setup's time goes: one `setup steps` line per attempt in the supervisor's log, so
/// `assigned -> running` can be split by step (`benches/throughput.rs` [2] reads it).
struct Laps {
    /// When the job began (ms since the epoch): the gap from the attempt's row to it is the
    /// loop's and the job thread's.
    start_ms: u64,
    last: std::time::Instant,
    ms: Vec<(&'static str, f64)>,
}

impl Laps {
    fn new() -> Laps {
        Laps {
            start_ms: crate::agent::record::text::now_ms(),
            last: std::time::Instant::now(),
            ms: Vec::new(),
        }
    }

    fn lap(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.ms
            .push((step, now.duration_since(self.last).as_secs_f64() * 1e3));
        self.last = now;
    }

    fn log(&self, attempt: crate::core::domain::AttemptId) {
        let steps: Vec<String> = self
            .ms
            .iter()
            .map(|(k, v)| format!("{k}_ms={v:.2}"))
            .collect();
        let end_ms = crate::agent::record::text::now_ms();
        tracing::info!(target: "orch_tui::setup", "setup steps attempt={} {} start_ms={} end_ms={end_ms}", attempt.0, steps.join(" "), self.start_ms);
    }
}

fn run_setup(ctx: &JobCtx, p: SetupPlan) -> Result<Spawned, String> {
    let s = &p.setup;
    let mut laps = Laps::new();
    let mut base = s.base.clone();
    let mut listed = None;
    if s.create_worktree {
        if s.base.is_empty() {
            return Err("no integration tip is recorded to start from".into());
        }
        if let Some(c) = &s.speculative {
            base = candidate_tip(ctx, c, &s.base)?;
        }
        let prefix = format!("refs/orch/backup/{}", s.task);
        listed = ctx
            .git
            .prepare_worktree_listing(&s.worktree, &s.branch, &base, &prefix)
            .map_err(|e| e.to_string())?;
    }
    laps.lap("worktree");
    super::prepare::ready_worktree(&p.prep, s, &p.env)?;
    laps.lap("prep");
    // The adapter builds the argv (placeholders in one pass, a large prompt by file, Claude's
    // per-attempt hooks next to the logs, `--resume` for a continued conversation).
    let how = crate::agent::adapter::launch(
        &p.profile,
        &crate::agent::adapter::LaunchContext {
            prompt: &p.prompt,
            prompt_file: std::path::Path::new(&p.prompt_file),
            task: &s.task,
            worktree: std::path::Path::new(&s.worktree),
            orch_bin: std::path::Path::new(&p.orch_bin),
            attempt_dir: std::path::Path::new(&s.log_dir),
            resume: s.resume.as_deref(),
            max_budget_usd: s.max_budget_usd,
        },
    )?;
    laps.lap("adapter");
    let branches_before = match (listed, p.branches_before) {
        (Some(names), _) | (None, Some(names)) => names,
        (None, None) => ctx.git.branch_names().map_err(|e| e.to_string())?,
    };
    laps.lap("branches");
    let mut env = p.env.clone();
    env.extend(how.env);
    let resumed_tokens = s.resume.as_ref().map(|_| crate::core::agent_event::Tokens {
        input: s.baseline.tokens_in,
        output: s.baseline.tokens_out,
        ..Default::default()
    });
    let launch = Launch {
        attempt: s.attempt,
        task: s.task.clone(),
        argv: how.argv,
        cwd: s.worktree.clone(),
        env,
        log_dir: s.log_dir.clone(),
        rotate_bytes: p.rotate_bytes,
        profile: p.profile.clone(),
        resumed_tokens,
        paste: how.paste,
        screen_rules: p.screen_rules.clone(),
        branches_before,
        // Written by whoever starts the agent (a holder, into a file it made ahead).
        prompt_file: Some(crate::agent::PromptFile {
            path: p.prompt_file.clone().into(),
            text: p.prompt.clone(),
        }),
    };
    let branches = launch.branches_before.clone();
    let process = ctx.agents.spawn(launch, ctx.sink.clone())?;
    laps.lap("spawn");
    laps.log(s.attempt);
    Ok(Spawned {
        process,
        base,
        branches,
    })
}

/// The candidate tip of a speculative start: the candidate's commits replayed onto the
/// integration tip `onto` (no ref moves; the new worktree's branch keeps the commits).
fn candidate_tip(
    ctx: &JobCtx,
    c: &crate::core::supervisor::Candidate,
    onto: &str,
) -> Result<String, String> {
    match ctx.git.replay_onto(&c.base, &c.commit, onto) {
        Ok(crate::git::Replay::Clean { tip }) => Ok(tip),
        Ok(crate::git::Replay::Conflict { files }) => Err(format!(
            "the work of `{}` does not replay onto the integration tip (conflicts in {}), so              there is no candidate tip to start on",
            c.task,
            files.join(", ")
        )),
        Err(e) => Err(format!(
            "cannot make the candidate tip of `{}`: {e}",
            c.task
        )),
    }
}

pub fn collect_job(ctx: &JobCtx, c: Collect, branches_before: Vec<String>) -> Job {
    let ctx = ctx.clone();
    Box::new(move || {
        let result = ctx.git.collect(&c, &branches_before).map_err(failure);
        Incoming::Event(Event::Collected {
            attempt: c.attempt,
            result,
        })
    })
}

pub fn checks_job(
    ctx: &JobCtx,
    task: String,
    n: crate::core::domain::AttemptNo,
    dir: String,
    log: String,
    commands: Vec<String>,
) -> Job {
    let ctx = ctx.clone();
    Box::new(move || {
        let results = ctx.checks.run(&dir, &commands, &log);
        Incoming::Event(Event::ChecksDone { task, n, results })
    })
}

pub fn merge_job(
    ctx: &JobCtx,
    m: MergePrep,
    scratch: String,
    prep: super::prepare::WorktreePrep,
) -> Job {
    let ctx = ctx.clone();
    Box::new(move || {
        let result = prepare_merge(&ctx, &m, &scratch, &prep);
        Incoming::Event(Event::MergePrepared {
            task: m.task.clone(),
            result,
        })
    })
}

/// The branch as it is now: normally the attempt's commit on its base; after a conflict resolved
/// by hand, whatever the human committed there (perhaps rebased onto a newer tip). None: it is
/// in the integration branch already, nothing to merge.
fn branch_now(git: &dyn GitOps, m: &MergePrep) -> Result<Option<(String, String)>, GitError> {
    let tip = match git.branch_against(&format!("refs/heads/{}", m.branch), &m.onto)? {
        BranchAt::InOnto => return Ok(None),
        BranchAt::Tip(t) => t,
        BranchAt::Missing => {
            if m.base == m.commit || git.is_ancestor(&m.commit, &m.onto)? {
                return Ok(None);
            }
            return Ok(Some((m.base.clone(), m.commit.clone())));
        }
    };
    if tip == m.commit {
        return Ok(Some((m.base.clone(), m.commit.clone())));
    }
    let base = git.merge_base(&tip, &m.onto)?;
    Ok(Some((base, tip)))
}

fn prepare_merge(
    ctx: &JobCtx,
    m: &MergePrep,
    scratch: &str,
    prep: &super::prepare::WorktreePrep,
) -> MergeOutcome {
    // Work never collected (its collection failed; the human approved anyway): collect it now.
    let collected;
    let m = match &m.collect {
        None => m,
        Some(c) => match ctx.git.collect(c, &[]) {
            Ok(change) => match change.tip {
                None => return MergeOutcome::NothingToMerge,
                Some(tip) => {
                    collected = MergePrep {
                        commit: tip,
                        collect: None,
                        ..m.clone()
                    };
                    &collected
                }
            },
            Err(e) => return MergeOutcome::Failed(failure(e)),
        },
    };
    // Already in the integration branch, or nothing past the base: nothing to write.
    let (base, commit) = match branch_now(ctx.git.as_ref(), m) {
        Ok(Some((base, commit))) if base != commit => (base, commit),
        Ok(_) => return MergeOutcome::NothingToMerge,
        Err(e) => return MergeOutcome::Failed(failure(e)),
    };
    let tip = match ctx.git.replay_onto(&base, &commit, &m.onto) {
        Ok(Replay::Clean { tip }) => tip,
        Ok(Replay::Conflict { files }) => return MergeOutcome::Conflict { files },
        Err(e) => return MergeOutcome::Failed(failure(e)),
    };
    // The checks passed on the attempt's base; if the base moved they run again on exactly the
    // tree that would land, so every integration commit passed its checks on that tree.
    let rechecked = base != m.onto && !m.checks.is_empty();
    let mut results = Vec::new();
    if rechecked {
        // The re-check takes a checkout and the checks: the pool can ready worktrees at the
        // tip meanwhile, for the dependents dispatched right after the move.
        (ctx.sink)(Incoming::TipComing { tip: tip.clone() });
        if let Err(e) = ctx.git.checkout_scratch(scratch, &tip) {
            return MergeOutcome::Failed(failure(e));
        }
        if let Err(setup) = super::prepare::ready_recheck(prep, scratch, &m.log) {
            return MergeOutcome::ChecksFailed {
                results: vec![setup],
            };
        }
        results = ctx.checks.run(scratch, &m.checks, &m.log);
        if results.iter().any(|r| !r.passed) {
            return MergeOutcome::ChecksFailed { results };
        }
    }
    MergeOutcome::Ready {
        tip,
        rechecked,
        from: commit,
        results,
        onto: m.onto.clone(),
    }
}

pub fn move_job(ctx: &JobCtx, task: String, refname: String, tip: String, onto: String) -> Job {
    let ctx = ctx.clone();
    Box::new(move || {
        let result = match ctx.git.cas_update_ref(&refname, &tip, &onto) {
            Ok(true) => MoveOutcome::Moved,
            Ok(false) => match ctx.git.rev_parse(&refname) {
                Ok(found) => MoveOutcome::NotWhereLeft { found },
                Err(e) => MoveOutcome::Failed(failure(e)),
            },
            Err(e) => MoveOutcome::Failed(failure(e)),
        };
        Incoming::Event(Event::IntegrationMoved { task, result })
    })
}

pub fn tidy_job(ctx: &JobCtx, t: Tidy) -> Job {
    let ctx = ctx.clone();
    Box::new(move || {
        let result = ctx.git.tidy(&t).map_err(|e| e.to_string());
        Incoming::Event(Event::Tidied { tidy: t, result })
    })
}

pub fn sync_job(
    ctx: &JobCtx,
    p: SyncPrep,
    scratch: String,
    prep: super::prepare::WorktreePrep,
) -> Job {
    let ctx = ctx.clone();
    Box::new(move || {
        let result = prepare_sync(&ctx, &p, &scratch, &prep);
        Incoming::Event(Event::SyncPrepared {
            onto: p.onto,
            from: p.from,
            result,
        })
    })
}

/// The integration branch replayed onto the moved base with the replay a task's merge uses,
/// then the config's merge checks on exactly the tree that would land.
fn prepare_sync(
    ctx: &JobCtx,
    p: &SyncPrep,
    scratch: &str,
    prep: &super::prepare::WorktreePrep,
) -> SyncOutcome {
    let git = ctx.git.as_ref();
    let fail = |e| SyncOutcome::Failed(failure(e));
    match git.is_ancestor(&p.onto, &p.from) {
        Ok(true) => return SyncOutcome::UpToDate,
        Ok(false) => {}
        Err(e) => return fail(e),
    }
    let tip = match git.is_ancestor(&p.from, &p.onto) {
        // Everything on the branch is in the new base already (its pull request was merged):
        // the new base is the new tip.
        Ok(true) => p.onto.clone(),
        Ok(false) => {
            // What orch-tui put on top of the base it stands on. An older ledger that never
            // recorded it, or a base no longer under the branch: where the two meet.
            let recorded = match &p.base {
                Some(b) => match git.is_ancestor(b, &p.from) {
                    Ok(true) => Some(b.clone()),
                    Ok(false) => None,
                    Err(e) => return fail(e),
                },
                None => None,
            };
            let base = match recorded {
                Some(b) => b,
                None => match git.merge_base(&p.from, &p.onto) {
                    Ok(b) => b,
                    Err(e) => return fail(e),
                },
            };
            match git.replay_onto(&base, &p.from, &p.onto) {
                Ok(Replay::Clean { tip }) => tip,
                Ok(Replay::Conflict { files }) => return SyncOutcome::Conflict { files },
                Err(e) => return fail(e),
            }
        }
        Err(e) => return fail(e),
    };
    let mut results = Vec::new();
    if !p.checks.is_empty() {
        if let Err(e) = git.checkout_scratch(scratch, &tip) {
            return fail(e);
        }
        // The project's [worktree] setup and copies, as for a merge's re-check.
        if let Err(setup) = super::prepare::ready_recheck(prep, scratch, &p.log) {
            return SyncOutcome::ChecksFailed {
                results: vec![setup],
            };
        }
        results = ctx.checks.run(scratch, &p.checks, &p.log);
        if results.iter().any(|r| !r.passed) {
            return SyncOutcome::ChecksFailed { results };
        }
    }
    SyncOutcome::Ready { tip, results }
}

/// Move the integration branch to a sync's tip by compare-and-swap from `from`. When git fails,
/// where the branch is decides: still at `from` is a failure (nothing moved); anywhere else is
/// someone else's move (or ours, when it is at `tip`).
pub fn sync_move_job(ctx: &JobCtx, refname: String, tip: String, from: String) -> Job {
    let ctx = ctx.clone();
    Box::new(move || {
        let git = ctx.git.as_ref();
        let result = match git.cas_update_ref(&refname, &tip, &from) {
            Ok(true) => MoveOutcome::Moved,
            Ok(false) => match git.rev_parse(&refname) {
                Ok(found) => MoveOutcome::NotWhereLeft { found },
                Err(e) => MoveOutcome::Failed(failure(e)),
            },
            Err(e) => match git.rev_parse(&refname) {
                Ok(Some(now)) if now == tip => MoveOutcome::Moved,
                Ok(Some(now)) if now == from => MoveOutcome::Failed(failure(e)),
                Ok(found) => MoveOutcome::NotWhereLeft { found },
                Err(_) => MoveOutcome::Failed(failure(e)),
            },
        };
        Incoming::Event(Event::SyncMoved { tip, result })
    })
}
