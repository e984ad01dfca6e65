//! Holders (issue 10): an agent held by an `orch-tui __hold` process outlives the supervisor,
//! records its exit durably, serves its screen and takes input over a versioned protocol, and
//! refuses what it must. Real binary, real PTYs, real sockets; every process is stopped by pid.

mod common;
mod e2e_support;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_support::{BIN, FAST_CONFIG, Repo, task_of, wait_for};
use orch_tui::agent::holder::client;
use orch_tui::agent::holder::proto::{self, Frame, Hello};
use orch_tui::agent::holder::serve::SPARE_WAIT;
use orch_tui::agent::holder::{HoldSpec, exit_path, read_exit, socket_path, spare};
use orch_tui::engine::holder_start::Spares;
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
        first_client_ms: None,
        prompt_file: None,
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
    let ready = start_holder(Path::new(BIN), &s).expect("holder started");
    let holder_pid = ready.holder_pid;
    let mut cleanup = Cleanup(vec![holder_pid as i32]);
    let sock = socket_path(&s.dir, 7);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600, "socket mode");
    assert_eq!(mode(&s.dir), 0o700, "holders dir mode");

    let mut c = client::connect(&sock, "test").expect("welcome");
    let pid = c.welcome.pid as i32;
    cleanup.0.push(pid);
    assert_eq!(ready.agent_pid, Some(pid as u32), "`ready` names the agent");
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

fn nz(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a size")
}

/// A client that joins while the agent floods gets a snapshot plus a stream that make exactly
/// the screen the first client built from every byte: nothing twice, nothing missing (the
/// holder snapshots the agent's own screen while the reader, which holds it, queues output).
#[test]
fn a_client_joining_during_a_flood_ends_with_exactly_the_screen_of_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let flood = "i=0; while [ $i -lt 20000 ]; do printf 'line %d \\033[1;3%dmcolour\\033[0m\\n' $i $((i % 7)); i=$((i+1)); done; echo flood-done; read x";
    let s = spec(&dir, 8, &["sh", "-c", flood]);
    let ready = start_holder(Path::new(BIN), &s).expect("holder started");
    let holder_pid = ready.holder_pid;
    let mut cleanup = Cleanup(vec![holder_pid as i32]);
    let sock = socket_path(&s.dir, 8);
    let mut first = client::connect(&sock, "first").expect("welcome");
    cleanup.0.push(first.welcome.pid as i32);
    let mut seen = String::new();
    read_until(&mut first, &mut seen, "line 10 ");
    let mut late = client::connect(&sock, "late").expect("second client");
    let screen_of = |c: &mut client::Conn, until_done: bool| {
        let mut p = vt100::Parser::new(nz(c.welcome.rows), nz(c.welcome.cols), 0);
        p.process(&c.snapshot);
        let mut text = String::new();
        loop {
            match c.next_frame().expect("a frame") {
                Some(Frame::Output(b)) => {
                    p.process(&b);
                    text.push_str(&String::from_utf8_lossy(&b));
                    if until_done && text.contains("flood-done") {
                        return p.screen().contents();
                    }
                }
                Some(Frame::Exited(_)) | None => return p.screen().contents(),
                Some(_) => {}
            }
        }
    };
    let mut p = vt100::Parser::new(nz(first.welcome.rows), nz(first.welcome.cols), 0);
    p.process(&first.snapshot);
    p.process(seen.as_bytes());
    let mut rest = String::new();
    while !rest.contains("flood-done") {
        match first.next_frame().expect("a frame") {
            Some(Frame::Output(b)) => {
                p.process(&b);
                rest.push_str(&String::from_utf8_lossy(&b));
            }
            Some(_) => {}
            None => panic!("the holder closed during the flood"),
        }
    }
    let late_screen = screen_of(&mut late, true);
    assert!(late_screen.contains("flood-done"), "{late_screen}");
    assert_eq!(late_screen, p.screen().contents());
    first.sender().send(&Frame::Input(b"\r".to_vec())).unwrap();
    drop((first, late));
    let gone = wait_for(LIMIT, || {
        (!alive(holder_pid as i32)).then_some(()).ok_or(())
    });
    assert!(gone.is_ok(), "the holder outlived its agent");
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
    let holder_pid = start_holder(Path::new(BIN), &s).unwrap().holder_pid;
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

    // The holder starts its agent before anyone connects: a program that cannot start is
    // the spawner's error, and the holder leaves no socket behind.
    let bad = spec(&dir, 2, &["/no/such/agent"]);
    let err = start_holder(Path::new(BIN), &bad).expect_err("refused");
    assert!(err.contains("/no/such/agent"), "{err}");
    assert!(
        !socket_path(&bad.dir, 2).exists(),
        "a socket outlived the failed start"
    );
}

