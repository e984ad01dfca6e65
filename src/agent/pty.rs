//! One agent process in a pseudo-terminal (DESIGN §6, research/pty.md §1).
//!
//! portable-pty's Unix traps and what this module does about each:
//! - a cwd that is not a directory silently becomes `$HOME` -> checked before spawning;
//! - a failed exec is reported as a successful spawn -> the program is resolved first;
//! - keeping the slave open means EOF never comes -> dropped right after spawn;
//! - dropping the writer types Enter + Ctrl-D -> the writer thread keeps it until EOF;
//! - `Child::kill()` signals only the direct child -> the whole tree (`os::kill_tree`: group,
//!   descendants that called `setsid`, every process carrying the attempt's token, its cgroup):
//!   TERM, grace, KILL.
//! - a frozen agent (SIGSTOP, a paused task) keeps a SIGTERM pending -> stopping sends SIGCONT
//!   after SIGTERM; and `waitpid` without `WUNTRACED` does not return for a stopped child, so a
//!   frozen agent is never taken for an exited one.
//! - a supervisor that dies closes the master: the kernel hangs the terminal up, SIGHUP and
//!   SIGCONT to the session leader (a frozen agent runs again, and usually dies of the SIGHUP),
//!   while a frozen child in its group stays stopped -> the next start reaps both
//!   (`os::kill_tree` sends SIGCONT after SIGTERM).
//!
//! Threads per agent: a reader (raw log, emulator, query replies), a waiter (reaps the child,
//! reports exit once the output is complete) and a writer (so a large paste never blocks):
//! `threads.rs`. Resolving the program before the spawn: `program.rs`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};

mod program;
mod threads;

pub use program::find_program;
use program::resolve_program;
use threads::{reader_loop, waiter_loop, writer_loop};

use super::record::text::now_ms;
use super::record::{RecordSpec, Recorder};
use super::screen::{SharedScreen, new_parser, nonzero};

/// Raw PTY bytes, written before parsing: the lossless, replayable record.
pub const RAW_LOG: &str = super::record::RAW_LOG;
/// What the agent printed, as stamped lines, plus snapshots of what the human saw.
pub const SCREEN_LOG: &str = super::record::TEXT_LOG;
/// The session as asciicast v2.
pub const CAST_LOG: &str = super::record::CAST_LOG;
/// How long exit waits for the reader's EOF, so logs are complete without hanging on a
/// grandchild that still holds the terminal.
pub const EOF_GRACE: Duration = Duration::from_millis(500);
const READ_CHUNK: usize = 64 * 1024;
/// A PTY hands over at most ~4 KiB per `read`; while more is already waiting, the reader keeps
/// reading into the same buffer before it logs and parses, so a flooding agent costs one lock,
/// one emulator pass and one write per log file per batch instead of per 4 KiB.
const BATCH_ROOM: usize = 4096;

/// portable-pty allocates in `pre_exec` after fork; one spawn at a time keeps that away from
/// other threads' allocator locks as far as we can (research/pty.md §1.4).
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// How to start one agent.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// Program and arguments, never through a shell.
    pub argv: Vec<String>,
    /// Must exist and be a directory.
    pub cwd: PathBuf,
    /// Added on top of the cleaned environment (see [`AgentProcess::spawn`]).
    pub env: Vec<(String, String)>,
    pub rows: u16,
    pub cols: u16,
    /// Created if missing; holds [`RAW_LOG`], [`CAST_LOG`] and [`SCREEN_LOG`].
    pub log_dir: PathBuf,
    /// Each log rotates when it reaches this size (0: never), keeping 3 generations.
    pub log_rotate_bytes: u64,
}

/// What an agent reports to the engine, from its own threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSignal {
    /// New bytes were read and applied to the screen (one per read; the engine coalesces).
    Output,
    Bell,
    /// OSC 9 or OSC 777 notification text.
    Notification(String),
    /// The agent set a new window title.
    Title(String),
    /// The agent exited and its logs are complete. Sent once, last.
    Exited(ExitInfo),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i32>,
}

/// The agent could not be started; nothing is left running. The text says what and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnError(pub String);

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpawnError {}

/// Called from the agent's threads; must be cheap and must not block (the engine coalesces).
pub type Notify = Box<dyn Fn(AgentSignal) + Send + Sync>;

/// Hears every chunk of output, in order, from the reader thread after it reached the logs and
/// the screen, while the screen is still locked: whoever locks the screen sees exactly the
/// chunks tapped so far (a holder's snapshot plus its stream after it). Must not block and must
/// not lock the screen: copy and queue.
pub type Tap = Box<dyn Fn(&[u8]) + Send + Sync>;

enum WriterMsg {
    Bytes(Vec<u8>),
    /// Every slave fd is closed: dropping the writer can no longer type into anyone.
    Close,
}

