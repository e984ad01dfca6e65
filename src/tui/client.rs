//! The TUI as a client of a supervisor in another process (`orch-tui run --detach`, or a TUI in
//! another terminal). Everything but the agents' screens comes from the ledger, as it always
//! does; each live agent's screen is rebuilt here by replaying the tail of its `pty.raw` (the
//! exact bytes its PTY gave, written before anything parsed them: `agent::record`) into a
//! local emulator, and kept up as the file grows.
//!
//! One watcher thread polls: the supervisor lock every [`TICK`] (when it is released, the TUI
//! takes supervision over: `UiEvent::Supervisor(None)`), the ledger's commit counter (`PRAGMA
//! data_version`; a change is the `Changed` the engine would have sent, so the views refresh),
//! the live attempts when it changed or every [`ROWS_EVERY`] ticks, and the logs every tick. Polling a file is what a `tail -f` does; an
//! agent's output reaches the screen here within a tick.
//!
//! Keys and resizes of the focused pane go to the agent's holder directly (`typist.rs`); the
//! holder tells every client of a resize, the supervisor included. Not here: resizes made by
//! someone else (another watching TUI, `orch-tui attach`): the screen is replayed at the size
//! its cast started with, or the last one this TUI asked for.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::UiEvent;
use super::jobs::EngineLink;
use crate::agent::holder::proto::Frame;
use crate::agent::record::{CAST_LOG, RAW_LOG};
use crate::agent::screen::{SharedScreen, new_parser, nonzero};
use crate::core::domain::AttemptId;
use crate::engine::{AgentView, EngineEvent};
use crate::ledger::{AttemptRow, Ledger};

/// How often the watcher looks at the lock and the logs.
pub const TICK: Duration = Duration::from_millis(100);
/// The live attempts are read from the ledger every this many ticks.
const ROWS_EVERY: u32 = 5;
/// A screen starts from at most this much of the end of its log: enough for any full-screen
/// redraw, small enough to replay at once.
const SEED_BYTES: u64 = 256 * 1024;
/// At most this much is read from one log per tick (a burst is caught up over a few ticks).
const READ_PER_TICK: usize = 1024 * 1024;
/// The size a screen is replayed at when its cast says none (the engine's own default).
const DEFAULT_SIZE: (u16, u16) = (24, 100);

/// The engine link of a watching TUI: the live agents as their logs show them, and a poke
/// through the supervisor's socket after a human command.
pub struct ClientLink {
    orch: PathBuf,
    views: Arc<Mutex<Vec<AgentView>>>,
    /// The holder socket of each live attempt that has one.
    sockets: Arc<Mutex<BTreeMap<AttemptId, PathBuf>>>,
    typist: super::typist::Typist,
}

impl ClientLink {
    /// Start the watcher thread. It ends when the loop is gone, or once the lock is free (after
    /// saying so).
    pub fn start(ledger_path: PathBuf, tx: Sender<UiEvent>, flag: Arc<AtomicBool>) -> ClientLink {
        let orch = ledger_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let views = Arc::new(Mutex::new(Vec::new()));
        let sockets = Arc::new(Mutex::new(BTreeMap::new()));
        let mut w = Watcher {
            sockets: sockets.clone(),
            orch: orch.clone(),
            ledger_path,
            ledger: None,
            tails: BTreeMap::new(),
            views: views.clone(),
            tx,
            flag,
            holder: None,
            version: None,
        };
        let _ = std::thread::Builder::new()
            .name("tui-watch".into())
            .spawn(move || w.run());
        ClientLink {
            orch,
            views,
            sockets,
            typist: super::typist::Typist::start(),
        }
    }

    fn socket(&self, attempt: AttemptId) -> Option<PathBuf> {
        self.sockets.lock().ok()?.get(&attempt).cloned()
    }
}

