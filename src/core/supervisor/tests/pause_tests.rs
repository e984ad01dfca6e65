//! Pause keeps the work (issue #9 part 3), one event at a time: a paused task's agent is held,
//! not stopped; its time budget stands still; resume continues the same attempt; an edit, a
//! cancel or a restart while paused end it as documented in docs/architecture.md.

use super::*;

impl Driver {
    /// Boot with one ready task and run it until its agent runs (pid 4242); its attempt id.
    pub(super) fn working(config: &str, t: TaskRec) -> (Driver, AttemptId) {
        let mut d = Driver::new(config, vec![t], Vec::new(), 0);
        d.run();
        let setup = d
            .seen
            .iter()
            .find_map(|e| match e {
                Effect::Setup(s) => Some(s.clone()),
                _ => None,
            })
            .expect("the task is started");
        d.queue.push_back(Event::SetupDone {
            attempt: setup.attempt,
            result: Ok(Started {
                pid: 4242,
                base: TIP.into(),
            }),
        });
        d.run();
        assert_eq!(d.state(&setup.task), Some(TaskState::Working));
        (d, setup.attempt)
    }

    /// Another process wrote the task's row (`orch-tui pause`, `resume`, `edit`): the
    /// supervisor is told, as the executor tells it after a poke.
    pub(super) fn human_writes(
        &mut self,
        task: &str,
        to: TaskState,
        edit: impl FnOnce(&mut TaskRec),
    ) {
        let mut row = self.sup.model.task(task).cloned().expect("task row");
        if to == TaskState::Paused {
            row.paused_from = Some(row.state);
        }
        edit(&mut row);
        self.states.insert(task.into(), to);
        self.edited.insert(task.into(), row);
        let observed = self.observed(&[task.to_string()]);
        self.edited.clear();
        self.queue.push_back(Event::Observed(observed));
        self.run();
    }

    pub(super) fn at(&mut self, now: u64) {
        self.now = now;
        self.queue.push_back(Event::Tick);
        self.run();
    }

    pub(super) fn effects_on(&self, attempt: AttemptId) -> Vec<&'static str> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Effect::Freeze { attempt: a } if *a == attempt => Some("freeze"),
                Effect::Thaw { attempt: a } if *a == attempt => Some("thaw"),
                Effect::Interrupt { attempt: a } if *a == attempt => Some("interrupt"),
                Effect::Continue { attempt: a } if *a == attempt => Some("continue"),
                Effect::Stop { attempt: a, .. } if *a == attempt => Some("stop"),
                _ => None,
            })
            .collect()
    }
}

fn budgeted(ms: u64) -> TaskRec {
    let mut t = task("a", TaskState::Ready);
    t.budget_time_ms = Some(ms);
    t
}

#[test]
fn a_pause_while_the_agent_works_freezes_it_and_resume_continues_the_same_attempt() {
    let (mut d, id) = Driver::working(SIM, budgeted(1_000));
    d.at(200);
    d.human_writes("a", TaskState::Paused, |_| {});
    assert_eq!(d.effects_on(id), ["freeze"], "held, not stopped");
    assert!(d.sup.live().get(&id).is_some_and(|l| l.held.is_some()));
    assert_eq!(
        d.sup.next_wake_ms(),
        None,
        "no timer runs for a held agent's budget"
    );
    // Long past the budget's first deadline: a held agent's clock stands still.
    d.at(5_200);
    assert_eq!(d.effects_on(id), ["freeze"], "{:?}", d.seen);
    d.human_writes("a", TaskState::Ready, |_| {});
    assert_eq!(
        d.state("a"),
        Some(TaskState::Working),
        "taken back, not re-dispatched"
    );
    assert_eq!(d.effects_on(id), ["freeze", "thaw"]);
    assert_eq!(d.setups().len(), 1, "no new attempt: {:?}", d.setups());
    let row = d.sup.model.attempts.get(&id).expect("row");
    assert!(row.state.is_live(), "the same attempt runs on: {row:?}");
    // It ran 200 ms before the pause: 800 ms of its budget are left from the resume at 5200.
    assert_eq!(d.sup.next_wake_ms(), Some(6_000));
    d.at(5_900);
    assert_eq!(d.effects_on(id), ["freeze", "thaw"]);
    d.at(6_000);
    assert_eq!(d.effects_on(id), ["freeze", "thaw", "stop"]);
}

#[test]
fn an_interactive_claude_session_has_its_turn_interrupted_and_continued() {
    let mut t = task("a", TaskState::Ready);
    t.agent = Some("claude".into());
    let (mut d, id) = Driver::working(INTERACTIVE_CLAUDE, t);
    d.human_writes("a", TaskState::Paused, |_| {});
    assert_eq!(d.effects_on(id), ["interrupt"]);
    d.human_writes("a", TaskState::Ready, |_| {});
    assert_eq!(d.effects_on(id), ["interrupt", "continue"]);
    assert_eq!(d.state("a"), Some(TaskState::Working));
    assert_eq!(d.setups().len(), 1);
}

#[test]
fn a_session_that_waits_for_the_human_is_held_without_a_key_typed_into_it() {
    let mut t = task("a", TaskState::Ready);
    t.agent = Some("claude".into());
    let (mut d, id) = Driver::working(INTERACTIVE_CLAUDE, t);
    if let Some(a) = d.sup.model.attempts.get_mut(&id) {
        a.substatus = Substatus::WaitingInput;
    }
    d.human_writes("a", TaskState::Paused, |_| {});
    assert!(d.sup.live().get(&id).is_some_and(|l| l.held.is_some()));
    d.human_writes("a", TaskState::Ready, |_| {});
    assert_eq!(d.state("a"), Some(TaskState::Working));
    assert!(
        d.effects_on(id).is_empty(),
        "an Escape or a 'go on' would land in its question: {:?}",
        d.seen
    );
}

