//! The DAG view: tasks in layers by depth (a task sits one layer below its deepest dependency),
//! states coloured, the critical path marked with `*`.
//!
//! The layout is computed once per ledger refresh ([`layout`], in the refresh job), never per
//! frame: a frame draws only the rows in view, whatever the plan's size.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme;
use crate::core::state::TaskState;
use crate::read::IdHasher;
use crate::tui::state::{TaskInfo, ViewState};

/// One row of the DAG view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DagRow {
    /// The heading of a layer.
    Layer(usize),
    /// A task (its index in `ViewState::tasks`), and whether it is on the critical path.
    Task { index: usize, critical: bool },
}

/// The DAG view's rows, in order, and the critical path's length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DagLayout {
    pub rows: Vec<DagRow>,
    pub critical_len: usize,
}

/// Each task's dependencies as indices into the list, resolved once per refresh: the layout
/// looked every id up in two SipHash maps and sorted the tasks by depth, 1.5 ms of a 20 ms
/// refresh at 10,000 tasks; 0.7 ms now (docs/benchmarks.md).
struct Graph {
    /// Task `i`'s dependencies in the list, in its dependency order: `deps[starts[i]..starts[i + 1]]`.
    deps: Vec<usize>,
    starts: Vec<usize>,
    /// Task `i` names a dependency that is not in the list.
    unknown_dep: Vec<bool>,
}

impl Graph {
    fn of(tasks: &[TaskInfo]) -> Graph {
        let index: HashMap<&str, usize, BuildHasherDefault<IdHasher>> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        let mut g = Graph {
            deps: Vec::with_capacity(tasks.iter().map(|t| t.deps.len()).sum()),
            starts: Vec::with_capacity(tasks.len() + 1),
            unknown_dep: vec![false; tasks.len()],
        };
        for (i, t) in tasks.iter().enumerate() {
            g.starts.push(g.deps.len());
            for d in &t.deps {
                match index.get(d.as_str()) {
                    Some(&j) => g.deps.push(j),
                    None => g.unknown_dep[i] = true,
                }
            }
        }
        g.starts.push(g.deps.len());
        g
    }

    fn deps_of(&self, i: usize) -> &[usize] {
        &self.deps[self.starts[i]..self.starts[i + 1]]
    }

    /// Depth of every task by index (0 = no dependencies): in topological order, so a chain
    /// of 10,000 tasks costs no recursion. A dependency that is not in the list counts as
    /// depth 0 (its dependent sits at 1); tasks on a cycle (the ledger refuses them) stay at 0.
    fn depths(&self) -> Vec<usize> {
        let n = self.unknown_dep.len();
        let mut depth: Vec<usize> = self.unknown_dep.iter().map(|&u| usize::from(u)).collect();
        let mut waiting = vec![0usize; n];
        // Who depends on whom, the other way round, in one array as `deps` is.
        let mut counts = vec![0usize; n + 1];
        for &j in &self.deps {
            counts[j + 1] += 1;
        }
        for j in 0..n {
            counts[j + 1] += counts[j];
        }
        let mut next = counts.clone();
        let mut dependents = vec![0usize; self.deps.len()];
        for (i, waits) in waiting.iter_mut().enumerate() {
            for &j in self.deps_of(i) {
                *waits += 1;
                dependents[next[j]] = i;
                next[j] += 1;
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        while let Some(j) = ready.pop() {
            for &i in &dependents[counts[j]..counts[j + 1]] {
                depth[i] = depth[i].max(depth[j] + 1);
                waiting[i] -= 1;
                if waiting[i] == 0 {
                    ready.push(i);
                }
            }
        }
        depth
    }
}

/// The tasks by layer (depth), each layer in plan order.
fn by_layer(depth: &[usize]) -> Vec<Vec<usize>> {
    let layers = depth.iter().copied().max().map_or(0, |m| m + 1);
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, &d) in depth.iter().enumerate() {
        by_layer[d].push(i);
    }
    by_layer
}

/// The longest chain of unfinished tasks (what bounds the remaining run time); when everything is
/// done, the longest chain overall. Indices, root first. `layers`: [`by_layer`] of `depth`.
fn critical_indices(
    tasks: &[TaskInfo],
    g: &Graph,
    depth: &[usize],
    layers: &[Vec<usize>],
) -> Vec<usize> {
    let any_open = tasks.iter().any(|t| t.state != TaskState::Done);
    let weight = |t: &TaskInfo| usize::from(!any_open || t.state != TaskState::Done);
    // Layer by layer every dependency's best chain is known before its dependents'. Ties go
    // to the last candidate (in dependency order, then plan order).
    let mut best: Vec<(usize, Option<usize>)> = vec![(0, None); tasks.len()];
    for &i in layers.iter().flatten() {
        let prev = g
            .deps_of(i)
            .iter()
            .copied()
            .filter(|&j| depth[j] < depth[i])
            .max_by_key(|&j| best[j].0);
        best[i] = match prev {
            Some(j) => (best[j].0 + weight(&tasks[i]), Some(j)),
            None => (weight(&tasks[i]), None),
        };
    }
    let Some(end) = (0..tasks.len())
        .filter(|&i| best[i].0 > 0)
        .max_by_key(|&i| best[i].0)
    else {
        return Vec::new();
    };
    let mut path = vec![end];
    let mut cur = end;
    while let Some(p) = best[cur].1 {
        if path.len() > tasks.len() {
            break;
        }
        path.push(p);
        cur = p;
    }
    path.reverse();
    path
}

/// The critical path's task ids, root first.
pub fn critical_path(tasks: &[TaskInfo]) -> Vec<String> {
    let g = Graph::of(tasks);
    let depth = g.depths();
    critical_indices(tasks, &g, &depth, &by_layer(&depth))
        .into_iter()
        .map(|i| tasks[i].id.clone())
        .collect()
}

/// The view's rows: each layer's heading, then its tasks in plan order.
pub fn layout(tasks: &[TaskInfo]) -> DagLayout {
    let g = Graph::of(tasks);
    let depth = g.depths();
    let by_layer = by_layer(&depth);
    let critical = critical_indices(tasks, &g, &depth, &by_layer);
    let mut on_path = vec![false; tasks.len()];
    for &i in &critical {
        on_path[i] = true;
    }
    let mut rows = Vec::with_capacity(tasks.len() + by_layer.len());
    for (layer, members) in by_layer.iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        rows.push(DagRow::Layer(layer));
        rows.extend(members.iter().map(|&index| DagRow::Task {
            index,
            critical: on_path[index],
        }));
    }
    DagLayout {
        rows,
        critical_len: critical.len(),
    }
}

