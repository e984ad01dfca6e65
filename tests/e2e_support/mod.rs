//! Helpers for the end-to-end tests: a scratch git repository, the real `orch-tui` binary run
//! with a deadline (its process group is killed if a test panics or times out), `status --json`,
//! and a scan of `/proc` for agent processes that belong to this test's ledger.

#![allow(dead_code)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::common::git as git_in;

pub const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

/// Small grace and backoffs, so failures and retries take milliseconds; merges go ahead without
/// a human (the funnel's own tests cover the human stages).
pub const FAST_CONFIG: &str = r#"
stop_grace = "200ms"
default_agent = "sim"

[retry]
backoff_base = "10ms"
backoff_cap = "50ms"

[funnel]
autonomy = "out-of-the-loop"
"#;

/// The result of one finished `orch-tui` command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// A readable dump for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A scratch repository on `main` with one commit, in its own temporary folder.
pub struct Repo {
    _tmp: TempDir,
    /// The temporary folder (holds the repository, plans and captured output).
    pub root: PathBuf,
    /// The repository's working tree.
    pub dir: PathBuf,
    outputs: std::cell::Cell<u32>,
}

impl Repo {
    pub fn new() -> Repo {
        let tmp = tempfile::Builder::new()
            .prefix("orch-e2e-")
            .tempdir()
            .expect("tempdir");
        let root = fs::canonicalize(tmp.path()).expect("canonicalize tempdir");
        let dir = root.join("repo");
        fs::create_dir(&dir).expect("mkdir repo");
        let repo = Repo {
            _tmp: tmp,
            root,
            dir,
            outputs: std::cell::Cell::new(0),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        fs::write(repo.dir.join("README.md"), "# scratch\n").expect("write README");
        repo.git(&["add", "-A"]);
        repo.git(&[
            "-c",
            "user.name=E2E User",
            "-c",
            "user.email=e2e@example.com",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            "initial",
        ]);
        repo
    }

    /// A temporary folder whose repository `root/NAME` does not exist yet (for `demo --dir`);
    /// commands run from the folder until the repository appears.
    pub fn uncreated(name: &str) -> Repo {
        let tmp = tempfile::Builder::new()
            .prefix("orch-e2e-")
            .tempdir()
            .expect("tempdir");
        let root = fs::canonicalize(tmp.path()).expect("canonicalize tempdir");
        Repo {
            _tmp: tmp,
            dir: root.join(name),
            root,
            outputs: std::cell::Cell::new(0),
        }
    }

    /// Runs git in the repository; panics with git's stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.dir, args)
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir.join(".orch").join("ledger.db")
    }

    /// Writes a plan outside the repository (so it never shows in the user's working tree).
    pub fn write_plan(&self, text: &str) -> PathBuf {
        let p = self.root.join("plan.toml");
        fs::write(&p, text).expect("write plan");
        p
    }

    /// `orch-tui init`, then `.orch/config.toml` replaced by `config`.
    pub fn init(&self, config: &str) {
        let out = self.orch(&["init"], Duration::from_secs(20));
        assert_eq!(out.code, 0, "init failed: {}", out.show());
        fs::write(self.dir.join(".orch").join("config.toml"), config).expect("write config");
    }

    fn next_output(&self) -> (PathBuf, PathBuf) {
        let n = self.outputs.get() + 1;
        self.outputs.set(n);
        (
            self.root.join(format!("out-{n}.stdout")),
            self.root.join(format!("out-{n}.stderr")),
        )
    }

    /// Starts `orch-tui ARGS` in the repository, in its own process group, output to files.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let (so, se) = self.next_output();
        let cwd = if self.dir.exists() {
            &self.dir
        } else {
            &self.root
        };
        let child = base_command(cwd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&so).expect("stdout file"))
            .stderr(fs::File::create(&se).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("spawn orch-tui");
        Running {
            child: Some(child),
            stdout: so,
            stderr: se,
            args: args.iter().map(|s| s.to_string()).collect(),
            ledger: self.ledger(),
        }
    }

    /// `orch-tui ARGS` as a command to configure and start (the same environment as `spawn`);
    /// the caller owns the process.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = base_command(&self.dir);
        c.args(args);
        c
    }

    /// Runs `orch-tui ARGS` to the end; panics (after killing it) if it outlives `limit`.
    pub fn orch(&self, args: &[&str], limit: Duration) -> Out {
        self.spawn(args).wait(limit)
    }

    /// `status --json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.orch(&["status", "--json"], Duration::from_secs(20));
        assert_eq!(out.code, 0, "status --json failed: {}", out.show());
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", out.stdout))
    }

    /// One task of `status --json`.
    pub fn task(&self, id: &str) -> Value {
        task_of(&self.status(), id)
    }

    /// Agent processes (or their children) still running for this test's ledger.
    pub fn agents(&self) -> Vec<Proc> {
        agents_of(&self.ledger())
    }

    /// Waits (up to `limit`) until no process of this ledger is left; panics listing them.
    pub fn assert_no_agents_left(&self, limit: Duration) {
        let left = wait_for(limit, || {
            let a = self.agents();
            a.is_empty().then_some(()).ok_or(a)
        });
        if let Err(left) = left {
            panic!("processes of this ledger still running after {limit:?}: {left:#?}");
        }
    }

    /// The commits on `range` (oldest first), each with author and trailers.
    pub fn commits(&self, range: &str) -> Vec<Commit> {
        let log = self.git(&["log", "--reverse", "--format=%H%x00%an%x00%B%x01", range]);
        log.split('\x01')
            .map(|c| c.trim_start_matches('\n'))
            .filter(|c| !c.trim().is_empty())
            .map(|c| {
                let mut parts = c.splitn(3, '\0');
                let oid = parts.next().unwrap_or("").to_string();
                let author = parts.next().unwrap_or("").to_string();
                let body = parts.next().unwrap_or("").to_string();
                Commit { oid, author, body }
            })
            .collect()
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        // Never leave agents behind, whatever the test did.
        for p in agents_of(&self.ledger()) {
            kill_group(p.pid, libc::SIGKILL);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub oid: String,
    pub author: String,
    pub body: String,
}

impl Commit {
    /// The value of trailer `key` (e.g. `Orch-Task`), if present.
    pub fn trailer(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}:");
        self.body
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
    }
}

