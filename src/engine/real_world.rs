//! The real world's agents (PTY processes), checks (`sh -c` in the worktree) and runtime (threads
//! and a channel, the wall clock).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use super::world::{AgentProc, Agents, Checks, Incoming, Job, Launch, Runtime, Sink, Stale};
use crate::agent::pty::{AgentProcess, AgentSignal, SpawnSpec};
use crate::agent::screen::SharedScreen;
use crate::core::supervisor::{CheckOutcome, Exit};

/// Called with the task id whenever an agent printed something (the TUI wakes its renderer).
pub type OutputHook = Arc<dyn Fn(&str) + Send + Sync>;

pub struct PtyAgents {
    pub on_output: Option<OutputHook>,
    pub rows: u16,
    pub cols: u16,
}

struct PtyProc {
    process: AgentProcess,
    /// The readable pane of an agent whose output is JSON (else its own screen is shown).
    pane: Option<SharedScreen>,
}

impl AgentProc for PtyProc {
    fn pid(&self) -> u32 {
        self.process.pid()
    }
    fn write(&self, bytes: Vec<u8>) {
        self.process.write(bytes);
    }
    fn resize(&self, rows: u16, cols: u16) {
        let _ = self.process.resize(rows, cols);
        if let Some(pane) = &self.pane
            && let Ok(mut p) = pane.lock()
        {
            p.screen_mut().set_size(
                crate::agent::screen::nonzero(rows),
                crate::agent::screen::nonzero(cols),
            );
        }
    }
    fn stop(&self, grace: Duration) {
        self.process.stop(grace);
    }
    fn freeze(&self, freeze: bool) {
        self.process.freeze(freeze);
    }
    fn screen(&self) -> Option<SharedScreen> {
        Some(self.pane.clone().unwrap_or_else(|| self.process.screen()))
    }
}

/// Agents whose headless output is a JSON stream get a readable pane.
fn json_output(p: &crate::core::config::AgentProfile) -> bool {
    use crate::core::config::{Adapter, AgentMode};
    p.mode == AgentMode::Headless && matches!(p.adapter, Adapter::Claude | Adapter::Codex)
}

/// What every agent's output is wired to, however it runs: the attempt's parser (through the
/// feed), the readable pane of a JSON agent, the screen watch and the TUI's output hook.
pub(super) struct Wiring {
    pub pane: Option<SharedScreen>,
    pub feed: std::sync::mpsc::Sender<super::feed::FeedMsg>,
    pub nudge: Arc<dyn Fn(super::watch::Nudge) + Send + Sync>,
    pub on_output: Option<OutputHook>,
    watch: Option<(Sink, std::sync::mpsc::Receiver<super::watch::Nudge>)>,
}

pub(super) fn wire(
    l: &Launch,
    sink: Sink,
    on_output: Option<OutputHook>,
    size: (u16, u16),
) -> Wiring {
    let parser = match (&l.resumed_tokens, l.profile.adapter) {
        (Some(earlier), crate::core::config::Adapter::Codex)
            if l.profile.mode == crate::core::config::AgentMode::Headless =>
        {
            crate::agent::adapter::codex::resumed_parser(l.profile.price, *earlier)
        }
        _ => crate::agent::adapter::parser_for(&l.profile),
    };
    let pane = json_output(&l.profile).then(|| {
        Arc::new(std::sync::Mutex::new(crate::agent::screen::new_parser(
            size.0, size.1,
        )))
    });
    let sink_for_watch = sink.clone();
    let feed = super::feed::start(super::feed::Feed {
        attempt: l.attempt,
        task: l.task.clone(),
        parser,
        pane: pane.clone(),
        sink,
        on_output: on_output.clone(),
    });
    // An interactive agent's screen is watched once it exists (after the spawn).
    let watched = !l.screen_rules.is_empty();
    let (nudge_tx, nudge_rx) = std::sync::mpsc::channel::<super::watch::Nudge>();
    let nudges = std::sync::Mutex::new(nudge_tx);
    let nudge = Arc::new(move |n: super::watch::Nudge| {
        if watched && let Ok(tx) = nudges.lock() {
            let _ = tx.send(n);
        }
    });
    Wiring {
        pane,
        feed,
        nudge,
        on_output,
        watch: watched.then_some((sink_for_watch, nudge_rx)),
    }
}

