//! The DAG view: tasks in layers by depth (a task sits one layer below its deepest dependency),
//! states coloured, the critical path marked with `*`.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme;
use crate::core::state::TaskState;
use crate::tui::state::{TaskInfo, ViewState};

/// Depth of every task (0 = no dependencies). Unknown dependencies count as depth 0; a cycle
/// (the ledger refuses them, but be safe) stops at the guard.
pub fn depths(tasks: &[TaskInfo]) -> HashMap<String, usize> {
    let by_id: HashMap<&str, &TaskInfo> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut memo: HashMap<String, usize> = HashMap::new();
    fn depth(
        id: &str,
        by_id: &HashMap<&str, &TaskInfo>,
        memo: &mut HashMap<String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(d) = memo.get(id) {
            return *d;
        }
        let d = match by_id.get(id) {
            Some(t) if guard > 0 => t
                .deps
                .iter()
                .map(|p| depth(p, by_id, memo, guard - 1) + 1)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        memo.insert(id.to_string(), d);
        d
    }
    for t in tasks {
        depth(&t.id, &by_id, &mut memo, tasks.len());
    }
    memo
}

/// The longest chain of unfinished tasks (what bounds the remaining run time); when everything is
/// done, the longest chain overall. Returned root first.
pub fn critical_path(tasks: &[TaskInfo]) -> Vec<String> {
    let any_open = tasks.iter().any(|t| t.state != TaskState::Done);
    let weight = |t: &TaskInfo| usize::from(!any_open || t.state != TaskState::Done);
    let by_id: HashMap<&str, &TaskInfo> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let d = depths(tasks);
    // Process in depth order so every dependency's best chain is known first.
    let mut order: Vec<&TaskInfo> = tasks.iter().collect();
    order.sort_by_key(|t| d.get(&t.id).copied().unwrap_or(0));
    let mut best: HashMap<&str, (usize, Option<&str>)> = HashMap::new();
    for t in &order {
        let prev = t
            .deps
            .iter()
            .filter_map(|p| best.get(p.as_str()).map(|(len, _)| (*len, p.as_str())))
            .max_by_key(|(len, _)| *len);
        let (len, from) = match prev {
            Some((l, p)) => (l + weight(t), Some(p)),
            None => (weight(t), None),
        };
        best.insert(t.id.as_str(), (len, from));
    }
    let Some((mut cur, _)) = tasks
        .iter()
        .map(|t| (t.id.as_str(), best.get(t.id.as_str()).map_or(0, |b| b.0)))
        .max_by_key(|(_, l)| *l)
        .filter(|(_, l)| *l > 0)
    else {
        return Vec::new();
    };
    let mut path = vec![cur.to_string()];
    while let Some((_, Some(p))) = best.get(cur) {
        if !by_id.contains_key(p) || path.len() > tasks.len() {
            break;
        }
        path.push(p.to_string());
        cur = p;
    }
    path.reverse();
    path
}

pub fn render(s: &ViewState, f: &mut Frame, area: Rect) {
    let critical = critical_path(&s.tasks);
    let block = theme::block(
        s,
        &format!("dag · critical path {} tasks (*)", critical.len()),
        false,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let d = depths(&s.tasks);
    let max = d.values().copied().max().unwrap_or(0);
    let mut lines = Vec::new();
    for layer in 0..=max {
        let in_layer: Vec<&TaskInfo> = s
            .tasks
            .iter()
            .filter(|t| d.get(&t.id) == Some(&layer))
            .collect();
        if in_layer.is_empty() {
            continue;
        }
        lines.push(Line::styled(
            format!("layer {layer}"),
            theme::dim(s).add_modifier(Modifier::BOLD),
        ));
        for t in in_layer {
            let on_path = critical.contains(&t.id);
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
            lines.push(Line::from(spans));
        }
    }
    if lines.is_empty() {
        lines.push(Line::styled("no tasks", theme::dim(s)));
    }
    let scroll = s.page_scroll.min(lines.len().saturating_sub(1)) as u16;
    f.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}
