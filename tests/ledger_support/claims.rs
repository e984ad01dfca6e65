//! Claiming attempts the way engine/dispatch.rs does, and the environment `orch-tui worker`
//! reads: shared by the ledger and worker tests.

use orch_tui::core::state::TaskState;
use orch_tui::ledger::{
    Actor, AttemptId, AttemptNo, Ledger, NewAttempt, Patch, insert_attempt, set_attempt_running,
    transition_task,
};

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

/// What engine/dispatch.rs does when it starts an agent: claim the ready task, insert the
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
    let (id, n) = ledger
        .write(|tx| {
            transition_task(
                tx,
                task,
                TaskState::Ready,
                TaskState::Assigned,
                &Patch::default(),
                Actor::Supervisor,
                None,
                serde_json::json!({ "profile": "sim" }),
            )?;
            insert_attempt(
                tx,
                &NewAttempt {
                    task,
                    token,
                    epoch,
                    profile: "sim",
                    worktree: "/nonexistent/wt",
                    branch: "orch/x",
                    log_dir_root: "/nonexistent/logs",
                    reviews: None,
                },
            )
        })
        .unwrap();
    if let Some(pid) = agent_pid {
        ledger
            .write(|tx| {
                set_attempt_running(tx, id, pid, "0000")?;
                transition_task(
                    tx,
                    task,
                    TaskState::Assigned,
                    TaskState::Working,
                    &Patch::default(),
                    Actor::Supervisor,
                    Some(n),
                    serde_json::json!({}),
                )
            })
            .unwrap();
    }
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
