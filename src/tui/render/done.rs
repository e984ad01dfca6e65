//! The end of a run that finished: what was made and what to do next (the integration branch,
//! its commits, `orch-tui pr`), where the agents' panes were.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::theme;
use crate::core::state::TaskState;
use crate::tui::state::ViewState;

/// The run has settled with every task done.
pub fn all_done(s: &ViewState) -> bool {
    s.finished.is_some() && !s.tasks.is_empty() && s.count(TaskState::Done) == s.tasks.len()
}

pub fn render(s: &ViewState, f: &mut Frame, area: Rect) {
    let block = theme::block(s, "all done: what next", true);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let branch = if s.integration_branch.is_empty() {
        "orch/integration"
    } else {
        s.integration_branch.as_str()
    };
    let mut text = vec![Line::styled(
        format!("✓ all {} task(s) are done and merged", s.tasks.len()),
        theme::good(s),
    )];
    text.push(Line::raw(""));
    match &s.done_summary {
        Some(summary) => text.extend(summary.lines().map(|l| Line::raw(l.to_string()))),
        None => text.push(Line::styled(format!("reading {branch}…"), theme::dim(s))),
    }
    text.push(Line::raw(""));
    text.push(Line::styled("next:", theme::title(s)));
    for (cmd, what) in [
        (
            "orch-tui pr".to_string(),
            "push it and open one pull request",
        ),
        (format!("git diff HEAD...{branch}"), "the whole change"),
        (
            format!("git merge {branch}"),
            "or take it without a pull request",
        ),
    ] {
        let cmd = Span::styled(format!("  {cmd}"), theme::warn(s));
        if inner.width >= 70 {
            text.push(Line::from(vec![
                cmd,
                Span::styled(format!("  {what}"), theme::dim(s)),
            ]));
        } else {
            text.push(Line::from(cmd));
            text.push(Line::styled(format!("    {what}"), theme::dim(s)));
        }
    }
    text.push(Line::raw(""));
    text.push(Line::styled("q quits · n adds another task", theme::dim(s)));
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), inner);
}
