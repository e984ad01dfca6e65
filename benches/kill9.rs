//! Random `kill -9` of the supervisor over a plan of 320 tasks (sim agents), then a final run to
//! the end; prints what a user would check afterwards — tasks merged twice, work lost, processes
//! left behind, worktrees left behind, the ledger's integrity — and how fast a restart resumes.
//!
//!     cargo bench --bench kill9 [-- KILLS [SEED]]      (defaults: 40 kills, a random seed)

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Rng, git, line_with};

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");
const LAYERS: usize = 8;
const WIDTH: usize = 40;

fn plan() -> String {
    let mut s = String::from("[plan]\nname = \"kill9\"\n\n[defaults]\nagent = \"sim\"\n\n");
    for layer in 0..LAYERS {
        for k in 0..WIDTH {
            let id = format!("t{layer}-{k:02}");
            let deps = if layer == 0 {
                String::new()
            } else {
                format!("\"t{}-{:02}\"", layer - 1, k)
            };
            s.push_str(&format!(
                "[[task]]\nid = \"{id}\"\ntitle = \"{id}\"\ndepends_on = [{deps}]\nprompt = '''\n@sim speed fast\n@sim sleep 50ms\n@sim write files/{id}.txt: {id}\n'''\n\n"
            ));
        }
    }
    s
}

const CONFIG: &str = "stop_grace = \"200ms\"\ndefault_agent = \"sim\"\nslots = 4\n\n[retry]\nbackoff_base = \"10ms\"\nbackoff_cap = \"50ms\"\n\n[funnel]\nautonomy = \"out-of-the-loop\"\n";

fn orch(dir: &Path, args: &[&str], out: &Path) -> Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).expect("stdout file"))
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("orch-tui starts")
}

fn wait_line(path: &Path, needle: &str, child: &mut Child, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle)) {
            return Some(start.elapsed());
        }
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// Processes whose environment names this ledger.
fn orphans(ledger: &Path) -> usize {
    let needle = format!("ORCH_LEDGER={}", ledger.display());
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .filter(|e| {
                    std::fs::read(e.path().join("environ"))
                        .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                })
                .count()
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let kills: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(40);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id())
    });
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = std::fs::canonicalize(tmp.path()).unwrap().join("repo");
    std::fs::create_dir(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("README.md"), "kill9\n").unwrap();
    git(&dir, &["add", "-A"]);
    git(
        &dir,
        &[
            "-c",
            "user.name=B",
            "-c",
            "user.email=b@example.com",
            "commit",
            "-qm",
            "init",
        ],
    );
    let plan_path = tmp.path().join("plan.toml");
    std::fs::write(&plan_path, plan()).unwrap();
    let out = tmp.path().join("out.txt");
    let mut init = orch(&dir, &["init"], &out);
    init.wait().unwrap();
    std::fs::write(dir.join(".orch/config.toml"), CONFIG).unwrap();
    let ledger = dir.join(".orch/ledger.db");
    println!(
        "kill9: {} tasks, {kills} kills, seed {seed}",
        LAYERS * WIDTH
    );

    let (mut boot, mut dispatch) = (Vec::new(), Vec::new());
    let plan_arg = plan_path.to_string_lossy().to_string();
    let started = Instant::now();
    let mut done_early = false;
    for k in 0..kills {
        let mut a = vec!["run", "--headless"];
        if k == 0 {
            a.extend(["--plan", plan_arg.as_str()]);
        }
        let spawned = Instant::now();
        let mut child = orch(&dir, &a, &out);
        if let Some(t) = wait_line(&out, "supervising", &mut child, Duration::from_secs(30)) {
            boot.push(t.as_secs_f64() * 1000.0);
        }
        if wait_line(&out, "▶", &mut child, Duration::from_secs(30)).is_some() {
            dispatch.push(spawned.elapsed().as_secs_f64() * 1000.0);
        }
        let after = Duration::from_millis(100 + rng.below(1400) as u64);
        let end = Instant::now() + after;
        while Instant::now() < end && child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().ok().flatten().is_some() {
            done_early = true;
            break;
        }
        // SAFETY: the supervisor's own process group (it started agents in sessions of theirs).
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
    }
    let mut last = orch(&dir, &["run", "--headless"], &out);
    let status = last.wait().unwrap();
    let total = started.elapsed();

    let log = Command::new("git")
        .args([
            "log",
            "--format=%(trailers:key=Orch-Task,valueonly)",
            "main..orch/integration",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let mut merged: BTreeMap<String, usize> = BTreeMap::new();
    for l in String::from_utf8_lossy(&log.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        *merged.entry(l.trim().to_string()).or_default() += 1;
    }
    let twice = merged.values().filter(|n| **n > 1).count();
    let mut lost = 0;
    for layer in 0..LAYERS {
        for k in 0..WIDTH {
            let id = format!("t{layer}-{k:02}");
            let shown = Command::new("git")
                .args(["show", &format!("orch/integration:files/{id}.txt")])
                .current_dir(&dir)
                .output()
                .unwrap();
            if String::from_utf8_lossy(&shown.stdout).trim() != id {
                lost += 1;
            }
        }
    }
    let worktrees = std::fs::read_dir(dir.join(".orch/worktrees"))
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('_'))
                .count()
        })
        .unwrap_or(0);
    let db = rusqlite::Connection::open(&ledger).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    println!(
        "  final run exit: {status}; {:.1} s in all{}",
        total.as_secs_f64(),
        if done_early {
            " (finished before the last kill)"
        } else {
            ""
        }
    );
    println!(
        "  tasks merged: {} of {}; merged twice: {twice}; work lost: {lost}",
        merged.len(),
        LAYERS * WIDTH
    );
    println!(
        "  processes left: {}; worktrees left: {worktrees}; ledger: {integrity}",
        orphans(&ledger)
    );
    line_with("restart -> supervising (ms)", &boot, "ms", 1);
    line_with("restart -> first dispatch (ms)", &dispatch, "ms", 1);
}
