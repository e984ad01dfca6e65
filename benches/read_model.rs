//! `cargo bench --bench read_model`: the read model on a large plan. A ledger of 10,000 tasks
//! (60 % done with an agent and a reviewer attempt each, live agents, approvals with their check
//! events, failures, escalations, five events per task) is generated once; then:
//!   [1] `orch-tui status --json` and `orch-tui status`, the real binary, end to end;
//!   [2] `read::snapshot` in process, and turning it into JSON; `read::write_json` (what
//!       `status --json` runs through a pipe) in process, with two readers and with one;
//!   [3] the TUI's refresh job (snapshot → view data, off the UI thread) and the UI thread's
//!       share of it (swapping the result in);
//!   [4] TUI frames (render + diff on a TestBackend) of the views that list tasks, with the
//!       selection at the far end of each list.
//! Prints figures only (no pass/fail); docs/benchmarks.md says what they mean. Knobs:
//! `BENCH_TASKS` (default 10000), `BENCH_RUNS` (status runs, default 100), `BENCH_FRAMES`
//! (frames per view, default 300), `BENCH_DIR` (generate the repository there and keep it),
//! `BENCH_PROMPT_BYTES` (each task's prompt, default 13 bytes).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Rng, git};
use orch_tui::tui::state::{View, ViewState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rusqlite::{Connection, params};

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

fn main() {
    let tasks = env_usize("BENCH_TASKS", 10_000);
    let runs = env_usize("BENCH_RUNS", 100);
    let frames = env_usize("BENCH_FRAMES", 300);
    let prompt_bytes = env_usize("BENCH_PROMPT_BYTES", 13);
    println!("orch-tui read model bench");
    println!(
        "  binary: {BIN}\n  cores: {}\n  load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    // `BENCH_DIR`: generate there instead, and keep it (to look at the ledger afterwards).
    let repo = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("repo"));
    let t = Instant::now();
    let shape = generate(&repo, tasks, prompt_bytes);
    println!(
        "\n  ledger: {tasks} tasks, {} attempts ({} live), {} events, {} deps; generated in {:.1} s",
        shape.attempts,
        shape.live,
        shape.events,
        shape.deps,
        t.elapsed().as_secs_f64()
    );
    status_binary(&repo, runs);
    let ledger = orch_tui::ledger::Ledger::open(&repo.join(".orch/ledger.db")).expect("open");
    in_process(&ledger, runs);
    frames_of_views(&ledger, frames);
    println!("\n  load average at end: {}", loadavg());
}

struct Shape {
    attempts: usize,
    live: usize,
    events: usize,
    deps: usize,
}

/// A repository with `orch-tui init` and a ledger of `n` tasks written straight into SQLite.
fn generate(repo: &Path, n: usize, prompt_bytes: usize) -> Shape {
    std::fs::create_dir_all(repo).expect("mkdir");
    git(repo, &["init", "-q", "-b", "main"]);
    let st = Command::new(BIN)
        .arg("init")
        .current_dir(repo)
        .stdout(Stdio::null())
        .status()
        .expect("init");
    assert!(st.success());
    let mut c = Connection::open(repo.join(".orch/ledger.db")).expect("open");
    let tx = c.transaction().expect("tx");
    let now = orch_tui::ledger::now_ms() as i64;
    let mut rng = Rng(0x5eed);
    // Real prompts are paragraphs, not a line: `BENCH_PROMPT_BYTES` makes each one that long.
    let prompt: String = "Do the thing. "
        .chars()
        .cycle()
        .take(prompt_bytes.max(1))
        .collect();
    let mut shape = Shape {
        attempts: 0,
        live: 0,
        events: 0,
        deps: 0,
    };
    tx.execute(
        "INSERT INTO plan (id, name, file, loaded_ms) VALUES (1, 'bench-10k', 'plan.toml', ?1)",
        [now],
    )
    .expect("plan");
    tx.execute(
        "INSERT INTO supervisor (id, epoch, pid, started_ms) VALUES (1, 3, 1, ?1)",
        [now],
    )
    .expect("supervisor");
    for i in 0..n {
        let id = format!("t{i:05}");
        // 60 % done, 20 % pending, 10 % ready, 2 % failed, 1 % escalated, 1 % awaiting
        // approval, the rest blocked; 8 tasks working (a run's slots).
        let state = match i % 100 {
            _ if i % (n / 8).max(1) == 7 => "working",
            0..=59 => "done",
            60..=79 => "pending",
            80..=89 => "ready",
            90..=91 => "failed",
            92 => "escalated",
            93 => "review",
            _ => "blocked",
        };
        let (stage, until) = match (state, i % 2) {
            ("review", 0) => (Some("human"), None),
            ("review", _) => (Some("veto"), Some(now + 600_000)),
            _ => (None, None),
        };
        tx.execute(
            "INSERT INTO tasks (id, ord, title, content_hash, max_attempts, budget_tokens,
                state, stage, stage_until_ms, reason, failures, updated_ms)
             VALUES (?1, ?2, ?3, 'h', 3, 400000, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                i as i64,
                format!("Task number {i} of the big plan"),
                state,
                stage,
                until,
                matches!(state, "failed" | "escalated").then_some("exit 1 (attempt 3 of 3)"),
                if state == "failed" { 3 } else { 0 },
                now,
            ],
        )
        .expect("task");
        tx.execute(
            "INSERT INTO task_prompts (task, prompt) VALUES (?1, ?2)",
            params![id, prompt],
        )
        .expect("prompt");
        for _ in 0..(i.min(2)) {
            let dep = format!("t{:05}", rng.below(i));
            shape.deps += tx
                .execute(
                    "INSERT OR IGNORE INTO deps (task, dep) VALUES (?1, ?2)",
                    params![id, dep],
                )
                .expect("dep");
        }
        let attempts: &[(&str, &str, &str)] = match state {
            "done" => &[
                ("agent", "succeeded", "ended"),
                ("reviewer", "succeeded", "ended"),
            ],
            "working" => &[("agent", "running", "busy")],
            "failed" => &[
                ("agent", "failed", "ended"),
                ("agent", "failed", "ended"),
                ("agent", "failed", "ended"),
            ],
            "escalated" | "review" => &[("agent", "succeeded", "ended")],
            _ => &[],
        };
        let mut agent_n = 0;
        for (role, astate, sub) in attempts {
            if *role == "agent" {
                agent_n += 1;
            }
            tx.execute(
                "INSERT INTO attempts (task, n, token, epoch, profile, role, state, substatus,
                    started_ms, ended_ms, tokens_in, tokens_out, cost_usd, base, commit_oid,
                    diff_lines)
                 VALUES (?1, ?2, ?3, 3, 'claude', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'b', 'c', 40)",
                params![
                    id,
                    agent_n,
                    format!("{id}-{agent_n}-{role}"),
                    role,
                    astate,
                    sub,
                    now - 60_000,
                    (*astate != "running").then_some(now - 1_000),
                    rng.below(50_000) as i64,
                    rng.below(5_000) as i64,
                    rng.below(100) as f64 / 100.0
                ],
            )
            .expect("attempt");
            shape.attempts += 1;
            shape.live += usize::from(*astate == "running");
        }
        let checks = if state == "review" { 2 } else { 0 };
        for k in 0..5 + checks {
            let (actor, kind, data) = if k >= 5 {
                (
                    "check",
                    "check_passed",
                    r#"{"command":"cargo test","passed":true}"#,
                )
            } else {
                ("supervisor", "state", r#"{"from":"ready","to":"assigned"}"#)
            };
            tx.execute(
                "INSERT INTO events (ts_ms, task, attempt, actor, kind, data)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5)",
                params![now, id, actor, kind, data],
            )
            .expect("event");
            shape.events += 1;
        }
    }
    tx.commit().expect("commit");
    shape
}

