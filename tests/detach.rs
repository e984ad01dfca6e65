//! Runs that outlive their terminal: `run --detach` and `stop`, a TUI whose terminal closes
//! mid-run (tmux kill-session), and a TUI that watches a detached run and takes it over. The
//! real binary, real PTYs, real tmux (`tests/tui_support`); every wait polls a condition against
//! a deadline.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod tui_support;
use tui_support::{Tmux, repo_with_plan};

const BIN: &str = env!("CARGO_BIN_EXE_orch-tui");

/// Two agents that work long enough to be watched, stopped or orphaned, and one after them.
const PLAN: &str = r#"
[plan]
name = "detach-e2e"

[defaults]
agent = "sim"
budget = { time = "2m" }

[[task]]
id = "alpha"
title = "Alpha"
prompt = '''
Alpha work.
@sim say alpha is working
@sim sleep 6s
'''

[[task]]
id = "beta"
title = "Beta"
prompt = '''
Beta work.
@sim say beta is working
@sim sleep 6s
'''

[[task]]
id = "gamma"
title = "Gamma"
depends_on = ["alpha", "beta"]
prompt = '''
Gamma work.
@sim say gamma is working
'''
"#;

fn orch(repo: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .expect("run orch-tui")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status_json(repo: &Path) -> serde_json::Value {
    let o = orch(repo, &["status", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).expect("status --json")
}

/// The pid of the running supervisor, per `status --json`.
fn supervisor_pid(repo: &Path) -> Option<u64> {
    let s = status_json(repo);
    let sup = &s["supervisor"];
    (sup["running"] == true)
        .then(|| sup["pid"].as_u64())
        .flatten()
}

fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU time (user + system, all threads) of a live process, in seconds.
fn cpu_seconds(pid: u64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process is alive");
    // After the command's `)`: the state is field 3, so utime (14) and stime (15) are at 11, 12.
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| f[i].parse::<u64>().expect("a number of clock ticks");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

/// Alive and not a zombie.
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The pids of the attempts the ledger marks live.
fn live_agent_pids(repo: &Path) -> Vec<u64> {
    let s = status_json(repo);
    let mut pids = Vec::new();
    for t in s["tasks"].as_array().into_iter().flatten() {
        for a in t["attempts"].as_array().into_iter().flatten() {
            if (a["state"] == "running" || a["state"] == "starting")
                && let Some(p) = a["pid"].as_u64()
            {
                pids.push(p);
            }
        }
    }
    pids
}

/// Stops whatever supervisor is left on the repository when the test ends, passed or not.
struct StopOnDrop<'a>(&'a Path);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = orch(self.0, &["stop", "--now"]);
    }
}

fn all_done(repo: &Path) -> bool {
    let s = status_json(repo);
    s["tasks"]
        .as_array()
        .is_some_and(|ts| ts.iter().all(|t| t["state"] == "done"))
}

