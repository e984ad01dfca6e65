//! `cargo bench --bench plans`: how plan validation and loading grow with the plan (issue #11:
//! 10,000 tasks validated in < 0.5 s and loaded in < 2 s; a 10 MB plan in < 1 s).
//!
//! Prints figures only (no pass/fail). For each plan size: the real binary's `plan validate` and
//! `plan load` (a fresh ledger, then the same plan again), wall time from process start to exit;
//! and, in this process, parsing + validation (`cli::load::load_plan`) apart from the ledger's
//! `load_plan`, with the time per task so growth shows at a glance (flat = linear).
//! Knobs: `BENCH_PLAN_SIZES` (comma list, default `1000,2000,5000,10000`), `BENCH_RUNS` (runs per
//! figure, the median is printed; default 3), `BENCH_BIN` (another `orch-tui` binary for the
//! binary's figures, e.g. a copy of an older build to compare in the same run).

#[allow(dead_code)] // the shared helpers this bench does not use
mod common;

use common::Rng;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use orch_tui::ledger::{Ledger, TaskDefaults};

fn bin() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_orch-tui").to_string())
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_PLAN_SIZES")
        .unwrap_or_else(|_| "1000,2000,5000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    println!("orch-tui plans bench");
    println!(
        "  binary: {}\n  cores: {}\n  load average at start: {}",
        bin(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let tmp = tempfile::Builder::new()
        .prefix("orch-bench-plans-")
        .tempdir()
        .expect("tempdir");
    let dir = tmp.path();
    scratch_repo(dir);

    println!(
        "\n[1] plan size -> wall time of the real binary (median of {runs}), and in-process split"
    );
    let mut cases: Vec<(String, String)> = sizes
        .iter()
        .map(|&n| (format!("{n} tasks"), plan_toml(n, 60, 0, 7)))
        .collect();
    // About 1 KB of prompt per task, some of it outside ASCII (columns count characters).
    cases.push(("10 MB".into(), plan_toml(10_000, 1000, 0, 11)));
    for (label, text) in &cases {
        measure(dir, label, text, runs, true);
    }

    println!("\n[2] a broken plan: every 10th task names an unknown dependency (validation only)");
    let n = sizes.iter().copied().max().unwrap_or(10_000);
    let bad = plan_toml(n, 60, 10, 13);
    measure(
        dir,
        &format!("{n} tasks, {} errors", n / 10),
        &bad,
        runs,
        false,
    );
    println!("\n  load average at the end: {}", load_average());
}

/// One plan: binary validate / load / reload, then the in-process split.
fn measure(dir: &Path, label: &str, text: &str, runs: usize, load: bool) {
    let file = dir.join("plan.toml");
    std::fs::write(&file, text).expect("write plan");
    let tasks = text.matches("[[task]]").count();
    let mb = text.len() as f64 / 1e6;
    println!("  {label}: {tasks} tasks, {mb:.2} MB");

    let validate = median(runs, || {
        let (secs, code) = run_bin(dir, &["plan", "validate", "plan.toml"]);
        // A broken plan exits 2 with every error listed; a good one 0.
        assert_eq!(code, if load { 0 } else { 2 }, "plan validate exit code");
        secs
    });
    print_row("orch-tui plan validate", validate, tasks);
    if !load {
        let t = Instant::now();
        let res = orch_tui::cli::load::load_plan(&file);
        let errors = res.err().map_or(0, |e| e.len());
        print_row(
            &format!("in-process parse+validate ({errors} errors)"),
            t.elapsed().as_secs_f64(),
            tasks,
        );
        return;
    }
    let (mut first, mut again) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        fresh_ledger(dir);
        let (secs, code) = run_bin(dir, &["plan", "load", "plan.toml"]);
        assert_eq!(code, 0, "plan load exit code");
        first.push(secs);
        let (secs, code) = run_bin(dir, &["plan", "load", "plan.toml"]);
        assert_eq!(code, 0, "plan reload exit code");
        again.push(secs);
    }
    print_row("orch-tui plan load (fresh ledger)", mid(&mut first), tasks);
    print_row(
        "orch-tui plan load (again, unchanged)",
        mid(&mut again),
        tasks,
    );

    // In-process: where the time goes.
    let (mut parse, mut ledger_first) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let plan = orch_tui::cli::load::load_plan(&file).expect("the plan is valid");
        parse.push(t.elapsed().as_secs_f64());
        fresh_ledger(dir);
        let mut ledger = Ledger::open(&dir.join(".orch/ledger.db")).expect("open ledger");
        let defaults = TaskDefaults {
            max_attempts: 3,
            budget_time_ms: None,
            budget_tokens: None,
            budget_cost_usd: None,
        };
        let t = Instant::now();
        ledger
            .load_plan(&plan, "plan.toml", &defaults)
            .expect("load the plan");
        ledger_first.push(t.elapsed().as_secs_f64());
    }
    print_row(
        "  in-process: read + parse + validate",
        mid(&mut parse),
        tasks,
    );
    print_row(
        "  in-process: Ledger::load_plan",
        mid(&mut ledger_first),
        tasks,
    );
}

