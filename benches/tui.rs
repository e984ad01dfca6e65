//! `cargo bench --bench tui`: the TUI's costs: idle CPU, frame time, keystroke latency, ingest
//! throughput through the emulators and logs, peak memory.
//!
//! Prints figures only (no pass/fail). See docs/benchmarks.md for what each one means.
//! Knobs (environment): `BENCH_ONLY` (comma list of 1..7; 7 is not run by default), `BENCH_TUI_SECS` (idle sampling time
//! of [1], default 60), `BENCH_FRAMES` (frames of [2], default 300), `BENCH_KEYS` (samples of
//! [3], default 200), `BENCH_FLOOD` (bytes per agent in [4], default `200MiB`),
//! `BENCH_BREAKDOWN_MB` (MB of each input of [7], default 50), `BENCH_BREAKDOWN_INPUT` (`flood`
//! or `mixed`: only that input in [7]).

mod common;

use common::{Rng, git};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orch_tui::agent::pty::{AgentProcess, AgentSignal, SpawnSpec};
use orch_tui::agent::record::lines::{LogCallbacks, feed};
use orch_tui::agent::screen::{Parser, SCROLLBACK_ROWS, new_parser};
use orch_tui::core::domain::{AttemptId, AttemptNo, Substatus};
use orch_tui::core::state::TaskState;
use orch_tui::tui::render::render;
use orch_tui::tui::state::{AgentInfo, TaskInfo, View, ViewState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");
/// The size the engine gives every agent's PTY (engine/dispatch.rs).
const AGENT_ROWS: u16 = 24;
const AGENT_COLS: u16 = 100;
/// The engine's default `log_rotate_bytes` (16 MiB).
const ROTATE: u64 = 16 * 1024 * 1024;

fn main() {
    let only: Option<Vec<u32>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').filter_map(|p| p.trim().parse().ok()).collect());
    let want = |n: u32| only.as_ref().is_none_or(|o| o.contains(&n));
    println!("orch-tui TUI bench");
    println!(
        "  binary: {BIN}\n  cores: {}\n  load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    if want(1) {
        idle_cpu(env_usize("BENCH_TUI_SECS", 60));
    }
    if want(2) {
        frame_time(env_usize("BENCH_FRAMES", 300));
    }
    if want(3) {
        keystroke_latency(env_usize("BENCH_KEYS", 200), 0);
    }
    if want(6) {
        keystroke_latency(env_usize("BENCH_KEYS", 200), 3);
    }
    if only.as_ref().is_some_and(|o| o.contains(&7)) {
        ingest_breakdown(env_usize("BENCH_BREAKDOWN_MB", 50));
    }
    if want(4) || want(5) {
        let bytes = std::env::var("BENCH_FLOOD").unwrap_or_else(|_| "200MiB".into());
        ingest(&bytes, want(4), want(5));
    }
    println!("\n  load average at end: {}", loadavg());
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// CPU time of the calling thread: what a measurement costs, whatever else the machine runs.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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

fn line(label: &str, sample: &[f64], unit: &str) {
    common::line_with(label, sample, unit, 3);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// utime + stime of a process, in clock ticks (None once it is gone).
fn cpu_ticks(pid: u32) -> Option<u64> {
    cpu_fields(&pid.to_string()).map(|(own, _)| own)
}

/// (utime + stime, cutime + cstime) of `/proc/<pid>/stat`, in clock ticks.
fn cpu_fields(pid: &str) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the last ')' (comm may hold spaces): state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17.
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    (f.len() == 4).then(|| (f[0] + f[1], f[2] + f[3]))
}

fn clock_ticks() -> f64 {
    // SAFETY: plain libc call without pointers.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Pids whose environment has a `ORCH_LEDGER=` entry mentioning `needle` (the scratch repo).
fn pids_with_env(needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| {
                    env.split(|b| *b == 0).any(|kv| {
                        let kv = String::from_utf8_lossy(kv);
                        kv.starts_with("ORCH_LEDGER=") && kv.contains(needle)
                    })
                })
                .unwrap_or(false)
        })
        .collect()
}

/// The holders of a supervisor: its children running `__hold` that hold an agent. A spare
/// holder (started ahead of the next dispatch, `engine::holder_start`) is still in the
/// supervisor's session and exits 5 s after its start unused, so an idle run has none; a holder
/// with an agent leads a session of its own.
fn holder_pids(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let field = |n: usize| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(n)?.parse::<u32>().ok())
            };
            let (ppid, session) = (field(1), field(3));
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent)
                && session == Some(*pid)
                && cmdline.split(|b| *b == 0).any(|a| a == b"__hold")
        })
        .collect()
}

fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `rchar` of this process: every byte its threads (and its reaped children) read through
/// syscalls.
fn self_io() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    get("rchar:")
}

fn task(id: &str, state: TaskState, deps: &[&str], agent: Option<&str>) -> TaskInfo {
    TaskInfo {
        id: id.into(),
        title: format!("Title of {id}"),
        state,
        deps: deps.iter().map(|d| d.to_string()).collect(),
        agent: agent.map(String::from),
        reason: None,
        stage: None,
        stage_until_ms: None,
    }
}

fn agent_info(attempt: i64, task: &str, screen: Arc<Mutex<Parser>>) -> AgentInfo {
    AgentInfo {
        attempt: AttemptId(attempt),
        task: task.into(),
        n: AttemptNo(1),
        profile: "sim".into(),
        substatus: Substatus::Busy,
        question: None,
        elapsed: Duration::from_secs(40 + attempt as u64),
        time_budget: Some(Duration::from_secs(600)),
        started: Instant::now(),
        held_since: None,
        tokens: 12_000 * attempt,
        cost_usd: 0.03 * attempt as f64,
        budget_tokens: Some(200_000),
        budget_cost_usd: Some(2.0),
        screen: Some(screen),
    }
}