pub fn render(s: &ViewState, f: &mut Frame, area: Rect) {
    let block = theme::block(
        s,
        &format!("dag · critical path {} tasks (*)", s.dag.critical_len),
        false,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    if s.dag.rows.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("no tasks", theme::dim(s))),
            inner,
        );
        return;
    }
    let start = s.page_scroll.min(s.dag.rows.len().saturating_sub(1));
    let lines: Vec<Line> = s.dag.rows[start..]
        .iter()
        .take(inner.height as usize)
        .filter_map(|row| match *row {
            DagRow::Layer(layer) => Some(Line::styled(
                format!("layer {layer}"),
                theme::dim(s).add_modifier(Modifier::BOLD),
            )),
            DagRow::Task { index, critical } => {
                s.tasks.get(index).map(|t| task_line(s, t, critical))
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn task_line(s: &ViewState, t: &TaskInfo, on_path: bool) -> Line<'static> {
    let mut spans = vec![
        Span::styled(if on_path { " * " } else { "   " }, theme::bad(s)),
        Span::styled(
            format!("{} {}", theme::state_glyph(t.state), t.id),
            if on_path {
                theme::state_style(s, t.state).add_modifier(Modifier::BOLD)
            } else {
                theme::state_style(s, t.state)
            },
        ),
    ];
    if !t.deps.is_empty() {
        spans.push(Span::styled(
            format!("  ← {}", t.deps.join(", ")),
            theme::dim(s),
        ));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, state: TaskState, deps: &[&str]) -> TaskInfo {
        TaskInfo {
            id: id.into(),
            title: String::new(),
            state,
            deps: deps.iter().map(|d| d.to_string()).collect(),
            agent: None,
            reason: None,
            stage: None,
            stage_until_ms: None,
        }
    }

    #[test]
    fn layers_and_the_critical_path_of_unfinished_work() {
        let tasks = vec![
            t("a", TaskState::Done, &[]),
            t("b", TaskState::Working, &["a"]),
            t("c", TaskState::Pending, &["b"]),
            t("d", TaskState::Pending, &["a", "ghost"]),
        ];
        assert_eq!(Graph::of(&tasks).depths(), vec![0, 1, 2, 1]);
        assert_eq!(critical_path(&tasks), vec!["a", "b", "c"]);
        let l = layout(&tasks);
        assert_eq!(l.critical_len, 3);
        assert_eq!(
            l.rows,
            vec![
                DagRow::Layer(0),
                DagRow::Task {
                    index: 0,
                    critical: true
                },
                DagRow::Layer(1),
                DagRow::Task {
                    index: 1,
                    critical: true
                },
                DagRow::Task {
                    index: 3,
                    critical: false
                },
                DagRow::Layer(2),
                DagRow::Task {
                    index: 2,
                    critical: true
                },
            ]
        );
    }

    #[test]
    fn a_chain_of_ten_thousand_needs_no_deep_recursion() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
        let tasks: Vec<TaskInfo> = (0..10_000)
            .map(|i| {
                let deps: Vec<&str> = if i == 0 {
                    vec![]
                } else {
                    vec![ids[i - 1].as_str()]
                };
                t(&ids[i], TaskState::Pending, &deps)
            })
            .collect();
        let l = layout(&tasks);
        assert_eq!(l.critical_len, 10_000);
        assert_eq!(l.rows.len(), 20_000);
    }

    /// The layout as it was computed before dependencies were resolved to indices once (two
    /// maps by id, a stable sort by depth): the reference the faster one must equal.
    fn layout_by_ids(tasks: &[TaskInfo]) -> (Vec<usize>, Vec<usize>) {
        let index: HashMap<&str, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        let n = tasks.len();
        let mut depth = vec![0usize; n];
        let mut waiting = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, t) in tasks.iter().enumerate() {
            for d in &t.deps {
                match index.get(d.as_str()) {
                    Some(&j) => {
                        waiting[i] += 1;
                        dependents[j].push(i);
                    }
                    None => depth[i] = depth[i].max(1),
                }
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        while let Some(j) = ready.pop() {
            for &i in &dependents[j] {
                depth[i] = depth[i].max(depth[j] + 1);
                waiting[i] -= 1;
                if waiting[i] == 0 {
                    ready.push(i);
                }
            }
        }
        let any_open = tasks.iter().any(|t| t.state != TaskState::Done);
        let weight = |t: &TaskInfo| usize::from(!any_open || t.state != TaskState::Done);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| depth[i]);
        let mut best: Vec<(usize, Option<usize>)> = vec![(0, None); n];
        for &i in &order {
            let prev = tasks[i]
                .deps
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .filter(|&j| depth[j] < depth[i])
                .max_by_key(|&j| best[j].0);
            best[i] = match prev {
                Some(j) => (best[j].0 + weight(&tasks[i]), Some(j)),
                None => (weight(&tasks[i]), None),
            };
        }
        let mut path = Vec::new();
        if let Some(end) = (0..n).filter(|&i| best[i].0 > 0).max_by_key(|&i| best[i].0) {
            path.push(end);
            let mut cur = end;
            while let Some(p) = best[cur].1 {
                path.push(p);
                cur = p;
            }
            path.reverse();
        }
        (depth, path)
    }

    #[test]
    fn resolving_dependencies_once_lays_out_as_looking_them_up_by_id_did() {
        let states = [
            TaskState::Done,
            TaskState::Done,
            TaskState::Working,
            TaskState::Pending,
            TaskState::Failed,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        for round in 0..200 {
            let n = 1 + next(60);
            let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
            let tasks: Vec<TaskInfo> = (0..n)
                .map(|i| {
                    // Earlier tasks only (a DAG), with repeats, ties, unknown ids; every
                    // round also some all-done plans (the path over everything).
                    let mut deps: Vec<String> = (0..next(4))
                        .filter(|_| i > 0)
                        .map(|_| ids[next(i)].clone())
                        .collect();
                    if next(10) == 0 {
                        deps.push("ghost".into());
                    }
                    let state = if round % 5 == 0 {
                        TaskState::Done
                    } else {
                        states[next(states.len())]
                    };
                    let refs: Vec<&str> = deps.iter().map(String::as_str).collect();
                    t(&ids[i], state, &refs)
                })
                .collect();
            let (depth, path) = layout_by_ids(&tasks);
            assert_eq!(Graph::of(&tasks).depths(), depth, "round {round}");
            let l = layout(&tasks);
            assert_eq!(l.critical_len, path.len(), "round {round}");
            let marked: Vec<usize> = l
                .rows
                .iter()
                .filter_map(|r| match *r {
                    DagRow::Task {
                        index,
                        critical: true,
                    } => Some(index),
                    _ => None,
                })
                .collect();
            let mut on_path = path.clone();
            on_path.sort_by_key(|&i| (depth[i], i));
            assert_eq!(marked, on_path, "round {round}");
            let ids_on_path: Vec<String> = path.iter().map(|&i| tasks[i].id.clone()).collect();
            assert_eq!(critical_path(&tasks), ids_on_path, "round {round}");
        }
    }
}
