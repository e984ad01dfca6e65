//! The orphan reaper (`os::reap`): in a child subreaper, it reaps the orphans an agent leaves
//! and never takes the exit status of a child that someone else waits for — std's `Child::wait`
//! (git, checks) or an agent's waiter. Alone in its test binary: being a subreaper changes how
//! this whole process's orphans are handled.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orch_tui::os;

#[test]
fn adopted_orphans_are_reaped_and_nobody_elses_child_is() {
    os::reap::set_child_subreaper().expect("prctl(PR_SET_CHILD_SUBREAPER)");
    assert!(os::reap::is_child_subreaper());

    // A child in our session that exits 4 (like git, or a check): its status belongs to us.
    let mut plain = Command::new("sh").args(["-c", "exit 4"]).spawn().unwrap();
    // An agent-like child in a session of its own, registered as waited for: exits 3.
    let registry = os::reap::before_spawn_in_new_session();
    let mut agent = unsafe {
        Command::new("sh")
            .args(["-c", "exit 3"])
            .pre_exec(|| {
                libc::setsid();
                Ok(())
            })
            .spawn()
            .unwrap()
    };
    registry.own(agent.id() as i32);
    // An agent that leaves a daemon behind: the daemon (own session) waits for a line on its
    // stdin, then exits 7. Its parent exits at once, so the daemon is re-parented to us.
    let mut leaver = Command::new("sh")
        .args([
            "-c",
            // fd 3: sh gives a background job /dev/null as its stdin.
            "exec 3<&0; setsid sh -c 'echo $$; read x <&3; exit 7' & exit 0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(leaver.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let daemon: i32 = line.trim().parse().unwrap();
    // Kept open: `wait` would close it, and the daemon would read EOF at once.
    let mut daemon_stdin = leaver.stdin.take().unwrap();
    assert!(leaver.wait().unwrap().success());
    let me = std::process::id() as i32;
    let end = Instant::now() + Duration::from_secs(5);
    while os::parent_of(daemon) != Some(me) {
        assert!(
            Instant::now() < end,
            "the daemon was not re-parented to the subreaper"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // Let everything exit; the plain child and the agent become zombies waiting for their
    // owners, and so does the daemon (ours now).
    daemon_stdin.write_all(b"go\n").unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    let mut reaped = Vec::new();
    while !reaped.iter().any(|r: &os::reap::Reaped| r.pid == daemon) {
        assert!(
            Instant::now() < end,
            "the daemon was never reaped: {reaped:?}"
        );
        reaped.extend(os::reap::reap_adopted());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Make sure the other two have exited before the last sweep, then sweep again.
    for pid in [plain.id() as i32, agent.id() as i32] {
        let end = Instant::now() + Duration::from_secs(5);
        while os::alive(pid) {
            assert!(Instant::now() < end, "{pid} did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    reaped.extend(os::reap::reap_adopted());
    assert_eq!(
        reaped,
        vec![os::reap::Reaped {
            pid: daemon,
            code: Some(7),
            signal: None
        }],
        "only the adopted daemon is reaped"
    );
    // Their owners still get their exit statuses.
    assert_eq!(plain.wait().unwrap().code(), Some(4));
    assert_eq!(agent.wait().unwrap().code(), Some(3));
    os::reap::waited(agent.id() as i32);
}
