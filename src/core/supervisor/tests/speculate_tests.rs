//! Dependents during the veto window (issue #9), one event at a time: a dependent starts on the
//! candidate tip while its dependency's veto window runs, never merges before that dependency,
//! and a veto stops it and sends it back to wait for the real base, no failure counted.

use super::*;

const ON_THE_LOOP: &str = "default_agent = \"sim\"\n[funnel]\nautonomy = \"on-the-loop\"\n";

/// `c` in its veto window until 30 s (its work collected), `t` waiting on it.
fn window(config: &str) -> Driver {
    let mut c = task("c", TaskState::Review);
    c.stage = Some(FunnelStage::Veto);
    c.stage_until_ms = Some(30_000);
    let mut t = task("t", TaskState::Pending);
    t.deps = vec!["c".into()];
    let done = AttemptRec {
        id: AttemptId(10),
        ..finished_attempt("c", 1)
    };
    let mut d = Driver::new(config, vec![c, t], vec![done], 1_000);
    d.run();
    d
}

fn setup_of(d: &Driver, task: &str) -> Option<Setup> {
    d.seen.iter().rev().find_map(|e| match e {
        Effect::Setup(s) if s.task == task => Some(s.clone()),
        _ => None,
    })
}

fn started_on(d: &mut Driver, s: &Setup, base: &str) {
    d.queue.push_back(Event::SetupDone {
        attempt: s.attempt,
        result: Ok(Started {
            pid: 4343,
            base: base.into(),
        }),
    });
    d.run();
}

/// The human's `reject c --note ...`: back to ready, its stage cleared.
fn veto(d: &mut Driver, task: &str) {
    d.states.insert(task.into(), TaskState::Ready);
    d.stages.insert(task.into(), None);
    let observed = d.observed(&[task.to_string()]);
    d.queue.push_back(Event::Observed(observed));
    d.run();
}

const SPEC: &str = "3333333333333333333333333333333333333333";

#[test]
fn a_dependent_starts_on_the_candidate_tip_while_the_veto_window_runs() {
    let d = window(ON_THE_LOOP);
    let s = setup_of(&d, "t").expect("t starts before c merged");
    assert_eq!(s.base, TIP, "onto the integration tip ...");
    assert_eq!(
        s.speculative,
        Some(Candidate {
            task: "c".into(),
            base: TIP.into(),
            commit: WORK.into(),
        }),
        "... with c's work replayed"
    );
    let row = d.sup.model.latest_agent("t").expect("t's attempt");
    assert_eq!(row.spec_on.as_deref(), Some("c"), "the attempt names c");
}

#[test]
fn with_speculation_off_a_dependent_waits_for_the_merge() {
    let d = window(&format!("{ON_THE_LOOP}speculative = false\n"));
    assert_eq!(setup_of(&d, "t"), None);
    assert_eq!(d.state("t"), Some(TaskState::Pending));
}

#[test]
fn a_veto_stops_the_dependent_and_it_waits_for_the_real_base_with_no_failure_counted() {
    let mut d = window(ON_THE_LOOP);
    let s = setup_of(&d, "t").expect("t starts");
    started_on(&mut d, &s, SPEC);
    assert_eq!(d.state("t"), Some(TaskState::Working));
    veto(&mut d, "c");
    let stop = d.seen.iter().find_map(|e| match e {
        Effect::Stop { attempt, why } if *attempt == s.attempt => Some(why.clone()),
        _ => None,
    });
    assert!(
        stop.as_deref()
            .is_some_and(|w| w.contains("candidate tip of `c`")),
        "t's agent is stopped, saying why: {stop:?}"
    );
    d.queue.push_back(Event::Exited {
        attempt: s.attempt,
        exit: Exit {
            code: None,
            signal: Some(15),
        },
    });
    d.run();
    let row = d.sup.model.attempts.get(&s.attempt).expect("row");
    assert_eq!(row.state, AttemptState::Abandoned, "{row:?}");
    let t = d.sup.model.task("t").expect("t");
    assert_eq!(t.failures, 0, "not the agent's failure");
    assert_eq!(t.state, TaskState::Pending, "it waits for c again");
    assert!(
        t.reason.as_deref().is_some_and(|r| r.contains("real base")),
        "{t:?}"
    );
    // c is worked on again meanwhile (its attempt 2); t starts only once c is back.
    assert_eq!(d.setups().iter().filter(|(x, _)| x == "t").count(), 1);
}