impl Wiring {
    /// Once the agent runs: watch its screen (nudges sent before wait in the queue) and type
    /// its first prompt.
    pub(super) fn after_spawn(
        self,
        screen: SharedScreen,
        writer: Box<dyn Fn(Vec<u8>) + Send>,
        l: Launch,
    ) {
        if let Some((sink, rx)) = self.watch {
            super::watch::start(l.attempt, screen.clone(), l.screen_rules, sink, rx);
        }
        if let Some(text) = l.paste {
            paste_when_ready(screen, writer, text);
        }
    }
}

impl Agents for PtyAgents {
    fn spawn(&self, l: Launch, sink: Sink) -> Result<Box<dyn AgentProc>, String> {
        if let Some(f) = &l.prompt_file {
            f.write()?;
        }
        let task = l.task.clone();
        let wiring = wire(&l, sink, self.on_output.clone(), (self.rows, self.cols));
        let exits = std::sync::Mutex::new(wiring.feed.clone());
        let chunks = std::sync::Mutex::new(wiring.feed.clone());
        let (nudge, on_output) = (wiring.nudge.clone(), wiring.on_output.clone());
        let process = AgentProcess::spawn_tapped(
            SpawnSpec {
                argv: l.argv.clone(),
                cwd: l.cwd.clone().into(),
                env: l.env.clone(),
                rows: self.rows,
                cols: self.cols,
                log_dir: l.log_dir.clone().into(),
                log_rotate_bytes: l.rotate_bytes,
            },
            Box::new(move |signal| match signal {
                // The screen is read by whoever draws it; the parser hears the bytes.
                AgentSignal::Output => {
                    nudge(super::watch::Nudge::Output);
                    if let Some(f) = &on_output {
                        f(&task);
                    }
                }
                // Facts of the terminal stream: the middle layer of detection.
                AgentSignal::Bell | AgentSignal::Notification(_) | AgentSignal::Title(_) => {
                    use crate::core::screen_rules::signals::Signal;
                    nudge(super::watch::Nudge::Signal(match signal {
                        AgentSignal::Notification(t) => Signal::Notification(t),
                        AgentSignal::Title(t) => Signal::Title(t),
                        _ => Signal::Bell,
                    }));
                    if let Some(f) = &on_output {
                        f(&task);
                    }
                }
                // Through the feed, after everything the agent printed.
                AgentSignal::Exited(info) => {
                    nudge(super::watch::Nudge::End);
                    if let Ok(tx) = exits.lock() {
                        let _ = tx.send(super::feed::FeedMsg::Exited(Exit {
                            code: info.code,
                            signal: info.signal,
                        }));
                    }
                }
            }),
            Some(Box::new(move |bytes: &[u8]| {
                if let Ok(tx) = chunks.lock() {
                    let _ = tx.send(super::feed::FeedMsg::Bytes(bytes.to_vec()));
                }
            })),
        )
        .map_err(|e| e.to_string())?;
        let pane = wiring.pane.clone();
        wiring.after_spawn(process.screen(), process.writer(), l);
        Ok(Box::new(PtyProc { process, pane }))
    }

    fn reap_stale(&self, stale: &Stale) {
        reap_stale(stale);
    }
}

/// Stop every process a previous supervisor left (see [`Agents::reap_stale`]).
pub(super) fn reap_stale(stale: &Stale) {
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
        if stale.keep.iter().any(|t| crate::os::has_token(pid, t)) {
            continue;
        }
        crate::os::kill_tree(pid, None, grace);
    }
}

/// Types an interactive agent's first prompt once its screen is up: a bracketed paste (when
/// the agent asked for bracketed paste), then Enter on its own a moment later (Codex swallows
/// an Enter that arrives inside its paste-burst window).
fn paste_when_ready(screen: SharedScreen, writer: Box<dyn Fn(Vec<u8>) + Send>, text: String) {
    let _ = std::thread::Builder::new()
        .name("first-prompt".into())
        .spawn(move || {
            // Up to 30 s for the agent to draw something and go quiet.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let mut last = String::new();
            let mut stable_since = std::time::Instant::now();
            while std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                let now_text = screen
                    .lock()
                    .map(|s| s.screen().contents())
                    .unwrap_or_default();
                if now_text != last {
                    last = now_text;
                    stable_since = std::time::Instant::now();
                } else if !last.trim().is_empty()
                    && stable_since.elapsed() >= Duration::from_millis(700)
                {
                    break;
                }
            }
            let bracketed = screen
                .lock()
                .map(|s| s.screen().bracketed_paste())
                .unwrap_or(false);
            writer(crate::agent::typing::paste_bytes(&text, bracketed));
            std::thread::sleep(Duration::from_millis(300));
            writer(b"\r".to_vec());
        });
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
