//! Bad input through the real binary (DESIGN.md §7, research/reliability.md R18): every refusal
//! exits 2 (or 3 when refused), says where the problem is (file:line), and leaves the ledger
//! exactly as it was — same bytes, same `status --json`, same row counts.

mod common;
mod ledger_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ledger_support::{Repo, Snapshot, process_gone, wait_for};
use orch_tui::core::state::TaskState;
use orch_tui::ledger::{Actor, EventData, Ledger, Patch, transition};

/// (corpus file, a line it must report). The messages themselves are checked in-process by
/// tests/bad_input.rs; here the binary must point the user at each of these lines.
const PLAN_LINES: &[(&str, usize)] = &[
    ("bad_duration.toml", 5),
    ("bad_id.toml", 2),
    ("both_prompt_and_spec.toml", 5),
    ("comments_only.toml", 1),
    ("cycle.toml", 9),
    ("duplicate_id.toml", 10),
    ("duplicate_key.toml", 4),
    ("empty.toml", 1),
    ("empty_title.toml", 3),
    ("many_errors.toml", 3),
    ("many_errors.toml", 6),
    ("many_errors.toml", 12),
    ("many_errors.toml", 16),
    ("many_errors.toml", 18),
    ("many_errors.toml", 19),
    ("many_errors.toml", 22),
    ("many_errors.toml", 24),
    ("max_attempts_zero.toml", 5),
    ("missing_spec.toml", 7),
    ("negative_budget.toml", 10),
    ("negative_cost.toml", 2),
    ("neither_prompt_nor_spec.toml", 4),
    ("no_tasks.toml", 1),
    ("non_numeric_budget.toml", 5),
    ("not_toml.toml", 3),
    ("not_toml.toml", 4),
    ("self_dependency.toml", 5),
    ("task_not_array.toml", 4),
    ("unknown_agent.toml", 5),
    ("unknown_dependency.toml", 13),
    ("unknown_key_budget.toml", 8),
    ("unknown_key_task.toml", 8),
    ("unknown_key_top.toml", 4),
    ("zero_time.toml", 5),
];

const CONFIG_LINES: &[(&str, usize)] = &[
    ("bad_adapter.toml", 3),
    ("bad_autonomy.toml", 2),
    ("bad_duration.toml", 1),
    ("bad_placeholder.toml", 3),
    ("bad_theme.toml", 2),
    ("empty_command.toml", 2),
    ("negative_slots.toml", 2),
    ("new_agent_incomplete.toml", 1),
    ("not_toml.toml", 1),
    ("unknown_default_agent.toml", 1),
    ("unknown_key.toml", 2),
    ("unknown_key_agent.toml", 3),
    ("zero_git_timeout.toml", 3),
];

fn corpus(dir: &str, table: &[(&str, usize)]) -> Vec<(PathBuf, Vec<usize>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let files: BTreeSet<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    let listed: BTreeSet<String> = table.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        files, listed,
        "{dir}: every corpus file needs its lines here"
    );
    files
        .into_iter()
        .map(|f| {
            let lines = table
                .iter()
                .filter(|(n, _)| *n == f)
                .map(|(_, l)| *l)
                .collect();
            (root.join(&f), lines)
        })
        .collect()
}

/// A plan whose tasks can never be dispatched once paused, so a `run` that wrongly got past
/// validation would end at once instead of starting agents.
const HELD_PLAN: &str = "[plan]\nname = \"held\"\n\n[defaults]\nagent = \"sim\"\n\n\
    [[task]]\nid = \"x\"\ntitle = \"X\"\nprompt = \"Do x.\"\n\n\
    [[task]]\nid = \"y\"\ntitle = \"Y\"\nprompt = \"Do y.\"\ndepends_on = [\"x\"]\n";

