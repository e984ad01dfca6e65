//! The list views: logs, inbox, task detail, help.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{human_duration, theme};
use crate::agent::record::text::LineKind;
use crate::tui::state::{InboxKind, ViewState};

pub fn render_logs(s: &ViewState, f: &mut Frame, area: Rect) {
    let lines = s.visible_log_lines();
    let mut title = format!("logs {}", lines.len());
    if let Some(t) = &s.logs.filter {
        title.push_str(&format!(" · filter {t}"));
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
    // As wide as the longest tag in view (a third of the width at most), so `task#12 review`
    // is never cut while shorter tags line up.
    let width = lines
        .iter()
        .map(|l| l.tag.chars().count())
        .max()
        .unwrap_or(0)
        .min((inner.width / 3) as usize);
    let hit = theme::warn(s).add_modifier(Modifier::REVERSED);
    let out: Vec<Line> = lines[start..end]
        .iter()
        .map(|l| {
            let mut spans = Vec::new();
            if !l.clock.is_empty() {
                spans.push(Span::styled(format!("{} ", l.clock), theme::dim(s)));
            }
            spans.push(Span::styled(
                format!("{:<width$} │ ", truncate(&l.tag, width)),
                theme::task_colour(s, &l.task),
            ));
            let style = match l.kind {
                LineKind::Output => ratatui::style::Style::default(),
                LineKind::Screen => theme::dim(s),
                LineKind::Note => theme::dim(s).add_modifier(Modifier::ITALIC),
            };
            let text = match l.kind {
                LineKind::Note => format!("── {} ──", l.text),
                _ => l.text.clone(),
            };
            match s.logs.search_re.as_ref().filter(|re| re.is_match(&text)) {
                Some(re) => {
                    let mut at = 0;
                    for m in re.find_iter(&text).filter(|m| !m.is_empty()) {
                        spans.push(Span::styled(text[at..m.start()].to_string(), style));
                        spans.push(Span::styled(m.as_str().to_string(), hit));
                        at = m.end();
                    }
                    spans.push(Span::styled(text[at..].to_string(), style));
                }
                None => spans.push(Span::styled(text, style)),
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
    let approvals = s.approval_count();
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
            let style = match &item.kind {
                InboxKind::Approval(_) => theme::good(s),
                InboxKind::Held
                | InboxKind::Sync
                | InboxKind::BudgetExhausted { .. }
                | InboxKind::Failed { .. } => theme::bad(s),
                InboxKind::Limited { .. }
                | InboxKind::Permission { .. }
                | InboxKind::Dialog
                | InboxKind::Question
                | InboxKind::IdleTurn
                | InboxKind::Escalated
                | InboxKind::BudgetWarning { .. } => theme::warn(s),
            };
            let text = match &item.kind {
                InboxKind::Approval(a) => super::funnel::summary(s, a),
                InboxKind::BudgetExhausted { budgets } => {
                    let mut t = item.text.clone();
                    for b in budgets {
                        t.push_str(&format!(" · {}", b.describe()));
                    }
                    t
                }
                InboxKind::Limited { profile, until_ms } => match until_ms {
                    Some(u) => format!(
                        "{} · {profile} resumes in {}",
                        item.text,
                        super::funnel::remaining(s, *u)
                    ),
                    None => format!("{} · {profile}", item.text),
                },
                InboxKind::Held
                | InboxKind::Sync
                | InboxKind::Permission { .. }
                | InboxKind::Dialog
                | InboxKind::Question
                | InboxKind::IdleTurn
                | InboxKind::Escalated
                | InboxKind::Failed { .. }
                | InboxKind::BudgetWarning { .. } => item.text.clone(),
            };
            let line = Line::from(vec![
                Span::styled(format!("{:<10} ", item.kind.title()), style),
                Span::styled(
                    format!("{} ", item.task.as_deref().unwrap_or("(run)")),
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
        super::funnel::render_context(s, item.task.as_deref().unwrap_or(""), a, f, ctx);
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
    if !d.records.is_empty() {
        lines.push(Line::styled("record", bold));
        lines.extend(d.records.iter().map(|r| Line::raw(format!("  {r}"))));
    }
    if s.detail_raw {
        lines.push(Line::styled(
            format!("events {} (raw · J: as a history)", d.events.len()),
            bold,
        ));
        lines.extend(
            d.events
                .iter()
                .map(|e| Line::styled(format!("  {e}"), theme::dim(s))),
        );
    } else {
        lines.push(Line::styled("history (J: the raw events)", bold));
        lines.extend(d.history.iter().map(|e| {
            let style = if e.contains("  you ") {
                theme::warn(s)
            } else {
                ratatui::style::Style::default()
            };
            Line::styled(format!("  {e}"), style)
        }));
    }
    let agent = agent_record(s, d);
    // Wide: the agent's conversation and screen log beside the details; else below them.
    let (main, side) = if inner.width >= 140 && !agent.is_empty() {
        let [a, b] = Layout::horizontal([Constraint::Percentage(55), Constraint::Min(1)])
            .spacing(1)
            .areas(inner);
        (a, Some(b))
    } else {
        lines.extend(agent.clone());
        (inner, None)
    };
    let scroll = d.scroll.min(lines.len().saturating_sub(1)) as u16;
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        main,
    );
    if let Some(side) = side {
        let scroll = d.scroll.min(agent.len().saturating_sub(1)) as u16;
        f.render_widget(
            Paragraph::new(agent)
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0)),
            side,
        );
    }
}

/// The newest attempt as its agent recorded it (the conversation) and as the screen showed
/// it (the end of its screen log).
fn agent_record(s: &ViewState, d: &crate::tui::state::DetailInfo) -> Vec<Line<'static>> {
    use crate::tui::state::TranscriptKind as K;
    let bold = ratatui::style::Style::default().add_modifier(Modifier::BOLD);
    let mut out = Vec::new();
    if !d.conversation.is_empty() {
        out.push(Line::styled(
            format!(
                "conversation ({})",
                d.conversation_path.as_deref().unwrap_or("transcript")
            ),
            bold,
        ));
        out.extend(d.conversation.iter().map(|(k, t)| {
            let style = match k {
                K::User => theme::warn(s),
                K::Assistant => ratatui::style::Style::default(),
                K::Thinking => theme::dim(s).add_modifier(Modifier::ITALIC),
                K::Tool => theme::dim(s),
                K::Error => theme::bad(s),
            };
            Line::styled(t.clone(), style)
        }));
    }
    if !d.screen_tail.is_empty() {
        out.push(Line::styled("screen log (last lines)", bold));
        out.extend(d.screen_tail.iter().map(|l| Line::raw(format!("  {l}"))));
    }
    out
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
    // Descriptions wrap under themselves rather than being cut at the edge.
    let indent = kw + nw + 4;
    let room = usize::from(inner.width).saturating_sub(indent).max(20);
    let mut lines: Vec<Line> = Vec::new();
    for (k, name, desc) in &s.help {
        let mut parts = wrap_words(desc, room).into_iter();
        lines.push(Line::from(vec![
            Span::styled(format!("{k:<kw$}  "), theme::warn(s)),
            Span::styled(format!("{name:<nw$}  "), theme::dim(s)),
            Span::raw(parts.next().unwrap_or_default()),
        ]));
        lines.extend(parts.map(|p| Line::raw(format!("{:indent$}{p}", ""))));
    }
    f.render_widget(
        Paragraph::new(lines).scroll((s.page_scroll.min(u16::MAX as usize) as u16, 0)),
        inner,
    );
}

/// `text` in lines of at most `width` characters, broken between words (a longer word is cut).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}
