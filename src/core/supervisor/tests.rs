//! Decisions checked one event at a time (the simulator in tests/sim drives long random runs).
//!
//! The driver below plays a ledger that applies a write only when every transition's `from` is
//! still the task's state (the compare-and-swap the real ledger does), and answers `Lost` with the
//! rows as they are otherwise. A human command is a change to those rows plus `Observed`, exactly
//! what the executor feeds after another process wrote the ledger.

use std::collections::{BTreeMap, VecDeque};

mod adopt_tests;
mod ahead_tests;
mod headless_pause_tests;
mod kept_tests;
mod pause_tests;
mod paused_time_tests;
mod speculate_tests;

use super::*;
use crate::core::config::parse_config;
use crate::core::domain::{AttemptState, FunnelStage, Substatus};
use crate::core::state::TaskState;

const TIP: &str = "1111111111111111111111111111111111111111";
const WORK: &str = "2222222222222222222222222222222222222222";

/// The built-in simulated agent (the decision tests' usual config).
const SIM: &str = "default_agent = \"sim\"\n";

/// Claude Code in an interactive session: what pause and adoption do differently for one.
const INTERACTIVE_CLAUDE: &str = r#"
default_agent = "claude"
[agents.claude]
command = ["claude", "-p", "{prompt}"]
interactive = ["claude", "{prompt}"]
mode = "interactive"
adapter = "claude"
"#;

/// The pid the driver's agents run as.
const PID: u32 = 4242;

fn task(id: &str, state: TaskState) -> TaskRec {
    TaskRec::sample(id, state)
}

fn finished_attempt(task: &str, n: u32) -> AttemptRec {
    AttemptRec {
        base: Some(TIP.into()),
        commit: Some(WORK.into()),
        diff_lines: Some(3),
        ..AttemptRec::sample(task, n)
    }
}

struct Driver {
    sup: Supervisor,
    /// What the "ledger" holds: each task's state, and funnel stages a human changed.
    states: BTreeMap<String, TaskState>,
    /// Rows another process changed beyond their state (a pause's `paused_from`, an edit).
    edited: BTreeMap<String, TaskRec>,
    stages: BTreeMap<String, Option<FunnelStage>>,
    queue: VecDeque<Event>,
    /// Every effect other than a write, in order.
    seen: Vec<Effect>,
    lost: usize,
    now: u64,
}

impl Driver {
    fn new(config: &str, tasks: Vec<TaskRec>, attempts: Vec<AttemptRec>, now: u64) -> Driver {
        let cfg = parse_config("config.toml", config).expect("config");
        let roots = Roots {
            worktrees: "/w".into(),
            logs: "/l".into(),
        };
        let states = tasks.iter().map(|t| (t.id.clone(), t.state)).collect();
        let mut d = Driver {
            sup: Supervisor::new(cfg, roots, 2, 7),
            states,
            edited: BTreeMap::new(),
            stages: BTreeMap::new(),
            queue: VecDeque::new(),
            seen: Vec::new(),
            lost: 0,
            now,
        };
        d.queue.push_back(Event::Boot(Box::new(Boot {
            tasks,
            attempts,
            recorded_tip: Some(TIP.into()),
            actual_tip: Some(TIP.into()),
            ..Boot::default()
        })));
        d
    }

    /// The rows of `tasks` as the "ledger" has them now.
    fn observed(&self, tasks: &[String]) -> Observed {
        let rows = tasks
            .iter()
            .filter_map(|id| {
                let mut t = self
                    .edited
                    .get(id)
                    .cloned()
                    .or_else(|| self.sup.model.task(id).cloned())?;
                t.state = *self.states.get(id)?;
                if let Some(stage) = self.stages.get(id) {
                    t.stage = *stage;
                    t.stage_until_ms = None;
                }
                Some(t)
            })
            .collect();
        let attempts = self
            .sup
            .model
            .attempts
            .values()
            .filter(|a| tasks.contains(&a.task))
            .cloned()
            .collect();
        Observed {
            tasks: rows,
            attempts,
            ..Observed::default()
        }
    }

    /// Feed queued events until none is left; writes are answered as the ledger would.
    fn run(&mut self) {
        let mut guard = 0;
        while let Some(ev) = self.queue.pop_front() {
            guard += 1;
            assert!(guard < 10_000, "the rules went round in circles");
            for effect in self.sup.step(self.now, ev) {
                match effect {
                    Effect::Write { id, ops, tasks } => self.answer(id, &ops, &tasks),
                    other => self.seen.push(other),
                }
            }
        }
    }

