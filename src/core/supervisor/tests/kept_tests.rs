//! An interactive session kept alive through review (issue #8 part 6), one event at a time:
//! `done` sends its work to review while the process stays; a change request is typed into the
//! same session (never while the human types there) as a new attempt that continues it; the
//! session is ended when its task merges or is cancelled; a headless agent is ended as before.

use super::*;
use crate::core::domain::Reported;

const CLAUDE: &str = r#"
default_agent = "claude"
[funnel]
checks = ["make check"]
[agents.claude]
command = ["claude", "-p", "{prompt}"]
interactive = ["claude", "{prompt}"]
mode = "interactive"
adapter = "claude"
"#;

const HEADLESS: &str = "default_agent = \"sim\"\n[funnel]\nchecks = [\"make check\"]\n";

impl Driver {
    /// Boot with task `a` ready and run it until its agent runs; its attempt id.
    fn running(config: &str) -> (Driver, AttemptId) {
        let mut t = task("a", TaskState::Ready);
        if config == CLAUDE {
            t.agent = Some("claude".into());
        }
        let mut d = Driver::new(config, vec![t], Vec::new(), 0);
        d.run();
        let id = d
            .seen
            .iter()
            .find_map(|e| match e {
                Effect::Setup(s) => Some(s.attempt),
                _ => None,
            })
            .expect("the task is started");
        d.queue.push_back(Event::SetupDone {
            attempt: id,
            result: Ok(Started {
                pid: PID,
                base: TIP.into(),
            }),
        });
        d.run();
        assert_eq!(d.state("a"), Some(TaskState::Working));
        (d, id)
    }

    /// The agent ran `worker done` (another process wrote its row; the executor was poked).
    fn reports_done(&mut self, id: AttemptId) {
        if let Some(a) = self.sup.model.attempts.get_mut(&id) {
            a.reported = Some(Reported::Done);
        }
        let observed = self.observed(&["a".to_string()]);
        self.queue.push_back(Event::Observed(observed));
        self.run();
    }

    fn collected(&mut self, id: AttemptId, tip: &str) {
        self.queue.push_back(Event::Collected {
            attempt: id,
            result: Ok(Change {
                tip: Some(tip.into()),
                diff_lines: 3,
                agent_committed: false,
                strays: Vec::new(),
            }),
        });
        self.run();
    }

    fn checks(&mut self, n: u32, passed: bool) {
        self.queue.push_back(Event::ChecksDone {
            task: "a".into(),
            n: AttemptNo(n),
            results: vec![CheckOutcome {
                command: "make check".into(),
                passed,
                exit_code: Some(if passed { 0 } else { 1 }),
                timed_out: false,
                duration_ms: 5,
                tail: if passed {
                    String::new()
                } else {
                    "test_x failed".into()
                },
            }],
        });
        self.run();
    }

    fn stops(&self) -> Vec<AttemptId> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Effect::Stop { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect()
    }

    fn turns(&self) -> Vec<(AttemptId, String)> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Effect::SendTurn { attempt, text } => Some((*attempt, text.clone())),
                _ => None,
            })
            .collect()
    }

    /// A session that said it is done, its work collected: in review, its process kept.
    fn in_review() -> (Driver, AttemptId) {
        let (mut d, id) = Driver::running(CLAUDE);
        d.reports_done(id);
        assert!(d.stops().is_empty(), "not ended: {:?}", d.seen);
        assert!(
            d.seen
                .iter()
                .any(|e| matches!(e, Effect::Collect(c) if c.attempt == id)),
            "its work is committed while it runs: {:?}",
            d.seen
        );
        d.collected(id, WORK);
        assert_eq!(d.state("a"), Some(TaskState::Review));
        (d, id)
    }

    /// The second attempt, which the change request made.
    fn second(&self) -> Option<&AttemptRec> {
        self.sup
            .model
            .attempts
            .values()
            .find(|a| a.n == AttemptNo(2))
    }
}

#[test]
fn a_done_session_goes_to_review_with_its_process_kept_idle() {
    let (d, id) = Driver::in_review();
    let row = d.sup.model.attempts.get(&id).expect("row");
    assert_eq!(row.state, AttemptState::Succeeded);
    assert_eq!(row.commit.as_deref(), Some(WORK));
    let live = d.sup.live().get(&id).expect("still live");
    assert_eq!(live.phase, Phase::InReview { pid: PID });
    assert!(live.exit.is_none() && live.stop.is_none());
    assert!(
        d.seen.iter().any(|e| matches!(e, Effect::RunChecks { .. })),
        "the funnel runs as for any agent"
    );
}

