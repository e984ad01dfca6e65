//! Adoption at start (issue 10), one event at a time: a paused task's held agent and a session
//! kept through review, both still alive in their holders after the supervisor of epoch 1 died,
//! are adopted by this one (epoch 2) instead of being reaped.

use super::*;

impl Driver {
    /// Boot epoch 2 over these rows, with these holders answering.
    fn booted_with(
        config: &str,
        tasks: Vec<TaskRec>,
        attempts: Vec<AttemptRec>,
        holders: Vec<HolderFact>,
        now: u64,
    ) -> Driver {
        let mut d = Driver::new(config, tasks.clone(), attempts.clone(), now);
        d.queue.clear();
        d.queue.push_back(Event::Boot(Box::new(Boot {
            tasks,
            attempts,
            recorded_tip: Some(TIP.into()),
            actual_tip: Some(TIP.into()),
            holders,
            ..Boot::default()
        })));
        d.run();
        d
    }

    fn adopts(&self) -> Vec<Adopt> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Effect::Adopt(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    fn spared(&self, id: AttemptId) -> bool {
        self.seen.iter().any(|e| {
            matches!(e, Effect::ReapStale { attempts, keep }
                if keep.contains(&id) && !attempts.iter().any(|(a, _)| *a == id))
        })
    }

    fn holds(&self, id: AttemptId) -> Vec<&'static str> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Effect::Freeze { attempt } if *attempt == id => Some("freeze"),
                Effect::Thaw { attempt } if *attempt == id => Some("thaw"),
                Effect::Interrupt { attempt } if *attempt == id => Some("interrupt"),
                Effect::Continue { attempt } if *attempt == id => Some("continue"),
                Effect::Stop { attempt, .. } if *attempt == id => Some("stop"),
                _ => None,
            })
            .collect()
    }

    /// `orch-tui resume` from another shell.
    fn resumed(&mut self, task: &str) {
        self.states.insert(task.into(), TaskState::Ready);
        let observed = self.observed(&[task.to_string()]);
        self.queue.push_back(Event::Observed(observed));
        self.run();
    }
}

/// Task `a` paused while attempt 1 worked, that attempt still running under epoch 1.
fn paused_rows(agent: Option<&str>) -> (TaskRec, AttemptRec) {
    let mut t = task("a", TaskState::Paused);
    t.paused_from = Some(TaskState::Working);
    t.agent = agent.map(String::from);
    t.changed_ms = 4_000;
    let mut a = finished_attempt("a", 1);
    a.state = AttemptState::Running;
    a.substatus = Substatus::Busy;
    a.pid = Some(PID);
    a.commit = None;
    a.profile = agent.unwrap_or("sim").into();
    (t, a)
}

fn holder(a: &AttemptRec, live: bool, frozen: bool, held_ms: u64) -> HolderFact {
    HolderFact {
        attempt: a.id,
        holder: a.id,
        live_pid: live.then_some(PID),
        exit: (!live).then_some(Exit {
            code: Some(0),
            signal: None,
        }),
        held_ms,
        frozen,
    }
}

#[test]
fn a_frozen_agent_of_a_paused_task_is_adopted_frozen_and_resume_thaws_it() {
    let (t, a) = paused_rows(None);
    let id = a.id;
    let h = holder(&a, true, true, 3_000);
    let mut d = Driver::booted_with(SIM, vec![t], vec![a], vec![h], 10_000);
    let adopts = d.adopts();
    assert_eq!(adopts.len(), 1, "{:?}", d.seen);
    assert!(adopts[0].held, "adopted as held: {adopts:?}");
    assert!(d.spared(id), "its holder is not reaped: {:?}", d.seen);
    assert!(d.holds(id).is_empty(), "already frozen: {:?}", d.holds(id));
    let row = d.sup.model.attempts.get(&id).expect("row");
    assert_eq!((row.state, row.epoch), (AttemptState::Running, 2));
    assert_eq!(row.held_ms, 3_000, "the holder's frozen time is recorded");
    assert_eq!(d.state("a"), Some(TaskState::Paused));
    d.resumed("a");
    assert_eq!(d.holds(id), ["thaw"]);
    assert_eq!(d.state("a"), Some(TaskState::Working));
    assert!(d.setups().is_empty(), "the same attempt goes on");
}

