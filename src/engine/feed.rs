//! An agent's output, read as it arrives: the PTY's reader thread hands every chunk to this
//! attempt's feed (a queue: the reader never waits), whose thread runs the adapter's parser and
//! passes the typed events to the supervisor's loop. The agent's exit goes through the same
//! queue, so the supervisor always hears what the agent said before it hears that it ended.
//!
//! A headless JSON agent's pane shows readable text instead of its raw stream: the parser's
//! pane lines are drawn on a screen of their own (the raw bytes stay in `pty.raw`).

use std::sync::mpsc::{Receiver, Sender, channel};

use super::real_world::OutputHook;
use super::world::{Incoming, Sink};
use crate::agent::adapter::EventParser;
use crate::agent::screen::SharedScreen;
use crate::core::agent_event::{AgentEvent, PaneKind, PaneLine};
use crate::core::domain::AttemptId;
use crate::core::supervisor::{Event, Exit};

pub enum FeedMsg {
    Bytes(Vec<u8>),
    /// The agent ended and its output is complete.
    Exited(Exit),
}

/// Where one attempt's output goes.
pub struct Feed {
    pub attempt: AttemptId,
    pub task: String,
    pub parser: Box<dyn EventParser>,
    /// The readable pane, for agents whose output is JSON.
    pub pane: Option<SharedScreen>,
    pub sink: Sink,
    pub on_output: Option<OutputHook>,
}

/// Start the feed's thread; its queue takes chunks and, last, the exit. Without a thread the
/// exit still reaches the loop (the events are lost, the run is not).
pub fn start(feed: Feed) -> Sender<FeedMsg> {
    let (tx, rx) = channel();
    let sink = feed.sink.clone();
    let attempt = feed.attempt;
    let (fallback_tx, fallback_rx) = channel::<FeedMsg>();
    let spawned = std::thread::Builder::new()
        .name(format!("feed-{attempt}"))
        .spawn(move || run(feed, rx));
    match spawned {
        Ok(_) => tx,
        Err(e) => {
            tracing::error!(%attempt, error = %e, "no thread to read the agent's output");
            std::thread::Builder::new()
                .name("feed-fallback".into())
                .spawn(move || {
                    for m in fallback_rx {
                        if let FeedMsg::Exited(exit) = m {
                            sink(Incoming::Event(Event::Exited { attempt, exit }));
                        }
                    }
                })
                .ok();
            fallback_tx
        }
    }
}

fn run(mut feed: Feed, rx: Receiver<FeedMsg>) {
    for msg in rx {
        match msg {
            FeedMsg::Bytes(b) => {
                let events = feed.parser.feed(&b);
                deliver(&feed, events);
            }
            FeedMsg::Exited(exit) => {
                let events = feed.parser.finish();
                deliver(&feed, events);
                (feed.sink)(Incoming::Event(Event::Exited {
                    attempt: feed.attempt,
                    exit,
                }));
                return;
            }
        }
    }
}

fn deliver(feed: &Feed, events: Vec<AgentEvent>) {
    let mut drawn = false;
    for ev in events {
        match ev {
            AgentEvent::Pane(line) => {
                if let Some(pane) = &feed.pane {
                    draw(pane, &line);
                    drawn = true;
                }
            }
            event => (feed.sink)(Incoming::Event(Event::Agent {
                attempt: feed.attempt,
                event,
            })),
        }
    }
    if drawn && let Some(f) = &feed.on_output {
        f(&feed.task);
    }
}

/// One readable line on the pane, coloured by what it is.
pub fn draw(pane: &SharedScreen, line: &PaneLine) {
    let colour = match line.kind {
        PaneKind::Assistant => "",
        PaneKind::ToolCall => "\x1b[36m",
        PaneKind::ToolResult => "\x1b[2m",
        PaneKind::Info => "\x1b[2;3m",
        PaneKind::Error => "\x1b[31m",
    };
    // The agent's text may hold escapes of its own: none of them reaches the pane.
    let text: String = line
        .text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let bytes = format!("{colour}{text}\x1b[0m\r\n");
    let Ok(mut screen) = pane.lock() else { return };
    screen.process(bytes.as_bytes());
    // Nothing reads this screen's log: drop what it queued.
    let cb = screen.callbacks_mut();
    let _ = (cb.take_lines(), cb.take_replies(), cb.take_events());
}
