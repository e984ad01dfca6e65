//! The review funnel on screen: stage labels (with the veto countdown), the inbox's approval
//! context (diff stat, checks, reviewer verdict) and the diff view.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{human_duration, theme};
use crate::core::domain::{FunnelStage, Verdict};
use crate::tui::state::{Approval, ViewState};

/// Time left until `until_ms`, rounded up to the second.
pub fn remaining(s: &ViewState, until_ms: u64) -> String {
    human_duration(Duration::from_secs(
        until_ms.saturating_sub(s.wall_ms).div_ceil(1000),
    ))
}

/// `review·checks`, `review·human`, `review·veto 1m12s`.
pub fn stage_label(s: &ViewState, stage: FunnelStage, until_ms: Option<u64>) -> String {
    match until_ms {
        Some(u) if stage == FunnelStage::Veto => format!("review·veto {}", remaining(s, u)),
        _ => format!("review·{stage}"),
    }
}

/// `2 files changed, 46 insertions(+), 6 deletions(-)` → `2 files +46 -6`.
fn compact_stat(stat: &str) -> String {
    let last = stat.lines().last().unwrap_or_default().trim();
    let mut files = None;
    let (mut add, mut del) = (0u64, 0u64);
    for part in last.split(',') {
        let part = part.trim();
        let n = part
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok());
        match n {
            Some(n) if part.contains("file") => files = Some(n),
            Some(n) if part.contains("insertion") => add = n,
            Some(n) if part.contains("deletion") => del = n,
            _ => {}
        }
    }
    match files {
        Some(f) => format!("{f} file{} +{add} -{del}", if f == 1 { "" } else { "s" }),
        None => last.to_string(),
    }
}

/// The approval's `git diff --stat`, once the background job has fetched it.
fn stat<'a>(s: &'a ViewState, a: &Approval) -> Option<&'a str> {
    a.range()
        .and_then(|r| s.stat_cache.get(&r))
        .map(String::as_str)
}

/// `2 files +46 -6` from the stat, else the ledger's count of changed lines.
fn change_size(s: &ViewState, a: &Approval) -> String {
    match (stat(s, a), a.diff_lines) {
        (Some(st), _) => compact_stat(st),
        (None, Some(n)) => format!("{n} lines changed"),
        (None, None) => String::new(),
    }
}

/// One line summing an approval up for the inbox list.
pub fn summary(s: &ViewState, a: &Approval) -> String {
    let what = match a.until_ms {
        Some(u) if a.stage == FunnelStage::Veto => {
            format!("merges in {} unless vetoed", remaining(s, u))
        }
        _ => "waits for you".to_string(),
    };
    let files = change_size(s, a);
    let mut parts = vec![what];
    if !files.is_empty() {
        parts.push(files);
    }
    if !a.checks.is_empty() {
        parts.push(format!("checks {}/{}", a.checks_passed(), a.checks.len()));
    }
    if let Some(v) = &a.verdict {
        parts.push(format!("reviewer {v}"));
    }
    parts.join(" · ")
}

/// The selected approval's context: stage, diff stat, checks, reviewer.
pub fn render_context(s: &ViewState, task: &str, a: &Approval, f: &mut Frame, area: Rect) {
    let block = theme::block(s, &format!("{task} #{} · {}", a.n, a.stage), false);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![match a.until_ms {
        Some(u) if a.stage == FunnelStage::Veto => Line::styled(
            format!(
                "veto window: merges in {} · x vetoes (note) · a merges now · d diff",
                remaining(s, u)
            ),
            theme::warn(s),
        ),
        _ => Line::styled(
            "waits for you · a approve · x reject (note) · A approve all · d diff",
            theme::warn(s),
        ),
    }];
    lines.push(Line::styled("checks", bold));
    if a.checks.is_empty() {
        lines.push(Line::styled("  none configured", theme::dim(s)));
    }
    for c in &a.checks {
        lines.push(if c.passed {
            Line::from(vec![
                Span::styled("  ✓ ", theme::good(s)),
                Span::raw(c.command.clone()),
            ])
        } else {
            Line::from(vec![
                Span::styled("  ✗ ", theme::bad(s)),
                Span::raw(c.command.clone()),
            ])
        });
    }
    lines.push(Line::styled("reviewer", bold));
    match &a.verdict {
        Some(v) => {
            let style = if *v == Verdict::Approve {
                theme::good(s)
            } else {
                theme::bad(s)
            };
            let mut spans = vec![Span::styled(format!("  {v}"), style)];
            if let Some(n) = a.verdict_notes.as_deref().filter(|n| !n.is_empty()) {
                spans.push(Span::raw(format!(" — {n}")));
            }
            lines.push(Line::from(spans));
        }
        None => lines.push(Line::styled("  no verdict (no reviewer)", theme::dim(s))),
    }
    lines.push(Line::styled("diff", bold));
    match (stat(s, a), a.range()) {
        (Some(st), _) => lines.extend(st.lines().map(|l| Line::raw(l.to_string()))),
        (None, Some(_)) => lines.push(Line::styled(
            format!("  {} · reading `git diff --stat`…", change_size(s, a)),
            theme::dim(s),
        )),
        (None, None) => lines.push(Line::styled("  (no commit recorded)", theme::dim(s))),
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The style of one diff line: file headers bold, hunk headers cyan, added green, removed red.
fn diff_style(s: &ViewState, line: &str) -> Style {
    let fg = |c: Color| {
        if s.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    };
    if line.starts_with("diff --git")
        || line.starts_with("+++ ")
        || line.starts_with("--- ")
        || line.starts_with("index ")
        || line.starts_with("new file")
        || line.starts_with("deleted file")
    {
        Style::default().add_modifier(Modifier::BOLD)
    } else if line.starts_with("@@") {
        fg(Color::Cyan)
    } else if line.starts_with('+') {
        fg(Color::Green)
    } else if line.starts_with('-') {
        fg(Color::Red)
    } else {
        Style::default()
    }
}

pub fn render_diff(s: &ViewState, f: &mut Frame, area: Rect) {
    let Some(d) = &s.diff else {
        f.render_widget(Paragraph::new("no diff loaded").style(theme::dim(s)), area);
        return;
    };
    let block = theme::block(
        s,
        &format!("diff {} {} · {} lines", d.task, d.range, d.lines.len()),
        false,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    if d.lines.is_empty() {
        f.render_widget(
            Paragraph::new("the diff is empty").style(theme::dim(s)),
            inner,
        );
        return;
    }
    let start = d.scroll.min(d.lines.len().saturating_sub(1));
    let lines: Vec<Line> = d.lines[start..]
        .iter()
        .take(inner.height as usize)
        .map(|l| Line::styled(l.clone(), diff_style(s, l)))
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}
