//! `orch-tui logs`, `replay` and `timeline` on real runs: real git repositories, the real
//! binary, real PTYs, agents that are shell scripts (a generic profile).
//!
//! No sleeps as synchronization: the agents pace themselves (their own `sleep`s are what they
//! do); the tests wait on conditions with deadlines.

mod common;
mod e2e_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, wait_for};

const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A config with one generic profile per script (`name = script`), run by `sh -c`.
fn config(profiles: &[(&str, &str)]) -> String {
    let mut c = FAST_CONFIG.to_string();
    for (name, script) in profiles {
        c.push_str(&format!(
            "\n[agents.{name}]\ncommand = [\"sh\", \"-c\", '''{script}''']\nadapter = \"generic\"\nmax_concurrent = 2\n"
        ));
    }
    c
}

fn plan(tasks: &[(&str, &str, &str)]) -> String {
    let mut p = String::from("[plan]\nname = \"logs\"\n\n");
    for (id, agent, extra) in tasks {
        p.push_str(&format!(
            "[[task]]\nid = \"{id}\"\ntitle = \"Task {id}\"\nagent = \"{agent}\"\nprompt = \"do {id}\"\n{extra}\n"
        ));
    }
    p
}

/// The folder of `task`'s attempt `n` logs.
fn log_dir(repo: &Repo, task: &str, n: u32) -> PathBuf {
    repo.dir.join(".orch/logs").join(task).join(n.to_string())
}