fn print_row(label: &str, secs: f64, tasks: usize) {
    println!(
        "    {label:<44} {secs:>8.3} s   {:>7.1} us/task",
        secs * 1e6 / tasks.max(1) as f64
    );
}

fn median(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..runs).map(|_| f()).collect();
    mid(&mut v)
}

fn mid(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run_bin(dir: &Path, args: &[&str]) -> (f64, i32) {
    let t = Instant::now();
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run orch-tui");
    (t.elapsed().as_secs_f64(), out.status.code().unwrap_or(-1))
}

fn scratch_repo(dir: &Path) {
    common::git(dir, &["init", "-q", "-b", "main"]);
    common::git(
        dir,
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@orch.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    );
    std::fs::create_dir_all(dir.join(".orch")).expect("mkdir .orch");
    // A generic agent whose program exists, so validation checks everything and prints no
    // simulator warning.
    std::fs::write(
        dir.join(".orch/config.toml"),
        "default_agent = \"script\"\n\n[agents.script]\ncommand = [\"sh\", \"-c\", \"exit 0\"]\nadapter = \"generic\"\n",
    )
    .expect("write config");
}

fn fresh_ledger(dir: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!(".orch/ledger.db{suffix}")));
    }
    let (_, code) = run_bin(dir, &["init"]);
    assert_eq!(code, 0, "orch-tui init");
}

/// A plan of `n` tasks, each depending on 0-3 earlier ones (mostly near it, sometimes far back),
/// with `prompt_bytes` of multi-line prompt. With `bad_every` > 0, every such task also names
/// a dependency that does not exist.
fn plan_toml(n: usize, prompt_bytes: usize, bad_every: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = String::from(
        "[plan]\nname = \"scale\"\n\n[defaults]\nmax_attempts = 2\nbudget = { time = \"20m\" }\n\n",
    );
    let words = [
        "implement",
        "the",
        "parser",
        "for",
        "café",
        "menus",
        "and",
        "test",
        "it",
        "→",
        "with",
        "edge",
        "cases",
        "naïve",
        "inputs",
    ];
    for i in 0..n {
        let mut deps: Vec<String> = Vec::new();
        if i > 0 {
            for _ in 0..rng.below(4) {
                let d = if rng.below(5) == 0 {
                    rng.below(i)
                } else {
                    i - 1 - rng.below(i.min(30))
                };
                let id = format!("\"t{d:05}\"");
                if !deps.contains(&id) {
                    deps.push(id);
                }
            }
        }
        if bad_every > 0 && i % bad_every == 0 {
            deps.push(format!("\"missing-{i}\""));
        }
        let mut prompt = String::new();
        while prompt.len() < prompt_bytes {
            prompt.push_str(words[rng.below(words.len())]);
            prompt.push(if rng.below(12) == 0 { '\n' } else { ' ' });
        }
        out.push_str(&format!(
            "[[task]]\nid = \"t{i:05}\"\ntitle = \"task {i}: {}\"\npriority = {}\nprompt = \"\"\"\n{prompt}\n\"\"\"\ndepends_on = [{}]\n\n",
            words[i % words.len()],
            rng.below(10),
            deps.join(", ")
        ));
    }
    out
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
