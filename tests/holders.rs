//! Holders (issue 10): an agent held by an `orch-tui __hold` process outlives the supervisor,
//! records its exit durably, serves its screen and takes input over a versioned protocol, and
//! refuses what it must. Real binary, real PTYs, real sockets; every process is stopped by pid.

mod common;
mod e2e_support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_support::{BIN, FAST_CONFIG, Repo, task_of, wait_for};
use orch_tui::agent::holder::client;
use orch_tui::agent::holder::proto::{self, Frame, Hello};
use orch_tui::agent::holder::{HoldSpec, exit_path, read_exit, socket_path};
use orch_tui::engine::holder_world::start_holder;

const LIMIT: Duration = Duration::from_secs(60);

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next().map(str::to_owned));
    matches!(state.as_deref(), Some(s) if s != "Z" && s != "X")
}

/// Kills what a failed test may leave: the holder's agent group and the holder.
struct Cleanup(Vec<i32>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.0 {
            e2e_support::kill_group(pid, libc::SIGKILL);
        }
    }
}

fn spec(dir: &Path, attempt: i64, argv: &[&str]) -> HoldSpec {
    HoldSpec {
        attempt,
        task: "t".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        cwd: dir.to_path_buf(),
        env: vec![],
        log_dir: dir.join("logs"),
        rotate_bytes: 0,
        rows: 24,
        cols: 80,
        dir: dir.join("holders"),
        branches_before: vec![],
    }
}

/// Reads frames until one of the output seen so far contains `text`.
fn read_until(c: &mut client::Conn, seen: &mut String, text: &str) {
    let deadline = std::time::Instant::now() + LIMIT;
    while !seen.contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "never saw {text:?} in {seen:?}"
        );
        match c.next_frame().expect("a frame") {
            Some(Frame::Output(b)) => seen.push_str(&String::from_utf8_lossy(&b)),
            Some(_) => {}
            None => panic!("the holder closed before {text:?}; saw {seen:?}"),
        }
    }
}

