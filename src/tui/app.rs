//! The TUI's state machine: keys → state changes plus effects for the run loop to carry out
//! (background results and engine events: `update.rs`). No terminal and no ledger here, so
//! every binding is testable without either.

use crossterm::event::{KeyCode, KeyEvent};

use super::input::{Modes, encode_key, encode_paste};
use super::keymap::{Action, Keymap};
use super::state::{InputPurpose, InputState, View, ViewState};
use crate::core::domain::AttemptId;
use crate::engine::HumanCommand;

pub use super::effect::Effect;

pub struct App {
    pub state: ViewState,
    pub keymap: Keymap,
    /// The terminal size, for the focused agent's PTY size.
    pub size: (u16, u16),
    /// Human commands sent to the background and not answered yet (what each was).
    pub pending: Vec<String>,
    /// Why the oldest pending command waits, once the ledger was found busy.
    pub waiting_why: Option<String>,
    /// The engine said every task is settled (its next refresh says how the run stands).
    pub settled: bool,
    /// The engine's run has returned.
    pub engine_ended: bool,
    /// The task whose detail / diff was asked for last (older answers are dropped).
    pub detail_task: Option<String>,
    pub diff_task: Option<String>,
    /// Diff stats asked for and not answered yet (by `base..commit`).
    pub stats_asked: std::collections::HashSet<String>,
    /// The done screen's commits were asked for (again after the run moves on).
    pub done_asked: bool,
}

/// Rows above and below the focused screen: header, pane title, footer.
const FOCUS_CHROME_ROWS: u16 = 3;

impl App {
    pub fn new(state: ViewState, keymap: Keymap) -> App {
        let mut state = state;
        state.help = keymap.help();
        state.unfocus_key = keymap.keys(Action::Unfocus).join(" or ");
        App {
            state,
            keymap,
            size: (80, 24),
            pending: Vec::new(),
            waiting_why: None,
            settled: false,
            engine_ended: false,
            detail_task: None,
            diff_task: None,
            stats_asked: Default::default(),
            done_asked: false,
        }
    }

    /// The PTY size that fills the focus view.
    pub fn focus_size(&self) -> (u16, u16) {
        (
            self.size.1.saturating_sub(FOCUS_CHROME_ROWS).max(1),
            self.size.0.max(1),
        )
    }

    pub fn on_resize(&mut self, cols: u16, rows: u16) -> Vec<Effect> {
        self.size = (cols, rows);
        match (self.state.view, self.state.focus) {
            (View::Focus, Some(attempt)) => {
                let (rows, cols) = self.focus_size();
                vec![Effect::Resize {
                    attempt,
                    rows,
                    cols,
                }]
            }
            _ => Vec::new(),
        }
    }

    pub fn on_paste(&mut self, text: &str, modes: Modes) -> Vec<Effect> {
        if self.state.confirm.is_some() {
            return Vec::new();
        }
        if self.state.form.is_some() {
            self.on_form_paste(text);
            return Vec::new();
        }
        if let Some(input) = &mut self.state.input {
            input.text.push_str(&text.replace(['\n', '\r'], " "));
            return Vec::new();
        }
        match (self.state.view, self.state.focus) {
            (View::Focus, Some(attempt)) => vec![Effect::Input {
                attempt,
                bytes: encode_paste(text, modes),
            }],
            _ => Vec::new(),
        }
    }