/// A dashboard like a real run's: 12 tasks, 4 of them working, one pane per agent.
fn view_state(screens: &[Arc<Mutex<Parser>>]) -> ViewState {
    let mut s = ViewState::new(true);
    s.plan = "tui-bench".into();
    s.elapsed = Duration::from_secs(83);
    s.spend_tokens = 120_600;
    s.spend_usd = 0.31;
    s.tasks = vec![task("scaffold", TaskState::Done, &[], None)];
    for (i, _) in screens.iter().enumerate() {
        s.tasks.push(task(
            &format!("agent-task-{i}"),
            TaskState::Working,
            &["scaffold"],
            Some("sim"),
        ));
    }
    for i in 0..7 {
        s.tasks.push(task(
            &format!("later-{i}"),
            TaskState::Pending,
            &["agent-task-0", "agent-task-1"],
            None,
        ));
    }
    s.agents = screens
        .iter()
        .enumerate()
        .map(|(i, sc)| agent_info(i as i64 + 1, &format!("agent-task-{i}"), sc.clone()))
        .collect();
    s
}

// ---------------------------------------------------------------------------------------------
// Realistic agent output: what coding agents print (coloured log lines, 256-colour and
// truecolor, diffs with backgrounds, spinners redrawn in place, Unicode, cursor moves).

