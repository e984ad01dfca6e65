//! Agents started through holders (`agent::holder`): each agent lives in an `orch-tui __hold`
//! process of its own session, so it outlives this supervisor; this side is a client that
//! mirrors the agent's screen from the holder's stream, so the TUI, the parsers and the screen
//! watch see the same bytes as with an in-process PTY (`real_world::PtyAgents`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::feed::FeedMsg;
use super::holder_start::Spares;
use super::real_world::OutputHook;
use super::world::{AgentProc, Agents, Launch, Sink, Spawned, Stale};
use crate::agent::holder::client::{self, Conn, Opening, Sender};
use crate::agent::holder::proto::Frame;
use crate::agent::holder::{self as holder, HoldSpec};
use crate::agent::screen::{SharedScreen, new_parser, nonzero};
use crate::core::domain::AttemptId;
use crate::core::screen_rules::signals::Signal;
use crate::core::supervisor::{Exit, HolderFact};

pub struct HolderAgents {
    pub on_output: Option<OutputHook>,
    pub rows: u16,
    pub cols: u16,
    /// The orch-tui binary (it runs `__hold`).
    pub orch_bin: PathBuf,
    /// `.orch/holders/`.
    pub dir: PathBuf,
    /// A holder started ahead of the next dispatch.
    pub spares: Spares,
}

struct HolderProc {
    pid: u32,
    sender: Sender,
    screen: SharedScreen,
    pane: Option<SharedScreen>,
    token: Option<String>,
}

impl HolderProc {
    /// The holder cannot be told: stop the agent's tree from here.
    fn kill_here(&self, grace: Duration) {
        if let Some(t) = &self.token {
            let root = Some(self.pid as i32)
                .filter(|&p| crate::os::has_token(p, t))
                .unwrap_or(0);
            crate::os::kill_tree(root, Some(t), grace);
        }
    }
}

impl AgentProc for HolderProc {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn write(&self, bytes: Vec<u8>) {
        let _ = self.sender.send(&Frame::Input(bytes));
    }
    fn resize(&self, rows: u16, cols: u16) {
        let _ = self.sender.send(&Frame::Resize { rows, cols });
        for s in std::iter::once(&self.screen).chain(self.pane.as_ref()) {
            if let Ok(mut p) = s.lock() {
                p.screen_mut().set_size(nonzero(rows), nonzero(cols));
            }
        }
    }
    fn stop(&self, grace: Duration) {
        let grace_ms = grace.as_millis() as u64;
        if self.sender.send(&Frame::Stop { grace_ms }).is_err() {
            self.kill_here(grace);
        }
    }
    fn freeze(&self, freeze: bool) {
        let _ = self.sender.send(&Frame::Freeze(freeze));
    }
    fn screen(&self) -> Option<SharedScreen> {
        Some(self.pane.clone().unwrap_or_else(|| self.screen.clone()))
    }
}

pub use super::holder_start::start_holder;

impl Agents for HolderAgents {
    fn spawn(&self, l: Launch, sink: Sink) -> Result<Box<dyn AgentProc>, String> {
        let spec = HoldSpec {
            attempt: l.attempt.0,
            task: l.task.clone(),
            argv: l.argv.clone(),
            cwd: l.cwd.clone().into(),
            env: l.env.clone(),
            log_dir: l.log_dir.clone().into(),
            rotate_bytes: l.rotate_bytes,
            rows: self.rows,
            cols: self.cols,
            dir: self.dir.clone(),
            branches_before: l.branches_before.clone(),
            first_client_ms: None,
            prompt_file: l.prompt_file.clone(),
        };
        let t0 = std::time::Instant::now();
        let (ready, spare) = self.spares.start(&self.orch_bin, &spec)?;
        let t1 = std::time::Instant::now();
        let sock = holder::socket_path(&self.dir, spec.attempt);
        // The agent runs already: the hello is sent and the welcome read on the follower's
        // thread, so the setup answers now. An older holder binary starts its agent on the
        // hello: its welcome says the pid.
        let link = match ready.agent_pid {
            Some(pid) => Link::Opening {
                opening: client::open(&sock, "supervisor")?,
                pid,
                size: (spec.rows, spec.cols),
            },
            None => Link::Welcomed(client::connect(&sock, "supervisor")?),
        };
        let followed = follow(link, l, sink, self.on_output.clone());
        // The spawn's two halves, beside the setup's steps (`engine::jobs`).
        let ms = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64() * 1e3;
        let t2 = std::time::Instant::now();
        // The holder's start once more under the way it started (`holder_start::Spares`).
        let how = if spare { "spare_ms" } else { "cold_ms" };
        tracing::info!(target: "orch_tui::setup", "holder spawn attempt={} holder_ms={:.2} {how}={:.2} connect_ms={:.2}", spec.attempt, ms(t0, t1), ms(t0, t1), ms(t1, t2));
        Ok(Box::new(followed))
    }

