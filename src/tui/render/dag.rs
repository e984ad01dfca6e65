//! The DAG view: tasks in layers by depth (a task sits one layer below its deepest dependency),
//! states coloured, the critical path marked with `*`.
//!
//! The layout is computed once per ledger refresh ([`layout`], in the refresh job), never per
//! frame: a frame draws only the rows in view, whatever the plan's size.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme;
use crate::core::state::TaskState;
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

/// Depth of every task by index (0 = no dependencies): in topological order, so a chain of
/// 10,000 tasks costs no recursion. A dependency that is not in the list counts as depth 0 (its
/// dependent sits at 1); tasks on a cycle (the ledger refuses them) stay at 0.
pub fn depths(tasks: &[TaskInfo]) -> Vec<usize> {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut depth = vec![0usize; tasks.len()];
    let mut waiting = vec![0usize; tasks.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
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
    let mut ready: Vec<usize> = (0..tasks.len()).filter(|&i| waiting[i] == 0).collect();
    while let Some(j) = ready.pop() {
        for &i in &dependents[j] {
            depth[i] = depth[i].max(depth[j] + 1);
            waiting[i] -= 1;
            if waiting[i] == 0 {
                ready.push(i);
            }
        }
    }
    depth
}

/// The longest chain of unfinished tasks (what bounds the remaining run time); when everything is
/// done, the longest chain overall. Indices, root first.
fn critical_indices(tasks: &[TaskInfo], depth: &[usize]) -> Vec<usize> {
    let any_open = tasks.iter().any(|t| t.state != TaskState::Done);
    let weight = |t: &TaskInfo| usize::from(!any_open || t.state != TaskState::Done);
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    // In depth order every dependency's best chain is known before its dependents'. Ties go
    // to the last candidate (in dependency order, then plan order).
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| depth[i]);
    let mut best: Vec<(usize, Option<usize>)> = vec![(0, None); tasks.len()];
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
    critical_indices(tasks, &depths(tasks))
        .into_iter()
        .map(|i| tasks[i].id.clone())
        .collect()
}

/// The view's rows: each layer's heading, then its tasks in plan order.
pub fn layout(tasks: &[TaskInfo]) -> DagLayout {
    let depth = depths(tasks);
    let critical = critical_indices(tasks, &depth);
    let mut on_path = vec![false; tasks.len()];
    for &i in &critical {
        on_path[i] = true;
    }
    let layers = depth.iter().copied().max().map_or(0, |m| m + 1);
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, &d) in depth.iter().enumerate() {
        by_layer[d].push(i);
    }
    let mut rows = Vec::with_capacity(tasks.len() + layers);
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
        assert_eq!(depths(&tasks), vec![0, 1, 2, 1]);
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
}