#[test]
fn a_red_check_is_typed_into_the_same_session_as_its_next_turn() {
    let (mut d, id) = Driver::in_review();
    d.checks(1, false);
    let second = d
        .second()
        .cloned()
        .expect("a new attempt for the change request");
    assert_eq!(second.continues, Some(id));
    assert_eq!(second.pid, Some(PID), "the same process runs it");
    assert_eq!(second.state, AttemptState::Running);
    assert_eq!(d.state("a"), Some(TaskState::Working));
    assert_eq!(d.setups().len(), 1, "no new process: {:?}", d.setups());
    assert!(d.seen.contains(&Effect::HandOver {
        from: id,
        to: second.id
    }));
    let turns = d.turns();
    assert_eq!(turns.len(), 1, "{turns:?}");
    assert_eq!(turns[0].0, second.id);
    assert!(turns[0].1.contains("test_x failed"), "{}", turns[0].1);
    // Its next `done` sends the new work through the funnel again, the session still kept.
    d.reports_done(second.id);
    assert!(d.stops().is_empty(), "{:?}", d.seen);
    d.collected(second.id, "3333333333333333333333333333333333333333");
    assert_eq!(d.state("a"), Some(TaskState::Review));
    let live = d.sup.live().get(&second.id).expect("kept");
    assert_eq!(live.phase, Phase::InReview { pid: PID });
}

#[test]
fn a_change_request_waits_while_the_human_types_in_that_pane() {
    let (mut d, id) = Driver::in_review();
    d.now = 10_000;
    d.queue.push_back(Event::HumanTyping { attempt: id });
    d.run();
    d.checks(1, false);
    assert_eq!(d.state("a"), Some(TaskState::Working));
    assert!(d.turns().is_empty(), "typed under the human's fingers");
    let until = 10_000 + kept::TYPING_QUIET_MS;
    assert_eq!(
        d.sup.next_wake_ms(),
        Some(until),
        "a timer for the quiet moment"
    );
    d.at(until - 1);
    assert!(d.turns().is_empty());
    d.at(until);
    assert_eq!(
        d.turns().len(),
        1,
        "typed once the human stopped, not dropped"
    );
}

#[test]
fn the_session_is_ended_when_its_task_merges_or_is_cancelled() {
    for to in [TaskState::Done, TaskState::Cancelled] {
        let (mut d, id) = Driver::in_review();
        d.human_writes_state("a", to);
        assert_eq!(d.stops(), [id], "{to}: {:?}", d.seen);
        d.queue.push_back(Event::Exited {
            attempt: id,
            exit: Exit {
                code: Some(0),
                signal: None,
            },
        });
        d.run();
        assert!(
            d.sup.live().is_empty(),
            "{to}: no live agent for a finished task"
        );
    }
}

#[test]
fn a_session_that_died_in_review_leaves_the_change_request_to_a_new_attempt() {
    let (mut d, id) = Driver::in_review();
    d.queue.push_back(Event::Exited {
        attempt: id,
        exit: Exit {
            code: None,
            signal: Some(9),
        },
    });
    d.run();
    assert!(d.sup.live().is_empty());
    d.checks(1, false);
    // The backoff passes; the task starts as any rejected task does.
    d.at(60_000);
    assert_eq!(d.setups().len(), 2, "{:?}", d.setups());
    assert!(d.turns().is_empty());
}

#[test]
fn a_headless_agent_that_reports_done_is_still_ended_before_review() {
    let (mut d, id) = Driver::running(HEADLESS);
    d.reports_done(id);
    assert_eq!(d.stops(), [id]);
    assert!(!d.seen.iter().any(|e| matches!(e, Effect::Collect(_))));
}

#[test]
fn a_stopping_run_ends_a_kept_session_too() {
    let (mut d, id) = Driver::in_review();
    d.queue.push_back(Event::Stop { stop_agents: true });
    d.run();
    assert_eq!(d.stops(), [id]);
    assert!(!d.sup.is_stopped(), "it waits for the session to end");
    d.queue.push_back(Event::Exited {
        attempt: id,
        exit: Exit {
            code: Some(0),
            signal: None,
        },
    });
    d.run();
    assert!(d.sup.is_stopped());
}

impl Driver {
    fn human_writes_state(&mut self, task: &str, to: TaskState) {
        self.states.insert(task.into(), to);
        let observed = self.observed(&[task.to_string()]);
        self.queue.push_back(Event::Observed(observed));
        self.run();
    }
}

#[test]
fn a_session_idle_in_review_leaves_its_slot_to_the_next_task() {
    let config = format!("slots = 1\n{CLAUDE}");
    let mut a = task("a", TaskState::Ready);
    a.agent = Some("claude".into());
    let mut b = task("b", TaskState::Ready);
    b.agent = Some("claude".into());
    b.priority = a.priority - 1;
    let mut d = Driver::new(&config, vec![a, b], Vec::new(), 0);
    d.run();
    assert_eq!(d.setups().len(), 1, "one slot: {:?}", d.setups());
    let id = d
        .seen
        .iter()
        .find_map(|e| match e {
            Effect::Setup(s) => Some(s.attempt),
            _ => None,
        })
        .expect("a starts");
    d.queue.push_back(Event::SetupDone {
        attempt: id,
        result: Ok(Started {
            pid: PID,
            base: TIP.into(),
        }),
    });
    d.run();
    d.reports_done(id);
    d.collected(id, WORK);
    assert_eq!(d.state("a"), Some(TaskState::Review));
    assert_eq!(
        d.setups()
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"],
        "b starts while a's session waits in review"
    );
}
