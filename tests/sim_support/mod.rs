//! The deterministic simulator: a random plan and config from a seed, the real decision function
//! and executor and ledger, fake git/agents/checks/clock, and random interleavings of everything
//! that can happen — agents finishing, failing, committing on their own, hanging, lying; human
//! commands at any moment; the integration branch moved by someone else; git failures; a busy
//! ledger; the supervisor crashing and restarting at any step. The invariants are checked after
//! every step; a failing seed replays exactly (`SIM_SEED=N cargo test --test sim replay`).

#![allow(dead_code)]

mod fake_agent;
pub mod fake_git;
mod invariants;
mod launch_checks;
mod upstream;
pub mod world;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use orch_tui::core::config::parse_config;
use orch_tui::core::domain::AttemptId;
use orch_tui::core::domain::FunnelStage;
use orch_tui::core::human::HumanCommand;
use orch_tui::core::state::TaskState;
use orch_tui::core::supervisor::{Faults, Roots, Supervisor};
use orch_tui::engine::executor::{Executor, SetupEnv};
use orch_tui::engine::jobs::JobCtx;
use orch_tui::engine::real_store::SqliteStore;
use orch_tui::engine::world::Incoming;
use orch_tui::engine::{RunEnd, apply_human};
use orch_tui::ledger::{Ledger, TaskDefaults, with_clock};

use fake_git::{FakeGit, Repo};
use world::{Rng, Shared, SimAgents, SimChecks, SimRuntime, SimStore, World, lock};

/// What a run may throw at the supervisor.
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    pub steps: usize,
    pub crash_percent: u64,
    pub human_percent: u64,
    pub move_integration_percent: u64,
    /// The base (`main`) moves upstream and a sync is asked for.
    pub sync_percent: u64,
    pub git_fail_percent: u64,
    pub busy_percent: u64,
    pub faults: Faults,
    /// Fakes' own old bugs (their real counterparts are in git and the OS module).
    pub own_commits_ignored: bool,
    pub reap_by_pid_only: bool,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            steps: 120,
            crash_percent: 3,
            human_percent: 4,
            move_integration_percent: 1,
            sync_percent: 2,
            git_fail_percent: 2,
            busy_percent: 2,
            faults: Faults::default(),
            own_commits_ignored: false,
            reap_by_pid_only: false,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub steps: usize,
    pub crashes: usize,
    pub tasks: usize,
    pub done: usize,
    /// Syncs that moved the branch (of them, finished by a restart) and that stopped.
    pub synced: usize,
    pub sync_recovered: usize,
    pub sync_stopped: usize,
    /// Supervisors started to only recover and sync (as `orch-tui sync` does).
    pub sync_only: usize,
    /// Agent states the supervisor recorded from a (fake) watched screen.
    pub screen_states: usize,
    /// Agents held (frozen) for a paused task.
    pub holds: usize,
    /// Change requests typed into sessions kept alive through review.
    pub turns: usize,
    /// Headless sessions ended at a pause, and conversations a later attempt resumed.
    pub pause_ends: usize,
    pub resumed: usize,
    /// Attempts started on a candidate tip (a dependency in its veto window), and of them the
    /// ones let go because that dependency was vetoed or did not merge.
    pub speculative: usize,
    pub let_go: usize,
    /// Attempts a restarted supervisor adopted from their holders; of them held for a paused
    /// task, and sessions kept through review.
    pub adoptions: usize,
    pub adopted_held: usize,
    pub adopted_kept: usize,
}

/// A seed that broke an invariant: what, where, and the last things that happened.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub step: usize,
    pub what: String,
    pub trace: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at step {}: {}\nreplay: SIM_SEED={} cargo test --test sim replay -- --nocapture\nlast events:\n{}",
            self.seed, self.step, self.what, self.seed, self.trace
        )
    }
}

const WORKTREES: &str = "/sim/.orch/worktrees";

