//! `cargo bench --bench throughput`: end-to-end and ledger figures for orch-tui.
//!
//! Prints figures only (no pass/fail). See docs/benchmarks.md for what each one means.
//! Knobs (environment): `BENCH_TASKS` (default 200), `BENCH_LEDGER_TASKS` (default 2000),
//! `BENCH_HEARTBEATS` (default 300), `BENCH_BUSY_TASKS` (default 48, for [6]), `BENCH_ONLY`
//! (comma list of 1..6 to run a subset),
//! `BENCH_KEEP=1` keeps the end-to-end repo and prints its path. `BENCH_GIT_TRACE=1` logs every
//! git process of both sides (`GIT_TRACE2_EVENT`) and prints how many of each per task (the
//! tracing costs CPU: read the CPU figures of a run without it). `BENCH_ORCH_BIN=<path>` runs
//! another build of orch-tui end to end (e.g. main's, to compare two builds in the same
//! conditions; the ledger figures still use this one).

mod common;

use common::{Rng, git};

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orch_tui::core::domain::{AttemptId, AttemptNo, Role};
use orch_tui::core::ops::NewAttempt;
use orch_tui::core::state::TaskState;
use orch_tui::ledger::{self, Actor, EventData, Ledger, Op, Patch, TaskDefaults};
use rusqlite::{Connection, OpenFlags};

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

