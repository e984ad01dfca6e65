//! The dashboard (task list beside one pane per live agent) and the focus view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{human_count, human_duration, term, theme};
use crate::tui::state::{AgentInfo, ViewState};

/// Panes smaller than this show only their header; below it we show fewer panes.
const MIN_PANE_HEIGHT: u16 = 6;

/// The task list's width in a body of `width` columns (shared with mouse hit-testing). It
/// depends on the width alone, so the list holds still while agents start and stop.
pub fn list_width(width: u16) -> u16 {
    if width < 80 {
        width
    } else if width >= 120 {
        44
    } else {
        32
    }
}

/// The first task shown in a list `rows` high (the selection stays visible).
pub fn list_start(selected: usize, rows: usize) -> usize {
    selected.saturating_sub(rows.saturating_sub(1))
}

pub fn render(s: &ViewState, f: &mut Frame, area: Rect) {
    let list_w = list_width(area.width);
    let done = super::done::all_done(s);
    if list_w >= area.width {
        // Narrow: the task list takes it all; the run's end goes below it.
        if done {
            let [top, bottom] =
                Layout::vertical([Constraint::Min(3), Constraint::Percentage(50)]).areas(area);
            task_list(s, f, top);
            super::done::render(s, f, bottom);
        } else {
            task_list(s, f, area);
        }
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Length(list_w), Constraint::Min(1)]).areas(area);
    task_list(s, f, left);
    if !s.agents.is_empty() {
        agent_panes(s, f, right);
    } else if done {
        super::done::render(s, f, right);
    } else {
        idle(s, f, right);
    }
}