impl EngineLink for ClientLink {
    fn agents(&self) -> Vec<AgentView> {
        self.views.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn poke(&self) {
        crate::engine::poke(&self.orch);
    }

    fn input(&self, attempt: AttemptId, bytes: Vec<u8>) -> Result<(), String> {
        let sock = self.socket(attempt).ok_or(NO_HOLDER)?;
        self.typist.send(sock, Frame::Input(bytes));
        Ok(())
    }

    fn resize(&self, attempt: AttemptId, rows: u16, cols: u16) {
        let Some(sock) = self.socket(attempt) else {
            return;
        };
        // Its output from now on is for the new size: the screen replayed here follows.
        let screen = self.views.lock().ok().and_then(|v| {
            v.iter()
                .find(|a| a.attempt == attempt)
                .and_then(|a| a.screen.clone())
        });
        if let Some(screen) = screen
            && let Ok(mut p) = screen.lock()
        {
            p.screen_mut().set_size(nonzero(rows), nonzero(cols));
        }
        self.typist.send(sock, Frame::Resize { rows, cols });
    }
}

/// Said when a key is typed into an agent that no holder runs.
const NO_HOLDER: &str = "watching: this agent runs in the supervisor's own terminal \
                         (ORCH_HOLDERS=0), so only that process can type into it";

struct Watcher {
    sockets: Arc<Mutex<BTreeMap<AttemptId, PathBuf>>>,
    orch: PathBuf,
    ledger_path: PathBuf,
    ledger: Option<Ledger>,
    tails: BTreeMap<AttemptId, Tail>,
    views: Arc<Mutex<Vec<AgentView>>>,
    tx: Sender<UiEvent>,
    flag: Arc<AtomicBool>,
    /// Who held the lock at the last look (`Some(0)`: held, pid not written yet).
    holder: Option<u32>,
    /// The ledger's `PRAGMA data_version` at the last look: it changes with every commit made
    /// by another connection, so the views are read again only when the run moved.
    version: Option<i64>,
}

impl Watcher {
    fn run(&mut self) {
        let mut tick = 0u32;
        loop {
            let holder = crate::os::supervisor_running(&self.orch);
            if holder != self.holder || tick == 0 {
                self.holder = holder;
                if self.tx.send(UiEvent::Supervisor(holder)).is_err() || holder.is_none() {
                    return;
                }
            }
            let mut changed = self.ledger_changed();
            if changed || tick.is_multiple_of(ROWS_EVERY) {
                // Told after the views are updated: a refresh that read them before would show
                // no agent until the ledger next changed (a quiet agent waiting for input).
                changed |= self.look_at_rows();
            }
            if changed && self.tx.send(UiEvent::Engine(EngineEvent::Changed)).is_err() {
                return;
            }
            let mut printed = false;
            for t in self.tails.values_mut() {
                printed |= t.catch_up();
            }
            // One wake per burst, as the in-process output hook does.
            if printed
                && !self.flag.swap(true, Ordering::AcqRel)
                && self.tx.send(UiEvent::Output).is_err()
            {
                return;
            }
            tick = tick.wrapping_add(1).max(1);
            std::thread::sleep(TICK);
        }
    }

    /// Whether another process committed to the ledger since the last look.
    fn ledger_changed(&mut self) -> bool {
        if self.ledger.is_none() {
            self.ledger = Ledger::open(&self.ledger_path).ok();
        }
        let Some(ledger) = &self.ledger else {
            return false;
        };
        let version = ledger
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
            .ok();
        let changed = version.is_some() && version != self.version;
        self.version = version;
        changed
    }

    /// Follow the attempts that are live now; drop the ones that ended. True when the set of
    /// agents shown changed.
    fn look_at_rows(&mut self) -> bool {
        if self.ledger.is_none() {
            self.ledger = Ledger::open(&self.ledger_path).ok();
        }
        let Some(ledger) = &self.ledger else {
            return false;
        };
        let rows = match ledger.live_attempts() {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "watching: cannot read the live attempts");
                self.ledger = None;
                return false;
            }
        };
        let live: BTreeMap<AttemptId, &AttemptRow> = rows
            .iter()
            .filter(|r| r.log_dir.is_some())
            .map(|r| (r.id, r))
            .collect();
        self.tails.retain(|id, _| live.contains_key(id));
        for (id, row) in &live {
            if !self.tails.contains_key(id) {
                let dir = PathBuf::from(row.log_dir.clone().unwrap_or_default());
                self.tails.insert(*id, Tail::new(&dir));
            }
        }
        let now_ms = crate::ledger::now_ms() as i64;
        let now = Instant::now();
        let views: Vec<AgentView> = live
            .values()
            .filter_map(|r| {
                let tail = self.tails.get(&r.id)?;
                let since = r.running_ms.unwrap_or(r.started_ms);
                let ago = Duration::from_millis(now_ms.saturating_sub(since).max(0) as u64);
                Some(AgentView {
                    attempt: r.id,
                    task: r.task.clone(),
                    n: r.n,
                    profile: r.profile.clone(),
                    started: now.checked_sub(ago).unwrap_or(now),
                    deadline: None,
                    held_since: None,
                    screen: Some(tail.screen.clone()),
                })
            })
            .collect();
        let shown = |v: &[AgentView]| v.iter().map(|a| a.attempt).collect::<Vec<_>>();
        let mut other = true;
        if let Ok(mut v) = self.views.lock() {
            other = shown(&v) != shown(&views);
            *v = views;
        }
        let holders = crate::agent::holder::holders_dir(&self.orch);
        let sockets: BTreeMap<AttemptId, PathBuf> = live
            .keys()
            .filter_map(|id| Some((*id, super::typist::holder_socket(ledger, &holders, *id)?)))
            .collect();
        if let Ok(mut s) = self.sockets.lock() {
            *s = sockets;
        }
        other
    }
}

