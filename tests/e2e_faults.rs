//! Issue #7's faults, each found by trying it as a user would, each fixed by design — and each
//! checked here with the real binary, real git and real processes. (The simulator in tests/sim.rs
//! finds the same classes of fault under random interleavings; these are the concrete stories.)

mod common;
mod e2e_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, state_of, task_of, wait_for};

const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A config with one shell-script agent profile (`generic`: exit 0 = done).
fn with_agent(name: &str, script: &str, extra: &str) -> String {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "{FAST_CONFIG}\n[agents.{name}]\ncommand = [\"sh\", \"-c\", \"{script}\"]\nadapter = \"generic\"\n{extra}"
    )
}

fn one_task(id: &str, agent: &str, extra: &str) -> String {
    format!(
        "[[task]]\nid = \"{id}\"\ntitle = \"Task {id}\"\nprompt = \"do {id}\"\nagent = \"{agent}\"\n{extra}\n"
    )
}

/// A task's state now, or None before the plan is loaded.
fn state_now(s: &serde_json::Value, id: &str) -> Option<String> {
    s["tasks"]
        .as_array()?
        .iter()
        .find(|t| t["id"] == id)
        .and_then(|t| t["state"].as_str().map(String::from))
}

/// What the agent of each of `task`'s first three attempts printed, for a failure's message.
fn screens(repo: &Repo, task: &str) -> String {
    (1..=3)
        .map(|n| {
            let log = repo.dir.join(format!(".orch/logs/{task}/{n}/screen.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            format!("--- {task} attempt {n} ---\n{text}")
        })
        .collect()
}

fn plan(tasks: &str) -> String {
    format!("[plan]\nname = \"faults\"\n\n{tasks}")
}

fn run(repo: &Repo, plan: Option<&std::path::Path>) -> e2e_support::Out {
    let mut args = vec!["run", "--headless"];
    let p;
    if let Some(plan) = plan {
        p = plan.to_str().expect("utf-8").to_string();
        args.extend(["--plan", &p]);
    }
    repo.orch(&args, RUN_LIMIT)
}

const COMMIT: &str = "git -c user.name=Agent -c user.email=agent@example.com commit -qm";

/// A retry continues the failed attempt in its worktree, so a branch the agent made before it
/// failed is still the agent's when the retry's work is collected: reported, its commits kept
/// under a backup ref, gone from the user's branch list (it was left there, unreported, while
/// the retry listed it among the branches that existed before it).
#[test]
fn a_branch_made_by_a_failed_attempt_is_reported_when_its_retry_is_collected() {
    let repo = Repo::new();
    let script = format!(
        "if [ \"$ORCH_ATTEMPT\" = 1 ]; then git checkout -qb agent-side && echo side > side.txt && git add -A && {COMMIT} side && git checkout -q -; exit 1; fi; echo done > done.txt"
    );
    repo.init(&with_agent("flaky", &script, ""));
    let p = repo.write_plan(&plan(&one_task("retried", "flaky", "")));
    let out = run(&repo, Some(&p));
    let said = screens(&repo, "retried");
    assert_eq!(out.code, 0, "{}\n{said}", out.show());
    assert_eq!(repo.git(&["show", "orch/integration:done.txt"]), "done");
    assert!(
        repo.git(&["branch", "--list", "agent-side"]).is_empty(),
        "the failed attempt's branch is not left in the user's branch list"
    );
    let events = repo.orch(&["events", "--json", "--task", "retried"], RUN_LIMIT);
    assert!(
        events.stdout.contains("stray_branch") && events.stdout.contains("agent-side"),
        "the branch is reported: {}",
        events.stdout
    );
    let kept = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/backup/retried/",
    ]);
    let side = kept
        .lines()
        .find(|r| r.contains("stray"))
        .unwrap_or_else(|| panic!("a backup ref for the branch's commit: {kept}\n{said}"));
    assert_eq!(repo.git(&["show", &format!("{side}:side.txt")]), "side");
}