    fn answer(&mut self, id: WriteId, ops: &[Op], tasks: &[String]) {
        // One transaction: each transition sees the ones before it.
        let mut after = self.states.clone();
        let holds = ops.iter().all(|op| match op {
            Op::Transition { task, from, to, .. } if after.get(task) == Some(from) => {
                after.insert(task.clone(), *to);
                true
            }
            Op::Transition { .. } => false,
            Op::ExpectStage { task, stage } => self.stage_of(task) == Some(*stage),
            _ => true,
        });
        if !holds {
            self.lost += 1;
            let observed = self.observed(tasks);
            self.queue.push_back(Event::Lost {
                write: id,
                observed,
            });
            return;
        }
        for op in ops {
            match op {
                Op::Transition { task, to, .. } => {
                    self.states.insert(task.clone(), *to);
                }
                Op::SetStage { task, stage, .. } => {
                    self.stages.insert(task.clone(), *stage);
                }
                _ => {}
            }
        }
        self.queue.push_back(Event::Written(id));
    }

    fn stage_of(&self, task: &str) -> Option<FunnelStage> {
        match self.stages.get(task) {
            Some(stage) => *stage,
            None => self.sup.model.task(task).and_then(|t| t.stage),
        }
    }

    /// Another process (a human's `orch-tui` command) moved a task.
    fn human_moves(&mut self, task: &str, to: TaskState) {
        self.states.insert(task.into(), to);
    }

    fn setups(&self) -> Vec<(String, AttemptNo)> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Effect::Setup(s) => Some((s.task.clone(), s.n)),
                _ => None,
            })
            .collect()
    }

    fn state(&self, task: &str) -> Option<TaskState> {
        self.sup.model.task(task).map(|t| t.state)
    }
}

#[test]
fn a_dispatch_that_lost_its_race_starts_nothing_and_the_rest_goes_on() {
    let mut d = Driver::new(
        "default_agent = \"sim\"\n",
        vec![task("a", TaskState::Ready), task("b", TaskState::Ready)],
        Vec::new(),
        0,
    );
    // The human cancels `a` after the supervisor read the rows, before its dispatch lands.
    d.human_moves("a", TaskState::Cancelled);
    d.run();
    assert!(d.lost >= 1, "the dispatch of a should have lost its race");
    assert_eq!(d.state("a"), Some(TaskState::Cancelled));
    let setups = d.setups();
    assert!(
        !setups.iter().any(|(t, _)| t == "a"),
        "a cancelled task was started: {setups:?}"
    );
    assert!(
        setups.iter().any(|(t, _)| t == "b"),
        "the other task was not started after the lost race: {setups:?}"
    );
}

