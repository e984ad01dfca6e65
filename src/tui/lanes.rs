//! Background lanes for the TUI's blocking work (gitui's async jobs are the model): each lane is
//! one thread with a queue, its own ledger connection and its own state, so the UI thread never
//! waits for SQLite, git or a file. Jobs report back on the UI's channel.
//!
//! A job submitted with a key replaces a queued job with the same key (latest wins: ten ledger
//! changes in a burst cost one refresh, not ten); keyless jobs (human commands) run in order.
//! Separate lanes keep a write that waits for a locked ledger from holding up refreshes (WAL
//! readers never wait for a writer) and git from holding up either.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::UiEvent;
use super::logfeed::LogFeed;
use crate::ledger::{Ledger, LedgerError};

/// Which lane a job runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Ledger reads: refreshes, the task detail, the timeline.
    Read,
    /// Human commands, one after the other, waiting out a busy ledger.
    Write,
    /// git (diff, diff stat) and log files.
    Files,
}

/// What makes two jobs the same, for latest-wins replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKey {
    Refresh,
    Detail,
    Timeline,
    Logs,
    Diff,
    Stat(String),
}

pub type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// A lane's own state, handed to each of its jobs.
pub struct Worker {
    ledger_path: PathBuf,
    /// How long one try of a statement waits for a busy ledger before the job hears of it.
    busy_wait: Duration,
    ledger: Option<Ledger>,
    tx: Sender<UiEvent>,
    /// The logs view's followed files (used on the files lane only).
    pub feed: LogFeed,
}

impl Worker {
    /// The lane's connection, opened on first use (and again after an error dropped it).
    pub fn ledger(&mut self) -> Result<&mut Ledger, LedgerError> {
        if self.ledger.is_none() {
            self.ledger = Some(Ledger::open_waiting(&self.ledger_path, self.busy_wait)?);
        }
        self.ledger
            .as_mut()
            .ok_or_else(|| LedgerError::BadInput("the ledger is not open".into()))
    }

    /// The connection and the logs feed together (the feed reads the ledger for its sources).
    pub fn ledger_and_feed(&mut self) -> Result<(&Ledger, &mut LogFeed), LedgerError> {
        self.ledger()?;
        match &self.ledger {
            Some(l) => Ok((l, &mut self.feed)),
            None => Err(LedgerError::BadInput("the ledger is not open".into())),
        }
    }

    /// Forget the connection (it is reopened by the next job).
    pub fn drop_ledger(&mut self) {
        self.ledger = None;
    }

    pub fn ledger_path(&self) -> &std::path::Path {
        &self.ledger_path
    }

    /// Report to the UI (ignored once it has gone).
    pub fn send(&self, done: super::jobs::JobDone) {
        let _ = self.tx.send(UiEvent::Job(done));
    }
}

struct Queue {
    jobs: VecDeque<(Option<JobKey>, Job)>,
    closed: bool,
}

type Shared = Arc<(Mutex<Queue>, Condvar)>;

fn lock(q: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A job panicking never holds this lock; a poisoned queue is still a valid queue.
    q.lock().unwrap_or_else(|e| e.into_inner())
}

/// The three lanes. Dropping it lets each thread finish the job at hand and end; nothing waits
/// for them (a command still waiting for a locked ledger must not hold up quitting).
pub struct Lanes {
    read: Shared,
    write: Shared,
    files: Shared,
}

impl Lanes {
    pub fn start(ledger_path: PathBuf, tx: Sender<UiEvent>) -> Lanes {
        let lane = |name: &str, busy_wait: Duration| {
            let shared: Shared = Arc::new((
                Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    closed: false,
                }),
                Condvar::new(),
            ));
            let worker = Worker {
                ledger_path: ledger_path.clone(),
                busy_wait,
                ledger: None,
                tx: tx.clone(),
                feed: LogFeed::default(),
            };
            let q = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tui-{name}"))
                .spawn(move || run(q, worker));
            if let Err(e) = spawned {
                // Without the thread its jobs never run; say so rather than hang silently.
                let _ = tx.send(UiEvent::Job(super::jobs::JobDone::Failed(format!(
                    "cannot start the {name} thread: {e}"
                ))));
            }
            shared
        };
        Lanes {
            // Reads never wait for a writer (WAL); only opening may meet a checkpoint.
            read: lane("read", Duration::from_secs(1)),
            // Short tries, so the UI hears within a second that a command waits.
            write: lane("write", Duration::from_millis(300)),
            files: lane("files", Duration::from_secs(1)),
        }
    }

    pub fn submit(&self, lane: Lane, key: Option<JobKey>, job: Job) {
        let shared = match lane {
            Lane::Read => &self.read,
            Lane::Write => &self.write,
            Lane::Files => &self.files,
        };
        let (q, cv) = &**shared;
        let mut q = lock(q);
        match key.as_ref().and_then(|k| {
            q.jobs
                .iter()
                .position(|(other, _)| other.as_ref() == Some(k))
        }) {
            Some(i) => q.jobs[i].1 = job,
            None => q.jobs.push_back((key, job)),
        }
        cv.notify_one();
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        for shared in [&self.read, &self.write, &self.files] {
            let (q, cv) = &**shared;
            lock(q).closed = true;
            cv.notify_one();
        }
    }
}

fn run(shared: Shared, mut worker: Worker) {
    let (q, cv) = &*shared;
    loop {
        let job = {
            let mut guard = lock(q);
            loop {
                if guard.closed {
                    return;
                }
                if let Some((_, job)) = guard.jobs.pop_front() {
                    break job;
                }
                guard = cv.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
        };
        // A job that panics is reported and the lane goes on (with a fresh connection).
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut worker)));
        if ran.is_err() {
            worker.drop_ledger();
            worker.send(super::jobs::JobDone::Failed(
                "a background job failed unexpectedly; the view may be stale".into(),
            ));
        }
    }
}
