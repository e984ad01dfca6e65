//! A session kept alive through review keeps the environment of the attempt it was started as;
//! the ledger's fence takes its reports as those of the attempt that continues it in the same
//! process, and refuses them once no such attempt is live.

mod common;
mod ledger_support;

use ledger_support::claims::{claim, repo_with_plan, worker_env};
use orch_tui::core::domain::{AttemptState, Role};
use orch_tui::core::ops::{Finish, NewAttempt};
use orch_tui::core::state::TaskState;
use orch_tui::ledger::{Actor, AttemptId, AttemptNo, EventData, Ledger, Op, Patch, apply_ops};

fn step(task: &str, from: TaskState, to: TaskState) -> Op {
    Op::Transition {
        task: task.into(),
        from,
        to,
        patch: Patch::default(),
        actor: Actor::Supervisor,
        attempt: None,
        data: EventData::default(),
    }
}

/// Attempt `prev` sent to review with a commit, sent back, and continued as attempt `n` by the
/// process `pid`.
fn continue_in(ledger: &mut Ledger, prev: AttemptId, n: u32, epoch: i64, pid: u32) -> AttemptId {
    let id: i64 = ledger
        .conn()
        .query_row("SELECT MAX(id) + 1 FROM attempts", [], |r| r.get(0))
        .unwrap();
    let id = AttemptId(id);
    let ops = vec![
        Op::FinishAttempt(Finish {
            id: prev,
            outcome: AttemptState::Succeeded,
            exit_code: None,
            reason: None,
            commit: Some("c0ffee".into()),
            diff_lines: Some(1),
        }),
        step("a", TaskState::Working, TaskState::Review),
        step("a", TaskState::Review, TaskState::Ready),
        step("a", TaskState::Ready, TaskState::Assigned),
        Op::InsertAttempt(NewAttempt {
            id,
            task: "a".into(),
            n: AttemptNo(n),
            role: Role::Agent,
            profile: "sim".into(),
            epoch,
            worktree: "/nonexistent/wt".into(),
            branch: "orch/a".into(),
            log_dir: "/nonexistent/logs".into(),
            continues: Some(prev),
            spec_on: None,
        }),
        Op::AttemptRunning {
            id,
            pid,
            base: "0000".into(),
        },
        step("a", TaskState::Assigned, TaskState::Working),
    ];
    ledger
        .write(|tx| apply_ops(tx, &ops, &mut || format!("tok-{}", id.0)))
        .unwrap();
    id
}

fn reported(ledger: &Ledger, id: AttemptId) -> Option<String> {
    ledger
        .conn()
        .query_row("SELECT reported FROM attempts WHERE id = ?1", [id.0], |r| {
            r.get(0)
        })
        .unwrap()
}

#[test]
fn a_kept_sessions_report_is_the_attempt_that_continues_it_in_the_same_process() {
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let first = claim(&mut ledger, "a", "tok-first-0001", epoch);
    // Two change requests later, the same process runs attempt 3.
    let second = continue_in(&mut ledger, first.id, 2, epoch, std::process::id());
    let third = continue_in(&mut ledger, second, 3, epoch, std::process::id());
    let env = worker_env(&lstr, "a", "1", &first.token);
    let out = r.orch_env(&["worker", "done"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(reported(&ledger, third).as_deref(), Some("done"));
    assert_eq!(reported(&ledger, second), None);
    assert_eq!(
        reported(&ledger, first.id),
        None,
        "a closed attempt is never written"
    );
}

#[test]
fn a_continuation_in_another_process_does_not_take_the_old_sessions_reports() {
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let first = claim(&mut ledger, "a", "tok-first-0002", epoch);
    // The session died; its next attempt is a new process.
    let next = continue_in(&mut ledger, first.id, 2, epoch, std::process::id() + 1);
    let env = worker_env(&lstr, "a", "1", &first.token);
    let out = r.orch_env(&["worker", "done"], &env);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("no longer live"), "{out:?}");
    assert_eq!(reported(&ledger, next), None, "refused, nothing written");
}
