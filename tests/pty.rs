//! Integration tests for the agent PTY layer: one per portable-pty trap of research/pty.md §1.5,
//! plus terminal-query replies, log rotation and rotation-aware follow.
//!
//! No sleeps as synchronization: every wait is on a condition with a deadline.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orch_tui::agent::logs::{self, RotatingFile};
use orch_tui::agent::pty::{AgentProcess, AgentSignal, ExitInfo, SpawnSpec};
use orch_tui::agent::record::text::{LineKind, TextLine, parse_line};
use orch_tui::os::kill_process_group;

const LONG: Duration = Duration::from_secs(15);

fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

type Signals = Arc<Mutex<Vec<AgentSignal>>>;

struct Fixture {
    dir: tempfile::TempDir,
    signals: Signals,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            signals: Arc::default(),
        }
    }
    fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }
    fn spec(&self, argv: &[&str]) -> SpawnSpec {
        SpawnSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: self.dir.path().to_path_buf(),
            env: vec![],
            rows: 24,
            cols: 80,
            log_dir: self.log_dir(),
            log_rotate_bytes: 1 << 20,
        }
    }
    fn spawn_spec(&self, spec: SpawnSpec) -> AgentProcess {
        let signals = Arc::clone(&self.signals);
        AgentProcess::spawn(spec, Box::new(move |s| signals.lock().unwrap().push(s))).unwrap()
    }
    fn spawn(&self, argv: &[&str]) -> AgentProcess {
        self.spawn_spec(self.spec(argv))
    }
    fn exited(&self) -> Option<ExitInfo> {
        self.signals.lock().unwrap().iter().find_map(|s| match s {
            AgentSignal::Exited(i) => Some(*i),
            _ => None,
        })
    }
    fn raw(&self) -> String {
        String::from_utf8_lossy(&logs::read_all(&self.log_dir().join("pty.raw")).unwrap()).into()
    }
}

fn screen_text(a: &AgentProcess) -> String {
    a.screen().lock().unwrap().screen().contents()
}

/// Live (non-zombie) processes whose process group is `pgid`.
fn live_group_members(pgid: u32) -> Vec<u32> {
    proc_stats()
        .into_iter()
        .filter(|(_, state, _, pgrp)| *pgrp == pgid && state != "Z")
        .map(|(pid, ..)| pid)
        .collect()
}

/// (pid, state, ppid, pgrp) for every process.
fn proc_stats() -> Vec<(u32, String, u32, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        out.push((
            pid,
            f[0].to_string(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
        ));
    }
    out
}

#[test]
fn t1_eof_and_exit_arrive_with_complete_logs() {
    let fx = Fixture::new();
    let a = fx.spawn(&["sh", "-c", "echo hi; exit 3"]);
    let info = a.wait_exit(LONG).expect("agent did not exit");
    assert_eq!(
        info,
        ExitInfo {
            code: Some(3),
            signal: None
        }
    );
    // Exited is sent once, last, and only after the output reached screen and logs. (The state
    // is set before the signal is sent, so wait for the signal itself.)
    assert!(wait_until(LONG, || fx.exited().is_some()));
    let signals = fx.signals.lock().unwrap().clone();
    assert_eq!(signals.last(), Some(&AgentSignal::Exited(info)));
    assert_eq!(
        signals
            .iter()
            .filter(|s| matches!(s, AgentSignal::Exited(_)))
            .count(),
        1
    );
    assert!(screen_text(&a).contains("hi"));
    // EOF comes too (it never does if the slave is kept open).
    assert!(wait_until(LONG, || a.output_ended()));
    assert!(fx.raw().contains("hi\r\n"));
    let screen_log = std::fs::read_to_string(fx.log_dir().join("screen.log")).unwrap();
    let lines: Vec<TextLine> = screen_log.lines().map(|l| parse_line(l).unwrap()).collect();
    let texts: Vec<(LineKind, &str)> = lines.iter().map(|l| (l.kind, l.text.as_str())).collect();
    assert_eq!(
        texts,
        vec![
            (LineKind::Output, "hi"),
            (LineKind::Note, "agent exited with code 3")
        ]
    );
}

