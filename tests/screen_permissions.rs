//! A permission prompt seen only on screen, answered by the config's `[permissions]` rules as
//! Claude's hooks are: the real supervisor runs a FAKE aider (a bash script, not the real CLI)
//! that prints aider's documented confirmation — the command on the line above
//! `Run shell command? (Y)es/(N)o…` — and waits for the answer on its terminal. The aider
//! screen rule takes the command from the screen; a deny rule answers it by typing `n`. A
//! prompt that stays on screen after the rule's key (the fake ignores it) gets the key once
//! more, then goes to the human's inbox with the screen.

mod common;
mod e2e_support;

use std::time::Duration;

use e2e_support::{Repo, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// What aider prints around a shell-command confirmation (aider/io.py `confirm_ask` with the
/// command as its subject); the answer it reads is written to `answer`.
fn fake_aider(answer: &std::path::Path) -> String {
    format!(
        r#"#!/bin/bash
# FAKE aider for orch-tui's tests: documented output only, no model.
echo "Aider v0.86.1 (fake)"
printf '> '
read -r first
# The rest of a multi-line prompt, and the Enter sent apart.
while read -r -t 1 _; do :; done
echo "rm -rf build"
printf "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: "
read -r ans
printf '%s' "$ans" > {answer:?}
printf '\n> '
read -r _
"#
    )
}

#[test]
fn a_deny_rule_answers_aiders_command_prompt_on_screen_by_typing() {
    let repo = Repo::new();
    let answer = repo.root.join("answer");
    let script = repo.root.join("aider");
    std::fs::write(&script, fake_aider(&answer)).expect("fake aider");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let s = serde_json::to_string(script.to_str().expect("utf-8")).expect("json");
    repo.init(&format!(
        "stop_grace = \"500ms\"\ndefault_agent = \"aider\"\n\n[funnel]\nautonomy = \"out-of-the-loop\"\n\n\
         [agents.aider]\nmode = \"interactive\"\ncommand = [{s}]\ninteractive = [{s}]\n\n\
         [permissions]\ndeny = [\"Bash(rm *)\"]\n"
    ));
    let plan = repo.write_plan(
        "[plan]\nname = \"p\"\n\n[[task]]\nid = \"t\"\ntitle = \"t\"\nprompt = \"tidy up\"\n",
    );
    let run = repo.spawn(&["run", "--headless", "--plan", plan.to_str().expect("utf-8")]);
    let typed = wait_for(LIMIT, || {
        std::fs::read_to_string(&answer)
            .ok()
            .filter(|a| !a.is_empty())
            .ok_or(())
    })
    .unwrap_or_else(|()| panic!("the prompt was never answered: {:#}", repo.status()));
    assert_eq!(typed, "n", "the deny rule's key was typed");
    let events = repo.orch(
        &["events", "--json", "--task", "t"],
        Duration::from_secs(30),
    );
    let decided: Vec<Value> = events
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "permission" && e["data"]["decision"].is_string())
        .collect();
    assert_eq!(decided.len(), 1, "{decided:#?}");
    let d = &decided[0];
    assert_eq!(d["actor"], "supervisor");
    assert_eq!(d["data"]["decision"], "deny");
    assert_eq!(d["data"]["tool"], "Bash");
    assert_eq!(d["data"]["subject"], "rm -rf build");
    assert_eq!(d["data"]["rule"], "deny Bash(rm *)");
    let explained = repo.orch(&["explain", "t"], Duration::from_secs(30));
    assert!(
        explained
            .stdout
            .contains("deny Bash rm -rf build (on its screen), by rule `deny Bash(rm *)`"),
        "{}",
        explained.stdout
    );
    drop(run);
}

