//! Running git as a subprocess (DESIGN §5): argument vectors, never a shell; no prompts; C locale
//! so messages are stable; stderr kept for the error; a deadline on every call (`process.rs`).

use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use super::process::{Waited, wait_with_deadline};
use crate::core::duration::format_duration;

/// What a finished git call produced (its exit code may still say it failed).
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A git command that failed (or could not be started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitError {
    /// The arguments after `git`, lossily converted for display.
    pub args: Vec<String>,
    /// The exit code; `None` when git was killed by a signal or could not be started.
    pub code: Option<i32>,
    /// What git wrote on stderr (or our own explanation when the failure is ours).
    pub stderr: String,
    /// Set when git ran past its deadline and was stopped (with every process it started): the
    /// deadline it had. A hook that hangs is the usual cause; the engine escalates these.
    pub timed_out: Option<Duration>,
}

impl GitError {
    /// An error raised by this module itself (bad output, refused operation), not by git's exit
    /// code; it still names the command it was about so the message says where it happened.
    pub(crate) fn ours(args: &[&str], msg: impl Into<String>) -> GitError {
        GitError::exit(args.iter().map(|s| s.to_string()).collect(), None, msg)
    }

    /// git ran and failed with `code` (None: no code, e.g. killed by a signal).
    pub(crate) fn exit(
        args: Vec<String>,
        code: Option<i32>,
        stderr: impl Into<String>,
    ) -> GitError {
        GitError {
            args,
            code,
            stderr: stderr.into(),
            timed_out: None,
        }
    }

    /// True when git was stopped because it ran past its deadline.
    pub fn is_timeout(&self) -> bool {
        self.timed_out.is_some()
    }
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(limit) = self.timed_out {
            let said = self.stderr.trim_end();
            return write!(
                f,
                "git {} timed out after {} and was stopped, with every process it started; \
                 a hook (pre-commit, commit-msg, post-checkout, ...) may hang: check the \
                 repository's hooks, or raise `[git] timeout` in .orch/config.toml if this \
                 command needs longer{}",
                self.args.join(" "),
                format_duration(limit.as_millis() as u64),
                if said.is_empty() {
                    String::new()
                } else {
                    format!(" (it said: {said})")
                }
            );
        }
        let code = match self.code {
            Some(c) => format!("exit {c}"),
            None => "no exit code".to_string(),
        };
        write!(
            f,
            "git {} failed ({code}): {}",
            self.args.join(" "),
            self.stderr.trim_end()
        )
    }
}

impl std::error::Error for GitError {}

/// Environment variables that would redirect git away from the repository we name with the
/// working directory (they leak in when orch-tui is itself started from a git hook).
const SCRUBBED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
];

/// One git invocation being built.
pub(crate) struct Git {
    cmd: Command,
    shown: Vec<String>,
    input: Option<Vec<u8>>,
    timeout: Duration,
}

impl Git {
    /// git in `cwd`, stopped (with its hooks) if it runs longer than `timeout`.
    pub(crate) fn new(cwd: &Path, timeout: Duration) -> Git {
        let mut cmd = Command::new("git");
        cmd.current_dir(cwd)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a hung hook can be stopped together with git.
            .process_group(0);
        for k in SCRUBBED_ENV {
            cmd.env_remove(k);
        }
        Git {
            cmd,
            shown: Vec::new(),
            input: None,
            timeout,
        }
    }