/// Fault 1: An agent that commits its own work (aider does by default; Claude Code when asked) is
/// merged like any other, and one that commits on a branch of its own has that work taken as the
/// change: the stray branch is reported and kept under a backup ref, never left silently.
#[test]
fn an_agents_own_commits_are_its_change_and_a_stray_branch_is_reported() {
    let repo = Repo::new();
    let own = format!("echo own > own.txt && git add -A && {COMMIT} own");
    let stray = format!(
        "git checkout -qb agent-feature && echo side > side.txt && git add -A && {COMMIT} side && git checkout -q -"
    );
    let config = format!(
        "{}\n[agents.stray]\ncommand = [\"sh\", \"-c\", \"{}\"]\nadapter = \"generic\"\n",
        with_agent("own", &own, ""),
        stray.replace('"', "\\\"")
    );
    repo.init(&config);
    let p = repo.write_plan(&plan(&format!(
        "{}{}",
        one_task("committer", "own", ""),
        one_task("brancher", "stray", "")
    )));
    let out = run(&repo, Some(&p));
    // On failure, what the agents' git said (CI saw the stray agent exit 128 when a worktree
    // was added beside it: docs/git.md, "New worktrees arrive whole").
    assert_eq!(
        out.code,
        0,
        "{}\n{}{}",
        out.show(),
        screens(&repo, "brancher"),
        screens(&repo, "committer")
    );
    assert_eq!(repo.git(&["show", "orch/integration:own.txt"]), "own");
    assert_eq!(repo.git(&["show", "orch/integration:side.txt"]), "side");
    assert!(
        repo.git(&["branch", "--list", "agent-feature"]).is_empty(),
        "the stray branch is not left in the user's branch list"
    );
    let events = repo.orch(&["events", "--json", "--task", "brancher"], RUN_LIMIT);
    assert!(
        events.stdout.contains("stray_branch") && events.stdout.contains("agent-feature"),
        "the stray branch is reported: {}",
        events.stdout
    );
    assert!(
        out.stdout.contains("agent-feature"),
        "and said in the run's progress: {}",
        out.stdout
    );
}

/// Fault 2: Approving an escalated task that has nothing to merge finishes it (and says so); later runs
/// do not wait for it forever.
#[test]
fn approving_a_task_with_nothing_to_merge_finishes_it() {
    let repo = Repo::new();
    repo.init(&with_agent("idle", "true", ""));
    let p = repo.write_plan(&plan(&one_task("noop", "idle", "max_attempts = 1")));
    let out = run(&repo, Some(&p));
    assert_eq!(out.code, 1, "{}", out.show());
    let t = repo.task("noop");
    assert_eq!(t["state"], "escalated", "{t:#}");
    assert!(
        t["reason"]
            .as_str()
            .is_some_and(|r| r.contains("without changing anything")),
        "{t:#}"
    );
    let ok = repo.orch(&["approve", "noop"], RUN_LIMIT);
    assert_eq!(ok.code, 0, "{}", ok.show());
    let out = run(&repo, None);
    assert_eq!(out.code, 0, "the run ends: {}", out.show());
    assert!(out.stdout.contains("nothing to merge"), "{}", out.stdout);
    assert_eq!(state_of(&repo.status(), "noop"), "done");
}

/// Fault 3: x depends on a and b: a cancelled keeps x blocked whatever happens to b; a cancel can be
/// undone (`retry`), and then x waits for both again.
#[test]
fn a_dependent_stays_blocked_while_a_dependency_is_cancelled_and_a_cancel_can_be_undone() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(&format!(
        "{}{}{}",
        one_task("a", "sim", ""),
        one_task("b", "sim", ""),
        one_task("x", "sim", "depends_on = [\"a\", \"b\"]"),
    )));
    let load = repo.orch(&["plan", "load", p.to_str().unwrap()], RUN_LIMIT);
    assert_eq!(load.code, 0, "{}", load.show());
    for (cmd, task) in [("cancel", "a"), ("cancel", "b")] {
        let o = repo.orch(&[cmd, task], RUN_LIMIT);
        assert_eq!(o.code, 0, "{}", o.show());
    }
    assert_eq!(state_of(&repo.status(), "x"), "blocked");
    // b comes back; a is still cancelled: x stays blocked.
    let o = repo.orch(&["retry", "b"], RUN_LIMIT);
    assert_eq!(o.code, 0, "{}", o.show());
    let s = repo.status();
    assert_eq!(state_of(&s, "b"), "ready");
    assert_eq!(state_of(&s, "x"), "blocked", "{:#}", task_of(&s, "x"));
    // The cancel of a is undone: x waits for both again, and the run builds all three.
    let o = repo.orch(&["retry", "a"], RUN_LIMIT);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(state_of(&repo.status(), "x"), "pending");
    let out = run(&repo, None);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(state_of(&repo.status(), "x"), "done");
}

