//! Questions that stand between a key and an act that is hard to undo: cancel (its dependents
//! are blocked), approve all, a reject, a quit that stops agents, throwing a typed task away.
//! Each names its target and waits for `y` (anything else — `n`, esc — keeps things as they
//! are), so a key pressed on the wrong row costs nothing.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Effect};
use crate::engine::HumanCommand;

/// What `y` does.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    Cancel {
        task: String,
    },
    ApproveAll {
        tasks: Vec<String>,
    },
    Reject {
        task: String,
        note: String,
    },
    /// Stop the live agents and quit.
    StopAgents,
    /// Close the new-task or edit form, dropping what was typed.
    DiscardForm,
}

/// A y/n question on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// One line: the act and its target (`Cancel task \`api\`?`).
    pub title: String,
    /// What follows from it, one line each.
    pub lines: Vec<String>,
    pub ask: Ask,
}

/// At most this many names are listed in a question; the rest are counted.
const NAMES: usize = 6;

/// `a, b, c and 4 more`.
pub fn names(items: &[String]) -> String {
    let shown: Vec<String> = items.iter().take(NAMES).map(|t| format!("`{t}`")).collect();
    let mut s = shown.join(", ");
    if items.len() > NAMES {
        s.push_str(&format!(" and {} more", items.len() - NAMES));
    }
    s
}

impl App {
    /// A key while a question is on screen: `y` does it, anything else drops it.
    pub(super) fn on_confirm_key(&mut self, ev: &KeyEvent) -> Vec<Effect> {
        let Some(c) = self.state.confirm.take() else {
            return Vec::new();
        };
        let yes = matches!(ev.code, KeyCode::Char('y') | KeyCode::Char('Y'));
        if !yes {
            self.state.message = Some(match c.ask {
                Ask::DiscardForm => "kept the form".to_string(),
                _ => "nothing was done".to_string(),
            });
            return Vec::new();
        }
        match c.ask {
            Ask::Cancel { task } => vec![Effect::Human {
                cmd: HumanCommand::Cancel,
                task,
                note: None,
            }],
            Ask::ApproveAll { tasks } => vec![Effect::ApproveAll { tasks }],
            Ask::Reject { task, note } => vec![Effect::Human {
                cmd: HumanCommand::Reject,
                task,
                note: Some(note),
            }],
            Ask::StopAgents => vec![Effect::Stop { stop_agents: true }],
            Ask::DiscardForm => {
                self.state.form = None;
                self.state.message = Some("the form was closed; nothing was added".into());
                Vec::new()
            }
        }
    }

    /// `c`: ask before cancelling, naming the task and every task it would block.
    pub(super) fn ask_cancel(&mut self, task: String) {
        let blocked = self.state.dependents(&task);
        let state = self
            .state
            .tasks
            .iter()
            .find(|t| t.id == task)
            .map(|t| t.state.to_string());
        let mut lines = Vec::new();
        if let Some(s) = state {
            lines.push(format!("it is {s}; a live agent on it is stopped"));
        }
        lines.push(if blocked.is_empty() {
            "no other task depends on it".to_string()
        } else {
            format!(
                "blocks {} that depend(s) on it: {}",
                blocked.len(),
                names(&blocked)
            )
        });
        lines.push("`r` brings it back later (retry)".into());
        self.state.confirm = Some(Confirm {
            title: format!("Cancel task `{task}`?"),
            lines,
            ask: Ask::Cancel { task },
        });
    }

    /// `A`: ask before approving every approval, naming them.
    pub(super) fn ask_approve_all(&mut self, tasks: Vec<String>) {
        self.state.confirm = Some(Confirm {
            title: format!("Approve all {} waiting approval(s)?", tasks.len()),
            lines: vec![
                names(&tasks),
                "each passed its checks and reviewer; they merge in turn".into(),
            ],
            ask: Ask::ApproveAll { tasks },
        });
    }

    /// After the reject note: ask, naming the task and the note the next attempt gets.
    pub(super) fn ask_reject(&mut self, task: String, note: String) {
        self.state.confirm = Some(Confirm {
            title: format!("Reject task `{task}`?"),
            lines: vec!["its next attempt is told:".into(), format!("  {note}")],
            ask: Ask::Reject { task, note },
        });
    }

    /// `s` in the quit question: ask when agents would be stopped, naming them.
    pub(super) fn ask_stop(&mut self) -> Vec<Effect> {
        let live: Vec<String> = self
            .state
            .agents
            .iter()
            .map(|a| format!("{}#{}", a.task, a.n))
            .collect();
        if live.is_empty() {
            return vec![Effect::Stop { stop_agents: true }];
        }
        self.state.confirm = Some(Confirm {
            title: format!("Stop {} agent(s) and quit?", live.len()),
            lines: vec![
                names(&live),
                "their attempts are retried on the next start".into(),
            ],
            ask: Ask::StopAgents,
        });
        Vec::new()
    }
}
