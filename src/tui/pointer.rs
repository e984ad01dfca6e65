//! The mouse: a click selects what is under it (the wheel scrolls, as up/down: `runloop.rs`).

use super::app::App;
use super::state::View;

impl App {
    /// A left click at (column, row) of the terminal: selects the task (dashboard) or item
    /// (inbox) under it. Layout: header row, then the body's bordered box, then the footer.
    pub fn on_click(&mut self, col: u16, row: u16) {
        let s = &mut self.state;
        if s.quit_prompt || s.input.is_some() || s.confirm.is_some() || s.form.is_some() || row < 2
        {
            return;
        }
        // Rows inside the box: terminal height minus header, footer and two borders.
        let rows = self.size.1.saturating_sub(4) as usize;
        let line = (row - 2) as usize;
        if line >= rows {
            return;
        }
        match s.view {
            View::Dashboard => {
                let w = super::render::list_width(self.size.0);
                if col < w {
                    let i = super::render::list_start(s.selected_task, rows) + line;
                    if i < s.tasks.len() {
                        s.selected_task = i;
                    }
                }
            }
            View::Inbox => {
                let body = self.size.1.saturating_sub(2);
                let rows = super::render::inbox_list_rows(s, body) as usize;
                if line >= rows {
                    return;
                }
                let i = super::render::list_start(s.selected_inbox, rows) + line;
                if i < s.inbox.len() {
                    s.selected_inbox = i;
                }
            }
            View::Focus
            | View::Logs
            | View::Detail
            | View::Dag
            | View::Help
            | View::Diff
            | View::Timeline => {}
        }
    }
}