/// A holder started ahead of the next dispatch: it carries nothing of any attempt until its
/// spec comes, the next start uses it (its stderr then goes to that attempt's log), a spare
/// that died or expired is replaced by a cold start, and a spare let go exits.
#[test]
fn a_spare_holder_takes_the_next_spec_a_dead_or_old_one_falls_back_and_one_let_go_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let spares = Spares::default();
    let bin = Path::new(BIN);
    let mut cleanup = Cleanup(vec![]);
    let agent = |n: i64| HoldSpec {
        // A task folder of its own for each: a new task's first attempt.
        log_dir: dir.join(format!("logs/t{n}/{n}")),
        prompt_file: Some(orch_tui::agent::PromptFile {
            path: dir.join(format!("prompts/{n}.md")),
            text: format!("the prompt of {n}"),
        }),
        ..spec(
            &dir,
            n,
            &["sh", "-c", &format!("echo agent-{n}; sleep 300")],
        )
    };
    let holders = dir.join("holders");
    let ino = |p: &Path| std::fs::symlink_metadata(p).map(|m| m.ino()).ok();
    // A spare's files, made while it waits: (log, socket, raw log, the task's log folder,
    // the prompt file).
    let prepared = |pid: i32| {
        let root = holders.join(format!("spare-{pid}"));
        wait_for(LIMIT, || ino(&root.join("sock")).ok_or(())).expect("the spare made its socket");
        [
            ino(&root.join("hold.log")),
            ino(&root.join("sock")),
            ino(&root.join("logs/pty.raw")),
            ino(&root.join("task")),
            ino(&root.join("prompt")),
        ]
    };
    // Spares sit in our process group until their spec comes: signal them one by one.
    let spare = |spares: &Spares| {
        wait_for(LIMIT, || spares.spare_pid().ok_or(())).expect("a spare was started") as i32
    };

    let (first, spared) = spares.start(bin, &agent(1)).expect("a cold start");
    assert!(!spared, "no spare before the first start");
    cleanup.0.push(first.holder_pid as i32);
    let a = spare(&spares);
    let environ = std::fs::read(format!("/proc/{a}/environ")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&environ).contains("ORCH_"),
        "a spare carries no ORCH_ variable"
    );
    let listed = std::fs::read_dir(dir.join("holders")).unwrap().count();

    // A spare that takes a spec it cannot run says so like a cold holder, in the attempt's log.
    let err = spares
        .start(bin, &spec(&dir, 2, &["/no/such/agent"]))
        .expect_err("refused");
    assert!(err.contains("/no/such/agent"), "{err}");
    let gone = wait_for(LIMIT, || (!alive(a)).then_some(()).ok_or(()));
    assert!(gone.is_ok(), "the spare {a} took the bad spec and ended");
    let log = std::fs::read_to_string(dir.join("holders/2.log")).unwrap_or_default();
    assert!(log.contains("/no/such/agent"), "attempt 2's log: {log:?}");
    assert!(listed > 0, "the first holder's files are there");

    let b = spare(&spares);
    assert_ne!(a, b, "a new spare after the take");
    let made = prepared(b);
    let (third, spared) = spares.start(bin, &agent(3)).expect("started on the spare");
    assert!(spared);
    cleanup.0.push(third.holder_pid as i32);
    assert_eq!(third.holder_pid, b as u32, "the spare held attempt 3");
    // Its files were the spare's, renamed into place (no new inode on the dispatch's path).
    let placed = [
        ino(&holders.join("3.log")),
        ino(&holders.join("3.sock")),
        ino(&dir.join("logs/t3/3/pty.raw")),
        ino(&dir.join("logs/t3")),
        ino(&dir.join("prompts/3.md")),
    ];
    assert_eq!(made, placed, "(log, socket, raw log, task folder, prompt)");
    assert_eq!(
        std::fs::read_to_string(dir.join("prompts/3.md")).unwrap(),
        "the prompt of 3"
    );
    assert!(
        !holders.join(format!("spare-{b}")).exists(),
        "the spare's folder is gone once used"
    );
    let mut c = client::connect(&socket_path(&dir.join("holders"), 3), "test").unwrap();
    cleanup.0.push(c.welcome.pid as i32);
    let mut seen = String::from_utf8_lossy(&c.snapshot).into_owned();
    read_until(&mut c, &mut seen, "agent-3");

    // A spare that died meanwhile: the start goes cold and the agent runs all the same.
    let d = spare(&spares);
    prepared(d);
    unsafe { libc::kill(d, libc::SIGKILL) };
    assert!(wait_for(LIMIT, || (!alive(d)).then_some(()).ok_or(())).is_ok());
    // Killed, it leaves its folder to `gc` (tests/gc.rs).
    assert_eq!(
        spare::leftovers(&holders),
        vec![holders.join(format!("spare-{d}"))]
    );
    std::fs::remove_dir_all(holders.join(format!("spare-{d}"))).unwrap();
    let (fourth, spared) = spares
        .start(bin, &agent(4))
        .expect("a cold start after the spare died");
    assert!(!spared);
    cleanup.0.push(fourth.holder_pid as i32);
    assert_ne!(fourth.holder_pid, d as u32);
    let mut c4 = client::connect(&socket_path(&dir.join("holders"), 4), "test").unwrap();
    cleanup.0.push(c4.welcome.pid as i32);
    let mut seen = String::from_utf8_lossy(&c4.snapshot).into_owned();
    read_until(&mut c4, &mut seen, "agent-4");

    // Unused, a spare gives up after `SPARE_WAIT`; the next start is cold.
    let e = spare(&spares);
    prepared(e);
    let expired = wait_for(SPARE_WAIT * 3, || (!alive(e)).then_some(()).ok_or(()));
    assert!(expired.is_ok(), "the unused spare {e} is still there");
    assert!(
        spare::leftovers(&holders).is_empty(),
        "an expired spare removes its folder"
    );
    let (fifth, spared) = spares.start(bin, &agent(5)).expect("a cold start");
    cleanup.0.push(fifth.holder_pid as i32);
    assert!(!spared, "an expired spare is not handed a spec");

    // Let go, the last spare ends at once.
    let f = spare(&spares);
    prepared(f);
    drop(spares);
    let ended = wait_for(SPARE_WAIT / 2, || (!alive(f)).then_some(()).ok_or(()));
    assert!(
        ended.is_ok(),
        "the spare {f} outlived its spawner letting it go"
    );
    assert!(
        spare::leftovers(&holders).is_empty(),
        "a spare let go removes its folder"
    );
    for c in [&c, &c4] {
        c.sender().send(&Frame::Stop { grace_ms: 200 }).unwrap();
    }
}

