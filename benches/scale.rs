//! `cargo bench --bench scale`: the supervisor's own cost per task as the plan grows (issue 11,
//! goal 4: flat from 100 to 10,000 tasks).
//!
//! The real decision function, executor and SQLite ledger (a file in a temporary folder, as a
//! run has it) run whole plans against a world where git, agents and checks answer at once
//! (`scale_world`), so every millisecond measured is the supervisor's. Two plan shapes: `wide`
//! (every task independent: all of them ready at once, the dispatcher's worst case) and
//! `layered` (each task depends on up to two of the 50 before it). Prints, per plan size, the
//! tasks merged per second and the CPU per task; flat per task = linear in the plan.
//!
//! Knobs: `BENCH_SIZES` (default `100,1000,10000`), `BENCH_SHAPES` (default `wide,layered`),
//! `BENCH_SLOTS` (default 4).

#[allow(dead_code)] // the other benches use the rest
mod common;
mod scale_world;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use common::Rng;
use orch_tui::core::config::parse_config;
use orch_tui::core::supervisor::{Roots, Supervisor};
use orch_tui::engine::RunEnd;
use orch_tui::engine::executor::{Executor, SetupEnv};
use orch_tui::engine::jobs::JobCtx;
use orch_tui::engine::real_store::SqliteStore;
use orch_tui::engine::world::Runtime;
use orch_tui::ledger::{Ledger, TaskDefaults};
use scale_world::{Counters, InlineRuntime, InstantAgents, InstantGit, PassingChecks};

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let shapes: Vec<String> = std::env::var("BENCH_SHAPES")
        .unwrap_or_else(|_| "wide,layered".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let slots: u32 = std::env::var("BENCH_SLOTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    println!("orch-tui supervisor scale bench (git, agents and checks instant; real ledger)");
    println!("  slots: {slots}; load average: {}", load());
    println!(
        "  {:<8} {:>6} {:>9} {:>10} {:>12} {:>10} {:>11} {:>9}",
        "shape", "tasks", "wall s", "tasks/s", "CPU/task µs", "rounds/task", "jobs/task", "idle ms"
    );
    for shape in &shapes {
        for &n in &sizes {
            run(shape, n, slots);
        }
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn plan_text(shape: &str, n: usize) -> String {
    let mut rng = Rng(n as u64 ^ 0x5ca1e);
    let mut s = String::from("[plan]\nname = \"scale\"\n\n");
    for i in 0..n {
        let mut deps: Vec<String> = Vec::new();
        if shape == "layered" && i > 0 {
            for _ in 0..2 {
                let back = 1 + rng.below(50.min(i));
                let d = format!("\"t{}\"", i - back);
                if !deps.contains(&d) {
                    deps.push(d);
                }
            }
        }
        s.push_str(&format!(
            "[[task]]\nid = \"t{i}\"\ntitle = \"task {i}\"\nprompt = \"do {i}\"\ndepends_on = [{}]\n\n",
            deps.join(", ")
        ));
    }
    s
}

fn cpu_ms() -> f64 {
    // This thread's CPU: the loop runs every job inline, so it is the supervisor's whole cost.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn run(shape: &str, n: usize, slots: u32) {
    let dir = tempfile::Builder::new()
        .prefix("orch-scale-")
        .tempdir()
        .expect("tempdir");
    let path = dir.path().join("ledger.db");
    let cfg = parse_config(
        "scale.toml",
        &format!(
            "slots = {slots}\ndefault_agent = \"sim\"\nbase = \"refs/heads/main\"\n\n\
             [funnel]\nchecks = []\nreviewer = \"\"\nautonomy = \"out-of-the-loop\"\n"
        ),
    )
    .expect("config");
    let plan = orch_tui::core::plan::parse_plan("plan.toml", &plan_text(shape, n), &|_| {
        Err("no specs".into())
    })
    .expect("plan");
    Ledger::open(&path)
        .expect("ledger")
        .load_plan(
            &plan,
            "plan.toml",
            &TaskDefaults {
                max_attempts: 3,
                budget_time_ms: None,
                budget_tokens: None,
                budget_cost_usd: None,
            },
        )
        .expect("load");
    let mut ledger = Ledger::open(&path).expect("ledger");
    let epoch = ledger.begin_epoch(std::process::id()).expect("epoch");
    let mut counter = 0u64;
    let store = SqliteStore::new(
        ledger,
        Box::new(move || {
            counter += 1;
            format!("{counter:032x}")
        }),
    )
    .expect("store");
    let git = InstantGit::new();
    let agents = InstantAgents::default();
    let counters = Arc::new(Counters::default());
    let rt = InlineRuntime::new(agents.clone(), counters.clone());
    let ctx = JobCtx {
        git: Arc::new(git.clone()),
        agents: Arc::new(agents),
        checks: Arc::new(PassingChecks),
        sink: rt.sink(),
    };
    let worktrees = dir.path().join("worktrees").to_string_lossy().to_string();
    let roots = Roots {
        worktrees: worktrees.clone(),
        logs: dir.path().join("logs").to_string_lossy().to_string(),
    };
    let core = Supervisor::new(cfg, roots, epoch, 1);
    let env = SetupEnv {
        ledger_path: path.to_string_lossy().to_string(),
        prompts_dir: dir.path().join("prompts").to_string_lossy().to_string(),
        worktrees_dir: worktrees,
        orch_bin: "orch-tui".into(),
        rotate_bytes: 0,
    };
    let mut rounds = 0u64;
    let mut exec = Executor::new(
        core,
        Box::new(store),
        Box::new(rt),
        ctx,
        env,
        Box::new(|_| {}),
        false,
    );
    let (t0, c0) = (Instant::now(), cpu_ms());
    exec.boot().expect("boot");
    let end = loop {
        rounds += 1;
        if let Some(end) = exec.step_once().expect("step") {
            break end;
        }
    };
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_ms() - c0);
    let merged = git.merged();
    assert!(
        matches!(end, RunEnd::AllDone) && merged == n,
        "{shape} {n}: the run ended {end:?} with {merged} of {n} tasks merged"
    );
    println!(
        "  {:<8} {:>6} {:>9.2} {:>10.0} {:>12.0} {:>10.1} {:>11.1} {:>9}",
        shape,
        n,
        wall,
        n as f64 / wall,
        cpu * 1e3 / n as f64,
        rounds as f64 / n as f64,
        counters.jobs.load(Ordering::Relaxed) as f64 / n as f64,
        counters.idle_ms.load(Ordering::Relaxed)
    );
}
