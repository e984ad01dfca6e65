//! Paused time does not count (issue #9): the time an agent was held for its paused task is kept
//! on its attempt and left out of the allowance of an attempt that continues it, and the run's
//! time budget counts only the time the run did not stand paused.

use super::*;

fn setup_of(d: &Driver, task: &str, n: u32) -> Setup {
    d.seen
        .iter()
        .find_map(|e| match e {
            Effect::Setup(s) if s.task == task && s.n == AttemptNo(n) => Some(s.clone()),
            _ => None,
        })
        .expect("the attempt is set up")
}

fn started(d: &mut Driver, s: &Setup) {
    d.queue.push_back(Event::SetupDone {
        attempt: s.attempt,
        result: Ok(Started {
            pid: 4242,
            base: TIP.into(),
        }),
    });
    d.run();
}

fn pause(d: &mut Driver, task: &str) {
    let mut row = d.sup.model.task(task).cloned().expect("task row");
    row.paused_from = Some(row.state);
    d.states.insert(task.into(), TaskState::Paused);
    d.edited.insert(task.into(), row);
    let observed = d.observed(&[task.to_string()]);
    d.edited.clear();
    d.queue.push_back(Event::Observed(observed));
    d.run();
}

fn resume(d: &mut Driver, task: &str) {
    d.states.insert(task.into(), TaskState::Ready);
    let observed = d.observed(&[task.to_string()]);
    d.queue.push_back(Event::Observed(observed));
    d.run();
}

fn tick(d: &mut Driver, now: u64) {
    d.now = now;
    d.queue.push_back(Event::Tick);
    d.run();
}

fn stops(d: &Driver) -> usize {
    d.seen
        .iter()
        .filter(|e| matches!(e, Effect::Stop { .. }))
        .count()
}

#[test]
fn the_time_an_agent_was_held_is_kept_on_its_attempt() {
    let mut d = Driver::new(SIM, vec![task("a", TaskState::Ready)], Vec::new(), 0);
    d.run();
    let s = setup_of(&d, "a", 1);
    started(&mut d, &s);
    tick(&mut d, 1_000);
    pause(&mut d, "a");
    tick(&mut d, 61_000);
    resume(&mut d, "a");
    let row = d.sup.model.attempts.get(&s.attempt).expect("row");
    assert_eq!(row.held_ms, 60_000, "held from 1 s to 61 s: {row:?}");
    assert_eq!(d.state("a"), Some(TaskState::Working));
}

#[test]
fn an_attempt_that_continues_a_paused_one_gets_what_that_one_ran_not_what_it_was_held() {
    // Attempt 1 lasted 10 s of wall time, 6 s of it held for a pause: it ran 4 s of its 5 s.
    let mut t = task("a", TaskState::Ready);
    t.budget_time_ms = Some(5_000);
    t.resume_attempt = Some(AttemptId(1));
    let first = AttemptRec {
        state: AttemptState::Killed,
        started_ms: 0,
        ended_ms: 10_000,
        held_ms: 6_000,
        ..AttemptRec::sample("a", 1)
    };
    let mut d = Driver::new(SIM, vec![t], vec![first], 20_000);
    d.run();
    let s = setup_of(&d, "a", 2);
    assert!(!s.create_worktree, "it continues attempt 1's worktree");
    started(&mut d, &s);
    // 1 s left: before this fix the 10 s of wall time left nothing (a moment).
    tick(&mut d, 20_999);
    assert_eq!(
        stops(&d),
        0,
        "stopped before its second was up: {:?}",
        d.seen
    );
    tick(&mut d, 21_000);
    assert_eq!(
        stops(&d),
        1,
        "not stopped when its budget ran out: {:?}",
        d.seen
    );
}

#[test]
fn the_run_time_budget_does_not_count_a_run_that_stood_paused() {
    let config = format!("{SIM}[budgets]\nrun = {{ time = \"10s\" }}\n");
    let mut d = Driver::new(&config, vec![task("a", TaskState::Ready)], Vec::new(), 0);
    d.run();
    let s = setup_of(&d, "a", 1);
    started(&mut d, &s);
    tick(&mut d, 4_000);
    pause(&mut d, "a");
    // An hour paused: the only task is paused, its agent held, nothing else moves.
    tick(&mut d, 3_604_000);
    let time = |d: &Driver| {
        d.sup
            .run_gauges()
            .into_iter()
            .find(|g| g.what == "time")
            .map(|g| g.spent)
    };
    assert_eq!(time(&d), Some(4_000.0), "the paused hour was counted");
    assert_eq!(stops(&d), 0, "the run's budget stopped a held agent");
    resume(&mut d, "a");
    tick(&mut d, 3_609_000);
    assert_eq!(time(&d), Some(9_000.0));
    assert_eq!(stops(&d), 0);
    tick(&mut d, 3_610_000);
    assert_eq!(stops(&d), 1, "10 s of running time spend the run's budget");
}

#[test]
fn the_run_clock_runs_while_another_task_works_beside_a_paused_one() {
    let config = format!("{SIM}[budgets]\nrun = {{ time = \"1h\" }}\n");
    let tasks = vec![task("a", TaskState::Ready), task("b", TaskState::Ready)];
    let mut d = Driver::new(&config, tasks, Vec::new(), 0);
    d.run();
    let (sa, sb) = (setup_of(&d, "a", 1), setup_of(&d, "b", 1));
    started(&mut d, &sa);
    started(&mut d, &sb);
    pause(&mut d, "a");
    tick(&mut d, 60_000);
    let spent = d
        .sup
        .run_gauges()
        .into_iter()
        .find(|g| g.what == "time")
        .map(|g| g.spent);
    assert_eq!(spent, Some(60_000.0), "b worked all the while");
}