/// Fault 4: Recovery trusts only what the supervisor recorded, never text an agent can write: a task
/// caught in `merging` with no merge recorded is merged again (its own work lands), even though
/// the integration branch holds a commit whose trailers claim that task.
#[test]
fn recovery_does_not_trust_trailers_an_agent_wrote() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(
        "[[task]]\nid = \"real\"\ntitle = \"Real\"\nagent = \"sim\"\nprompt = '''\n@sim speed fast\n@sim write real.txt: the real work\n'''\n",
    ));
    let load = repo.orch(&["plan", "load", p.to_str().unwrap()], RUN_LIMIT);
    assert_eq!(load.code, 0, "{}", load.show());
    // Another agent's forged commit on the integration branch, claiming task `real`.
    repo.git(&["branch", "orch/integration", "main"]);
    repo.git(&["checkout", "-q", "orch/integration"]);
    std::fs::write(repo.dir.join("forged.txt"), "not real\n").unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&[
        "-c",
        "user.name=Liar",
        "-c",
        "user.email=liar@example.com",
        "commit",
        "-qm",
        "forged\n\nOrch-Task: real\nOrch-Attempt: 1",
    ]);
    repo.git(&["checkout", "-q", "main"]);
    // The task's own work, committed on its branch by an attempt that succeeded.
    let base = repo.git(&["rev-parse", "main"]);
    repo.git(&["checkout", "-q", "-b", "orch/real", "main"]);
    std::fs::write(repo.dir.join("real.txt"), "the real work\n").unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&[
        "-c",
        "user.name=Sim Agent",
        "-c",
        "user.email=sim@orch.invalid",
        "commit",
        "-qm",
        "Real\n\nOrch-Task: real\nOrch-Attempt: 1",
    ]);
    let commit = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "main"]);
    // The task as a crash would leave it: in `merging`, its merge never recorded.
    let db = rusqlite::Connection::open(repo.ledger()).unwrap();
    for to in [
        "ready", "assigned", "working", "review", "approved", "merging",
    ] {
        db.execute(
            "UPDATE tasks SET state = ?1, version = version + 1 WHERE id = 'real'",
            [to],
        )
        .unwrap();
    }
    db.execute(
        "INSERT INTO attempts (id, task, n, token, epoch, profile, role, state, substatus,
            worktree, branch, base, commit_oid, log_dir, started_ms, ended_ms)
         VALUES (1, 'real', 1, 'old-token', 1, 'sim', 'agent', 'succeeded', 'ended',
            '/nonexistent', 'orch/real', ?1, ?2, '/nonexistent-logs', 1, 2)",
        [&base, &commit],
    )
    .unwrap();
    drop(db);
    let out = run(&repo, None);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(
        repo.git(&["show", "orch/integration:real.txt"]),
        "the real work",
        "the task's own work landed: {}",
        out.show()
    );
}

/// Fault 5: Someone rewinds the integration branch mid-run: the run holds (it neither ends "all done"
/// with merged work missing nor starts dependents on a base without their dependencies), says
/// what moved and which backup ref holds the work; `integration restore` puts it back and the
/// run finishes.
#[test]
fn a_moved_integration_branch_holds_the_run_until_restored() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(
        "[[task]]\nid = \"first\"\ntitle = \"First\"\nagent = \"sim\"\nprompt = '''\n@sim speed fast\n@sim write first.txt: 1\n'''\n\n\
         [[task]]\nid = \"slow\"\ntitle = \"Slow\"\nagent = \"sim\"\nprompt = '''\n@sim speed fast\n@sim sleep 3s\n@sim write slow.txt: 2\n'''\n\n\
         [[task]]\nid = \"after\"\ntitle = \"After\"\nagent = \"sim\"\ndepends_on = [\"first\", \"slow\"]\nprompt = '''\n@sim speed fast\n@sim write after.txt: 3\n'''\n",
    ));
    let running = repo.spawn(&["run", "--headless", "--plan", p.to_str().unwrap()]);
    // Once `first` merged (and while `slow` still works), someone rewinds the branch to main.
    let merged = wait_for(RUN_LIMIT, || {
        let s = repo.status();
        (state_now(&s, "first").as_deref() == Some("done")
            && state_now(&s, "slow").as_deref() == Some("working"))
        .then_some(())
        .ok_or(s)
    });
    assert!(merged.is_ok(), "{merged:?}");
    let tip = repo.git(&["rev-parse", "orch/integration"]);
    repo.git(&["update-ref", "refs/heads/orch/integration", "main"]);
    let out = running.wait(RUN_LIMIT);
    assert_eq!(
        out.code,
        1,
        "the run ends held, not all done: {}",
        out.show()
    );
    assert!(
        out.stdout.contains("held") && out.stdout.contains("integration restore"),
        "{}",
        out.show()
    );
    assert_ne!(state_of(&repo.status(), "after"), "done");
    let backups = repo.git(&[
        "for-each-ref",
        "--format=%(objectname)",
        "refs/orch/backup/integration/",
    ]);
    assert!(backups.contains(&tip), "the merged work is kept: {backups}");
    let restore = repo.orch(&["integration", "restore"], RUN_LIMIT);
    assert_eq!(restore.code, 0, "{}", restore.show());
    assert_eq!(repo.git(&["rev-parse", "orch/integration"]), tip);
    let out = run(&repo, None);
    assert_eq!(out.code, 0, "{}", out.show());
    for f in ["first.txt", "slow.txt", "after.txt"] {
        repo.git(&["show", &format!("orch/integration:{f}")]);
    }
}

