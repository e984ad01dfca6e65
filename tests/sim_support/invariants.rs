//! What must hold after every step of a simulated run, and at its end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use orch_tui::core::domain::{Actor, AttemptId, AttemptState, EventKind, Role};
use orch_tui::core::state::TaskState;
use orch_tui::engine::executor::Executor;
use orch_tui::ledger::Ledger;

use super::world::{Shared, lock};

const INTEGRATION: &str = "refs/heads/orch/integration";

fn ledger(path: &Path) -> Result<Ledger, String> {
    Ledger::open(path).map_err(|e| format!("the ledger cannot be opened: {e}"))
}

pub fn every_step(world: &Shared, exec: &Executor, l: &Ledger) -> Result<(), String> {
    if let Some(v) = lock(world).violations.first() {
        return Err(v.clone());
    }
    if let Some(f) = exec.supervisor().model.index_fault() {
        return Err(format!("the supervisor's model disagrees with itself: {f}"));
    }
    let tasks = l
        .tasks()
        .map_err(|e| format!("the ledger cannot be read: {e}"))?;
    let state: BTreeMap<&str, TaskState> = tasks.iter().map(|t| (t.id.as_str(), t.state)).collect();
    // A dependent stays blocked while any dependency is failed or cancelled; a task merges
    // only when every dependency is done. Before that it may be ready or beyond only on a
    // candidate tip: one dependency left, named by its attempt once it started (`spec_on`;
    // the claim lands only while that one's veto window runs in the ledger).
    for t in &tasks {
        let deps: Vec<TaskState> = t
            .depends_on
            .iter()
            .filter_map(|d| state.get(d.as_str()).copied())
            .collect();
        let blocking = deps.iter().any(|s| {
            matches!(
                s,
                TaskState::Failed | TaskState::Cancelled | TaskState::Blocked
            )
        });
        match t.state {
            TaskState::Pending if blocking => {
                return Err(format!(
                    "{} is pending though a dependency is failed, cancelled or blocked",
                    t.id
                ));
            }
            TaskState::Ready
            | TaskState::Assigned
            | TaskState::Working
            | TaskState::Review
            | TaskState::Approved
                if deps.iter().filter(|s| **s != TaskState::Done).count() == 1 =>
            {
                let undone = t
                    .depends_on
                    .iter()
                    .find(|d| state.get(d.as_str()) != Some(&TaskState::Done));
                let spec_on = l
                    .attempts(&t.id)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| a.role == orch_tui::core::domain::Role::Agent)
                    .max_by_key(|a| a.n)
                    .and_then(|a| a.spec_on);
                if t.state != TaskState::Ready && spec_on.as_ref() != undone {
                    return Err(format!(
                        "{} is {} though {undone:?} is not done, and its attempt names no \
                         such candidate ({spec_on:?})",
                        t.id, t.state
                    ));
                }
            }
            TaskState::Ready
            | TaskState::Assigned
            | TaskState::Working
            | TaskState::Review
            | TaskState::Approved
            | TaskState::Merging
            | TaskState::Done
                if deps.iter().any(|s| *s != TaskState::Done) =>
            {
                return Err(format!(
                    "{} is {} though a dependency is not done",
                    t.id, t.state
                ));
            }
            _ => {}
        }
    }
    // At most one supervisor decides: every live attempt belongs to the current epoch, once the
    // current one has booted and settled (its boot closes the older ones in its first round).
    // And the supervisor's model of what only it writes (how attempts stand) is the ledger's.
    let epoch = l.epoch().unwrap_or(0);
    let mut stmt = l
        .conn()
        .prepare_cached("SELECT id, task, n, state, epoch FROM attempts")
        .map_err(|e| e.to_string())?;
    let rows: Vec<(AttemptId, String, u32, AttemptState, i64)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    let settled = exec.supervisor().is_settled();
    for (id, task, n, st, e) in &rows {
        if st.is_live() && *e != epoch && settled {
            return Err(format!(
                "{task}#{n} of epoch {e} is still live under epoch {epoch}"
            ));
        }
        let model = exec.supervisor().model.attempts.get(id).map(|m| m.state);
        if model.is_some_and(|m| m != *st) {
            return Err(format!(
                "the supervisor believes {task}#{n} (attempt {id}) is {model:?}; the ledger says {st}"
            ));
        }
    }
    // Spend never goes down, and an attempt stopped by a limit never counts as a failure.
    {
        let mut stmt = l
            .conn()
            .prepare_cached("SELECT id, tokens_in, tokens_out, cost_usd, state FROM attempts")
            .map_err(|e| e.to_string())?;
        let spend: Vec<(i64, i64, i64, f64, AttemptState)> = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| e.to_string())?;
        let mut w = lock(world);
        // A resumed conversation's agent counts what it spent, not the conversation's whole
        // total again (its own total counts the conversation).
        let resumed: BTreeMap<i64, u64> = w
            .procs
            .values()
            .filter(|p| p.headless_session && p.earlier.0 > 0)
            .map(|p| (p.attempt.0, p.spent.0))
            .collect();
        for (id, tin, tout, cost, st) in spend {
            if let Some(own) = resumed.get(&id)
                && u64::try_from(tin).unwrap_or(0) > *own
            {
                return Err(format!(
                    "attempt {id} resumed a conversation and counts {tin} tokens in; it spent {own}"
                ));
            }
            if let Some((a, b, c)) = w.spend_seen.get(&id)
                && (tin < *a || tout < *b || cost < *c)
            {
                return Err(format!(
                    "the spend of attempt {id} went down: ({a}, {b}, {c}) -> ({tin}, {tout}, {cost})"
                ));
            }
            w.spend_seen.insert(id, (tin, tout, cost));
            if w.limited.contains(&AttemptId(id)) && st == AttemptState::Failed {
                return Err(format!(
                    "attempt {id} was stopped by a usage limit but counted as a failure"
                ));
            }
        }
    }
    // Nothing waits silently: an agent waiting for the human says what for (the inbox shows it).
    {
        let mut stmt = l
            .conn()
            .prepare_cached(
                "SELECT id, substatus, question FROM attempts
                 WHERE state IN ('starting', 'running')
                   AND substatus IN ('waiting_input', 'waiting_permission', 'waiting_dialog')",
            )
            .map_err(|e| e.to_string())?;
        let waiting: Vec<(i64, String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| e.to_string())?;
        for (id, sub, question) in waiting {
            if question.is_none_or(|q| q.trim().is_empty()) {
                return Err(format!(
                    "attempt {id} is {sub} with nothing for the inbox to show"
                ));
            }
        }
    }
    // An attempt said to have changed nothing changed nothing: the agent wrote no work.
    {
        let w = lock(world);
        for (id, task, n, st, _) in &rows {
            if *st != AttemptState::Succeeded {
                continue;
            }
            let reason: Option<String> = l
                .conn()
                .query_row("SELECT reason FROM attempts WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .unwrap_or(None);
            let nothing = reason.is_some_and(|r| r.contains("without changing anything"));
            if nothing && w.work.iter().any(|(_, t, k)| t == task && k == n) {
                return Err(format!(
                    "{task}#{n} was escalated as having changed nothing, but its agent did work"
                ));
            }
        }
    }
    synced_onto_the_base(world, l)?;
    time_budgets_count_running_time(world, l)?;
    // The integration branch is checked again only when it or the set of done tasks changed.
    let key = {
        let w = lock(world);
        let tip = w.git.lock().refs.get(INTEGRATION).cloned();
        (
            tip,
            tasks.iter().filter(|t| t.state == TaskState::Done).count(),
        )
    };
    if lock(world).last_checked.as_ref() != Some(&key) {
        merged_once_and_through_the_funnel(world, l, &tasks, false)?;
        lock(world).last_checked = Some(key);
    }
    Ok(())
}