#[test]
fn t2_stop_kills_the_whole_group_including_a_grandchild_holding_the_tty() {
    let fx = Fixture::new();
    // Both ignore HUP and TERM, so only the group-wide SIGKILL after the grace ends them.
    let a = fx.spawn(&[
        "sh",
        "-c",
        "trap '' HUP TERM; sleep 300 & echo started; wait",
    ]);
    assert!(wait_until(LONG, || screen_text(&a).contains("started")));
    let pgid = a.pid();
    assert!(
        live_group_members(pgid).len() >= 2,
        "sh and sleep should both be in the group"
    );
    let t = Instant::now();
    a.stop(Duration::from_millis(300));
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "stop() must not block the caller"
    );
    let info = a.wait_exit(LONG).expect("agent did not exit after stop");
    assert_eq!(info.signal, Some(libc::SIGKILL));
    assert!(
        wait_until(LONG, || live_group_members(pgid).is_empty()),
        "survivors: {:?}",
        live_group_members(pgid)
    );
    assert!(
        wait_until(LONG, || agent_threads(pgid).is_empty()),
        "{:?}",
        agent_threads(pgid)
    );
}

#[test]
fn kill_process_group_ends_a_group_we_do_not_own_as_parent() {
    let fx = Fixture::new();
    let a = fx.spawn(&["sh", "-c", "sleep 300 & echo started; wait"]);
    assert!(wait_until(LONG, || screen_text(&a).contains("started")));
    let pgid = a.pid();
    assert!(kill_process_group(pgid as i32, Duration::from_secs(5)));
    assert!(live_group_members(pgid).is_empty());
    assert!(a.wait_exit(LONG).is_some());
}

#[test]
fn t3_missing_cwd_is_a_spawn_error_and_nothing_starts() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&["sh", "-c", "pwd"]);
    spec.cwd = fx.dir.path().join("does-not-exist");
    let err = AgentProcess::spawn(spec, Box::new(|_| panic!("no signal expected")))
        .err()
        .unwrap();
    assert!(err.to_string().contains("does-not-exist"), "{err}");
    assert!(!fx.log_dir().exists(), "nothing should have been set up");
    // A file is not a directory either.
    std::fs::write(fx.dir.path().join("f"), "").unwrap();
    let mut spec = fx.spec(&["sh"]);
    spec.cwd = fx.dir.path().join("f");
    assert!(AgentProcess::spawn(spec, Box::new(|_| {})).is_err());
}

#[test]
fn cwd_and_environment_are_as_specified() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&[
        "sh",
        "-c",
        "echo \"cwd=$(pwd) term=$TERM ct=$COLORTERM x=$X lines=${LINES-unset}\"",
    ]);
    spec.env = vec![("X".into(), "y z".into())];
    let a = fx.spawn_spec(spec);
    assert!(a.wait_exit(LONG).is_some());
    let cwd = fx.dir.path().canonicalize().unwrap();
    let want = format!(
        "cwd={} term=xterm-256color ct=truecolor x=y z lines=unset",
        cwd.display()
    );
    assert!(fx.raw().contains(&want), "{}", fx.raw());
}

#[test]
fn t4_writer_is_kept_so_no_enter_or_ctrl_d_is_injected() {
    let fx = Fixture::new();
    // Raw mode: the first read blocks for our input; the second times out after 1.5 s and must
    // get nothing, even though the supervisor's handle is gone by then.
    let script = "stty raw -echo; echo ready; x=$(dd bs=1 count=2 2>/dev/null | od -An -c); \
                  echo \"one[$x]\"; stty min 0 time 15; y=$(dd bs=1 count=2 2>/dev/null | od -An -c); \
                  echo \"two[$y]\"";
    let a = fx.spawn(&["sh", "-c", script]);
    assert!(wait_until(LONG, || screen_text(&a).contains("ready")));
    a.write(b"xy".to_vec());
    assert!(wait_until(LONG, || screen_text(&a).contains("one[")));
    drop(a);
    assert!(wait_until(LONG, || fx.exited().is_some()));
    let raw = fx.raw();
    assert!(
        raw.contains("x   y"),
        "first read should see our bytes: {raw:?}"
    );
    assert!(raw.contains("two[]"), "nothing may be injected: {raw:?}");
}

