//! `run --detach` (supervise in the background) and `stop` (end a running supervisor cleanly).
//!
//! The background supervisor is this binary again, `run --headless` in a new session (setsid:
//! no controlling terminal, so no SIGHUP and no job-control signals reach it), stdin from
//! /dev/null, stdout and stderr appended to `.orch/supervisor.log`. It writes its pid to
//! `.orch/supervisor.pid` once it holds the supervisor lock; the starting command returns when
//! it sees that lock held by that pid — the one fact that says "it supervises" (`os::lock`).
//!
//! `stop` asks with SIGTERM, sent to the pid the lock file names, rather than with a command in
//! the ledger: every supervisor already stops its agents cleanly on SIGTERM (a TUI, a headless
//! or a detached one, and older orch-tui versions), it acts at once instead of at its next poll,
//! and it works while the ledger is busy or its disk full. The lock is held for as long as that
//! process lives, so the pid cannot have been reused by another process meanwhile.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{CliError, CliResult, Context, EXIT_OK, EXIT_UNFINISHED};
use crate::os::out;

/// The background supervisor's output, under `.orch/`.
pub const LOG_FILE: &str = "supervisor.log";
/// The background supervisor's pid, under `.orch/` (written once it holds the lock).
pub const PID_FILE: &str = "supervisor.pid";
/// How long `run --detach` waits for the background supervisor to take the lock (a first start
/// creates the integration branch and recovers the ledger first).
const START_WAIT: Duration = Duration::from_secs(60);
/// How often the waits below look again.
const POLL: Duration = Duration::from_millis(50);
/// `stop` waits this long beyond the agents' stop grace for the lock to be released.
const STOP_SLACK: Duration = Duration::from_secs(30);
/// `stop --now` gives a clean stop this long before it kills the supervisor.
const NOW_WAIT: Duration = Duration::from_secs(3);
/// Lines of the log shown when the background supervisor did not start.
const TAIL_LINES: usize = 20;

/// `run --detach`: start `run --headless` in the background and return once it supervises.
pub fn detach(ctx: &Context) -> CliResult {
    let orch = &ctx.paths.orch;
    if let Some(pid) = crate::os::supervisor_running(orch) {
        return Err(CliError::refused(format!(
            "a supervisor (pid {pid}) already runs on this ledger: watch it with `orch-tui` or \
             `orch-tui status`, or end it with `orch-tui stop`"
        )));
    }
    let Some(pid) = start_background(ctx, child_args(std::env::args_os().skip(1)))? else {
        return Ok(EXIT_OK);
    };
    out::say(&format!(
        "supervising in the background: pid {pid} (output in {})",
        orch.join(LOG_FILE).display()
    ));
    out::say("  watch it:  orch-tui            (the TUI; it takes over if the supervisor dies)");
    out::say("             orch-tui status     (or `orch-tui logs TASK --follow`)");
    out::say("  end it:    orch-tui stop       (stops the agents cleanly; `orch-tui run` resumes)");
    Ok(EXIT_OK)
}

/// "Leave it running" from a TUI that supervised (its engine has ended, its agents left running
/// in their holders): a background supervisor, as `run --detach` starts it with the TUI's own
/// flags, adopts them. Says how to come back and how to stop.
pub fn hand_over(ctx: &Context) -> CliResult {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if !args.iter().any(|a| a == "run") {
        // The bare `orch-tui` (with global flags only) is `run`.
        args.push("run".into());
    }
    let Some(pid) = start_background(ctx, child_args(args.into_iter()))? else {
        return Ok(EXIT_OK);
    };
    out::say(&format!(
        "left running: a background supervisor (pid {pid}) took the agents over (output in {})",
        ctx.paths.orch.join(LOG_FILE).display()
    ));
    out::say("  come back:  orch-tui                 (the TUI: live screens, inbox, typing)");
    out::say("              orch-tui attach TASK     (one agent's terminal in yours)");
    out::say(
        "  end it:     orch-tui stop            (stops the agents cleanly; `orch-tui run` resumes)",
    );
    Ok(EXIT_OK)
}

/// Starts `orch-tui ARGS` (a `run --headless --detached`) in its own session with its output
/// in the log, and waits until it holds the supervisor lock: its pid, or `None` when it ended
/// at once with nothing to do (said here).
fn start_background(ctx: &Context, args: Vec<OsString>) -> Result<Option<u32>, CliError> {
    let orch = &ctx.paths.orch;
    crate::os::files::private_dir(orch)
        .map_err(|e| CliError::failed(format!("cannot create {}: {e}", orch.display())))?;
    let log_path = orch.join(LOG_FILE);
    let log = crate::os::files::append_private(&log_path)
        .map_err(|e| CliError::failed(format!("cannot open {}: {e}", log_path.display())))?;
    let start = std::fs::metadata(&log_path).map_or(0, |m| m.len());
    let err = log
        .try_clone()
        .map_err(|e| CliError::failed(format!("cannot open {}: {e}", log_path.display())))?;
    let bin = std::env::current_exe()
        .map_err(|e| CliError::failed(format!("cannot find the orch-tui binary: {e}")))?;
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches nothing of the parent's state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::failed(format!("cannot start the background supervisor: {e}")))?;
    let pid = child.id();
    let deadline = Instant::now() + START_WAIT;
    loop {
        // Locked, and its pid file written (right after the lock, once the engine booted).
        if crate::os::supervisor_running(orch) == Some(pid)
            && std::fs::read_to_string(orch.join(PID_FILE))
                .is_ok_and(|t| t.trim() == pid.to_string())
        {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It ended before it supervised: a refusal, bad input, or a run with nothing to do.
            let code = status.code().unwrap_or(EXIT_UNFINISHED);
            let tail = log_tail(&log_path, start);
            if code == EXIT_OK {
                out::say(&format!(
                    "the background supervisor (pid {pid}) ended at once: nothing was left to do\n{tail}"
                ));
                return Ok(None);
            }
            return Err(CliError {
                code,
                message: format!(
                    "the background supervisor (pid {pid}) exited with {code} before it started \
                     supervising; the end of {}:\n{tail}",
                    log_path.display()
                ),
            });
        }
        if Instant::now() > deadline {
            return Err(CliError::failed(format!(
                "the background supervisor (pid {pid}) did not take the supervisor lock within \
                 {}s; it may still be starting: see {} and `orch-tui status`, or end it with \
                 `orch-tui stop`\n{}",
                START_WAIT.as_secs(),
                log_path.display(),
                log_tail(&log_path, start)
            )));
        }
        std::thread::sleep(POLL);
    }
    Ok(Some(pid))
}

