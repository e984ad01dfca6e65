//! `orch-tui add` and `orch-tui edit` through the real binary: tasks without a plan file, picked
//! up by a running supervisor, validated like a plan's (every refusal exits 2 and changes
//! nothing), and prompts edited so the next attempt gets the new text.

mod common;
mod e2e_support;

use std::fs;
use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, state_of, task_of, wait_for};

const LIMIT: Duration = Duration::from_secs(40);

fn ok(repo: &Repo, args: &[&str]) -> String {
    let out = repo.orch(args, LIMIT);
    assert_eq!(out.code, 0, "orch-tui {args:?}: {}", out.show());
    out.stdout
}

fn wait_state(repo: &Repo, task: &str, want: &str) {
    let res = wait_for(LIMIT, || {
        let s = repo.status();
        if state_of(&s, task) == want {
            Ok(())
        } else {
            Err(s)
        }
    });
    if let Err(s) = res {
        panic!("`{task}` never became {want}: {s:#}");
    }
}

#[test]
fn add_in_a_fresh_repository_sets_it_up_and_the_task_runs() {
    let repo = Repo::new();
    // With no agent CLI on PATH there is no default agent: the task must name one.
    let out = repo
        .command(&["add", "Write the notes."])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--agent: task `write-the-notes` names no agent"),
        "{err}"
    );
    assert!(err.contains("pass --agent with one of"), "{err}");
    assert!(
        !repo.dir.join(".orch").exists(),
        "nothing set up for a refused task"
    );
    let out = repo.orch(
        &["add", "--agent", "sim", "Write the notes.\n@sim speed fast"],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("added `write-the-notes` (ready)"),
        "{}",
        out.show()
    );
    assert!(
        out.stderr.contains("as `orch-tui init` does"),
        "{}",
        out.show()
    );
    assert!(repo.ledger().exists());
    let exclude = fs::read_to_string(repo.dir.join(".git/info/exclude")).unwrap();
    assert!(exclude.lines().any(|l| l == ".orch/"), "{exclude}");
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "the user's tree is untouched"
    );
    // Fast retries and no veto window for the run.
    fs::write(repo.dir.join(".orch/config.toml"), FAST_CONFIG).unwrap();
    let run = repo.orch(&["run", "--headless"], LIMIT);
    assert_eq!(run.code, 0, "{}", run.show());
    let t = repo.task("write-the-notes");
    assert_eq!(t["state"], "done");
    assert_eq!(t["title"], "Write the notes.");
}

#[test]
fn a_running_supervisor_picks_up_an_added_task() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    ok(
        &repo,
        &["add", "--id", "slow", "Take your time.\n@sim sleep 60s"],
    );
    let mut run = repo.spawn(&["run", "--headless"]);
    wait_state(&repo, "slow", "working");
    let said = ok(
        &repo,
        &[
            "add",
            "--id",
            "quick",
            "--title",
            "A quick one",
            "--priority",
            "-2",
            "--check",
            "test -f work/quick.md",
            "Be quick.\n@sim speed fast",
        ],
    );
    assert!(
        said.contains("the running supervisor picks it up now"),
        "{said}"
    );
    wait_state(&repo, "quick", "done");
    assert!(run.try_wait().is_none(), "the same run did it");
    let quick = repo.task("quick");
    assert_eq!(quick["priority"], -2);
    let events = ok(&repo, &["events", "--json", "--task", "quick"]);
    assert!(events.contains("check_passed"), "its --check ran: {events}");
    // A task after one that is still running waits for it.
    let said = ok(&repo, &["add", "--after", "slow", "Then this."]);
    assert!(said.contains("(pending)"), "{said}");
    assert_eq!(
        repo.task("then-this")["depends_on"],
        serde_json::json!(["slow"])
    );
    ok(&repo, &["cancel", "slow"]);
    let end = run.wait(LIMIT);
    assert_eq!(end.code, 1, "a cancelled task: {}", end.show());
    assert_eq!(repo.task("then-this")["state"], "blocked");
    repo.assert_no_agents_left(Duration::from_secs(5));
}

