//! The snapshot the TUI refreshes from: [`super::snapshot`] but for the attempts no view
//! lists. Its views need the live attempts, the inbox (which reads every attempt only of a
//! few tasks: waiting for approval, escalated, failed) and spends; the task detail reads a
//! task's attempts itself. At 10,000 tasks and 12,792 attempts, building every attempt's row
//! was half of a refresh; here the other attempts are stepped over seven columns for their
//! spend, and only the rows the inbox reads are built.

use super::{Snapshot, Spend, inbox, query};
use crate::core::domain::{AttemptId, AttemptNo, Role};
use crate::ledger::{Ledger, LedgerError};

/// An attempt's place in the listing (its task's index, then [`query::attempt_order`]) and
/// its tokens in, out and cost.
type Listed = ((usize, AttemptNo, Role, AttemptId), (i64, i64, f64));

/// Everything [`super::snapshot`] holds — run, counts, spends, inbox, every task's own fields —
/// at one point of the ledger's history, except that a task's `attempts` hold only its live
/// ones, or all of them where the inbox reads them (`inbox::tasks_read_whole_sql`).
pub fn snapshot_lean(ledger: &Ledger, now_ms: u64) -> Result<Snapshot, LedgerError> {
    let tx = ledger.conn().unchecked_transaction()?;
    let (mut tasks, index) = query::task_rows(ledger)?;
    // Each task's spend adds its attempts in row order, the run's in the order they are
    // listed, as the whole snapshot adds them (a float sum in another order can differ in its
    // last digit).
    let mut listed: Vec<Listed> = Vec::new();
    ledger.each_attempt_spend(|a| {
        if let Some(&i) = index.get(a.task) {
            let spent = (a.tokens_in, a.tokens_out, a.cost_usd);
            tasks[i].spend.add_parts(spent.0, spent.1, spent.2);
            listed.push(((i, a.n, a.role, a.id), spent));
        }
    })?;
    let rows: Vec<(usize, crate::ledger::AttemptRow)> = ledger
        .attempts_live_or_of(&inbox::tasks_read_whole_sql())?
        .into_iter()
        .filter_map(|a| index.get(a.task.as_str()).map(|&i| (i, a)))
        .collect();
    let live = rows.iter().filter(|(_, a)| a.state.is_live()).count();
    super::give_rows(&mut tasks, rows);
    listed.sort_by_key(|(order, _)| *order);
    let mut spend = Spend::default();
    for (_, (tokens_in, tokens_out, cost_usd)) in listed {
        spend.add_parts(tokens_in, tokens_out, cost_usd);
    }
    let snap = super::assemble(ledger, tasks, live, spend, now_ms);
    drop(tx);
    snap
}