#[test]
fn an_interrupted_session_of_a_paused_task_is_adopted_and_resume_continues_its_turn() {
    let (t, a) = paused_rows(Some("claude"));
    let id = a.id;
    let h = holder(&a, true, false, 0);
    let mut d = Driver::booted_with(INTERACTIVE_CLAUDE, vec![t], vec![a], vec![h], 10_000);
    assert!(d.adopts().first().is_some_and(|a| a.held), "{:?}", d.seen);
    assert!(d.holds(id).is_empty(), "nothing typed at adoption");
    let l = d.sup.live.get(&id).expect("live");
    assert_eq!(
        l.held.map(|h| (h.how, h.since_ms)),
        Some((HoldHow::Interrupted, 4_000)),
        "held since its task was paused"
    );
    d.resumed("a");
    assert_eq!(d.holds(id), ["continue"]);
    assert_eq!(d.state("a"), Some(TaskState::Working));
}

#[test]
fn a_paused_task_whose_agent_ended_in_its_holder_is_recovered_as_before_without_a_failure() {
    let (t, a) = paused_rows(None);
    let id = a.id;
    let h = holder(&a, false, false, 0);
    let d = Driver::booted_with(SIM, vec![t], vec![a], vec![h], 10_000);
    assert!(d.adopts().is_empty());
    let row = d.sup.model.attempts.get(&id).expect("row");
    assert_eq!(row.state, AttemptState::Abandoned);
    let t = d.sup.model.task("a").expect("task");
    assert_eq!((t.state, t.failures), (TaskState::Paused, 0));
    assert_eq!(t.resume_attempt, Some(id), "resume continues its work");
}

#[test]
fn a_session_kept_through_review_is_adopted_and_takes_the_change_request() {
    let mut t = task("a", TaskState::Review);
    t.agent = Some("claude".into());
    let mut a = finished_attempt("a", 1);
    a.pid = Some(PID);
    a.profile = "claude".into();
    let id = a.id;
    let probe = holders_to_probe(std::slice::from_ref(&a), std::slice::from_ref(&t), 2);
    assert_eq!(probe, [(id, id)], "a kept session's holder is asked about");
    let h = holder(&a, true, false, 0);
    let mut d = Driver::booted_with(INTERACTIVE_CLAUDE, vec![t], vec![a], vec![h], 10_000);
    assert_eq!(d.adopts().len(), 1, "{:?}", d.seen);
    assert!(d.spared(id));
    let l = d.sup.live.get(&id).expect("live");
    assert_eq!(l.phase, Phase::InReview { pid: PID });
    // The reviewer asks for changes: a new attempt continues in the same process.
    d.states.insert("a".into(), TaskState::Ready);
    let mut row = d.sup.model.task("a").cloned().expect("row");
    row.note = Some("rename it".into());
    d.edited.insert("a".into(), row);
    let observed = d.observed(&["a".to_string()]);
    d.edited.clear();
    d.queue.push_back(Event::Observed(observed));
    d.run();
    assert!(
        d.seen
            .iter()
            .any(|e| matches!(e, Effect::HandOver { from, .. } if *from == id)),
        "the kept session takes the change request: {:?}",
        d.seen
    );
    assert!(d.setups().is_empty(), "no new process");
}

#[test]
fn a_later_attempt_in_the_same_process_is_probed_at_its_first_attempts_holder() {
    let t = task("a", TaskState::Working);
    let mut first = finished_attempt("a", 1);
    first.pid = Some(PID);
    let mut second = AttemptRec {
        id: AttemptId(2),
        continues: Some(first.id),
        state: AttemptState::Running,
        ..finished_attempt("a", 2)
    };
    second.pid = Some(PID);
    let probe = holders_to_probe(&[first.clone(), second.clone()], &[t], 2);
    assert_eq!(
        probe,
        [(second.id, first.id)],
        "the first one is superseded"
    );
}
