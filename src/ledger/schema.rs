//! Schema and ordered migrations, versioned with `PRAGMA user_version`.

use crate::core::state::{TaskState, legal_transitions};
use rusqlite::Connection;

use super::LedgerError;

/// The newest schema this binary knows.
pub const SCHEMA_VERSION: i64 = 8;

const V1: &str = r#"
CREATE TABLE supervisor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    started_ms INTEGER NOT NULL
);
CREATE TABLE plan (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    file TEXT NOT NULL,
    loaded_ms INTEGER NOT NULL
);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64 AND id NOT GLOB '*[^a-z0-9-]*'),
    ord INTEGER NOT NULL,
    title TEXT NOT NULL,
    prompt TEXT NOT NULL,
    spec_path TEXT,
    content_hash TEXT NOT NULL,
    spec_version INTEGER NOT NULL DEFAULT 1,
    agent TEXT,
    capabilities TEXT NOT NULL DEFAULT '[]',
    priority INTEGER NOT NULL DEFAULT 0,
    checks TEXT NOT NULL DEFAULT '[]',
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    budget_time_ms INTEGER CHECK (budget_time_ms IS NULL OR budget_time_ms > 0),
    budget_tokens INTEGER CHECK (budget_tokens IS NULL OR budget_tokens >= 0),
    budget_cost_usd REAL CHECK (budget_cost_usd IS NULL OR budget_cost_usd >= 0),
    risk_high INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN (STATES)),
    paused_from TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    ready_since_ms INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    reason TEXT,
    stage TEXT CHECK (stage IS NULL OR stage IN ('checks','reviewer','human','veto')),
    stage_until_ms INTEGER,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE deps (
    task TEXT NOT NULL REFERENCES tasks(id),
    dep TEXT NOT NULL REFERENCES tasks(id),
    PRIMARY KEY (task, dep),
    CHECK (task <> dep)
);
CREATE INDEX deps_by_dep ON deps(dep);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    task TEXT NOT NULL REFERENCES tasks(id),
    n INTEGER NOT NULL,
    token TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    profile TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('agent','reviewer')),
    state TEXT NOT NULL CHECK (state IN ('starting','running','succeeded','failed','abandoned','killed')),
    substatus TEXT NOT NULL DEFAULT 'starting',
    reported TEXT,
    question TEXT,
    pid INTEGER,
    worktree TEXT,
    branch TEXT,
    base TEXT,
    commit_oid TEXT,
    log_dir TEXT,
    started_ms INTEGER NOT NULL,
    running_ms INTEGER,
    ended_ms INTEGER,
    exit_code INTEGER,
    reason TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    last_beat_ms INTEGER,
    verdict TEXT CHECK (verdict IS NULL OR verdict IN ('approve','changes')),
    verdict_notes TEXT,
    UNIQUE (task, n, role)
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    task TEXT,
    attempt INTEGER,
    actor TEXT NOT NULL CHECK (actor IN ('supervisor','agent','human','check')),
    kind TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_task ON events(task, seq);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    reply TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL
);
"#;

fn quoted_states() -> String {
    TaskState::ALL
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",")
}

/// v2: a cancelled task can be retried (the transition trigger is rebuilt from `core::state`);
/// a merge's new integration tip is recorded before the ref moves, so recovery trusts only what
/// the supervisor wrote; the supervisor row keeps the integration tip it last wrote and a hold on
/// the whole run (the integration branch moved under it); an agent attempt's number is unique per
/// task, but an attempt may be reviewed more than once (a review cut short by a restart).
const V2: &str = r#"
ALTER TABLE attempts ADD COLUMN merge_tip TEXT;
ALTER TABLE attempts ADD COLUMN merge_onto TEXT;
ALTER TABLE attempts ADD COLUMN diff_lines INTEGER;
CREATE TABLE attempts_v2 (
    id INTEGER PRIMARY KEY,
    task TEXT NOT NULL REFERENCES tasks(id),
    n INTEGER NOT NULL,
    token TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    profile TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('agent','reviewer')),
    state TEXT NOT NULL CHECK (state IN ('starting','running','succeeded','failed','abandoned','killed')),
    substatus TEXT NOT NULL DEFAULT 'starting',
    reported TEXT,
    question TEXT,
    pid INTEGER,
    worktree TEXT,
    branch TEXT,
    base TEXT,
    commit_oid TEXT,
    log_dir TEXT,
    started_ms INTEGER NOT NULL,
    running_ms INTEGER,
    ended_ms INTEGER,
    exit_code INTEGER,
    reason TEXT,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    last_beat_ms INTEGER,
    verdict TEXT CHECK (verdict IS NULL OR verdict IN ('approve','changes')),
    verdict_notes TEXT,
    merge_tip TEXT,
    merge_onto TEXT,
    diff_lines INTEGER
);
INSERT INTO attempts_v2 SELECT id, task, n, token, epoch, profile, role, state, substatus,
    reported, question, pid, worktree, branch, base, commit_oid, log_dir, started_ms, running_ms,
    ended_ms, exit_code, reason, tokens_in, tokens_out, cost_usd, last_beat_ms, verdict,
    verdict_notes, merge_tip, merge_onto, diff_lines FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_v2 RENAME TO attempts;
