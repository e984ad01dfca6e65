//! The DAG's level rules: a task is ready when every dependency is done, blocked while any is
//! failed, cancelled or blocked, and pending otherwise. Only tasks next to a change are looked at.

use super::{Supervisor, Then};
use crate::core::dag::next_move;
use crate::core::domain::Actor;
use crate::core::ops::{EventData, Op, Patch};
use crate::core::state::TaskState;

impl Supervisor {
    pub(super) fn dag_rules(&mut self) {
        let dirty = std::mem::take(&mut self.model.dirty);
        let mut look: Vec<String> = Vec::new();
        for id in dirty {
            if let Some(ds) = self.model.dependents.get(&id) {
                look.extend(ds.iter().cloned());
            }
            look.push(id);
        }
        look.sort();
        look.dedup();
        for id in look {
            if self.is_busy(&id) {
                // Its write's answer marks it dirty again if its state changes.
                self.model.dirty.insert(id);
                continue;
            }
            self.dag_rule(&id);
        }
    }

    fn dag_rule(&mut self, id: &str) {
        let Some(t) = self.model.task(id) else {
            return;
        };
        let from = t.state;
        let state_of = |d: &str| self.model.task(d).map(|u| u.state);
        let early = self.faults.unblock_on_any
            && from == TaskState::Blocked
            && t.deps
                .iter()
                .any(|d| state_of(d).is_some_and(|s| !crate::core::dag::blocks(s)));
        let Some((to, upstream)) = (if early {
            Some((TaskState::Pending, None))
        } else {
            next_move(from, &t.deps, state_of)
        }) else {
            return;
        };
        let (patch, data, line) = match to {
            TaskState::Blocked => {
                let up = upstream.unwrap_or_default();
                (
                    Patch {
                        reason: Some(Some(format!("upstream task `{up}` did not finish"))),
                        ..Patch::default()
                    },
                    EventData {
                        upstream: Some(up.clone()),
                        ..EventData::default()
                    },
                    Some(format!("⊘ {id}: blocked by `{up}`")),
                )
            }
            TaskState::Ready => (
                Patch {
                    reason: Some(None),
                    ..Patch::default()
                },
                EventData::why("dependencies done"),
                None,
            ),
            _ => (
                Patch {
                    reason: Some(None),
                    ..Patch::default()
                },
                EventData::why("no dependency blocks it any more"),
                None,
            ),
        };
        let op = Op::Transition {
            task: id.to_string(),
            from,
            to,
            patch,
            actor: Actor::Supervisor,
            attempt: None,
            data,
        };
        let then = line.map_or(Then::Nothing, Then::Say);
        self.write(vec![op], then);
    }
}
