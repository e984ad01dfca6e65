//! The model's indexes checked against its rows: each index is rebuilt from the rows and
//! compared. Nothing in a run calls this (it walks everything); the simulator calls it after
//! every step, so an op that changes a row without its index fails a seed instead of slowing
//! or misleading a rule much later.

use std::collections::{BTreeMap, BTreeSet};

use super::model::Model;
use crate::core::domain::{AttemptId, AttemptState};
use crate::core::schedule::dispatch_key;
use crate::core::state::TaskState;

impl Model {
    /// The first index that disagrees with the rows, named.
    pub fn index_fault(&self) -> Option<String> {
        let mut attempts_of: BTreeMap<&str, BTreeSet<AttemptId>> = BTreeMap::new();
        for a in self.attempts.values() {
            attempts_of.entry(a.task.as_str()).or_default().insert(a.id);
        }
        let kept: BTreeMap<&str, BTreeSet<AttemptId>> = self
            .attempts_of
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(t, ids)| (t.as_str(), ids.clone()))
            .collect();
        if kept != attempts_of {
            return Some(format!(
                "attempts_of {kept:?} but the rows say {attempts_of:?}"
            ));
        }
        let starting: BTreeSet<AttemptId> = self
            .attempts
            .values()
            .filter(|a| a.state == AttemptState::Starting)
            .map(|a| a.id)
            .collect();
        if starting != self.starting {
            return Some(format!(
                "starting {:?} but the rows say {starting:?}",
                self.starting
            ));
        }
        let mut by_state: BTreeMap<TaskState, BTreeSet<&str>> = BTreeMap::new();
        for t in self.tasks.values() {
            by_state.entry(t.state).or_default().insert(t.id.as_str());
        }
        let kept: BTreeMap<TaskState, BTreeSet<&str>> = self
            .by_state
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(s, ids)| (*s, ids.iter().map(String::as_str).collect()))
            .collect();
        if kept != by_state {
            return Some(format!("by_state {kept:?} but the rows say {by_state:?}"));
        }
        let ready: BTreeSet<(i128, u64, String)> = self
            .in_state(TaskState::Ready)
            .map(|t| dispatch_key(t.priority, t.ready_since_ms, &t.id))
            .collect();
        if ready != self.ready_order {
            return Some(format!(
                "ready_order {:?} but the ready rows say {ready:?}",
                self.ready_order
            ));
        }
        let mut dependents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for t in self.tasks.values() {
            for d in &t.deps {
                dependents
                    .entry(d.as_str())
                    .or_default()
                    .insert(t.id.as_str());
            }
        }
        let kept: BTreeMap<&str, BTreeSet<&str>> = self
            .dependents
            .iter()
            .filter(|(_, ds)| !ds.is_empty())
            .map(|(t, ds)| (t.as_str(), ds.iter().map(String::as_str).collect()))
            .collect();
        if kept != dependents {
            return Some(format!(
                "dependents {kept:?} but the rows say {dependents:?}"
            ));
        }
        None
    }
}