/// The agent starts before anyone connects: an agent that prints at once and exits before
/// the first client comes still gives that client every byte, once, then its exit; the log on
/// disk has it all too.
#[test]
fn an_agent_that_prints_and_exits_before_anyone_connects_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let script = "i=1; while [ $i -le 300 ]; do echo early-line-$i; i=$((i+1)); done; exit 4";
    let s = spec(&dir, 5, &["sh", "-c", script]);
    let ready = start_holder(Path::new(BIN), &s).expect("holder started");
    let _cleanup = Cleanup(vec![ready.holder_pid as i32]);
    let agent = ready.agent_pid.expect("the agent's pid in `ready`");
    // Ended before anyone came: its exit is on disk.
    let ended = wait_for(LIMIT, || read_exit(&s.dir, 5).ok_or(()));
    assert_eq!(ended.expect("the agent's exit").code, Some(4));
    assert!(!alive(agent as i32));

    let mut c = client::connect(&socket_path(&s.dir, 5), "late first").expect("welcome");
    assert_eq!(c.welcome.pid, agent);
    // The exit is on disk before the holder's own record of it (`holder::write_exit`): a
    // client that comes in between has no exit in its welcome, and hears it as a frame.
    if let Some(e) = c.welcome.exit {
        assert_eq!(e.code, Some(4));
    }
    let mut p = vt100::Parser::new(nz(c.welcome.rows), nz(c.welcome.cols), 0);
    p.process(&c.snapshot);
    let mut stream = String::new();
    let exit = loop {
        match c.next_frame().expect("a frame") {
            Some(Frame::Output(b)) => {
                p.process(&b);
                stream.push_str(&String::from_utf8_lossy(&b));
            }
            Some(Frame::Exited(e)) => break e,
            Some(_) => {}
            None => panic!("closed without an exit; saw {stream:?}"),
        }
    };
    assert_eq!(exit.code, Some(4));
    let lines: Vec<&str> = stream.lines().map(str::trim_end).collect();
    let want: Vec<String> = (1..=300).map(|i| format!("early-line-{i}")).collect();
    assert_eq!(lines, want, "every line once, in order");
    let screen = p.screen().contents();
    assert!(
        screen.contains("early-line-300") && screen.contains("early-line-278"),
        "{screen}"
    );
    drop(c);
    let gone = wait_for(LIMIT, || {
        (!alive(ready.holder_pid as i32)).then_some(()).ok_or(())
    });
    assert!(gone.is_ok(), "the holder outlived its agent and its client");
    let raw = std::fs::read_to_string(dir.join("logs/pty.raw")).unwrap();
    let text = std::fs::read_to_string(dir.join("logs/screen.log")).unwrap();
    for i in [1, 150, 300] {
        let l = format!("early-line-{i}");
        assert!(raw.contains(&l), "raw log lacks {l}");
        assert!(text.contains(&l), "text log lacks {l}");
    }
}

