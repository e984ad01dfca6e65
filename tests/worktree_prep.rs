//! `[worktree]` end to end: setup commands and copied files are in place before the agent
//! starts, the slot's port and the shared caches are in its environment, the re-check worktree
//! is set up before its checks, and a failing setup fails the attempt with its output.

mod common;
mod e2e_support;

use std::fs;
use std::time::Duration;

use e2e_support::Repo;

const LIMIT: Duration = Duration::from_secs(60);

/// An agent that proves what it found at start, in a file of its own that it leaves for commit.
const AGENT: &str = r#"
default_agent = "probe"
stop_grace = "200ms"

[agents.probe]
command = ["sh", "-c", "{ test -f .env && echo env=$(cat .env); test -f made-by-setup && echo setup=yes; echo slot=$ORCH_SLOT port=$ORCH_PORT count=$ORCH_PORT_COUNT cache=$SHARED_CACHE; } > seen-$ORCH_TASK.txt"]
adapter = "generic"

[retry]
max_attempts = 1
backoff_base = "10ms"
backoff_cap = "50ms"

[funnel]
autonomy = "out-of-the-loop"
"#;

fn repo_with(worktree: &str) -> Repo {
    let repo = Repo::new();
    fs::write(repo.dir.join(".gitignore"), ".env\nmade-by-setup\n").unwrap();
    repo.git(&["add", ".gitignore"]);
    repo.git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t.invalid",
        "commit",
        "-qm",
        "ignore",
    ]);
    fs::write(repo.dir.join(".env"), "SECRET=s3cret\n").unwrap();
    repo.init(&format!("{AGENT}\n{worktree}"));
    repo
}