/// A paused attempt accrues no time: an agent stopped because its time budget ran out had run
/// (not frozen) at least what that budget allowed it since its attempt was claimed — the task's
/// budget less what the attempts it continues used (`continues`, as the supervisor counts). An
/// attempt whose task's budget was extended since it started is not judged by today's budget.
fn time_budgets_count_running_time(world: &Shared, l: &Ledger) -> Result<(), String> {
    let mut stmt = l
        .conn()
        .prepare_cached(
            "SELECT a.id, a.task, a.n, a.started_ms, t.budget_time_ms, a.continues FROM attempts a \
             JOIN tasks t ON t.id = a.task \
             WHERE a.reason LIKE '%time budget exhausted%' AND t.budget_time_ms IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM events e WHERE e.task = a.task \
                 AND e.kind = 'extended' AND e.ts_ms >= a.started_ms)",
        )
        .map_err(|e| e.to_string())?;
    type Row = (AttemptId, String, u32, i64, i64, Option<i64>);
    let rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    // What the attempts an attempt continues used: each one's end less its start.
    let used_before = |mut next: Option<i64>| -> u64 {
        let mut used = 0u64;
        for _ in 0..1000 {
            let Some(id) = next else { break };
            let row: Option<(i64, Option<i64>, Option<i64>)> = l
                .conn()
                .query_row(
                    "SELECT started_ms, ended_ms, continues FROM attempts WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .ok();
            let Some((started, ended, prev)) = row else {
                break;
            };
            used += ended.map_or(0, |e| e.saturating_sub(started).max(0) as u64);
            next = prev;
        }
        used
    };
    let w = lock(world);
    for (id, task, n, started, budget, continues) in rows {
        let Some(p) = w.procs.values().find(|p| p.attempt == id) else {
            continue;
        };
        let Some((stop_at, _)) = p.stop else { continue };
        let allowed = (budget as u64)
            .saturating_sub(used_before(continues))
            .max(1);
        let ran = p.running_ms(started as u64, stop_at);
        if ran < allowed {
            return Err(format!(
                "{task}#{n} was stopped for its time budget ({allowed} ms of {budget} ms left) \
                 after running {ran} ms (frozen {} ms): the time it was paused was counted",
                p.frozen_ms
            ));
        }
    }
    Ok(())
}

/// Every commit on the integration branch carries one attempt's work that passed the funnel,
/// and no task's work landed twice.
/// `strict`: at the end of a run, when the branch was put back and the hold released, every done
/// task's work must be on it, whatever the supervisor recorded.
fn merged_once_and_through_the_funnel(
    world: &Shared,
    l: &Ledger,
    tasks: &[orch_tui::ledger::TaskRow],
    strict: bool,
) -> Result<(), String> {
    let w = lock(world);
    let meddled = w.meddled;
    let repo = w.git.lock();
    let Some(tip) = repo.refs.get(INTEGRATION).cloned() else {
        return Ok(()); // someone deleted it: the run is held; checked when it is back
    };
    let mut landed: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut cur = Some(tip);
    while let Some(c) = cur {
        let Some(commit) = repo.commits.get(&c) else {
            break;
        };
        if let Some((task, n)) = &commit.origin {
            landed.entry(task.clone()).or_default().insert(*n);
        }
        cur = commit.parents.first().cloned();
    }
    drop(repo);
    drop(w);
    for (task, ns) in &landed {
        // Commits of several attempts land together only as one change: each a continuation
        // of the one before (the same worktree, after a limit, a failure or a restart).
        if ns.len() > 1 && !one_chain(l, task, ns)? {
            return Err(format!("{task} landed more than once (attempts {ns:?})"));
        }
        let n = ns.iter().next_back().copied().unwrap_or(0);
        let events = l
            .events(0, Some(task), 100_000)
            .map_err(|e| e.to_string())?;
        let approved = events
            .iter()
            .any(|e| e.kind == EventKind::State && e.data["to"] == "approved");
        if !approved {
            return Err(format!(
                "{task}#{n} is on the integration branch without having been approved"
            ));
        }
        // Its last check passed, or the human approved it after that check failed. An attempt
        // that continues it (same worktree: a kept session's fix, a restart's continuation)
        // builds on its commit, and its check covers that commit too.
        let heirs = continuations(l, task, n)?;
        let last_check = events.iter().rposition(|e| {
            e.actor == Actor::Check && e.attempt.is_some_and(|a| a.0 == n || heirs.contains(&a.0))
        });
        // A session kept through review builds its fix on its rejected commit: someone who
        // moves the integration branch back by one commit can leave that commit on it alone.
        // The check that counts is then its continuation's, which was not landed.
        let continued = meddled
            && l.attempts(task)
                .unwrap_or_default()
                .iter()
                .any(|a| a.role == Role::Agent && a.n.0 > n && a.continues.is_some());
        if let Some(i) = last_check
            && events[i].kind == EventKind::CheckFailed
            && !continued
        {
            let overridden = events[i..].iter().any(|e| {
                e.actor == Actor::Human && e.kind == EventKind::State && e.data["to"] == "approved"
            });
            if !overridden {
                return Err(format!("{task}#{n} landed though its last check failed"));
            }
        }
    }
    // A done task's work is on the branch, unless it had nothing to merge — or someone else
    // moved the branch away from what the supervisor wrote (it holds the run when it sees that).
    let recorded: Option<String> = l
        .conn()
        .query_row(
            "SELECT integration_tip FROM supervisor WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap_or(None);
    let w = lock(world);
    let intact = strict || {
        let repo = w.git.lock();
        match (&recorded, repo.refs.get(INTEGRATION)) {
            (Some(r), Some(now)) => repo.is_ancestor(r, now),
            _ => false,
        }
    };
    drop(w);
    for t in tasks
        .iter()
        .filter(|t| t.state == TaskState::Done && intact)
    {
        if landed.contains_key(&t.id) {
            continue;
        }
        let events = l
            .events(0, Some(&t.id), 100_000)
            .map_err(|e| e.to_string())?;
        let empty = events.iter().any(|e| {
            e.data["why"]
                .as_str()
                .is_some_and(|w| w.contains("nothing to merge"))
        });
        if !empty {
            let story: Vec<String> = events
                .iter()
                .map(|e| format!("{} {} {}", e.actor, e.kind, e.data))
                .collect();
            return Err(format!(
                "{} is done but its work is not on the integration branch (landed: {:?}); its events:\n{}",
                t.id,
                landed,
                story.join("\n")
            ));
        }
    }
    Ok(())
}

/// Only someone else's move of the integration branch holds the run — never a move orch-tui
/// made itself (a merge's or a sync's, whatever crash came between the move and its record) —
/// and once a sync is over, the branch stands on the base it recorded.
fn synced_onto_the_base(world: &Shared, l: &Ledger) -> Result<(), String> {
    let row = l
        .integration()
        .map_err(|e| format!("the ledger cannot be read: {e}"))?;
    let w = lock(world);
    if let Some(hold) = &row.hold
        && !w.meddled
    {
        return Err(format!(
            "the run is held though only orch-tui moved the integration branch: {hold}"
        ));
    }
    let repo = w.git.lock();
    let actual = repo.refs.get(INTEGRATION);
    if let Some(base) = &row.sync.base_oid
        && row.sync.request.is_none()
        && row.hold.is_none()
        && actual.is_some()
        && actual == row.tip.as_ref()
        && let Some(actual) = actual
        && !repo.is_ancestor(base, actual)
    {
        return Err(format!(
            "the integration branch ({actual}) does not hold the base {base} it records"
        ));
    }
    Ok(())
}

/// A sync asked for is never lost silently: by the end it is done (the branch holds what it was
/// to go onto), or it stopped with a problem for the human, or it waits on a held run.
fn no_sync_lost(world: &Shared, l: &Ledger) -> Result<(), String> {
    let row = l.integration().map_err(|e| e.to_string())?;
    if row.sync.request.is_some() && row.hold.is_none() {
        return Err(format!(
            "the run ended with a sync still asked for: {:?}",
            row.sync.request
        ));
    }
    let w = lock(world);
    let Some(onto) = &w.sync_asked else {
        return Ok(());
    };
    let repo = w.git.lock();
    let holds = repo
        .refs
        .get(INTEGRATION)
        .is_some_and(|tip| repo.is_ancestor(onto, tip));
    if !holds && row.sync.problem.is_none() && row.sync.request.is_none() {
        return Err(format!(
            "the sync onto {onto} was lost: the integration branch does not hold it and no \
             problem says why"
        ));
    }
    Ok(())
}

/// The attempts `ns` of `task` are one continuation chain: each continues (through `continues`
/// links) the one before it.
/// The agent attempts of `task` whose chain of continuations reaches attempt `n`.
fn continuations(l: &Ledger, task: &str, n: u32) -> Result<BTreeSet<u32>, String> {
    let attempts = l.attempts(task).map_err(|e| e.to_string())?;
    let by_id: BTreeMap<AttemptId, &orch_tui::ledger::AttemptRow> =
        attempts.iter().map(|a| (a.id, a)).collect();
    let Some(root) = attempts
        .iter()
        .find(|a| a.role == Role::Agent && a.n.0 == n)
        .map(|a| a.id)
    else {
        return Ok(BTreeSet::new());
    };
    let mut heirs = BTreeSet::new();
    for a in attempts
        .iter()
        .filter(|a| a.role == Role::Agent && a.n.0 > n)
    {
        let mut cur = a.continues;
        while let Some(id) = cur {
            if id == root {
                heirs.insert(a.n.0);
                break;
            }
            cur = by_id.get(&id).and_then(|p| p.continues);
        }
    }
    Ok(heirs)
}

fn one_chain(l: &Ledger, task: &str, ns: &BTreeSet<u32>) -> Result<bool, String> {
    let attempts = l.attempts(task).map_err(|e| e.to_string())?;
    let by_n: BTreeMap<u32, &orch_tui::ledger::AttemptRow> = attempts
        .iter()
        .filter(|a| a.role == Role::Agent)
        .map(|a| (a.n.0, a))
        .collect();
    let by_id: BTreeMap<AttemptId, &orch_tui::ledger::AttemptRow> =
        attempts.iter().map(|a| (a.id, a)).collect();
    let list: Vec<u32> = ns.iter().copied().collect();
    for w in list.windows(2) {
        let (Some(earlier), Some(later)) = (by_n.get(&w[0]), by_n.get(&w[1])) else {
            return Ok(false);
        };
        let mut cur = later.continues;
        let mut found = false;
        while let Some(id) = cur {
            if id == earlier.id {
                found = true;
                break;
            }
            cur = by_id.get(&id).and_then(|a| a.continues);
        }
        if !found {
            return Ok(false);
        }
    }
    Ok(true)
}

/// No agent's work is ever lost: every token an agent wrote is in a commit some ref holds, or
/// in a worktree.
fn no_work_lost(world: &Shared) -> Result<(), String> {
    let w = lock(world);
    let repo = w.git.lock();
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    let mut reachable = BTreeSet::new();
    for tip in repo.refs.values() {
        reachable.extend(repo.ancestors(tip));
    }
    for c in &reachable {
        if let Some(commit) = repo.commits.get(c) {
            kept.extend(commit.files.values().map(String::as_str));
        }
    }
    for wt in repo.worktrees.values() {
        kept.extend(wt.files.values().map(String::as_str));
    }
    for (token, task, n) in &w.work {
        if !kept.contains(token.as_str()) {
            return Err(format!(
                "the work of {task}#{n} ({token}) is lost: no ref or worktree holds it"
            ));
        }
    }
    Ok(())
}

pub fn at_end(world: &Shared, exec: &Executor, path: &Path) -> Result<(), String> {
    let l = ledger(path)?;
    every_step(world, exec, &l)?;
    no_work_lost(world)?;
    no_sync_lost(world, &l)?;
    let tasks = l.tasks().map_err(|e| e.to_string())?;
    merged_once_and_through_the_funnel(world, &l, &tasks, true)?;
    held_windows_wait_for_the_human(&l)?;
    let tasks = l.tasks().map_err(|e| e.to_string())?;
    let hold: Option<String> = l
        .conn()
        .query_row("SELECT hold FROM supervisor WHERE id = 1", [], |r| r.get(0))
        .unwrap_or(None);
    let run_budget_spent = l
        .gates()
        .map_err(|e| e.to_string())?
        .iter()
        .any(|g| g.kind == "budget");
    // Nothing waits silently: every task is finished, or waits for the human with a reason, or
    // waits for a dependency that does.
    for t in &tasks {
        let ok = match t.state {
            TaskState::Done | TaskState::Cancelled => true,
            TaskState::Failed | TaskState::Escalated | TaskState::Blocked | TaskState::Paused => {
                t.reason.as_deref().is_some_and(|r| !r.is_empty()) || t.state == TaskState::Paused
            }
            TaskState::Pending => t.depends_on.iter().any(|d| {
                tasks
                    .iter()
                    .any(|u| &u.id == d && u.state != TaskState::Done)
            }),
            // A spent run budget starts nothing new: it says so in its gate.
            TaskState::Ready | TaskState::Approved => hold.is_some() || run_budget_spent,
            TaskState::Review => t.stage == Some(orch_tui::core::domain::FunnelStage::Human),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{} ends {} with no reason a human can act on (reason: {:?}, stage: {:?})",
                t.id, t.state, t.reason, t.stage
            ));
        }
        // An attempt still marked live after the run settled waits for nothing.
        for a in l.attempts(&t.id).unwrap_or_default() {
            if a.state.is_live() {
                return Err(format!(
                    "{}#{} ({}) is still {} after the run settled",
                    a.task, a.n, a.role, a.state
                ));
            }
            let _ = (AttemptState::Starting, Role::Agent);
        }
    }
    // A worktree of a finished task does not outlive the run.
    let w = lock(world);
    let repo = w.git.lock();
    for path in repo.worktrees.keys() {
        let Some(name) = path.rsplit('/').next() else {
            continue;
        };
        let Some((task, _)) = name.rsplit_once('-') else {
            continue;
        };
        if tasks
            .iter()
            .any(|t| t.id == task && t.state == TaskState::Done)
        {
            return Err(format!(
                "the worktree {path} of done task {task} was left behind"
            ));
        }
    }
    // No agent outlives its task: a session kept alive through review was ended when its
    // task merged or was cancelled.
    if let Some(p) = w.procs.values().find(|p| {
        p.alive
            && tasks.iter().any(|t| {
                t.id == p.task && matches!(t.state, TaskState::Done | TaskState::Cancelled)
            })
    }) {
        return Err(format!(
            "{}#{} still runs after its task finished (attempt {})",
            p.task, p.n, p.attempt
        ));
    }
    // No agent of an older supervisor still runs.
    let epoch = w.epoch;
    if let Some(p) = w.procs.values().find(|p| p.alive && p.epoch < epoch) {
        return Err(format!(
            "{}#{}, started by an earlier supervisor, still runs",
            p.task, p.n
        ));
    }
    Ok(())
}

/// A veto window the human stopped (`hold`, to type a veto) never closes by itself: only the
/// human's approve (or a reject, a cancel...) takes the task out of review, never the
/// supervisor's approval.
fn held_windows_wait_for_the_human(l: &Ledger) -> Result<(), String> {
    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut after = 0;
    loop {
        let batch = l.events(after, None, 5000).map_err(|e| e.to_string())?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            let Some(task) = e.task.clone() else { continue };
            match e.kind {
                EventKind::Funnel if e.data["by"] == "human" && e.data["command"] == "hold" => {
                    held.insert(task);
                }
                EventKind::State if e.data["from"] == "review" => {
                    let was_held = held.remove(&task);
                    if was_held && e.actor != Actor::Human {
                        return Err(format!(
                            "{task} left review by the {} ({}) while the human held its veto \
                             window (event {})",
                            e.actor, e.data, e.seq
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}