#[test]
fn t5_exec_failures_are_spawn_errors() {
    let fx = Fixture::new();
    let d = fx.dir.path();
    std::fs::write(d.join("bad-interp"), "#!/nonexistent/interp\necho hi\n").unwrap();
    std::fs::write(d.join("not-exec"), "#!/bin/sh\necho hi\n").unwrap();
    chmod(&d.join("bad-interp"), 0o755);
    chmod(&d.join("not-exec"), 0o644);
    std::fs::create_dir(d.join("a-dir")).unwrap();
    for (argv0, says) in [
        ("./bad-interp", "/nonexistent/interp"),
        ("./not-exec", "not executable"),
        ("no-such-program-orch-test", "not found in PATH"),
        ("./a-dir", "directory"),
    ] {
        let err = AgentProcess::spawn(fx.spec(&[argv0]), Box::new(|_| {})).err();
        let err = err.unwrap_or_else(|| panic!("{argv0} should not spawn"));
        assert!(err.to_string().contains(says), "{argv0}: {err}");
    }
    assert!(!fx.log_dir().exists());
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn t6_resize_reaches_the_child_and_the_screen() {
    let fx = Fixture::new();
    let a = fx.spawn(&["sh", "-c", "stty size; read x; stty size; read x"]);
    assert!(wait_until(LONG, || screen_text(&a).contains("24 80")));
    a.resize(40, 100).unwrap();
    let (rows, cols) = a.screen().lock().unwrap().screen().size();
    assert_eq!((rows.get(), cols.get()), (40, 100));
    a.write(b"\r".to_vec());
    assert!(
        wait_until(LONG, || screen_text(&a).contains("40 100")),
        "{}",
        screen_text(&a)
    );
    a.write(b"\r".to_vec());
    assert_eq!(a.wait_exit(LONG).and_then(|i| i.code), Some(0));
}

#[test]
fn t7_no_zombies_after_100_spawn_stop_cycles() {
    let fx = Fixture::new();
    for i in 0..100 {
        let argv: &[&str] = if i % 2 == 0 {
            &["sleep", "300"]
        } else {
            &["true"]
        };
        let a = fx.spawn(argv);
        a.stop(Duration::from_millis(500));
        assert!(a.wait_exit(LONG).is_some(), "cycle {i}: no exit");
    }
    let me = std::process::id();
    // Other tests run in parallel in this process; their children may be zombies for an instant.
    let zombies = || {
        proc_stats()
            .into_iter()
            .filter(|(_, s, ppid, _)| s == "Z" && *ppid == me)
            .count()
    };
    assert!(wait_until(LONG, || zombies() == 0), "{} zombies", zombies());
}

#[test]
fn t8_large_paste_to_an_agent_that_never_reads_does_not_block() {
    let fx = Fixture::new();
    let a = fx.spawn(&["sleep", "300"]);
    let t = Instant::now();
    a.write(vec![b'a'; 1 << 20]);
    a.write(b"more".to_vec());
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "write() blocked for {:?}",
        t.elapsed()
    );
    a.stop(Duration::from_millis(300));
    assert!(
        a.wait_exit(LONG).is_some(),
        "stop must work while the writer is stuck"
    );
    // The writer blocked on the full terminal is released (EIO) once the agent is gone.
    let pid = a.pid();
    assert!(
        wait_until(LONG, || agent_threads(pid).is_empty()),
        "{:?}",
        agent_threads(pid)
    );
}

/// Names of this process's threads that belong to agent `pid` (thread names are cut to 15 bytes).
fn agent_threads(pid: u32) -> Vec<String> {
    let prefix = format!("agent-{pid}-");
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|c| c.starts_with(&prefix))
        .collect()
}

#[test]
fn cursor_position_query_gets_its_reply() {
    let fx = Fixture::new();
    let script =
        "printf 'ab\\033[6n'; IFS=';' read -rs -d R -t 5 row col; echo \" pos=${row#*[}/$col\"";
    let a = fx.spawn(&["bash", "-c", script]);
    let t = Instant::now();
    assert_eq!(a.wait_exit(LONG).and_then(|i| i.code), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "the reply did not come; read timed out"
    );
    assert!(screen_text(&a).contains("pos=1/3"), "{}", screen_text(&a));
}