CREATE UNIQUE INDEX attempts_agent_n ON attempts(task, n) WHERE role = 'agent';
CREATE INDEX attempts_by_task ON attempts(task, n);
ALTER TABLE supervisor ADD COLUMN integration_tip TEXT;
ALTER TABLE supervisor ADD COLUMN hold TEXT;
DROP TRIGGER IF EXISTS tasks_legal_transition;
"#;

/// v4: the base branch the integration branch stands on (its ref and commit), and a sync onto
/// it: the request (ref and commit), the replayed tip recorded before the branch moves with the
/// integration tip it was made from, and why the last sync stopped (docs/git.md).
const V4: &str = r#"
ALTER TABLE supervisor ADD COLUMN base_ref TEXT;
ALTER TABLE supervisor ADD COLUMN base_oid TEXT;
ALTER TABLE supervisor ADD COLUMN sync_ref TEXT;
ALTER TABLE supervisor ADD COLUMN sync_onto TEXT;
ALTER TABLE supervisor ADD COLUMN sync_from TEXT;
ALTER TABLE supervisor ADD COLUMN sync_tip TEXT;
ALTER TABLE supervisor ADD COLUMN sync_problem TEXT;
"#;

/// v5 (issue #8, real agents): each attempt records the agent's conversation id (`session`)
/// and the earlier attempt it continues (`continues`: same worktree, same conversation); a task
/// records the attempt its next one continues (`resume_attempt`: a limit lifted, a budget
/// extended); `gates` holds what stops dispatch for an account (a usage limit) or a profile (an
/// open circuit breaker) or the whole run (its budget spent), so a restart keeps waiting for the
/// same reset.
const V5: &str = r#"
ALTER TABLE attempts ADD COLUMN session TEXT;
ALTER TABLE attempts ADD COLUMN continues INTEGER;
ALTER TABLE tasks ADD COLUMN resume_attempt INTEGER;
CREATE TABLE gates (
    kind TEXT NOT NULL CHECK (kind IN ('limit','breaker','budget')),
    name TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    why TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) STRICT;
"#;

/// The state machine as a trigger, generated from `core::state` so the two cannot drift.
/// Raw SQL that tries an illegal move is refused by SQLite itself.
fn transition_trigger() -> String {
    let pairs = legal_transitions()
        .iter()
        .map(|(f, t)| format!("'{f}>{t}'"))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "CREATE TRIGGER tasks_legal_transition BEFORE UPDATE OF state ON tasks \
         WHEN OLD.state <> NEW.state AND (OLD.state || '>' || NEW.state) NOT IN ({pairs}) \
         BEGIN SELECT RAISE(ABORT, 'illegal task transition'); END;"
    )
}

/// v6 (issue #9, pause keeps the work): each attempt records the time it was held for a
/// paused task (`held_ms`), which its time budget and the next attempt's allowance do not count.
const V6: &str = r#"
ALTER TABLE attempts ADD COLUMN held_ms INTEGER NOT NULL DEFAULT 0;
"#;

/// v7 (issue #9, dependents during the veto window): an attempt started on a candidate tip
/// names the dependency whose veto window it did not wait for (`spec_on`); it never merges
/// before that one, and is stopped and retried on the real base if that one is vetoed.
const V7: &str = r#"
ALTER TABLE attempts ADD COLUMN spec_on TEXT;
"#;