fn plan_text(rng: &mut Rng) -> String {
    let n = 3 + rng.below(6) as usize;
    let mut s = String::from("[plan]\nname = \"sim\"\n\n");
    for i in 0..n {
        let mut deps = Vec::new();
        for j in 0..i {
            if rng.chance(30) {
                deps.push(format!("\"t{j}\""));
            }
        }
        s.push_str(&format!(
            "[[task]]\nid = \"t{i}\"\ntitle = \"task {i}\"\nprompt = \"do {i}\"\nagent = \"sim\"\ndepends_on = [{}]\nmax_attempts = {}\n",
            deps.join(", "),
            2 + rng.below(2)
        ));
        if rng.chance(40) {
            let money = if rng.chance(30) {
                format!(
                    ", tokens = {}, cost_usd = {}",
                    2_000 + rng.below(12_000),
                    0.01 + rng.below(40) as f64 / 1000.0
                )
            } else {
                String::new()
            };
            s.push_str(&format!(
                "budget = {{ time = \"{}ms\"{money} }}\n",
                1500 + rng.below(3000)
            ));
        }
        if rng.chance(10) {
            s.push_str("risk = \"high\"\n");
        }
        s.push('\n');
    }
    s
}

fn config_text(rng: &mut Rng) -> String {
    let autonomy = *rng
        .pick(&["out-of-the-loop", "on-the-loop", "in-the-loop"])
        .unwrap_or(&"out-of-the-loop");
    let checks = if rng.chance(60) {
        "[\"make check\"]"
    } else {
        "[]"
    };
    let reviewer = if rng.chance(40) { "sim" } else { "" };
    let run_budget = if rng.chance(10) {
        format!(
            "[budgets]\nrun = {{ tokens = {} }}\n\n",
            20_000 + rng.below(60_000)
        )
    } else {
        String::new()
    };
    // Some runs' agents are interactive sessions (Codex in its PTY, faked): they stay alive
    // through review, take change requests typed into them, and end on their exit command.
    // Others are headless sessions (`codex exec`, faked): ended at a pause, their conversation
    // resumed (`exec resume`) by the next attempt.
    let session = if rng.chance(35) {
        "command = [\"{orch}\", \"sim-agent\"]\ninteractive = [\"{orch}\", \"sim-agent\"]\n\
         mode = \"interactive\"\nadapter = \"codex\"\n"
    } else if rng.chance(40) {
        "command = [\"{orch}\", \"sim-agent\"]\nadapter = \"codex\"\n"
    } else {
        ""
    };
    format!(
        "slots = {}\ndefault_agent = \"sim\"\nstop_grace = \"300ms\"\nbase = \"refs/heads/main\"\n\n[retry]\nbackoff_base = \"20ms\"\nbackoff_cap = \"200ms\"\n\n\
         [funnel]\nchecks = {checks}\nreviewer = \"{reviewer}\"\nautonomy = \"{autonomy}\"\nveto_window = \"400ms\"\n\n\
         [limits]\nwait = \"{}ms\"\nbreaker_failures = 2\nbreaker_cooldown = \"300ms\"\n\n{run_budget}\
         [permissions]\ndeny = [\"Bash(rm *)\"]\n\n[agents.sim]\nfallback = [\"sim2\"]\n{session}\n\
         [agents.sim2]\ncommand = [\"{{orch}}\", \"sim-agent\"]\nadapter = \"sim\"\nmax_concurrent = 2\n",
        1 + rng.below(4),
        200 + rng.below(800)
    )
}

