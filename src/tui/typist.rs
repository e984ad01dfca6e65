//! Keys and window sizes from a TUI that watches another process's run, sent to the agents'
//! holders directly (`agent::holder`): the holder takes input from any client of its own user
//! (SO_PEERCRED), so typing never goes through the supervisor.
//!
//! One thread owns the connections (a connect is a socket handshake; the UI thread never
//! blocks on one). Each connection also streams the agent's output to us; a drain thread reads
//! and drops it (the screen shown here comes from the agent's log, `client.rs`), so the holder
//! never queues output for a client that does not read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::agent::holder::client::{self, Sender as FrameSender};
use crate::agent::holder::proto::Frame;
use crate::core::domain::AttemptId;
use crate::ledger::Ledger;

/// Hands frames to the typist thread.
pub struct Typist {
    tx: Sender<(PathBuf, Frame)>,
}

impl Typist {
    pub fn start() -> Typist {
        let (tx, rx) = channel();
        let _ = std::thread::Builder::new()
            .name("tui-typist".into())
            .spawn(move || run(rx));
        Typist { tx }
    }

    /// Send `frame` to the holder listening at `sock` (connecting first if need be).
    pub fn send(&self, sock: PathBuf, frame: Frame) {
        let _ = self.tx.send((sock, frame));
    }
}

fn run(rx: Receiver<(PathBuf, Frame)>) {
    let mut conns: BTreeMap<PathBuf, FrameSender> = BTreeMap::new();
    while let Ok((sock, frame)) = rx.recv() {
        // A connection that broke (the agent ended, its holder restarted) is made again once.
        for _ in 0..2 {
            let Some(sender) = conns.get(&sock).cloned().or_else(|| connect(&sock)) else {
                break;
            };
            if sender.send(&frame).is_ok() {
                conns.insert(sock.clone(), sender);
                break;
            }
            conns.remove(&sock);
        }
    }
}

fn connect(sock: &Path) -> Option<FrameSender> {
    let mut conn = match client::connect(sock, "tui (watching)") {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "watching: cannot reach an agent's holder");
            return None;
        }
    };
    let sender = conn.sender();
    let _ = std::thread::Builder::new()
        .name("tui-holder-drain".into())
        .spawn(move || while let Ok(Some(_)) = conn.next_frame() {});
    Some(sender)
}

/// The socket of the holder that runs attempt `id`: its own, or — an attempt that continues a
/// session kept through review in the same process — its first attempt's. `None` when no
/// holder runs it (an agent in the supervisor's own terminal, `ORCH_HOLDERS=0`).
pub fn holder_socket(ledger: &Ledger, holders: &Path, id: AttemptId) -> Option<PathBuf> {
    let mut at = ledger.attempt(id).ok()??;
    // Bounded: one hop per change request.
    for _ in 0..1000 {
        let sock = crate::agent::holder::socket_path(holders, at.id.0);
        if sock.exists() {
            return Some(sock);
        }
        let prev = ledger.attempt(at.continues?).ok()??;
        if prev.pid.is_none() || prev.pid != at.pid {
            return None;
        }
        at = prev;
    }
    None
}
