//! The y/n question and the new-task / edit form, drawn over the body.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::theme;
use crate::core::domain::FunnelStage;
use crate::tui::form::{Field, FormKind, TaskForm};
use crate::tui::state::{InputPurpose, ViewState};

/// A box of at most `w`×`h` in the middle of `body`.
fn centered(body: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(body.width), h.min(body.height));
    Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn confirm(s: &ViewState, f: &mut Frame, body: Rect) {
    let Some(c) = &s.confirm else { return };
    let mut text = vec![
        Line::styled(
            c.title.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Line::raw(""),
    ];
    text.extend(c.lines.iter().map(|l| Line::raw(l.clone())));
    text.push(Line::raw(""));
    text.push(Line::from(vec![
        Span::styled("y", theme::warn(s)),
        Span::raw(" yes   "),
        Span::styled("n", theme::warn(s)),
        Span::raw(" / esc: no, nothing is done"),
    ]));
    let w = 64u16;
    // Long lines wrap inside the box: count them wrapped.
    let inner = usize::from(w.min(body.width).saturating_sub(2)).max(1);
    let rows: usize = text.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let area = centered(body, w, u16::try_from(rows + 2).unwrap_or(u16::MAX));
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(theme::block(s, "confirm", true)),
        area,
    );
}

/// Rows of the dependency picker while it has the focus.
const DEP_ROWS: usize = 6;

pub fn form(s: &ViewState, f: &mut Frame, body: Rect) {
    let Some(form) = &s.form else { return };
    let area = centered(body, 100, body.height);
    let inner_h = usize::from(area.height.saturating_sub(2));
    let label = |field: Field, name: &str| {
        let style = if form.field == field {
            theme::warn(s).add_modifier(Modifier::BOLD)
        } else {
            theme::dim(s)
        };
        Span::styled(format!("{name:<8} "), style)
    };
    let cursor = |field: Field| {
        if form.field == field {
            Span::styled("█", Style::default().add_modifier(Modifier::SLOW_BLINK))
        } else {
            Span::raw("")
        }
    };
    let new = form.kind == FormKind::New;
    let mut top = Vec::new();
    if new {
        top.push(Line::from(vec![
            label(Field::Title, "title"),
            Span::raw(form.title.clone()),
            cursor(Field::Title),
            hint_if(
                s,
                form.title.is_empty(),
                "  (default: the prompt's first line)",
            ),
        ]));
    }
    top.push(Line::from(vec![
        label(Field::Prompt, "prompt"),
        Span::styled("enter: new line · ctrl-e: $EDITOR", theme::dim(s)),
    ]));
    let mut bottom = Vec::new();
    if new {
        bottom.extend(deps_lines(s, form, &label));
        bottom.push(Line::from(vec![
            label(Field::Agent, "agent"),
            Span::raw(form.agent.clone()),
            cursor(Field::Agent),
            hint_if(
                s,
                form.agent.is_empty() || form.field == Field::Agent,
                &agent_hint(s),
            ),
        ]));
        bottom.push(Line::from(vec![
            label(Field::Budget, "budget"),
            Span::raw(form.budget.clone()),
            cursor(Field::Budget),
            hint_if(
                s,
                form.budget.is_empty(),
                "  (e.g. time=20m,tokens=400000,cost_usd=3; default: the config's)",
            ),
        ]));
    }
    for e in &form.errors {
        bottom.push(Line::styled(format!("✗ {e}"), theme::bad(s)));
    }
    bottom.push(Line::styled(
        match (&form.kind, form.sending) {
            (_, true) => "sending…".to_string(),
            (FormKind::New, false) => {
                "tab/shift-tab: field · ctrl-s (or enter on budget): add the task · esc: close"
                    .to_string()
            }
            (FormKind::Edit { .. }, false) => {
                "ctrl-s: save the prompt (the next attempt uses it) · esc: close".to_string()
            }
        },
        theme::dim(s),
    ));
    // The prompt gets what is left, showing its end (where the typing is).
    let room = inner_h.saturating_sub(top.len() + bottom.len()).max(1);
    let mut lines: Vec<&str> = form.prompt.split('\n').collect();
    let hidden = lines.len().saturating_sub(room);
    lines.drain(..hidden);
    let mut text = top;
    for (i, l) in lines.iter().enumerate() {
        let mut spans = vec![Span::raw("  "), Span::raw(l.to_string())];
        if i + 1 == lines.len() {
            spans.push(cursor(Field::Prompt));
        }
        text.push(Line::from(spans));
    }
    text.extend(bottom);
    let title = match &form.kind {
        FormKind::New => "new task".to_string(),
        FormKind::Edit { task, .. } => format!("edit the prompt of {task}"),
    };
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text).block(theme::block(s, &title, true)),
        area,
    );
}