    fn reap_stale(&self, stale: &Stale) {
        super::real_world::reap_stale(stale);
    }

    fn probe(&self, attempt: AttemptId) -> Option<(HolderFact, Vec<String>)> {
        let sock = holder::socket_path(&self.dir, attempt.0);
        let status = sock.exists().then(|| client::status(&sock).ok()).flatten();
        let recorded = holder::read_exit(&self.dir, attempt.0)
            .or_else(|| status.as_ref().and_then(|s| s.exit));
        let held_ms = status.as_ref().map_or(0, |s| s.held_ms);
        let frozen = status
            .as_ref()
            .is_some_and(|s| s.frozen && s.exit.is_none());
        let live_pid = status.filter(|s| s.exit.is_none()).map(|s| s.pid);
        let fact = HolderFact {
            attempt,
            holder: attempt,
            live_pid,
            held_ms,
            frozen,
            exit: recorded.map(|r| Exit {
                code: r.code,
                signal: r.signal,
            }),
        };
        let branches = holder::read_branches(&self.dir, attempt.0);
        (live_pid.is_some() || recorded.is_some()).then_some((fact, branches))
    }

    fn adopt(&self, holder: AttemptId, l: Launch, sink: Sink) -> Result<Spawned, String> {
        let conn = client::connect(&holder::socket_path(&self.dir, holder.0), "supervisor")?;
        let branches = conn.welcome.branches_before.clone();
        Ok(Spawned {
            process: Box::new(follow(
                Link::Welcomed(conn),
                l,
                sink,
                self.on_output.clone(),
            )),
            base: String::new(),
            branches,
        })
    }
}

/// How the follower reaches its holder: welcomed already (adopted, or an older holder), or
/// with the hello sent and the welcome still to read (a holder that started its agent: its
/// pid and the screen's size are known from the spawn).
enum Link {
    Welcomed(Conn),
    Opening {
        opening: Opening,
        pid: u32,
        size: (u16, u16),
    },
}