#[derive(Default)]
struct Life {
    eof: bool,
    /// The waiter has reaped the child: from now on its pid may name another process.
    reaped: bool,
    exit: Option<ExitInfo>,
}

struct Logs {
    rec: Recorder,
    /// The final screen is in the text log: nothing more is written there.
    finalized: bool,
}

struct Shared {
    pid: i32,
    /// The agent as `/proc` saw it at spawn (pid + start time): names it even if the pid is
    /// reused later.
    root: Option<crate::os::ProcStat>,
    /// `ORCH_TOKEN` from the spawn environment, which every descendant inherits.
    token: Option<String>,
    /// Its own cgroup v2, when ours is delegated (see `os::reap::agent_cgroup`).
    cgroup: Option<PathBuf>,
    /// The PTY master, for `poll` while the text log waits for a quiet moment.
    master_fd: Option<i32>,
    screen: SharedScreen,
    logs: Mutex<Logs>,
    life: Mutex<Life>,
    changed: Condvar,
    master: Mutex<Box<dyn MasterPty + Send>>,
    writer_tx: Sender<WriterMsg>,
    notify: Notify,
    tap: Option<Tap>,
}

/// A running (or finished) agent. Dropping it does not stop the process: call [`Self::stop`].
pub struct AgentProcess {
    shared: Arc<Shared>,
}

/// Locks, recovering from a poisoned mutex: a panicked reader must not take the UI down too.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn err(msg: String) -> SpawnError {
    SpawnError(msg)
}

impl AgentProcess {
    /// Starts `spec.argv` in a new PTY and session.
    ///
    /// The environment is this process's, minus `TMUX`, `COLUMNS`, `LINES` (stale size and
    /// multiplexer hints) and inherited `ORCH_*` (another attempt's token must not leak), plus
    /// `TERM=xterm-256color`, `COLORTERM=truecolor`, then `spec.env`.
    ///
    /// The program is resolved first (PATH search, exists, executable bit, and for `#!` scripts
    /// that the interpreter exists) so an exec failure is a `SpawnError` rather than a spawn that
    /// "succeeds" and then aborts (research/pty.md §1.4).
    pub fn spawn(spec: SpawnSpec, notify: Notify) -> Result<AgentProcess, SpawnError> {
        Self::spawn_tapped(spec, notify, None)
    }

    /// [`Self::spawn`], with every chunk of output also handed to `tap`.
    pub fn spawn_tapped(
        spec: SpawnSpec,
        notify: Notify,
        tap: Option<Tap>,
    ) -> Result<AgentProcess, SpawnError> {
        let Some(argv0) = spec.argv.first() else {
            return Err(err(
                "agent command is empty; give at least a program name".into()
            ));
        };
        if !spec.cwd.is_dir() {
            return Err(err(format!(
                "agent working directory {} does not exist or is not a directory; create it (or fix the worktree path) before starting the agent",
                spec.cwd.display()
            )));
        }
        let path_var = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| OsString::from(v))
            .or_else(|| std::env::var_os("PATH"));
        let program = resolve_program(argv0, &spec.cwd, path_var.as_deref(), true)?;

        crate::os::files::private_dir(&spec.log_dir).map_err(|e| {
            err(format!(
                "cannot create agent log directory {}: {e}; check permissions and free space",
                spec.log_dir.display()
            ))
        })?;
        let program_name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rec = Recorder::open(&RecordSpec {
            dir: spec.log_dir.clone(),
            rotate_bytes: spec.log_rotate_bytes,
            rows: spec.rows.max(1),
            cols: spec.cols.max(1),
            // The program's name only: its arguments may hold the prompt.
            title: program_name,
        })
        .map_err(|e| err(e.to_string()))?;
        let logs = Logs {
            rec,
            finalized: false,
        };

        let size = PtySize {
            rows: spec.rows.max(1),
            cols: spec.cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        };
        let pty_err = |what: &str, e: String| {
            err(format!(
                "cannot {what} for agent `{argv0}`: {e}; check the PTY limit (/proc/sys/kernel/pty/max) and open-file limit"
            ))
        };
        let pair = native_pty_system()
            .openpty(size)
            .map_err(|e| pty_err("open a pseudo-terminal", e.to_string()))?;
        // Both before spawning, so a failure here leaves nothing running.
        let reader = pair
            .master
            .try_clone_reader()
            .map_err(|e| pty_err("clone the PTY reader", e.to_string()))?;
        let writer = pair
            .master
            .take_writer()
            .map_err(|e| pty_err("take the PTY writer", e.to_string()))?;