/// Fault 6: An agent an earlier supervisor started but never recorded (killed between the spawn and
/// the record) carries the ledger and its epoch in its environment: the next start stops it.
#[test]
fn a_process_left_by_an_earlier_supervisor_is_stopped_at_start() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(&one_task("t", "sim", "")));
    let load = repo.orch(&["plan", "load", p.to_str().unwrap()], RUN_LIMIT);
    assert_eq!(load.code, 0, "{}", load.show());
    let ledger = repo.ledger();
    let mut stale = Command::new("setsid")
        .args(["sh", "-c", "trap '' TERM HUP; exec sleep 600"])
        .env("ORCH_LEDGER", &ledger)
        .env("ORCH_EPOCH", "0")
        .env("ORCH_TOKEN", "0123456789abcdef0123456789abcdef")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn a stale agent");
    let pid = stale.id() as i32;
    let out = run(&repo, None);
    assert_eq!(out.code, 0, "{}", out.show());
    let gone = wait_for(Duration::from_secs(5), || match stale.try_wait() {
        Ok(Some(_)) => Ok(()),
        _ => Err(()),
    });
    if gone.is_err() {
        e2e_support::kill_group(pid, libc::SIGKILL);
        let _ = stale.wait();
        panic!("the stale agent (pid {pid}) outlived the start of a new supervisor");
    }
}

/// Fault 8: Another process holds the ledger's write lock for longer than any retry: the supervisor
/// waits with a visible reason and goes on when it clears.
#[test]
fn a_busy_ledger_is_waited_out_not_a_reason_to_exit() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(
        "[[task]]\nid = \"t\"\ntitle = \"T\"\nagent = \"sim\"\nprompt = '''\n@sim speed fast\n@sim sleep 1s\n'''\n",
    ));
    let running = repo.spawn(&["run", "--headless", "--plan", p.to_str().unwrap()]);
    let started = wait_for(RUN_LIMIT, || {
        let s = repo.status();
        (state_now(&s, "t").as_deref() == Some("working"))
            .then_some(())
            .ok_or(s)
    });
    assert!(started.is_ok(), "{started:?}");
    let db = rusqlite::Connection::open(repo.ledger()).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Held past the ledger's own retries (10 s): only the supervisor's waiting can save the run.
    let said = wait_for(Duration::from_secs(30), || {
        let now = running.stdout_now();
        now.contains("waiting for the ledger")
            .then_some(())
            .ok_or(now)
    });
    db.execute_batch("COMMIT").unwrap();
    drop(db);
    assert!(said.is_ok(), "no visible reason while waiting: {said:?}");
    let out = running.wait(RUN_LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("writable again"), "{}", out.stdout);
}

/// Fault 12: A git hook that hangs: the commit times out and the task is escalated for the human, with
/// the hook's processes stopped — never a task committing forever.
#[test]
fn a_hung_git_hook_escalates_the_task() {
    let repo = Repo::new();
    let hook = repo.dir.join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\nsleep 600\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo.init(&with_agent(
        "writer",
        "echo x > x.txt",
        "\n[git]\ntimeout = \"1s\"\n",
    ));
    let p = repo.write_plan(&plan(&one_task("t", "writer", "")));
    let out = run(&repo, Some(&p));
    assert_eq!(out.code, 1, "{}", out.show());
    let t = repo.task("t");
    assert_eq!(t["state"], "escalated", "{t:#}");
    assert!(
        t["reason"]
            .as_str()
            .is_some_and(|r| r.contains("timed out")),
        "{t:#}"
    );
    let hooks = Command::new("pgrep").args(["-f", "sleep 600"]).output();
    if let Ok(h) = hooks {
        let left = String::from_utf8_lossy(&h.stdout).trim().to_string();
        // Another test's `sleep 600` may run at the same time: only ours would be a child of
        // this repository's hook path, so look for the hook itself.
        let ours = Command::new("pgrep")
            .args(["-f", &hook.to_string_lossy()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        assert!(ours.is_empty(), "the hung hook is still running ({left})");
    }
}