#[test]
fn detach_then_status_then_stop_leaves_nothing_running() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, PLAN);
    let _stop = StopOnDrop(d);
    let plan = d.join("plan.toml");
    let o = orch(d, &["run", "--detach", "--plan", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("orch-tui stop"), "says how to end it: {out}");
    // It returned once the background supervisor held the lock: status sees it at once.
    let pid = supervisor_pid(d).expect("a supervisor runs after run --detach");
    assert!(out.contains(&format!("pid {pid}")), "{out}");
    let pid_file = std::fs::read_to_string(d.join(".orch/supervisor.pid")).expect("pid file");
    assert_eq!(pid_file.trim(), pid.to_string());
    // A second one is refused (exit 3) and changes nothing.
    let again = orch(d, &["run", "--detach"]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert_eq!(supervisor_pid(d), Some(pid));
    wait_until("an agent at work", 30, || !live_agent_pids(d).is_empty());
    let agents = live_agent_pids(d);

    let o = orch(d, &["stop"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("pid {pid}")),
        "{}",
        text(&o)
    );
    assert_eq!(supervisor_pid(d), None, "the lock is free after stop");
    wait_until("the supervisor process to go", 10, || !alive(pid));
    for a in agents {
        wait_until("the agents to go", 10, || !alive(a));
    }
    assert!(
        !d.join(".orch/supervisor.pid").exists(),
        "the pid file goes with it"
    );
    // Nothing runs any more: stop says so, exit 1.
    let o = orch(d, &["stop"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The log holds what the background supervisor said.
    let log = std::fs::read_to_string(d.join(".orch/supervisor.log")).expect("log");
    assert!(log.contains("supervising"), "{log}");
}

#[test]
fn a_detached_run_that_cannot_start_says_why_with_its_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, PLAN);
    // No ledger and no plan: the background run refuses (exit 2), and the user sees why.
    let o = orch(d, &["run", "--detach"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no ledger"), "{}", text(&o));
    assert!(err.contains("supervisor.log"), "{}", text(&o));
}

#[test]
fn closing_the_tuis_terminal_mid_run_does_not_stop_the_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, PLAN);
    let _stop = StopOnDrop(d);
    let cmd = format!(
        "{BIN} --repo {} run --plan {}",
        d.display(),
        d.join("plan.toml").display()
    );
    let Some(t) = Tmux::start("hup", &cmd) else {
        return;
    };
    t.wait("agents at work", 30, |s| {
        s.contains("alpha is working") && s.contains("beta is working")
    });
    let pid = supervisor_pid(d).expect("the TUI supervises");
    let agents = live_agent_pids(d);
    assert!(!agents.is_empty());
    t.kill_session();
    // The terminal is gone; the supervisor and its agents are not.
    for a in &agents {
        assert!(alive(*a), "agent {a} died with the terminal");
    }
    // Nor does it burn a core on the dead terminal (crossterm read its EOF in a loop once).
    let log_path = d.join(".orch/logs/orch-tui.log");
    wait_until("the supervisor to notice the terminal is gone", 30, || {
        std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("SIGHUP"))
    });
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    wait_until("a second and a half of headless running", 5, || {
        t0.elapsed() >= Duration::from_millis(1500)
    });
    let used = cpu_seconds(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    assert!(
        used < wall / 2.0,
        "the headless supervisor used {used:.2} s of CPU in {wall:.2} s while its agents slept"
    );
    wait_until("the run to finish headless", 90, || {
        supervisor_pid(d).is_none()
    });
    assert!(all_done(d), "{}", text(&orch(d, &["status"])));
    wait_until("the supervisor to exit", 10, || !alive(pid));
    let log = std::fs::read_to_string(d.join(".orch/logs/orch-tui.log")).unwrap_or_default();
    assert!(log.contains("SIGHUP"), "the log says what happened");
}

#[test]
fn the_tui_watches_a_detached_run_then_takes_it_over() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    repo_with_plan(d, PLAN);
    let _stop = StopOnDrop(d);
    let plan = d.join("plan.toml");
    // In the loop: alpha and beta wait in the inbox once their agents are done.
    let o = orch(
        d,
        &[
            "run",
            "--detach",
            "--autonomy",
            "in",
            "--plan",
            plan.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pid = supervisor_pid(d).expect("detached supervisor");
    let Some(t) = Tmux::start("watch", &format!("{BIN} --repo {}", d.display())) else {
        return;
    };
    // The live screens of the agents another process runs, and who runs them.
    let s = t.wait("the watched agents' screens", 30, |s| {
        s.contains("alpha is working") && s.contains("beta is working")
    });
    assert!(
        s.contains(&format!("watching (supervised by pid {pid})")),
        "{s}"
    );
    t.wait("the inbox", 60, |s| s.contains("inbox 2"));
    // The human is asked whether to quit (a watcher's answers) when the supervisor goes away:
    // the TUI supervises from now on and asks again with a supervisor's answers.
    t.keys(&["q"]);
    t.wait("the watcher's quit question", 30, |s| {
        s.contains("Quit orch-tui?") && s.contains("leave it running (pid")
    });
    let o = orch(d, &["stop"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    wait_until("the TUI to take over", 30, || {
        supervisor_pid(d).is_some_and(|p| p != pid)
    });
    let s = t.wait("the header without 'watching'", 30, |s| {
        s.contains("detach-e2e") && !s.contains("watching")
    });
    assert!(s.contains("inbox"), "{s}");
    let s = t.wait("the question asked again", 30, |s| {
        s.contains("Quit orch-tui?") && s.contains("stop the agents cleanly")
    });
    assert!(s.contains("this window supervises the run now"), "{s}");
    t.keys(&["Escape"]);
    t.wait("the question answered: keep supervising", 30, |s| {
        !s.contains("Quit orch-tui?")
    });
    // Decisions from anywhere reach the new supervisor through the ledger.
    for task in ["alpha", "beta"] {
        let o = orch(d, &["approve", task]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    // This process runs with the config's autonomy (out of the loop): gamma merges by itself.
    t.wait("the end of the run", 60, |s| s.contains("all done"));
    assert!(all_done(d));
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
    assert_eq!(supervisor_pid(d), None);
}