/// One supervisor's life in the simulated world.
fn boot(
    world: &Shared,
    cfg: &orch_tui::core::config::Config,
    path: &std::path::Path,
    seed: u64,
    faults: Faults,
    only_sync: bool,
    stay_open: bool,
) -> Executor {
    let mut ledger = Ledger::open(path).expect("ledger");
    let epoch = {
        let now = lock(world).now;
        with_clock(now, || ledger.begin_epoch(1)).expect("epoch")
    };
    lock(world).epoch = epoch as u64;
    let mut counter = seed;
    let token = Box::new(move || {
        counter = counter.wrapping_mul(6364136223846793005).wrapping_add(1);
        format!("{counter:032x}")
    });
    let store = SimStore {
        inner: SqliteStore::new(ledger, token).expect("store"),
        world: world.clone(),
    };
    let git = lock(world).git.clone();
    let rt = SimRuntime {
        world: world.clone(),
    };
    let ctx = JobCtx {
        git: Arc::new(git),
        agents: Arc::new(SimAgents {
            world: world.clone(),
        }),
        checks: Arc::new(SimChecks {
            world: world.clone(),
        }),
        sink: orch_tui::engine::world::Runtime::sink(&rt),
    };
    let roots = Roots {
        worktrees: WORKTREES.into(),
        logs: "/sim/.orch/logs".into(),
    };
    let mut core = Supervisor::new(cfg.clone(), roots, epoch, seed ^ epoch as u64);
    core.set_faults(faults);
    if only_sync {
        core.set_only_sync();
    }
    let env = SetupEnv {
        ledger_path: path.to_string_lossy().to_string(),
        prompts_dir: path
            .parent()
            .map(|p| p.join("prompts"))
            .unwrap_or_default()
            .to_string_lossy()
            .to_string(),
        worktrees_dir: WORKTREES.into(),
        orch_bin: "orch-tui".into(),
        rotate_bytes: 0,
    };
    let w = world.clone();
    let progress = Box::new(move |line: &str| lock(&w).note(line.to_string()));
    let mut exec = Executor::new(
        core,
        Box::new(store),
        Box::new(rt),
        ctx,
        env,
        progress,
        stay_open && !only_sync,
    );
    exec.boot().expect("boot");
    if std::env::var("SIM_DEBUG").is_ok() {
        eprintln!("booted: {:?}", exec.supervisor().model.sync);
    }
    exec
}

/// The TUI's terminal closes: the supervisor goes on headless (and ends once settled).
fn hang_up(world: &Shared, terminal: &mut bool) {
    *terminal = false;
    let mut w = lock(world);
    w.note("— the TUI's terminal closed; supervising headless —".into());
    w.inbox
        .push_back(orch_tui::engine::world::Incoming::EndWhenSettled);
}

/// The human, at a random moment: a command on a random task (most are refused, as they would be).
fn human(world: &Shared, ledger: &mut Ledger, rng: &mut Rng) {
    // Typing into a live session's pane (a change request must wait until they stop).
    if rng.chance(20) {
        let mut w = lock(world);
        let generation = w.generation;
        let sessions: Vec<AttemptId> = w
            .procs
            .values()
            .filter(|p| p.alive && p.interactive && p.generation == generation)
            .map(|p| p.attempt)
            .collect();
        if let Some(&attempt) = rng.pick(&sessions) {
            w.inbox.push_back(Incoming::Input {
                attempt,
                bytes: b"h".to_vec(),
            });
            w.note(format!("the human types into attempt {attempt}'s pane"));
        }
        return;
    }
    let rows = ledger.tasks().unwrap_or_default();
    let tasks: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
    let in_state = |s: TaskState| -> Vec<String> {
        rows.iter()
            .filter(|t| t.state == s)
            .map(|t| t.id.clone())
            .collect()
    };
    // Pausing a task while its agent works, and resuming it later, are stories of their own
    // (the agent is held, not stopped): told often enough to happen in most runs.
    let (working, paused) = (in_state(TaskState::Working), in_state(TaskState::Paused));
    // A veto during the window is a story of its own too (dependents may have started on the
    // candidate tip meanwhile).
    let windows: Vec<String> = rows
        .iter()
        .filter(|t| t.state == TaskState::Review && t.stage == Some(FunnelStage::Veto))
        .map(|t| t.id.clone())
        .collect();
    let (task, cmd) = if !windows.is_empty() && rng.chance(20) {
        (rng.pick(&windows).cloned(), HumanCommand::Reject)
    } else if !working.is_empty() && rng.chance(30) {
        (rng.pick(&working).cloned(), HumanCommand::Pause)
    } else if !paused.is_empty() && rng.chance(30) {
        (rng.pick(&paused).cloned(), HumanCommand::Resume)
    } else {
        let cmd = *rng
            .pick(&[
                HumanCommand::Retry,
                HumanCommand::Cancel,
                HumanCommand::Pause,
                HumanCommand::Resume,
                HumanCommand::Approve,
                HumanCommand::Reject,
                HumanCommand::Retry,
                HumanCommand::Approve,
                HumanCommand::Hold,
            ])
            .unwrap_or(&HumanCommand::Retry);
        (rng.pick(&tasks).cloned(), cmd)
    };
    let Some(task) = task else {
        return;
    };
    let now = lock(world).now;
    if rng.chance(15) {
        // `orch-tui extend`: more of one budget, continuing or starting over.
        let ext = orch_tui::engine::Extension {
            time_ms: rng.chance(50).then_some(1000 + rng.below(2000)),
            tokens: rng.chance(50).then_some(1000 + rng.below(10_000)),
            cost_usd: Some(0.01 + rng.below(20) as f64 / 1000.0),
            retry: rng.chance(30),
        };
        let r = with_clock(now, || {
            orch_tui::engine::apply_extend(ledger, &task, &ext, None)
        });
        let mut w = lock(world);
        w.note(format!(
            "human extend {task}: {}",
            r.as_ref().map_or_else(|e| e.to_string(), |s| s.clone())
        ));
        w.inbox.push_back(orch_tui::engine::world::Incoming::Poke);
        return;
    }
    let note = (cmd == HumanCommand::Reject).then_some("try again");
    let r = with_clock(now, || apply_human(ledger, cmd, &task, note));
    let mut w = lock(world);
    w.note(format!(
        "human {} {task}: {}",
        cmd.name(),
        r.as_ref().map_or_else(|e| e.to_string(), |s| s.clone())
    ));
    w.inbox.push_back(orch_tui::engine::world::Incoming::Poke);
}

