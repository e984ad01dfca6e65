//! `cargo bench --bench logs`: how long a line an agent prints takes to reach
//! `orch-tui logs --all --follow` in another process, through the real pieces: a headless run
//! whose agent (a shell script in its PTY) prints a line with the time it printed it every
//! 100 ms, and the follower reading the attempt's text log. Figures only.
//!
//! Knobs: `BENCH_LINES` (lines printed, default 100).

#[allow(dead_code)] // the shared helpers this bench does not use
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{git, line_with};

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn main() {
    let lines: usize = std::env::var("BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    println!("orch-tui logs bench");
    let tmp = tempfile::Builder::new()
        .prefix("orch-logbench-")
        .tempdir()
        .unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "x\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    );
    let orch = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    orch(&["init"]);
    // `date +%s%N`: the agent's own clock when it prints the line.
    let script = format!(
        "for i in $(seq 1 {lines}); do echo \"tick $(date +%s%N)\"; sleep 0.1; done; echo done > d.txt"
    );
    std::fs::write(
        repo.join(".orch/config.toml"),
        format!(
            "stop_grace = \"200ms\"\n[funnel]\nautonomy = \"out-of-the-loop\"\n[agents.ticker]\ncommand = [\"sh\", \"-c\", '''{script}''']\nadapter = \"generic\"\n"
        ),
    )
    .unwrap();
    let plan = tmp.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[plan]\nname = \"bench\"\n[[task]]\nid = \"tick\"\ntitle = \"ticks\"\nagent = \"ticker\"\nprompt = \"tick\"\n",
    )
    .unwrap();
    orch(&["plan", "load", plan.to_str().unwrap()]);
    let mut follow = Command::new(BIN)
        .args(["logs", "--all", "--follow"])
        .current_dir(&repo)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut run = Command::new(BIN)
        .args(["run", "--headless"])
        .current_dir(&repo)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reader = BufReader::new(follow.stdout.take().unwrap());
    let mut delays = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(lines as u64 / 5 + 60);
    for line in reader.lines() {
        let Ok(line) = line else { break };
        let seen = now_ns();
        if let Some(ns) = line
            .rsplit_once("tick ")
            .and_then(|(_, n)| n.trim().parse::<u128>().ok())
        {
            delays.push(seen.saturating_sub(ns) as f64 / 1e6);
        }
        if delays.len() >= lines || Instant::now() > deadline {
            break;
        }
    }
    // Stop both by pid.
    let _ = follow.kill();
    let _ = follow.wait();
    let _ = run.wait();
    println!(
        "\n[1] an agent prints a line -> `orch-tui logs --all --follow` (another process) prints it; {} lines, one every 100 ms",
        delays.len()
    );
    line_with("print -> follower's stdout", &delays, "ms", 1);
}
