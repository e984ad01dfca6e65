//! Pause keeps the work (issue #9 part 3), with the real binary, real git, real PTYs and the sim
//! agent: a paused task's agent is frozen and keeps its attempt, its PTY and its screen; its time
//! budget does not run while it is paused; resume continues it; a supervisor killed while a task
//! is paused recovers as docs/architecture.md says (the frozen agent reaped, the task still
//! paused, its next attempt continuing in the same worktree on resume).

mod common;
mod e2e_support;

use std::path::PathBuf;
use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, task_of, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

/// One sim-agent task that prints a line, works a while, and prints another; the attempt's
/// time budget is more than its work but less than the work plus the pause.
fn plan(budget: &str) -> String {
    format!(
        "[plan]\nname = \"pause\"\n\n[[task]]\nid = \"t\"\ntitle = \"Paused work\"\n\
         budget = {{ time = \"{budget}\" }}\nprompt = \"\"\"\nPaused work\n\
         @sim say before-the-pause\n@sim sleep 2500ms\n@sim say after-the-pause\n\"\"\"\n"
    )
}

/// The agent attempts of `t` as `status --json` has them.
fn attempts(repo: &Repo) -> Vec<serde_json::Value> {
    task_of(&repo.status(), "t")["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["role"] == "agent")
        .collect()
}

/// The process state letter in /proc (`T`: stopped), or None when it is gone.
fn proc_state(pid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn raw_log(repo: &Repo, n: u32) -> PathBuf {
    repo.dir.join(format!(".orch/logs/t/{n}/pty.raw"))
}

/// Starts the run and waits until the agent has printed its first line; its pid.
fn working(repo: &Repo) -> (e2e_support::Running, i64) {
    let run = repo.spawn(&["run", "--headless"]);
    let raw = raw_log(repo, 1);
    // The agent may print before its pid reaches the ledger: wait for both.
    let working = wait_for(LIMIT, || {
        let text = std::fs::read_to_string(&raw).unwrap_or_default();
        let pid = attempts(repo)
            .first()
            .and_then(|a| a["pid"].as_i64())
            .filter(|_| text.contains("before-the-pause"));
        pid.ok_or(text)
    });
    let pid = working.unwrap_or_else(|text| {
        panic!(
            "the agent never printed with its pid recorded: {text:?}\n{}",
            run.stdout_now()
        )
    });
    (run, pid)
}

fn pause(repo: &Repo, pid: i64) {
    let out = repo.orch(&["pause", "t"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let frozen = wait_for(LIMIT, || {
        let s = proc_state(pid);
        (s == Some('T')).then_some(()).ok_or(s)
    });
    assert!(frozen.is_ok(), "the agent was not frozen: {frozen:?}");
}

#[test]
fn a_paused_sim_agent_is_frozen_and_resume_continues_the_same_attempt_and_screen() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    std::fs::write(repo.root.join("plan.toml"), plan("6s")).expect("plan");
    let p = repo.root.join("plan.toml");
    let out = repo.orch(&["plan", "load", p.to_str().expect("utf-8")], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let (run, pid) = working(&repo);
    pause(&repo, pid);
    let t = repo.task("t");
    assert_eq!(t["state"], "paused", "{t:#}");
    assert_eq!(t["paused_from"], "working", "{t:#}");
    // Longer than the whole time budget: a paused agent's clock stands still, so this is not
    // counted against it (were it counted, the agent would be stopped as soon as it goes on).
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(proc_state(pid), Some('T'), "still frozen, still there");
    let held = attempts(&repo);
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!(
        held[0]["state"], "running",
        "the attempt is kept: {held:#?}"
    );
    let out = repo.orch(&["resume", "t"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = run.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("t: attempt 1 frozen") && out.stdout.contains("t: attempt 1 continues"),
        "{}",
        out.stdout
    );
    let after = attempts(&repo);
    assert_eq!(after.len(), 1, "no second attempt: {after:#?}");
    assert_eq!(after[0]["id"], held[0]["id"], "the same attempt row");
    assert_eq!(after[0]["pid"], held[0]["pid"], "the same process");
    assert_eq!(after[0]["state"], "succeeded", "{after:#?}");
    // The pause is kept on the attempt (what a later attempt's allowance does not count).
    let held_ms = after[0]["held_ms"].as_i64().unwrap_or(0);
    assert!(
        (7_000..60_000).contains(&held_ms),
        "held at least the 7 s slept: {after:#?}"
    );
    assert_eq!(repo.task("t")["state"], "done");
    // One session on one terminal: both lines in the same attempt's recording.
    let raw = std::fs::read_to_string(raw_log(&repo, 1)).expect("raw log");
    assert!(
        raw.contains("before-the-pause") && raw.contains("after-the-pause"),
        "{raw}"
    );
    assert!(!repo.dir.join(".orch/logs/t/2").exists(), "no attempt 2");
}

/// A shell agent that ignores SIGHUP (with `ORCH_HOLDERS=0` its supervisor's death hangs its
/// terminal up); in a holder it never sees the supervisor die: it stays frozen.
const SHELL_AGENT: &str = r#"
[agents.sh]
command = ["sh", "-c", "trap '' HUP; echo before-the-pause; sleep 3; echo done > work.txt"]
adapter = "generic"
"#;

#[test]
fn a_supervisor_killed_while_a_task_is_paused_adopts_its_frozen_agent_and_resume_continues_it() {
    let repo = Repo::new();
    repo.init(&format!("{FAST_CONFIG}{SHELL_AGENT}"));
    let plan = "[plan]\nname = \"pause\"\n\n[[task]]\nid = \"t\"\ntitle = \"Paused work\"\n\
                agent = \"sh\"\nprompt = \"work\"\n";
    std::fs::write(repo.root.join("plan.toml"), plan).expect("plan");
    let p = repo.root.join("plan.toml");
    let out = repo.orch(&["plan", "load", p.to_str().expect("utf-8")], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let (run, pid) = working(&repo);
    pause(&repo, pid);
    run.kill9();
    let frozen = wait_for(Duration::from_secs(5), || {
        let left = repo.agents();
        let stopped = left
            .iter()
            .any(|p| proc_state(i64::from(p.pid)) == Some('T'));
        stopped.then_some(()).ok_or(left)
    });
    assert!(
        frozen.is_ok(),
        "a frozen process outlives its supervisor: {frozen:?}"
    );
    // The next start adopts it from its holder, still frozen; nothing of the task moves.
    let rerun = repo.spawn(&["run", "--headless"]);
    let adopted = wait_for(LIMIT, || {
        let out = rerun.stdout_now();
        out.contains("still frozen for the pause")
            .then_some(())
            .ok_or(out)
    });
    assert!(adopted.is_ok(), "{adopted:?}");
    assert_eq!(
        proc_state(pid),
        Some('T'),
        "still frozen after the adoption"
    );
    let t = repo.task("t");
    assert_eq!(t["state"], "paused", "{t:#}");
    assert_eq!(t["failures"], 0, "{t:#}");
    let a = attempts(&repo);
    assert_eq!(
        (a.len(), a[0]["state"].as_str()),
        (1, Some("running")),
        "{a:#?}"
    );
    assert_eq!(a[0]["pid"].as_i64(), Some(pid), "the same agent: {a:#?}");
    // `resume` thaws it: the same attempt finishes its work.
    let out = repo.orch(&["resume", "t"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = rerun.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let a = attempts(&repo);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["state"], "succeeded", "{a:#?}");
    repo.assert_no_agents_left(Duration::from_secs(10));
}

#[test]
fn pause_and_resume_take_a_task_or_all_never_both() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    for args in [&["pause"][..], &["resume"], &["pause", "t", "--all"]] {
        let out = repo.orch(args, LIMIT);
        assert_eq!(out.code, 2, "{args:?}: {}", out.show());
    }
    let out = repo.orch(&["pause", "--all"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("nothing to pause"), "{}", out.stdout);
}

/// A stand-in for an interactive Claude session: a program (it ignores the arguments the Claude
/// adapter adds) whose terminal is raw, every byte it is sent kept in `keys` (outside the
/// repository).
fn interactive_claude(root: &std::path::Path, keys: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let program = root.join("fake-claude");
    let script = format!(
        "#!/bin/sh\nstty raw -echo\necho ready-for-input\nexec cat > '{}'\n",
        keys.display()
    );
    std::fs::write(&program, script).expect("fake claude");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let p = program.display();
    format!(
        "\n[agents.claude]\ncommand = [\"{p}\"]\ninteractive = [\"{p}\"]\n\
         mode = \"interactive\"\nadapter = \"claude\"\n"
    )
}

#[test]
fn an_interactive_session_has_its_turn_interrupted_and_is_asked_to_go_on() {
    let repo = Repo::new();
    let keys = repo.root.join("keys.bin");
    repo.init(&format!(
        "{FAST_CONFIG}{}",
        interactive_claude(&repo.root, &keys)
    ));
    let plan = "[plan]\nname = \"pause\"\n\n[[task]]\nid = \"t\"\ntitle = \"Session\"\n\
                agent = \"claude\"\nprompt = \"work\"\n";
    std::fs::write(repo.root.join("plan.toml"), plan).expect("plan");
    let p = repo.root.join("plan.toml");
    let out = repo.orch(&["plan", "load", p.to_str().expect("utf-8")], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let run = repo.spawn(&["run", "--headless"]);
    let raw = raw_log(&repo, 1);
    let up = wait_for(LIMIT, || {
        let text = std::fs::read_to_string(&raw).unwrap_or_default();
        text.contains("ready-for-input").then_some(()).ok_or(text)
    });
    assert!(
        up.is_ok(),
        "the session never started: {}",
        run.stdout_now()
    );
    // The pid is written once the holder reports the spawn, which can come
    // after the session's first output reached the raw log.
    let pid = wait_for(LIMIT, || {
        let a = attempts(&repo);
        a.first()
            .and_then(|a| a["pid"].as_i64())
            .ok_or_else(|| format!("{a:#?}"))
    })
    .expect("the attempt's pid is written");
    let got = |want: &dyn Fn(&[u8]) -> bool| {
        wait_for(LIMIT, || {
            let b = std::fs::read(&keys).unwrap_or_default();
            if want(&b) {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&b).into_owned())
            }
        })
    };
    let out = repo.orch(&["pause", "t"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let escaped = got(&|b: &[u8]| b.contains(&0x1b));
    assert!(
        escaped.is_ok(),
        "no Escape reached the session: {escaped:?}"
    );
    assert_ne!(
        proc_state(pid),
        Some('T'),
        "a session is interrupted, not frozen"
    );
    let out = repo.orch(&["resume", "t"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let went_on = got(&|b: &[u8]| {
        let text = String::from_utf8_lossy(b);
        text.contains("carry on with the task") && text.ends_with('\r')
    });
    assert!(went_on.is_ok(), "not asked to go on: {went_on:?}");
    let a = attempts(&repo);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["state"], "running", "the same attempt: {a:#?}");
    assert_eq!(a[0]["pid"].as_i64(), Some(pid));
    let out = repo.orch(&["cancel", "t"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = run.wait(LIMIT);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(
        out.stdout.contains("t: attempt 1 its turn interrupted"),
        "{}",
        out.stdout
    );
    repo.assert_no_agents_left(Duration::from_secs(10));
}

#[test]
fn pause_all_holds_every_working_agent_and_resume_all_lets_each_go_on() {
    let repo = Repo::new();
    repo.init(&format!("slots = 2\n{FAST_CONFIG}"));
    let task = |id: &str| {
        format!(
            "[[task]]\nid = \"{id}\"\ntitle = \"{id}\"\nprompt = \"\"\"\n{id}\n\
             @sim say {id}-started\n@sim sleep 2s\n\"\"\"\n\n"
        )
    };
    let plan = format!("[plan]\nname = \"fleet\"\n\n{}{}", task("a"), task("b"));
    std::fs::write(repo.root.join("plan.toml"), plan).expect("plan");
    let p = repo.root.join("plan.toml");
    let out = repo.orch(&["plan", "load", p.to_str().expect("utf-8")], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let mut run = repo.spawn(&["run", "--headless"]);
    let pid_of = |id: &str| -> Option<i64> {
        let t = task_of(&repo.status(), id);
        t["attempts"][0]["pid"].as_i64()
    };
    let both = wait_for(LIMIT, || {
        if run.try_wait().is_some() {
            panic!(
                "the run ended before both agents ran:\n{}\n{}\n{:#}",
                run.stdout_now(),
                run.stderr_now(),
                repo.status()
            );
        }
        let raw = |id: &str| {
            std::fs::read_to_string(repo.dir.join(format!(".orch/logs/{id}/1/pty.raw")))
                .unwrap_or_default()
        };
        match (pid_of("a"), pid_of("b")) {
            (Some(a), Some(b))
                if raw("a").contains("a-started") && raw("b").contains("b-started") =>
            {
                Ok((a, b))
            }
            other => Err(other),
        }
    });
    let (a, b) = both.unwrap_or_else(|e| {
        panic!(
            "both agents never ran: {e:?}\n{:#}\n--- run ---\n{}\n{}",
            repo.status(),
            run.stdout_now(),
            run.stderr_now()
        )
    });
    let out = repo.orch(&["pause", "--all"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("a: working -> paused") && out.stdout.contains("b: working -> paused"),
        "{}",
        out.stdout
    );
    for pid in [a, b] {
        let frozen = wait_for(LIMIT, || {
            let s = proc_state(pid);
            (s == Some('T')).then_some(()).ok_or(s)
        });
        assert!(frozen.is_ok(), "agent {pid} not frozen: {frozen:?}");
    }
    let out = repo.orch(&["resume", "--all"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = run.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    for id in ["a", "b"] {
        let t = task_of(&repo.status(), id);
        assert_eq!(t["state"], "done", "{t:#}");
        assert_eq!(t["attempts"].as_array().map(Vec::len), Some(1), "{t:#}");
    }
}
