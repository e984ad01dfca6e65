//! A scratch repository with a plan and config, and the real binary run against it.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use crate::common::git;

pub const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

pub struct Repo {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Repo {
    /// A repository with one commit holding `files`, plus `.orch/config.toml` and `plan.toml`.
    pub fn new(files: &[(&str, &str)], config: &str, plan: &str) -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join(".orch")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        for (name, text) in files {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        std::fs::write(root.join("plan.toml"), plan).unwrap();
        git(&root, &["add", "-A"]);
        git(
            &root,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@x",
                "commit",
                "-qm",
                "start",
            ],
        );
        let base = "[retry]\nbackoff_base = \"10ms\"\nbackoff_cap = \"50ms\"\n";
        std::fs::write(
            root.join(".orch/config.toml"),
            format!("stop_grace = \"300ms\"\ndefault_agent = \"sim\"\n{base}{config}"),
        )
        .unwrap();
        Repo { _dir: dir, root }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(&self.root)
            .arg("--repo")
            .arg(&self.root)
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("orch-tui runs")
    }

    /// `run --headless --plan plan.toml` in the background.
    pub fn start(&self) -> Running {
        let child = self
            .cmd(&["run", "--headless", "--plan", "plan.toml"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        Running(Some(child))
    }

    pub fn status(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    pub fn task(&self, id: &str) -> serde_json::Value {
        let s = self.status();
        s["tasks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["id"] == id).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Wait until `cond` holds for the status, or fail after `secs`.
    pub fn wait_for(&self, secs: u64, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status();
            if cond(&s) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {s:#}"
            );
            std::thread::park_timeout(Duration::from_millis(25));
        }
    }

    /// (task, attempt) of every commit on the integration branch, oldest first.
    pub fn integration(&self) -> Vec<(String, String)> {
        let log = git(
            &self.root,
            &[
                "log",
                "--reverse",
                "--format=%(trailers:key=Orch-Task,valueonly,separator=)%x09%(trailers:key=Orch-Attempt,valueonly,separator=)",
                "main..orch/integration",
            ],
        );
        log.lines()
            .map(|l| {
                let (t, a) = l.split_once('\t').unwrap_or((l, ""));
                (t.trim().to_string(), a.trim().to_string())
            })
            .collect()
    }

    pub fn show(&self, rev_path: &str) -> String {
        git(&self.root, &["show", rev_path])
    }
}

/// A background supervisor, killed (with its process group's agents) if the test fails.
pub struct Running(Option<Child>);

impl Running {
    /// Wait for it to exit (bounded) and return its output.
    pub fn finish(mut self, secs: u64) -> Output {
        let mut child = self.0.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if child.try_wait().expect("wait").is_some() {
                return child.wait_with_output().expect("output");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "supervisor did not finish in {secs}s:\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::park_timeout(Duration::from_millis(25));
        }
    }

    pub fn kill9(mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            // SAFETY: SIGTERM to the child we spawned; it stops its agents.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }
}

pub fn events(repo: &Repo, task: &str) -> Vec<serde_json::Value> {
    let out = repo.run(&["events", "--json", "--task", task]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