fn main() {
    let only: Option<Vec<u32>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').filter_map(|p| p.trim().parse().ok()).collect());
    let want = |n: u32| only.as_ref().is_none_or(|o| o.contains(&n));
    println!("orch-tui throughput bench");
    println!(
        "  binary: {BIN}\n  cores: {}\n  date (unix s): {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        ledger::now_ms() / 1000
    );
    if want(1) || want(2) || want(5) {
        let n = env_usize("BENCH_TASKS", 200);
        end_to_end(n, want(1), want(2), want(5));
    }
    if want(6) {
        busy_dispatch(env_usize("BENCH_BUSY_TASKS", 48));
    }
    if want(3) {
        ledger_transitions(env_usize("BENCH_LEDGER_TASKS", 2000));
    }
    if want(4) {
        let calls = env_usize("BENCH_HEARTBEATS", 300);
        heartbeat_latency(calls, Some(Duration::from_millis(2)));
        heartbeat_latency(calls.min(60), None);
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// `assigned -> running` by step, from the `setup steps` and `holder spawn` lines the supervisor
/// logs per attempt (`engine::jobs`, `engine::holder_world`), and the time from the setup job's
/// end to the ledger's `running_ms` (the loop picking the result up and the write).
fn setup_steps(dir: &Path, db: &rusqlite::Connection) {
    let log = std::fs::read_to_string(dir.join(".orch/logs/orch-tui.log")).unwrap_or_default();
    let mut steps: Vec<(String, Vec<f64>)> = Vec::new();
    let mut ends: HashMap<i64, f64> = HashMap::new();
    let mut starts: HashMap<i64, f64> = HashMap::new();
    for l in log.lines() {
        let at = ["setup steps ", "holder spawn ", "pool take "]
            .iter()
            .find_map(|k| l.find(k));
        let Some(at) = at else {
            continue;
        };
        let mut attempt = None;
        for kv in l[at..].split_whitespace() {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<f64>() else { continue };
            match k {
                "attempt" => attempt = Some(v as i64),
                "end_ms" => {
                    if let Some(a) = attempt {
                        ends.insert(a, v);
                    }
                }
                "start_ms" => {
                    if let Some(a) = attempt {
                        starts.insert(a, v);
                    }
                }
                _ => match steps.iter_mut().find(|(n, _)| n == k) {
                    Some((_, xs)) => xs.push(v),
                    None => steps.push((k.to_string(), vec![v])),
                },
            }
        }
    }
    if steps.is_empty() {
        println!("  (no `setup steps` lines in .orch/logs/orch-tui.log)");
        return;
    }
    println!("  assigned -> running by step (setup job, then the loop):");
    for (k, xs) in &steps {
        line(&format!("    {k}"), xs, "ms");
    }
    let mut st = db
        .prepare("SELECT id, started_ms, running_ms FROM attempts WHERE running_ms IS NOT NULL")
        .unwrap();
    let rows: Vec<(i64, i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .filter_map(|r| r.ok())
        .collect();
    let before: Vec<f64> = rows
        .iter()
        .filter_map(|(id, started, _)| starts.get(id).map(|s| s - *started as f64))
        .collect();
    let after: Vec<f64> = rows
        .iter()
        .filter_map(|(id, _, running)| ends.get(id).map(|e| *running as f64 - e))
        .collect();
    line("    started_ms -> job start (loop + thread)", &before, "ms");
    line("    job end -> running_ms (loop + write)", &after, "ms");
}

fn line(label: &str, sample: &[f64], unit: &str) {
    common::line_with(label, sample, unit, 1);
}

/// Seconds a shell loop takes to do each task's minimal git work in turn on a fresh repository:
/// a worktree on a new branch, the task's file written and committed, merged onto `main`
/// (`merge-tree`, `commit-tree`, `update-ref`), the worktree removed.
fn serial_loop(n: usize, git_trace: Option<&Path>) -> f64 {
    let tmp = tempfile::Builder::new()
        .prefix("orch-bench-loop-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).unwrap();
    fresh_repo(&dir);
    let script = format!(
        r#"set -e
for i in $(seq 1 {n}); do
  git worktree add -q -b t$i ../wt$i main
  mkdir -p ../wt$i/f && echo x > ../wt$i/f/t$i.txt
  git -C ../wt$i add -A && git -C ../wt$i commit -q -m "t$i"
  tree=$(git merge-tree --write-tree main t$i)
  c=$(git commit-tree "$tree" -p main -p t$i -m "merge t$i")
  git update-ref refs/heads/main "$c"
  git worktree remove --force ../wt$i
done"#
    );
    let t0 = Instant::now();
    let mut cmd = Command::new("bash");
    if let Some(t) = git_trace {
        cmd.env("GIT_TRACE2_EVENT", t);
    }
    let ok = cmd
        .args(["-c", &script])
        .current_dir(&dir)
        .status()
        .is_ok_and(|s| s.success());
    let secs = t0.elapsed().as_secs_f64();
    assert!(ok, "the serial git loop failed in {}", dir.display());
    secs
}

/// Prints how many git processes of each kind `GIT_TRACE2_EVENT` logged to `path`, per task:
/// every `start` event is one process (those git starts itself included), named by its
/// subcommand (and `worktree`'s verb), global options skipped.
fn git_histogram(side: &str, path: &Path, n: usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for l in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        if v.get("event").and_then(|e| e.as_str()) != Some("start") {
            continue;
        }
        let argv: Vec<&str> = v
            .get("argv")
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let mut words = argv.iter().skip(1);
        let mut name = String::from("(none)");
        while let Some(w) = words.next() {
            if *w == "-C" || *w == "-c" {
                words.next();
            } else if !w.starts_with('-') {
                name = w.to_string();
                if *w == "worktree"
                    && let Some(verb) = words.next()
                {
                    name = format!("worktree {verb}");
                }
                break;
            }
        }
        *counts.entry(name).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!(
        "  git processes, {side}: {total} = {:.1} per task (GIT_TRACE2_EVENT)",
        total as f64 / n as f64
    );
    for (name, c) in rows {
        println!("    {:>6.2}  {name}", c as f64 / n as f64);
    }
}

/// User + system CPU seconds of every child process this one has waited for so far (with
/// theirs): the difference around a run is what the run cost the machine.
fn children_cpu_s() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return 0.0;
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

fn fresh_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "bench"]);
    git(dir, &["config", "user.email", "bench@orch.invalid"]);
    std::fs::write(dir.join("README.md"), "bench\n").unwrap();
    git(dir, &["add", "README.md"]);
    git(dir, &["commit", "-q", "-m", "init"]);
    std::fs::create_dir_all(dir.join(".orch")).unwrap();
    std::fs::write(
        dir.join(".orch/config.toml"),
        // Out of the loop with one instant check: the funnel runs every stage a merge needs
        // without waiting for a human, so the figures are the machine's.
        "slots = 4\ndefault_agent = \"sim\"\n\n[agents.sim]\nmax_concurrent = 4\n\n[funnel]\nautonomy = \"out-of-the-loop\"\nchecks = [\"true\"]\n",
    )
    .unwrap();
}

/// A layered DAG: layers of varying width (narrow waists = fan-in, wide layers = fan-out);
/// each task depends on 0-3 tasks of earlier layers, mostly the previous one.
fn plan_toml(n: usize, seed: u64, directives: &dyn Fn(usize) -> String) -> (String, usize, usize) {
    let widths = [1usize, 6, 14, 3, 10, 24, 2, 16, 8, 1, 20, 12];
    let mut rng = Rng(seed);
    let mut layers: Vec<Vec<usize>> = Vec::new();
    let mut id = 0;
    let mut w = 0;
    while id < n {
        let width = widths[w % widths.len()].min(n - id);
        layers.push((id..id + width).collect());
        id += width;
        w += 1;
    }
    let mut out = String::from("[plan]\nname = \"bench\"\n\n[defaults]\nagent = \"sim\"\n\n");
    let mut edges = 0;
    for (li, layer) in layers.iter().enumerate() {
        for &t in layer {
            let mut deps: Vec<usize> = Vec::new();
            if li > 0 {
                // a narrow layer gathers (fan-in: 3 deps); others take 0-3
                let k = if layer.len() <= 3 { 3 } else { rng.below(4) };
                for _ in 0..k {
                    let from = if li >= 2 && rng.below(4) == 0 {
                        &layers[rng.below(li - 1)]
                    } else {
                        &layers[li - 1]
                    };
                    let d = from[rng.below(from.len())];
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
            }
            edges += deps.len();
            let deps: Vec<String> = deps.iter().map(|d| format!("\"t{d:04}\"")).collect();
            out.push_str(&format!(
                "[[task]]\nid = \"t{t:04}\"\ntitle = \"bench task {t}\"\nprompt = \"\"\"\n{}\"\"\"\ndepends_on = [{}]\n\n",
                directives(t),
                deps.join(", ")
            ));
        }
    }
    (out, layers.len(), edges)
}

fn open_ro(path: &Path) -> Connection {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the ledger read-only");
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

// ---------------------------------------------------------------------------------------------
// 1, 2, 5: a real headless run over a 200-task DAG

struct Ev {
    seq: i64,
    ts: i64,
    task: Option<String>,
    attempt: Option<i64>,
    kind: String,
    from: String,
    to: String,
}

fn end_to_end(n: usize, show1: bool, show2: bool, show5: bool) {
    let tmp = tempfile::Builder::new()
        .prefix("orch-bench-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    fresh_repo(&dir);
    let (plan, layers, edges) = plan_toml(n, 0x0bc4_2026, &|t| {
        format!("@sim speed fast\n@sim write f/t{t:04}.txt: x\n")
    });
    std::fs::write(dir.join("plan.toml"), plan).unwrap();

    // The reference, in the same minute on the same machine: the minimal git work of every task
    // done one after the other by a shell loop.
    let trace = std::env::var("BENCH_GIT_TRACE").is_ok();
    let (loop_trace, orch_trace) = (dir.join("git-trace-loop.json"), dir.join("git-trace.json"));
    let cpu0 = children_cpu_s();
    let serial = serial_loop(n, trace.then_some(loop_trace.as_path()));
    let cpu1 = children_cpu_s();
    let t0 = Instant::now();
    let bin = std::env::var("BENCH_ORCH_BIN").unwrap_or_else(|_| BIN.to_string());
    println!("  orch-tui run by: {bin}");
    let mut cmd = Command::new(bin);
    if trace {
        cmd.env("GIT_TRACE2_EVENT", &orch_trace);
    }
    let out = cmd
        .args(["run", "--headless", "--plan", "plan.toml"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run orch-tui");
    let wall = t0.elapsed();
    let (loop_cpu, orch_cpu) = (cpu1 - cpu0, children_cpu_s() - cpu1);
    std::fs::write(dir.join("run.out"), &out.stdout).unwrap();
    if !out.status.success() {
        eprintln!(
            "orch-tui run exited {:?}; stderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let db = open_ro(&dir.join(".orch/ledger.db"));
    let done: i64 = db
        .query_row("SELECT COUNT(*) FROM tasks WHERE state = 'done'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let attempts_n: i64 = db
        .query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
        .unwrap();
    let events = read_events(&db);
    let epoch_ts = events
        .iter()
        .find(|e| e.kind == "epoch_started")
        .map_or(0, |e| e.ts);
    let last_ts = events.last().map_or(0, |e| e.ts);

    if show1 {
        let secs = wall.as_secs_f64();
        println!(
            "\n[1] end-to-end: {n} tasks, {layers} layers, {edges} dependency edges, slots=4, sim max_concurrent=4"
        );
        println!(
            "  exit code {:?}; {done}/{n} done; {attempts_n} attempts",
            out.status.code()
        );
        println!(
            "  wall {:.2}s (process start to exit)  => {:.0} tasks/min  (target >= 600)",
            secs,
            done as f64 / secs * 60.0
        );
        println!(
            "  serial shell loop, the minimal git work of {n} tasks one after the other (worktree add, write, add, commit, merge-tree, commit-tree, update-ref, worktree remove): {:.2}s => {:.0} tasks/min; orch-tui / loop = {:.2}x  (target >= 1.8x)",
            serial,
            n as f64 / serial * 60.0,
            serial / secs
        );
        println!(
            "  CPU (user+sys of the process and everything it waited for): orch-tui {:.1}s = {:.0} ms/task, loop {:.1}s = {:.0} ms/task; orch-tui / loop = {:.2}x per task",
            orch_cpu,
            orch_cpu * 1000.0 / n as f64,
            loop_cpu,
            loop_cpu * 1000.0 / n as f64,
            orch_cpu / loop_cpu.max(1e-9)
        );
        println!(
            "  of which: start to epoch_started {:.2}s (plan load, ledger, lock); epoch_started to last event {:.2}s",
            (epoch_ts - events.first().map_or(epoch_ts, |e| e.ts)) as f64 / 1000.0,
            (last_ts - epoch_ts) as f64 / 1000.0
        );
    }

    // Per-task state timeline.
    let mut by_task: HashMap<&str, Vec<&Ev>> = HashMap::new();
    for e in &events {
        if let Some(t) = &e.task {
            by_task.entry(t).or_default().push(e);
        }
    }
    if show2 {
        dispatch_latency("[2] dispatch latency", &dir, &db, &events, epoch_ts);
    }

    if show5 {
        let mut queue = Vec::new();
        let mut merge = Vec::new();
        let mut run_to_review = Vec::new();
        let mut review_to_approved = Vec::new();
        let mut started_to_done = Vec::new();
        let mut agent_done_to_merged = Vec::new();
        for evs in by_task.values() {
            let at = |to: &str| {
                evs.iter()
                    .rfind(|e| e.kind == "state" && e.to == to)
                    .map(|e| e.ts)
            };
            if let (Some(a), Some(m), Some(d)) = (at("approved"), at("merging"), at("done")) {
                queue.push((m - a) as f64);
                merge.push((d - m) as f64);
            }
            if let (Some(r), Some(a)) = (at("review"), at("approved")) {
                review_to_approved.push((a - r) as f64);
            }
            if let (Some(w), Some(r)) = (at("working"), at("review")) {
                run_to_review.push((r - w) as f64);
            }
            if let (Some(s), Some(d)) = (at("assigned"), at("done")) {
                started_to_done.push((d - s) as f64);
            }
            if let (Some(r), Some(d)) = (at("review"), at("done")) {
                agent_done_to_merged.push((d - r) as f64);
            }
        }
        let merge_sum: f64 = merge.iter().sum();
        let active = (last_ts - epoch_ts).max(1) as f64;
        println!("\n[5] git's share (ms, from the ledger)");
        line(
            "working -> review (agent run + commit)",
            &run_to_review,
            "ms",
        );
        line("review -> approved (funnel)", &review_to_approved, "ms");
        line(
            "approved -> merging (queue wait + replay and re-check, prepared ahead)",
            &queue,
            "ms",
        );
        line(
            "merging -> done (record, compare-and-swap, record)",
            &merge,
            "ms",
        );
        line("assigned -> done (task total)", &started_to_done, "ms");
        line(
            "review -> done (agent done to merged, out of the loop)",
            &agent_done_to_merged,
            "ms",
        );
        println!(
            "  merges through the queue: {} in {:.1}s supervised = {:.0} merges/min",
            merge.len(),
            active / 1000.0,
            merge.len() as f64 / (active / 60_000.0)
        );
        println!(
            "  merge queue's critical section busy {:.1}s of {:.1}s supervised ({:.0}%): only it is serialized, so {:.0} tasks/min is its ceiling",
            merge_sum / 1000.0,
            active / 1000.0,
            merge_sum / active * 100.0,
            if merge.is_empty() {
                0.0
            } else {
                60_000.0 / (merge_sum / merge.len() as f64)
            }
        );
    }
    if trace {
        git_histogram("orch-tui", &orch_trace, n);
        git_histogram("serial loop", &loop_trace, n);
    }
    if std::env::var("BENCH_KEEP").is_ok() {
        let kept = tmp.keep();
        println!("  kept the end-to-end repo at {}", kept.display());
    }
}

/// [6] Dispatch while 4 agents are busy, as real agents are: each task's agent draws a spinner
/// and progress lines for about a second before it writes its file, so a slot frees (and a
/// merge moves the tip) every few hundred ms, not every few ms as in [1], where the run's own
/// git work keeps both cores busy and every dispatch queues behind it.
fn busy_dispatch(n: usize) {
    let tmp = tempfile::Builder::new()
        .prefix("orch-bench-busy-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    fresh_repo(&dir);
    let (plan, layers, edges) = plan_toml(n, 0x0bc4_2026, &|t| {
        format!("@sim speed 40ms\n@sim progress 25\n@sim write f/t{t:04}.txt: x\n")
    });
    std::fs::write(dir.join("plan.toml"), plan).unwrap();
    let bin = std::env::var("BENCH_ORCH_BIN").unwrap_or_else(|_| BIN.to_string());
    let (t0, cpu0) = (Instant::now(), children_cpu_s());
    let out = Command::new(&bin)
        .args(["run", "--headless", "--plan", "plan.toml"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run orch-tui");
    let db = open_ro(&dir.join(".orch/ledger.db"));
    let done: i64 = db
        .query_row("SELECT COUNT(*) FROM tasks WHERE state = 'done'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), children_cpu_s() - cpu0);
    println!(
        "\n[6] {n} tasks ({layers} layers, {edges} edges), slots=4, each agent busy ~1 s (25 progress steps of 40 ms): exit {:?}, {done}/{n} done in {wall:.1}s, by {bin}",
        out.status.code(),
    );
    println!(
        "  CPU of the run (supervisor, holders, agents, git): {cpu:.1}s in {wall:.1}s = {:.0}% of the 2 cores' {:.0}%",
        cpu / wall * 100.0,
        std::thread::available_parallelism().map_or(100.0, |n| n.get() as f64 * 100.0)
    );
    let events = read_events(&db);
    let epoch_ts = events
        .iter()
        .find(|e| e.kind == "epoch_started")
        .map_or(0, |e| e.ts);
    dispatch_latency(
        "[6] dispatch latency, 4 agents busy",
        &dir,
        &db,
        &events,
        epoch_ts,
    );
    if std::env::var("BENCH_KEEP").is_ok() {
        let kept = tmp.keep();
        println!("  kept the busy run's repo at {}", kept.display());
    }
}

/// Every event of a finished run's ledger, in order.
fn read_events(db: &Connection) -> Vec<Ev> {
    let mut st = db
        .prepare("SELECT seq, ts_ms, task, attempt, kind, data FROM events ORDER BY seq")
        .unwrap();
    st.query_map([], |r| {
        let data: String = r.get(5)?;
        let v: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        Ok(Ev {
            seq: r.get(0)?,
            ts: r.get(1)?,
            task: r.get(2)?,
            attempt: r.get(3)?,
            kind: r.get(4)?,
            from: s("from"),
            to: s("to"),
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// [2] and [6]: how long a dispatch took, from a finished run's ledger and log: from what made
/// it possible (the task became ready, the supervisor started, a slot freed) to its agent
/// running, and `assigned -> running` by step.
fn dispatch_latency(title: &str, dir: &Path, db: &Connection, events: &[Ev], epoch_ts: i64) {
    let mut by_task: HashMap<&str, Vec<&Ev>> = HashMap::new();
    for e in events {
        if let Some(t) = &e.task {
            by_task.entry(t).or_default().push(e);
        }
    }
    // Slot-freeing moments: an attempt leaves the engine's live set (working -> anything,
    // assigned -> ready/failed after a setup failure).
    let slot_free: Vec<(i64, i64)> = events
        .iter()
        .filter(|e| {
            e.kind == "state" && (e.from == "working" || e.from == "assigned") && e.to != "working"
        })
        .map(|e| (e.seq, e.ts))
        .collect();

    let mut ready_to_running = Vec::new();
    let mut ready_to_assigned = Vec::new();
    let mut trig_to_assigned = Vec::new();
    let mut trig_to_running = Vec::new();
    let mut assigned_to_working = Vec::new();
    let mut assigned_to_running = Vec::new();
    let mut running_to_working = Vec::new();
    let mut st = db
        .prepare(
            "SELECT task, n, started_ms, running_ms FROM attempts WHERE running_ms IS NOT NULL",
        )
        .unwrap();
    let rows: Vec<(String, i64, i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (task, n, started, running) in rows {
        let evs = &by_task[task.as_str()];
        let Some(start_ev) = evs
            .iter()
            .find(|e| e.kind == "attempt_started" && e.attempt == Some(n))
        else {
            continue;
        };
        let before = |to: &str| {
            evs.iter()
                .rfind(|e| e.kind == "state" && e.to == to && e.seq < start_ev.seq)
        };
        let (Some(ready), Some(assigned)) = (before("ready"), before("assigned")) else {
            continue;
        };
        let working = evs
            .iter()
            .find(|e| e.kind == "state" && e.to == "working" && e.seq > start_ev.seq);
        // What made the dispatch possible: the task becoming ready, the supervisor
        // starting, or a slot freeing, whichever came last.
        let freed = slot_free
            .iter()
            .filter(|(s, _)| *s < assigned.seq)
            .map(|(_, t)| *t)
            .next_back()
            .unwrap_or(0);
        let trigger = ready.ts.max(epoch_ts).max(freed);
        ready_to_running.push((running - ready.ts) as f64);
        ready_to_assigned.push((assigned.ts - ready.ts) as f64);
        trig_to_assigned.push((assigned.ts - trigger) as f64);
        trig_to_running.push((running - trigger) as f64);
        assigned_to_running.push((running - started) as f64);
        if let Some(w) = working {
            assigned_to_working.push((w.ts - assigned.ts) as f64);
            running_to_working.push((w.ts - running) as f64);
        }
    }
    println!(
        "\n{title} (ms, from the ledger; aim: trigger -> agent running p50 < 20 ms, p99 < 100 ms)"
    );
    line(
        "ready -> agent running (raw, incl. slot wait)",
        &ready_to_running,
        "ms",
    );
    line(
        "ready -> assigned (raw, incl. slot wait)",
        &ready_to_assigned,
        "ms",
    );
    line("trigger -> agent running", &trig_to_running, "ms");
    line("  trigger -> assigned (scheduler)", &trig_to_assigned, "ms");
    line(
        "  assigned -> running (worktree+spawn)",
        &assigned_to_running,
        "ms",
    );
    line("  assigned -> working event", &assigned_to_working, "ms");
    line("  running_ms -> working event", &running_to_working, "ms");
    println!("  (trigger = the later of: task became ready, supervisor epoch start, a slot freed)");
    setup_steps(dir, db);
}

// ---------------------------------------------------------------------------------------------
// 3: ledger transitions per second

fn load_plan_lib(ledger: &mut Ledger, text: &str) {
    let plan = orch_tui::core::plan::parse_plan("plan.toml", text, &|_| Err("no specs".into()))
        .unwrap_or_else(|d| panic!("bench plan invalid: {d:?}"));
    ledger
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
        .unwrap();
}

/// `n` tasks all depending on one root, so they load as `pending`.
fn flat_plan(n: usize, prefix: &str) -> String {
    let mut s = String::from(
        "[plan]\nname = \"ledger-bench\"\n\n[[task]]\nid = \"root\"\ntitle = \"root\"\nprompt = \"r\"\n\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "[[task]]\nid = \"{prefix}{i:05}\"\ntitle = \"t\"\nprompt = \"p\"\ndepends_on = [\"root\"]\n\n"
        ));
    }
    s
}

fn step(ledger: &mut Ledger, task: &str, from: TaskState, to: TaskState) {
    ledger
        .write(|tx| {
            ledger::transition(
                tx,
                task,
                from,
                to,
                &Patch::default(),
                Actor::Supervisor,
                None,
                &EventData::default(),
            )
        })
        .unwrap_or_else(|e| panic!("{task}: {from} -> {to}: {e}"));
}

fn ledger_transitions(n: usize) {
    use TaskState::*;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ledger.db");
    let mut ledger = Ledger::open(&path).unwrap();
    load_plan_lib(&mut ledger, &flat_plan(n, "t"));
    let sync: i64 = ledger
        .conn()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    let cycle = [
        Pending, Ready, Assigned, Working, Review, Approved, Merging, Done,
    ];
    let mut per_tx = Vec::with_capacity(n * 7);
    let t0 = Instant::now();
    for i in 0..n {
        let id = format!("t{i:05}");
        for w in cycle.windows(2) {
            let s = Instant::now();
            step(&mut ledger, &id, w[0], w[1]);
            per_tx.push(s.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let el = t0.elapsed().as_secs_f64();
    let count = per_tx.len();
    println!(
        "\n[3] ledger: {n} tasks x 7 transitions (pending..done), one BEGIN IMMEDIATE each, WAL, synchronous={} ({})",
        sync,
        if sync == 2 { "FULL" } else { "not FULL!" }
    );
    println!(
        "  {count} transitions (+{count} events) in {el:.2}s => {:.0} transitions/s",
        count as f64 / el
    );
    line("per transaction", &per_tx, "ms");
    // The same work with the fsync taken out, to show how much of it is the disk.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut l2 = Ledger::open(&tmp2.path().join("ledger.db")).unwrap();
    let m = n.min(500);
    load_plan_lib(&mut l2, &flat_plan(m, "t"));
    l2.conn().execute_batch("PRAGMA synchronous = OFF").unwrap();
    let t0 = Instant::now();
    for i in 0..m {
        let id = format!("t{i:05}");
        for w in cycle.windows(2) {
            step(&mut l2, &id, w[0], w[1]);
        }
    }
    let el2 = t0.elapsed().as_secs_f64();
    println!(
        "  for comparison, synchronous=OFF on {m} tasks: {:.0} transitions/s (the rest is fsync)",
        (m * 7) as f64 / el2
    );
}

// ---------------------------------------------------------------------------------------------
// 4: `orch-tui worker heartbeat` latency under a busy supervisor

/// `pace`: the busy writer's pause between transactions (`None`: back to back, saturating).
fn heartbeat_latency(calls: usize, pace: Option<Duration>) {
    use TaskState::*;
    let tmp = tempfile::tempdir().unwrap();
    let orch = tmp.path().join(".orch");
    std::fs::create_dir_all(&orch).unwrap();
    let path = orch.join("ledger.db");
    let busy_n = 200;
    let mut ledger = Ledger::open(&path).unwrap();
    let mut plan = flat_plan(busy_n, "b");
    plan.push_str("[[task]]\nid = \"hb\"\ntitle = \"hb\"\nprompt = \"p\"\n");
    load_plan_lib(&mut ledger, &plan);
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    // Claim `hb` the way the engine's dispatch does.
    let token = "bench-token-0123456789abcdef";
    let (attempt, n) = (AttemptId(1), AttemptNo(1));
    let move_to = |from, to| Op::Transition {
        task: "hb".into(),
        from,
        to,
        patch: Patch::default(),
        actor: Actor::Supervisor,
        attempt: Some(n),
        data: EventData::default(),
    };
    let ops = vec![
        move_to(Ready, Assigned),
        Op::InsertAttempt(NewAttempt {
            id: attempt,
            task: "hb".into(),
            n,
            role: Role::Agent,
            profile: "sim".into(),
            epoch,
            worktree: "/nonexistent/wt/hb".into(),
            branch: "orch/hb".into(),
            log_dir: "/nonexistent/logs/hb/1".into(),
            continues: None,
            spec_on: None,
        }),
        Op::AttemptRunning {
            id: attempt,
            pid: std::process::id(),
            base: "0000".into(),
        },
        move_to(Assigned, Working),
    ];
    ledger
        .write(|tx| ledger::apply_ops(tx, &ops, &mut || token.to_string()))
        .unwrap();
    // Make the busy tasks ready.
    for i in 0..busy_n {
        step(&mut ledger, &format!("b{i:05}"), Pending, Ready);
    }
    drop(ledger);

    let stop = Arc::new(AtomicBool::new(false));
    let busy_count = Arc::new(AtomicU64::new(0));
    let busy = {
        let stop = stop.clone();
        let busy_count = busy_count.clone();
        let path = path.clone();
        std::thread::spawn(move || {
            let mut l = Ledger::open(&path).unwrap();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("b{:05}", i % busy_n);
                for (f, t) in [(Ready, Assigned), (Assigned, Working), (Working, Ready)] {
                    step(&mut l, &id, f, t);
                    busy_count.fetch_add(1, Ordering::Relaxed);
                    if let Some(p) = pace {
                        std::thread::sleep(p);
                    }
                }
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut lat = Vec::with_capacity(calls);
    let mut failures = 0;
    let t0 = Instant::now();
    let b0 = busy_count.load(Ordering::Relaxed);
    for _ in 0..calls {
        let s = Instant::now();
        let out = Command::new(BIN)
            .args(["worker", "heartbeat"])
            .env("ORCH_LEDGER", &path)
            .env("ORCH_TASK", "hb")
            .env("ORCH_ATTEMPT", n.to_string())
            .env("ORCH_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .expect("run orch-tui worker");
        lat.push(s.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            failures += 1;
            if failures == 1 {
                eprintln!("heartbeat failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    let el = t0.elapsed().as_secs_f64();
    let busy_done = busy_count.load(Ordering::Relaxed) - b0;
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();

    // Baseline: the same call with the ledger idle (process start + open + migrate + write).
    let mut idle = Vec::new();
    for _ in 0..if pace.is_some() { 50 } else { 0 } {
        let s = Instant::now();
        let _ = Command::new(BIN)
            .args(["worker", "heartbeat"])
            .env("ORCH_LEDGER", &path)
            .env("ORCH_TASK", "hb")
            .env("ORCH_ATTEMPT", n.to_string())
            .env("ORCH_TOKEN", token)
            .stdin(Stdio::null())
            .output();
        idle.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let beats: i64 = open_ro(&path)
        .query_row(
            "SELECT COUNT(*) FROM events WHERE kind = 'heartbeat'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    println!(
        "\n[4] `orch-tui worker heartbeat` as a subprocess, {calls} calls, while a busy supervisor thread writes transitions {}",
        match pace {
            Some(p) => format!("with a {}ms pause between transactions", p.as_millis()),
            None => "back to back (saturating the write lock)".into(),
        }
    );
    println!(
        "  busy writer: {busy_done} transitions in {el:.1}s ({:.0}/s) during the calls; {failures} failed calls; {beats} heartbeat events recorded",
        busy_done as f64 / el
    );
    line("heartbeat wall time, busy ledger", &lat, "ms");
    if !idle.is_empty() {
        line("heartbeat wall time, idle ledger", &idle, "ms");
    }
}
