//! What background results and the engine's events do to the state (the other half of `app.rs`,
//! which handles keys): pure, so it is tested without a terminal, a ledger or threads.

use super::app::{App, Effect};
use super::jobs::JobDone;
use super::state::{InboxKind, View};
use crate::engine::{EngineEvent, RunEnd};

/// Approvals whose diff stat a refresh asks for at most (the selected one is always asked for).
const STATS_PER_REFRESH: usize = 16;

impl App {
    /// A background job's answer.
    pub fn on_job(&mut self, done: JobDone) -> Vec<Effect> {
        let s = &mut self.state;
        match done {
            JobDone::Refreshed(r) => {
                let (done, total) = (r.done, r.total);
                super::data::apply(s, *r);
                if self.settled && !self.engine_ended {
                    // The engine keeps supervising (the human may still act on the inbox); say
                    // where the run stands and let `q` quit without the stop-or-leave question.
                    s.finished = Some(if done == total {
                        "all done · q quits".to_string()
                    } else {
                        format!(
                            "{} of {total} not done: see the inbox · q quits",
                            total - done
                        )
                    });
                }
                let mut fx = self.approval_stats();
                if super::render::all_done(&self.state) && !self.done_asked {
                    self.done_asked = true;
                    fx.push(Effect::LoadDone);
                }
                // Open pages follow the ledger.
                match (self.state.view, self.detail_task.clone()) {
                    (View::Detail, Some(task)) => fx.push(Effect::LoadDetail { task }),
                    (View::Timeline, _) => fx.push(Effect::LoadTimeline),
                    _ => {}
                }
                fx
            }
            JobDone::Detail { task, result } => {
                if self.detail_task.as_deref() == Some(task.as_str()) {
                    match result {
                        Ok(Some(mut d)) => {
                            // A reload keeps the reader's place.
                            if let Some(old) = s.detail.as_ref().filter(|o| o.task == d.task) {
                                d.scroll = old.scroll;
                            }
                            s.detail = Some(*d);
                        }
                        Ok(None) => s.detail = None,
                        Err(e) => s.message = Some(e),
                    }
                }
                Vec::new()
            }
            JobDone::Diff { task, result } => {
                if self.diff_task.as_deref() == Some(task.as_str()) {
                    match result {
                        Ok(d) => s.diff = Some(*d),
                        Err(e) => {
                            s.diff = None;
                            s.message = Some(e);
                        }
                    }
                }
                Vec::new()
            }
            JobDone::Stat { range, stat } => {
                self.stats_asked.remove(&range);
                s.stat_cache.insert(range, stat);
                Vec::new()
            }
            JobDone::Timeline(r) => {
                match r {
                    Ok(t) => s.timeline = Some(t),
                    Err(e) => s.message = Some(e),
                }
                Vec::new()
            }
            JobDone::Logs(r) => {
                match r {
                    Ok(Some(lines)) => s.logs.lines = lines,
                    Ok(None) => {}
                    Err(e) => s.message = Some(e),
                }
                Vec::new()
            }
            JobDone::Waiting { what: _, why } => {
                self.waiting_why = Some(why);
                self.show_waiting();
                Vec::new()
            }
            JobDone::Human { what, message } => {
                if let Some(i) = self.pending.iter().position(|p| *p == what) {
                    self.pending.remove(i);
                }
                if self.pending.is_empty() {
                    self.waiting_why = None;
                }
                self.show_waiting();
                self.state.message = Some(message);
                vec![Effect::Refresh]
            }
            JobDone::Form(result) => self.on_form_answer(result),
            JobDone::Done(summary) => {
                s.done_summary = Some(summary);
                Vec::new()
            }
            JobDone::Prompt { task, result } => {
                self.on_prompt_loaded(task, result);
                Vec::new()
            }
            JobDone::Worktree {
                task,
                editor,
                result,
            } => match result {
                Ok(dir) => vec![Effect::RunIn { task, dir, editor }],
                Err(e) => {
                    self.state.message = Some(e);
                    Vec::new()
                }
            },
            JobDone::Failed(e) => {
                s.message = Some(e);
                Vec::new()
            }
        }
    }

    /// A human command went to the background: remember it until it is answered.
    pub fn sent(&mut self, what: String) {
        self.pending.push(what);
        self.show_waiting();
    }

    /// The footer's note while commands wait for the ledger.
    fn show_waiting(&mut self) {
        self.state.pending_commands = self.pending.len();
        self.state.waiting = match (&self.waiting_why, self.pending.is_empty()) {
            (Some(why), false) => Some(format!(
                "waiting for the ledger: {} — {why}; it goes through when the ledger is free \
                 (keys still work)",
                self.pending.join(", ")
            )),
            _ => None,
        };
    }

    /// An event from the engine.
    pub fn on_engine(&mut self, ev: EngineEvent) -> Vec<Effect> {
        match ev {
            // The output hook's business (the loop marks the screens dirty).
            EngineEvent::AgentOutput { .. } => Vec::new(),
            EngineEvent::Waiting(why) => {
                // The supervisor waits for the ledger (busy, disk full): say so where it shows.
                self.state.message = Some(why);
                Vec::new()
            }
            EngineEvent::Changed => {
                // Something moves again (e.g. a retry from the inbox after the run had settled).
                if !self.engine_ended {
                    self.settled = false;
                    self.state.finished = None;
                    self.done_asked = false;
                    self.state.done_summary = None;
                }
                vec![Effect::Refresh]
            }
            EngineEvent::Finished => {
                self.settled = true;
                vec![Effect::Refresh]
            }
        }
    }

    /// `Engine::run` returned.
    pub fn on_engine_ended(&mut self, end: &Result<RunEnd, String>) -> Vec<Effect> {
        self.engine_ended = true;
        self.state.finished = Some(match end {
            Ok(RunEnd::AllDone) => "all done · q quits".to_string(),
            Ok(RunEnd::Unfinished) => "run settled, some tasks unfinished · q quits".into(),
            Ok(RunEnd::Stopped) => "stopped".into(),
            Err(_) => "supervisor failed · q quits".into(),
        });
        if let Err(e) = end {
            self.state.error = Some(e.clone());
        }
        vec![Effect::Refresh]
    }

    /// The diff stat of the selected inbox item, when it is an approval whose stat is unknown.
    pub fn selected_stat(&mut self) -> Vec<Effect> {
        if self.state.view != View::Inbox {
            return Vec::new();
        }
        let i = self.state.selected_inbox;
        self.stat_for(i).into_iter().collect()
    }

    /// Diff stats of the first approvals in the inbox and of the selected item.
    fn approval_stats(&mut self) -> Vec<Effect> {
        let mut fx: Vec<Effect> = (0..self.state.inbox.len())
            .filter(|&i| matches!(self.state.inbox[i].kind, InboxKind::Approval(_)))
            .take(STATS_PER_REFRESH)
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|i| self.stat_for(i))
            .collect();
        fx.extend(self.selected_stat());
        fx
    }

    fn stat_for(&mut self, i: usize) -> Option<Effect> {
        let InboxKind::Approval(a) = &self.state.inbox.get(i)?.kind else {
            return None;
        };
        let (base, commit) = (a.base.clone()?, a.commit.clone()?);
        let range = format!("{base}..{commit}");
        if self.state.stat_cache.contains_key(&range) || !self.stats_asked.insert(range) {
            return None;
        }
        Some(Effect::LoadDiffStat { base, commit })
    }
}
