//! The SQLite ledger: the single source of truth (DESIGN.md §4).
//!
//! Every connection gets the same pragmas; every write is a short `BEGIN IMMEDIATE`
//! transaction with no I/O besides SQL; state tables change only together with their event.

mod agents;
mod alerts;
mod apply;
mod attempts;
mod events;
mod hooks;
#[cfg(test)]
mod migrate_tests;
mod schema;
mod sqltypes;
mod strict;
mod sync;
mod task_edits;
mod tasks;
mod worker;

pub use crate::core::domain::{Actor, AttemptId, AttemptNo, AttemptState, EventKind};
pub use crate::core::ops::{EventData, Op, Patch};
pub use agents::GateRow;
pub use alerts::{Alert, AlertKind};
pub use apply::{apply_ops, finish_attempt, insert_attempt, set_stage, settle_dag, transition};
pub use attempts::{AttemptRow, AttemptSpend};
pub use events::{EventRow, append as append_event};
pub use hooks::PendingPermission;
pub use schema::SCHEMA_VERSION;
pub use sync::IntegrationRow;
pub use task_edits::{edit_prompt, insert_task, task_states};
pub use tasks::{LoadReport, TaskDefaults, TaskRow, task_in};
pub use worker::{Caller, WorkerCall, WorkerReply};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub enum LedgerError {
    Sql(rusqlite::Error),
    /// The file was written by a newer orch-tui.
    TooNew {
        found: i64,
        known: i64,
    },
    /// A compare-and-swap lost: the row was not in the expected state/version.
    Conflict(String),
    /// A request fenced out by token or epoch.
    Refused(String),
    /// A request that names something that does not exist, or is malformed.
    BadInput(String),
    /// A report from a running attempt of the previous supervisor while a new one starts: it
    /// is adopted (and then accepted) or abandoned (and then refused) in a moment. Transient.
    Restarting(String),
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Sql(e) => write!(f, "ledger error: {e}"),
            LedgerError::TooNew { found, known } => write!(
                f,
                "the ledger has schema version {found}, newer than this orch-tui knows ({known}); \
                 upgrade orch-tui (it never downgrades a ledger)"
            ),
            LedgerError::Conflict(m)
            | LedgerError::Refused(m)
            | LedgerError::BadInput(m)
            | LedgerError::Restarting(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LedgerError {}

impl LedgerError {
    /// Worth retrying after a while: a new supervisor is taking over the reporting attempt, the
    /// ledger is busy or locked by another process, or the disk is full (SQLITE_FULL, or a write refused by the OS: ENOSPC, EDQUOT, EFBIG). Nothing
    /// was written. Everything else (a refused report, a lost compare-and-swap, a corrupt file)
    /// is fatal to the request.
    pub fn is_transient(&self) -> bool {
        if matches!(self, LedgerError::Restarting(_)) {
            return true;
        }
        let LedgerError::Sql(rusqlite::Error::SqliteFailure(f, _)) = self else {
            return false;
        };
        use rusqlite::ErrorCode as C;
        match f.code {
            C::DatabaseBusy | C::DatabaseLocked | C::DiskFull => true,
            // A failed write or a -shm that cannot grow: the disk is full or over quota.
            C::SystemIoFailure => matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_IOERR_WRITE | rusqlite::ffi::SQLITE_IOERR_SHMSIZE
            ),
            _ => false,
        }
    }

    /// Why a transient error happened, in words for a user who waits for it.
    pub fn transient_reason(&self) -> &'static str {
        match self {
            LedgerError::Sql(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    || f.code == rusqlite::ErrorCode::DatabaseLocked =>
            {
                "the ledger is busy (another process holds its write lock)"
            }
            LedgerError::Restarting(_) => {
                "a new supervisor is starting and has not taken this attempt over yet"
            }
            _ => "the ledger cannot be written (the disk is full or over quota)",
        }
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError::Sql(e)
    }
}

pub type Result<T> = std::result::Result<T, LedgerError>;

/// The time the ledger stamps on what it writes: the wall clock, unless the writer runs on a
/// clock of its own (`with_clock`: the supervisor in a simulated world, whose decisions and
/// records must agree on the time).
pub fn now_ms() -> u64 {
    if let Some(t) = CLOCK.with(std::cell::Cell::get) {
        return t;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

thread_local! {
    static CLOCK: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Run `f` with the ledger's clock reading `at_ms` on this thread.
pub fn with_clock<T>(at_ms: u64, f: impl FnOnce() -> T) -> T {
    let before = CLOCK.with(|c| c.replace(Some(at_ms)));
    let out = f();
    CLOCK.with(|c| c.set(before));
    out
}

pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    /// How long a write keeps retrying SQLITE_BUSY beyond the busy handler.
    busy_budget: Duration,
}

/// How long a write keeps retrying SQLITE_BUSY beyond the busy handler, e.g. during WAL recovery
/// right after a supervisor was killed.
const BUSY_BUDGET: Duration = Duration::from_secs(10);
/// The busy handler's wait per statement.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Ledger {
    /// Open (creating if needed) and migrate. Refuses a ledger newer than this binary.
    pub fn open(path: &Path) -> Result<Ledger> {
        Ledger::open_waiting(path, BUSY_BUDGET)
    }

    /// [`Ledger::open`], with every wait for a busy ledger (the busy handler, and the retries of
    /// [`Ledger::write`]) bounded by `wait`. For callers that retry on their own schedule.
    pub fn open_waiting(path: &Path, wait: Duration) -> Result<Ledger> {
        no_memory_statistics();
        // Created 0600 before SQLite sees it: its -wal and -shm get the same mode.
        crate::os::files::ensure_private_file(path).map_err(|e| {
            LedgerError::BadInput(format!(
                "cannot create or open {}: {e}; check that its folder exists and is yours",
                path.display()
            ))
        })?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(wait.min(BUSY_TIMEOUT))?;
        // journal_mode is persistent in the file; the others are per connection, so always set.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            return Err(LedgerError::BadInput(format!(
                "{}: could not switch the ledger to WAL mode (got {mode}); keep .orch/ on a local disk",
                path.display()
            )));
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 67108864;",
        )?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
            busy_budget: wait,
        };
        schema::migrate(&mut ledger.conn)?;
        Ok(ledger)
    }

    /// A second connection to a ledger this process already opened with [`Ledger::open`] (so
    /// it exists, is in WAL mode and migrated), for reading only: no create, no pragmas that
    /// write, no migration. For a reader that works beside the first connection on another
    /// thread (`read::write_json`). A ledger of another schema version than this binary's is
    /// refused: only the first opening migrates.
    pub fn open_reader(path: &Path) -> Result<Ledger> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(LedgerError::TooNew {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            return Err(LedgerError::BadInput(format!(
                "{}: schema version {version}, not yet migrated to {SCHEMA_VERSION}; \
                 `Ledger::open` migrates it",
                path.display()
            )));
        }
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
            busy_budget: BUSY_BUDGET,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Run `f` in a `BEGIN IMMEDIATE` transaction, retrying when the database stays busy past the
    /// busy timeout (full-jitter backoff, bounded). `f` must do SQL only: it may run more than once.
    pub fn write<T>(&mut self, mut f: impl FnMut(&Transaction) -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let mut pause_ms = 5u64;
        loop {
            let attempt = (|| {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                let out = f(&tx)?;
                tx.commit()?;
                Ok(out)
            })();
            match attempt {
                Err(LedgerError::Sql(e)) if is_busy(&e) && start.elapsed() < self.busy_budget => {
                    let jitter = (now_ms() ^ u64::from(std::process::id())) % pause_ms.max(1);
                    std::thread::sleep(Duration::from_millis(jitter + 1));
                    pause_ms = (pause_ms * 2).min(500);
                }
                other => return other,
            }
        }
    }

    /// Integrity check, as run by tests and after recovery. Returns "ok" when healthy.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    /// Start a new supervisor epoch. Everything from older epochs is fenced out from now on.
    pub fn begin_epoch(&mut self, pid: u32) -> Result<i64> {
        self.write(|tx| {
            let old: i64 = tx
                .query_row("SELECT epoch FROM supervisor WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .unwrap_or(0);
            let epoch = old + 1;
            tx.execute(
                "INSERT INTO supervisor (id, epoch, pid, started_ms) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET epoch = ?1, pid = ?2, started_ms = ?3",
                rusqlite::params![epoch, pid, now_ms() as i64],
            )?;
            events::append(
                tx,
                None,
                None,
                Actor::Supervisor,
                EventKind::EpochStarted,
                &serde_json::json!({ "epoch": epoch, "pid": pid }),
            )?;
            Ok(epoch)
        })
    }

    pub fn epoch(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT epoch FROM supervisor WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap_or(0))
    }

    /// The plan's name, if one was loaded.
    pub fn plan_name(&self) -> Result<Option<String>> {
        match self
            .conn
            .query_row("SELECT name FROM plan WHERE id = 1", [], |r| r.get(0))
        {
            Ok(n) => Ok(Some(n)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// SQLite counts every allocation under one process-wide mutex unless told not to; the ledger
/// never reads those counts, and the TUI's and the supervisor's threads would queue on it.
/// Must happen before SQLite initializes; later it is refused, harmlessly.
fn no_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection exists in the process (or it
        // returns SQLITE_MISUSE and changes nothing); the argument is the documented int.
        unsafe {
            rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0);
        }
    });
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::DatabaseBusy || f.code == rusqlite::ErrorCode::DatabaseLocked
    )
}