/// A spawner that dies between the holder's start and its connect (a supervisor killed
/// there): nobody will follow that agent, so its holder stops it once no client came in time,
/// records the exit and goes, socket and all.
#[test]
fn a_holder_whose_first_client_never_comes_stops_its_agent_and_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let mut s = spec(&dir, 6, &["sh", "-c", "sleep 300 & echo started; wait"]);
    s.first_client_ms = Some(300);
    let ready = start_holder(Path::new(BIN), &s).expect("holder started");
    let agent = ready.agent_pid.expect("the agent's pid") as i32;
    let _cleanup = Cleanup(vec![ready.holder_pid as i32, agent]);
    let gone = wait_for(LIMIT, || {
        (!alive(agent) && !alive(ready.holder_pid as i32))
            .then_some(())
            .ok_or(())
    });
    assert!(
        gone.is_ok(),
        "the agent or its holder outlived the wait for a client"
    );
    assert!(read_exit(&s.dir, 6).is_some(), "the exit is recorded");
    assert!(!socket_path(&s.dir, 6).exists(), "the socket stayed");
}

fn slow_plan() -> String {
    "[plan]\nname = \"held\"\n\n[[task]]\nid = \"t\"\ntitle = \"Held work\"\nprompt = \"\"\"\n\
     Held work\n@sim say before-the-crash\n@sim sleep 4s\n@sim say after-the-crash\n\"\"\"\n"
        .into()
}