/// Two agents that take turns: A prints `A k` then waits until B's `B k` is in B's text log, five
/// times; B waits for `A k` in A's log before printing `B k`. Waiting on the logs (not on the
/// agents' own signals) makes the order of the stamps certain: each line is recorded before the
/// other agent prints its next one, however late a busy machine reads a PTY. Stamps are in
/// milliseconds and lines of one millisecond merge in source order, so each agent lets 10 ms
/// pass after seeing the other's line before printing its next. Each writes a file so there
/// is a change to merge.
fn alternating(logs: &Path) -> [(&'static str, String); 2] {
    let a_log = logs.join("alpha/1/screen.log");
    let b_log = logs.join("bravo/1/screen.log");
    let (a_log, b_log) = (a_log.display(), b_log.display());
    let a = format!(
        "for k in 1 2 3 4 5; do echo \"A $k\"; until grep -qs \"B $k\\$\" {b_log}; do sleep 0.01; done; sleep 0.01; done; echo a > a.txt"
    );
    let b = format!(
        "for k in 1 2 3 4 5; do until grep -qs \"A $k\\$\" {a_log}; do sleep 0.01; done; sleep 0.01; echo \"B $k\"; done; echo b > b.txt"
    );
    [("pa", a), ("pb", b)]
}

fn run_alternating(repo: &Repo) {
    let [(na, a), (nb, b)] = alternating(&repo.dir.join(".orch/logs"));
    repo.init(&config(&[(na, &a), (nb, &b)]));
    let plan_file = repo.write_plan(&plan(&[
        ("alpha", "pa", "checks = [\"echo checking alpha\"]\n"),
        ("bravo", "pb", ""),
    ]));
    let out = repo.orch(
        &["run", "--headless", "--plan", plan_file.to_str().unwrap()],
        RUN_LIMIT,
    );
    assert!(out.code == 0 || out.code == 1, "{}", out.show());
}

#[test]
fn two_agents_printing_alternately_are_merged_in_time_order() {
    let repo = Repo::new();
    run_alternating(&repo);
    let out = repo.orch(&["logs", "--all"], RUN_LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let turns: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(" │ ").map(|(_, t)| t.to_string()))
        .filter(|t| t.starts_with("A ") || t.starts_with("B "))
        .collect();
    let want: Vec<String> = (1..=5)
        .flat_map(|k| [format!("A {k}"), format!("B {k}")])
        .collect();
    assert_eq!(turns, want, "{}", out.stdout);
    // Tags: one column as wide as the longest, the checks' lines tagged as such; piped: plain.
    assert!(!out.stdout.contains('\x1b'), "no colour when piped");
    let line_of = |text: &str| {
        out.stdout
            .lines()
            .find(|l| l.ends_with(text))
            .unwrap_or_else(|| panic!("no `{text}` in\n{}", out.stdout))
            .to_string()
    };
    let checks = line_of("checking alpha");
    assert!(checks.contains("alpha#1 checks │"), "{checks}");
    let a1 = line_of("│ A 1");
    let b1 = line_of("│ B 1");
    assert_eq!(
        a1.find('│'),
        checks.find('│'),
        "tags padded alike:\n{a1}\n{checks}"
    );
    assert_eq!(b1.find('│'), checks.find('│'));
    assert!(a1.contains(" alpha#1 "), "{a1}");
    // One task only.
    let only = repo.orch(&["logs", "--all", "--task", "bravo"], RUN_LIMIT);
    assert_eq!(only.code, 0, "{}", only.show());
    assert!(only.stdout.contains("│ B 3") && !only.stdout.contains("│ A 3"));
    // --since in the future of every line: nothing.
    let none = repo.orch(&["logs", "--all", "--since", "0s"], RUN_LIMIT);
    assert_eq!(none.code, 0);
    assert!(!none.stdout.contains("A 1"), "{}", none.stdout);
}

#[test]
fn logs_of_one_task_and_bad_requests() {
    let repo = Repo::new();
    run_alternating(&repo);
    let out = repo.orch(&["logs", "alpha"], RUN_LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let texts: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(" │ ").map(|(_, t)| t))
        .collect();
    assert_eq!(
        texts[..5],
        ["A 1", "A 2", "A 3", "A 4", "A 5"],
        "{}",
        out.stdout
    );
    assert!(texts.last().unwrap().contains("agent exited with code 0"));
    for (args, what) in [
        (vec!["logs"], "name a task"),
        (vec!["logs", "alpha", "--all"], "not both"),
        (vec!["logs", "--all", "--task", "nope"], "no such task"),
        (vec!["logs", "--all", "--since", "ten"], "--since"),
        (
            vec!["logs", "alpha", "--task", "bravo"],
            "--task goes with --all",
        ),
    ] {
        let o = repo.orch(&args, RUN_LIMIT);
        assert_eq!(o.code, 2, "{args:?}: {}", o.show());
        assert!(o.stderr.contains(what), "{args:?}: {}", o.stderr);
    }
}

#[test]
fn logs_follow_waits_for_the_first_attempt_and_ends_with_it() {
    let repo = Repo::new();
    repo.init(&config(&[(
        "slow",
        "for i in 1 2 3; do echo \"step $i\"; sleep 0.1; done; echo x > x.txt",
    )]));
    let plan_file = repo.write_plan(&plan(&[("solo", "slow", "")]));
    let load = repo.orch(&["plan", "load", plan_file.to_str().unwrap()], RUN_LIMIT);
    assert_eq!(load.code, 0, "{}", load.show());
    // Started before any attempt exists: it waits instead of exiting.
    let follow = repo.spawn(&["logs", "solo", "--follow"]);
    let run = repo.spawn(&["run", "--headless"]);
    let out = follow.wait(RUN_LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stderr.contains("waiting for `solo`'s first attempt"),
        "{}",
        out.stderr
    );
    for i in 1..=3 {
        assert!(
            out.stdout.contains(&format!("│ step {i}")),
            "{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("agent exited with code 0"),
        "{}",
        out.stdout
    );
    let _ = run.wait(RUN_LIMIT);
}

#[test]
fn replay_plays_the_session_back_to_the_same_screen() {
    let repo = Repo::new();
    repo.init(&config(&[(
        "painter",
        "printf '\\033[2J\\033[3;5H\\033[1;33mboxed\\033[0m\\033[1;1Htitle\\r\\n'; sleep 0.05; echo done > p.txt; echo finished",
    )]));
    let plan_file = repo.write_plan(&plan(&[("paint", "painter", "")]));
    let run = repo.orch(
        &["run", "--headless", "--plan", plan_file.to_str().unwrap()],
        RUN_LIMIT,
    );
    assert!(run.code == 0 || run.code == 1, "{}", run.show());
    let out = repo.orch(&["replay", "paint", "--speed", "1000"], RUN_LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stderr.contains("replaying paint#1"), "{}", out.stderr);
    // The replayed bytes and the raw record give the same screen at the recorded size.
    let cast =
        orch_tui::agent::record::cast::read_cast(&log_dir(&repo, "paint", 1).join("pty.cast"))
            .unwrap();
    let nz = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    let screen = |bytes: &[u8]| {
        let mut p = vt100::Parser::new(nz(cast.rows), nz(cast.cols), 0);
        p.process(bytes);
        p.screen().contents()
    };
    let raw = std::fs::read(log_dir(&repo, "paint", 1).join("pty.raw")).unwrap();
    let replayed = screen(out.stdout.as_bytes());
    assert_eq!(replayed, screen(&raw));
    assert!(
        replayed.contains("boxed") && replayed.contains("finished"),
        "{replayed}"
    );
    for (args, code) in [
        (vec!["replay", "paint", "--speed", "0"], 2),
        (vec!["replay", "paint", "--attempt", "9"], 2),
        (vec!["replay", "nope"], 2),
    ] {
        let o = repo.orch(&args, RUN_LIMIT);
        assert_eq!(o.code, code, "{args:?}: {}", o.show());
    }
}

#[test]
fn timeline_shows_each_trip_and_its_json_has_the_same() {
    let repo = Repo::new();
    run_alternating(&repo);
    let out = repo.orch(&["timeline", "--json"], RUN_LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let lanes = v["lanes"].as_array().unwrap();
    // The two tasks ran at the same time: two lanes.
    assert_eq!(lanes.len(), 2, "{}", out.stdout);
    let tasks: Vec<&str> = lanes
        .iter()
        .map(|l| l[0]["task"].as_str().unwrap())
        .collect();
    assert!(
        tasks.contains(&"alpha") && tasks.contains(&"bravo"),
        "{tasks:?}"
    );
    assert!(
        v["totals_ms"]["working"].as_u64().unwrap() > 0,
        "{}",
        out.stdout
    );
    let text = repo.orch(&["timeline"], RUN_LIMIT);
    assert_eq!(text.code, 0, "{}", text.show());
    assert!(text.stdout.contains("slot 1") && text.stdout.contains("slot 2"));
    assert!(text.stdout.contains("agents waited"), "{}", text.stdout);
    assert!(!text.stdout.contains('\x1b'), "plain when piped");
}

#[test]
fn a_supervisor_killed_mid_output_leaves_every_complete_line_in_the_log() {
    let repo = Repo::new();
    repo.init(&config(&[(
        "chatty",
        "i=0; while :; do echo \"line $i\"; i=$((i+1)); sleep 0.005; done",
    )]));
    let plan_file = repo.write_plan(&plan(&[("talk", "chatty", "")]));
    let run = repo.spawn(&["run", "--headless", "--plan", plan_file.to_str().unwrap()]);
    let path = log_dir(&repo, "talk", 1).join("screen.log");
    let enough = wait_for(RUN_LIMIT, || {
        let n = std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
        if n >= 100 { Ok(()) } else { Err(n) }
    });
    assert!(
        enough.is_ok(),
        "the log grows while the agent prints: {enough:?}"
    );
    let _ = run.kill9();
    // Its agent runs on in its holder; stop it, by pid.
    for p in repo.agents() {
        e2e_support::kill_group(p.pid, libc::SIGKILL);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter_map(orch_tui::agent::record::text::parse_line)
        // Its holder outlives the supervisor and closes the log (a final screen, a note).
        .filter(|l| l.kind == orch_tui::agent::record::text::LineKind::Output)
        .map(|l| l.text)
        .collect();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line {i}"), "in order, once each");
    }
    // The raw record holds what was read; the text log has all its complete lines but at most
    // the one being processed when the writer died.
    let raw = std::fs::read(log_dir(&repo, "talk", 1).join("pty.raw")).unwrap();
    let complete = String::from_utf8_lossy(&raw).matches('\n').count();
    assert!(
        lines.len() + 1 >= complete,
        "{} lines in the log, {complete} complete in pty.raw",
        lines.len()
    );
}

#[test]
fn the_tui_logs_feed_reads_tails_merges_by_time_and_follows() {
    use orch_tui::agent::record::text::{LineKind, StampCache, TextLine, write_line};
    use orch_tui::tui::logfeed::{LogFeed, TAIL_BYTES};
    let repo = Repo::new();
    run_alternating(&repo);
    // A long history before the run's lines: the view reads only the tail of it.
    let path = log_dir(&repo, "alpha", 1).join("screen.log");
    let mut big = Vec::new();
    let mut stamps = StampCache::default();
    for i in 0..20_000u64 {
        let l = TextLine::new(1_000_000_000_000 + i, LineKind::Output, format!("old {i}"));
        write_line(&mut big, &mut stamps, &l);
    }
    big.extend(std::fs::read(&path).unwrap());
    std::fs::write(&path, &big).unwrap();
    assert!(big.len() as u64 > 4 * TAIL_BYTES);
    let ledger = orch_tui::ledger::Ledger::open(&repo.ledger()).unwrap();
    let mut feed = LogFeed::default();
    feed.refresh(&ledger).unwrap();
    assert!(feed.poll(orch_tui::ledger::now_ms()));
    let lines = feed.lines();
    let old = lines.iter().filter(|l| l.text.starts_with("old ")).count();
    assert!(
        old > 0 && (old as u64) < TAIL_BYTES / 20,
        "{old} old lines read"
    );
    assert!(lines.iter().any(|l| l.text == "old 19999"));
    let turns: Vec<&str> = lines
        .iter()
        .map(|l| l.text.as_str())
        .filter(|t| t.starts_with("A ") || t.starts_with("B "))
        .collect();
    assert_eq!(
        turns,
        [
            "A 1", "B 1", "A 2", "B 2", "A 3", "B 3", "A 4", "B 4", "A 5", "B 5"
        ]
    );
    let check = lines.iter().find(|l| l.text == "checking alpha").unwrap();
    assert_eq!(check.tag, "alpha#1 checks");
    // Following: a line appended now shows on the next poll, once.
    let mut more = Vec::new();
    write_line(
        &mut more,
        &mut stamps,
        &TextLine::new(orch_tui::ledger::now_ms(), LineKind::Output, "late line"),
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, &more).unwrap();
    assert!(feed.poll(orch_tui::ledger::now_ms()));
    assert_eq!(
        feed.lines()
            .iter()
            .filter(|l| l.text == "late line")
            .count(),
        1
    );
    assert!(!feed.poll(orch_tui::ledger::now_ms()), "nothing new");
}
