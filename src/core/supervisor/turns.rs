//! Turn ends and permissions as the agent's own output reports them (headless runs): a turn that
//! ended well shows the profile reaches its API; tool calls the agent was refused are recorded,
//! each as an event, and named when an attempt changed nothing.

use super::{Supervisor, Then};
use crate::core::agent_event::{Permission, PermissionKind, TurnEnd};
use crate::core::domain::{Actor, AttemptId, EventKind};
use crate::core::ops::{EventData, Op};

impl Supervisor {
    pub(super) fn on_turn_end(&mut self, id: AttemptId, t: TurnEnd) {
        let Some(l) = self.live.get(&id) else { return };
        let profile = l.profile.clone();
        if t.ok {
            self.infra_ok(&profile);
        }
        for d in t.denials {
            self.on_permission(id, d);
        }
    }

    pub(super) fn on_permission(&mut self, id: AttemptId, p: Permission) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        let (task, n) = (l.task.clone(), l.n);
        match p.kind {
            PermissionKind::Denied => {
                l.facts.denials.push(format!("{} {}", p.tool, p.subject));
                self.write(
                    vec![Op::Event {
                        task: Some(task),
                        attempt: Some(n),
                        actor: Actor::Agent,
                        kind: EventKind::Permission,
                        data: EventData {
                            tool: Some(p.tool),
                            subject: Some(p.subject),
                            decision: Some("denied".into()),
                            why: p.reason,
                            ..EventData::default()
                        },
                    }],
                    Then::Nothing,
                );
            }
            PermissionKind::Request => self.permission_request(id, p),
        }
    }

    /// A request the agent waits on (step 4 answers it from the rules or the inbox).
    fn permission_request(&mut self, id: AttemptId, p: Permission) {
        let _ = (id, p);
    }
}
