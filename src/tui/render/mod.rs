//! `render(&ViewState, &mut Frame)`: a pure function of the view state (no I/O, no clock),
//! so every screen is an insta snapshot on a TestBackend.

mod dag;
mod dashboard;
mod dialogs;
mod done;
mod footer;
mod funnel;
pub mod term;
mod theme;
mod timeline;
mod views;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::state::{View, ViewState};
use crate::core::state::TaskState;
pub use dag::{DagLayout, DagRow, critical_path, layout as dag_layout};
pub use dashboard::{list_start, list_width};
pub use done::all_done;
pub use funnel::stage_label;
pub use theme::{state_glyph, state_style};
pub use views::inbox_list_rows;

/// Below this the layout cannot say anything useful: one message instead.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

pub fn render(s: &ViewState, f: &mut Frame) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small ({}x{}): orch-tui needs at least {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(header_line(s, area.width)), header);
    if let Some(err) = &s.error {
        let text = vec![
            Line::styled("the supervisor stopped with an error:", theme::bad(s)),
            Line::raw(""),
            Line::raw(err.clone()),
            Line::raw(""),
            Line::raw("the ledger is intact: fix the cause and run `orch-tui run` to resume."),
        ];
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), body);
    } else {
        match s.view {
            View::Dashboard => dashboard::render(s, f, body),
            View::Focus => dashboard::render_focus(s, f, body),
            View::Logs => views::render_logs(s, f, body),
            View::Inbox => views::render_inbox(s, f, body),
            View::Detail => views::render_detail(s, f, body),
            View::Dag => dag::render(s, f, body),
            View::Help => views::render_help(s, f, body),
            View::Diff => funnel::render_diff(s, f, body),
            View::Timeline => timeline::render(s, f, body),
        }
    }
    f.render_widget(Paragraph::new(footer::line(s, area.width)), footer);
    if s.form.is_some() {
        dialogs::form(s, f, body);
    }
    dialogs::note(s, f, body);
    if s.quit_prompt {
        quit_prompt(s, f, body);
    }
    if s.confirm.is_some() {
        dialogs::confirm(s, f, body);
    }
}

fn header_line(s: &ViewState, width: u16) -> Line<'static> {
    let done = s.count(TaskState::Done);
    let total = s.tasks.len();
    let running = s.agents.len();
    let inbox = s.inbox.len();
    let secs = s.elapsed.as_secs();
    let plan = if s.plan.is_empty() {
        "(no plan)".to_string()
    } else {
        s.plan.clone()
    };
    let product = Span::styled(" orch-tui ", theme::title(s));
    let plan = Span::styled(
        format!(" {plan} "),
        Style::default().add_modifier(Modifier::BOLD),
    );
    let counts = [
        Span::raw(format!(" done {done}/{total} ")),
        Span::styled(
            format!(" running {running} "),
            theme::state_style(s, TaskState::Working),
        ),
        Span::styled(
            format!(" inbox {inbox} "),
            if inbox > 0 {
                theme::warn(s)
            } else {
                Style::default()
            },
        ),
    ];
    let clock = Span::raw(format!(
        " {:02}:{:02}:{:02} ",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    let spend = Span::raw(format!(
        " {} tok ${:.2} ",
        human_count(s.spend_tokens),
        s.spend_usd
    ));
    // Limits, breakers, a spent run budget: why nothing (new) starts. They always stay.
    let alerts: Vec<Span> = s
        .alerts
        .iter()
        .map(|a| Span::styled(format!(" {} ", a.line(s.wall_ms)), theme::warn(s)))
        .collect();
    // Watching another supervisor: said first, it is why keys do not reach the agents.
    let watching = s.watching.map(|pid| {
        Span::styled(
            format!(" watching (supervised by pid {pid}) · keys go to its agents' holders "),
            theme::warn(s),
        )
    });
    let fin = s
        .finished
        .as_ref()
        .map(|f| Span::styled(format!(" {f} "), theme::good(s)));
    // What goes first when the width runs short: the product name, the spend, the clock. The
    // counts and how the run ended always stay.
    let wide = usize::from(width);
    let fits = |spans: &[&Span]| spans.iter().map(|s| s.width()).sum::<usize>() <= wide;
    let mut keep = [true, true, true];
    let build = |keep: &[bool; 3]| {
        let mut v: Vec<&Span> = Vec::new();
        if keep[0] {
            v.push(&product);
        }
        v.push(&plan);
        v.extend(watching.iter());
        v.extend(counts.iter());
        v.extend(alerts.iter());
        if keep[2] {
            v.push(&clock);
        }
        if keep[1] {
            v.push(&spend);
        }
        v.extend(fin.iter());
        v
    };
    for i in 0..3 {
        if fits(&build(&keep)) {
            break;
        }
        keep[i] = false;
    }
    Line::from(build(&keep).into_iter().cloned().collect::<Vec<_>>())
}

fn quit_prompt(s: &ViewState, f: &mut Frame, body: Rect) {
    let unwritten = s.pending_commands > 0;
    let mut text = vec![Line::styled(
        "Quit orch-tui?",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if unwritten {
        text.push(Line::styled(
            format!(
                "{} command(s) not written yet: quitting drops them",
                s.pending_commands
            ),
            theme::warn(s),
        ));
    }
    match s.watching {
        // The run survives this TUI: another process supervises it.
        Some(pid) => text.extend([
            Line::raw(format!("  l  leave it running (pid {pid} supervises it)")),
            Line::raw("     `orch-tui stop` ends it; `orch-tui` watches it again"),
            Line::raw("  esc  keep watching"),
        ]),
        None => text.extend([
            Line::raw("  d  leave it running: a background supervisor goes on"),
            Line::raw("     back: `orch-tui` (or `orch-tui attach TASK`)"),
            Line::raw("     end it: `orch-tui stop`"),
            Line::raw("  s  stop the agents cleanly, then quit"),
            Line::raw("  l  leave the run unsupervised: `orch-tui` resumes it"),
            Line::raw("  esc  keep supervising"),
        ]),
    }
    let w = 58.min(body.width);
    let h = (text.len() as u16 + 2).min(body.height);
    let area = Rect {
        x: body.x + (body.width - w) / 2,
        y: body.y + (body.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text).block(theme::block(s, "quit", true)),
        area,
    );
}

/// 1234 → "1.2k", 1234567 → "1.2M".
pub fn human_count(n: i64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// 75s → "1m15s".
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
