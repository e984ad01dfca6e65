//! `os`: finding and stopping every process of an agent, with real processes (issue #7, bug 6).
//! Each test builds the process tree an agent could leave — a grandchild in a session of its
//! own that ignores SIGTERM, an orphan still carrying a stale token, a process that left the
//! tree and cleared its environment — and checks that nothing is left behind.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use orch_tui::os;

const GRACE: Duration = Duration::from_millis(200);

/// Writes the scripts of an agent's tree into `dir`:
/// - `outer.sh` (the agent) starts `middle.sh` and waits;
/// - `middle.sh` starts `inner.sh` in a new session (`setsid`) and waits;
/// - `inner.sh` ignores SIGTERM, says `ready <pid>` and sleeps.
fn scripts(dir: &Path) {
    let d = dir.display();
    for (name, text) in [
        ("outer.sh", format!("sh {d}/middle.sh &\nwait\n")),
        ("middle.sh", format!("setsid sh {d}/inner.sh &\nwait\n")),
        (
            "inner.sh",
            "trap '' TERM\necho \"ready $$\"\nexec sleep 1000\n".to_string(),
        ),
        ("orphan.sh", format!("setsid sh {d}/inner.sh &\nexit 0\n")),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn spawn_sh(dir: &Path, script: &str, token: &str) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new("sh")
        .arg(dir.join(script))
        .env(os::TOKEN_VAR, token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, as an agent gets.
        .process_group(0)
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// The pid in the `ready <pid>` line.
/// The pid `inner.sh` says, once it has become `sleep` with its environment in place: it says
/// `ready` just before its `exec`, and while the exec replaces its memory `/proc/<pid>/environ`
/// can read empty (CI met the token scan missing the orphan in that moment).
fn ready(out: &mut BufReader<ChildStdout>) -> i32 {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: i32 = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("expected `ready <pid>`, got {line:?}"))
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    // The new program's environment is laid out after its name is set: wait for both.
    let environ = || std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    while comm().trim() != "sleep" || environ().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{pid} did not become `sleep` within 10 s (comm {:?})",
            comm()
        );
        std::thread::yield_now();
    }
    pid
}

fn token() -> String {
    format!("test-{}", os::random_token().unwrap())
}

/// Waits until `pid` is no longer alive (gone or a zombie).
fn gone(pid: i32) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if !os::alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_setsid_grandchild_that_ignores_sigterm_is_found_through_its_parents_and_killed() {
    let tmp = tempfile::tempdir().unwrap();
    scripts(tmp.path());
    let (mut agent, mut out) = spawn_sh(tmp.path(), "outer.sh", "unused");
    let inner = ready(&mut out);
    let agent_pid = agent.id() as i32;
    let inner_stat = os::process(inner).unwrap();
    assert_ne!(
        inner_stat.session,
        os::process(agent_pid).unwrap().session,
        "the grandchild left the agent's session"
    );
    assert!(os::descendants(agent_pid).contains(&inner));
    assert!(os::descends_from(inner, agent_pid));

    // No token: the parent chain alone finds it (its parent, middle.sh, still lives).
    let report = os::kill_tree(agent_pid, None, GRACE);
    assert!(report.found.contains(&inner), "{report:?}");
    assert!(
        report.killed.contains(&inner),
        "it ignores SIGTERM, so it needed SIGKILL: {report:?}"
    );
    assert!(report.survivors.is_empty(), "{report:?}");
    let _ = agent.wait();
    assert!(gone(inner), "the grandchild is still running");
}

#[test]
fn killing_only_the_process_group_leaves_the_grandchild_and_the_token_finds_it() {
    let tmp = tempfile::tempdir().unwrap();
    scripts(tmp.path());
    let tok = token();
    let (mut agent, mut out) = spawn_sh(tmp.path(), "outer.sh", &tok);
    let inner = ready(&mut out);
    let agent_pid = agent.id() as i32;

    // What the supervisor did before: the process group only.
    assert!(
        os::kill_process_group(agent_pid, GRACE),
        "the group itself went"
    );
    let _ = agent.wait();
    assert!(
        os::alive(inner),
        "the setsid grandchild survived the group kill"
    );

    // Its parents are gone now; its token still names it.
    assert_eq!(os::processes_with_token(&tok), vec![inner]);
    let report = os::kill_tree(0, Some(&tok), GRACE);
    assert!(report.killed.contains(&inner), "{report:?}");
    assert!(gone(inner));
    assert!(os::processes_with_token(&tok).is_empty());
}

#[test]
fn an_orphan_carrying_a_stale_token_is_found_by_the_token_scan() {
    let tmp = tempfile::tempdir().unwrap();
    scripts(tmp.path());
    let tok = token();
    // orphan.sh exits at once: its child is re-parented (to init), in a session of its own.
    let (mut starter, mut out) = spawn_sh(tmp.path(), "orphan.sh", &tok);
    let orphan = ready(&mut out);
    assert!(starter.wait().unwrap().success());
    assert!(os::alive(orphan));
    assert!(
        !os::descends_from(orphan, starter.id() as i32),
        "no parent chain left"
    );
    assert!(os::has_token(orphan, &tok));
    assert!(!os::has_token(orphan, "another-attempts-token"));

    assert_eq!(os::processes_with_token(&tok), vec![orphan]);
    let report = os::kill_tree(0, Some(&tok), GRACE);
    assert_eq!(report.found, vec![orphan], "{report:?}");
    assert!(report.survivors.is_empty(), "{report:?}");
    assert!(gone(orphan));
}

#[test]
fn a_process_that_left_the_tree_and_cleared_its_environment_is_found_by_its_cgroup() {
    if !os::reap::cgroups_available() {
        eprintln!("skipped: cgroup v2 is not delegated to this user here (see docs/security.md)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    scripts(tmp.path());
    let d = tmp.path().display();
    std::fs::write(
        tmp.path().join("escape.sh"),
        format!("read go\nenv -i setsid sh {d}/inner.sh &\nexit 0\n"),
    )
    .unwrap();
    let tok = token();
    let (mut agent, mut out) = spawn_sh(tmp.path(), "escape.sh", &tok);
    let cgroup = os::reap::agent_cgroup(agent.id() as i32).expect("an agent cgroup");
    agent.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let inner = ready(&mut out);
    let _ = agent.wait();
    assert!(
        os::processes_with_token(&tok).is_empty(),
        "no token to find it by"
    );
    assert!(os::alive(inner));

    let report = os::stop_tree(
        &os::Tree {
            root: None,
            token: Some(&tok),
            cgroup: Some(&cgroup),
        },
        GRACE,
    );
    assert!(report.used_cgroup, "{report:?}");
    assert!(report.survivors.is_empty(), "{report:?}");
    assert!(gone(inner));
    assert!(
        os::reap::remove_agent_cgroup(&cgroup),
        "the empty cgroup is removed"
    );
}
