//! Cycle detection over task dependencies, and the content hash that versions a task's prompt.
//!
//! Kept apart from plan parsing so the scheduler and `orch-tui add --after` can ask "would this
//! edge close a cycle?" without going through TOML.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::core::plan::TaskSpec;

/// The first dependency cycle among `tasks`, as a path that returns to its start:
/// `["a", "b", "c", "a"]` means a depends on b, b on c, c on a. It starts at the task of the
/// cycle that comes first in `tasks`. Dependencies on unknown ids are ignored here (they are
/// reported as unknown dependencies instead).
pub fn find_cycle(tasks: &[TaskSpec]) -> Option<Vec<String>> {
    find_cycles(tasks).into_iter().next()
}

/// One cycle per group of tasks that depend on each other in a loop (strongly connected
/// component), in file order. Two loops that share a task are one group and give one cycle:
/// breaking it shows the next one on the following run, which keeps the list short.
pub fn find_cycles(tasks: &[TaskSpec]) -> Vec<Vec<String>> {
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, t) in tasks.iter().enumerate() {
        // With duplicate ids the first one wins; duplicates are reported elsewhere.
        index.entry(t.id.as_str()).or_insert(i);
    }
    let adj: Vec<Vec<usize>> = tasks
        .iter()
        .map(|t| {
            t.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    cycles_in(&adj)
        .into_iter()
        .map(|c| c.into_iter().map(|i| tasks[i].id.clone()).collect())
        .collect()
}

/// Cycles of a graph given as adjacency lists, one per non-trivial strongly connected
/// component, each as node indices starting and ending at the component's smallest index.
pub fn cycles_in(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = strongly_connected(adj)
        .into_iter()
        .filter(|comp| comp.len() > 1 || adj[comp[0]].contains(&comp[0]))
        .filter_map(|comp| cycle_through_min(adj, &comp))
        .collect();
    out.sort_by_key(|c| c[0]);
    out
}

/// Tarjan's algorithm, iterative so a long dependency chain cannot overflow the stack.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = adj.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut next = 0;
    let mut comps = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        // Each frame: (node, how many of its edges were followed).
        let mut frames: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(top) = frames.len().checked_sub(1) {
            let (v, i) = frames[top];
            if let Some(&w) = adj[v].get(i) {
                frames[top].1 += 1;
                if w >= n {
                    continue;
                }
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    frames.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comps.push(comp);
            }
        }
    }
    comps
}

/// The shortest cycle through the smallest node of a strongly connected component (breadth-first
/// search inside the component), so the printed path is short and deterministic.
fn cycle_through_min(adj: &[Vec<usize>], comp: &[usize]) -> Option<Vec<usize>> {
    let start = *comp.iter().min()?;
    // A set of the component's own nodes, not a flag per node of the graph: a plan can hold
    // thousands of small loops.
    let member: HashSet<usize> = comp.iter().copied().collect();
    let inside = |x: usize| member.contains(&x);
    let mut prev: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &adj[v] {
            if w == start {
                // Walk back from v to start through the search tree, then close the loop.
                let mut path = vec![v];
                let mut cur = v;
                while cur != start {
                    cur = *prev.get(&cur)?;
                    path.push(cur);
                }
                path.reverse();
                path.push(start);
                return Some(path);
            }
            if inside(w) && w != start && !prev.contains_key(&w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    None
}

/// FNV-1a, 64 bits: a stable, dependency-free fingerprint (not a security hash) used to tell
/// whether a task's prompt or spec changed between plan loads.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The version of a task's prompt or spec: 16 lowercase hex digits of FNV-1a 64.
pub fn content_hash(text: &str) -> String {
    format!("{:016x}", fnv1a64(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn task(id: &str, deps: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.to_string(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            ..TaskSpec::default()
        }
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        assert_eq!(content_hash(""), "cbf29ce484222325");
        assert_eq!(content_hash("a").len(), 16);
    }

    #[test]
    fn finds_a_three_cycle_starting_at_the_first_task() {
        let tasks = [
            task("x", &[]),
            task("b", &["c"]),
            task("c", &["a"]),
            task("a", &["b", "x"]),
        ];
        assert_eq!(
            find_cycle(&tasks),
            Some(vec!["b".into(), "c".into(), "a".into(), "b".into()])
        );
    }

    #[test]
    fn self_dependency_is_a_cycle_and_unknown_deps_are_ignored() {
        assert_eq!(
            find_cycle(&[task("a", &["a"])]),
            Some(vec!["a".into(), "a".into()])
        );
        assert_eq!(find_cycle(&[task("a", &["nope"])]), None);
    }

    #[test]
    fn separate_loops_are_each_reported() {
        let tasks = [
            task("a", &["b"]),
            task("b", &["a"]),
            task("c", &["d"]),
            task("d", &["c"]),
        ];
        assert_eq!(find_cycles(&tasks).len(), 2);
    }

    #[test]
    fn a_long_chain_does_not_overflow() {
        let n = 100_000;
        let adj: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![n - 1] } else { vec![i - 1] })
            .collect();
        let c = cycles_in(&adj);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].len(), n + 1);
    }

    /// A random DAG: node `perm[i]` may depend only on nodes `perm[j]` with j < i, so there is a
    /// topological order, but the task list itself is in shuffled order.
    fn dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<(usize, usize)>)> {
        (2usize..30)
            .prop_flat_map(|n| {
                (
                    Just(n),
                    Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                    proptest::collection::vec((0..n, 0..n), 0..80),
                )
            })
            .prop_map(|(n, perm, pairs)| {
                let mut adj = vec![Vec::new(); n];
                let mut edges = Vec::new();
                for (a, b) in pairs {
                    let (hi, lo) = if a > b {
                        (a, b)
                    } else if b > a {
                        (b, a)
                    } else {
                        continue;
                    };
                    let (from, to) = (perm[hi], perm[lo]);
                    if !adj[from].contains(&to) {
                        adj[from].push(to);
                        edges.push((from, to));
                    }
                }
                (adj, edges)
            })
    }

    fn tasks_of(adj: &[Vec<usize>]) -> Vec<TaskSpec> {
        adj.iter()
            .enumerate()
            .map(|(i, deps)| TaskSpec {
                id: format!("t{i}"),
                depends_on: deps.iter().map(|d| format!("t{d}")).collect(),
                ..TaskSpec::default()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn random_dags_have_no_cycle((adj, _) in dag()) {
            prop_assert_eq!(find_cycle(&tasks_of(&adj)), None);
        }

        #[test]
        fn a_back_edge_always_makes_a_real_cycle((mut adj, edges) in dag(), pick in any::<proptest::sample::Index>()) {
            prop_assume!(!edges.is_empty());
            // from -> to exists; to -> from closes a loop.
            let (from, to) = edges[pick.index(edges.len())];
            adj[to].push(from);
            let tasks = tasks_of(&adj);
            let cycle = find_cycle(&tasks);
            prop_assert!(cycle.is_some());
            let cycle = cycle.unwrap_or_default();
            prop_assert!(cycle.len() >= 3);
            prop_assert_eq!(cycle.first(), cycle.last());
            // Every step is a real dependency.
            for pair in cycle.windows(2) {
                let t = tasks.iter().find(|t| t.id == pair[0]);
                prop_assert!(t.is_some_and(|t| t.depends_on.contains(&pair[1])), "{:?}", cycle);
            }
            // No task repeats inside the loop.
            let mut inner = cycle[..cycle.len() - 1].to_vec();
            inner.sort();
            inner.dedup();
            prop_assert_eq!(inner.len(), cycle.len() - 1);
        }
    }
}
