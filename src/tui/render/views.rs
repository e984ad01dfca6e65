//! The list views: logs, inbox, task detail, help.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{human_duration, theme};
use crate::tui::state::{InboxKind, ViewState};

pub fn render_logs(s: &ViewState, f: &mut Frame, area: Rect) {
    let lines = s.visible_log_lines();
    let mut title = format!("logs {}", lines.len());
    if let Some(t) = &s.logs.filter {
        title.push_str(&format!(" · task {t}"));
    }
    if let Some(q) = &s.logs.search {
        title.push_str(&format!(" · /{q}"));
    }
    title.push_str(if s.logs.follow {
        " · following"
    } else {
        " · paused"
    });
    let block = theme::block(s, &title, false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = inner.height as usize;
    let scroll = if s.logs.follow { 0 } else { s.logs.scroll };
    let end = lines.len().saturating_sub(scroll);
    let start = end.saturating_sub(h);
    let width = lines
        .iter()
        .map(|l| l.task.chars().count())
        .max()
        .unwrap_or(0)
        .min(16);
    let out: Vec<Line> = lines[start..end]
        .iter()
        .map(|l| {
            let mut spans = vec![Span::styled(
                format!("{:<width$} │ ", truncate(&l.task, width)),
                theme::task_colour(s, &l.task),
            )];
            match s.logs.search.as_deref().filter(|q| !q.is_empty()) {
                Some(q) if l.text.contains(q) => {
                    // Highlight every match.
                    let mut rest = l.text.as_str();
                    while let Some(i) = rest.find(q) {
                        spans.push(Span::raw(rest[..i].to_string()));
                        spans.push(Span::styled(
                            q.to_string(),
                            theme::warn(s).add_modifier(Modifier::REVERSED),
                        ));
                        rest = &rest[i + q.len()..];
                    }
                    spans.push(Span::raw(rest.to_string()));
                }
                _ => spans.push(Span::raw(l.text.clone())),
            }
            Line::from(spans)
        })
        .collect();
    if out.is_empty() {
        f.render_widget(
            Paragraph::new("no log lines yet").style(theme::dim(s)),
            inner,
        );
    } else {
        f.render_widget(Paragraph::new(out), inner);
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Rows inside the inbox list's box in a body `height` rows high: all of it, unless the
/// selected item is an approval, whose context takes the space below the list.
pub fn inbox_list_rows(s: &ViewState, height: u16) -> u16 {
    let inner = height.saturating_sub(2);
    match s.inbox.get(s.selected_inbox).map(|i| &i.kind) {
        Some(InboxKind::Approval(_)) => (s.inbox.len() as u16).clamp(1, (inner / 3).max(1)),
        _ => inner,
    }
}

pub fn render_inbox(s: &ViewState, f: &mut Frame, area: Rect) {
    let list_h = inbox_list_rows(s, area.height) + 2;
    let (area, context) = if list_h < area.height {
        let [a, b] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(1)]).areas(area);
        (a, Some(b))
    } else {
        (area, None)
    };
    let approvals = s.approvals().len();
    let mut title = format!("inbox {}", s.inbox.len());
    if approvals > 0 {
        title.push_str(&format!(" · {approvals} approval(s): A approves all"));
    }
    let block = theme::block(s, &title, false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if s.inbox.is_empty() {
        f.render_widget(
            Paragraph::new("nothing waits for you").style(theme::dim(s)),
            inner,
        );
        return;
    }
    let h = inner.height as usize;
    let start = super::list_start(s.selected_inbox, h);
    let lines: Vec<Line> = s
        .inbox
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(i, item)| {
            let (label, style) = match &item.kind {
                InboxKind::Question => ("question ", theme::warn(s)),
                InboxKind::Approval(_) => ("approval ", theme::good(s)),
                InboxKind::Escalated => ("escalated", theme::warn(s)),
                InboxKind::Failed => ("failed   ", theme::bad(s)),
            };
            let text = match &item.kind {
                InboxKind::Approval(a) => super::funnel::summary(s, a),
                _ => item.text.clone(),
            };
            let line = Line::from(vec![
                Span::styled(format!("{label} "), style),
                Span::styled(
                    format!("{} ", item.task),
                    ratatui::style::Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(text),
            ]);
            if i == s.selected_inbox {
                line.style(theme::selected())
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
    if let (Some(ctx), Some(item)) = (context, s.inbox.get(s.selected_inbox))
        && let InboxKind::Approval(a) = &item.kind
    {
        super::funnel::render_context(s, &item.task, a, f, ctx);
    }
}

pub fn render_detail(s: &ViewState, f: &mut Frame, area: Rect) {
    let Some(d) = &s.detail else {
        f.render_widget(
            Paragraph::new("no task selected").style(theme::dim(s)),
            area,
        );
        return;
    };
    let block = theme::block(s, &format!("task {}", d.task), false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let bold = ratatui::style::Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                format!("{} {} ", theme::state_glyph(d.state), d.state),
                theme::state_style(s, d.state),
            ),
            Span::styled(d.title.clone(), bold),
        ]),
        Line::raw(format!(
            "depends on: {}",
            if d.deps.is_empty() {
                "nothing".to_string()
            } else {
                d.deps.join(", ")
            }
        )),
    ];
    if let Some(r) = &d.reason {
        lines.push(Line::styled(format!("reason: {r}"), theme::warn(s)));
    }
    if let Some(n) = &d.note {
        lines.push(Line::raw(format!("note: {n}")));
    }
    lines.push(Line::styled("prompt", bold));
    lines.extend(d.prompt.lines().map(|l| Line::raw(format!("  {l}"))));
    lines.push(Line::styled(format!("attempts {}", d.attempts.len()), bold));
    for a in &d.attempts {
        lines.push(Line::raw(format!(
            "  #{} {} {} {} {}",
            a.n,
            a.profile,
            a.state,
            a.duration.map(human_duration).unwrap_or_else(|| "-".into()),
            a.outcome
        )));
    }
    if !d.funnel.is_empty() {
        lines.push(Line::styled(format!("funnel {}", d.funnel.len()), bold));
        lines.extend(d.funnel.iter().map(|l| {
            let style = if l.contains('✗') || l.contains("changes") || l.contains("reject") {
                theme::bad(s)
            } else if l.contains('✓') || l.contains("approve") {
                theme::good(s)
            } else {
                ratatui::style::Style::default()
            };
            Line::styled(format!("  {l}"), style)
        }));
    }
    lines.push(Line::styled(format!("events {}", d.events.len()), bold));
    lines.extend(
        d.events
            .iter()
            .map(|e| Line::styled(format!("  {e}"), theme::dim(s))),
    );
    let scroll = d.scroll.min(lines.len().saturating_sub(1)) as u16;
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        inner,
    );
}

pub fn render_help(s: &ViewState, f: &mut Frame, area: Rect) {
    let block = theme::block(
        s,
        "help: keys (override with [ui] keymap in .orch/config.toml)",
        false,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let kw = s
        .help
        .iter()
        .map(|h| h.0.chars().count())
        .max()
        .unwrap_or(0);
    let nw = s
        .help
        .iter()
        .map(|h| h.1.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = s
        .help
        .iter()
        .map(|(k, name, desc)| {
            Line::from(vec![
                Span::styled(format!("{k:<kw$}  "), theme::warn(s)),
                Span::styled(format!("{name:<nw$}  "), theme::dim(s)),
                Span::raw(desc.clone()),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).scroll((s.page_scroll.min(u16::MAX as usize) as u16, 0)),
        inner,
    );
}