/// Someone moves the integration branch (a rewind to its parent), or puts it back and releases
/// the hold as `orch-tui integration restore` does.
fn meddle(world: &Shared, ledger: &mut Ledger, rng: &mut Rng, moved: &mut Option<String>) {
    let git = lock(world).git.clone();
    let key = "refs/heads/orch/integration".to_string();
    match moved.take() {
        None => {
            let mut r = git.lock();
            let Some(tip) = r.refs.get(&key).cloned() else {
                return;
            };
            let parent = r.commits.get(&tip).and_then(|c| c.parents.first().cloned());
            let Some(parent) = parent else { return };
            if rng.chance(50) {
                r.refs.insert(key, parent);
            } else {
                r.refs.remove(&key);
            }
            *moved = Some(tip);
            drop(r);
            let mut w = lock(world);
            w.meddled = true;
            w.note("someone moved the integration branch".into());
        }
        Some(tip) => {
            git.lock().refs.insert(key, tip);
            let now = lock(world).now;
            let ops = vec![
                orch_tui::core::ops::Op::SetHold { hold: None },
                orch_tui::core::ops::Op::Event {
                    task: None,
                    attempt: None,
                    actor: orch_tui::core::domain::Actor::Human,
                    kind: orch_tui::core::domain::EventKind::Note,
                    data: orch_tui::core::ops::EventData::why("integration restored"),
                },
            ];
            let _ = with_clock(now, || {
                ledger.write(|tx| orch_tui::ledger::apply_ops(tx, &ops, &mut String::new))
            });
            let mut w = lock(world);
            w.note("the integration branch was put back; hold released".into());
            w.inbox.push_back(orch_tui::engine::world::Incoming::Poke);
        }
    }
}

