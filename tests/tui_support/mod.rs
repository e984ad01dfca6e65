//! The real binary in a private tmux server, for the TUI's end-to-end tests (tests/tui_e2e.rs,
//! tests/tui_ledger_lock.rs). Each test runs its own tmux server (a private socket named after
//! the process and test), killed by a Drop guard, so nothing leaks between tests or into the
//! user's tmux. Synchronisation is by polling the screen against a deadline.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// None when tmux is not installed (the test is then skipped with a note).
    pub fn start(name: &str, cmd: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("tmux is not installed: skipping");
            return None;
        }
        let t = Tmux {
            socket: format!("orch-e2e-{}-{name}", std::process::id()),
        };
        t.new_session(cmd);
        Some(t)
    }

    pub fn new_session(&self, cmd: &str) {
        // After `kill_session` of the last session the old server may still be exiting ("server
        // exited unexpectedly"): try again until it is gone, for a few seconds at most.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.try_new_session(cmd) {
            assert!(Instant::now() < deadline, "tmux new-session kept failing");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn try_new_session(&self, cmd: &str) -> bool {
        // The shell prints the exit status and lingers so the test can read it.
        let full = format!("{cmd}; echo ORCH-EXITED $?; sleep 600");
        let st = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
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
            ])
            .arg(full)
            .env_remove("TMUX")
            .status()
            .expect("tmux new-session");
        st.success()
    }

    pub fn kill_session(&self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-session", "-t", "main"])
            .status();
    }

    /// Resize the window (the TUI gets SIGWINCH, as from a terminal window being dragged).
    pub fn resize(&self, cols: u16, rows: u16) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "resize-window", "-t", "main", "-x"])
            .arg(cols.to_string())
            .arg("-y")
            .arg(rows.to_string())
            .status()
            .expect("resize-window");
        assert!(st.success());
    }

    /// Resize the window and type `keys` in one tmux command: the SIGWINCH and the keys
    /// reach the program within microseconds of each other.
    pub fn resize_with_keys(&self, cols: u16, rows: u16, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "resize-window", "-t", "main", "-x"])
            .arg(cols.to_string())
            .arg("-y")
            .arg(rows.to_string())
            .args([";", "send-keys", "-t", "main"])
            .args(keys)
            .status()
            .expect("resize-window; send-keys");
        assert!(st.success());
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "main"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "main"])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(st.success());
    }

    pub fn text(&self, text: &str) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "main", "-l", text])
            .status()
            .expect("send-keys");
        assert!(st.success());
    }

    /// Poll the screen until `pred` holds; panic with the last screen at the deadline.
    pub fn wait(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git");
    assert!(st.success(), "git {args:?}");
}

/// A repository with a plan of slow simulated tasks, so there is time to see and quit. Merges
/// need no human (the default veto window would outlast the waits): `.orch/config.toml` says
/// `out-of-the-loop`; a test about the funnel writes its own.
pub fn repo_with_plan(dir: &Path, plan: &str) {
    std::fs::write(dir.join("README.md"), "e2e\n").expect("write");
    std::fs::write(dir.join("plan.toml"), plan).expect("write");
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t.invalid",
            "commit",
            "-q",
            "-m",
            "start",
        ],
    );
    std::fs::create_dir_all(dir.join(".orch")).expect("mkdir");
    std::fs::write(
        dir.join(".orch/config.toml"),
        "[funnel]\nautonomy = \"out-of-the-loop\"\n",
    )
    .expect("write config");
}
