//! Closed pipes, a supervisor that is gone, an agent's escaped grandchild and orphaned daemon,
//! file modes and tokens (issue #7: bugs 6, 9 and 10, and the security basics), through the real
//! binary with the simulated agent in real PTYs and real git repositories.

mod common;
mod e2e_support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, state_of, task_of, wait_for};

const RUN_LIMIT: Duration = Duration::from_secs(60);

fn plan(tasks: &[(&str, &[&str])]) -> String {
    let mut s = String::from("[plan]\nname = \"hardening\"\n\n[defaults]\nagent = \"sim\"\n\n");
    for (id, sims) in tasks {
        let mut prompt = format!("Work on {id}.\n@sim speed fast\n");
        for l in *sims {
            prompt.push_str(&format!("@sim {l}\n"));
        }
        s.push_str(&format!(
            "[[task]]\nid = \"{id}\"\ntitle = \"Task {id}\"\nprompt = '''\n{prompt}'''\n\n"
        ));
    }
    s
}

/// Runs `orch-tui ARGS` with stdout (and stderr, if `stderr_too`) a pipe whose reader is already
/// gone — what `| head -1` leaves once it has its line — and returns (exit code, stderr).
fn into_closed_pipe(repo: &Repo, args: &[&str], stderr_too: bool) -> (i32, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let err_file = repo.root.join(format!("stderr-{}", args.join("-")));
    let mut cmd = repo.command(args);
    cmd.stdin(Stdio::null()).stdout(writer);
    if stderr_too {
        let (r2, w2) = std::io::pipe().expect("pipe");
        drop(r2);
        cmd.stderr(w2);
    } else {
        cmd.stderr(std::fs::File::create(&err_file).expect("stderr file"));
    }
    let mut child = cmd.spawn().expect("spawn orch-tui");
    drop(cmd);
    let status =
        wait_for(RUN_LIMIT, || child.try_wait().ok().flatten().ok_or(())).unwrap_or_else(|()| {
            let _ = child.kill();
            panic!("orch-tui {args:?} did not end within {RUN_LIMIT:?} with its reader gone")
        });
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    (
        status.code().unwrap_or(128 + status.signal().unwrap_or(0)),
        stderr,
    )
}

fn loaded(tasks: &[(&str, &[&str])]) -> Repo {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(tasks));
    let out = repo.orch(&["plan", "load", p.to_str().unwrap()], RUN_LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    repo
}

// ------------------------------------------------------------------------------------------
// Bug 9: `status | head -1`, `events | head -1`, `run --headless | head -3` panicked (exit 101).

#[test]
fn read_only_commands_end_quietly_when_their_reader_is_gone() {
    let repo = loaded(&[("a", &[]), ("b", &[]), ("c", &[])]);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["events"],
        &["events", "--json"],
        &["events", "--follow"],
        &["--help"],
    ] {
        let (code, stderr) = into_closed_pipe(&repo, args, false);
        assert_eq!(code, 0, "{args:?} with its reader gone: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // Both ends gone, and an error to report: the error's exit code, still no panic.
    let (code, _) = into_closed_pipe(&repo, &["approve", "no-such-task"], true);
    assert_eq!(code, 2);
}

#[test]
fn a_headless_run_whose_reader_is_gone_still_finishes_its_work() {
    let repo = loaded(&[("a", &[]), ("b", &[]), ("c", &[])]);
    let (code, stderr) = into_closed_pipe(&repo, &["run", "--headless"], false);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, 0, "the run did not finish: {stderr}");
    let status = repo.status();
    for t in ["a", "b", "c"] {
        assert_eq!(
            state_of(&status, t),
            "done",
            "{t}: {:#}",
            task_of(&status, t)
        );
    }
    assert_eq!(
        repo.commits("main..orch/integration").len(),
        3,
        "every task merged"
    );
    repo.assert_no_agents_left(Duration::from_secs(5));
}

// ------------------------------------------------------------------------------------------
// Bug 10: after the supervisor stopped, `status` still counted its agents' busy time up.

