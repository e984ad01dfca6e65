//! The merge queue prepares its next merge while the one before it lands (`ahead.rs`).

use super::*;

const T1: &str = "3333333333333333333333333333333333333333";
const T2: &str = "4444444444444444444444444444444444444444";

fn two_approved() -> Driver {
    Driver::new(
        "default_agent = \"sim\"\n",
        vec![
            task("a", TaskState::Approved),
            task("b", TaskState::Approved),
        ],
        vec![
            finished_attempt("a", 1),
            AttemptRec {
                id: AttemptId(2),
                ..finished_attempt("b", 1)
            },
        ],
        0,
    )
}

/// The merge jobs asked for so far: (task, onto).
fn preps(d: &Driver) -> Vec<(String, String)> {
    d.seen
        .iter()
        .filter_map(|e| match e {
            Effect::PrepareMerge(m) => Some((m.task.clone(), m.onto.clone())),
            _ => None,
        })
        .collect()
}

fn moves(d: &Driver) -> Vec<(String, String, String)> {
    d.seen
        .iter()
        .filter_map(|e| match e {
            Effect::MoveIntegration { task, tip, onto } => {
                Some((task.clone(), tip.clone(), onto.clone()))
            }
            _ => None,
        })
        .collect()
}

fn ready(tip: &str, onto: &str) -> MergeOutcome {
    MergeOutcome::Ready {
        tip: tip.into(),
        rechecked: false,
        from: WORK.into(),
        onto: onto.into(),
        results: Vec::new(),
    }
}

/// `a` is prepared onto the recorded tip and its new tip `T1` recorded: the branch move is asked.
fn a_lands_next(d: &mut Driver) {
    d.run();
    assert_eq!(preps(d), vec![("a".to_string(), TIP.to_string())]);
    d.queue.push_back(Event::MergePrepared {
        task: "a".into(),
        result: ready(T1, TIP),
    });
    d.run();
    assert_eq!(moves(d), vec![("a".into(), T1.into(), TIP.into())]);
}

#[test]
fn the_next_merge_is_prepared_on_the_landing_tip_and_lands_without_preparing_again() {
    let mut d = two_approved();
    a_lands_next(&mut d);
    // While `a` moves the branch, `b` is replayed onto the tip `a` writes.
    assert_eq!(
        preps(&d).last(),
        Some(&("b".to_string(), T1.to_string())),
        "b was not prepared ahead: {:?}",
        d.seen
    );
    assert_eq!(d.state("b"), Some(TaskState::Approved), "b waits its turn");
    d.queue.push_back(Event::MergePrepared {
        task: "b".into(),
        result: ready(T2, T1),
    });
    d.queue.push_back(Event::IntegrationMoved {
        task: "a".into(),
        result: MoveOutcome::Moved,
    });
    d.run();
    assert_eq!(d.state("a"), Some(TaskState::Done));
    assert_eq!(
        moves(&d).last(),
        Some(&("b".to_string(), T2.to_string(), T1.to_string())),
        "b's prepared merge was not landed on a's tip"
    );
    assert_eq!(preps(&d).len(), 2, "b was prepared twice: {:?}", preps(&d));
    d.queue.push_back(Event::IntegrationMoved {
        task: "b".into(),
        result: MoveOutcome::Moved,
    });
    d.run();
    assert_eq!(d.state("b"), Some(TaskState::Done));
    assert_eq!(d.sup.model.integration_tip.as_deref(), Some(T2));
}

#[test]
fn a_prepared_merge_whose_tip_never_landed_is_made_again_on_the_recorded_tip() {
    let mut d = two_approved();
    a_lands_next(&mut d);
    d.queue.push_back(Event::MergePrepared {
        task: "b".into(),
        result: ready(T2, T1),
    });
    // Moving the branch failed: `a` escalates, the tip stays where it was.
    d.queue.push_back(Event::IntegrationMoved {
        task: "a".into(),
        result: MoveOutcome::Failed(JobFailure {
            message: "update-ref: cannot lock ref".into(),
            timed_out: false,
        }),
    });
    d.run();
    assert_eq!(d.state("a"), Some(TaskState::Escalated));
    assert_eq!(d.sup.model.integration_tip.as_deref(), Some(TIP));
    assert_eq!(
        preps(&d).last(),
        Some(&("b".to_string(), TIP.to_string())),
        "b must be replayed again onto the tip that is recorded"
    );
    assert_eq!(
        moves(&d).len(),
        1,
        "nothing may land on a tip that never landed"
    );
}

#[test]
fn nothing_else_is_prepared_while_a_merge_prepared_ahead_runs() {
    let mut d = two_approved();
    a_lands_next(&mut d);
    // `a` lands before `b`'s replay answers: `b` waits for it instead of a second merge job.
    d.queue.push_back(Event::IntegrationMoved {
        task: "a".into(),
        result: MoveOutcome::Moved,
    });
    d.run();
    assert_eq!(d.state("a"), Some(TaskState::Done));
    assert_eq!(
        preps(&d).len(),
        2,
        "two merge jobs at once: {:?}",
        preps(&d)
    );
    assert!(!d.sup.is_settled(), "a merge job still runs");
    d.queue.push_back(Event::MergePrepared {
        task: "b".into(),
        result: ready(T2, T1),
    });
    d.run();
    assert_eq!(
        moves(&d).last(),
        Some(&("b".to_string(), T2.to_string(), T1.to_string()))
    );
}

#[test]
fn a_conflict_found_ahead_is_found_again_on_the_recorded_tip_before_it_escalates() {
    let mut d = two_approved();
    a_lands_next(&mut d);
    d.queue.push_back(Event::MergePrepared {
        task: "b".into(),
        result: MergeOutcome::Conflict {
            files: vec!["f.txt".into()],
        },
    });
    d.queue.push_back(Event::IntegrationMoved {
        task: "a".into(),
        result: MoveOutcome::Moved,
    });
    d.run();
    assert_eq!(d.state("b"), Some(TaskState::Merging));
    assert_eq!(
        preps(&d).last(),
        Some(&("b".to_string(), T1.to_string())),
        "b goes through the ordinary merge"
    );
    d.queue.push_back(Event::MergePrepared {
        task: "b".into(),
        result: MergeOutcome::Conflict {
            files: vec!["f.txt".into()],
        },
    });
    d.run();
    assert_eq!(d.state("b"), Some(TaskState::Escalated));
}