/// The agents' side while none is working: what is going on instead, and what to do.
fn idle(s: &ViewState, f: &mut Frame, area: Rect) {
    let block = theme::block(s, "agents", false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let waiting = s.inbox.len();
    let mut text = vec![Line::styled("no agent is working", theme::dim(s))];
    if waiting > 0 {
        text.push(Line::raw(""));
        text.push(Line::styled(
            format!("{waiting} item(s) wait for you: i opens the inbox"),
            theme::warn(s),
        ));
    }
    text.push(Line::raw(""));
    text.push(Line::styled("n adds a task", theme::dim(s)));
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
}

fn task_list(s: &ViewState, f: &mut Frame, area: Rect) {
    let block = theme::block(s, &format!("tasks {}", s.tasks.len()), false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if s.tasks.is_empty() {
        let text = if s.loaded {
            "no tasks yet: n adds one (or `orch-tui add \"PROMPT\"` in a shell, or `orch-tui plan load plan.toml`); this supervisor picks them up"
        } else {
            "reading the ledger…"
        };
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    }
    let h = inner.height as usize;
    // Scroll so the selection stays visible.
    let start = list_start(s.selected_task, h);
    let lines: Vec<Line> = s
        .tasks
        .iter()
        .enumerate()
        .skip(start)
        .take(h)
        .map(|(i, t)| {
            let mut spans = vec![
                Span::styled(
                    format!("{} ", theme::state_glyph(t.state)),
                    theme::state_style(s, t.state),
                ),
                Span::raw(t.id.clone()),
            ];
            if !t.deps.is_empty() {
                spans.push(Span::styled(format!(" ←{}", t.deps.len()), theme::dim(s)));
            }
            let tail = match (&t.stage, &t.agent) {
                (Some(stage), _) => format!(" {}", super::stage_label(s, *stage, t.stage_until_ms)),
                (None, Some(a)) => format!(" {a}"),
                (None, None) => format!(" {}", t.state),
            };
            spans.push(Span::styled(tail, theme::state_style(s, t.state)));
            let line = Line::from(spans);
            if i == s.selected_task {
                line.style(theme::selected())
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn agent_panes(s: &ViewState, f: &mut Frame, area: Rect) {
    let cols: u16 = if area.width >= 100 && s.agents.len() > 1 {
        2
    } else {
        1
    };
    let max_rows = (area.height / MIN_PANE_HEIGHT).max(1);
    let max_panes = (max_rows * cols) as usize;
    let shown = s.agents.len().min(max_panes);
    let rows = shown.div_ceil(cols as usize) as u16;
    // Keep the selected pane among those shown.
    let first = s.selected_agent.saturating_sub(shown.saturating_sub(1));
    let row_areas =
        Layout::vertical(vec![Constraint::Ratio(1, rows.into()); rows as usize]).split(area);
    for (k, agent) in s.agents.iter().enumerate().skip(first).take(shown) {
        let slot = k - first;
        let row = row_areas[slot / cols as usize];
        let in_row = if slot / cols as usize == (shown - 1) / cols as usize {
            shown - (slot / cols as usize) * cols as usize
        } else {
            cols as usize
        };
        let cells =
            Layout::horizontal(vec![Constraint::Ratio(1, in_row as u32); in_row]).split(row);
        pane(
            s,
            f,
            cells[slot % cols as usize],
            agent,
            k == s.selected_agent,
        );
    }
    if shown < s.agents.len() {
        let note = format!(" +{} more (tab) ", s.agents.len() - shown);
        let w = note.chars().count() as u16;
        if area.width > w {
            let r = Rect {
                x: area.right() - w - 1,
                y: area.bottom() - 1,
                width: w,
                height: 1,
            };
            f.render_widget(Paragraph::new(note).style(theme::warn(s)), r);
        }
    }
}

fn pane_title(a: &AgentInfo) -> String {
    format!(
        "{} #{} {} · {} · {}",
        a.task,
        a.n,
        a.profile,
        a.substatus,
        human_duration(a.elapsed)
    )
}

/// time / tokens / cost against the task's budgets, each coloured by how full it is.
fn gauges(s: &ViewState, a: &AgentInfo, width: u16) -> Line<'static> {
    let mut spans = Vec::new();
    let mut gauge = |label: &str, used: f64, limit: Option<f64>, text: String| match limit {
        Some(l) if l > 0.0 => {
            let ratio = (used / l).clamp(0.0, 1.0);
            let cells = 8usize;
            let filled = (ratio * cells as f64).round() as usize;
            spans.push(Span::raw(format!("{label} ")));
            spans.push(Span::styled("█".repeat(filled), theme::fill(s, ratio)));
            spans.push(Span::styled("░".repeat(cells - filled), theme::dim(s)));
            spans.push(Span::raw(format!(" {text} ")));
        }
        _ => spans.push(Span::raw(format!("{label} {text} "))),
    };
    gauge(
        "time",
        a.elapsed.as_secs_f64(),
        a.time_budget.map(|d| d.as_secs_f64()),
        match a.time_budget {
            Some(b) => format!("{}/{}", human_duration(a.elapsed), human_duration(b)),
            None => human_duration(a.elapsed),
        },
    );
    if width >= 60 {
        gauge(
            "tok",
            a.tokens as f64,
            a.budget_tokens.map(|t| t as f64),
            human_count(a.tokens),
        );
        gauge(
            "$",
            a.cost_usd,
            a.budget_cost_usd,
            format!("{:.2}", a.cost_usd),
        );
    }
    Line::from(spans)
}

fn pane(s: &ViewState, f: &mut Frame, area: Rect, a: &AgentInfo, selected: bool) {
    let block = theme::block(s, &pane_title(a), selected);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let [g, screen] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(gauges(s, a, inner.width)), g);
    if let Some(q) = &a.question {
        if screen.height > 0 {
            let [qa, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(screen);
            f.render_widget(Paragraph::new(format!("? {q}")).style(theme::warn(s)), qa);
            draw(s, f, rest, a);
        }
    } else {
        draw(s, f, screen, a);
    }
}

fn draw(s: &ViewState, f: &mut Frame, area: Rect, a: &AgentInfo) {
    match &a.screen {
        // A pane narrower than the agent's screen wraps its lines rather than cutting them.
        Some(sc) => term::draw_screen_wrapped(sc, area, f.buffer_mut(), s.color),
        None => f.render_widget(Paragraph::new("starting…").style(theme::dim(s)), area),
    }
}

pub fn render_focus(s: &ViewState, f: &mut Frame, area: Rect) {
    let Some(a) = s.focus.and_then(|id| s.agent(id)) else {
        // Ended: its last screen stays, under a line that says so.
        let ended = s
            .focus
            .and_then(|id| s.ended.iter().find(|e| e.attempt == id));
        let [top, screen] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        let note = match ended {
            Some(e) => format!(
                "{}#{} ({}) has ended: its last screen · esc returns to the dashboard",
                e.task, e.n, e.profile
            ),
            None => "this agent has ended; esc returns to the dashboard".to_string(),
        };
        f.render_widget(Paragraph::new(note).style(theme::dim(s)), top);
        if let Some(sc) = ended.and_then(|e| e.screen.as_ref()) {
            term::draw_screen(sc, screen, f.buffer_mut(), s.color);
        }
        return;
    };
    let [top, screen] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let mut line = gauges(s, a, area.width);
    line.spans.insert(
        0,
        Span::styled(format!("{} ", pane_title(a)), theme::title(s)),
    );
    f.render_widget(Paragraph::new(line), top);
    match &a.screen {
        Some(sc) => {
            if let Some(pos) = term::draw_screen(sc, screen, f.buffer_mut(), s.color) {
                f.set_cursor_position(pos);
            }
        }
        None => f.render_widget(Paragraph::new("starting…").style(Style::default()), screen),
    }
}