#[test]
fn a_dependent_done_first_waits_in_review_and_in_the_queue_for_its_candidate() {
    let mut c = task("c", TaskState::Approved);
    c.priority = 0;
    let mut t = task("t", TaskState::Review);
    t.deps = vec!["c".into()];
    t.stage = Some(FunnelStage::Veto);
    t.stage_until_ms = Some(2_000);
    let spec = AttemptRec {
        id: AttemptId(11),
        spec_on: Some("c".into()),
        base: Some(SPEC.into()),
        ..finished_attempt("t", 1)
    };
    let cand = AttemptRec {
        id: AttemptId(10),
        ..finished_attempt("c", 1)
    };
    let mut d = Driver::new(ON_THE_LOOP, vec![c, t], vec![cand, spec], 5_000);
    // Keep the merge of c from finishing: its job's answer never comes.
    d.run();
    assert_eq!(
        d.state("t"),
        Some(TaskState::Review),
        "its window is over, but c has not merged"
    );
    assert!(
        d.sup.next_wake_ms().is_none_or(|w| w > 5_000),
        "waiting for c is not a timer that is due"
    );
    let merging: Vec<String> = d
        .seen
        .iter()
        .filter_map(|e| match e {
            Effect::PrepareMerge(m) => Some(m.task.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(merging, ["c"], "only c goes to the merge queue");
}

#[test]
fn a_human_approved_dependent_does_not_merge_before_its_candidate() {
    let mut c = task("c", TaskState::Review);
    c.stage = Some(FunnelStage::Veto);
    c.stage_until_ms = Some(30_000);
    let mut t = task("t", TaskState::Approved);
    t.deps = vec!["c".into()];
    let spec = AttemptRec {
        id: AttemptId(11),
        spec_on: Some("c".into()),
        base: Some(SPEC.into()),
        ..finished_attempt("t", 1)
    };
    let cand = AttemptRec {
        id: AttemptId(10),
        ..finished_attempt("c", 1)
    };
    let mut d = Driver::new(ON_THE_LOOP, vec![c, t], vec![cand, spec], 1_000);
    d.run();
    assert_eq!(d.state("t"), Some(TaskState::Approved));
    assert!(
        !d.seen.iter().any(|e| matches!(e, Effect::PrepareMerge(_))),
        "t merged before c: {:?}",
        d.seen
    );
    // c is vetoed: t goes back to wait for the real base.
    veto(&mut d, "c");
    assert_eq!(d.state("t"), Some(TaskState::Pending));
    assert_eq!(d.sup.model.task("t").map(|t| t.failures), Some(0));
}

#[test]
fn a_candidate_that_stands_on_a_candidate_tip_itself_is_not_started_on() {
    // a waits out its window; b, started on a's candidate tip, waits out its own; c depends on
    // b only. b's commits replayed onto the integration tip would lack a's work: c waits.
    let mut a = task("a", TaskState::Review);
    a.stage = Some(FunnelStage::Veto);
    a.stage_until_ms = Some(30_000);
    let mut b = task("b", TaskState::Review);
    b.deps = vec!["a".into()];
    b.stage = Some(FunnelStage::Veto);
    b.stage_until_ms = Some(40_000);
    let mut c = task("c", TaskState::Pending);
    c.deps = vec!["b".into()];
    let attempts = vec![
        AttemptRec {
            id: AttemptId(10),
            ..finished_attempt("a", 1)
        },
        AttemptRec {
            id: AttemptId(11),
            spec_on: Some("a".into()),
            base: Some(SPEC.into()),
            ..finished_attempt("b", 1)
        },
    ];
    let mut d = Driver::new(ON_THE_LOOP, vec![a, b, c], attempts, 1_000);
    d.run();
    assert_eq!(d.state("c"), Some(TaskState::Pending));
    assert_eq!(setup_of(&d, "c"), None);
}
