//! The new-task form (`n`) and the prompt editor (`e`): plain state and its keys. What is typed
//! goes through the same decisions as `orch-tui add` / `orch-tui edit` (`engine::new_tasks`,
//! run on the write lane), so a task made here is checked exactly like a plan's; its problems
//! come back into the form, which stays open with everything typed.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Effect};
use super::confirm::{Ask, Confirm};
use crate::core::new_task::Draft;

/// The form's fields, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title,
    Prompt,
    Deps,
    Agent,
    Budget,
}

const NEW_FIELDS: [Field; 5] = [
    Field::Title,
    Field::Prompt,
    Field::Deps,
    Field::Agent,
    Field::Budget,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormKind {
    /// A new task (`orch-tui add`).
    New,
    /// A new prompt for this task (`orch-tui edit`); only the prompt field.
    Edit { task: String, original: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskForm {
    pub kind: FormKind,
    pub field: Field,
    pub title: String,
    /// Several lines (enter is a new line here).
    pub prompt: String,
    /// The dependencies picked, in the task list's order.
    pub deps: Vec<String>,
    /// The row of the task list the dependency picker is on.
    pub dep_cursor: usize,
    pub agent: String,
    /// `time=20m,tokens=400000,cost_usd=3`, any of them.
    pub budget: String,
    /// What the last submit was refused for, one problem a line.
    pub errors: Vec<String>,
    /// Submitted, no answer yet (keys other than esc wait).
    pub sending: bool,
}

impl TaskForm {
    pub fn new_task() -> TaskForm {
        TaskForm {
            kind: FormKind::New,
            field: Field::Title,
            title: String::new(),
            prompt: String::new(),
            deps: Vec::new(),
            dep_cursor: 0,
            agent: String::new(),
            budget: String::new(),
            errors: Vec::new(),
            sending: false,
        }
    }

    pub fn edit(task: String, prompt: String) -> TaskForm {
        TaskForm {
            kind: FormKind::Edit {
                task,
                original: prompt.clone(),
            },
            field: Field::Prompt,
            prompt,
            ..TaskForm::new_task()
        }
    }

    fn fields(&self) -> &'static [Field] {
        match self.kind {
            FormKind::New => &NEW_FIELDS,
            FormKind::Edit { .. } => &[Field::Prompt],
        }
    }

    /// Something typed would be lost by closing.
    pub fn touched(&self) -> bool {
        match &self.kind {
            FormKind::New => {
                !(self.title.is_empty()
                    && self.prompt.is_empty()
                    && self.deps.is_empty()
                    && self.agent.is_empty()
                    && self.budget.is_empty())
            }
            FormKind::Edit { original, .. } => self.prompt != *original,
        }
    }

    fn text_mut(&mut self) -> Option<&mut String> {
        match self.field {
            Field::Title => Some(&mut self.title),
            Field::Prompt => Some(&mut self.prompt),
            Field::Agent => Some(&mut self.agent),
            Field::Budget => Some(&mut self.budget),
            Field::Deps => None,
        }
    }

    fn step(&mut self, forward: bool) {
        let fields = self.fields();
        let i = fields.iter().position(|f| *f == self.field).unwrap_or(0);
        let n = fields.len();
        self.field = fields[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }];
    }

    /// What `orch-tui add` would be given.
    pub fn draft(&self) -> Draft {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Draft {
            prompt: self.prompt.clone(),
            id: None,
            title: some(&self.title),
            after: self.deps.clone(),
            agent: some(&self.agent),
            budget: some(&self.budget),
            priority: None,
            checks: Vec::new(),
        }
    }
}

impl App {
    /// `n`: an empty form.
    pub(super) fn open_new_task(&mut self) -> Vec<Effect> {
        if self.state.form.is_none() {
            self.state.form = Some(TaskForm::new_task());
        }
        Vec::new()
    }

    /// The task's prompt arrived (after `e`): the form opens on it.
    pub fn on_prompt_loaded(&mut self, task: String, result: Result<String, String>) {
        match result {
            Ok(prompt) => self.state.form = Some(TaskForm::edit(task, prompt)),
            Err(e) => self.state.message = Some(e),
        }
    }

    /// The text `$EDITOR` left (ctrl-e in the prompt field).
    pub fn on_editor_text(&mut self, result: Result<String, String>) {
        match (result, &mut self.state.form) {
            (Ok(text), Some(f)) => {
                f.prompt = text.trim_end_matches('\n').to_string();
                f.field = Field::Prompt;
            }
            (Err(e), _) => self.state.message = Some(e),
            (Ok(_), None) => {}
        }
    }

    /// The write lane's answer to a submit: closed with the result line, or the problems shown
    /// in the form (nothing was written then).
    pub fn on_form_answer(&mut self, result: Result<String, Vec<String>>) -> Vec<Effect> {
        match result {
            Ok(line) => {
                self.state.form = None;
                self.state.message = Some(line);
                vec![Effect::Refresh]
            }
            Err(problems) => {
                if let Some(f) = &mut self.state.form {
                    f.sending = false;
                    f.errors = problems;
                } else {
                    self.state.message = problems.into_iter().next();
                }
                Vec::new()
            }
        }
    }

    pub(super) fn on_form_paste(&mut self, text: &str) {
        if let Some(f) = &mut self.state.form {
            let multi = f.field == Field::Prompt;
            if let Some(t) = f.text_mut() {
                if multi {
                    t.push_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
                } else {
                    t.push_str(&text.replace(['\n', '\r'], " "));
                }
            }
        }
    }

    pub(super) fn on_form_key(&mut self, ev: &KeyEvent) -> Vec<Effect> {
        let tasks: Vec<String> = self.state.tasks.iter().map(|t| t.id.clone()).collect();
        let Some(f) = &mut self.state.form else {
            return Vec::new();
        };
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        if ev.code == KeyCode::Esc {
            if f.touched() {
                self.state.confirm = Some(Confirm {
                    title: match &f.kind {
                        FormKind::New => "Throw this new task away?".to_string(),
                        FormKind::Edit { task, .. } => format!("Drop your edit of `{task}`?"),
                    },
                    lines: vec!["what you typed is lost; n keeps the form".into()],
                    ask: Ask::DiscardForm,
                });
            } else {
                self.state.form = None;
            }
            return Vec::new();
        }
        if f.sending {
            return Vec::new();
        }
        match ev.code {
            KeyCode::Char('s') if ctrl => return self.submit_form(),
            KeyCode::Char('e') if ctrl => {
                return if f.field == Field::Prompt {
                    vec![Effect::EditText {
                        text: f.prompt.clone(),
                    }]
                } else {
                    f.errors = vec!["ctrl-e opens the prompt in $EDITOR: tab to it first".into()];
                    Vec::new()
                };
            }
            KeyCode::Tab => f.step(true),
            KeyCode::BackTab => f.step(false),
            KeyCode::Enter => match f.field {
                Field::Prompt => f.prompt.push('\n'),
                Field::Budget => return self.submit_form(),
                _ => f.step(true),
            },
            KeyCode::Up if f.field == Field::Deps => f.dep_cursor = f.dep_cursor.saturating_sub(1),
            KeyCode::Down if f.field == Field::Deps => {
                f.dep_cursor = (f.dep_cursor + 1).min(tasks.len().saturating_sub(1));
            }
            KeyCode::Char(' ') if f.field == Field::Deps => {
                if let Some(id) = tasks.get(f.dep_cursor) {
                    if let Some(i) = f.deps.iter().position(|d| d == id) {
                        f.deps.remove(i);
                    } else {
                        f.deps.push(id.clone());
                        // The task list's order, whatever the order of picking.
                        f.deps.sort_by_key(|d| tasks.iter().position(|t| t == d));
                    }
                }
            }
            KeyCode::Char(c) if !ctrl => {
                if let Some(t) = f.text_mut() {
                    t.push(c);
                }
            }
            KeyCode::Backspace => {
                if let Some(t) = f.text_mut() {
                    t.pop();
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn submit_form(&mut self) -> Vec<Effect> {
        let Some(f) = &mut self.state.form else {
            return Vec::new();
        };
        if f.prompt.trim().is_empty() {
            f.errors = vec!["the prompt is empty: write the instructions for the agent".into()];
            f.field = Field::Prompt;
            return Vec::new();
        }
        f.sending = true;
        f.errors.clear();
        match &f.kind {
            FormKind::New => vec![Effect::AddTask { draft: f.draft() }],
            FormKind::Edit { task, .. } => vec![Effect::EditPrompt {
                task: task.clone(),
                prompt: f.prompt.clone(),
            }],
        }
    }
}