/// One agent's `pty.raw`, followed into an emulated screen.
struct Tail {
    raw: PathBuf,
    cast: PathBuf,
    file: Option<(File, u64)>,
    screen: SharedScreen,
}

impl Tail {
    fn new(dir: &Path) -> Tail {
        Tail {
            raw: dir.join(RAW_LOG),
            cast: dir.join(CAST_LOG),
            file: None,
            screen: Arc::new(Mutex::new(new_parser(DEFAULT_SIZE.0, DEFAULT_SIZE.1))),
        }
    }

    /// Feed what the log gained since the last look; true when there was something.
    fn catch_up(&mut self) -> bool {
        // Before the first byte: the size the session started at.
        if self.file.is_none()
            && let Some((rows, cols)) = cast_size(&self.cast)
            && let Ok(mut p) = self.screen.lock()
        {
            *p = new_parser(rows, cols);
        }
        let Ok(meta) = std::fs::metadata(&self.raw) else {
            return false;
        };
        // A rotated (renamed) log: the new file is read from its start.
        let same = self.file.as_ref().is_some_and(|(f, pos)| {
            f.metadata().is_ok_and(|m| m.ino() == meta.ino()) && *pos <= meta.len()
        });
        if !same {
            let Ok(mut f) = File::open(&self.raw) else {
                return false;
            };
            let start = if self.file.is_none() {
                meta.len().saturating_sub(SEED_BYTES)
            } else {
                0
            };
            if f.seek(SeekFrom::Start(start)).is_err() {
                return false;
            }
            self.file = Some((f, start));
        }
        let Some((f, pos)) = self.file.as_mut() else {
            return false;
        };
        let mut buf = Vec::new();
        let n = f
            .take(READ_PER_TICK as u64)
            .read_to_end(&mut buf)
            .unwrap_or(0);
        if n == 0 {
            return false;
        }
        *pos += n as u64;
        if let Ok(mut p) = self.screen.lock() {
            p.process(&buf);
            // Nobody answers the agent's queries or writes its text log from here.
            let cb = p.callbacks_mut();
            cb.take_replies();
            cb.drop_lines();
            cb.take_events();
        }
        true
    }
}

/// The screen size an asciicast header gives (`{"version": 2, "width": .., "height": ..}`).
fn cast_size(path: &Path) -> Option<(u16, u16)> {
    let mut line = String::new();
    BufReader::new(File::open(path).ok()?)
        .read_line(&mut line)
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let w = u16::try_from(v.get("width")?.as_u64()?).ok()?;
    let h = u16::try_from(v.get("height")?.as_u64()?).ok()?;
    (w > 0 && h > 0).then_some((h, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_tail_replays_the_log_and_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CAST_LOG),
            "{\"version\": 2, \"width\": 40, \"height\": 10}\n",
        )
        .unwrap();
        let mut raw = std::fs::File::create(dir.path().join(RAW_LOG)).unwrap();
        raw.write_all(b"hello\r\n").unwrap();
        let mut t = Tail::new(dir.path());
        assert!(t.catch_up());
        assert!(!t.catch_up(), "nothing new");
        raw.write_all(b"\x1b[2;1Hworld").unwrap();
        assert!(t.catch_up());
        let p = t.screen.lock().unwrap();
        let (rows, cols) = p.screen().size();
        assert_eq!((rows.get(), cols.get()), (10, 40));
        let text = p.screen().contents();
        assert!(text.starts_with("hello\nworld"), "{text:?}");
    }

    #[test]
    fn a_rotated_log_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RAW_LOG), b"old old old\r\n").unwrap();
        let mut t = Tail::new(dir.path());
        assert!(t.catch_up());
        std::fs::rename(dir.path().join(RAW_LOG), dir.path().join("pty.raw.1")).unwrap();
        std::fs::write(dir.path().join(RAW_LOG), b"\x1b[2J\x1b[Hnew").unwrap();
        assert!(t.catch_up());
        let text = t.screen.lock().unwrap().screen().contents();
        assert!(text.starts_with("new"), "{text:?}");
    }
}