        let mut cmd = CommandBuilder::new(program.as_os_str());
        cmd.args(&spec.argv[1..]);
        cmd.cwd(spec.cwd.as_os_str());
        for (key, _) in std::env::vars_os() {
            if key.as_bytes().starts_with(b"ORCH_") {
                cmd.env_remove(&key);
            }
        }
        for key in ["TMUX", "TMUX_PANE", "COLUMNS", "LINES"] {
            cmd.env_remove(key);
        }
        cmd.env("TERM", "xterm-256color");
        cmd.env("COLORTERM", "truecolor");
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }

        let (child, pid) = {
            let _one_at_a_time = lock(&SPAWN_LOCK);
            // The agent gets a session of its own: registered before the lock drops, so the
            // orphan reaper never takes its exit status from our waiter (os::reap).
            let registry = crate::os::reap::before_spawn_in_new_session();
            let child = pair.slave.spawn_command(cmd).map_err(|e| {
                err(format!(
                    "cannot start agent `{argv0}` in {}: {e}",
                    spec.cwd.display()
                ))
            })?;
            let pid = match child.process_id().and_then(|p| i32::try_from(p).ok()) {
                Some(p) if p > 1 => p,
                _ => {
                    return Err(err(format!(
                        "agent `{argv0}` started but has no process id; report this as a bug"
                    )));
                }
            };
            registry.own(pid);
            (child, pid)
        };
        // The slave must go now, or the reader never sees EOF (research/pty.md §1.2 row 2).
        drop(pair.slave);
        // Not reaped before the waiter starts, so this is the agent (or its zombie).
        let root = crate::os::process(pid);
        // Made now, joined by the waiter thread before it reaps (`os::reap::new_agent_cgroup`):
        // the spawn does not wait for the kernel's move.
        let cgroup = crate::os::reap::new_agent_cgroup(pid);
        let token = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == crate::os::TOKEN_VAR)
            .map(|(_, v)| v.clone());

        let (writer_tx, writer_rx) = mpsc::channel();
        let master_fd = pair.master.as_raw_fd();
        let shared = Arc::new(Shared {
            pid,
            root,
            token,
            cgroup,
            master_fd,
            screen: Arc::new(Mutex::new(new_parser(size.rows, size.cols))),
            logs: Mutex::new(logs),
            life: Mutex::new(Life::default()),
            changed: Condvar::new(),
            master: Mutex::new(pair.master),
            writer_tx,
            notify,
            tap,
        });
        let spawn_thread = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(f)
        };
        let started = spawn_thread(
            format!("agent-{pid}-writer"),
            Box::new(move || writer_loop(writer, writer_rx)),
        )
        .and_then(|_| {
            let s = Arc::clone(&shared);
            spawn_thread(
                format!("agent-{pid}-reader"),
                Box::new(move || reader_loop(&s, reader)),
            )
        })
        .and_then(|_| {
            let s = Arc::clone(&shared);
            spawn_thread(
                format!("agent-{pid}-waiter"),
                Box::new(move || waiter_loop(&s, child)),
            )
        });
        if let Err(e) = started {
            // Without its threads nobody would reap or read the agent: take it down now.
            crate::os::kill_process_group(pid, Duration::ZERO);
            return Err(err(format!(
                "cannot start threads for agent `{argv0}`: {e}; the system is out of threads or memory"
            )));
        }
        Ok(AgentProcess { shared })
    }

    /// Process id, which is also the process-group and session id (portable-pty calls setsid).
    pub fn pid(&self) -> u32 {
        self.shared.pid as u32
    }

    /// Queues bytes for the agent; never blocks, even if the agent does not read. The session
    /// recording gets a marker (not the bytes: they may be a secret).
    pub fn write(&self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            lock(&self.shared.logs).rec.input(now_ms(), bytes.len());
            let _ = self.shared.writer_tx.send(WriterMsg::Bytes(bytes));
        }
    }

    /// Queues input from another thread (the same as [`Self::write`]).
    pub fn writer(&self) -> Box<dyn Fn(Vec<u8>) + Send> {
        let shared = Arc::clone(&self.shared);
        Box::new(move |bytes| {
            if !bytes.is_empty() {
                lock(&shared.logs).rec.input(now_ms(), bytes.len());
                let _ = shared.writer_tx.send(WriterMsg::Bytes(bytes));
            }
        })
    }

    /// Resizes the PTY (the kernel sends SIGWINCH) and the emulated screen under one lock, so
    /// no output is parsed at a size the agent did not draw for.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), String> {
        let (rows, cols) = (rows.max(1), cols.max(1));
        let mut logs = lock(&self.shared.logs);
        let mut screen = lock(&self.shared.screen);
        if screen.screen().size() == (nonzero(rows), nonzero(cols)) {
            return Ok(());
        }
        let size = PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        };
        lock(&self.shared.master).resize(size).map_err(|e| {
            format!("cannot resize the terminal of agent pid {} to {rows}x{cols}: {e}; the agent may have exited", self.shared.pid)
        })?;
        screen.set_size(nonzero(rows), nonzero(cols));
        // Rows a smaller screen pushed off the top are final.
        let lines = screen.callbacks_mut().take_lines();
        drop(screen);
        logs.rec.resize(now_ms(), rows, cols);
        if !logs.finalized {
            logs.rec.lines(&lines);
        }
        Ok(())
    }

    /// The emulator; lock it to read cells, modes and `callbacks().is_render_locked(now)`.
    pub fn screen(&self) -> SharedScreen {
        Arc::clone(&self.shared.screen)
    }

    /// Stops the agent and everything it started (`os::kill_tree`): SIGTERM, up to `grace`
    /// for them to go, then SIGKILL. Returns at once; the work happens on a thread. Watch for
    /// `Exited` or use `wait_exit`.
    pub fn stop(&self, grace: Duration) {
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("agent-{}-stop", shared.pid))
            .spawn(move || stop_tree(&shared, grace));
        if let Err(e) = spawned {
            tracing::error!(pid = self.shared.pid, error = %e, "no thread to stop agent; killing it at once");
            if !lock(&self.shared.life).reaped {
                crate::os::kill::signal_group(self.shared.pid, libc::SIGKILL);
            }
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the agent and everything it started
    /// (`os::freeze_tree`), for a paused task. The PTY, the screen and the logs stay as they
    /// are; nothing is reported (a stopped child is not an exit). Not after it was reaped: its
    /// pid may belong to another process by then.
    pub fn freeze(&self, freeze: bool) {
        let life = lock(&self.shared.life);
        if !life.reaped {
            crate::os::freeze_tree(self.shared.pid, freeze);
        }
    }

    /// True once every holder of the terminal has closed it (reader EOF). Exit can be reported
    /// without it, after [`EOF_GRACE`], when a descendant still holds the terminal.
    pub fn output_ended(&self) -> bool {
        lock(&self.shared.life).eof
    }

    /// How the agent exited, once it has and its logs are complete.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        lock(&self.shared.life).exit
    }

    /// Waits up to `timeout` for [`Self::exit_info`].
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitInfo> {
        wait_for(&self.shared, timeout, |l| l.exit.is_some()).exit
    }
}

