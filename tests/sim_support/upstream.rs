//! The world's side of a sync: the base branch moves upstream and the human asks for a sync.

use orch_tui::core::domain::{Actor, EventKind};
use orch_tui::core::ops::{EventData, Op};
use orch_tui::ledger::{Ledger, with_clock};

use super::world::{Rng, Shared, lock};

/// The base moves upstream — a commit of its own, one that touches what agents write (so the
/// replay conflicts), the integration branch's pull request merged with a commit on top, or
/// nothing — and the human asks for a sync, as `orch-tui sync` does.
pub fn sync_asked(world: &Shared, ledger: &mut Ledger, rng: &mut Rng) {
    let git = lock(world).git.clone();
    let main = "refs/heads/main".to_string();
    let what = {
        let mut r = git.lock();
        let Some(tip) = r.refs.get(&main).cloned() else {
            return;
        };
        let integration = r.refs.get("refs/heads/orch/integration").cloned();
        let roll = rng.below(100);
        let (parent, what) = match (roll, integration) {
            (0..=14, Some(i)) => (Some(i), "the integration branch's pull request merged"),
            (15..=24, _) => (None, "nothing new"),
            _ => (Some(tip), "a commit"),
        };
        if let Some(parent) = parent {
            let mut files = r.commits[&parent].files.clone();
            let n = rng.next() % 1_000_000;
            if roll >= 80 {
                files.insert("shared.txt".into(), format!("upstream {n}"));
            } else {
                files.insert(format!("upstream/{n}.txt"), "up".into());
            }
            let c = r.commit(vec![parent], files, None, "upstream");
            r.refs.insert(main.clone(), c);
        }
        what
    };
    let onto = git.lock().refs[&main].clone();
    let ops = vec![
        Op::RequestSync {
            refname: main.clone(),
            onto: onto.clone(),
        },
        Op::Event {
            task: None,
            attempt: None,
            actor: Actor::Human,
            kind: EventKind::SyncRequested,
            data: EventData {
                commit: Some(onto.clone()),
                ..EventData::default()
            },
        },
    ];
    let now = lock(world).now;
    let r = with_clock(now, || {
        ledger.write(|tx| orch_tui::ledger::apply_ops(tx, &ops, &mut String::new))
    });
    let mut w = lock(world);
    w.note(format!(
        "main moved upstream ({what}); sync onto {onto} asked: {}",
        r.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into())
    ));
    if r.is_ok() {
        w.sync_asked = Some(onto);
    }
    w.inbox.push_back(orch_tui::engine::world::Incoming::Poke);
}
