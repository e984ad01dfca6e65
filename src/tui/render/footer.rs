//! The footer: the text prompt while one is open, else the waiting note or the last message,
//! else the view's key hints — as many as the width holds, most used first, `? help` always
//! last, so nothing is cut mid-word at 80 columns.

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::theme;
use crate::tui::state::{InputPurpose, View, ViewState};

pub fn line(s: &ViewState, width: u16) -> Line<'static> {
    if let Some(input) = &s.input {
        let label = match &input.purpose {
            // Notes have their own box (`dialogs::note`); the footer says what keys do.
            InputPurpose::RetryNote { .. }
            | InputPurpose::RejectNote { .. }
            | InputPurpose::DenyNote { .. } => {
                let m = s
                    .message
                    .clone()
                    .unwrap_or_else(|| "enter: ok · esc: cancel".into());
                return Line::styled(format!(" {m}"), theme::warn(s));
            }
            InputPurpose::Search => "search: ",
            InputPurpose::Filter => "task filter (empty: all): ",
        };
        let after = match &s.message {
            Some(m) => format!("   {m}"),
            None => "   enter: ok  esc: cancel".to_string(),
        };
        return Line::from(vec![
            Span::styled(label, theme::warn(s)),
            Span::raw(input.text.clone()),
            Span::styled("█", Style::default().add_modifier(Modifier::SLOW_BLINK)),
            Span::styled(after, theme::dim(s)),
        ]);
    }
    if let Some(w) = &s.waiting {
        return Line::styled(format!(" {w}"), theme::warn(s));
    }
    if let Some(m) = &s.message {
        return Line::styled(format!(" {m}"), theme::warn(s));
    }
    Line::styled(hints(s, usize::from(width)), theme::dim(s))
}

/// The view's hints that fit in `width` columns.
fn hints(s: &ViewState, width: usize) -> String {
    let list: &[&str] = match s.view {
        View::Focus if s.focus.and_then(|id| s.agent(id)).is_none() => {
            &["the agent has ended", "esc back"]
        }
        View::Focus => {
            return fit(
                &[
                    "keys go to the agent",
                    &format!("{}: back to the dashboard", s.unfocus_key),
                ],
                width,
            );
        }
        View::Logs => &[
            "f follow",
            "/ regex",
            "n/N older/newer match",
            "s filter (task, agent:NAME, kind:checks)",
            "esc back",
        ],
        View::Timeline => &[
            "↑↓ scroll",
            "█ working ▚ waiting for input ▒ review ▓ waiting for you ≡ merge queue",
            "esc back",
        ],
        View::Inbox
            if s.inbox
                .get(s.selected_inbox)
                .is_some_and(|i| matches!(i.kind, crate::read::InboxKind::Permission { .. })) =>
        {
            &[
                "y allow",
                "Y allow always (this run)",
                "d deny (note)",
                "enter focus",
                "t detail",
                "c cancel",
            ]
        }
        View::Inbox => &[
            "a approve",
            "x reject",
            "A approve all",
            "d diff",
            "t detail",
            "enter focus",
            "r retry",
            "c cancel",
            "p pause",
            "u resume",
        ],
        View::Diff => &["↑↓ scroll", "a approve", "x reject", "E editor", "esc back"],
        View::Detail => &["↑↓ scroll", "J raw events", "e edit", "o shell", "esc back"],
        View::Dag | View::Help => &["↑↓ scroll", "esc back"],
        View::Dashboard => &[
            "↑↓ task",
            "enter open",
            "n new",
            "e edit",
            "o shell",
            "i inbox",
            "l logs",
            "t detail",
            "d diff",
            "tab pane",
        ],
    };
    let mut items: Vec<String> = list.iter().map(|h| h.to_string()).collect();
    if !matches!(s.view, View::Help | View::Focus) {
        items.push("? help".into());
    }
    if s.view == View::Dashboard {
        items.push("q quit".into());
    }
    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
    fit(&refs, width)
}

/// ` a · b · c`, dropping hints from the end of the optional part until it fits; the last
/// (`? help` / `q quit`) are kept.
fn fit(items: &[&str], width: usize) -> String {
    let join = |v: &[&str]| format!(" {}", v.join(" · "));
    let keep_tail = items
        .iter()
        .rev()
        .take_while(|i| **i == "? help" || **i == "q quit")
        .count();
    let (head, tail) = items.split_at(items.len() - keep_tail);
    for n in (0..=head.len()).rev() {
        let mut v: Vec<&str> = head[..n].to_vec();
        v.extend_from_slice(tail);
        let s = join(&v);
        if s.chars().count() <= width {
            return s;
        }
    }
    join(tail).chars().take(width).collect()
}
