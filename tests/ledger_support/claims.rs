//! Claiming attempts with the ops the supervisor writes, and the environment `orch-tui worker`
//! reads: shared by the ledger and worker tests.

use orch_tui::core::domain::Role;
use orch_tui::core::ops::NewAttempt;
use orch_tui::core::state::TaskState;
use orch_tui::ledger::{Actor, AttemptId, AttemptNo, EventData, Ledger, Op, Patch, apply_ops};

use super::Repo;

/// A plan of `ids` independent tasks, each with a plain prompt.
pub fn plan_text(name: &str, ids: &[&str]) -> String {
    let mut s = format!("[plan]\nname = \"{name}\"\n\n[defaults]\nagent = \"sim\"\n");
    for id in ids {
        s.push_str(&format!(
            "\n[[task]]\nid = \"{id}\"\ntitle = \"Task {id}\"\nprompt = \"Do {id}.\"\n"
        ));
    }
    s
}

/// An initialised repository with `ids` loaded through `orch-tui plan load`.
pub fn repo_with_plan(ids: &[&str]) -> Repo {
    let r = Repo::initialised();
    let plan = r.write("plan.toml", &plan_text("p", ids));
    let out = r.orch(&["plan", "load", plan.to_str().unwrap()]);
    assert_eq!(out.code, 0, "plan load: {}", out.stderr);
    r
}

pub struct Claimed {
    pub id: AttemptId,
    pub n: AttemptNo,
    pub token: String,
    pub epoch: i64,
}

/// What the supervisor writes when it starts an agent: claim the ready task, insert the
/// attempt, mark it running. The agent's pid is this test process, so every `orch-tui worker`
/// the test runs descends from it, as a real agent's calls do.
pub fn claim(ledger: &mut Ledger, task: &str, token: &str, epoch: i64) -> Claimed {
    claim_as(ledger, task, token, epoch, Some(std::process::id()))
}

/// [`claim`] with the agent's pid chosen (`None`: the attempt stays `starting`, no pid recorded,
/// as between spawn and the supervisor recording it).
pub fn claim_as(
    ledger: &mut Ledger,
    task: &str,
    token: &str,
    epoch: i64,
    agent_pid: Option<u32>,
) -> Claimed {
    let id: i64 = ledger
        .conn()
        .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM attempts", [], |r| {
            r.get(0)
        })
        .unwrap();
    let n: u32 = ledger
        .conn()
        .query_row(
            "SELECT COALESCE(MAX(n), 0) + 1 FROM attempts WHERE task = ?1 AND role = 'agent'",
            [task],
            |r| r.get(0),
        )
        .unwrap();
    let (id, n) = (AttemptId(id), AttemptNo(n));
    let move_to = |from, to| Op::Transition {
        task: task.to_string(),
        from,
        to,
        patch: Patch::default(),
        actor: Actor::Supervisor,
        attempt: Some(n),
        data: EventData::default(),
    };
    let mut ops = vec![
        move_to(TaskState::Ready, TaskState::Assigned),
        Op::InsertAttempt(NewAttempt {
            id,
            task: task.to_string(),
            n,
            role: Role::Agent,
            profile: "sim".into(),
            epoch,
            worktree: "/nonexistent/wt".into(),
            branch: "orch/x".into(),
            log_dir: "/nonexistent/logs".into(),
            continues: None,
            spec_on: None,
        }),
    ];
    if let Some(pid) = agent_pid {
        ops.push(Op::AttemptRunning {
            id,
            pid,
            base: "0000".into(),
        });
        ops.push(move_to(TaskState::Assigned, TaskState::Working));
    }
    ledger
        .write(|tx| apply_ops(tx, &ops, &mut || token.to_string()))
        .unwrap();
    Claimed {
        id,
        n,
        token: token.to_string(),
        epoch,
    }
}

pub fn worker_env<'a>(
    ledger: &'a str,
    task: &'a str,
    n: &'a str,
    token: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ORCH_LEDGER", ledger),
        ("ORCH_TASK", task),
        ("ORCH_ATTEMPT", n),
        ("ORCH_TOKEN", token),
    ]
}

pub fn tokens_of(ledger: &Ledger, task: &str) -> (i64, i64, f64) {
    let a = ledger.latest_attempt(task).unwrap().unwrap();
    (a.tokens_in, a.tokens_out, a.cost_usd)
}
