//! Dependents during the veto window (issue #9), with the real binary, real git and the sim
//! agent: a dependent starts on the candidate tip while its dependency's veto window runs and
//! both merge, in order; a veto stops the dependent, which starts again on the real base with no
//! failure counted. An ignored test measures a 4-deep chain with and without speculation.

mod common;
mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::{Repo, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

fn config(veto: &str, speculative: bool) -> String {
    format!(
        "stop_grace = \"200ms\"\ndefault_agent = \"sim\"\n\n[retry]\nbackoff_base = \"10ms\"\n\
         backoff_cap = \"50ms\"\n\n[funnel]\nautonomy = \"on-the-loop\"\nveto_window = \"{veto}\"\n\
         speculative = {speculative}\n"
    )
}

/// A chain: each task writes its own file and depends on the one before; `sims` go into each.
fn chain(ids: &[&str], sims: &[&str]) -> String {
    let mut plan = String::from("[plan]\nname = \"chain\"\n\n[defaults]\nagent = \"sim\"\n\n");
    for (i, id) in ids.iter().enumerate() {
        let deps = if i == 0 {
            String::new()
        } else {
            format!("\"{}\"", ids[i - 1])
        };
        let mut prompt = format!("Work on {id}.\n@sim speed fast\n");
        for s in sims {
            prompt.push_str(&format!("@sim {s}\n"));
        }
        prompt.push_str(&format!("@sim write {id}.txt: {id} was here\n"));
        plan.push_str(&format!(
            "[[task]]\nid = \"{id}\"\ntitle = \"Task {id}\"\ndepends_on = [{deps}]\n\
             prompt = '''\n{prompt}'''\n\n"
        ));
    }
    plan
}

fn agent_attempts(repo: &Repo, task: &str) -> Vec<Value> {
    repo.task(task)["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["role"] == "agent")
        .collect()
}

fn load(repo: &Repo, plan: &str) {
    let p = repo.write_plan(plan);
    let out = repo.orch(&["plan", "load", p.to_str().expect("utf-8")], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
}

#[test]
fn a_dependent_starts_during_the_veto_window_and_merges_after_its_candidate() {
    let repo = Repo::new();
    repo.init(&config("3s", true));
    load(&repo, &chain(&["a", "b"], &[]));
    let out = repo.orch(&["run", "--headless"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let b = agent_attempts(&repo, "b");
    assert_eq!(b.len(), 1, "{b:#?}");
    assert_eq!(
        b[0]["spec_on"], "a",
        "b started on a's candidate tip: {b:#?}"
    );
    assert_eq!(repo.task("b")["state"], "done");
    // Both files on the integration branch, a's merge before b's.
    let log = repo.git(&["log", "--format=%s%n%b", "orch/integration"]);
    let (at_a, at_b) = (log.find("Orch-Task: a"), log.find("Orch-Task: b"));
    assert!(
        at_a.is_some() && at_b.is_some() && at_b < at_a,
        "b merged on top of a: {log}"
    );
    let files = repo.git(&["ls-tree", "--name-only", "orch/integration"]);
    assert!(
        files.contains("a.txt") && files.contains("b.txt"),
        "{files}"
    );
    // b's recorded base is the candidate tip: a commit carrying a's work, not on main.
    let base = b[0]["base"].as_str().expect("b's base").to_string();
    let at_base = repo.git(&["ls-tree", "--name-only", &base]);
    assert!(
        at_base.contains("a.txt"),
        "b's base holds a's work: {at_base}"
    );
    repo.assert_no_agents_left(Duration::from_secs(10));
}

#[test]
fn a_veto_stops_the_dependent_and_it_starts_again_on_the_real_base() {
    let repo = Repo::new();
    repo.init(&config("4s", true));
    load(&repo, &chain(&["a", "b"], &["sleep 3s"]));
    let run = repo.spawn(&["run", "--headless"]);
    // b works on a's candidate tip: veto a now.
    let started = wait_for(LIMIT, || {
        let b = agent_attempts(&repo, "b");
        let on = b
            .first()
            .is_some_and(|x| x["state"] == "running" && x["spec_on"] == "a");
        on.then_some(()).ok_or(b)
    });
    assert!(
        started.is_ok(),
        "b never started on a's candidate tip: {started:?}"
    );
    let out = repo.orch(&["reject", "a", "--note", "say it twice"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = run.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stdout.contains("candidate tip of `a`"),
        "the run says why b stopped: {}",
        out.stdout
    );
    let b = agent_attempts(&repo, "b");
    assert_eq!(b[0]["state"], "abandoned", "{b:#?}");
    assert!(
        b[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("real base")),
        "{b:#?}"
    );
    let t = repo.task("b");
    assert_eq!(t["state"], "done", "{t:#}");
    assert_eq!(t["failures"], 0, "the veto is not b's failure: {t:#}");
    // b's last attempt stood on a's second attempt (speculatively or merged), never the first.
    let a = agent_attempts(&repo, "a");
    assert_eq!(a.len(), 2, "{a:#?}");
    let files = repo.git(&["ls-tree", "--name-only", "orch/integration"]);
    assert!(
        files.contains("a.txt") && files.contains("b.txt"),
        "{files}"
    );
    repo.assert_no_agents_left(Duration::from_secs(10));
}

/// Figures: a 4-deep chain of sim agents, veto window 30 s, with and without speculation.
/// `cargo test --test speculative -- --ignored --nocapture`
#[test]
#[ignore = "takes about three minutes; prints the figures for docs/benchmarks.md"]
fn figures_a_four_deep_chain_with_a_30s_veto_window() {
    let mut took = Vec::new();
    for speculative in [false, true] {
        let repo = Repo::new();
        repo.init(&config("30s", speculative));
        load(&repo, &chain(&["a", "b", "c", "d"], &["sleep 2s"]));
        let start = Instant::now();
        let out = repo.orch(&["run", "--headless"], Duration::from_secs(400));
        assert_eq!(out.code, 0, "{}", out.show());
        let secs = start.elapsed().as_secs_f64();
        println!("4-deep chain, veto 30 s, speculative = {speculative}: {secs:.1} s");
        took.push(secs);
    }
    assert!(
        took[1] < took[0],
        "speculation did not shorten the chain: {took:?}"
    );
}