#[test]
fn a_prompt_edited_while_paused_stops_the_held_attempt_and_starts_a_fresh_one() {
    let (mut d, id) = Driver::working(SIM, task("a", TaskState::Ready));
    d.human_writes("a", TaskState::Paused, |_| {});
    d.human_writes("a", TaskState::Ready, |t| {
        t.prompt = "do it the other way".into()
    });
    assert_eq!(d.effects_on(id), ["freeze", "stop"]);
    assert_eq!(
        d.setups().len(),
        1,
        "nothing new before the old one is gone"
    );
    d.queue.push_back(Event::Exited {
        attempt: id,
        exit: Exit {
            code: None,
            signal: Some(15),
        },
    });
    d.run();
    let old = d.sup.model.attempts.get(&id).expect("row");
    assert_eq!(old.state, AttemptState::Abandoned, "not a failure: {old:?}");
    assert_eq!(d.sup.model.task("a").map(|t| t.failures), Some(0));
    assert_eq!(
        d.setups().last().map(|(_, n)| n.0),
        Some(2),
        "{:?}",
        d.setups()
    );
}

#[test]
fn a_cancel_while_paused_stops_the_held_agent() {
    let (mut d, id) = Driver::working(SIM, task("a", TaskState::Ready));
    d.human_writes("a", TaskState::Paused, |_| {});
    d.human_writes("a", TaskState::Cancelled, |_| {});
    assert_eq!(d.effects_on(id), ["freeze", "stop"]);
}

#[test]
fn a_pause_while_the_worktree_is_set_up_still_abandons_that_attempt() {
    let mut d = Driver::new(SIM, vec![task("a", TaskState::Ready)], Vec::new(), 0);
    d.run();
    let setup = d
        .seen
        .iter()
        .find_map(|e| match e {
            Effect::Setup(s) => Some(s.clone()),
            _ => None,
        })
        .expect("started");
    d.human_writes("a", TaskState::Paused, |_| {});
    d.queue.push_back(Event::SetupDone {
        attempt: setup.attempt,
        result: Ok(Started {
            pid: 4242,
            base: TIP.into(),
        }),
    });
    d.run();
    assert_eq!(d.effects_on(setup.attempt), ["stop"], "{:?}", d.seen);
}

#[test]
fn a_restart_while_paused_reaps_the_frozen_agent_and_resume_continues_its_attempt() {
    let mut t = task("a", TaskState::Paused);
    t.paused_from = Some(TaskState::Working);
    let mut a = finished_attempt("a", 1);
    a.state = AttemptState::Running;
    a.substatus = Substatus::Busy;
    a.pid = Some(4242);
    a.commit = None;
    let id = a.id;
    // The supervisor of epoch 1 was killed while `a` was paused; this one is epoch 2.
    let mut d = Driver::new(SIM, vec![t], vec![a], 10_000);
    d.run();
    assert!(
        d.seen
            .iter()
            .any(|e| matches!(e, Effect::ReapStale { attempts, .. }
            if attempts.contains(&(id, Some(4242))))),
        "the frozen process is reaped: {:?}",
        d.seen
    );
    let row = d.sup.model.attempts.get(&id).expect("row");
    assert_eq!(row.state, AttemptState::Abandoned);
    assert_eq!(
        d.state("a"),
        Some(TaskState::Paused),
        "still the human's pause"
    );
    let t = d.sup.model.task("a").expect("row");
    assert_eq!(t.paused_from, Some(TaskState::Working), "{t:?}");
    assert_eq!(t.resume_attempt, Some(id), "marked to continue: {t:?}");
    assert!(d.setups().is_empty(), "nothing starts until it is resumed");
    d.human_writes("a", TaskState::Ready, |_| {});
    assert_eq!(d.setups(), [("a".to_string(), AttemptNo(2))]);
    let setup = d
        .seen
        .iter()
        .find_map(|e| match e {
            Effect::Setup(s) => Some(s.clone()),
            _ => None,
        })
        .expect("setup");
    assert_eq!(
        setup.worktree, "/w/a-1",
        "it continues in the same worktree"
    );
}

#[test]
fn a_held_attempt_that_ends_while_held_keeps_the_last_stretch_of_its_hold() {
    // Frozen at 1 s, cancelled at 5 s, gone at 6 s: held for 5 s, none of it running time.
    let (mut d, id) = Driver::working(SIM, task("a", TaskState::Ready));
    d.at(1_000);
    d.human_writes("a", TaskState::Paused, |_| {});
    d.at(5_000);
    d.human_writes("a", TaskState::Cancelled, |_| {});
    d.at(6_000);
    d.queue.push_back(Event::Exited {
        attempt: id,
        exit: Exit {
            code: None,
            signal: Some(15),
        },
    });
    d.run();
    let row = d.sup.model.attempts.get(&id).expect("row");
    assert_eq!(row.state, AttemptState::Abandoned, "{row:?}");
    assert_eq!(
        row.held_ms, 5_000,
        "the hold was lost with the attempt: {row:?}"
    );
}

#[test]
fn a_run_stopped_while_an_agent_is_held_keeps_the_time_it_was_held() {
    // The next start finishes the attempt; the hold so far is written when the run stops.
    let (mut d, id) = Driver::working(SIM, task("a", TaskState::Ready));
    d.at(1_000);
    d.human_writes("a", TaskState::Paused, |_| {});
    d.now = 4_000;
    d.queue.push_back(Event::Stop { stop_agents: true });
    d.run();
    let row = d.sup.model.attempts.get(&id).expect("row");
    assert_eq!(row.held_ms, 3_000, "{row:?}");
    assert_eq!(d.effects_on(id), ["freeze", "stop"]);
}
