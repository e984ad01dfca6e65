//! `run --autonomy in|on|out --veto DUR`: the funnel of one run, over the config's, through the
//! real binary; bad values are refused before anything runs.

mod common;
mod e2e_support;

use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, wait_for};

const LIMIT: Duration = Duration::from_secs(40);

fn repo_with_task() -> Repo {
    let repo = Repo::new();
    // The config says out-of-the-loop: every flag below has to beat it.
    repo.init(FAST_CONFIG);
    let out = repo.orch(&["add", "--id", "t", "Do it.\n@sim speed fast"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    repo
}

#[test]
fn on_the_loop_with_a_short_veto_window_for_one_run() {
    let repo = repo_with_task();
    let run = repo.orch(
        &["run", "--headless", "--autonomy", "on", "--veto", "300ms"],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.show());
    let events = repo
        .orch(&["events", "--json", "--task", "t"], LIMIT)
        .stdout;
    let veto: Vec<serde_json::Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "funnel" && e["data"]["stage"] == "veto")
        .collect();
    assert_eq!(veto.len(), 1, "one veto window: {events}");
    let window = veto[0]["data"]["until_ms"].as_i64().unwrap() - veto[0]["ts_ms"].as_i64().unwrap();
    assert!(
        (250..=1000).contains(&window),
        "a 300 ms window, not 2 min: {window} ms"
    );
}

#[test]
fn in_the_loop_waits_for_the_human_for_one_run() {
    let repo = repo_with_task();
    let run = repo.spawn(&["run", "--headless", "--autonomy", "in"]);
    let waiting = wait_for(LIMIT, || {
        let t = repo.task("t");
        if t["stage"] == "human" {
            Ok(())
        } else {
            Err(t)
        }
    });
    waiting.unwrap_or_else(|t| panic!("never waited for the human: {t:#}"));
    let out = repo.orch(&["approve", "t"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let end = run.wait(LIMIT);
    assert_eq!(end.code, 0, "{}", end.show());
}

#[test]
fn bad_run_flags_are_refused_and_nothing_runs() {
    let repo = repo_with_task();
    for (args, want) in [
        (
            &["--autonomy", "sideways"][..],
            "--autonomy sideways: choose in",
        ),
        (
            &["--autonomy", "out", "--veto", "30s"][..],
            "only on-the-loop has a veto window",
        ),
        (&["--veto", "soon"][..], "--veto soon:"),
        (&["--slots", "0"][..], "--slots 0"),
    ] {
        let mut all = vec!["run", "--headless"];
        all.extend_from_slice(args);
        let out = repo.orch(&all, LIMIT);
        assert_eq!(out.code, 2, "{args:?}: {}", out.show());
        assert!(
            out.stderr.contains(want),
            "{args:?} wants {want:?}: {}",
            out.show()
        );
    }
    assert_eq!(repo.task("t")["state"], "ready", "nothing ran");
    assert_eq!(repo.task("t")["attempts"], serde_json::json!([]));
}
