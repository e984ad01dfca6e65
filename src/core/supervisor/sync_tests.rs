//! The sync's decisions, one event at a time: never beside a merge, the tip recorded before the
//! branch moves, and a restart settling each point a crash can leave it at.

use super::*;
use crate::core::config::default_config;
use crate::core::state::TaskState;

const FROM: &str = "1111111111111111111111111111111111111111";
const ONTO: &str = "2222222222222222222222222222222222222222";
const TIP: &str = "3333333333333333333333333333333333333333";

fn supervisor() -> Supervisor {
    let roots = Roots {
        worktrees: "/r/.orch/worktrees".into(),
        logs: "/r/.orch/logs".into(),
    };
    Supervisor::new(default_config(), roots, 2, 7)
}

fn task(id: &str, state: TaskState) -> TaskRec {
    TaskRec {
        prompt: "p".into(),
        agent: Some("sim".into()),
        ..TaskRec::sample(id, state)
    }
}

/// An agent attempt of `task` that committed `commit` on `FROM`.
fn attempt(task: &str, commit: &str) -> AttemptRec {
    AttemptRec {
        worktree: format!("/r/.orch/worktrees/{task}-1"),
        log_dir: "/r/.orch/logs/t".into(),
        base: Some(FROM.into()),
        commit: Some(commit.into()),
        diff_lines: Some(1),
        ..AttemptRec::sample(task, 1)
    }
}

fn asked(recorded: Option<(&str, &str)>) -> SyncState {
    SyncState {
        base_ref: Some("refs/heads/main".into()),
        base_oid: Some("0000000000000000000000000000000000000000".into()),
        request: Some(SyncRequest {
            refname: "refs/heads/main".into(),
            onto: ONTO.into(),
            recorded: recorded.map(|(f, t)| (f.to_string(), t.to_string())),
        }),
        problem: None,
    }
}

fn boot(s: &mut Supervisor, tasks: Vec<TaskRec>, actual: &str, sync: SyncState) -> Vec<Effect> {
    let attempts = tasks
        .iter()
        .filter(|t| t.state == TaskState::Approved)
        .map(|t| attempt(&t.id, "4444444444444444444444444444444444444444"))
        .collect();
    s.step(
        0,
        Event::Boot(Box::new(Boot {
            tasks,
            attempts,
            recorded_tip: Some(FROM.into()),
            actual_tip: Some(actual.into()),
            sync,
            ..Boot::default()
        })),
    )
}

/// Answer every write as committed, until no write is left; every other effect, in order.
fn settle(s: &mut Supervisor, mut effects: Vec<Effect>) -> Vec<Effect> {
    let mut rest = Vec::new();
    while !effects.is_empty() {
        let mut next = Vec::new();
        for e in effects {
            match e {
                Effect::Write { id, .. } => next.extend(s.step(0, Event::Written(id))),
                other => rest.push(other),
            }
        }
        effects = next;
    }
    rest
}

fn writes(effects: &[Effect]) -> Vec<&Op> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Write { ops, .. } => Some(ops),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn a_sync_waits_for_the_merge_in_flight_and_goes_before_the_next_one() {
    let mut s = supervisor();
    let effects = boot(
        &mut s,
        vec![
            task("a", TaskState::Merging),
            task("b", TaskState::Approved),
        ],
        FROM,
        asked(None),
    );
    let effects = settle(&mut s, effects);
    // a was `merging` at the crash: back to approved, and then the sync goes first.
    assert!(
        effects.iter().any(|e| matches!(e, Effect::PrepareSync(_))),
        "{effects:?}"
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::PrepareMerge(_))),
        "no merge beside the sync: {effects:?}"
    );
    assert!(!s.is_settled());
}

#[test]
fn the_replayed_tip_is_recorded_before_the_branch_moves() {
    let mut s = supervisor();
    let effects = boot(&mut s, Vec::new(), FROM, asked(None));
    let effects = settle(&mut s, effects);
    let Some(Effect::PrepareSync(p)) = effects.iter().find(|e| matches!(e, Effect::PrepareSync(_)))
    else {
        panic!("{effects:?}");
    };
    assert_eq!((p.from.as_str(), p.onto.as_str()), (FROM, ONTO));
    let out = s.step(
        0,
        Event::SyncPrepared {
            onto: ONTO.into(),
            from: FROM.into(),
            result: SyncOutcome::Ready {
                tip: TIP.into(),
                results: Vec::new(),
            },
        },
    );
    assert!(
        !out.iter().any(|e| matches!(e, Effect::MoveSync { .. })),
        "no move before the record landed: {out:?}"
    );
    assert!(
        writes(&out)
            .iter()
            .any(|o| matches!(o, Op::RecordSync { tip, .. } if tip == TIP))
    );
    let out = settle(&mut s, out);
    assert!(
        out.iter()
            .any(|e| matches!(e, Effect::MoveSync { tip, from } if tip == TIP && from == FROM)),
        "{out:?}"
    );
    let out = s.step(
        0,
        Event::SyncMoved {
            tip: TIP.into(),
            result: MoveOutcome::Moved,
        },
    );
    assert!(
        writes(&out)
            .iter()
            .any(|o| matches!(o, Op::EndSync { moved: true, .. }))
    );
    settle(&mut s, out);
    assert_eq!(s.model.integration_tip.as_deref(), Some(TIP));
    assert_eq!(s.model.sync.base_oid.as_deref(), Some(ONTO));
    assert!(s.is_settled());
}