/// An initialised repository with a loaded plan whose tasks are all paused.
fn held_repo() -> Repo {
    let r = Repo::initialised();
    let plan = r.write("held.toml", HELD_PLAN);
    let out = r.orch(&["plan", "load", plan.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    for t in ["x", "y"] {
        let out = r.orch(&["pause", t]);
        assert_eq!(out.code, 0, "pause {t}: {out:?}");
    }
    r
}

fn assert_points_at(what: &str, out: &ledger_support::Run, file: &Path, lines: &[usize]) {
    assert_eq!(out.code, 2, "{what}: exit code: {out:?}");
    for line in lines {
        let loc = format!("{}:{line}:", file.display());
        assert!(
            out.stderr.contains(&loc),
            "{what}: stderr does not point at {loc}:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
}

fn assert_unchanged(what: &str, before: &Snapshot, r: &Repo) {
    let after = r.snapshot();
    assert_eq!(
        before.counts, after.counts,
        "{what}: tasks/events/attempts/deps rows changed"
    );
    assert_eq!(before.status, after.status, "{what}: status --json changed");
    assert_eq!(
        (before.file_hash, before.wal_hash),
        (after.file_hash, after.wal_hash),
        "{what}: the ledger's bytes changed"
    );
}

#[test]
fn every_bad_plan_is_refused_by_validate_load_and_run_and_nothing_is_written() {
    let r = held_repo();
    let before = r.snapshot();
    for (file, lines) in corpus("tests/corpus/plans", PLAN_LINES) {
        let f = file.to_str().unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();

        let out = r.orch(&["plan", "validate", f]);
        assert_points_at(&format!("validate {name}"), &out, &file, &lines);

        let out = r.orch(&["plan", "load", f]);
        assert_points_at(&format!("load {name}"), &out, &file, &lines);
        assert_unchanged(&format!("load {name}"), &before, &r);

        let out = r.orch(&["run", "--headless", "--plan", f]);
        assert_points_at(&format!("run --plan {name}"), &out, &file, &lines);
        assert!(
            !out.stdout.contains("supervising"),
            "run {name} started supervising: {out:?}"
        );
        assert_unchanged(&format!("run --plan {name}"), &before, &r);
    }
}

#[test]
fn a_bad_plan_never_creates_a_ledger() {
    // `run --plan` in a repository with no ledger yet: refused before .orch/ledger.db exists.
    let r = Repo::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/plans/cycle.toml");
    let out = r.orch(&["run", "--headless", "--plan", file.to_str().unwrap()]);
    assert_points_at("run --plan cycle.toml", &out, &file, &[9]);
    assert!(!r.ledger().exists(), "a ledger was created for a bad plan");
}

#[test]
fn every_bad_config_is_refused_with_its_line_and_nothing_is_written() {
    let r = held_repo();
    let good_plan = r.write(
        "good.toml",
        HELD_PLAN.replace("Do y.", "Do y now.").as_str(),
    );
    let before = r.snapshot();
    for (file, lines) in corpus("tests/corpus/configs", CONFIG_LINES) {
        let f = file.to_str().unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for args in [
            &["--config", f, "status"][..],
            &["--config", f, "status", "--json"][..],
            &["--config", f, "run", "--headless"][..],
            &["--config", f, "plan", "load", good_plan.to_str().unwrap()][..],
            &[
                "--config",
                f,
                "plan",
                "validate",
                good_plan.to_str().unwrap(),
            ][..],
            &["--config", f, "cancel", "x"][..],
        ] {
            let out = r.orch(args);
            assert_points_at(&format!("{name}: {:?}", &args[2..]), &out, &file, &lines);
        }
        assert_unchanged(&name, &before, &r);
    }
    // A config file that does not exist is an error too, not a silent fallback to defaults.
    let out = r.orch(&["--config", "/nonexistent/config.toml", "status"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no such config file"), "{out:?}");
}

#[test]
fn bad_commands_exit_2_and_change_nothing() {
    let r = held_repo();
    // Drive x to done through the ledger, as a finished run would leave it.
    {
        let mut ledger = Ledger::open(&r.ledger()).unwrap();
        let path = [
            TaskState::Paused,
            TaskState::Ready,
            TaskState::Assigned,
            TaskState::Working,
            TaskState::Review,
            TaskState::Approved,
            TaskState::Merging,
            TaskState::Done,
        ];
        for w in path.windows(2) {
            ledger
                .write(|tx| {
                    transition(
                        tx,
                        "x",
                        w[0],
                        w[1],
                        &Patch::default(),
                        Actor::Supervisor,
                        None,
                        &EventData::default(),
                    )
                })
                .unwrap();
        }
    }
    let before = r.snapshot();

    let out = r.orch(&["frobnicate"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{out:?}"
    );

    let out = r.orch(&["status", "--frob"]);
    assert_eq!(out.code, 2, "{out:?}");

    let out = r.orch(&["retry", "no-such-task"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no task `no-such-task`"), "{out:?}");
    assert!(
        out.stderr.contains("`orch-tui status` lists the tasks"),
        "the message says what to do: {out:?}"
    );

    let out = r.orch(&["cancel", "x"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("cannot cancel task `x`: it is done"),
        "{out:?}"
    );

    let out = r.orch(&["approve", "y"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("it is paused"), "{out:?}");

    let out = r.orch(&["run", "--headless", "--slots", "0"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("between 1 and 64"), "{out:?}");

    let out = r.orch(&["plan", "load", "/nonexistent/plan.toml"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no such file"), "{out:?}");

    let out = r.orch(&["logs", "no-such-task"]);
    assert_eq!(out.code, 2, "{out:?}");

    assert_unchanged("bad commands", &before, &r);
    let st = r.status_json();
    assert_eq!(st["tasks"][0]["state"], "done");
    assert_eq!(st["tasks"][1]["state"], "paused");
}

#[test]
fn a_second_supervisor_is_refused_naming_the_running_one() {
    let r = Repo::initialised();
    let plan = r.write(
        "hang.toml",
        "[plan]\nname = \"hang\"\n\n[defaults]\nagent = \"sim\"\n\n\
         [[task]]\nid = \"h\"\ntitle = \"Hangs\"\nprompt = \"@sim hang\"\nbudget = { time = \"1h\" }\n",
    );
    let mut first = r.spawn(&["run", "--headless", "--plan", plan.to_str().unwrap()]);
    let first_pid = first.pid();

    // Wait until its agent runs (the lock is taken before anything else).
    let agent_pid = wait_for("the hanging agent to run", Duration::from_secs(20), || {
        let out = r.orch(&["status", "--json"]);
        let st: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        let t = &st["tasks"][0];
        let a = &t["attempts"][0];
        (t["state"] == "working" && a["state"] == "running")
            .then(|| a["pid"].as_i64())
            .flatten()
    });
    first.also_kill.push(agent_pid as i32);
    let st_before = r.status_json();

    let out = r.orch(&["run", "--headless"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(&format!("pid {first_pid}")),
        "names the running supervisor: {out:?}"
    );
    assert!(
        out.stderr.contains("another orch-tui supervisor"),
        "{out:?}"
    );
    // The refused one changed nothing: same epoch, the agent still running, still one attempt.
    let st_after = r.status_json();
    assert_eq!(st_after["epoch"], st_before["epoch"]);
    assert_eq!(st_after["tasks"][0]["state"], "working");
    assert_eq!(
        st_after["tasks"][0]["attempts"].as_array().unwrap().len(),
        1
    );
    assert!(
        !process_gone(agent_pid as i32),
        "the running agent was disturbed"
    );

    // Stop the first one (SIGTERM): it ends its agent and leaves nothing behind.
    let status = first
        .stop(Duration::from_secs(20))
        .expect("the supervisor exits");
    assert_eq!(status.code(), Some(1), "a stopped run exits 1");
    wait_for("the agent to be gone", Duration::from_secs(20), || {
        process_gone(agent_pid as i32).then_some(())
    });
    // Now the lock is free again.
    let out = r.orch(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
}
