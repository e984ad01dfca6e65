//! The review funnel and merge queue, end to end: real git, real PTYs, the simulated agent.

mod common;
mod funnel_support;

use funnel_support::{Repo, events, git};

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const OUT_OF_LOOP: &str = "[funnel]\nautonomy = \"out-of-the-loop\"\n";

#[test]
fn a_red_check_sends_its_output_to_the_next_attempt_which_passes() {
    // The check passes only when the agent's prompt carried the first failure's output.
    let plan = r#"
[[task]]
id = "fix"
title = "Fix it"
checks = ["grep -q 'MARKER-7' prompt.txt || { echo MARKER-7 missing; exit 1; }"]
prompt = '''
@sim copy-prompt prompt.txt
'''
"#;
    let repo = Repo::new(&[("README.md", "hi\n")], OUT_OF_LOOP, plan);
    let out = repo.start().finish(60);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let t = repo.task("fix");
    assert_eq!(t["state"], "done");
    let agent_attempts = t["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["role"] == "agent")
        .count();
    assert_eq!(agent_attempts, 2, "{t:#}");
    let prompt2 = repo.show("orch/integration:prompt.txt");
    assert!(
        prompt2.contains("MARKER-7 missing"),
        "retry prompt lacks the check output:\n{prompt2}"
    );
    let kinds: Vec<String> = events(&repo, "fix")
        .iter()
        .filter(|e| e["actor"] == "check")
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, ["check_failed", "check_passed"]);
    assert_eq!(repo.integration(), [("fix".to_string(), "2".to_string())]);
}

#[test]
fn a_reviewer_asks_for_changes_then_approves() {
    let plan = r#"
[[task]]
id = "doc"
title = "Write docs"
prompt = '''
@review changes-attempts 1 Please mention the exit codes.
@sim copy-prompt prompt.txt
'''
"#;
    let config = format!("{OUT_OF_LOOP}reviewer = \"sim\"\n");
    let repo = Repo::new(&[("README.md", "hi\n")], &config, plan);
    let out = repo.start().finish(60);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let verdicts: Vec<bool> = events(&repo, "doc")
        .iter()
        .filter(|e| e["kind"] == "verdict")
        .map(|e| e["data"]["approve"] == true)
        .collect();
    assert_eq!(verdicts, [false, true]);
    let prompt2 = repo.show("orch/integration:prompt.txt");
    assert!(
        prompt2.contains("Please mention the exit codes."),
        "{prompt2}"
    );
    assert_eq!(repo.integration(), [("doc".to_string(), "2".to_string())]);
}

#[test]
fn in_the_loop_waits_for_approval_from_the_command_line() {
    let plan = "[[task]]\nid = \"a\"\ntitle = \"A\"\nprompt = \"@sim write a.txt: a\"\n";
    let repo = Repo::new(
        &[("README.md", "hi\n")],
        "[funnel]\nautonomy = \"in-the-loop\"\n",
        plan,
    );
    let run = repo.start();
    repo.wait_for(30, "the approval stage", |s| {
        s["inbox"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["kind"] == "approval"))
    });
    assert!(
        repo.integration().is_empty(),
        "nothing merges before the human approves"
    );
    let ok = repo.run(&["approve", "a"]);
    assert_eq!(code(&ok), 0, "{}", text(&ok));
    let out = run.finish(30);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(repo.integration(), [("a".to_string(), "1".to_string())]);
    let human = events(&repo, "a")
        .iter()
        .any(|e| e["actor"] == "human" && e["data"]["to"] == "approved");
    assert!(human, "the approval is recorded as the human's");
}

#[test]
fn a_veto_inside_the_window_stops_the_merge_and_no_veto_merges_after_it() {
    let plan = r#"
[[task]]
id = "v"
title = "V"
prompt = '''
@sim copy-prompt prompt.txt
'''
"#;
    let config = "[funnel]\nautonomy = \"on-the-loop\"\nveto_window = \"2s\"\n";
    let repo = Repo::new(&[("README.md", "hi\n")], config, plan);
    let run = repo.start();
    repo.wait_for(30, "the veto window", |s| s["tasks"][0]["stage"] == "veto");
    let veto = repo.run(&["reject", "v", "--note", "use the other approach"]);
    assert_eq!(code(&veto), 0, "{}", text(&veto));
    let out = run.finish(60);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // The vetoed attempt never landed; the next one, told why, merged once its window passed.
    assert_eq!(repo.integration(), [("v".to_string(), "2".to_string())]);
    assert!(
        repo.show("orch/integration:prompt.txt")
            .contains("use the other approach")
    );
}