/// The first attempt of `t` once the supervisor has recorded its agent's pid.
fn recorded(repo: &Repo) -> serde_json::Value {
    let got = wait_for(LIMIT, || {
        let status = repo.status();
        let task = status["tasks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["id"] == "t"))
            .cloned()
            .unwrap_or_default();
        let a = task["attempts"][0].clone();
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Figures for the report: `cargo test --test holders figures -- --ignored --nocapture`.
#[test]
#[ignore]
fn figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let s = spec(&dir, 1, &["cat"]);
    let holder_pid = start_holder(Path::new(BIN), &s).unwrap().holder_pid as i32;
    let mut cleanup = Cleanup(vec![holder_pid]);
    let sock = socket_path(&s.dir, 1);
    let mut c = client::connect(&sock, "figures").unwrap();
    cleanup.0.push(c.welcome.pid as i32);

    // Keystroke -> echoed output through the holder (the PTY echoes; cat repeats).
    let mut lat = Vec::new();
    for i in 0..300u32 {
        let key = [b'a' + (i % 26) as u8];
        let t = std::time::Instant::now();
        c.sender().send(&Frame::Input(key.to_vec())).unwrap();
        loop {
            match c.next_frame().unwrap() {
                Some(Frame::Output(b)) if b.contains(&key[0]) => break,
                Some(_) => {}
                None => panic!("holder closed"),
            }
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "keystroke -> output through a holder: p50 {:.3} ms, p99 {:.3} ms (300 keys)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    // The adopter's cost per holder: connect, hello, welcome and the screen.
    let mut adopt = Vec::new();
    for _ in 0..200 {
        let t = std::time::Instant::now();
        let conn = client::connect(&sock, "figures").unwrap();
        adopt.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(conn);
    }
    adopt.sort_by(f64::total_cmp);
    println!(
        "adoption handshake per holder (connect, hello, welcome, snapshot): p50 {:.3} ms, p99 {:.3} ms (200)",
        percentile(&adopt, 0.5),
        percentile(&adopt, 0.99)
    );

    // Memory and idle CPU of the holder process (its agent idle in `cat`).
    let status = std::fs::read_to_string(format!("/proc/{holder_pid}/status")).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?")
        .to_string();
    let ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{holder_pid}/stat")).unwrap();
        let f: Vec<u64> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|x| x.parse().unwrap())
            .collect();
        f[0] + f[1]
    };
    let (t0, w0) = (ticks(), std::time::Instant::now());
    // A measurement window, not synchronization.
    std::thread::sleep(Duration::from_secs(5));
    let used = (ticks() - t0) as f64 / 100.0;
    println!(
        "holder {rss}; idle CPU {:.2}% over {:.1} s",
        100.0 * used / w0.elapsed().as_secs_f64(),
        w0.elapsed().as_secs_f64()
    );
    c.sender().send(&Frame::Stop { grace_ms: 100 }).unwrap();
}

#[test]
fn attach_in_tmux_shows_the_agents_screen_types_into_it_and_ctrl_bracket_detaches() {
    let repo = Repo::new();
    repo.init(
        "stop_grace = \"200ms\"\ndefault_agent = \"script\"\n\n[funnel]\nautonomy = \"out-of-the-loop\"\n\n\
         [agents.script]\nadapter = \"generic\"\ncommand = [\"sh\", \"-c\", \"echo agent-ready; read x; echo typed-$x; echo $x > typed.txt; sleep 1\"]\n",
    );
    let plan = repo.write_plan(
        "[plan]\nname = \"attach\"\n\n[[task]]\nid = \"t\"\ntitle = \"Attach\"\nprompt = \"attach\"\n",
    );
    let run = repo.spawn(&["run", "--headless", "--plan", plan.to_str().unwrap()]);
    let attempt = recorded(&repo);
    let _cleanup = Cleanup(vec![attempt["pid"].as_i64().unwrap() as i32]);
    let cmd = format!("cd {} && {BIN} attach t", repo.dir.display());
    let Some(tmux) = common::tmux::Tmux::start("attach", &cmd, 100, 30) else {
        return;
    };
    tmux.wait("the agent's screen", 30, |s| s.contains("agent-ready"));
    tmux.keys(&["hello", "Enter"]);
    tmux.wait("the agent's answer", 30, |s| s.contains("typed-hello"));
    tmux.keys(&["C-]"]);
    let s = tmux.wait("the end of attach", 30, |s| s.contains("ORCH-EXITED"));
    assert!(s.contains("ORCH-EXITED 0"), "{s}");
    assert!(
        s.contains("detached from t") || s.contains("t's agent ended"),
        "{s}"
    );
    let out = run.wait(Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.show());
    let raw = std::fs::read_to_string(repo.dir.join(".orch/logs/t/1/pty.raw")).unwrap();
    assert!(raw.contains("typed-hello"), "{raw:?}");

    // No running agent: a refusal that says so, exit 3.
    let out = repo.orch(&["attach", "t"], LIMIT);
    assert_eq!(out.code, 3, "{}", out.show());
    assert!(out.stderr.contains("no running agent"), "{}", out.show());
    repo.assert_no_agents_left(LIMIT);
}
