//! The timeline view: where the run's time went, one row per slot (see `core::timeline`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme;
use crate::core::timeline::text::{LABEL_W, RowKind, rows, summary};
use crate::core::timeline::{Phase, human_ms};
use crate::tui::state::ViewState;

pub fn render(s: &ViewState, f: &mut Frame, area: Rect) {
    let Some(tl) = &s.timeline else {
        f.render_widget(Paragraph::new("no timeline yet").style(theme::dim(s)), area);
        return;
    };
    let title = format!(
        "timeline {} · {}",
        human_ms(tl.end_ms - tl.start_ms),
        summary(tl)
    );
    let block = theme::block(s, &title, false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if tl.lanes.is_empty() {
        f.render_widget(
            Paragraph::new("no agent has started yet").style(theme::dim(s)),
            inner,
        );
        return;
    }
    let lines: Vec<Line> = rows(tl, inner.width as usize)
        .into_iter()
        .map(|row| {
            let label_style = match row.kind {
                RowKind::Bar => Style::default().add_modifier(Modifier::BOLD),
                _ => theme::dim(s),
            };
            let mut spans = vec![Span::styled(
                format!("{:<LABEL_W$}", row.label),
                label_style,
            )];
            let plain = match row.kind {
                RowKind::Human => theme::warn(s),
                RowKind::Names | RowKind::Axis => theme::dim(s),
                _ => Style::default(),
            };
            // Runs of one phase become one span.
            let mut run = String::new();
            let mut run_phase: Option<Option<Phase>> = None;
            for (c, p) in row.cells {
                if run_phase != Some(p) && !run.is_empty() {
                    spans.push(span(
                        s,
                        std::mem::take(&mut run),
                        run_phase.flatten(),
                        plain,
                    ));
                }
                run_phase = Some(p);
                run.push(c);
            }
            if !run.is_empty() {
                spans.push(span(s, run, run_phase.flatten(), plain));
            }
            Line::from(spans)
        })
        .collect();
    let scroll = s.page_scroll.min(lines.len().saturating_sub(1)) as u16;
    f.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}

fn span(s: &ViewState, text: String, phase: Option<Phase>, plain: Style) -> Span<'static> {
    match phase {
        Some(p) => Span::styled(text, theme::phase_style(s, p)),
        None => Span::styled(text, plain),
    }
}