    /// One key. `modes` are the focused agent's input modes (ignored elsewhere).
    pub fn on_key(&mut self, ev: &KeyEvent, modes: Modes) -> Vec<Effect> {
        let s = &mut self.state;
        if s.quit_prompt {
            return match ev.code {
                // Watching, the agents are another process's to stop (`orch-tui stop`).
                KeyCode::Char('s') | KeyCode::Char('S') if s.watching.is_some() => Vec::new(),
                KeyCode::Char('s') | KeyCode::Char('S') => {
                    s.quit_prompt = false;
                    self.ask_stop()
                }
                KeyCode::Char('l') | KeyCode::Char('L') => {
                    s.quit_prompt = false;
                    vec![Effect::Stop { stop_agents: false }]
                }
                // Watching, the run is in the background already (`l` leaves it there).
                KeyCode::Char('d') | KeyCode::Char('D') if s.watching.is_some() => Vec::new(),
                KeyCode::Char('d') | KeyCode::Char('D') => {
                    s.quit_prompt = false;
                    vec![Effect::Detach]
                }
                KeyCode::Esc | KeyCode::Char('n') => {
                    s.quit_prompt = false;
                    Vec::new()
                }
                _ => Vec::new(),
            };
        }
        if s.confirm.is_some() {
            return self.on_confirm_key(ev);
        }
        if s.form.is_some() {
            return self.on_form_key(ev);
        }
        if s.input.is_some() {
            return self.on_input_key(ev);
        }
        if let Some(fx) = self.permission_key(ev) {
            return fx;
        }
        let action = self.pick(self.keymap.actions(ev));
        let s = &mut self.state;
        // Once the focused agent has ended there is nobody to type to: keys act normally again
        // (Esc returns), rather than vanishing.
        let agent_live = s.focus.is_some_and(|id| s.agent(id).is_some());
        if s.view == View::Focus && agent_live {
            if action == Some(Action::Unfocus) {
                s.view = s.back;
                return Vec::new();
            }
            return match (s.focus, encode_key(ev, modes)) {
                (Some(attempt), Some(bytes)) => vec![Effect::Input { attempt, bytes }],
                _ => Vec::new(),
            };
        }
        match action {
            Some(Action::Unfocus) if s.view == View::Focus => {
                s.view = s.back;
                Vec::new()
            }
            Some(a) => self.on_action(a),
            None => Vec::new(),
        }
    }

    /// Of the actions bound to a key, the one that means something in this view (`n`: the
    /// next search match in the logs, a new task elsewhere).
    fn pick(&self, actions: Vec<Action>) -> Option<Action> {
        let logs_only = |a: &Action| {
            matches!(
                a,
                Action::SearchNext | Action::SearchPrev | Action::Search | Action::Filter
            )
        };
        let in_logs = self.state.view == View::Logs;
        actions
            .iter()
            .find(|a| logs_only(a) == in_logs)
            .or(actions.first())
            .copied()
    }

    /// The task an action applies to in the current view.
    pub(super) fn target_task(&self) -> Option<String> {
        let s = &self.state;
        match s.view {
            View::Inbox => s.inbox.get(s.selected_inbox).and_then(|i| i.task.clone()),
            View::Detail => s.detail.as_ref().map(|d| d.task.clone()),
            View::Diff => s.diff.as_ref().map(|d| d.task.clone()),
            View::Dashboard
            | View::Dag
            | View::Logs
            | View::Help
            | View::Focus
            | View::Timeline => s.selected_task().map(|t| t.id.clone()),
        }
    }

    fn focus(&mut self, attempt: AttemptId) -> Vec<Effect> {
        let s = &mut self.state;
        if s.view != View::Focus {
            s.back = s.view;
        }
        s.view = View::Focus;
        s.focus = Some(attempt);
        let (rows, cols) = self.focus_size();
        vec![Effect::Resize {
            attempt,
            rows,
            cols,
        }]
    }

    fn open_view(&mut self, v: View) -> Vec<Effect> {
        let s = &mut self.state;
        let page = |v: View| matches!(v, View::Help | View::Detail | View::Diff);
        if page(v) {
            if !page(s.view) {
                s.back = s.view;
            }
        } else {
            s.back = View::Dashboard;
        }
        s.view = v;
        s.page_scroll = 0;
        s.message = None;
        match v {
            View::Logs => vec![Effect::LoadLogs],
            View::Timeline => vec![Effect::LoadTimeline],
            _ => Vec::new(),
        }
    }

    fn open_detail(&mut self, task: Option<String>) -> Vec<Effect> {
        match task {
            Some(task) => {
                let mut fx = self.open_view(View::Detail);
                // Another task's detail is not shown while this one loads.
                if self.state.detail.as_ref().is_some_and(|d| d.task != task) {
                    self.state.detail = None;
                }
                self.detail_task = Some(task.clone());
                fx.push(Effect::LoadDetail { task });
                fx
            }
            None => Vec::new(),
        }
    }

