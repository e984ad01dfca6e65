//! Running git as a subprocess (DESIGN §5): argument vectors, never a shell; no prompts; C locale
//! so messages are stable; stderr kept for the error.

use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A git command that failed (or could not be started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitError {
    /// The arguments after `git`, lossily converted for display.
    pub args: Vec<String>,
    /// The exit code; `None` when git was killed by a signal or could not be started.
    pub code: Option<i32>,
    /// What git wrote on stderr (or our own explanation when the failure is ours).
    pub stderr: String,
}

impl GitError {
    /// An error raised by this module itself (bad output, refused operation), not by git's exit
    /// code; it still names the command it was about so the message says where it happened.
    pub(crate) fn ours(args: &[&str], msg: impl Into<String>) -> GitError {
        GitError {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: None,
            stderr: msg.into(),
        }
    }
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
}

impl Git {
    pub(crate) fn new(cwd: &Path) -> Git {
        let mut cmd = Command::new("git");
        cmd.current_dir(cwd)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in SCRUBBED_ENV {
            cmd.env_remove(k);
        }
        Git {
            cmd,
            shown: Vec::new(),
            input: None,
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

    pub(crate) fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Git {
        self.cmd.env(k, v);
        self
    }

    pub(crate) fn stdin(mut self, bytes: &[u8]) -> Git {
        self.input = Some(bytes.to_vec());
        self
    }

    fn error(&self, code: Option<i32>, stderr: String) -> GitError {
        GitError {
            args: self.shown.clone(),
            code,
            stderr,
        }
    }

    /// Runs to completion and returns the raw output whatever the exit code; only a failure to
    /// start (or a signal) is an error. Callers that give exit codes a meaning use this.
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
        // Written (and closed) before reading output: the commands we feed (commit, commit-tree)
        // read all of stdin before writing anything, so this cannot deadlock on full pipes.
        if let Some(bytes) = self.input.take()
            && let Some(mut w) = child.stdin.take()
            && let Err(e) = w.write_all(&bytes)
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(self.error(None, format!("cannot write to git: {e}")));
        }
        let out = match child.wait_with_output() {
            Ok(o) => o,
            Err(e) => return Err(self.error(None, format!("cannot wait for git: {e}"))),
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
            Err(GitError {
                args: shown,
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
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
            code => Err(GitError {
                args: shown,
                code,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
        }
    }
}

/// Splits NUL-separated output (`-z`), dropping the empty piece after the last terminator.
static WORKTREE_ADMIN: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn split_nul(bytes: &[u8]) -> Vec<String> {
    let body = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}