/// Task `a` started, its agent running and then exiting 0: its work is being collected.
fn a_started_and_exited_well() -> (Driver, Setup) {
    let mut d = Driver::new(
        "default_agent = \"sim\"\n",
        vec![task("a", TaskState::Ready)],
        Vec::new(),
        0,
    );
    d.run();
    let setup = d
        .seen
        .iter()
        .find_map(|e| match e {
            Effect::Setup(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a is started");
    d.queue.push_back(Event::SetupDone {
        attempt: setup.attempt,
        result: Ok(Started {
            pid: 4242,
            base: TIP.into(),
        }),
    });
    d.queue.push_back(Event::Exited {
        attempt: setup.attempt,
        exit: Exit {
            code: Some(0),
            signal: None,
        },
    });
    d.run();
    (d, setup)
}

#[test]
fn a_cancel_while_the_work_is_collected_ends_the_attempt_not_the_run() {
    let (mut d, setup) = a_started_and_exited_well();
    assert!(
        d.seen.iter().any(|e| matches!(e, Effect::Collect(_))),
        "an agent that exited 0 has its work collected: {:?}",
        d.seen
    );
    // While the commit runs, the human cancels the task, and the commit's answer arrives before
    // the supervisor has read that (the old engine exited 1 here: its `working -> review` swap
    // failed).
    d.human_moves("a", TaskState::Cancelled);
    d.queue.push_back(Event::Collected {
        attempt: setup.attempt,
        result: Ok(Change {
            tip: Some(WORK.into()),
            diff_lines: 3,
            agent_committed: false,
            strays: Vec::new(),
        }),
    });
    d.run();
    assert!(d.lost >= 1, "the move to review should have lost its race");
    assert_eq!(d.state("a"), Some(TaskState::Cancelled));
    let a = d
        .sup
        .model
        .attempts
        .get(&setup.attempt)
        .expect("attempt row");
    assert!(!a.state.is_live(), "the attempt is closed, not left live");
    assert!(
        !d.seen
            .iter()
            .any(|e| matches!(e, Effect::RunChecks { .. } | Effect::PrepareMerge(_))),
        "a cancelled task went on through the funnel"
    );
    assert!(d.sup.is_settled(), "left waiting: {}", d.sup.activity());
}

/// Work left on two branches of the agent's own that do not hold one another is no change the
/// supervisor can pick, but it is work: the escalation says so and names them (the simulator
/// found it said "changed nothing" when a retry's branch and the failed attempt's diverged).
#[test]
fn work_left_on_diverging_branches_is_escalated_as_such_not_as_nothing() {
    let (mut d, setup) = a_started_and_exited_well();
    let stray = |b: &str| Stray {
        branch: b.into(),
        tip: WORK.into(),
        backup_ref: Some(format!("refs/orch/backup/a/1-stray-{b}")),
        adopted: false,
    };
    d.queue.push_back(Event::Collected {
        attempt: setup.attempt,
        result: Ok(Change {
            tip: None,
            diff_lines: 0,
            agent_committed: false,
            strays: vec![stray("left-1"), stray("left-2")],
        }),
    });
    d.run();
    assert_eq!(d.state("a"), Some(TaskState::Escalated));
    let reason = d
        .sup
        .model
        .task("a")
        .and_then(|t| t.reason.clone())
        .unwrap_or_default();
    assert!(
        reason.contains("left-1, left-2") && !reason.contains("without changing anything"),
        "{reason}"
    );
}

#[test]
fn a_veto_window_closing_after_the_human_rejected_starts_a_new_attempt_instead_of_merging() {
    let mut review = task("a", TaskState::Review);
    review.stage = Some(FunnelStage::Veto);
    review.stage_until_ms = Some(1_000);
    let mut d = Driver::new(
        "default_agent = \"sim\"\n",
        vec![review],
        vec![finished_attempt("a", 1)],
        5_000,
    );
    // The window is over, but the human's reject landed first: the approval loses its race.
    d.human_moves("a", TaskState::Ready);
    d.run();
    assert!(d.lost >= 1, "the approval should have lost its race");
    assert!(
        !d.seen.iter().any(|e| matches!(e, Effect::PrepareMerge(_))),
        "a rejected task was merged"
    );
    assert_eq!(
        d.setups(),
        vec![("a".to_string(), AttemptNo(2))],
        "the rejected task runs again as attempt 2"
    );
}

#[test]
fn a_merge_queue_turn_that_lost_its_race_merges_nothing() {
    let mut d = Driver::new(
        "default_agent = \"sim\"\n",
        vec![task("a", TaskState::Approved)],
        vec![finished_attempt("a", 1)],
        0,
    );
    // `orch-tui pause a` lands before the supervisor's `approved -> merging`.
    d.human_moves("a", TaskState::Paused);
    d.run();
    assert!(d.lost >= 1);
    assert_eq!(d.state("a"), Some(TaskState::Paused));
    assert!(
        !d.seen
            .iter()
            .any(|e| matches!(e, Effect::PrepareMerge(_) | Effect::MoveIntegration { .. })),
        "a paused task was merged"
    );
    assert!(d.sup.is_settled(), "left waiting: {}", d.sup.activity());
}

#[test]
fn a_veto_window_the_human_stopped_just_before_it_closed_waits_for_them_instead_of_merging() {
    let mut review = task("a", TaskState::Review);
    review.stage = Some(FunnelStage::Veto);
    review.stage_until_ms = Some(1_000);
    let mut d = Driver::new(
        "default_agent = \"sim\"\n",
        vec![review],
        vec![finished_attempt("a", 1)],
        5_000,
    );
    // The window is over in the model, but the human's hold (they pressed `x` to type a veto)
    // landed first: the approval loses its race and the task waits for the human.
    d.stages.insert("a".into(), Some(FunnelStage::Human));
    d.run();
    assert!(d.lost >= 1, "the approval should have lost its race");
    assert_eq!(d.state("a"), Some(TaskState::Review));
    assert_eq!(
        d.sup.model.task("a").and_then(|t| t.stage),
        Some(FunnelStage::Human)
    );
    // However long the human takes to type, nothing merges.
    d.now = 3_600_000;
    d.queue.push_back(Event::Tick);
    d.run();
    assert!(
        !d.seen.iter().any(|e| matches!(e, Effect::PrepareMerge(_))),
        "a held task was merged: {:?}",
        d.seen
    );
    assert_eq!(d.state("a"), Some(TaskState::Review));
}

#[test]
fn a_veto_window_nobody_stopped_still_approves_when_it_closes() {
    let mut review = task("a", TaskState::Review);
    review.stage = Some(FunnelStage::Veto);
    review.stage_until_ms = Some(1_000);
    let mut d = Driver::new(
        "default_agent = \"sim\"\n",
        vec![review],
        vec![finished_attempt("a", 1)],
        5_000,
    );
    d.run();
    assert_eq!(d.lost, 0);
    assert_ne!(
        d.state("a"),
        Some(TaskState::Review),
        "the window closed: approved"
    );
}