fn hint_if(s: &ViewState, show: bool, text: &str) -> Span<'static> {
    if show {
        Span::styled(text.to_string(), theme::dim(s))
    } else {
        Span::raw("")
    }
}

/// The dependencies: picked ones in a line; with the focus, a window of the task list.
fn deps_lines(
    s: &ViewState,
    form: &TaskForm,
    label: &dyn Fn(Field, &str) -> Span<'static>,
) -> Vec<Line<'static>> {
    let picked = if form.deps.is_empty() {
        "none".to_string()
    } else {
        form.deps.join(", ")
    };
    let mut out = vec![Line::from(vec![
        label(Field::Deps, "after"),
        Span::raw(picked),
        hint_if(
            s,
            form.field == Field::Deps,
            "  (↑↓ move · space: pick / drop)",
        ),
    ])];
    if form.field != Field::Deps {
        return out;
    }
    if s.tasks.is_empty() {
        out.push(Line::styled("  (no tasks yet)", theme::dim(s)));
        return out;
    }
    let start = form
        .dep_cursor
        .saturating_sub(DEP_ROWS - 1)
        .min(s.tasks.len().saturating_sub(DEP_ROWS));
    for (i, t) in s.tasks.iter().enumerate().skip(start).take(DEP_ROWS) {
        let mark = if form.deps.contains(&t.id) {
            "[x]"
        } else {
            "[ ]"
        };
        let style = if i == form.dep_cursor {
            theme::selected()
        } else {
            Style::default()
        };
        out.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(format!("{mark} {} ", t.id), style),
            Span::styled(format!("{} · {}", t.state, t.title), theme::dim(s)),
        ]));
    }
    out
}

/// The note of a retry or a reject, in a box over the bottom of the body: what it is for on
/// one line, the note (wrapped, its end in view) below it.
pub fn note(s: &ViewState, f: &mut Frame, body: Rect) {
    let Some(input) = &s.input else { return };
    let (title, question) = match &input.purpose {
        InputPurpose::RetryNote { task } => (
            format!("retry {task}"),
            "a note for the next attempt (may be empty):".to_string(),
        ),
        InputPurpose::DenyNote { task } => (
            format!("deny {task}'s request"),
            "what should the agent do instead? (told to it; may be empty):".to_string(),
        ),
        InputPurpose::RejectNote { task } => {
            let held = s.tasks.iter().any(|t| {
                t.id == *task && matches!(t.stage, Some(FunnelStage::Veto | FunnelStage::Human))
            });
            (
                format!("reject {task}"),
                format!(
                    "what should the next attempt change?{}",
                    if held {
                        " (nothing merges meanwhile)"
                    } else {
                        ""
                    }
                ),
            )
        }
        InputPurpose::Search | InputPurpose::Filter => return,
    };
    let inner = usize::from(body.width.saturating_sub(2)).max(1);
    let text_rows = (input.text.chars().count() + 1).div_ceil(inner).clamp(1, 4);
    let h = u16::try_from(text_rows + 4).unwrap_or(8).min(body.height);
    let area = Rect {
        x: body.x,
        y: body.y + body.height - h,
        width: body.width,
        height: h,
    };
    let chars: Vec<char> = input.text.chars().collect();
    let shown = chars.len().saturating_sub(inner * text_rows - 1);
    let typed: String = chars[shown..].iter().collect();
    let lines = vec![
        Line::styled(question, theme::warn(s)),
        Line::from(vec![
            Span::raw(typed),
            Span::styled("█", Style::default().add_modifier(Modifier::SLOW_BLINK)),
        ]),
        Line::styled("enter: ok · esc: cancel", theme::dim(s)),
    ];
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(theme::block(s, &title, true)),
        area,
    );
}

/// `  (one of claude, codex, sim; default: claude)`, from the config.
fn agent_hint(s: &ViewState) -> String {
    let default = if s.default_agent.is_empty() {
        "the config's default_agent".to_string()
    } else {
        s.default_agent.clone()
    };
    if s.profiles.is_empty() {
        format!("  (default: {default})")
    } else {
        format!("  (one of {}; default: {default})", s.profiles.join(", "))
    }
}
