//! Running check commands (`cargo test -q`, ...) in a worktree, each with a timeout, output
//! appended to the attempt's `checks.log`. Checks are command lines written by the user, so they
//! run through `sh -c` (unlike agent commands, which are argument vectors).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub command: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    /// The last lines of its output, for the next attempt's prompt and the inbox.
    pub tail: String,
}

/// Run every check in order in `dir`, stopping at the first failure (its output is what the next
/// attempt needs; later checks would mostly repeat it).
pub fn run_checks(
    dir: &Path,
    checks: &[String],
    timeout: Duration,
    log: &Path,
    env: &[(String, String)],
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for cmd in checks {
        let r = run_one(dir, cmd, timeout, log, env);
        let passed = r.passed;
        results.push(r);
        if !passed {
            break;
        }
    }
    results
}

fn run_one(
    dir: &Path,
    cmd: &str,
    timeout: Duration,
    log: &Path,
    env: &[(String, String)],
) -> CheckResult {
    let start = Instant::now();
    let fail = |why: String| CheckResult {
        command: cmd.to_string(),
        passed: false,
        exit_code: None,
        timed_out: false,
        duration_ms: start.elapsed().as_millis() as u64,
        tail: why,
    };
    if let Some(parent) = log.parent() {
        let _ = crate::os::files::private_dir(parent);
    }
    let Ok(mut file) = crate::os::files::append_private(log) else {
        return fail(format!("cannot open {}", log.display()));
    };
    let offset = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = writeln!(file, "$ {cmd}");
    let (Ok(out), Ok(err)) = (file.try_clone(), file.try_clone()) else {
        return fail("cannot share the log file with the check".into());
    };
    let child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, so a timeout ends everything the check started.
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run `{cmd}`: {e}")),
    };
    let pid = child.id() as i32;
    let (tx, rx) = channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, timed_out) = match rx.recv_timeout(timeout) {
        Ok(s) => (s.ok(), false),
        Err(_) => {
            // SAFETY: signalling a process group we created; no memory involved.
            unsafe {
                libc::killpg(pid, libc::SIGTERM);
            }
            let s = match rx.recv_timeout(Duration::from_secs(2)) {
                Ok(s) => s.ok(),
                Err(_) => {
                    // SAFETY: as above.
                    unsafe {
                        libc::killpg(pid, libc::SIGKILL);
                    }
                    rx.recv().ok().and_then(|s| s.ok())
                }
            };
            (s, true)
        }
    };
    let _ = waiter.join();
    let code = status.and_then(|s| s.code());
    let passed = !timed_out && code == Some(0);
    let _ = writeln!(
        file,
        "[{}: exit {:?}{} in {} ms]",
        if passed { "passed" } else { "FAILED" },
        code,
        if timed_out { ", timed out" } else { "" },
        start.elapsed().as_millis()
    );
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b[offset as usize..]).to_string())
        .unwrap_or_default();
    CheckResult {
        command: cmd.to_string(),
        passed,
        exit_code: code,
        timed_out,
        duration_ms: start.elapsed().as_millis() as u64,
        tail: crate::core::funnel::failure_excerpt(&text, 40),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_fails_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/checks.log");
        let ok = run_checks(
            dir.path(),
            &["echo fine".into()],
            Duration::from_secs(5),
            &log,
            &[],
        );
        assert!(ok[0].passed, "{ok:?}");
        let bad = run_checks(
            dir.path(),
            &["echo broken >&2; exit 4".into(), "echo never".into()],
            Duration::from_secs(5),
            &log,
            &[],
        );
        assert_eq!(bad.len(), 1, "stops at the first failure");
        assert_eq!(bad[0].exit_code, Some(4));
        assert!(bad[0].tail.contains("broken"));
        let slow = run_checks(
            dir.path(),
            &["sleep 30".into()],
            Duration::from_millis(200),
            &log,
            &[],
        );
        assert!(slow[0].timed_out && !slow[0].passed);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("$ echo fine") && text.contains("FAILED"));
    }
}