#[test]
fn a_restart_after_the_branch_moved_finishes_the_sync_without_a_hold() {
    let mut s = supervisor();
    let effects = boot(&mut s, Vec::new(), TIP, asked(Some((FROM, TIP))));
    let ops = writes(&effects);
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::EndSync { moved: true, .. }))
    );
    assert!(
        !ops.iter().any(|o| matches!(o, Op::SetHold { .. })),
        "{ops:?}"
    );
    let rest = settle(&mut s, effects);
    assert!(
        !rest.iter().any(|e| matches!(e, Effect::MoveSync { .. })),
        "never moved twice: {rest:?}"
    );
    assert_eq!(s.model.integration_tip.as_deref(), Some(TIP));
    assert!(s.model.sync.request.is_none() && s.model.hold.is_none());
}

#[test]
fn a_restart_before_the_branch_moved_moves_it_from_the_record() {
    let mut s = supervisor();
    let effects = boot(&mut s, Vec::new(), FROM, asked(Some((FROM, TIP))));
    let rest = settle(&mut s, effects);
    assert!(
        rest.iter()
            .any(|e| matches!(e, Effect::MoveSync { tip, from } if tip == TIP && from == FROM)),
        "{rest:?}"
    );
    assert!(!rest.iter().any(|e| matches!(e, Effect::PrepareSync(_))));
}

#[test]
fn a_conflict_moves_nothing_and_tells_the_human_the_files() {
    let mut s = supervisor();
    let effects = boot(&mut s, Vec::new(), FROM, asked(None));
    settle(&mut s, effects);
    let out = s.step(
        0,
        Event::SyncPrepared {
            onto: ONTO.into(),
            from: FROM.into(),
            result: SyncOutcome::Conflict {
                files: vec!["src/lib.rs".into()],
            },
        },
    );
    settle(&mut s, out);
    assert_eq!(s.model.integration_tip.as_deref(), Some(FROM));
    let problem = s.model.sync.problem.clone().unwrap_or_default();
    assert!(problem.contains("src/lib.rs") && problem.contains("orch-tui sync"));
    assert!(s.model.sync.request.is_none());
    assert!(s.is_settled());
}

#[test]
fn a_branch_moved_by_someone_else_during_the_move_holds_the_run_and_keeps_the_request() {
    let mut s = supervisor();
    let effects = boot(&mut s, Vec::new(), FROM, asked(Some((FROM, TIP))));
    settle(&mut s, effects);
    let out = s.step(
        0,
        Event::SyncMoved {
            tip: TIP.into(),
            result: MoveOutcome::NotWhereLeft {
                found: Some("5555555555555555555555555555555555555555".into()),
            },
        },
    );
    assert!(
        out.iter()
            .any(|e| matches!(e, Effect::Backup { oid, .. } if oid == FROM))
    );
    settle(&mut s, out);
    assert!(s.model.hold.is_some());
    assert!(
        s.model.sync.request.is_some(),
        "the sync waits for the human"
    );
    assert!(s.is_settled(), "a held run waits for the human");
}

#[test]
fn a_supervisor_that_only_syncs_does_not_wake_for_a_veto_window_it_will_not_close() {
    let mut s = supervisor();
    s.set_only_sync();
    let mut t = task("a", TaskState::Review);
    t.stage = Some(crate::core::domain::FunnelStage::Veto);
    t.stage_until_ms = Some(0);
    let effects = boot(&mut s, vec![t], FROM, asked(None));
    let effects = settle(&mut s, effects);
    assert!(
        effects.iter().any(|e| matches!(e, Effect::PrepareSync(_))),
        "{effects:?}"
    );
    // The window is over, but only an ordinary run approves: waking for it would spin.
    assert_eq!(s.next_wake_ms(), None);
    assert_eq!(s.model.task("a").map(|t| t.state), Some(TaskState::Review));
}
