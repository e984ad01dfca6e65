//! The real world's agents (PTY processes), checks (`sh -c` in the worktree) and runtime (threads
//! and a channel, the wall clock).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use super::world::{AgentProc, Agents, Checks, Incoming, Job, Launch, Runtime, Sink, Stale};
use crate::agent::pty::{AgentProcess, AgentSignal, SpawnSpec};
use crate::agent::screen::SharedScreen;
use crate::core::supervisor::{CheckOutcome, Event, Exit};

/// Called with the task id whenever an agent printed something (the TUI wakes its renderer).
pub type OutputHook = Arc<dyn Fn(&str) + Send + Sync>;

pub struct PtyAgents {
    pub on_output: Option<OutputHook>,
    pub rows: u16,
    pub cols: u16,
}

struct PtyProc(AgentProcess);

impl AgentProc for PtyProc {
    fn pid(&self) -> u32 {
        self.0.pid()
    }
    fn write(&self, bytes: Vec<u8>) {
        self.0.write(bytes);
    }
    fn resize(&self, rows: u16, cols: u16) {
        let _ = self.0.resize(rows, cols);
    }
    fn stop(&self, grace: Duration) {
        self.0.stop(grace);
    }
    fn freeze(&self, freeze: bool) {
        self.0.freeze(freeze);
    }
    fn screen(&self) -> Option<SharedScreen> {
        Some(self.0.screen())
    }
}

impl Agents for PtyAgents {
    fn spawn(&self, l: Launch, sink: Sink) -> Result<Box<dyn AgentProc>, String> {
        let attempt = l.attempt;
        let task = l.task.clone();
        let on_output = self.on_output.clone();
        let process = AgentProcess::spawn(
            SpawnSpec {
                argv: l.argv,
                cwd: l.cwd.into(),
                env: l.env,
                rows: self.rows,
                cols: self.cols,
                log_dir: l.log_dir.into(),
                log_rotate_bytes: l.rotate_bytes,
            },
            Box::new(move |signal| match signal {
                // Output is read from the screen by whoever draws it; only the exit changes
                // what the supervisor does.
                AgentSignal::Output | AgentSignal::Bell | AgentSignal::Notification(_) => {
                    if let Some(f) = &on_output {
                        f(&task);
                    }
                }
                AgentSignal::Exited(info) => sink(Incoming::Event(Event::Exited {
                    attempt,
                    exit: Exit {
                        code: info.code,
                        signal: info.signal,
                    },
                })),
            }),
        )
        .map_err(|e| e.to_string())?;
        Ok(Box::new(PtyProc(process)))
    }

    fn reap_stale(&self, stale: &Stale) {
        let grace = Duration::from_secs(2);
        // By recorded pid (only while it still carries its attempt's token: pids are reused),
        // with its whole tree and every holder of the token.
        for (pid, token) in &stale.agents {
            let root = pid
                .map(|p| p as i32)
                .filter(|&p| crate::os::has_token(p, token))
                .unwrap_or(0);
            crate::os::kill_tree(root, Some(token), grace);
        }
        // And whatever else of this ledger an earlier epoch started: a pid never recorded (the
        // supervisor died between the spawn and the record), a token whose attempt is closed.
        for pid in crate::os::processes_of_ledger(&stale.ledger, stale.epoch) {
            crate::os::kill_tree(pid, None, grace);
        }
    }
}

pub struct ShellChecks {
    pub timeout: Duration,
}

impl Checks for ShellChecks {
    fn run(&self, dir: &str, commands: &[String], log: &str) -> Vec<CheckOutcome> {
        super::checks::run_checks(
            std::path::Path::new(dir),
            commands,
            self.timeout,
            std::path::Path::new(log),
            &[],
        )
        .into_iter()
        .map(|r| CheckOutcome {
            command: r.command,
            passed: r.passed,
            exit_code: r.exit_code,
            timed_out: r.timed_out,
            duration_ms: r.duration_ms,
            tail: r.tail,
        })
        .collect()
    }
}

/// Jobs on threads, results through one channel; the wall clock.
pub struct ThreadRuntime {
    tx: Sender<Incoming>,
    rx: Receiver<Incoming>,
}

impl ThreadRuntime {
    pub fn new() -> ThreadRuntime {
        let (tx, rx) = channel();
        ThreadRuntime { tx, rx }
    }

    /// Where clients (the TUI, signal handlers, the poke socket) send to the loop.
    pub fn sender(&self) -> Sender<Incoming> {
        self.tx.clone()
    }
}

impl Default for ThreadRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime for ThreadRuntime {
    fn now_ms(&self) -> u64 {
        crate::ledger::now_ms()
    }

    fn sink(&self) -> Sink {
        let tx = std::sync::Mutex::new(self.tx.clone());
        Arc::new(move |i| {
            if let Ok(tx) = tx.lock() {
                let _ = tx.send(i);
            }
        })
    }

    fn spawn(&mut self, job: Job) {
        let tx = self.tx.clone();
        // Kept where both the thread and this function can reach it: if no thread can be had,
        // the job runs here instead of being lost (the supervisor waits for every answer).
        let slot = Arc::new(std::sync::Mutex::new(Some(job)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("job".into())
            .spawn(move || {
                let job = theirs.lock().ok().and_then(|mut j| j.take());
                if let Some(job) = job {
                    let _ = tx.send(job());
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a job thread; running the job on the loop");
            let job = slot.lock().ok().and_then(|mut j| j.take());
            if let Some(job) = job {
                let _ = self.tx.send(job());
            }
        }
    }

    fn next(&mut self, deadline_ms: u64) -> Incoming {
        let wait = deadline_ms.saturating_sub(self.now_ms());
        match self.rx.recv_timeout(Duration::from_millis(wait)) {
            Ok(i) => i,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                Incoming::Timeout
            }
        }
    }

    fn pause(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}