/// This command's arguments for the background supervisor: `--detach` becomes `--headless`
/// plus the hidden `--detached` (which writes the pid file).
fn child_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = args.filter(|a| a != "--detach").collect();
    if !out.iter().any(|a| a == "--headless") {
        out.push("--headless".into());
    }
    out.push("--detached".into());
    out
}

/// The last lines the log gained since `from` (what the background supervisor said).
fn log_tail(path: &Path, from: u64) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(b.get(from as usize..).unwrap_or(&[])).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    if tail.is_empty() {
        "  (it printed nothing)".into()
    } else {
        tail.iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The background supervisor's pid file: written atomically (a reader never sees half a pid),
/// removed when it ends.
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn write(orch: &Path) -> Option<PidFile> {
        let path = orch.join(PID_FILE);
        let tmp = orch.join(format!("{PID_FILE}.{}", std::process::id()));
        let written =
            crate::os::files::write_private(&tmp, format!("{}\n", std::process::id()).as_bytes())
                .and_then(|()| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => Some(PidFile(path)),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(error = %e, "cannot write {}", path.display());
                None
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only ours: a supervisor started after this one ended owns the file now.
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// `stop [--now]`: SIGTERM to the supervisor that holds the lock, then wait until the lock is
/// released. `--now` kills it if a clean stop has not ended it within a few seconds.
pub fn stop(ctx: &Context, now: bool) -> CliResult {
    let orch = &ctx.paths.orch;
    let Some(pid) = holder(orch) else {
        out::say("no supervisor runs on this ledger: nothing to stop");
        return Ok(EXIT_UNFINISHED);
    };
    let grace = ctx.config().map_or(Duration::from_secs(10), |c| {
        Duration::from_millis(c.stop_grace_ms)
    });
    if !signal(pid, libc::SIGTERM) {
        out::say(&format!("the supervisor (pid {pid}) ended meanwhile"));
        return Ok(EXIT_OK);
    }
    out::say(&format!(
        "asked the supervisor (pid {pid}) to stop its agents cleanly (SIGTERM)…"
    ));
    let wait = if now { NOW_WAIT } else { grace + STOP_SLACK };
    if released(orch, pid, wait) {
        out::say(&format!(
            "stopped: the supervisor (pid {pid}) ended and released the ledger; `orch-tui run` \
             (or `orch-tui run --detach`) resumes the run"
        ));
        return Ok(EXIT_OK);
    }
    if !now {
        return Err(CliError::failed(format!(
            "the supervisor (pid {pid}) did not end within {}s; it may still be stopping its \
             agents: see {}, or kill it with `orch-tui stop --now`",
            wait.as_secs(),
            ctx.paths.logs.join("orch-tui.log").display()
        )));
    }
    signal(pid, libc::SIGKILL);
    if released(orch, pid, Duration::from_secs(10)) {
        out::say(&format!(
            "killed the supervisor (pid {pid}): its agents lost their terminals and end with \
             them; `orch-tui run` recovers their attempts"
        ));
        Ok(EXIT_OK)
    } else {
        Err(CliError::failed(format!(
            "the supervisor (pid {pid}) still holds the ledger after SIGKILL; see `ps -p {pid}`"
        )))
    }
}

/// The pid holding the lock; a supervisor that has not written its pid yet gets a moment.
fn holder(orch: &Path) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match crate::os::supervisor_running(orch) {
            Some(0) if Instant::now() < deadline => std::thread::sleep(POLL),
            Some(0) | None => return None,
            Some(pid) => return Some(pid),
        }
    }
}

/// Send `sig`; false when the process is gone.
fn signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with a positive pid and a valid signal number.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Wait until `pid` no longer holds the lock (released, or held by a newer supervisor).
fn released(orch: &Path, pid: u32, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while crate::os::supervisor_running(orch) == Some(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_runs_headless_and_writes_its_pid() {
        let args = ["--repo", "/r", "run", "--detach", "--slots", "2"].map(OsString::from);
        let got = child_args(args.into_iter());
        let want = [
            "--repo",
            "/r",
            "run",
            "--slots",
            "2",
            "--headless",
            "--detached",
        ]
        .map(OsString::from);
        assert_eq!(got, want);
    }

    #[test]
    fn the_pid_file_is_ours_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = PidFile::write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        assert_eq!(
            crate::os::files::mode_of(&dir.path().join(PID_FILE)).unwrap(),
            0o600
        );
        drop(f);
        assert!(!dir.path().join(PID_FILE).exists());
    }
}
