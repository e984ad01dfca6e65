//! The everyday keys beyond watching: a new task (`n`), a prompt edit (`e`), a shell (`o`) or
//! an editor (`E`) in a task's worktree, the detail's raw events (`J`), and the reject that
//! first stops a veto window's countdown (`x`), and the one-key answers to a permission request
//! selected in the inbox (`y` allow once, `Y` allow always for this run, `d` deny with a note).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Effect};
use super::keymap::Action;
use super::state::{InputPurpose, InputState, View};
use crate::core::domain::FunnelStage;
use crate::core::new_task::decide_edit;
use crate::core::permissions::Decision;
use crate::engine::HumanCommand;
use crate::read::InboxKind;

impl App {
    /// `y`, `Y` or `d` on a permission request selected in the inbox (they mean nothing else
    /// there but `d`, whose diff is of no use to a waiting agent); `None` for any other key.
    pub(super) fn permission_key(&mut self, ev: &KeyEvent) -> Option<Vec<Effect>> {
        let s = &mut self.state;
        if s.view != View::Inbox
            || ev
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return None;
        }
        let item = s.inbox.get(s.selected_inbox)?;
        let (InboxKind::Permission { .. }, Some(task)) = (&item.kind, &item.task) else {
            return None;
        };
        let task = task.clone();
        let decision = match ev.code {
            KeyCode::Char('y') => Decision::Allow,
            KeyCode::Char('Y') => Decision::Always,
            KeyCode::Char('d') => {
                s.input = Some(InputState {
                    purpose: InputPurpose::DenyNote { task },
                    text: String::new(),
                });
                return Some(Vec::new());
            }
            _ => return None,
        };
        Some(vec![Effect::Answer {
            task,
            decision,
            note: None,
        }])
    }

    pub(super) fn on_everyday(&mut self, a: Action) -> Vec<Effect> {
        match a {
            Action::NewTask => self.open_new_task(),
            Action::Edit => match self.target_task() {
                Some(task) => self.start_edit(task),
                None => self.no_task(),
            },
            Action::Shell => match self.target_task() {
                Some(task) => vec![Effect::OpenShell { task }],
                None => self.no_task(),
            },
            Action::Editor => {
                let diff = match (&self.state.view, &self.state.diff) {
                    (View::Diff, Some(d)) => Some((d.task.clone(), d.lines.clone())),
                    _ => None,
                };
                match (diff, self.target_task()) {
                    (Some((task, lines)), _) => vec![Effect::OpenEditor {
                        task,
                        diff: Some(lines),
                    }],
                    (None, Some(task)) => vec![Effect::OpenEditor { task, diff: None }],
                    (None, None) => self.no_task(),
                }
            }
            Action::Raw => {
                if self.state.view == View::Detail {
                    self.state.detail_raw = !self.state.detail_raw;
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn no_task(&mut self) -> Vec<Effect> {
        self.state.message = Some("no task selected".into());
        Vec::new()
    }

    /// `e`: refused at once (with the reason `orch-tui edit` gives) when the task's next attempt
    /// has already started; else its prompt is read and the form opens on it.
    fn start_edit(&mut self, task: String) -> Vec<Effect> {
        if let Some(t) = self.state.tasks.iter().find(|t| t.id == task)
            && let Err(why) = decide_edit(&task, t.state, "", "-")
        {
            self.state.message = Some(why);
            return Vec::new();
        }
        vec![Effect::LoadPrompt { task }]
    }

    /// `x`: the note prompt, naming the task. A task whose veto window runs has its countdown
    /// stopped first (a `hold`), so the merge cannot go through while the veto is typed.
    pub(super) fn start_reject(&mut self, task: String) -> Vec<Effect> {
        let in_veto = self
            .state
            .tasks
            .iter()
            .any(|t| t.id == task && t.stage == Some(FunnelStage::Veto));
        self.state.input = Some(InputState {
            purpose: InputPurpose::RejectNote { task: task.clone() },
            text: String::new(),
        });
        if in_veto {
            self.state.message = Some(format!(
                "veto window of `{task}` stopped: nothing merges until you decide"
            ));
            return vec![Effect::Human {
                cmd: HumanCommand::Hold,
                task,
                note: None,
            }];
        }
        Vec::new()
    }
}