    fn scroll(&mut self, delta: isize) {
        let s = &mut self.state;
        let step = |v: usize| v.saturating_add_signed(delta);
        match s.view {
            View::Dashboard => s.selected_task = step(s.selected_task),
            View::Inbox => s.selected_inbox = step(s.selected_inbox),
            View::Logs => {
                // Up (negative) scrolls back in time.
                let max = s.visible_log_lines().len().saturating_sub(1);
                s.logs.follow = false;
                s.logs.scroll = s.logs.scroll.saturating_add_signed(-delta).min(max);
            }
            View::Detail => {
                if let Some(d) = &mut s.detail {
                    d.scroll = step(d.scroll);
                }
            }
            View::Diff => {
                if let Some(d) = &mut s.diff {
                    d.scroll = step(d.scroll).min(d.lines.len().saturating_sub(1));
                }
            }
            View::Dag | View::Help | View::Timeline => s.page_scroll = step(s.page_scroll),
            View::Focus => {}
        }
        s.clamp();
    }

    fn page(&self) -> isize {
        (self.size.1 as isize - 4).max(1)
    }

    pub fn on_action(&mut self, a: Action) -> Vec<Effect> {
        match a {
            Action::Quit => {
                // After the run, quit at once, unless a command is still on its way (the
                // question then says it would be dropped).
                let over = self.state.finished.is_some() || self.state.error.is_some();
                if over && self.pending.is_empty() {
                    return vec![Effect::Exit];
                }
                self.state.quit_prompt = true;
                Vec::new()
            }
            Action::Help => self.open_view(View::Help),
            Action::Back => {
                let s = &mut self.state;
                s.message = None;
                s.view = match s.view {
                    View::Help | View::Detail | View::Diff | View::Focus => s.back,
                    _ => View::Dashboard,
                };
                if s.view == View::Focus {
                    s.view = View::Dashboard;
                }
                Vec::new()
            }
            Action::Dashboard => self.open_view(View::Dashboard),
            Action::Inbox => {
                let mut fx = self.open_view(View::Inbox);
                fx.extend(self.selected_stat());
                fx
            }
            Action::Logs => self.open_view(View::Logs),
            Action::Dag => self.open_view(View::Dag),
            Action::Up => {
                self.scroll(-1);
                self.selected_stat()
            }
            Action::Down => {
                self.scroll(1);
                self.selected_stat()
            }
            Action::PageUp => {
                self.scroll(-self.page());
                self.selected_stat()
            }
            Action::PageDown => {
                self.scroll(self.page());
                self.selected_stat()
            }
            Action::Top => {
                self.scroll(-(isize::MAX / 2));
                self.selected_stat()
            }
            Action::Bottom => {
                if self.state.view == View::Logs {
                    self.state.logs.follow = true;
                    self.state.logs.scroll = 0;
                } else {
                    self.scroll(isize::MAX / 2);
                }
                self.selected_stat()
            }
            Action::NextPane => {
                let s = &mut self.state;
                if !s.agents.is_empty() {
                    s.selected_agent = (s.selected_agent + 1) % s.agents.len();
                }
                Vec::new()
            }
            Action::Open => self.open(),
            Action::Detail => {
                let t = self.target_task();
                self.open_detail(t)
            }
            Action::Focus => {
                let s = &self.state;
                let attempt = match s.view {
                    View::Inbox => s.inbox.get(s.selected_inbox).and_then(|i| {
                        i.attempt.or_else(|| {
                            let task = i.task.as_deref()?;
                            s.agent_for_task(task).map(|a| a.attempt)
                        })
                    }),
                    _ => s.agents.get(s.selected_agent).map(|a| a.attempt),
                };
                match attempt {
                    Some(id) => self.focus(id),
                    None => {
                        self.state.message = Some("no live agent to focus".into());
                        Vec::new()
                    }
                }
            }
            Action::Unfocus => Vec::new(),
            Action::Retry => {
                if let Some(task) = self.target_task() {
                    self.state.input = Some(InputState {
                        purpose: InputPurpose::RetryNote { task },
                        text: String::new(),
                    });
                }
                Vec::new()
            }
            Action::Cancel => {
                if let Some(task) = self.target_task() {
                    self.ask_cancel(task);
                }
                Vec::new()
            }
            Action::Pause => self.human(HumanCommand::Pause),
            Action::Resume => self.human(HumanCommand::Resume),
            Action::PauseAll => self.pause_all(),
            Action::Approve => self.human(HumanCommand::Approve),
            Action::Reject => match self.target_task() {
                Some(task) => self.start_reject(task),
                None => Vec::new(),
            },
            Action::ApproveAll => {
                let tasks = self.state.approvals();
                if tasks.is_empty() {
                    self.state.message = Some("no approval waits in the inbox".into());
                    return Vec::new();
                }
                self.ask_approve_all(tasks);
                Vec::new()
            }
            Action::Diff => match self.target_task() {
                Some(task) => {
                    let mut fx = self.open_view(View::Diff);
                    if self.state.diff.as_ref().is_some_and(|d| d.task != task) {
                        self.state.diff = None;
                    }
                    self.diff_task = Some(task.clone());
                    fx.push(Effect::LoadDiff { task });
                    fx
                }
                None => Vec::new(),
            },
            Action::Follow => {
                let l = &mut self.state.logs;
                l.follow = !l.follow;
                l.scroll = 0;
                Vec::new()
            }
            Action::Search => {
                if self.state.view == View::Logs {
                    self.state.input = Some(InputState {
                        purpose: InputPurpose::Search,
                        text: self.state.logs.search.clone().unwrap_or_default(),
                    });
                }
                Vec::new()
            }
            Action::SearchNext | Action::SearchPrev => {
                if self.state.view == View::Logs {
                    self.jump_to_match(a == Action::SearchNext);
                }
                Vec::new()
            }
            Action::Timeline => self.open_view(View::Timeline),
            Action::NewTask | Action::Edit | Action::Shell | Action::Editor | Action::Raw => {
                self.on_everyday(a)
            }
            Action::Filter => {
                if self.state.view == View::Logs {
                    self.state.input = Some(InputState {
                        purpose: InputPurpose::Filter,
                        text: self.state.logs.filter.clone().unwrap_or_default(),
                    });
                }
                Vec::new()
            }
        }
    }

