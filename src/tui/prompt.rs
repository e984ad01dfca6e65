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
                match s.input.take().map(|i| i.purpose) {
                    Some(InputPurpose::RejectNote { task }) => {
                        s.message = Some(format!("no reject sent for `{task}`"));
                    }
                    Some(InputPurpose::DenyNote { task }) => {
                        s.message = Some(format!("`{task}` still waits for an answer"));
                    }
                    _ => {}
                }
                Vec::new()
            }
            KeyCode::Enter => {
                let InputState { purpose, text } = input.clone();
                if matches!(purpose, InputPurpose::RejectNote { .. }) && text.trim().is_empty() {
                    // The note is what the next attempt is told: without one it would get the
                    // very same prompt.
                    s.message = Some(
                        "a reject needs a note: what should the next attempt change? (esc: no \
                         reject)"
                            .into(),
                    );
                    return Vec::new();
                }
                s.input = None;
                let text = text.trim().to_string();
                match purpose {
                    InputPurpose::RetryNote { task } => vec![Effect::Human {
                        cmd: HumanCommand::Retry,
                        task,
                        note: (!text.is_empty()).then_some(text),
                    }],
                    InputPurpose::RejectNote { task } => {
                        self.ask_reject(task, text);
                        Vec::new()
                    }
                    // A deny may go without a note: the agent is told it was denied.
                    InputPurpose::DenyNote { task } => vec![Effect::Answer {
                        task,
                        decision: crate::core::permissions::Decision::Deny,
                        note: (!text.is_empty()).then_some(text),
                    }],
                    InputPurpose::Search => {
                        let note = s.logs.set_search((!text.is_empty()).then_some(text));
                        self.jump_to_match(true);
                        if note.is_some() && self.state.message.is_none() {
                            self.state.message = note;
                        }
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

    /// Scroll the logs to the next line matching the search: `older` looks above the line at
    /// the bottom of the view (the first jump from following finds the newest match), else
    /// below it. Stops following.
    pub(super) fn jump_to_match(&mut self, older: bool) {
        let s = &mut self.state;
        let Some(q) = s.logs.search.clone() else {
            s.message = Some("no search yet: / starts one".into());
            return;
        };
        let lines = s.visible_log_lines();
        let bottom = lines
            .len()
            .saturating_sub(if s.logs.follow { 0 } else { s.logs.scroll });
        let hit = if older {
            let upto = bottom.saturating_sub(if s.logs.follow { 0 } else { 1 });
            lines[..upto].iter().rposition(|l| s.logs.matches(&l.text))
        } else {
            lines
                .iter()
                .enumerate()
                .skip(bottom)
                .find(|(_, l)| s.logs.matches(&l.text))
                .map(|(i, _)| i)
        };
        match hit {
            Some(i) => {
                let scroll = lines.len() - i - 1;
                s.logs.follow = false;
                s.logs.scroll = scroll;
                s.message = None;
            }
            None => {
                s.message = Some(format!(
                    "no {} line matches '{q}'",
                    if older { "earlier" } else { "later" }
                ))
            }
        }
    }
}
