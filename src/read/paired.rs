//! Two connections reading the ledger at the same point of its history, so `status --json`
//! can read the tasks and the attempts at the same time on two threads (WAL lets readers run
//! side by side) and still print one state that existed (issue #11 goal 4).
//!
//! A read transaction sees the ledger as of its first read. Two connections begun one after
//! the other see the same state unless a writer committed in between. `PRAGMA data_version`
//! tells exactly that: two calls on one connection differ when another connection committed
//! in the interim, and a call that begins a read transaction reports the state it sees. So
//! the second connection asks it before the first begins and again as it begins itself;
//! equal answers mean both transactions began on the same commit. A marker read from a table
//! (the newest event) would need every write to change it; this needs nothing of the writers.

use rusqlite::Transaction;

use crate::ledger::{Ledger, LedgerError};

/// How many times a pair is tried before the caller reads alone: each try costs two short
/// statements, and only a writer committing in the microseconds between them spoils one.
const TRIES: usize = 3;

/// A second connection to the caller's ledger, for reading beside it; `None` when it cannot
/// be opened (the caller then reads alone: the output is the same).
pub(super) fn second_reader(ledger: &Ledger) -> Option<Ledger> {
    let second = Ledger::open_reader(ledger.path()).ok()?;
    second
        .conn()
        .execute_batch("PRAGMA mmap_size = 268435456")
        .ok()?;
    Some(second)
}

/// Begin a read transaction on `first` (returned) and one on `second` at the same point of
/// the ledger's history: `second` comes back with its transaction open (it ends when
/// `second` is dropped), or `None` when writers kept committing between the two beginnings
/// and the caller should read alone on `first`. `between` runs after `first` began and before
/// `second` does (for tests: a commit there must be noticed).
pub(super) fn begin_pair(
    first: &Ledger,
    second: Ledger,
    mut between: impl FnMut(),
) -> Result<(Transaction<'_>, Option<Ledger>), LedgerError> {
    for _ in 0..TRIES {
        let before = data_version(&second)?;
        let tx = first.conn().unchecked_transaction()?;
        // The first read begins the transaction (BEGIN alone does not).
        tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?;
        between();
        second.conn().execute_batch("BEGIN")?;
        // This read begins the second transaction, and says whether anyone committed since
        // `before`.
        if data_version(&second)? == before {
            return Ok((tx, Some(second)));
        }
        second.conn().execute_batch("ROLLBACK")?;
    }
    Ok((first.conn().unchecked_transaction()?, None))
}

fn data_version(ledger: &Ledger) -> Result<i64, LedgerError> {
    Ok(ledger
        .conn()
        .query_row("PRAGMA data_version", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated ledger in a temp dir, with one plan row to read and change.
    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(&dir.path().join("ledger.db")).expect("open");
        l.conn()
            .execute(
                "INSERT INTO plan (id, name, file, loaded_ms) VALUES (1, 'a', 'p.toml', 0)",
                [],
            )
            .expect("plan");
        (dir, l)
    }

    fn plan_name(l: &Ledger) -> String {
        l.conn()
            .query_row("SELECT name FROM plan", [], |r| r.get(0))
            .expect("plan name")
    }

    #[test]
    fn both_readers_see_the_same_state_when_nobody_commits_between() {
        let (_dir, first) = ledger();
        let writer = Ledger::open(first.path()).expect("writer");
        let second = second_reader(&first).expect("second reader");
        let (tx, second) = begin_pair(&first, second, || {}).expect("pair");
        let second = second.expect("paired");
        // A commit after both began changes neither.
        writer
            .conn()
            .execute("UPDATE plan SET name = 'b'", [])
            .expect("write");
        assert_eq!(plan_name(&first), "a");
        assert_eq!(plan_name(&second), "a");
        drop(tx);
        assert_eq!(plan_name(&first), "b", "a new transaction sees the write");
    }

    #[test]
    fn a_commit_between_the_two_beginnings_is_noticed_and_the_pair_begun_again() {
        let (_dir, first) = ledger();
        let writer = Ledger::open(first.path()).expect("writer");
        let second = second_reader(&first).expect("second reader");
        let mut commits = 0;
        let (tx, second) = begin_pair(&first, second, || {
            // Only the first try is spoiled.
            if commits == 0 {
                writer
                    .conn()
                    .execute("UPDATE plan SET name = 'b'", [])
                    .expect("write");
            }
            commits += 1;
        })
        .expect("pair");
        let second = second.expect("paired on the second try");
        assert_eq!(commits, 2);
        assert_eq!(plan_name(&first), "b");
        assert_eq!(plan_name(&second), "b");
        drop(tx);
    }

    #[test]
    fn a_writer_committing_every_time_leaves_one_reader() {
        let (_dir, first) = ledger();
        let writer = Ledger::open(first.path()).expect("writer");
        let second = second_reader(&first).expect("second reader");
        let mut n = 0;
        let (tx, second) = begin_pair(&first, second, || {
            n += 1;
            writer
                .conn()
                .execute("UPDATE plan SET name = ?1", [format!("n{n}")])
                .expect("write");
        })
        .expect("pair");
        assert!(second.is_none(), "no pair: the caller reads alone");
        assert_eq!(n, TRIES);
        assert_eq!(plan_name(&first), format!("n{TRIES}"), "the newest state");
        drop(tx);
    }

    #[test]
    fn a_ledger_of_another_schema_version_gets_no_second_reader() {
        let (_dir, first) = ledger();
        first
            .conn()
            .execute_batch("PRAGMA user_version = 999")
            .expect("version");
        assert!(second_reader(&first).is_none());
    }
}
