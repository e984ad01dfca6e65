//! The text prompt (retry and reject notes, logs search and filter) and the logs search jump.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Effect};
use super::state::{InputPurpose, InputState};
use crate::engine::HumanCommand;

impl App {
    pub(super) fn on_input_key(&mut self, ev: &KeyEvent) -> Vec<Effect> {
        let s = &mut self.state;
        let Some(input) = &mut s.input else {
            return Vec::new();
        };
        match ev.code {
            KeyCode::Char(c) => {
                input.text.push(c);
                Vec::new()
            }
            KeyCode::Backspace => {
                input.text.pop();
                Vec::new()
            }
            KeyCode::Esc => {
                s.input = None;
                Vec::new()
            }
            KeyCode::Enter => {
                let InputState { purpose, text } = input.clone();
                s.input = None;
                let text = text.trim().to_string();
                match purpose {
                    InputPurpose::RetryNote { task } => vec![Effect::Human {
                        cmd: HumanCommand::Retry,
                        task,
                        note: (!text.is_empty()).then_some(text),
                    }],
                    InputPurpose::RejectNote { task } => vec![Effect::Human {
                        cmd: HumanCommand::Reject,
                        task,
                        note: (!text.is_empty()).then_some(text),
                    }],
                    InputPurpose::Search => {
                        s.logs.search = (!text.is_empty()).then_some(text);
                        self.jump_to_match();
                        Vec::new()
                    }
                    InputPurpose::Filter => {
                        s.logs.filter = (!text.is_empty()).then_some(text);
                        s.logs.scroll = 0;
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        }
    }

    /// Scroll the logs so the newest line matching the search (above the current view) is at
    /// the bottom; stops following.
    pub(super) fn jump_to_match(&mut self) {
        let s = &mut self.state;
        let Some(q) = s.logs.search.clone() else {
            return;
        };
        let lines = s.visible_log_lines();
        let from = lines.len().saturating_sub(s.logs.scroll);
        let hit = lines[..from.saturating_sub(if s.logs.follow { 0 } else { 1 })]
            .iter()
            .rposition(|l| l.text.contains(&q));
        match hit {
            Some(i) => {
                let scroll = lines.len() - i - 1;
                s.logs.follow = false;
                s.logs.scroll = scroll;
                s.message = None;
            }
            None => s.message = Some(format!("no line matches '{q}'")),
        }
    }
}