fn agent_output(seed: u64, size: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "fn",
        "let",
        "match",
        "tokenizer",
        "counter",
        "Result<()>",
        "self.parse()",
        "→",
        "✔",
        "übergröße",
        "vec![]",
        "// TODO",
        "impl",
        "cargo",
        "warning:",
        "src/lib.rs:42",
    ];
    const SPIN: [&str; 4] = ["⠋", "⠙", "⠹", "⠸"];
    let mut r = Rng(seed);
    let mut out = String::with_capacity(size + 512);
    let mut n = 0u64;
    while out.len() < size {
        n += 1;
        let words = |r: &mut Rng, k: usize| {
            (0..k)
                .map(|_| WORDS[r.below(WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        };
        match r.below(10) {
            // Plain log lines with basic colours.
            0..=3 => {
                let c = 31 + r.below(7);
                let k = 4 + r.below(10);
                out.push_str(&format!(
                    "\x1b[{c}m[{n:06}]\x1b[0m {}\r\n",
                    words(&mut r, k)
                ));
            }
            // Syntax-highlighted code, 256 colours and truecolor.
            4 | 5 => {
                for _ in 0..1 + r.below(6) {
                    let (a, b, c) = (r.below(256), r.below(256), r.below(256));
                    let k = 1 + r.below(3);
                    out.push_str(&format!(
                        "\x1b[38;5;{a}m{} \x1b[38;2;{b};{c};{a}m{}\x1b[39m ",
                        words(&mut r, k),
                        WORDS[r.below(WORDS.len())]
                    ));
                }
                out.push_str("\x1b[0m\r\n");
            }
            // A diff hunk with background colours, bold and dim.
            6 => {
                let k1 = 3 + r.below(6);
                let k2 = 3 + r.below(6);
                out.push_str(&format!(
                    "\x1b[1m@@ -{n},7 +{n},8 @@\x1b[0m\r\n\x1b[48;5;52m-    {}\x1b[0m\r\n\x1b[48;5;22m+    {}\x1b[0m\r\n\x1b[2m     unchanged line\x1b[0m\r\n",
                    words(&mut r, k1),
                    words(&mut r, k2)
                ));
            }
            // A spinner redrawn in place a few times, then committed.
            7 | 8 => {
                for i in 0..3 + r.below(6) {
                    out.push_str(&format!(
                        "\r\x1b[2K\x1b[36m{}\x1b[0m Thinking… ({i}s · esc to interrupt)",
                        SPIN[i % 4]
                    ));
                }
                out.push_str("\r\x1b[2K\x1b[32m✔\x1b[0m step done\r\n");
            }
            // A status box redrawn with cursor movement (like an agent's input area).
            _ => {
                out.push_str(&format!(
                    "\x1b[s\x1b[{};1H\x1b[7m {} \x1b[27m\x1b[K\x1b[u",
                    AGENT_ROWS,
                    words(&mut r, 5)
                ));
            }
        }
    }
    out.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// 1: CPU of the real TUI with 4 quiet agents

/// A private tmux server; dropping it kills the server and every agent of the repo.
struct TmuxRun {
    socket: String,
    ledger_env: String,
}

impl TmuxRun {
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs")
    }
}

impl Drop for TmuxRun {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        // Agents are their own sessions and process groups: the server's SIGHUP may miss them.
        for _ in 0..50 {
            let left = pids_with_env(&self.ledger_env);
            if left.is_empty() {
                return;
            }
            for pid in left {
                // SAFETY: plain syscall on a pid whose environment names our own scratch repo.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("warning: agents of {} still alive", self.ledger_env);
    }
}

fn working_count(repo: &Path) -> usize {
    let out = Command::new(BIN)
        .args(["--repo"])
        .arg(repo)
        .args(["status", "--json"])
        .stdin(Stdio::null())
        .output();
    let Ok(out) = out else { return 0 };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["tasks"].as_array().map_or(0, |ts| {
        ts.iter().filter(|t| t["state"] == "working").count()
    })
}

fn idle_cpu(secs: usize) {
    println!(
        "\n[1] CPU of the real TUI (160x48, private tmux server), 4 agents running `@sim hang`, sampled over {secs}s"
    );
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("  tmux is not installed: skipped");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("orch-tuibench-")
        .tempdir()
        .unwrap();
    let repo = tmp.path().canonicalize().unwrap();
    std::fs::write(repo.join("README.md"), "bench\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "README.md"]);
    git(
        &repo,
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@orch.invalid",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    );
    std::fs::create_dir_all(repo.join(".orch")).unwrap();
    std::fs::write(
        repo.join(".orch/config.toml"),
        "[funnel]\nautonomy = \"out-of-the-loop\"\n",
    )
    .unwrap();
    let mut plan = String::from("[plan]\nname = \"tui-idle\"\n\n[defaults]\nagent = \"sim\"\n\n");
    for i in 0..4 {
        plan.push_str(&format!(
            "[[task]]\nid = \"quiet-{i}\"\ntitle = \"quiet {i}\"\nprompt = \"@sim hang\"\n\n"
        ));
    }
    std::fs::write(repo.join("plan.toml"), plan).unwrap();

    let run = TmuxRun {
        socket: format!("orch-tuibench-{}", std::process::id()),
        ledger_env: repo.display().to_string(),
    };
    // `exec` so the pane's process is the TUI itself.
    let cmd = format!(
        "exec {BIN} --repo {} run --plan {}",
        repo.display(),
        repo.join("plan.toml").display()
    );
    let out = run.tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "160",
        "-y",
        "48",
        "-s",
        "main",
        &cmd,
    ]);
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pane = run.tmux(&["list-panes", "-t", "main", "-F", "#{pane_pid}"]);
    let tui: u32 = String::from_utf8_lossy(&pane.stdout)
        .trim()
        .parse()
        .expect("pane pid");
    let server: Option<u32> =
        String::from_utf8_lossy(&run.tmux(&["display", "-p", "#{pid}"]).stdout)
            .trim()
            .parse()
            .ok();

    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(60);
    let mut working = 0;
    while Instant::now() < deadline {
        working = working_count(&repo);
        if working >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if working < 4 {
        let screen = run.tmux(&["capture-pane", "-p", "-t", "main"]);
        println!(
            "  only {working}/4 tasks working after 60s: skipped; screen:\n{}",
            String::from_utf8_lossy(&screen.stdout)
        );
        return;
    }
    println!(
        "  4 agents working {:.1}s after start (TUI pid {tui})",
        t0.elapsed().as_secs_f64()
    );
    // Let the start-up (ledger reads, first frames) settle before sampling.
    std::thread::sleep(Duration::from_secs(2));
    let agents = pids_with_env(&run.ledger_env);
    // Each agent runs under its holder (`orch-tui __hold`, a child of the TUI) unless
    // ORCH_HOLDERS=0: the idle cost is the TUI's and theirs together.
    let holders = holder_pids(tui);
    let ticks = clock_ticks();
    let sample = |pids: &[u32]| pids.iter().filter_map(|&p| cpu_ticks(p)).sum::<u64>();
    let (tui0, srv0, ag0, ho0) = (
        cpu_ticks(tui),
        server.map(|p| sample(&[p])),
        sample(&agents),
        sample(&holders),
    );
    let s0 = Instant::now();
    // Per-10 s slices too, to see whether the cost is steady.
    let mut slices = Vec::new();
    let mut last = tui0;
    while s0.elapsed() < Duration::from_secs(secs as u64) {
        let left = Duration::from_secs(secs as u64).saturating_sub(s0.elapsed());
        let step = left.min(Duration::from_secs(10));
        let st = Instant::now();
        std::thread::sleep(step);
        let now = cpu_ticks(tui);
        if let (Some(a), Some(b)) = (last, now) {
            slices.push((b - a) as f64 / ticks / st.elapsed().as_secs_f64() * 100.0);
        }
        last = now;
    }
    let wall = s0.elapsed().as_secs_f64();
    let (tui1, srv1, ag1, ho1) = (
        cpu_ticks(tui),
        server.map(|p| sample(&[p])),
        sample(&agents),
        sample(&holders),
    );
    let pct_of = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / ticks / wall * 100.0;
    match (tui0, tui1) {
        (Some(a), Some(b)) => {
            println!(
                "  TUI process (utime+stime of all its threads, engine included): {:.2} s CPU in {wall:.1} s => {:.2}% of one core  (aim < 0.2%; ccmanager 4.5%)",
                (b - a) as f64 / ticks,
                pct_of(a, b)
            );
            println!(
                "  per 10 s slice (% of a core): {}",
                slices
                    .iter()
                    .map(|p| format!("{p:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        _ => println!("  the TUI exited during the sample"),
    }
    // Memory of the same process at the end of the sample: resident, its peak, and the
    // proportional share (shared library pages split between the processes mapping them).
    let kb = |file: &str, key: &str| -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{tui}/{file}")).ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    };
    match (kb("status", "VmRSS:"), kb("status", "VmHWM:")) {
        (Some(rss), Some(hwm)) => println!(
            "  TUI process memory: VmRSS {:.1} MB (peak {:.1} MB), Pss {} MB  (aim < 20 MB; ccmanager ~105 MB)",
            rss / 1024.0,
            hwm / 1024.0,
            kb("smaps_rollup", "Pss:").map_or("?".into(), |p| format!("{:.1}", p / 1024.0))
        ),
        _ => println!("  TUI process memory: unreadable (it exited?)"),
    }
    // The holders, and the whole: PSS is the fair sum (they share the binary's pages with
    // the TUI and with each other; RSS counts those pages once per process).
    let mem = |pid: u32, file: &str, key: &str| -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()
            .and_then(|t| {
                let line = t.lines().find(|l| l.starts_with(key))?.to_string();
                line.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .unwrap_or(0.0)
            / 1024.0
    };
    let (h_rss, h_pss): (f64, f64) = holders.iter().fold((0.0, 0.0), |(r, p), &h| {
        (
            r + mem(h, "status", "VmRSS:"),
            p + mem(h, "smaps_rollup", "Pss:"),
        )
    });
    println!(
        "  {} holders (orch-tui __hold): {:.2}% of a core together; VmRSS {:.1} MB together ({:.1} each), Pss {:.1} MB together",
        holders.len(),
        pct_of(ho0, ho1),
        h_rss,
        h_rss / holders.len().max(1) as f64,
        h_pss
    );
    if let (Some(a), Some(b)) = (tui0, tui1) {
        println!(
            "  TUI + holders: {:.2}% of a core, Pss {:.1} MB, VmRSS {:.1} MB  (aim < 0.2% and < 20 MB; ccmanager 4.5%, ~105 MB)",
            pct_of(a, b) + pct_of(ho0, ho1),
            mem(tui, "smaps_rollup", "Pss:") + h_pss,
            mem(tui, "status", "VmRSS:") + h_rss
        );
    }
    if let (Some(a), Some(b)) = (srv0, srv1) {
        println!(
            "  for context: tmux server {:.2}% of a core; the 4 sim agents together {:.2}% ({} pids)",
            pct_of(a, b),
            pct_of(ag0, ag1),
            agents.len()
        );
    }
    println!(
        "  (clock tick {} Hz: resolution {:.3}% over the sample)",
        ticks,
        100.0 / ticks / wall
    );

    // Quit: q, then s (stop the agents cleanly), then y to the question naming them.
    for key in ["q", "s", "y"] {
        let _ = run.tmux(&["send-keys", "-t", "main", key]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let q0 = Instant::now();
    while q0.elapsed() < Duration::from_secs(20) && cpu_ticks(tui).is_some() {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "  quit with q s y: TUI {} after {:.1}s",
        if cpu_ticks(tui).is_some() {
            "still running (killed with the tmux server)"
        } else {
            "exited"
        },
        q0.elapsed().as_secs_f64()
    );
    // Holders outlive their supervisor by design and carry no ORCH_ variable: stopped by pid,
    // with the TUI if it is still there.
    for pid in holders.iter().chain([tui].iter()) {
        if cpu_ticks(*pid).is_some() {
            // SAFETY: plain syscall on pids this bench found as the TUI and its holders.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        }
    }
    drop(run);
}

// ---------------------------------------------------------------------------------------------
// 2: frame time while 4 agents print as fast as they can

fn frame_time(frames: usize) {
    const CHUNK: usize = 64 * 1024;
    println!(
        "\n[2] frame time, dashboard at 160x48 (TestBackend), 4 agent screens {AGENT_ROWS}x{AGENT_COLS} (scrollback {SCROLLBACK_ROWS}), {} KiB of coloured output parsed per agent between frames, {frames} frames",
        CHUNK / 1024
    );
    let inputs: Vec<Vec<u8>> = (0..8).map(|i| agent_output(0x7e57 + i, CHUNK)).collect();
    let screens: Vec<Arc<Mutex<Parser>>> = (0..4)
        .map(|_| Arc::new(Mutex::new(new_parser(AGENT_ROWS, AGENT_COLS))))
        .collect();
    let state = view_state(&screens);
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut parse = Vec::new();
    let mut parse_bytes = 0usize;
    let mut render_only = Vec::new();
    let mut draw = Vec::new();
    let warmup = 20;
    for f in 0..frames + warmup {
        for (k, sc) in screens.iter().enumerate() {
            let input = &inputs[(f + k) % inputs.len()];
            let t = Instant::now();
            let mut p = sc.lock().unwrap();
            // What the reader thread does with every chunk: emulate it and keep the text log's
            // lines (with their stamps), then drain what the callbacks queued.
            feed(&mut p, input, 1_700_000_000_000 + f as u64);
            let cb = p.callbacks_mut();
            let _ = (cb.take_lines(), cb.take_replies(), cb.take_events());
            drop(p);
            if f >= warmup {
                parse.push(ms(t.elapsed()));
                parse_bytes += input.len();
            }
        }
        let mut inner = Duration::ZERO;
        let t = Instant::now();
        term.draw(|fr| {
            let r = Instant::now();
            render(&state, fr);
            inner = r.elapsed();
        })
        .unwrap();
        if f >= warmup {
            draw.push(ms(t.elapsed()));
            render_only.push(ms(inner));
        }
    }
    line("render(&ViewState, frame) only", &render_only, "ms");
    line("terminal.draw (render + diff + backend)", &draw, "ms");
    println!("  (aim: frame < 5 ms)");
    let total: f64 = parse.iter().sum();
    line("parse 64 KiB into one screen", &parse, "ms");
    println!(
        "  parse throughput: {:.1} MB/s on one core ({} MB parsed)",
        parse_bytes as f64 / 1e6 / (total / 1000.0),
        parse_bytes / 1_000_000
    );
    // Where the parse time goes: the same input into a bare vt100 parser of the same size and
    // scrollback, without orch-tui's callbacks (whose tracker turns rows into the text log's
    // lines: the scan for clears and cursor moves, rows read as they become final).
    let nz = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    let mut bare = vt100::Parser::new(nz(AGENT_ROWS), nz(AGENT_COLS), SCROLLBACK_ROWS);
    let mut bare_2k = vt100::Parser::new(nz(AGENT_ROWS), nz(AGENT_COLS), 2000);
    let mut ours = new_parser(AGENT_ROWS, AGENT_COLS);
    let (mut t_bare, mut t_bare_2k, mut t_ours) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut n = 0usize;
    let mut log_bytes = 0usize;
    for round in 0..(frames / 2).max(20) {
        let input = &inputs[round % inputs.len()];
        let t = thread_cpu();
        bare.process(input);
        t_bare += thread_cpu() - t;
        let t = thread_cpu();
        bare_2k.process(input);
        t_bare_2k += thread_cpu() - t;
        let t = thread_cpu();
        feed(&mut ours, input, 1_700_000_000_000 + round as u64);
        let cb = ours.callbacks_mut();
        let (lines, _, _) = (cb.take_lines(), cb.take_replies(), cb.take_events());
        t_ours += thread_cpu() - t;
        log_bytes += lines.iter().map(|l| l.text.len() + 27).sum::<usize>();
        n += input.len();
    }
    let mbs = |t: Duration| n as f64 / 1e6 / t.as_secs_f64();
    println!(
        "  split (MB per CPU-second of the thread): bare vt100 (same size, scrollback {SCROLLBACK_ROWS}, no callbacks) {:.1}; with orch-tui's callbacks and text log {:.1} => {:.2}x bare, the text log takes {:.0}% of parse time (bare vt100 with the old 2000-row scrollback: {:.1})",
        mbs(t_bare),
        mbs(t_ours),
        t_bare.as_secs_f64() / t_ours.as_secs_f64(),
        (1.0 - t_bare.as_secs_f64() / t_ours.as_secs_f64()) * 100.0,
        mbs(t_bare_2k),
    );
    println!(
        "  text log: {:.0} bytes per MB of this output (stamped lines)",
        log_bytes as f64 / (n as f64 / 1e6)
    );
    // Sanity: the panes show the agents' output.
    let buf = term.backend().buffer();
    let text: String = buf.content().iter().map(|c| c.symbol()).collect();
    if !text.contains("agent-task-3") {
        println!("  warning: the dashboard does not show the agents");
    }
}

// ---------------------------------------------------------------------------------------------
// 3: keystroke to screen in focus mode

/// [3] with `flooders` = 0; [6] with other agents printing flat out meanwhile (`@sim flood`,
/// each in its own `AgentProcess` with its logs, as in [4]): one agent flooding must not delay
/// a keystroke in focus by more than a frame.
fn keystroke_latency(samples: usize, flooders: usize) {
    // A real agent (Claude Code, Codex) puts its terminal in raw mode and echoes what it reads by
    // drawing it: `stty raw -echo; cat` does exactly that (the echo is the program's, not the
    // kernel's line discipline).
    let tmp = tempfile::tempdir().unwrap();
    let floods: Vec<AgentProcess> = (0..flooders)
        .map(|i| spawn_flooder(tmp.path(), i, "4000MiB"))
        .collect();
    if flooders == 0 {
        println!(
            "\n[3] keystroke -> screen in focus mode: AgentProcess running `sh -c 'stty raw -echo; exec cat'`, {samples} samples"
        );
    } else {
        println!(
            "\n[6] keystroke -> screen in focus mode as in [3], while {flooders} other agents print flat out (`@sim flood`, logs written), {samples} samples"
        );
    }
    let proc = AgentProcess::spawn(
        SpawnSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "stty raw -echo; echo READY; exec cat".into(),
            ],
            cwd: tmp.path().to_path_buf(),
            env: vec![],
            rows: AGENT_ROWS,
            cols: AGENT_COLS,
            log_dir: tmp.path().join("logs"),
            log_rotate_bytes: ROTATE,
        },
        Box::new(|_| {}),
    )
    .expect("spawn sh");
    let screen = proc.screen();
    // Focus resizes the PTY to the focus area: 160x48 minus header, footer and gauge line.
    let (rows, cols) = (45u16, 160u16);
    proc.resize(rows, cols).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !screen.lock().unwrap().screen().contents().contains("READY") {
        assert!(Instant::now() < deadline, "the agent did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut state = view_state(std::slice::from_ref(&screen));
    state.view = View::Focus;
    state.back = View::Dashboard;
    state.focus = Some(AttemptId(1));
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();

    let mut echo = Vec::with_capacity(samples);
    let mut frame = Vec::with_capacity(samples);
    let mut total = Vec::with_capacity(samples);
    let mut missed = 0;
    for i in 0..samples + 10 {
        if i % 150 == 0 {
            // Keep the cursor on screen: start over on a cleared screen.
            proc.write(b"\x1b[2J\x1b[H".to_vec());
            std::thread::sleep(Duration::from_millis(20));
        }
        let (row, col) = screen.lock().unwrap().screen().cursor_position();
        let ch = b'a' + (i % 26) as u8;
        let t = Instant::now();
        proc.write(vec![ch]);
        let deadline = t + Duration::from_secs(2);
        let seen = loop {
            let ok = screen
                .lock()
                .unwrap()
                .screen()
                .cell(row, col)
                .is_some_and(|c| c.contents().as_bytes() == [ch]);
            if ok {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::yield_now();
        };
        let e = t.elapsed();
        let r = Instant::now();
        term.draw(|f| render(&state, f)).unwrap();
        let d = r.elapsed();
        if !seen {
            missed += 1;
        }
        if i >= 10 && seen {
            echo.push(ms(e));
            frame.push(ms(d));
            total.push(ms(e + d));
        }
        // Pace like a fast typist (~100 keys/s) so samples do not overlap.
        std::thread::sleep(Duration::from_millis(5));
    }
    line("write -> byte in the emulated screen", &echo, "ms");
    line("one focus frame (terminal.draw)", &frame, "ms");
    line("keystroke -> frame drawn (sum)", &total, "ms");
    if missed > 0 {
        println!("  {missed} keystrokes not seen within 2 s");
    }
    println!(
        "  (aim: under one frame, 16 ms; with agents flooding, p99 < 5 ms; the real TUI adds its wake-up (output hook -> UI loop) and the terminal's own write, not measured here)"
    );
    if flooders > 0 {
        let printed: u64 = (0..flooders)
            .map(|i| dir_bytes(&tmp.path().join(format!("flood-logs{i}")), "pty.raw"))
            .sum();
        println!(
            "  meanwhile the {flooders} flooding agents printed {:.1} MB (read, logged and emulated)",
            printed as f64 / 1e6
        );
    }
    for f in &floods {
        if f.wait_exit(Duration::ZERO).is_some() {
            println!("  warning: a flooding agent finished before the samples did");
        }
    }
    proc.stop(Duration::from_millis(500));
    proc.wait_exit(Duration::from_secs(5));
    for f in &floods {
        f.stop(Duration::from_millis(500));
        f.wait_exit(Duration::from_secs(5));
    }
}

/// An `orch-tui sim-agent` printing `size` flat out through an `AgentProcess` (PTY, screen,
/// logs rotating at [`ROTATE`]), its worktree and logs under `dir`.
fn spawn_flooder(dir: &Path, i: usize, size: &str) -> AgentProcess {
    let prompt = dir.join(format!("flood-prompt-{i}.md"));
    std::fs::write(&prompt, format!("Flood the terminal.\n@sim flood {size}\n")).unwrap();
    let wt = dir.join(format!("flood-wt{i}"));
    std::fs::create_dir_all(&wt).unwrap();
    AgentProcess::spawn(
        SpawnSpec {
            argv: vec![BIN.into(), "sim-agent".into()],
            cwd: wt.clone(),
            env: vec![
                ("ORCH_TASK".into(), format!("flood-{i}")),
                ("ORCH_PROMPT_FILE".into(), prompt.display().to_string()),
                ("ORCH_WORKTREE".into(), wt.display().to_string()),
                ("ORCH_BIN".into(), BIN.into()),
            ],
            rows: AGENT_ROWS,
            cols: AGENT_COLS,
            log_dir: dir.join(format!("flood-logs{i}")),
            log_rotate_bytes: ROTATE,
        },
        Box::new(|_| {}),
    )
    .expect("spawn sim-agent")
}

// ---------------------------------------------------------------------------------------------
// 4, 5: sustained ingest through the emulators and logs; peak memory

fn dir_bytes(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The bytes the agents printed (what their `pty.raw` kept), parsed again on one thread in reads
/// of `read` bytes: by a bare vt100 (same size, no callbacks, nothing written), then by what orch-tui's
/// reader does with each read (the screen with its text log, and the three files written) —
/// the supervisor's cost over bare emulation on the same cores in the same run, without the
/// PTYs and the programs producing the output.
fn same_bytes(log_dirs: &[PathBuf], read: usize) {
    use orch_tui::agent::record::{RecordSpec, Recorder};
    let inputs: Vec<Vec<u8>> = log_dirs
        .iter()
        .map(|d| orch_tui::agent::logs::read_all(&d.join("pty.raw")).unwrap_or_default())
        .collect();
    let total: usize = inputs.iter().map(Vec::len).sum();
    let nz = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    // CPU seconds of this thread, one agent's bytes after the other (wall time on a shared
    // machine says more about the neighbours than about the code; threads of our own would
    // compete for the same two cores).
    let time = |f: &dyn Fn(usize, &[u8])| {
        inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let t = thread_cpu();
                f(i, input);
                (thread_cpu() - t).as_secs_f64()
            })
            .sum::<f64>()
    };
    let bare = time(&|_, input| {
        let mut p = vt100::Parser::new(nz(AGENT_ROWS), nz(AGENT_COLS), 0);
        for chunk in input.chunks(read) {
            p.process(chunk);
        }
    });
    let out = tempfile::tempdir().unwrap();
    let ours = time(&|i, input| {
        let mut rec = Recorder::open(&RecordSpec {
            dir: out.path().join(i.to_string()),
            // No rotation, so the bytes per MB below count everything written.
            rotate_bytes: 0,
            rows: AGENT_ROWS,
            cols: AGENT_COLS,
            title: "bench".into(),
        })
        .unwrap();
        let mut p = new_parser(AGENT_ROWS, AGENT_COLS);
        let mut now = 1_700_000_000_000u64;
        let mut log = orch_tui::agent::record::text::LogLines::default();
        for chunk in input.chunks(read) {
            now += 1;
            rec.output(now, chunk);
            feed(&mut p, chunk, now);
            p.callbacks_mut().take_log(&mut log);
            rec.log(&log);
        }
    });
    let mb = total as f64 / 1e6;
    println!(
        "  the same {mb:.1} MB again, in {read}-byte reads, MB per CPU-second: bare vt100 {:.1}; orch-tui's reader (screen, stamped text log with snapshots, pty.raw, pty.cast) {:.1} => {:.2}x bare",
        mb / bare,
        mb / ours,
        bare / ours
    );
    let bytes = |name: &str| dir_bytes(&out.path().join("0"), name) as f64;
    let raw0 = bytes("pty.raw").max(1.0);
    println!(
        "  log bytes per MB of agent output (agent 0, nothing rotated away): pty.raw 1.00 MB, pty.cast {:.2} MB, screen.log {:.2} MB",
        bytes("pty.cast") / raw0,
        bytes("screen.log") / raw0
    );
}

/// What `@sim flood` prints (agent/sim/paint.rs), as the PTY hands it over (`\r\n`): short
/// coloured lines, every byte of which becomes log text.
fn flood_output(size: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima",
    ];
    let mut out = Vec::with_capacity(size + 256);
    let mut seed: u32 = 0x2545_f491;
    let mut line = 0u64;
    while out.len() < size {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let colour = 31 + (seed >> 24) % 6;
        let words = 3 + (seed >> 16) as usize % 8;
        out.extend_from_slice(format!("\x1b[{colour}m[flood {line:08}]\x1b[0m").as_bytes());
        for w in 0..words {
            out.push(b' ');
            out.extend_from_slice(WORDS[(seed as usize >> 4).wrapping_add(w * 7) % 12].as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        line += 1;
    }
    out
}

/// [7] Where the reader's CPU goes, in process, one thread, in 4 KiB reads (what one `read` of a
/// PTY gives) and in 64 KiB batches (what the reader takes at once while a flood keeps it busy):
/// bare vt100, then the screen with its text log (lines computed, nothing written), then with
/// `screen.log` written, then everything the reader does (also `pty.raw` and `pty.cast`).
fn ingest_breakdown(mb: usize) {
    use orch_tui::agent::record::{RecordSpec, Recorder};
    let nz = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    let inputs = [
        ("flood (@sim flood)", flood_output(mb << 20)),
        ("mixed agent output", agent_output(7, mb << 20)),
    ];
    println!(
        "\n[7] ingest breakdown, in process, one thread, CPU seconds of the thread (least of 3 runs)"
    );
    let pick = std::env::var("BENCH_BREAKDOWN_INPUT").unwrap_or_default();
    let inputs = inputs.iter().filter(|(n, _)| n.starts_with(pick.as_str()));
    for ((name, input), read) in inputs.flat_map(|i| [(i, 4096), (i, 65536)]) {
        // The least of 3 runs: on a shared machine a run only ever gets slower than the code.
        let time = |f: &dyn Fn()| {
            (0..3)
                .map(|_| {
                    let t = thread_cpu();
                    f();
                    (thread_cpu() - t).as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        let bare = time(&|| {
            let mut p = vt100::Parser::new(nz(AGENT_ROWS), nz(AGENT_COLS), 0);
            for chunk in input.chunks(read) {
                p.process(chunk);
            }
        });
        let lines = time(&|| {
            let mut p = new_parser(AGENT_ROWS, AGENT_COLS);
            let mut now = 1_700_000_000_000u64;
            let mut log = orch_tui::agent::record::text::LogLines::default();
            for chunk in input.chunks(read) {
                now += 1;
                feed(&mut p, chunk, now);
                p.callbacks_mut().take_log(&mut log);
            }
        });
        let out = tempfile::tempdir().unwrap();
        let run = |all: bool, every_line: bool| {
            let mut rec = Recorder::open(&RecordSpec {
                dir: out.path().join(if all { "all" } else { "text" }),
                rotate_bytes: 0,
                rows: AGENT_ROWS,
                cols: AGENT_COLS,
                title: "bench".into(),
            })
            .unwrap();
            let mut p = new_parser(AGENT_ROWS, AGENT_COLS);
            if every_line {
                p.callbacks_mut().tracker().emulate_every_line();
            }
            let mut now = 1_700_000_000_000u64;
            let mut log = orch_tui::agent::record::text::LogLines::default();
            for chunk in input.chunks(read) {
                now += 1;
                if all {
                    rec.output(now, chunk);
                }
                feed(&mut p, chunk, now);
                p.callbacks_mut().take_log(&mut log);
                rec.log(&log);
            }
        };
        let text = time(&|| run(false, false));
        let all = time(&|| run(true, false));
        let every = time(&|| run(true, true));
        let m = input.len() as f64 / 1e6;
        println!(
            "  {name}, {m:.1} MB in {} KiB reads: bare vt100 {bare:.2} s ({:.1} MB/s); + text log lines {lines:.2}; + screen.log written {text:.2}; + pty.raw and pty.cast {all:.2} ({:.1} MB/s) => {:.2}x bare; the same emulating every line (no offscreen skip) {every:.2} => {:.2}x bare",
            read / 1024,
            m / bare,
            m / all,
            bare / all,
            bare / every
        );
    }
}

fn ingest(size: &str, show4: bool, show5: bool) {
    let tmp = tempfile::Builder::new()
        .prefix("orch-tuibench-flood-")
        .tempdir()
        .unwrap();
    let prompt = tmp.path().join("prompt.md");
    std::fs::write(&prompt, format!("Flood the terminal.\n@sim flood {size}\n")).unwrap();
    // Reset the peak RSS so [5] is about this item (Linux >= 4.0: clear_refs 5).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = proc_status_kb("VmRSS:").unwrap_or(0);
    let r0 = self_io();
    let cpu0 = cpu_fields("self").unwrap_or_default();
    // One `Output` signal per read() of a PTY: counts the reads.
    let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t0 = Instant::now();
    let agents: Vec<(AgentProcess, PathBuf)> = (0..4)
        .map(|i| {
            let wt = tmp.path().join(format!("wt{i}"));
            let logs = tmp.path().join(format!("logs{i}"));
            std::fs::create_dir_all(&wt).unwrap();
            let p = AgentProcess::spawn(
                SpawnSpec {
                    argv: vec![BIN.into(), "sim-agent".into()],
                    cwd: wt.clone(),
                    env: vec![
                        ("ORCH_TASK".into(), format!("flood-{i}")),
                        ("ORCH_PROMPT_FILE".into(), prompt.display().to_string()),
                        ("ORCH_WORKTREE".into(), wt.display().to_string()),
                        ("ORCH_BIN".into(), BIN.into()),
                    ],
                    rows: AGENT_ROWS,
                    cols: AGENT_COLS,
                    log_dir: logs.clone(),
                    log_rotate_bytes: ROTATE,
                },
                {
                    let reads = reads.clone();
                    Box::new(move |sig| {
                        if sig == AgentSignal::Output {
                            reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    })
                },
            )
            .expect("spawn sim-agent");
            (p, logs)
        })
        .collect();
    let mut codes = Vec::new();
    let mut walls = Vec::new();
    for (p, _) in &agents {
        codes.push(p.wait_exit(Duration::from_secs(900)));
        walls.push(t0.elapsed().as_secs_f64());
    }
    let wall = t0.elapsed().as_secs_f64();
    let r1 = self_io();
    let cpu1 = cpu_fields("self").unwrap_or_default();
    let hwm = proc_status_kb("VmHWM:").unwrap_or(0);
    let rss_after = proc_status_kb("VmRSS:").unwrap_or(0);
    let read = r1 - r0;
    if show4 {
        println!(
            "\n[4] ingest: 4 AgentProcess running `orch-tui sim-agent` with `@sim flood {size}`, PTY {AGENT_ROWS}x{AGENT_COLS}, logs rotating at {} MiB",
            ROTATE >> 20
        );
        println!(
            "  exits: {:?}",
            codes
                .iter()
                .map(|c| c.map_or("timeout".to_string(), |c| format!("{:?}", c.code)))
                .collect::<Vec<_>>()
        );
        println!(
            "  {:.1} MB read from the 4 PTYs (= written to pty.raw and parsed by the screens) in {wall:.2}s => {:.1} MB/s total  (aim >= 50 MB/s)",
            read as f64 / 1e6,
            read as f64 / 1e6 / wall
        );
        let ticks = clock_ticks();
        let own = (cpu1.0 - cpu0.0) as f64 / ticks;
        let sims = (cpu1.1 - cpu0.1) as f64 / ticks;
        let mb = read as f64 / 1e6;
        println!(
            "  CPU: this process (readers: log writes + emulators) {own:.1} s = {:.1} MB per CPU-second; the 4 sims {sims:.1} s; together {:.2} cores busy of {} => on {} idle cores the ceiling is ~{:.0} MB/s",
            mb / own,
            (own + sims) / wall,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            mb / (own + sims) * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
        );
        let n_reads = reads.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "  {n_reads} batches => {:.0} bytes per batch on average (a PTY read gives <= 4 KiB; the reader reads on while more waits, up to 64 KiB; each batch costs one write to pty.raw, one to pty.cast and one to screen.log)",
            read as f64 / n_reads.max(1) as f64
        );
        println!(
            "  per agent finished at: {}",
            walls
                .iter()
                .map(|w| format!("{w:.1}s"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let raw_kept: u64 = agents.iter().map(|(_, l)| dir_bytes(l, "pty.raw")).sum();
        let screen_kept: u64 = agents.iter().map(|(_, l)| dir_bytes(l, "screen.log")).sum();
        let cast_kept: u64 = agents.iter().map(|(_, l)| dir_bytes(l, "pty.cast")).sum();
        println!(
            "  on disk after rotation (3 generations kept): pty.raw* {:.1} MB, pty.cast* {:.1} MB, screen.log* {:.1} MB",
            raw_kept as f64 / 1e6,
            cast_kept as f64 / 1e6,
            screen_kept as f64 / 1e6
        );
        let dirs: Vec<PathBuf> = agents.iter().map(|(_, l)| l.clone()).collect();
        // As one read() gives them, then in the batches the reader made in this run.
        same_bytes(&dirs, 4096);
        let batch = (read / n_reads.max(1)) as usize;
        same_bytes(&dirs, batch.max(1));
        println!(
            "  (bytes read = rchar of /proc/self/io over the item: the reader threads' PTY reads, plus the few KB the reaped sim agents read themselves; every byte read goes to pty.raw, then to the screen)"
        );
        for (i, (p, _)) in agents.iter().enumerate() {
            let sc = p.screen();
            let text = sc.lock().unwrap().screen().contents();
            let last = text.lines().rev().find(|l| l.contains("[flood ")).map(|l| {
                l.split("[flood ")
                    .nth(1)
                    .and_then(|s| s.split(']').next())
                    .unwrap_or("?")
                    .to_string()
            });
            if i == 0 {
                println!(
                    "  last flood line on agent 0's screen: #{} (the sim numbers its lines)",
                    last.unwrap_or_else(|| "none".into())
                );
            }
        }
    }
    if show5 {
        println!(
            "\n[5] peak memory of the bench process during [4] (4 agents x {size}, scrollback {SCROLLBACK_ROWS} rows x {AGENT_COLS} cols per screen)"
        );
        println!(
            "  VmHWM {:.1} MB  (aim < 150 MB; peak {})  VmRSS before {:.1} MB, after {:.1} MB",
            hwm as f64 / 1024.0,
            if reset {
                "reset just before [4]"
            } else {
                "since process start: could not reset"
            },
            rss_before as f64 / 1024.0,
            rss_after as f64 / 1024.0
        );
    }
    for (p, _) in &agents {
        p.stop(Duration::from_millis(200));
    }
}