#[test]
fn a_holder_serves_screen_and_input_refuses_strangers_ignores_hangup_and_records_the_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let s = spec(
        &dir,
        7,
        &[
            "sh",
            "-c",
            "echo hello-from-agent; read x; echo got-$x; read y; exit 3",
        ],
    );
    let holder_pid = start_holder(Path::new(BIN), &s).expect("holder started");
    let mut cleanup = Cleanup(vec![holder_pid as i32]);
    let sock = socket_path(&s.dir, 7);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600, "socket mode");
    assert_eq!(mode(&s.dir), 0o700, "holders dir mode");

    let mut c = client::connect(&sock, "test").expect("welcome");
    let pid = c.welcome.pid as i32;
    cleanup.0.push(pid);
    assert!(alive(pid));
    let mut seen = String::from_utf8_lossy(&c.snapshot).into_owned();
    read_until(&mut c, &mut seen, "hello-from-agent");

    // The terminal closing would send SIGHUP: nothing happens to the agent.
    unsafe { libc::kill(holder_pid as i32, libc::SIGHUP) };
    c.sender().send(&Frame::Input(b"abc\r".to_vec())).unwrap();
    read_until(&mut c, &mut seen, "got-abc");
    assert!(alive(pid) && alive(holder_pid as i32));

    // A second client joins with the screen as it is now.
    let late = client::connect(&sock, "late").expect("second client");
    let snap = String::from_utf8_lossy(&late.snapshot).into_owned();
    assert!(
        snap.contains("hello-from-agent") && snap.contains("got-abc"),
        "{snap:?}"
    );
    drop(late);

    // Another protocol version is refused by name, and nothing changes.
    let mut raw = UnixStream::connect(&sock).unwrap();
    let hello = Frame::Hello(Hello {
        version: 99,
        client: "future".into(),
    });
    raw.write_all(&hello.encode()).unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    match proto::read_frame(&mut answer.as_slice()).unwrap() {
        Some(Frame::Refuse(t)) => {
            assert!(t.contains("version 1") && t.contains("version 99"), "{t}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(alive(pid));

    let st = client::status(&sock).expect("status");
    assert_eq!((st.pid, st.attempt, st.exit), (pid as u32, 7, None));

    // The exit is on disk before the client hears it; then the holder goes, socket and all.
    c.sender().send(&Frame::Input(b"\r".to_vec())).unwrap();
    let exit = loop {
        match c.next_frame().unwrap() {
            Some(Frame::Exited(e)) => break e,
            Some(_) => {}
            None => panic!("closed without an exit"),
        }
    };
    assert_eq!(exit.code, Some(3));
    assert_eq!(read_exit(&s.dir, 7), Some(exit));
    assert!(exit_path(&s.dir, 7).exists());
    drop(c);
    let gone = wait_for(LIMIT, || {
        (!alive(holder_pid as i32) && !sock.exists())
            .then_some(())
            .ok_or(())
    });
    assert!(gone.is_ok(), "the holder or its socket outlived the agent");
    let raw_log = std::fs::read_to_string(dir.join("logs/pty.raw")).unwrap();
    assert!(raw_log.contains("got-abc"), "{raw_log:?}");
}

#[test]
fn stopping_through_the_holder_ends_the_whole_tree_and_a_bad_program_is_a_clear_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let s = spec(
        &dir,
        1,
        &["sh", "-c", "sleep 300 & sleep 300 & echo up; wait"],
    );
    let holder_pid = start_holder(Path::new(BIN), &s).unwrap();
    let mut cleanup = Cleanup(vec![holder_pid as i32]);
    let mut c = client::connect(&socket_path(&s.dir, 1), "test").unwrap();
    let pid = c.welcome.pid as i32;
    cleanup.0.push(pid);
    let mut seen = String::from_utf8_lossy(&c.snapshot).into_owned();
    read_until(&mut c, &mut seen, "up");
    let children: Vec<i32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(children.len(), 2, "two sleeps under the agent");
    c.sender().send(&Frame::Stop { grace_ms: 200 }).unwrap();
    loop {
        match c.next_frame().unwrap() {
            Some(Frame::Exited(_)) => break,
            Some(_) => {}
            None => panic!("closed without an exit"),
        }
    }
    for p in children.iter().chain([&pid]) {
        let gone = wait_for(LIMIT, || (!alive(*p)).then_some(()).ok_or(()));
        assert!(gone.is_ok(), "process {p} outlived the stop");
    }

    let bad = spec(&dir, 2, &["/no/such/agent"]);
    let hp = start_holder(Path::new(BIN), &bad).unwrap();
    cleanup.0.push(hp as i32);
    let err = client::connect(&socket_path(&bad.dir, 2), "test")
        .err()
        .expect("refused");
    assert!(err.contains("/no/such/agent"), "{err}");
    let gone = wait_for(LIMIT, || (!alive(hp as i32)).then_some(()).ok_or(()));
    assert!(gone.is_ok(), "a holder whose agent could not start stays");
}

fn slow_plan() -> String {
    "[plan]\nname = \"held\"\n\n[[task]]\nid = \"t\"\ntitle = \"Held work\"\nprompt = \"\"\"\n\
     Held work\n@sim say before-the-crash\n@sim sleep 4s\n@sim say after-the-crash\n\"\"\"\n"
        .into()
}

/// The first attempt of `t` once the supervisor has recorded its agent's pid.
fn recorded(repo: &Repo) -> serde_json::Value {
    let got = wait_for(LIMIT, || {
        let a = task_of(&repo.status(), "t")["attempts"][0].clone();
        if a["pid"].is_i64() { Ok(a) } else { Err(a) }
    });
    got.unwrap_or_else(|a| panic!("no pid recorded: {a:#}"))
}

fn holders_dir(repo: &Repo) -> PathBuf {
    repo.dir.join(".orch/holders")
}

#[test]
fn an_agent_outlives_a_killed_supervisor_and_its_holder_records_the_whole_log_and_exit() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let plan = repo.write_plan(&slow_plan());
    let run = repo.spawn(&["run", "--headless", "--plan", plan.to_str().unwrap()]);
    let raw = repo.dir.join(".orch/logs/t/1/pty.raw");
    let printed = wait_for(LIMIT, || {
        let t = std::fs::read_to_string(&raw).unwrap_or_default();
        t.contains("before-the-crash").then_some(()).ok_or(t)
    });
    assert!(
        printed.is_ok(),
        "the agent never printed: {}",
        run.stdout_now()
    );
    let attempt = recorded(&repo);
    let pid = attempt["pid"].as_i64().expect("a recorded pid") as i32;
    let id = attempt["id"].as_i64().expect("an attempt id");
    let st = client::status(&socket_path(&holders_dir(&repo), id)).expect("its holder answers");
    assert_eq!(st.pid as i32, pid);
    let _cleanup = Cleanup(vec![pid, st.holder_pid as i32]);

    run.kill9();
    assert!(alive(pid), "the agent died with the supervisor");
    // It finishes its work with nobody supervising; every byte is logged, the exit recorded.
    let ended = wait_for(LIMIT, || read_exit(&holders_dir(&repo), id).ok_or(()));
    assert_eq!(ended.expect("an exit record").code, Some(0));
    let log = std::fs::read_to_string(&raw).unwrap();
    assert!(log.contains("after-the-crash"), "{log:?}");

    // The next start finishes the attempt from the record: no second attempt.
    let out = repo.orch(&["run", "--headless"], Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("adopted"), "{}", out.show());
    let t = task_of(&repo.status(), "t");
    assert_eq!(t["state"], "done", "{t:#}");
    assert_eq!(agent_attempts(&t), 1, "{t:#}");
    repo.assert_no_agents_left(LIMIT);
}