#[test]
fn bad_flags_are_refused_with_their_name_and_nothing_changes() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    ok(&repo, &["add", "--id", "build", "Build it."]);
    let before = repo.status();
    let db = fs::read(repo.ledger()).unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["add", "--after", "buld", "x"],
            &[
                "--after: unknown dependency `buld`",
                "did you mean `build`?",
            ],
        ),
        (
            &["add", "--id", "build", "x"],
            &["--id: task id `build` is taken (that task is ready)"],
        ),
        (
            &["add", "--id", "Nope!", "x"],
            &["--id: bad task id `Nope!`"],
        ),
        (
            &["add", "--budget", "time=soon,tokens=-1", "x"],
            &["--budget: budget of task", "bad duration", "tokens is -1"],
        ),
        (
            &["add", "--agent", "nobody", "x"],
            &["--agent: agent `nobody` is not defined in the config"],
        ),
        (
            &["add", "--title", "a\tb\u{7}", "x"],
            &["--title:", "control character"],
        ),
        (&["add", "   "], &["PROMPT:", "empty prompt"]),
        (&["add", "--check", "", "x"], &["--check:", "empty check"]),
    ];
    for (args, wants) in cases {
        let out = repo.orch(args, LIMIT);
        assert_eq!(out.code, 2, "{args:?}: {}", out.show());
        for want in *wants {
            assert!(
                out.stderr.contains(want),
                "{args:?} wants {want:?}: {}",
                out.show()
            );
        }
    }
    assert_eq!(fs::read(repo.ledger()).unwrap(), db, "the ledger's bytes");
    assert_eq!(repo.status()["tasks"], before["tasks"]);
    // Without a ledger, a refused add creates nothing either.
    let fresh = Repo::new();
    let out = fresh.orch(&["add", "--after", "nothing", "x"], LIMIT);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        !fresh.dir.join(".orch").exists(),
        "nothing set up for a refused task"
    );
}

#[test]
fn an_edit_reaches_the_next_attempt() {
    let repo = Repo::new();
    repo.init(&FAST_CONFIG.replace("[retry]", "[retry]\nmax_attempts = 1"));
    ok(
        &repo,
        &["add", "--id", "t", "Try it.\n@sim speed fast\n@sim fail 3"],
    );
    let run = repo.orch(&["run", "--headless"], LIMIT);
    assert_eq!(run.code, 1, "{}", run.show());
    assert_eq!(repo.task("t")["state"], "failed");
    // $EDITOR may carry arguments; it edits the prompt in place.
    let out = repo
        .command(&["edit", "t", "--editor"])
        .env("VISUAL", "")
        .env("EDITOR", "sed -i 's/@sim fail 3/@sim say fixed it/'")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("t: prompt changed (spec version 2); `orch-tui retry` it"),
        "{said}"
    );
    assert_eq!(repo.task("t")["spec_version"], 2);
    assert!(
        !repo.dir.join(".orch/edit-t.md").exists(),
        "the scratch file is gone"
    );
    ok(&repo, &["retry", "t"]);
    let run = repo.orch(&["run", "--headless"], LIMIT);
    assert_eq!(run.code, 0, "{}", run.show());
    let second = fs::read_to_string(repo.dir.join(".orch/prompts/t-2.md")).unwrap();
    assert!(
        second.contains("@sim say fixed it") && !second.contains("@sim fail"),
        "{second}"
    );
    let log = ok(&repo, &["logs", "t"]);
    assert!(log.contains("fixed it"), "{log}");
    // A done task cannot be edited; the same text is no change.
    let out = repo.orch(&["edit", "t", "--prompt", "again"], LIMIT);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stderr.contains("cannot edit task `t`: it is done"),
        "{}",
        out.show()
    );
    ok(&repo, &["add", "--id", "p", "--after", "t", "Later."]);
    ok(&repo, &["pause", "p"]);
    let same = ok(&repo, &["edit", "p", "--prompt", "Later."]);
    assert!(same.contains("unchanged"), "{same}");
    let file = repo.root.join("new-prompt.md");
    fs::write(&file, "Later, and better.").unwrap();
    let said = ok(
        &repo,
        &["edit", "p", "--prompt-file", file.to_str().unwrap()],
    );
    assert!(said.contains("`orch-tui resume` it"), "{said}");
    assert_eq!(task_of(&repo.status(), "p")["spec_version"], 2);
    // An editor that fails changes nothing.
    let out = repo
        .command(&["edit", "p", "--editor"])
        .env("VISUAL", "false")
        .env("EDITOR", "false")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(repo.task("p")["spec_version"], 2);
}