/// Run one seed. `Err` names the first broken invariant.
pub fn run_seed(seed: u64, chaos: Chaos) -> Result<Stats, Failure> {
    let mut rng = Rng(seed);
    let dir = tempfile::Builder::new()
        .prefix("orch-sim-")
        .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .expect("tempdir");
    let path = dir.path().join("ledger.db");
    let cfg = parse_config("sim.toml", &config_text(&mut rng)).expect("sim config");
    let plan = orch_tui::core::plan::parse_plan("plan.toml", &plan_text(&mut rng), &|_| {
        Err("no specs".into())
    })
    .expect("sim plan");
    {
        let mut l = Ledger::open(&path).expect("ledger");
        l.load_plan(
            &plan,
            "plan.toml",
            &TaskDefaults {
                max_attempts: 3,
                budget_time_ms: Some(6_000),
                budget_tokens: None,
                budget_cost_usd: None,
            },
        )
        .expect("load");
    }
    let mut files = BTreeMap::new();
    files.insert("README.md".to_string(), "scratch".to_string());
    let repo = Repo::new(files);
    let main = repo.refs["refs/heads/main"].clone();
    let mut repo = repo;
    repo.refs.insert("refs/heads/orch/integration".into(), main);
    repo.fault_own_commits_ignored = chaos.own_commits_ignored;
    let git = FakeGit {
        repo: Arc::new(Mutex::new(repo)),
        worktrees_dir: WORKTREES.into(),
    };
    let world: Shared = Arc::new(Mutex::new(World::new(
        seed ^ 0x5eed,
        git,
        Ledger::open(&path).expect("ledger"),
    )));
    lock(&world).fault_reap_by_pid_only = chaos.reap_by_pid_only;
    let mut human_ledger = Ledger::open(&path).expect("ledger");
    // A TUI supervisor stays open once settled, until its terminal closes (SIGHUP): then it
    // ends like a headless run (`Incoming::EndWhenSettled`). Until then every restart is a TUI.
    let mut terminal = rng.chance(25);
    let mut exec = boot(&world, &cfg, &path, seed, chaos.faults, false, terminal);
    // A supervisor that only recovers and syncs, as `orch-tui sync` starts when none runs.
    let mut only_sync = false;
    let mut stats = Stats {
        tasks: plan.tasks.len(),
        ..Stats::default()
    };
    let mut moved: Option<String> = None;
    let fail = |step: usize, what: String, world: &Shared| {
        let w = lock(world);
        Failure {
            seed,
            step,
            what,
            trace: w.trace.iter().cloned().collect::<Vec<_>>().join("\n"),
        }
    };
    let mut step = 0usize;
    let limit = chaos.steps + 4000;
    loop {
        step += 1;
        let chaotic = step <= chaos.steps;
        if chaotic {
            if rng.chance(chaos.human_percent) {
                human(&world, &mut human_ledger, &mut rng);
            }
            if rng.chance(chaos.move_integration_percent) || (moved.is_some() && rng.chance(10)) {
                meddle(&world, &mut human_ledger, &mut rng, &mut moved);
            }
            if rng.chance(chaos.sync_percent) {
                upstream::sync_asked(&world, &mut human_ledger, &mut rng);
            }
            if rng.chance(chaos.git_fail_percent) {
                let op = *rng
                    .pick(&[
                        "prepare_worktree",
                        "collect",
                        "replay_onto",
                        "cas_update_ref",
                        "tidy",
                    ])
                    .unwrap_or(&"collect");
                let timeout = rng.chance(30);
                lock(&world).git.lock().fail_next.push_back((op, timeout));
            }
            if rng.chance(chaos.busy_percent) {
                lock(&world).busy_writes += 1 + rng.below(4) as u32;
            }
            if terminal && rng.chance(1) {
                hang_up(&world, &mut terminal);
            }
            if rng.chance(chaos.crash_percent) {
                stats.crashes += 1;
                let jobs = lock(&world).crash();
                for job in jobs {
                    if rng.chance(50) {
                        let _ = job();
                    }
                }
                lock(&world).note("— supervisor crashed —".into());
                drop(exec);
                let asked = human_ledger
                    .integration()
                    .is_ok_and(|r| r.sync.request.is_some());
                only_sync = asked && rng.chance(40);
                exec = boot(
                    &world,
                    &cfg,
                    &path,
                    seed.wrapping_add(step as u64),
                    chaos.faults,
                    only_sync,
                    terminal,
                );
            }
        } else {
            // The settling phase: no more chaos (faults still queued are dropped); the human
            // answers what waits for them.
            if step == chaos.steps + 1 {
                lock(&world).git.lock().fail_next.clear();
                // Nobody quits the TUI in the simulation: its terminal closes, and the run
                // must then end by itself.
                if terminal {
                    hang_up(&world, &mut terminal);
                }
            }
            if let Some(tip) = moved.clone() {
                let _ = tip;
                meddle(&world, &mut human_ledger, &mut rng, &mut moved);
            }
            settle_human(&world, &mut human_ledger);
        }
        let end = exec.step_once();
        if only_sync && matches!(end, Ok(Some(_))) {
            // `orch-tui sync` did its part and stopped; the next `orch-tui run` takes over.
            lock(&world).note("— the sync-only supervisor stopped; a run starts —".into());
            stats.sync_only += 1;
            drop(exec);
            only_sync = false;
            exec = boot(
                &world,
                &cfg,
                &path,
                seed ^ step as u64,
                chaos.faults,
                false,
                terminal,
            );
            continue;
        }
        stats.steps = step;
        stats.holds = lock(&world).holds;
        stats.turns = lock(&world).turns;
        stats.pause_ends = lock(&world).pause_ends;
        stats.resumed = lock(&world).resumed;
        stats.adoptions = lock(&world).adoptions;
        stats.adopted_held = lock(&world).adopted_held;
        stats.adopted_kept = lock(&world).adopted_kept;
        match end {
            Ok(Some(RunEnd::Stopped)) | Err(_) => {
                return Err(fail(
                    step,
                    format!("the run ended unexpectedly: {end:?}"),
                    &world,
                ));
            }
            Ok(Some(_)) if !chaotic => {
                if let Err(what) = invariants::at_end(&world, &exec, &path) {
                    return Err(fail(step, what, &world));
                }
                stats.done = human_ledger
                    .tasks()
                    .map(|t| t.iter().filter(|t| t.state == TaskState::Done).count())
                    .unwrap_or(0);
                let events = human_ledger.events(0, None, 1_000_000).unwrap_or_default();
                use orch_tui::core::domain::EventKind;
                for e in &events {
                    match e.kind {
                        EventKind::Synced => {
                            stats.synced += 1;
                            let why = e.data["why"].as_str().unwrap_or_default();
                            stats.sync_recovered += usize::from(why.contains("recovered"));
                        }
                        EventKind::SyncStopped => stats.sync_stopped += 1,
                        _ => {}
                    }
                }
                stats.screen_states = human_ledger
                    .conn()
                    .query_row(
                        "SELECT COUNT(*) FROM events WHERE kind = 'agent_state'
                           AND json_extract(data, '$.rule') LIKE 'screen:%'",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                    .unwrap_or(0) as usize;
                let count = |sql: &str| {
                    human_ledger
                        .conn()
                        .query_row(sql, [], |r| r.get::<_, i64>(0))
                        .unwrap_or(0) as usize
                };
                stats.speculative =
                    count("SELECT COUNT(*) FROM attempts WHERE spec_on IS NOT NULL");
                stats.let_go = count(
                    "SELECT COUNT(*) FROM attempts WHERE spec_on IS NOT NULL
                       AND state = 'abandoned' AND reason LIKE '%candidate tip%'",
                );
                return Ok(stats);
            }
            Ok(_) => {}
        }
        if let Err(what) = invariants::every_step(&world, &exec, &human_ledger) {
            return Err(fail(step, what, &world));
        }
        if step > limit {
            return Err(fail(
                step,
                format!("the run did not settle: {}", exec.supervisor().activity()),
                &world,
            ));
        }
    }
}

/// The human, once the storm is over: approves what waits for approval and resumes what was
/// paused while it worked (its agent is held for it), so the run can end.
fn settle_human(world: &Shared, ledger: &mut Ledger) {
    let paused: Vec<String> = ledger
        .tasks()
        .map(|ts| {
            ts.into_iter()
                .filter(|t| {
                    t.state == TaskState::Paused && t.paused_from == Some(TaskState::Working)
                })
                .map(|t| t.id)
                .collect()
        })
        .unwrap_or_default();
    let now = lock(world).now;
    for t in &paused {
        let _ = with_clock(now, || apply_human(ledger, HumanCommand::Resume, t, None));
    }
    let waiting: Vec<String> = ledger
        .tasks()
        .map(|ts| {
            ts.into_iter()
                .filter(|t| {
                    t.state == TaskState::Review
                        && t.stage == Some(orch_tui::core::domain::FunnelStage::Human)
                })
                .map(|t| t.id)
                .collect()
        })
        .unwrap_or_default();
    if waiting.is_empty() {
        if !paused.is_empty() {
            lock(world)
                .inbox
                .push_back(orch_tui::engine::world::Incoming::Poke);
        }
        return;
    }
    for t in waiting {
        let _ = with_clock(now, || apply_human(ledger, HumanCommand::Approve, &t, None));
    }
    lock(world)
        .inbox
        .push_back(orch_tui::engine::world::Incoming::Poke);
}
