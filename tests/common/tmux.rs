//! The real binary in tmux: a private tmux server per test (its socket named after the process
//! and the test), killed on drop, so nothing leaks into other tests or the user's tmux. Waits
//! poll the screen against a deadline.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// `cmd` (a shell line) in a `cols`×`rows` window; None when tmux is not installed.
    pub fn start(name: &str, cmd: &str, cols: u16, rows: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("tmux is not installed: skipping");
            return None;
        }
        let t = Tmux {
            socket: format!("orch-t-{}-{name}", std::process::id()),
        };
        // The shell prints the exit status and lingers so the test can read it.
        let full = format!("{cmd}; echo ORCH-EXITED $?; sleep 600");
        let st = Command::new("tmux")
            .args(["-L", &t.socket, "-f", "/dev/null", "new-session", "-d"])
            .args([
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
                "-s",
                "main",
            ])
            .arg(full)
            .env_remove("TMUX")
            .status()
            .expect("tmux new-session");
        assert!(st.success());
        Some(t)
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

    /// Polls the screen until `pred` holds; panics with the last screen at the deadline.
    pub fn wait(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
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
