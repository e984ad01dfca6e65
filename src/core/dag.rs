//! Where a task waiting on its dependencies belongs: ready when every dependency is done, blocked
//! while any is failed, cancelled or blocked, pending otherwise. One rule for the supervisor (which
//! applies it to tasks next to a change) and for commands run without one (`settle`).

use std::collections::BTreeMap;

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
pub fn settle(
    states: &BTreeMap<String, TaskState>,
    deps: &BTreeMap<String, Vec<String>>,
) -> Vec<(String, TaskState, TaskState, Option<String>)> {
    let mut now = states.clone();
    let mut moves = Vec::new();
    // Each round settles at least one more layer; a DAG has at most as many layers as tasks.
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