#[test]
fn status_says_when_no_supervisor_runs_after_a_kill_9() {
    let repo = loaded(&[("h", &["say waiting forever", "hang"])]);
    let mut run = repo.spawn(&["run", "--headless"]);
    let sup = run.pid();
    let seen = wait_for(RUN_LIMIT, || {
        if run.try_wait().is_some() {
            panic!(
                "the run ended before `h` was seen working:\n{}\n{}",
                run.stdout_now(),
                run.stderr_now()
            );
        }
        let s = repo.status();
        let up = s["supervisor"]["running"] == true && s["supervisor"]["pid"] == sup;
        if up && state_of(&s, "h") == "working" {
            Ok(s)
        } else {
            Err(s)
        }
    });
    let seen = seen.unwrap_or_else(|s| panic!("never saw `h` working under pid {sup}: {s:#}"));
    assert!(seen["supervisor"].get("attempts_to_recover").is_none());
    let text = repo.orch(&["status"], RUN_LIMIT);
    assert!(
        text.stdout
            .contains(&format!("supervisor: running (pid {sup})")),
        "{}",
        text.show()
    );

    let out = run.kill9();
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.show());
    let s = repo.status();
    assert_eq!(s["supervisor"]["running"], false, "{s:#}");
    assert_eq!(s["supervisor"]["pid"], serde_json::Value::Null);
    assert_eq!(s["supervisor"]["attempts_to_recover"], 1);
    let text = repo.orch(&["status"], RUN_LIMIT);
    assert_eq!(text.code, 0, "{}", text.show());
    assert!(
        text.stdout.contains(
            "supervisor: none running; 1 attempt marked live will be recovered at the next \
             `orch-tui run`"
        ),
        "{}",
        text.show()
    );
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("h "))
        .unwrap_or_else(|| panic!("no line for h: {}", text.show()));
    assert!(
        line.contains("no supervisor: recovered at the next start") && !line.contains(" for "),
        "{line}"
    );

    // The agent usually dies of the hangup of its terminal (the supervisor held the PTY); one
    // that ignores SIGHUP lives on until the next start. Either way, end it by its token.
    let token: String = rusqlite::Connection::open(repo.ledger())
        .unwrap()
        .query_row("SELECT token FROM attempts WHERE task = 'h'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let report = orch_tui::os::kill_tree(0, Some(&token), Duration::from_millis(200));
    assert!(report.survivors.is_empty(), "{report:?}");
    repo.assert_no_agents_left(Duration::from_secs(5));
}

// ------------------------------------------------------------------------------------------
// Bug 6: a grandchild started with `setsid` outlived the time budget and every kill.

#[test]
fn a_setsid_grandchild_is_stopped_with_its_attempt() {
    let repo = Repo::new();
    // The agent leaves a grandchild in a session of its own that ignores SIGTERM, then waits.
    let config = format!(
        "{FAST_CONFIG}\n[agents.escaper]\n\
         command = [\"sh\", \"-c\", \"setsid sh -c 'trap \\\"\\\" TERM; while :; do sleep 1; done' & wait\"]\n\
         adapter = \"generic\"\n"
    );
    repo.init(&config);
    let p = repo.write_plan(
        "[plan]\nname = \"escape\"\n\n[[task]]\nid = \"e\"\ntitle = \"escape\"\nprompt = \"x\"\n\
         agent = \"escaper\"\nmax_attempts = 1\nbudget = { time = \"1s\" }\n",
    );
    let out = repo.orch(
        &["run", "--headless", "--plan", p.to_str().unwrap()],
        RUN_LIMIT,
    );
    assert_eq!(out.code, 1, "the task runs out of time: {}", out.show());
    // Out of time: escalated, to be extended, retried or cancelled.
    assert_eq!(state_of(&repo.status(), "e"), "escalated", "{}", out.show());
    // Nothing of the attempt is left: not the agent, not its escaped grandchild.
    repo.assert_no_agents_left(Duration::from_secs(3));
}

// ------------------------------------------------------------------------------------------
// Security basics: .orch/ 0700, files 0600; tokens never printed.

/// Files under `.orch/` that src/engine writes itself with the umask's mode (prompts, check
/// logs) until it uses `os::files::write_private`; they sit in 0700 folders, out of others'
/// reach either way.
fn written_by_the_engine(rel: &Path) -> bool {
    rel.starts_with("prompts") || rel.file_name().is_some_and(|n| n == "checks.log")
}

/// Every folder and file under `.orch/` with a mode other than 0700 / 0600 (the contents of
/// worktrees excepted: they are the user's checked-out files).
fn loose_modes(orch: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    let mut stack = vec![orch.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        if mode != 0o700 {
            bad.push(format!("{} {mode:o}", dir.display()));
        }
        if dir
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "worktrees")
        {
            continue;
        }
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if !meta.file_type().is_symlink() {
                let rel = e.path().strip_prefix(orch).unwrap().to_path_buf();
                let mode = meta.permissions().mode() & 0o777;
                if mode != 0o600 && !written_by_the_engine(&rel) {
                    bad.push(format!("{} {mode:o}", rel.display()));
                }
            }
        }
    }
    bad
}

