//! Where a task waiting on its dependencies belongs: ready when every dependency is done, blocked
//! while any is failed, cancelled or blocked, pending otherwise. One rule for the supervisor (which
//! applies it to tasks next to a change) and for commands run without one (`settle`).

use std::collections::{BTreeMap, BTreeSet};

use crate::core::state::TaskState;

/// A dependency in one of these keeps its dependents blocked.
pub fn blocks(s: TaskState) -> bool {
    matches!(
        s,
        TaskState::Failed | TaskState::Cancelled | TaskState::Blocked
    )
}

/// The state a waiting task belongs in, and the upstream task that blocks it (if one does).
pub fn target(
    deps: &[String],
    state_of: impl Fn(&str) -> Option<TaskState>,
) -> (TaskState, Option<String>) {
    let mut all_done = true;
    for d in deps {
        match state_of(d) {
            Some(s) if blocks(s) => return (TaskState::Blocked, Some(d.clone())),
            Some(TaskState::Done) => {}
            _ => all_done = false,
        }
    }
    if all_done {
        (TaskState::Ready, None)
    } else {
        (TaskState::Pending, None)
    }
}

/// The one move (if any) that brings a waiting task where it belongs. A ready task stays ready
/// unless blocked (it may be waiting out a retry's backoff); a blocked one goes back to pending
/// first (the state table has no blocked -> ready).
pub fn next_move(
    from: TaskState,
    deps: &[String],
    state_of: impl Fn(&str) -> Option<TaskState>,
) -> Option<(TaskState, Option<String>)> {
    if !matches!(
        from,
        TaskState::Pending | TaskState::Ready | TaskState::Blocked
    ) {
        return None;
    }
    let (to, upstream) = target(deps, state_of);
    let to = match (from, to) {
        (TaskState::Ready, TaskState::Pending) => return None,
        (TaskState::Blocked, TaskState::Ready) => TaskState::Pending,
        (f, t) if f == t => return None,
        (_, t) => t,
    };
    Some((to, upstream))
}

