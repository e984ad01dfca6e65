//! Shared helpers for tests/ledger.rs and tests/cli_bad_input.rs: real git repositories in
//! temporary folders, the real `orch-tui` binary, and snapshots of what a user can observe of a
//! ledger (its bytes, `status --json`, row counts).
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod claims;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_orch-tui")
}

/// The environment variables `orch-tui worker` reads; removed from every child unless a test
/// sets them, so the caller's environment never leaks in.
use crate::common::git;

pub const ORCH_VARS: [&str; 4] = ["ORCH_LEDGER", "ORCH_TASK", "ORCH_ATTEMPT", "ORCH_TOKEN"];

/// A temporary folder holding `repo/`: a git repository on `main` with one commit.
pub struct Repo {
    pub tmp: TempDir,
    pub dir: PathBuf,
}

impl Repo {
    pub fn new() -> Repo {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("repo");
        std::fs::create_dir(&dir).expect("mkdir repo");
        git(&dir, &["init", "-q", "-b", "main"]);
        git(&dir, &["config", "user.name", "Test User"]);
        git(&dir, &["config", "user.email", "user@example.com"]);
        git(&dir, &["config", "commit.gpgsign", "false"]);
        std::fs::write(dir.join("README.md"), "hello\n").expect("write");
        git(&dir, &["add", "-A"]);
        git(
            &dir,
            &[
                "-c",
                "user.name=Test User",
                "-c",
                "user.email=user@example.com",
                "commit",
                "-q",
                "-m",
                "initial",
            ],
        );
        Repo { tmp, dir }
    }

    /// A repository with `orch-tui init` run in it.
    pub fn initialised() -> Repo {
        let r = Repo::new();
        let out = r.orch(&["init"]);
        assert_eq!(out.code, 0, "orch-tui init failed: {}", out.stderr);
        assert!(r.ledger().exists(), "init made no ledger");
        // Plans in these tests name no agent: run them on the simulator, as a project would
        // name its real agent.
        let cfg = r.dir.join(".orch").join("config.toml");
        let text = std::fs::read_to_string(&cfg).expect("read config");
        let rest: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("default_agent"))
            .collect();
        std::fs::write(
            &cfg,
            format!("default_agent = \"sim\"\n{}\n", rest.join("\n")),
        )
        .expect("write config");
        r
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir.join(".orch").join("ledger.db")
    }

    /// Writes a file outside the repository (plans live next to it, not in it).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// `orch-tui ARGS` with the repository as the current directory.
    pub fn orch(&self, args: &[&str]) -> Run {
        run_orch(&self.dir, args, &[])
    }

    pub fn orch_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_orch(&self.dir, args, env)
    }

    /// `orch-tui ARGS` started in the background, killed (with its agents) when dropped.
    pub fn spawn(&self, args: &[&str]) -> ProcessGuard {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for v in ORCH_VARS {
            cmd.env_remove(v);
        }
        ProcessGuard {
            child: Some(cmd.spawn().expect("spawn orch-tui")),
            also_kill: Vec::new(),
        }
    }

    pub fn status_json(&self) -> serde_json::Value {
        let out = self.orch(&["status", "--json"]);
        assert_eq!(out.code, 0, "status --json failed: {}", out.stderr);
        serde_json::from_str(&out.stdout).expect("status --json is JSON")
    }

    /// Everything a user could notice about the ledger, for "nothing changed" checks.
    pub fn snapshot(&self) -> Snapshot {
        let file = std::fs::read(self.ledger()).expect("read ledger");
        let wal = std::fs::read(self.ledger().with_extension("db-wal")).ok();
        let conn = rusqlite::Connection::open(self.ledger()).expect("open ledger");
        let count = |t: &str| -> i64 {
            conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .expect("count")
        };
        let counts = [
            count("tasks"),
            count("events"),
            count("attempts"),
            count("deps"),
        ];
        drop(conn);
        let status = self.orch(&["status", "--json"]);
        assert_eq!(status.code, 0, "status --json failed: {}", status.stderr);
        Snapshot {
            file_hash: hash(&file),
            wal_hash: wal.as_deref().map(hash),
            status: status.stdout,
            counts,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub file_hash: u64,
    pub wal_hash: Option<u64>,
    pub status: String,
    /// tasks, events, attempts, deps
    pub counts: [i64; 4],
}

pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The bytes of the ledger file and its -wal, as they are on disk (no connection opened).
pub fn file_bytes(ledger: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        std::fs::read(ledger).expect("read ledger"),
        std::fs::read(ledger.with_extension("db-wal")).ok(),
    )
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// The deadline for any one command: a hung CLI fails the test instead of hanging it.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

pub fn run_orch(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in ORCH_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn orch-tui");
    let mut guard = ProcessGuard {
        child: Some(child),
        also_kill: Vec::new(),
    };
    let status = guard
        .wait_deadline(COMMAND_DEADLINE)
        .unwrap_or_else(|| panic!("orch-tui {args:?} did not finish within {COMMAND_DEADLINE:?}"));
    let took = start.elapsed();
    let child = guard.child.take().expect("child");
    let out: Output = child.wait_with_output().expect("collect output");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    }
}

/// A child process that is stopped when the guard is dropped (SIGTERM, a grace period, then
/// SIGKILL), together with any other pids registered (e.g. the agents it started).
pub struct ProcessGuard {
    pub child: Option<Child>,
    pub also_kill: Vec<i32>,
}

impl ProcessGuard {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    /// Waits for the child to exit, up to `deadline`. `None` if it is still running.
    pub fn wait_deadline(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.as_ref()?.id() as i32;
        if let Ok(Some(st)) = self.child.as_mut()?.try_wait() {
            return Some(st);
        }
        // SAFETY: signalling our own child by pid; it has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        if let Some(st) = self.wait_deadline(grace) {
            return Some(st);
        }
        let child = self.child.as_mut()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(None) = child.try_wait()
        {
            self.stop(Duration::from_secs(5));
        }
        for &pid in &self.also_kill {
            if pid > 0 {
                // SAFETY: plain kill(2) of a process group and a pid we recorded.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// True when `pid` no longer runs (gone, or a zombie waiting for its parent).
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `deadline` with `what`.
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