/// [1] The real binary, output read to the end through a pipe: wall time, and the CPU time the
/// process used (what it costs whatever else the machine runs).
fn status_binary(repo: &Path, runs: usize) {
    println!("\n[1] `orch-tui status` end to end (process start, open, read, print), {runs} runs");
    for args in [&["status", "--json"][..], &["status"][..]] {
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        let mut bytes = 0;
        for _ in 0..runs + 3 {
            let before = children_cpu();
            let t = Instant::now();
            let out = Command::new(BIN)
                .args(args)
                .current_dir(repo)
                .output()
                .expect("status");
            wall.push(ms(t.elapsed()));
            cpu.push(ms(children_cpu().saturating_sub(before)));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            bytes = out.stdout.len();
        }
        wall.drain(..3);
        cpu.drain(..3);
        line(&format!("orch-tui {} (wall)", args.join(" ")), &wall, "ms");
        line(&format!("orch-tui {} (CPU)", args.join(" ")), &cpu, "ms");
        println!("    ({:.1} MB of output)", bytes as f64 / 1e6);
    }
    println!("  (aim: status --json p99 < 50 ms at 10,000 tasks)");
}

/// CPU time (user + system) of the children reaped so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time of this process, every thread.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// [2] and [3]: the query layer and the TUI's refresh, in process.
fn in_process(ledger: &orch_tui::ledger::Ledger, runs: usize) {
    println!("\n[2] read::snapshot in process, {runs} runs");
    let (mut snap_ms, mut snap_cpu, mut json_cpu, mut pretty_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // write_json reads on two threads: the process's CPU time, not this thread's.
    let (mut two_ms, mut two_cpu, mut one_ms, mut one_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut items = 0;
    for _ in 0..runs {
        let (t, c) = (Instant::now(), thread_cpu());
        let snap = orch_tui::read::snapshot(ledger, orch_tui::ledger::now_ms()).expect("snapshot");
        snap_ms.push(ms(t.elapsed()));
        snap_cpu.push(ms(thread_cpu().saturating_sub(c)));
        let c = thread_cpu();
        std::hint::black_box(serde_json::to_vec(&snap).expect("json"));
        json_cpu.push(ms(thread_cpu().saturating_sub(c)));
        let c = thread_cpu();
        std::hint::black_box(serde_json::to_vec_pretty(&snap).expect("json"));
        pretty_cpu.push(ms(thread_cpu().saturating_sub(c)));
        items = snap.inbox.len();
        for (readers, wall, cpu) in [
            (orch_tui::read::Readers::Two, &mut two_ms, &mut two_cpu),
            (orch_tui::read::Readers::One, &mut one_ms, &mut one_cpu),
        ] {
            let (t, c) = (Instant::now(), process_cpu());
            let mut out = Vec::new();
            orch_tui::read::write_json_using(ledger, orch_tui::ledger::now_ms(), &mut out, readers)
                .expect("json");
            wall.push(ms(t.elapsed()));
            cpu.push(ms(process_cpu().saturating_sub(c)));
            std::hint::black_box(out);
        }
    }
    line("snapshot, one read transaction (wall)", &snap_ms, "ms");
    line("snapshot (CPU)", &snap_cpu, "ms");
    line("to JSON, one line as for a pipe (CPU)", &json_cpu, "ms");
    line(
        "to JSON, indented as for a terminal (CPU)",
        &pretty_cpu,
        "ms",
    );
    line("read::write_json, two readers (wall)", &two_ms, "ms");
    line("read::write_json, two readers (CPU)", &two_cpu, "ms");
    line("read::write_json, one reader (wall)", &one_ms, "ms");
    line("read::write_json, one reader (CPU)", &one_cpu, "ms");
    println!("    ({items} inbox items)");

    println!("\n[3] the TUI's refresh: the background job, and the UI thread's share");
    let (mut job, mut job_cpu, mut full_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut built = Vec::new();
    for _ in 0..runs {
        // As the TUI reads it (the lean snapshot), and with the whole snapshot for comparison.
        let (t, c) = (Instant::now(), thread_cpu());
        let snap =
            orch_tui::read::snapshot_lean(ledger, orch_tui::ledger::now_ms()).expect("snapshot");
        let r = orch_tui::tui::data::build(snap, &[], t);
        job.push(ms(t.elapsed()));
        job_cpu.push(ms(thread_cpu().saturating_sub(c)));
        built.push(r);
        let (t, c) = (Instant::now(), thread_cpu());
        let snap = orch_tui::read::snapshot(ledger, orch_tui::ledger::now_ms()).expect("snapshot");
        std::hint::black_box(orch_tui::tui::data::build(snap, &[], t));
        full_cpu.push(ms(thread_cpu().saturating_sub(c)));
    }
    line(
        "refresh job: lean snapshot + view data + DAG (wall)",
        &job,
        "ms",
    );
    line("refresh job (CPU)", &job_cpu, "ms");
    line("the same from the whole snapshot (CPU)", &full_cpu, "ms");
    let mut state = ViewState::new(true);
    let (mut apply, mut apply_cpu) = (Vec::new(), Vec::new());
    for r in built {
        let (t, c) = (Instant::now(), thread_cpu());
        orch_tui::tui::data::apply(&mut state, r);
        apply.push(ms(t.elapsed()));
        apply_cpu.push(ms(thread_cpu().saturating_sub(c)));
    }
    line("UI thread: swap the result in (wall)", &apply, "ms");
    line("UI thread: swap the result in (CPU)", &apply_cpu, "ms");
}

/// [4] Frames of the views that list every task or item, selection at the end.
fn frames_of_views(ledger: &orch_tui::ledger::Ledger, frames: usize) {
    println!("\n[4] frame time with the whole plan in the view state, {frames} frames per view");
    let snap = orch_tui::read::snapshot(ledger, orch_tui::ledger::now_ms()).expect("snapshot");
    let mut state = ViewState::new(true);
    orch_tui::tui::data::apply(
        &mut state,
        orch_tui::tui::data::build(snap, &[], Instant::now()),
    );
    state.selected_task = state.tasks.len().saturating_sub(1);
    state.selected_inbox = state.inbox.len().saturating_sub(1);
    state.page_scroll = state.dag.rows.len().saturating_sub(10);
    for (w, h) in [(160u16, 48u16), (80, 24)] {
        for view in [View::Dashboard, View::Inbox, View::Dag] {
            state.view = view;
            let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for f in 0..frames + 10 {
                let (t, c) = (Instant::now(), thread_cpu());
                term.draw(|fr| orch_tui::tui::render::render(&state, fr))
                    .expect("draw");
                if f >= 10 {
                    wall.push(ms(t.elapsed()));
                    cpu.push(ms(thread_cpu().saturating_sub(c)));
                }
            }
            line(&format!("{view:?} {w}x{h} draw (wall)"), &wall, "ms");
            line(&format!("{view:?} {w}x{h} draw (CPU)"), &cpu, "ms");
        }
    }
    println!(
        "  ({} tasks, {} inbox items, {} DAG rows; aim: frame < 5 ms)",
        state.tasks.len(),
        state.inbox.len(),
        state.dag.rows.len()
    );
}

fn line(label: &str, sample: &[f64], unit: &str) {
    common::line_with(label, sample, unit, 2);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