    pub(crate) fn arg(mut self, a: impl AsRef<OsStr>) -> Git {
        self.shown.push(a.as_ref().to_string_lossy().into_owned());
        self.cmd.arg(a);
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Git
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// `-c key=value` for this call (before the subcommand), left out of the command line shown
    /// in errors so they name the command itself (`git commit ... failed`).
    pub(crate) fn config(mut self, key: &str, value: &str) -> Git {
        self.cmd.arg("-c").arg(format!("{key}={value}"));
        self
    }

    pub(crate) fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Git {
        self.cmd.env(k, v);
        self
    }

    pub(crate) fn stdin(mut self, bytes: &[u8]) -> Git {
        self.input = Some(bytes.to_vec());
        self
    }

    fn error(&self, code: Option<i32>, stderr: String) -> GitError {
        GitError::exit(self.shown.clone(), code, stderr)
    }

    /// Runs to completion and returns the raw output whatever the exit code; only a failure to
    /// start, a signal or the deadline is an error. Callers that give exit codes a meaning use
    /// this.
    pub(crate) fn output(mut self) -> Result<Output, GitError> {
        if self.input.is_some() {
            self.cmd.stdin(Stdio::piped());
        }
        tracing::trace!(args = ?self.shown, "git");
        // `git worktree add/remove/list/prune` are not safe against each other: one reads
        // `.git/worktrees/*/commondir` while another is half-way through writing or deleting
        // it ("failed to read .../commondir", seen under load). Serialize them in-process; the
        // supervisor lock already makes this the only process managing these worktrees.
        let _admin = (self.shown.first().map(String::as_str) == Some("worktree"))
            .then(|| WORKTREE_ADMIN.lock().unwrap_or_else(|e| e.into_inner()));
        let mut child = match self.cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Err(self.error(None, format!("cannot start git: {e}"))),
        };
        // Written from a thread of its own: a command blocked before reading stdin (a commit
        // whose pre-commit hook hangs) must not block us past the deadline. The write ends by
        // itself when git exits or is stopped (the pipe closes).
        if let Some(bytes) = self.input.take()
            && let Some(mut w) = child.stdin.take()
        {
            let spawned = std::thread::Builder::new()
                .name("git-stdin".into())
                .spawn(move || {
                    let _ = w.write_all(&bytes);
                });
            if let Err(e) = spawned {
                let _ = child.kill();
                let _ = child.wait();
                return Err(self.error(None, format!("cannot write to git: {e}")));
            }
        }
        let waited = match wait_with_deadline(&mut child, self.timeout) {
            Ok(w) => w,
            Err(e) => return Err(self.error(None, format!("cannot wait for git: {e}"))),
        };
        let out = match waited {
            Waited::Exited {
                status,
                stdout,
                stderr,
            } => Output {
                status,
                stdout,
                stderr,
            },
            Waited::TimedOut { stderr } => {
                tracing::warn!(args = ?self.shown, timeout = ?self.timeout, "git: timed out");
                let mut e = self.error(None, String::from_utf8_lossy(&stderr).into_owned());
                e.timed_out = Some(self.timeout);
                return Err(e);
            }
        };
        if out.status.code().is_none() {
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            return Err(self.error(None, format!("killed by a signal; {stderr}")));
        }
        Ok(out)
    }

    /// Runs and requires exit 0; returns stdout.
    pub(crate) fn run_bytes(self) -> Result<Vec<u8>, GitError> {
        let shown = self.shown.clone();
        let out = self.output()?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            Err(GitError::exit(shown, out.status.code(), stderr))
        }
    }

    /// Runs, requires exit 0, returns stdout with the trailing newline removed.
    pub(crate) fn run(self) -> Result<String, GitError> {
        let bytes = self.run_bytes()?;
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        while s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    /// Runs a command whose exit code answers yes (0) or no (1); anything else is an error.
    pub(crate) fn yes_no(self) -> Result<bool, GitError> {
        let shown = self.shown.clone();
        let out = self.output()?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            code => Err(GitError::exit(
                shown,
                code,
                String::from_utf8_lossy(&out.stderr),
            )),
        }
    }
}

static WORKTREE_ADMIN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held while this process changes worktree bookkeeping by hand (`pool::by_hand`), as every
/// `git worktree` command here holds it.
pub(crate) fn worktree_admin_lock() -> std::sync::MutexGuard<'static, ()> {
    WORKTREE_ADMIN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Splits NUL-separated output (`-z`), dropping the empty piece after the last terminator.
pub(crate) fn split_nul(bytes: &[u8]) -> Vec<String> {
    let body = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}