/// A FAKE aider whose confirmation ignores the first `ignored` answers (echo off: its screen
/// does not change), writing every answer it read to `answers`.
fn stubborn_aider(answers: &std::path::Path, ignored: usize) -> String {
    format!(
        r#"#!/bin/bash
# FAKE aider for orch-tui's tests: a confirmation that ignores its first answers.
stty -echo
echo "Aider v0.86.1 (fake)"
printf '> '
read -r first
while read -r -t 1 _; do :; done
# No echo: end the prompt's line as the terminal would have.
echo
echo "rm -rf build"
printf "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: "
n=0
while read -r ans; do
  printf '%s' "$ans" >> {answers:?}
  n=$((n + 1))
  if [ "$n" -gt {ignored} ]; then break; fi
done
printf '\n> '
read -r _
"#
    )
}

fn run_stubborn(ignored: usize) -> (Repo, std::path::PathBuf, e2e_support::Running) {
    let repo = Repo::new();
    let answers = repo.root.join("answers");
    let script = repo.root.join("aider");
    std::fs::write(&script, stubborn_aider(&answers, ignored)).expect("fake aider");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let s = serde_json::to_string(script.to_str().expect("utf-8")).expect("json");
    repo.init(&format!(
        "stop_grace = \"500ms\"\ndefault_agent = \"aider\"\n\n[funnel]\nautonomy = \"out-of-the-loop\"\n\n\
         [agents.aider]\nmode = \"interactive\"\ncommand = [{s}]\ninteractive = [{s}]\n\n\
         [permissions]\ndeny = [\"Bash(rm *)\"]\n"
    ));
    let plan = repo.write_plan(
        "[plan]\nname = \"p\"\n\n[[task]]\nid = \"t\"\ntitle = \"t\"\nprompt = \"tidy up\"\n",
    );
    let run = repo.spawn(&["run", "--headless", "--plan", plan.to_str().expect("utf-8")]);
    (repo, answers, run)
}

fn permission_events(repo: &Repo) -> Vec<Value> {
    repo.orch(
        &["events", "--json", "--task", "t"],
        Duration::from_secs(30),
    )
    .stdout
    .lines()
    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    .filter(|e| e["kind"] == "permission")
    .collect()
}

#[test]
fn a_rules_key_the_prompt_ignored_is_typed_once_more() {
    let (repo, answers, run) = run_stubborn(1);
    let typed = wait_for(LIMIT, || {
        std::fs::read_to_string(&answers)
            .ok()
            .filter(|a| a.len() >= 2)
            .ok_or(())
    })
    .unwrap_or_else(|()| panic!("the key was not typed again: {:#}", repo.status()));
    assert_eq!(typed, "nn", "the deny rule's key, twice");
    // The key and its record go out together: the event may land just after the key.
    let events = wait_for(LIMIT, || {
        let events = permission_events(&repo);
        let retried = events.iter().any(|e| {
            e["data"]["excerpt"]
                .as_str()
                .is_some_and(|x| x.contains("typed again"))
        });
        if retried { Ok(events) } else { Err(events) }
    })
    .unwrap_or_else(|e| panic!("the retry is no event: {e:#?}"));
    let decided: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["decision"].is_string())
        .collect();
    assert_eq!(decided.len(), 1, "one decision: {events:#?}");
    drop(run);
}

#[test]
fn a_prompt_that_stays_after_the_rules_key_twice_goes_to_the_human_with_the_screen() {
    let (repo, answers, run) = run_stubborn(usize::MAX >> 1);
    let item = wait_for(LIMIT, || {
        let s = repo.status();
        s["inbox"]
            .as_array()
            .and_then(|i| {
                i.iter()
                    .find(|x| x["task"] == "t" && x["kind"] == "permission")
                    .cloned()
            })
            .ok_or(s)
    })
    .unwrap_or_else(|s| panic!("no inbox item: {s:#}"));
    let text = item["text"].as_str().unwrap_or("");
    assert!(text.contains("rm -rf build"), "{item:#}");
    assert!(text.contains("the prompt stayed"), "{item:#}");
    assert!(
        text.contains("Run shell command?"),
        "the screen's line: {item:#}"
    );
    assert_eq!(
        std::fs::read_to_string(&answers).unwrap_or_default(),
        "nn",
        "typed twice, then left to the human"
    );
    drop(run);
}