#[test]
fn a_conflict_escalates_naming_the_file_and_merges_after_a_retry_on_the_new_base() {
    let plan = r#"
[[task]]
id = "left"
title = "Left"
priority = 9
prompt = "@sim write same.txt: left"

[[task]]
id = "right"
title = "Right"
prompt = "@sim write same.txt: right"
"#;
    let repo = Repo::new(&[("same.txt", "base\n")], OUT_OF_LOOP, plan);
    let out = repo.start().finish(60);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let s = repo.status();
    let escalated: Vec<&serde_json::Value> = s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "escalated")
        .collect();
    assert_eq!(escalated.len(), 1, "{s:#}");
    let loser = escalated[0]["id"].as_str().unwrap().to_string();
    assert!(
        escalated[0]["reason"]
            .as_str()
            .unwrap()
            .contains("same.txt"),
        "{s:#}"
    );
    let retry = repo.run(&["retry", &loser]);
    assert_eq!(code(&retry), 0, "{}", text(&retry));
    let out = repo.run(&["run", "--headless"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let merged: Vec<String> = repo.integration().into_iter().map(|(t, _)| t).collect();
    assert_eq!(merged.len(), 2, "{merged:?}");
    assert_eq!(merged[1], loser);
}

#[test]
fn an_agent_that_changes_nothing_escalates_and_never_merges() {
    let plan = "[[task]]\nid = \"noop\"\ntitle = \"Noop\"\nprompt = \"@sim write README.md: hi\"\n";
    let repo = Repo::new(&[("README.md", "hi\n")], OUT_OF_LOOP, plan);
    let out = repo.start().finish(60);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let t = repo.task("noop");
    assert_eq!(t["state"], "escalated");
    assert!(
        t["reason"]
            .as_str()
            .unwrap()
            .contains("without changing anything")
    );
    assert!(repo.integration().is_empty());
}

/// Two tasks each pass their check alone, but not together: the second is re-checked on the
/// rebased tree and escalated, and every commit on the integration branch passes the check on
/// exactly its own tree.
#[test]
fn every_integration_commit_passed_its_checks_on_exactly_that_tree() {
    let check = "! { test -f a.txt && test -f b.txt; }";
    let plan = format!(
        r#"
[[task]]
id = "a"
title = "A"
priority = 9
checks = ["{check}"]
prompt = "@sim write a.txt: a"

[[task]]
id = "b"
title = "B"
checks = ["{check}"]
prompt = "@sim write b.txt: b"

[[task]]
id = "c"
title = "C"
depends_on = ["a"]
checks = ["{check}"]
prompt = "@sim write c.txt: c"
"#
    );
    let repo = Repo::new(&[("README.md", "hi\n")], OUT_OF_LOOP, &plan);
    let out = repo.start().finish(60);
    assert_eq!(code(&out), 1, "{}", text(&out));
    // a and b run side by side: whichever merges second meets the other on the rebased tree.
    let (a, b) = (repo.task("a"), repo.task("b"));
    let states = [a["state"].as_str().unwrap(), b["state"].as_str().unwrap()];
    assert!(
        states.contains(&"done") && states.contains(&"escalated"),
        "{a:#}\n{b:#}"
    );
    let loser = if states[0] == "escalated" { &a } else { &b };
    assert!(
        loser["reason"].as_str().unwrap().contains("rebased"),
        "{loser:#}"
    );
    // Re-run the check on every integration commit's own tree.
    let commits = git(&repo.root, &["rev-list", "main..orch/integration"]);
    assert!(!commits.trim().is_empty());
    for c in commits.lines() {
        let wt = repo.root.join(format!(".orch/verify-{c}"));
        git(
            &repo.root,
            &["worktree", "add", "-q", "--detach", wt.to_str().unwrap(), c],
        );
        let ok = std::process::Command::new("sh")
            .args(["-c", check])
            .current_dir(&wt)
            .status()
            .unwrap()
            .success();
        git(
            &repo.root,
            &["worktree", "remove", "--force", wt.to_str().unwrap()],
        );
        assert!(ok, "integration commit {c} fails its check");
    }
}

#[test]
fn kill_9_in_the_middle_of_a_merge_then_resume_loses_and_duplicates_nothing() {
    // A slow check that only runs in the merge queue's re-check (the base moved), so the
    // supervisor can be killed while the task is `merging`.
    let plan = r#"
[[task]]
id = "first"
title = "First"
priority = 9
prompt = "@sim write first.txt: 1"

[[task]]
id = "second"
title = "Second"
checks = ["if test -f first.txt; then sleep 3; fi"]
prompt = """
@sim sleep 700ms
@sim write second.txt: 2
"""
"#;
    let repo = Repo::new(&[("README.md", "hi\n")], OUT_OF_LOOP, plan);
    let run = repo.start();
    repo.wait_for(30, "second merging", |s| {
        s["tasks"].as_array().is_some_and(|ts| {
            ts.iter()
                .any(|t| t["id"] == "second" && t["state"] == "merging")
        })
    });
    run.kill9();
    let out = repo.run(&["run", "--headless"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let merged: Vec<String> = repo.integration().into_iter().map(|(t, _)| t).collect();
    assert_eq!(merged, ["first", "second"], "each task exactly once");
    let backups = git(
        &repo.root,
        &[
            "for-each-ref",
            "--format=%(refname)",
            "refs/orch/backup/second",
        ],
    );
    assert!(!backups.trim().is_empty(), "the pre-rebase commit is kept");
    let integrity = repo.run(&["status"]);
    assert_eq!(code(&integrity), 0);
}