#[test]
fn orch_is_private_and_tokens_are_never_printed() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let orch = repo.dir.join(".orch");
    assert_eq!(loose_modes(&orch), Vec::<String>::new(), "after init");

    // An .orch/ from an older orch-tui (or chmod-ed by hand) is fixed at the next init.
    std::fs::set_permissions(&orch, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        orch.join("ledger.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = repo.orch(&["init"], RUN_LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(
        loose_modes(&orch),
        Vec::<String>::new(),
        "after a second init"
    );

    let p = repo.write_plan(&plan(&[
        ("a", &["usage 1200 340 0.08", "report-done"]),
        ("b", &["say hello"]),
    ]));
    let run = repo.orch(
        &["run", "--headless", "--plan", p.to_str().unwrap()],
        RUN_LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.show());
    assert_eq!(loose_modes(&orch), Vec::<String>::new(), "after a run");

    let tokens: Vec<String> = rusqlite::Connection::open(repo.ledger())
        .unwrap()
        .prepare("SELECT token FROM attempts")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tokens.len(), 2);
    let mut shown = vec![run.stdout.clone(), run.stderr.clone()];
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["events"],
        &["events", "--json"],
        &["logs", "a"],
        &["logs", "b", "--raw"],
    ] {
        let out = repo.orch(args, RUN_LIMIT);
        assert_eq!(out.code, 0, "{args:?}: {}", out.show());
        shown.push(out.stdout);
        shown.push(out.stderr);
    }
    let mut stack = vec![orch.join("logs")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                shown.push(String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into());
            }
        }
    }
    for t in &tokens {
        assert_eq!(t.len(), 32, "128-bit hex token: {t}");
        for (i, text) in shown.iter().enumerate() {
            assert!(
                !text.contains(t.as_str()),
                "token printed in output {i}: {text}"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// The supervisor is a child subreaper: an agent's orphaned daemon is re-parented to it (so it
// stays findable) and reaped by it when it exits.

#[test]
fn the_supervisor_adopts_and_reaps_an_agents_orphaned_daemon() {
    let repo = Repo::new();
    let pid_file = repo.root.join("daemon.pid");
    let fifo = repo.root.join("daemon.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // The `leaver` agent starts a daemon in a session of its own and exits at once (the daemon
    // ignores the hangup its terminal's leader sends as it exits); the daemon waits for a line on
    // the fifo, then exits 7. A `sim` task that hangs keeps the run alive.
    let config = format!(
        "{FAST_CONFIG}\n[agents.leaver]\ncommand = [\"sh\", \"-c\", \"trap '' HUP; setsid sh -c \
         'echo $$ > {}; read x < {}; exit 7' & exit 0\"]\nadapter = \"generic\"\n",
        pid_file.display(),
        fifo.display()
    );
    repo.init(&config);
    let p = repo.write_plan(&format!(
        "{}[[task]]\nid = \"l\"\ntitle = \"leaver\"\nagent = \"leaver\"\nprompt = \"x\"\n",
        plan(&[("h", &["hang"])])
    ));
    let mut run = repo.spawn(&["run", "--headless", "--plan", p.to_str().unwrap()]);
    let sup = run.pid();
    let daemon: i32 = wait_for(RUN_LIMIT, || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or(())
    })
    .unwrap_or_else(|()| {
        let so = run.stdout_now();
        let se = std::fs::read_to_string(&run.stderr).unwrap_or_default();
        panic!("the daemon never started:\n{so}\n{se}")
    });
    let adopted = wait_for(RUN_LIMIT, || match orch_tui::os::parent_of(daemon) {
        Some(p) if p == sup => Ok(()),
        other => Err(other),
    });
    assert!(
        adopted.is_ok(),
        "the orphaned daemon went to {adopted:?}, not to the supervisor {sup}"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(b"go\n")
        .unwrap();
    let reaped = wait_for(RUN_LIMIT, || {
        if orch_tui::os::process(daemon).is_none() {
            Ok(())
        } else {
            Err(orch_tui::os::process(daemon))
        }
    });
    assert!(reaped.is_ok(), "the daemon was not reaped: {reaped:?}");
    assert!(run.try_wait().is_none(), "the supervisor still runs");
    // SAFETY: SIGTERM to the supervisor we started: it stops its agents and exits.
    unsafe { libc::kill(sup, libc::SIGTERM) };
    let out = run.wait(RUN_LIMIT);
    assert_eq!(out.code, 1, "stopped, resumable: {}", out.show());
    repo.assert_no_agents_left(Duration::from_secs(5));
}