/// A running `orch-tui` command. Dropping it kills its process group.
pub struct Running {
    child: Option<Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    args: Vec<String>,
    ledger: PathBuf,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// The exit status, if it has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_now(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn take_output(&self, status: ExitStatus) -> Out {
        use std::os::unix::process::ExitStatusExt;
        Out {
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }

    /// Waits for the end; past `limit`, kills the process group and panics with its output.
    pub fn wait(mut self, limit: Duration) -> Out {
        let res = wait_for(limit, || self.try_wait().ok_or(()));
        match res {
            Ok(status) => {
                self.child = None;
                self.take_output(status)
            }
            Err(()) => {
                self.kill_all();
                let so = fs::read_to_string(&self.stdout).unwrap_or_default();
                let se = fs::read_to_string(&self.stderr).unwrap_or_default();
                panic!(
                    "orch-tui {:?} still running after {limit:?}; killed\n--- stdout ---\n{so}\n--- stderr ---\n{se}",
                    self.args
                );
            }
        }
    }

    /// `kill -9` of the supervisor alone (a crash: its agents stay behind for the next start).
    pub fn kill9(mut self) -> Out {
        let pid = self.pid();
        // SAFETY: signalling a child we spawned and have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let status = self
            .child
            .as_mut()
            .expect("child")
            .wait()
            .expect("wait after kill");
        self.child = None;
        self.take_output(status)
    }

    /// Kills a command that is still running (a test failed or timed out), with its process
    /// group and the agents of this ledger. A command that ended is left alone.
    fn kill_all(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(c.id() as i32, libc::SIGKILL);
            let _ = c.wait();
            for p in agents_of(&self.ledger) {
                kill_group(p.pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn base_command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        // The product must not depend on the machine's git identity or hooks.
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ORCH_") {
            c.env_remove(k);
        }
    }
    c
}

/// Polls `check` until it gives `Ok` or `limit` passes (then the last `Err`).
pub fn wait_for<T, E>(limit: Duration, mut check: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let end = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= end => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

pub fn task_of(status: &Value, id: &str) -> Value {
    status["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no task `{id}` in status: {status:#}"))
}

pub fn state_of(status: &Value, id: &str) -> String {
    task_of(status, id)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub cmdline: String,
    pub task: Option<String>,
}

/// Every live process whose environment holds `ORCH_LEDGER=<ledger>`.
pub fn agents_of(ledger: &Path) -> Vec<Proc> {
    let needle = format!("ORCH_LEDGER={}", ledger.display());
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        if !vars.contains(&needle.as_bytes()) {
            continue;
        }
        // A zombie still shows its environ on some kernels; it is not running.
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("");
        if state == "Z" || state == "X" {
            continue;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let task = vars.iter().find_map(|kv| {
            kv.strip_prefix(b"ORCH_TASK=")
                .map(|v| String::from_utf8_lossy(v).into_owned())
        });
        found.push(Proc { pid, cmdline, task });
    }
    found
}

/// SIGKILL a process's group (agents lead their own), and the process itself.
pub fn kill_group(pid: i32, sig: i32) {
    // SAFETY: plain signal calls; a stale pid at worst gets ESRCH.
    unsafe {
        let pgid = libc::getpgid(pid);
        if pgid > 1 {
            libc::killpg(pgid, sig);
        }
        libc::kill(pid, sig);
    }
}

/// Is any process left in process group `pgid`? (Agents lead their own group.)
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

/// A tiny deterministic generator (splitmix64) for reproducible random choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// The seed from `E2E_SEED`, or one from the clock.
pub fn seed() -> u64 {
    std::env::var("E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}