/// Every move, in order, until every waiting task is where it belongs: (task, from, to,
/// upstream that blocks it).
///
/// Rounds over the tasks in id order, each seeing the moves made before it in the same round,
/// until a round moves nothing. A task is looked at again only when it or one of its
/// dependencies moved, so the work follows the moves rather than tasks times rounds (a plan of
/// 10,000 tasks is settled at every load).
pub fn settle(
    states: &BTreeMap<String, TaskState>,
    deps: &BTreeMap<String, Vec<String>>,
) -> Vec<(String, TaskState, TaskState, Option<String>)> {
    let mut now = states.clone();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (task, ds) in deps {
        for d in ds {
            dependents
                .entry(d.as_str())
                .or_default()
                .push(task.as_str());
        }
    }
    let mut moves = Vec::new();
    let mut round: BTreeSet<&str> = states.keys().map(String::as_str).collect();
    // Each round settles at least one more layer; a DAG has at most as many layers as tasks.
    for _ in 0..=now.len() {
        let mut next: BTreeSet<&str> = BTreeSet::new();
        while let Some(id) = round.pop_first() {
            let Some(&from) = now.get(id) else {
                continue;
            };
            let ds = deps.get(id).map(Vec::as_slice).unwrap_or(&[]);
            let Some((to, up)) = next_move(from, ds, |d| now.get(d).copied()) else {
                continue;
            };
            now.insert(id.to_string(), to);
            moves.push((id.to_string(), from, to, up));
            // Itself next round; its dependents later in this round when they come after it
            // in id order (as a full pass would reach them), else next round.
            next.insert(id);
            for &t in dependents.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                if t > id {
                    round.insert(t);
                } else {
                    next.insert(t);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        round = next;
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_dependent_stays_blocked_while_any_dependency_is_cancelled() {
        // x depends on a and b; a was cancelled; b was rejected and is back to ready.
        let states = map(&[
            ("a", TaskState::Cancelled),
            ("b", TaskState::Ready),
            ("x", TaskState::Blocked),
        ]);
        let deps = map(&[("x", vec!["a".to_string(), "b".to_string()])]);
        assert!(settle(&states, &deps).is_empty(), "x stays blocked");
        // a retried: x waits again (pending), and becomes ready once both are done.
        let states = map(&[
            ("a", TaskState::Done),
            ("b", TaskState::Done),
            ("x", TaskState::Blocked),
        ]);
        let moves: Vec<_> = settle(&states, &deps)
            .into_iter()
            .map(|(t, f, to, _)| (t, f, to))
            .collect();
        assert_eq!(
            moves,
            vec![
                ("x".into(), TaskState::Blocked, TaskState::Pending),
                ("x".into(), TaskState::Pending, TaskState::Ready)
            ]
        );
    }

    /// The reference: every task looked at in every round.
    fn settle_by_full_rounds(
        states: &BTreeMap<String, TaskState>,
        deps: &BTreeMap<String, Vec<String>>,
    ) -> Vec<(String, TaskState, TaskState, Option<String>)> {
        let mut now = states.clone();
        let mut moves = Vec::new();
        for _ in 0..=now.len() {
            let mut changed = false;
            let ids: Vec<String> = now.keys().cloned().collect();
            for id in ids {
                let from = now[&id];
                let ds = deps.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                if let Some((to, up)) = next_move(from, ds, |d| now.get(d).copied()) {
                    now.insert(id.clone(), to);
                    moves.push((id, from, to, up));
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        moves
    }

    proptest::proptest! {
        /// Same moves in the same order as looking at every task in every round, on random
        /// DAGs whose ids do not follow the dependency order (so a chain takes many rounds).
        #[test]
        fn settle_makes_the_moves_full_rounds_make(
            picks in proptest::collection::vec((0usize..7, proptest::collection::vec(0usize..40, 0..4)), 1..40),
        ) {
            let all = [
                TaskState::Pending, TaskState::Ready, TaskState::Blocked, TaskState::Done,
                TaskState::Failed, TaskState::Cancelled, TaskState::Working,
            ];
            let n = picks.len();
            // Task i may depend only on tasks after it; ids are scrambled, so a dependency
            // often sorts after its dependents and a chain takes several rounds.
            let id = |i: usize| format!("t{:03}", (i * 37) % 101);
            let mut states = BTreeMap::new();
            let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (i, (s, ds)) in picks.iter().enumerate() {
                states.insert(id(i), all[*s]);
                let mut list: Vec<String> = ds.iter().filter(|&&d| d > i && d < n).map(|&d| id(d)).collect();
                list.sort();
                list.dedup();
                deps.insert(id(i), list);
            }
            proptest::prop_assert_eq!(settle(&states, &deps), settle_by_full_rounds(&states, &deps));
        }
    }

    #[test]
    fn a_long_chain_settles_in_one_go() {
        // t0 depends on t1, ..., t9999 on nothing and failed: blocked all the way down, with
        // the ids against the dependency order.
        let n = 10_000;
        let id = |i: usize| format!("t{i:05}");
        let mut states: BTreeMap<String, TaskState> =
            (0..n).map(|i| (id(i), TaskState::Pending)).collect();
        states.insert(id(n - 1), TaskState::Failed);
        let deps: BTreeMap<String, Vec<String>> =
            (0..n - 1).map(|i| (id(i), vec![id(i + 1)])).collect();
        let moves = settle(&states, &deps);
        assert_eq!(moves.len(), n - 1);
        assert!(moves.iter().all(|m| m.2 == TaskState::Blocked));
    }

    #[test]
    fn blocking_runs_down_the_chain() {
        let states = map(&[
            ("a", TaskState::Failed),
            ("b", TaskState::Pending),
            ("c", TaskState::Pending),
        ]);
        let deps = map(&[("b", vec!["a".to_string()]), ("c", vec!["b".to_string()])]);
        let blocked: Vec<_> = settle(&states, &deps)
            .into_iter()
            .filter(|m| m.2 == TaskState::Blocked)
            .map(|m| m.0)
            .collect();
        assert_eq!(blocked, ["b", "c"]);
    }
}