fn agent_attempts(t: &serde_json::Value) -> usize {
    t["attempts"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["role"] == "agent").count())
        .unwrap_or(0)
}

#[test]
fn a_new_supervisor_adopts_a_running_agent_same_pid_and_the_task_completes_in_one_attempt() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let plan = repo.write_plan(&slow_plan());
    let run = repo.spawn(&["run", "--headless", "--plan", plan.to_str().unwrap()]);
    let raw = repo.dir.join(".orch/logs/t/1/pty.raw");
    let printed = wait_for(LIMIT, || {
        let t = std::fs::read_to_string(&raw).unwrap_or_default();
        t.contains("before-the-crash").then_some(()).ok_or(t)
    });
    assert!(
        printed.is_ok(),
        "the agent never printed: {}",
        run.stdout_now()
    );
    let attempt = recorded(&repo);
    let pid = attempt["pid"].as_i64().expect("a recorded pid") as i32;
    let id = attempt["id"].as_i64().unwrap();
    let st = client::status(&socket_path(&holders_dir(&repo), id)).unwrap();
    let _cleanup = Cleanup(vec![pid, st.holder_pid as i32]);
    run.kill9();
    assert!(alive(pid), "the agent died with the supervisor");

    let rerun = repo.spawn(&["run", "--headless"]);
    // Adopted while it still runs: the holder now has the new supervisor as a client.
    let adopted = wait_for(LIMIT, || {
        let s = client::status(&socket_path(&holders_dir(&repo), id))?;
        // The status question is one client; the new supervisor the other.
        if s.clients >= 2 && s.exit.is_none() {
            Ok(s)
        } else {
            Err(format!("{s:?}"))
        }
    });
    let s = adopted.unwrap_or_else(|e| panic!("never adopted: {e}; {}", rerun.stdout_now()));
    assert_eq!(s.pid as i32, pid, "the same agent");
    let out = rerun.wait(Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.show());
    let t = task_of(&repo.status(), "t");
    assert_eq!(t["state"], "done", "{t:#}");
    assert_eq!(agent_attempts(&t), 1, "{t:#}");
    let log = std::fs::read_to_string(&raw).unwrap();
    assert!(
        log.contains("before-the-crash") && log.contains("after-the-crash"),
        "{log:?}"
    );
    repo.assert_no_agents_left(LIMIT);
}

#[test]
fn a_holder_killed_with_9_fails_its_attempt_and_the_task_is_retried() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let plan = repo.write_plan(&slow_plan());
    let run = repo.spawn(&["run", "--headless", "--plan", plan.to_str().unwrap()]);
    let raw = repo.dir.join(".orch/logs/t/1/pty.raw");
    let printed = wait_for(LIMIT, || {
        let t = std::fs::read_to_string(&raw).unwrap_or_default();
        t.contains("before-the-crash").then_some(()).ok_or(t)
    });
    assert!(
        printed.is_ok(),
        "the agent never printed: {}",
        run.stdout_now()
    );
    let id = task_of(&repo.status(), "t")["attempts"][0]["id"]
        .as_i64()
        .unwrap();
    let st = client::status(&socket_path(&holders_dir(&repo), id)).unwrap();
    unsafe { libc::kill(st.holder_pid as i32, libc::SIGKILL) };
    let out = run.wait(Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.show());
    let t = task_of(&repo.status(), "t");
    assert_eq!(t["state"], "done", "{t:#}");
    let agents = t["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["role"] == "agent")
        .count();
    assert_eq!(agents, 2, "{t:#}");
    assert!(!alive(st.pid as i32), "the first agent outlived its holder");
    repo.assert_no_agents_left(LIMIT);
}