/// Mirrors a holder's agent: its screen, the attempt's parser and screen watch, and its exit (a
/// holder that vanishes is an exit too: its agent's tree is stopped from here).
fn follow(link: Link, l: Launch, sink: Sink, on_output: Option<OutputHook>) -> HolderProc {
    let (pid, (rows, cols), sender) = match &link {
        Link::Welcomed(c) => (c.welcome.pid, (c.welcome.rows, c.welcome.cols), c.sender()),
        Link::Opening {
            opening, pid, size, ..
        } => (*pid, *size, opening.sender()),
    };
    let screen: SharedScreen = Arc::new(Mutex::new(new_parser(rows, cols)));
    let wiring = super::real_world::wire(&l, sink, on_output, (rows, cols));
    let token = l
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == crate::os::TOKEN_VAR)
        .map(|(_, v)| v.clone());
    let proc_ = HolderProc {
        pid,
        sender,
        screen: screen.clone(),
        pane: wiring.pane.clone(),
        token: token.clone(),
    };
    let feed = wiring.feed.clone();
    let nudge = wiring.nudge.clone();
    let (task, on_out) = (l.task.clone(), wiring.on_output.clone());
    let mirror = screen.clone();
    let pane = wiring.pane.clone();
    let reading = std::thread::Builder::new()
        .name(format!("holder-{}", l.attempt))
        .spawn(move || {
            let welcomed = match link {
                Link::Welcomed(c) => Ok(c),
                Link::Opening { opening, .. } => opening.welcome(),
            };
            // A holder that went away (or never welcomed us): its agent's tree is stopped from
            // here, and that is the agent's exit.
            let gone = |why: &str| {
                tracing::warn!(pid, why, "the agent's holder went away; stopping its tree");
                if let Some(t) = &token {
                    let root = Some(pid as i32)
                        .filter(|&p| crate::os::has_token(p, t))
                        .unwrap_or(0);
                    crate::os::kill_tree(root, Some(t), Duration::from_secs(2));
                }
                Exit {
                    code: None,
                    signal: Some(libc::SIGKILL),
                }
            };
            let mut conn = match welcomed {
                Ok(c) => c,
                Err(e) => {
                    let exit = gone(&e);
                    nudge(super::watch::Nudge::End);
                    let _ = feed.send(FeedMsg::Exited(exit));
                    return;
                }
            };
            if let Ok(mut s) = mirror.lock() {
                let w = &conn.welcome;
                if (w.rows, w.cols) != (rows, cols) && w.rows > 0 && w.cols > 0 {
                    s.screen_mut().set_size(nonzero(w.rows), nonzero(w.cols));
                }
                s.process(&conn.snapshot);
                // What the snapshot replays happened before: no signal of it is news.
                drain(&mut s);
            }
            let exit = loop {
                match conn.next_frame() {
                    Ok(Some(Frame::Output(bytes))) => {
                        let signals = match mirror.lock() {
                            Ok(mut s) => {
                                s.process(&bytes);
                                drain(&mut s)
                            }
                            Err(_) => Vec::new(),
                        };
                        let _ = feed.send(FeedMsg::Bytes(bytes));
                        nudge(super::watch::Nudge::Output);
                        // Titles, notifications, bells: the middle layer of detection.
                        for sig in signals {
                            nudge(super::watch::Nudge::Signal(sig));
                        }
                        if let Some(f) = &on_out {
                            f(&task);
                        }
                    }
                    // Someone resized the agent (a watching TUI, `attach`): its output is
                    // for that size from now on.
                    Ok(Some(Frame::Resize { rows, cols })) => {
                        for s in std::iter::once(&mirror).chain(pane.as_ref()) {
                            if let Ok(mut p) = s.lock() {
                                p.screen_mut().set_size(nonzero(rows), nonzero(cols));
                            }
                        }
                    }
                    Ok(Some(Frame::Exited(rec))) => {
                        break Exit {
                            code: rec.code,
                            signal: rec.signal,
                        };
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break gone("it closed the connection"),
                    Err(e) => break gone(&e.to_string()),
                }
            };
            nudge(super::watch::Nudge::End);
            let _ = feed.send(FeedMsg::Exited(exit));
        });
    if let Err(e) = reading {
        tracing::error!(error = %e, "no thread to follow the agent's holder");
    }
    let sender = proc_.sender.clone();
    wiring.after_spawn(
        screen,
        Box::new(move |b| {
            let _ = sender.send(&Frame::Input(b));
        }),
        l,
    );
    proc_
}

/// The mirror's callbacks collect lines and replies for a log this side does not write (the
/// holder writes the logs and answers the agent's queries); the terminal signals it heard are
/// kept for the screen watch.
fn drain(p: &mut crate::agent::screen::Parser) -> Vec<Signal> {
    use crate::agent::screen::ScreenEvent;
    let cb = p.callbacks_mut();
    let _ = (cb.take_lines(), cb.take_replies());
    cb.take_events()
        .into_iter()
        .map(|e| match e {
            ScreenEvent::Bell => Signal::Bell,
            ScreenEvent::Notification(t) => Signal::Notification(t),
            ScreenEvent::Title(t) => Signal::Title(t),
        })
        .collect()
}