fn add(repo: &Repo, args: &[&str]) {
    let out = repo.orch(args, LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
}

#[test]
fn setup_copies_ports_and_caches_are_in_place_before_the_agent_starts() {
    let repo = repo_with(
        r#"[worktree]
setup = ["echo installing deps; touch made-by-setup"]
copy = [".env", "missing.local"]
cache = { SHARED_CACHE = "shared" }
port_base = 42000
ports_per_slot = 5
"#,
    );
    add(
        &repo,
        &[
            "add",
            "--id",
            "one",
            "--check",
            "test -f made-by-setup",
            "One.",
        ],
    );
    add(
        &repo,
        &[
            "add",
            "--id",
            "two",
            "--check",
            "test -f made-by-setup",
            "Two.",
        ],
    );
    let run = repo.orch(&["run", "--headless", "--slots", "2"], LIMIT);
    assert_eq!(run.code, 0, "{}", run.show());
    let cache = repo.dir.join(".orch/cache/shared");
    assert!(cache.is_dir(), "the shared cache folder was made");
    let mut slots = Vec::new();
    for t in ["one", "two"] {
        let seen = repo.git(&["show", &format!("orch/integration:seen-{t}.txt")]);
        assert!(seen.contains("env=SECRET=s3cret"), "{t}: {seen}");
        assert!(seen.contains("setup=yes"), "{t}: {seen}");
        assert!(
            seen.contains(&format!("cache={}", cache.display())),
            "{t}: {seen}"
        );
        assert!(seen.contains("count=5"), "{t}: {seen}");
        let slot: u32 = seen
            .split("slot=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            seen.contains(&format!("port={}", 42000 + (slot - 1) * 5)),
            "{seen}"
        );
        slots.push(slot);
        let log =
            fs::read_to_string(repo.dir.join(format!(".orch/logs/{t}/1/screen.log"))).unwrap();
        for want in [
            "# worktree: `missing.local` is not in",
            "# worktree: copied `.env` from",
            "# worktree setup: $ echo installing deps",
            "installing deps",
            "passed in",
        ] {
            assert!(log.contains(want), "{t}'s log lacks {want:?}:\n{log}");
        }
    }
    assert!(slots.iter().all(|s| (1..=2).contains(s)), "{slots:?}");
    // Nothing copied in or made by setup was committed.
    let files = repo.git(&["ls-tree", "-r", "--name-only", "orch/integration"]);
    assert!(
        !files.lines().any(|f| f == ".env" || f == "made-by-setup"),
        "{files}"
    );
    // The second merge was re-checked on the rebased tree, in a worktree set up the same way.
    let rechecks: String = ["one", "two"]
        .iter()
        .filter_map(|t| {
            fs::read_to_string(repo.dir.join(format!(".orch/logs/{t}/1/merge-checks.log"))).ok()
        })
        .collect();
    assert!(
        rechecks.contains("# worktree setup: $ echo installing deps"),
        "{rechecks}"
    );
    assert!(rechecks.contains("$ test -f made-by-setup"), "{rechecks}");
}

#[test]
fn a_failing_setup_fails_the_attempt_with_its_output_and_no_agent_runs() {
    let repo = repo_with("[worktree]\nsetup = [\"echo the lockfile is broken >&2; exit 7\"]\n");
    add(&repo, &["add", "--id", "t", "T."]);
    let run = repo.orch(&["run", "--headless"], LIMIT);
    assert_eq!(run.code, 1, "{}", run.show());
    let t = repo.task("t");
    assert_eq!(t["state"], "failed");
    let reason = t["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("worktree setup `echo the lockfile is broken >&2; exit 7` exited with 7"),
        "{reason}"
    );
    assert!(reason.contains("the lockfile is broken"), "{reason}");
    assert!(reason.contains("the agent was not started"), "{reason}");
    assert!(!repo.dir.join(".orch/worktrees/t-1/seen-t.txt").exists());
    let log = fs::read_to_string(repo.dir.join(".orch/logs/t/1/screen.log")).unwrap();
    assert!(log.contains("FAILED: exited with 7"), "{log}");
}

#[test]
fn a_copied_file_git_would_commit_is_refused() {
    let repo = repo_with("[worktree]\ncopy = [\"notes.local\"]\n");
    fs::write(repo.dir.join("notes.local"), "private\n").unwrap();
    add(&repo, &["add", "--id", "t", "T."]);
    let run = repo.orch(&["run", "--headless"], LIMIT);
    assert_eq!(run.code, 1, "{}", run.show());
    let reason = repo.task("t")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("`notes.local` is not ignored by git, so the agent's commit would take it"),
        "{reason}"
    );
}

#[test]
fn ports_that_do_not_fit_the_slots_are_refused_at_start() {
    let repo = repo_with("[worktree]\nport_base = 65000\nports_per_slot = 300\n");
    add(&repo, &["add", "--id", "t", "T."]);
    let out = repo.orch(&["run", "--headless", "--slots", "4"], LIMIT);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stderr.contains("do not fit under 65536"),
        "{}",
        out.show()
    );
}

#[test]
fn a_hung_setup_is_stopped_at_its_timeout_and_a_daemon_it_leaves_does_not_hold_it() {
    // The first command leaves a process holding its output open and exits: it passes at once.
    // The second hangs: stopped at setup_timeout, with what it printed.
    let repo = repo_with(
        "[worktree]\nsetup = [\"(sleep 30 &) ; echo daemon started\", \"echo waiting; sleep 30\"]\nsetup_timeout = \"500ms\"\n",
    );
    add(&repo, &["add", "--id", "t", "T."]);
    let started = std::time::Instant::now();
    let run = repo.orch(&["run", "--headless"], LIMIT);
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let reason = repo.task("t")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason
            .contains("`echo waiting; sleep 30` timed out after 500ms ([worktree] setup_timeout)"),
        "{reason}"
    );
    assert!(reason.contains("waiting"), "{reason}");
    let log = fs::read_to_string(repo.dir.join(".orch/logs/t/1/screen.log")).unwrap();
    assert!(
        log.contains("daemon started") && log.contains("passed in"),
        "{log}"
    );
}