fn wait_for(
    shared: &Shared,
    timeout: Duration,
    done: impl Fn(&Life) -> bool,
) -> MutexGuard<'_, Life> {
    let deadline = Instant::now() + timeout;
    let mut life = lock(&shared.life);
    while !done(&life) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        life = shared
            .changed
            .wait_timeout(life, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    life
}

fn stop_tree(shared: &Shared, grace: Duration) {
    // Once reaped, the root's pid may be someone else's: then only the token and the cgroup
    // still name what is left of the agent (a `setsid` grandchild that outlived it).
    let root = if lock(&shared.life).reaped {
        None
    } else {
        shared.root
    };
    let tree = crate::os::Tree {
        root,
        token: shared.token.as_deref(),
        cgroup: shared.cgroup.as_deref(),
    };
    let report = crate::os::stop_tree(&tree, grace);
    if !report.survivors.is_empty() {
        tracing::warn!(pid = shared.pid, survivors = ?report.survivors, "agent processes survived SIGKILL");
    }
    if let Some(cg) = &shared.cgroup {
        crate::os::reap::remove_agent_cgroup(cg);
    }
}

#[cfg(test)]
mod tests {
    use super::threads::decode_status;
    use super::*;

    #[test]
    fn decode_exit_and_signal() {
        assert_eq!(
            decode_status(3 << 8),
            ExitInfo {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(
            decode_status(libc::SIGKILL),
            ExitInfo {
                code: None,
                signal: Some(libc::SIGKILL)
            }
        );
    }

    #[test]
    fn resolves_through_path_and_refuses_bad_programs() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::env::var_os("PATH");
        let sh = resolve_program("sh", dir.path(), path.as_deref(), true).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"));
        assert!(resolve_program("no-such-program-xyz", dir.path(), path.as_deref(), true).is_err());
        assert!(resolve_program("sh", dir.path(), Some("".as_ref()), true).is_err());
        let env_script = dir.path().join("s");
        std::fs::write(&env_script, "#!/usr/bin/env no-such-interp-xyz\n").unwrap();
        // Not `chmod +x`: that honours the umask, which another test in this process may
        // have narrowed for a moment (`os::detach::bind_private`).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&env_script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = resolve_program("./s", dir.path(), path.as_deref(), true).unwrap_err();
        assert!(e.0.contains("no-such-interp-xyz"), "{e}");
    }
}