/// v8 (issue 11, plans of 10,000 tasks): prompts in a table of their own. Real prompts are
/// paragraphs; inside `tasks` every row took a page of them, and `status`, the TUI's refresh and
/// the scheduler's queries read every page though none of them shows a prompt (10,000 tasks with
/// 3 KB prompts: 49 MB of ledger, `status` +50 % CPU). Read only where a prompt is used.
const V8: &str = r#"
CREATE TABLE task_prompts (
    task TEXT PRIMARY KEY REFERENCES tasks(id),
    prompt TEXT NOT NULL
) STRICT;
INSERT INTO task_prompts (task, prompt) SELECT id, prompt FROM tasks;
ALTER TABLE tasks DROP COLUMN prompt;
"#;

pub fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Migrate up to `target` (never down). Every step up to it runs in one transaction: a crash
/// leaves the old version or the new one, never a state between.
pub(super) fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), LedgerError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(LedgerError::TooNew {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    if current >= target {
        return Ok(());
    }
    // v3 rebuilds tables: foreign keys must be off while a table is dropped and renamed (this
    // pragma is a no-op inside a transaction, so it is set around it), and are checked before
    // the commit instead.
    let rebuild = current < 3 && target >= 3;
    if rebuild {
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    }
    let result = steps(conn, target);
    if rebuild {
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    if result? {
        compact_after_v8(conn);
    }
    Ok(())
}

/// After v8 moved the prompts of existing tasks out, the task rows are small but each still
/// sits alone on the page its prompt filled; scans read as many pages as before until the file
/// is rebuilt (10,000 tasks with 3 KB prompts: `status` 140 ms migrated, 114 ms rebuilt). Once,
/// after the migration committed; VACUUM is atomic, and a failure (a reader holding the file)
/// leaves a correct ledger that is only slower, so it is logged, not returned.
fn compact_after_v8(conn: &Connection) {
    let t = std::time::Instant::now();
    match conn.execute_batch("VACUUM") {
        Ok(()) => tracing::info!(
            ms = t.elapsed().as_millis() as u64,
            "ledger: rebuilt after moving the prompts out (schema v8)"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "ledger: could not rebuild after moving the prompts out (schema v8); it reads slower until `VACUUM`")
        }
    }
}

/// Runs the steps from the stored version to `target` in one transaction. True when v8 moved
/// the prompts of existing tasks (the file is worth rebuilding then).
fn steps(conn: &mut Connection, target: i64) -> Result<bool, LedgerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the lock.
    let again: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if again < 1 && target >= 1 {
        tx.execute_batch(&V1.replace("STATES", &quoted_states()))?;
        tx.execute_batch("PRAGMA user_version = 1")?;
    }
    if again < 2 && target >= 2 {
        tx.execute_batch(V2)?;
        tx.execute_batch(&transition_trigger())?;
        tx.execute_batch("PRAGMA user_version = 2")?;
    }
    if again < 3 && target >= 3 {
        super::strict::to_v3(&tx)?;
        tx.execute_batch(&transition_trigger())?;
        let broken: i64 =
            tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if broken > 0 {
            return Err(LedgerError::BadInput(format!(
                "cannot migrate the ledger to schema v3: {broken} rows refer to tasks that do \
                 not exist (run `PRAGMA foreign_key_check` on it); nothing was changed"
            )));
        }
        tx.execute_batch("PRAGMA user_version = 3")?;
    }
    if again < 4 && target >= 4 {
        tx.execute_batch(V4)?;
        tx.execute_batch("PRAGMA user_version = 4")?;
    }
    if again < 5 && target >= 5 {
        tx.execute_batch(V5)?;
        tx.execute_batch("PRAGMA user_version = 5")?;
    }
    if again < 6 && target >= 6 {
        tx.execute_batch(V6)?;
        tx.execute_batch("PRAGMA user_version = 6")?;
    }
    if again < 7 && target >= 7 {
        tx.execute_batch(V7)?;
        tx.execute_batch("PRAGMA user_version = 7")?;
    }
    let mut moved = false;
    if again < 8 && target >= 8 {
        tx.execute_batch(V8)?;
        moved = tx.query_row("SELECT EXISTS (SELECT 1 FROM task_prompts)", [], |r| {
            r.get(0)
        })?;
        tx.execute_batch("PRAGMA user_version = 8")?;
    }
    tx.commit()?;
    Ok(moved)
}
