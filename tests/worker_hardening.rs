//! `orch-tui worker` under hostile numbers, a busy ledger, a full disk and forged callers
//! (issue #7, bugs 7 and 8; DESIGN §4), through the real binary on real SQLite files.

mod common;
mod ledger_support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ledger_support::claims::{claim, claim_as, repo_with_plan, tokens_of, worker_env};
use ledger_support::{ORCH_VARS, bin, wait_for};
use orch_tui::core::usage::MAX_TOTAL_TOKENS;
use orch_tui::ledger::{AttemptNo, Ledger, WorkerCall};

/// `orch-tui worker ARGS` in the background with `env`, stderr read line by line.
struct Worker {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

fn spawn_worker(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Worker {
    spawn_worker_with(dir, args, env, |_| {})
}

fn spawn_worker_with(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    setup: impl FnOnce(&mut Command),
) -> Worker {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in ORCH_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    setup(&mut cmd);
    let mut child = cmd.spawn().expect("spawn orch-tui worker");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Worker { child, stderr: rx }
}

impl Worker {
    /// The first stderr line, within `limit`.
    fn first_line(&self, limit: Duration) -> String {
        self.stderr
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("the worker said nothing on stderr within {limit:?}"))
    }

    /// Exit code, within `limit`.
    fn exit_code(&mut self, limit: Duration) -> i32 {
        let st = wait_for("the worker to exit", limit, || {
            self.child.try_wait().ok().flatten()
        });
        st.code().unwrap_or(-1)
    }

    fn rest_of_stderr(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------------------------
// Bug 7: numbers that turned a column into REAL, wrapped to -1, or made spend infinite.

#[test]
fn reported_numbers_are_validated_and_the_ledger_never_breaks() {
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-bug7-0001", epoch);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);

    // The sequence: i64::MAX, then 1. Before, the second report overflowed the column
    // into a REAL and every later `status` and `run` failed.
    let before = r.snapshot();
    let out = r.orch_env(
        &["worker", "usage", "--tokens-in", "9223372036854775807"],
        &env,
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("--tokens-in 9223372036854775807 is out of range")
            && out.stderr.contains("nothing was recorded"),
        "{out:?}"
    );
    assert_eq!(r.snapshot(), before, "a refused report changed the ledger");
    let out = r.orch_env(&["worker", "usage", "--tokens-in", "1"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(tokens_of(&ledger, "a"), (1, 0, 0.0));

    // u64::MAX (stored as -1 before), 1e308 twice (infinity before), and the other ways a
    // number can be wrong: exit 2, nothing changed.
    let before = r.snapshot();
    for bad in [
        &["--tokens-in", "18446744073709551615"][..],
        &["--cost-usd", "1e308"],
        &["--cost-usd", "1e308"],
        &["--cost-usd", "inf"],
        &["--cost-usd", "NaN"],
        &["--cost-usd", "-1"],
        &["--tokens-out", "1000000000001"],
        &["--tokens-in", "-1"],
        &["--tokens-in", "18446744073709551616"],
    ] {
        let mut args = vec!["worker", "usage"];
        args.extend_from_slice(bad);
        let out = r.orch_env(&args, &env);
        assert_eq!(out.code, 2, "{bad:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{bad:?}: {out:?}");
    }
    assert_eq!(r.snapshot(), before, "a refused report changed the ledger");
    assert_eq!(tokens_of(&ledger, "a"), (1, 0, 0.0));

    // Totals never overflow: an attempt just below the limit refuses the report that would
    // pass it, and takes the one that reaches it exactly.
    ledger
        .conn()
        .execute(
            "UPDATE attempts SET tokens_in = ?1 WHERE id = ?2",
            rusqlite::params![(MAX_TOTAL_TOKENS - 5) as i64, c.id.0],
        )
        .unwrap();
    let before = r.snapshot();
    let out = r.orch_env(&["worker", "usage", "--tokens-in", "10"], &env);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("past its limit"), "{out:?}");
    assert_eq!(r.snapshot(), before);
    let out = r.orch_env(
        &["worker", "usage", "--tokens-in", "5", "--tokens-out", "7"],
        &env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(tokens_of(&ledger, "a"), (MAX_TOTAL_TOKENS as i64, 7, 0.0));

    // Spend never goes down, whoever writes it (here raw SQL, as a bug or a tool would).
    let e = ledger
        .conn()
        .execute("UPDATE attempts SET tokens_out = 0", [])
        .unwrap_err();
    assert!(e.to_string().contains("spend never goes down"), "{e}");

    // And the ledger still reads: `status` in both forms (its total saturates, never wraps).
    let out = r.orch(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    let status = r.status_json();
    assert_eq!(status["spend"]["tokens"], i64::MAX);
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
}

// ------------------------------------------------------------------------------------------
// Bug 8: a busy ledger or a full disk is waited out; past the wait, exit 75 ("try again").

#[test]
fn a_worker_call_waits_out_a_held_write_lock_and_then_succeeds() {
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-busy-0001", epoch);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);
    let seq0 = ledger.last_seq().unwrap();

    // Another process's write lock, as a long transaction (or a tool) would hold it.
    let holder = rusqlite::Connection::open(&lpath).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut w = spawn_worker(&r.dir, &["worker", "heartbeat"], &env);
    let said = w.first_line(Duration::from_secs(30));
    assert!(
        said.contains("the ledger is busy") && said.contains("retrying"),
        "{said}"
    );
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "it waits rather than giving up"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        w.exit_code(Duration::from_secs(30)),
        0,
        "{}",
        w.rest_of_stderr()
    );
    assert_eq!(
        ledger.last_seq().unwrap(),
        seq0 + 1,
        "the heartbeat was recorded"
    );
}

#[test]
fn a_worker_call_held_off_past_its_wait_exits_75_and_writes_nothing() {
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-busy-0002", epoch);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);
    let seq0 = ledger.last_seq().unwrap();

    let holder = rusqlite::Connection::open(&lpath).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let start = Instant::now();
    let out = r.orch_env(
        &["worker", "usage", "--tokens-in", "3", "--retry-for", "1s"],
        &env,
    );
    let took = start.elapsed();
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(out.code, 75, "{out:?}");
    assert!(
        out.stderr.contains("the ledger is busy")
            && out.stderr.contains("nothing was recorded; try again later"),
        "{out:?}"
    );
    assert!(
        took >= Duration::from_secs(1),
        "gave up after {took:?}, before its wait"
    );
    assert_eq!(ledger.last_seq().unwrap(), seq0, "nothing written");
    assert_eq!(tokens_of(&ledger, "a"), (0, 0, 0.0));
    let out = r.orch_env(&["worker", "usage", "--retry-for", "soon"], &env);
    assert_eq!(out.code, 2, "a bad wait is bad input: {out:?}");
}

/// A full disk for the worker process alone: a file-size limit of 0 bytes makes every write
/// to the ledger fail in the kernel (EFBIG; ENOSPC and EDQUOT reach SQLite the same way, as a
/// failed write). Raised from outside with prlimit(2) while the worker retries. Neither root
/// nor a tmpfs mount is needed.
fn no_space_for_writes(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn give_space_back(pid: u32) {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child with a valid limit and no old-limit out-pointer.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn a_worker_call_on_a_full_disk_retries_and_succeeds_once_space_returns() {
    let r = repo_with_plan(&["a", "b"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-full-0001", epoch);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);
    let seq0 = ledger.last_seq().unwrap();

    let mut w = spawn_worker_with(&r.dir, &["worker", "done"], &env, no_space_for_writes);
    let said = w.first_line(Duration::from_secs(30));
    assert!(
        said.contains("cannot be written (the disk is full") && said.contains("retrying"),
        "{said}"
    );
    assert_eq!(
        ledger.last_seq().unwrap(),
        seq0,
        "nothing written while full"
    );
    give_space_back(w.child.id());
    assert_eq!(
        w.exit_code(Duration::from_secs(30)),
        0,
        "{}",
        w.rest_of_stderr()
    );
    assert_eq!(ledger.last_seq().unwrap(), seq0 + 1);
    assert_eq!(ledger.integrity_check().unwrap(), "ok");

    // Still full when the wait is over: exit 75, nothing written.
    let c2 = claim(&mut ledger, "b", "tok-full-0002", epoch);
    let n2 = c2.n.to_string();
    let env2 = worker_env(&lstr, "b", &n2, &c2.token);
    let seq1 = ledger.last_seq().unwrap();
    let mut w = spawn_worker_with(
        &r.dir,
        &["worker", "heartbeat", "--retry-for", "500ms"],
        &env2,
        no_space_for_writes,
    );
    assert_eq!(w.exit_code(Duration::from_secs(30)), 75);
    let all = format!(
        "{}\n{}",
        w.first_line(Duration::from_secs(1)),
        w.rest_of_stderr()
    );
    assert!(all.contains("try again later"), "{all}");
    assert_eq!(ledger.last_seq().unwrap(), seq1);
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
}

#[test]
fn sqlite_full_is_transient_and_writes_nothing() {
    // SQLITE_FULL itself, forced with `PRAGMA max_page_count` (it holds per connection, so this
    // runs in-process; the binary's retry on a failed write is tested above with a file-size
    // limit).
    let r = repo_with_plan(&["a"]);
    let mut ledger = Ledger::open(&r.ledger()).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-full-0003", epoch);
    let pages: i64 = ledger
        .conn()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    ledger
        .conn()
        .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        .unwrap();
    let seq0 = ledger.last_seq().unwrap();
    let big = WorkerCall::Heartbeat {
        note: Some("x".repeat(256 * 1024)),
    };
    let e = ledger
        .worker_report(
            "a",
            c.n,
            &c.token,
            &big,
            None,
            &orch_tui::ledger::Caller::this_process(),
        )
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("full"), "{e}");
    assert_eq!(ledger.last_seq().unwrap(), seq0);
    ledger
        .conn()
        .execute_batch("PRAGMA max_page_count = 1073741823")
        .unwrap();
    ledger
        .worker_report(
            "a",
            AttemptNo(c.n.0),
            &c.token,
            &big,
            None,
            &orch_tui::ledger::Caller::this_process(),
        )
        .unwrap();
    assert_eq!(ledger.last_seq().unwrap(), seq0 + 1);
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
}

// ------------------------------------------------------------------------------------------
// DESIGN §4: a report is accepted only from a process descended from the attempt's agent.

#[test]
fn a_report_from_outside_the_agents_process_tree_is_refused() {
    let r = repo_with_plan(&["a", "b"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let epoch = ledger.begin_epoch(std::process::id()).unwrap();
    let token = "tok-tree-0001";
    // The agent: a shell that reports through `orch-tui worker` when told to (a line on stdin).
    let mut agent = Command::new("sh");
    agent
        .args(["-c", "read go; \"$0\" worker heartbeat", bin()])
        .current_dir(&r.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in ORCH_VARS {
        agent.env_remove(v);
    }
    let env = worker_env(&lstr, "a", "1", token);
    agent.envs(env.iter().copied());
    let mut agent = agent.spawn().unwrap();
    let c = claim_as(&mut ledger, "a", token, epoch, Some(agent.id()));
    assert_eq!(c.n, AttemptNo(1));
    let seq0 = ledger.last_seq().unwrap();

    // The right token from a process the agent did not start (this test, a shell elsewhere).
    let out = r.orch_env(&["worker", "heartbeat"], &env);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("was not started by the attempt's agent")
            && out.stderr.contains("Nothing changed"),
        "{out:?}"
    );
    assert_eq!(ledger.last_seq().unwrap(), seq0);

    // The same call from inside the agent is accepted.
    agent.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let done = agent.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(ledger.last_seq().unwrap(), seq0 + 1);

    // Before the supervisor records the agent's pid, the caller must descend from the
    // supervisor (here this test, which began the epoch).
    let cb = claim_as(&mut ledger, "b", "tok-tree-0002", epoch, None);
    let envb = worker_env(&lstr, "b", "1", &cb.token);
    let out = r.orch_env(&["worker", "heartbeat"], &envb);
    assert_eq!(out.code, 0, "{out:?}");
    // A supervisor that is not our ancestor: refused.
    let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
    ledger
        .conn()
        .execute("UPDATE supervisor SET pid = ?1", [i64::from(stranger.id())])
        .unwrap();
    let seq1 = ledger.last_seq().unwrap();
    let out = r.orch_env(&["worker", "heartbeat"], &envb);
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("not started by the supervisor"),
        "{out:?}"
    );
    assert_eq!(ledger.last_seq().unwrap(), seq1);
}

#[test]
fn a_report_between_a_new_epoch_and_the_adoption_waits_for_it_and_is_recorded() {
    use orch_tui::core::ops::Op;
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let old = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-adopt-0001", old);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);
    // A new supervisor took the next epoch; its adoption of the agent has not landed yet.
    let new = ledger.begin_epoch(std::process::id()).unwrap();
    let seq0 = ledger.last_seq().unwrap();
    let mut w = spawn_worker(&r.dir, &["worker", "heartbeat"], &env);
    let said = w.first_line(Duration::from_secs(30));
    assert!(
        said.contains("has not taken this attempt over yet") && said.contains("retrying"),
        "{said}"
    );
    assert!(w.child.try_wait().unwrap().is_none(), "it waits");
    assert_eq!(ledger.last_seq().unwrap(), seq0, "nothing recorded yet");
    let adopt = [Op::Adopt {
        id: c.id,
        from_epoch: old,
        epoch: new,
    }];
    ledger
        .write(|tx| orch_tui::ledger::apply_ops(tx, &adopt, &mut String::new))
        .unwrap();
    assert_eq!(
        w.exit_code(Duration::from_secs(30)),
        0,
        "{}",
        w.rest_of_stderr()
    );
    assert!(
        ledger.last_seq().unwrap() > seq0,
        "the heartbeat was recorded once the attempt was adopted"
    );
}

#[test]
fn a_report_of_an_attempt_the_new_supervisor_abandoned_is_refused_with_exit_3() {
    use orch_tui::core::domain::AttemptState;
    use orch_tui::core::ops::{Finish, Op};
    let r = repo_with_plan(&["a"]);
    let lpath = r.ledger();
    let lstr = lpath.to_str().unwrap().to_string();
    let mut ledger = Ledger::open(&lpath).unwrap();
    let old = ledger.begin_epoch(std::process::id()).unwrap();
    let c = claim(&mut ledger, "a", "tok-adopt-0002", old);
    let n = c.n.to_string();
    let env = worker_env(&lstr, "a", &n, &c.token);
    ledger.begin_epoch(std::process::id()).unwrap();
    let mut w = spawn_worker(&r.dir, &["worker", "heartbeat"], &env);
    let said = w.first_line(Duration::from_secs(30));
    assert!(said.contains("retrying"), "{said}");
    let abandon = [Op::FinishAttempt(Finish {
        id: c.id,
        outcome: AttemptState::Abandoned,
        exit_code: None,
        reason: Some("the supervisor stopped while it ran".into()),
        commit: None,
        diff_lines: None,
    })];
    ledger
        .write(|tx| orch_tui::ledger::apply_ops(tx, &abandon, &mut String::new))
        .unwrap();
    assert_eq!(
        w.exit_code(Duration::from_secs(30)),
        3,
        "{}",
        w.rest_of_stderr()
    );
}