    fn human(&mut self, cmd: HumanCommand) -> Vec<Effect> {
        match self.target_task() {
            Some(task) => vec![Effect::Human {
                cmd,
                task,
                note: None,
            }],
            None => Vec::new(),
        }
    }

    /// `P`: pause the fleet (every ready, assigned and working task), or, when nothing of it
    /// is left to pause, resume every paused task.
    fn pause_all(&mut self) -> Vec<Effect> {
        use crate::core::state::TaskState;
        let pick = |states: &[TaskState]| -> Vec<String> {
            let tasks = self.state.tasks.iter();
            tasks
                .filter(|t| states.contains(&t.state))
                .map(|t| t.id.clone())
                .collect()
        };
        let pausing = pick(&crate::engine::FLEET_PAUSES);
        let (cmd, tasks) = if pausing.is_empty() {
            (HumanCommand::Resume, pick(&[TaskState::Paused]))
        } else {
            (HumanCommand::Pause, pausing)
        };
        if tasks.is_empty() {
            self.state.message = Some("nothing to pause or resume".into());
        }
        let note = None;
        tasks
            .into_iter()
            .map(|task| Effect::Human {
                cmd,
                task,
                note: note.clone(),
            })
            .collect()
    }

    /// Enter: focus the live agent of the selection, else open its detail.
    fn open(&mut self) -> Vec<Effect> {
        let s = &self.state;
        let (task, attempt) = match s.view {
            View::Inbox => match s.inbox.get(s.selected_inbox) {
                Some(i) => (
                    i.task.clone(),
                    i.attempt.or_else(|| {
                        let task = i.task.as_deref()?;
                        s.agent_for_task(task).map(|a| a.attempt)
                    }),
                ),
                None => (None, None),
            },
            View::Dashboard => match s.selected_task() {
                Some(t) => (
                    Some(t.id.clone()),
                    s.agent_for_task(&t.id).map(|a| a.attempt),
                ),
                None => (None, None),
            },
            _ => return Vec::new(),
        };
        match attempt {
            Some(id) => self.focus(id),
            None => self.open_detail(task),
        }
    }
}