#[test]
fn bell_and_notification_signals_arrive() {
    let fx = Fixture::new();
    let a = fx.spawn(&["sh", "-c", "printf 'x\\007\\033]9;agent waits\\007'"]);
    assert!(a.wait_exit(LONG).is_some());
    let signals = fx.signals.lock().unwrap().clone();
    assert!(signals.contains(&AgentSignal::Bell));
    assert!(signals.contains(&AgentSignal::Notification("agent waits".into())));
}

#[test]
fn agent_logs_rotate_and_keep_content_in_order() {
    let fx = Fixture::new();
    let mut spec = fx.spec(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done",
    ]);
    spec.log_rotate_bytes = 8 * 1024;
    let a = fx.spawn_spec(spec);
    assert_eq!(a.wait_exit(LONG).and_then(|i| i.code), Some(0));
    let raw_path = fx.log_dir().join("pty.raw");
    assert!(
        logs::generation(&raw_path, 1).exists(),
        "expected a rotation"
    );
    let want_raw: String = (0..2000).map(|i| format!("line {i}\r\n")).collect();
    assert_eq!(fx.raw(), want_raw);
    // The text log is larger (a stamp per line): it rotated, its oldest generations may have
    // been dropped (how many depends on how the reader batched the output: a write is never
    // split), and what is kept is the newest lines, each once, in order.
    let screen_path = fx.log_dir().join("screen.log");
    assert!(logs::generation(&screen_path, 1).exists());
    let screen = String::from_utf8(logs::read_all(&screen_path).unwrap()).unwrap();
    let kept: Vec<String> = screen
        .lines()
        .filter_map(parse_line)
        .filter(|l| l.kind == LineKind::Output)
        .map(|l| l.text)
        .collect();
    let first: usize = kept[0].trim_start_matches("line ").parse().unwrap();
    let want: Vec<String> = (first..2000).map(|i| format!("line {i}")).collect();
    assert_eq!(kept, want);
    assert!(first < 1200, "only {} lines kept", kept.len());
}

/// A `Write` the test can read while `follow` writes to it from another thread.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn follow_across_rotations_prints_everything_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("screen.log");
    let mut log = RotatingFile::open(&path, 1000).unwrap();
    log.write_all(b"before follow\n").unwrap();

    let buf = SharedBuf::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = {
        let (path, mut out, done) = (path.clone(), buf.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            logs::follow(&path, true, &mut out, &|| {
                done.load(std::sync::atomic::Ordering::SeqCst)
            })
        })
    };
    let mut want = b"before follow\n".to_vec();
    for batch in 0..20 {
        for i in 0..30 {
            let line = format!("batch {batch} line {i}\n");
            log.write_all(line.as_bytes()).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        // Keep within 3 rotations of the follower, which is all that is kept on disk.
        assert!(
            wait_until(LONG, || buf.0.lock().unwrap().len() >= want.len()),
            "follower stalled at batch {batch}"
        );
    }
    assert!(
        logs::generation(&path, 3).exists(),
        "expected several rotations"
    );
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    follower.join().unwrap().unwrap();
    let got = buf.0.lock().unwrap().clone();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn follow_from_end_skips_history_and_sees_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "old\n").unwrap();
    let buf = SharedBuf::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = {
        let (path, mut out, done) = (path.clone(), buf.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            logs::follow(&path, false, &mut out, &|| {
                done.load(std::sync::atomic::Ordering::SeqCst)
            })
        })
    };
    let append = |s: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    };
    // Keep appending until the follower has started and picked up a line after "old".
    let mut n = 0;
    assert!(wait_until(LONG, || {
        n += 1;
        append(&format!("new{n}\n"));
        !buf.0.lock().unwrap().is_empty()
    }));
    assert!(!String::from_utf8_lossy(&buf.0.lock().unwrap()).contains("old"));
    // Truncate in place and write less than was there: the follower must restart at 0. (A file
    // that regrows past the old offset before the follower looks is indistinguishable from an
    // append; size is all there is to go on.)
    std::fs::write(&path, "").unwrap();
    let before = buf.0.lock().unwrap().len();
    append("t\n");
    assert!(wait_until(LONG, || buf.0.lock().unwrap()[before..] == *b"t\n"));
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    follower.join().unwrap().unwrap();
}
