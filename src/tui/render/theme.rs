//! Colours and glyphs. Every colour goes through here so NO_COLOR (`ViewState::color == false`)
//! drops them all in one place; modifiers (bold, reverse) stay, so selection is still visible.

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders};

use crate::core::state::TaskState;
use crate::tui::state::ViewState;

fn fg(s: &ViewState, c: Color) -> Style {
    if s.color {
        Style::default().fg(c)
    } else {
        Style::default()
    }
}

pub fn state_glyph(t: TaskState) -> &'static str {
    match t {
        TaskState::Pending => "○",
        TaskState::Ready => "◌",
        TaskState::Assigned => "◔",
        TaskState::Working => "●",
        TaskState::Review => "◑",
        TaskState::Approved => "◕",
        TaskState::Merging => "⇡",
        TaskState::Done => "✓",
        TaskState::Failed => "✗",
        TaskState::Blocked => "⊘",
        TaskState::Escalated => "!",
        TaskState::Paused => "‖",
        TaskState::Cancelled => "−",
    }
}

pub fn state_style(s: &ViewState, t: TaskState) -> Style {
    let c = match t {
        TaskState::Pending => Color::DarkGray,
        TaskState::Ready => Color::White,
        TaskState::Assigned | TaskState::Working => Color::Cyan,
        TaskState::Review | TaskState::Approved | TaskState::Merging => Color::Blue,
        TaskState::Done => Color::Green,
        TaskState::Failed | TaskState::Blocked => Color::Red,
        TaskState::Escalated | TaskState::Paused => Color::Yellow,
        TaskState::Cancelled => Color::DarkGray,
    };
    fg(s, c)
}

pub fn title(s: &ViewState) -> Style {
    if s.color {
        Style::default()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
}

pub fn good(s: &ViewState) -> Style {
    fg(s, Color::Green).add_modifier(Modifier::BOLD)
}

pub fn warn(s: &ViewState) -> Style {
    fg(s, Color::Yellow).add_modifier(Modifier::BOLD)
}

pub fn bad(s: &ViewState) -> Style {
    fg(s, Color::Red).add_modifier(Modifier::BOLD)
}

pub fn dim(s: &ViewState) -> Style {
    fg(s, Color::DarkGray)
}

pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

/// A gauge's colour by how full it is: green, then yellow from 75 %, red from 90 %.
pub fn fill(s: &ViewState, ratio: f64) -> Style {
    let c = if ratio >= 0.9 {
        Color::Red
    } else if ratio >= 0.8 {
        Color::Yellow
    } else {
        Color::Green
    };
    fg(s, c)
}

pub fn block(s: &ViewState, title: &str, active: bool) -> Block<'static> {
    let b = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {title} "));
    if active {
        b.border_type(BorderType::Thick)
            .border_style(fg(s, Color::Cyan))
    } else {
        b.border_style(dim(s))
    }
}

/// A stable colour per task for the logs, from its name.
pub fn task_colour(s: &ViewState, task: &str) -> Style {
    const PALETTE: [Color; 6] = [
        Color::Cyan,
        Color::Magenta,
        Color::Yellow,
        Color::Green,
        Color::Blue,
        Color::LightRed,
    ];
    let h = task
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    fg(s, PALETTE[h % PALETTE.len()])
}

/// A timeline phase's colour (the glyphs tell them apart without colour too).
pub fn phase_style(s: &ViewState, p: crate::core::timeline::Phase) -> Style {
    use crate::core::timeline::Phase;
    let c = match p {
        Phase::Starting => Color::DarkGray,
        Phase::Working => Color::Green,
        Phase::WaitingInput => Color::Yellow,
        Phase::Review => Color::Cyan,
        Phase::Human => Color::Magenta,
        Phase::MergeQueue => Color::Blue,
        Phase::Paused => Color::DarkGray,
        Phase::Failed => Color::Red,
    };
    fg(s, c)
}
