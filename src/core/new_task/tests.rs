use super::*;

fn ledger(ids: &[(&str, TaskState)]) -> BTreeMap<String, TaskState> {
    ids.iter().map(|(i, s)| (i.to_string(), *s)).collect()
}

fn draft(prompt: &str) -> Draft {
    Draft {
        prompt: prompt.into(),
        ..Draft::default()
    }
}

fn messages(diags: &[Diagnostic]) -> Vec<String> {
    diags.iter().map(|d| d.to_string()).collect()
}

#[test]
fn a_bare_prompt_gets_a_title_and_an_id_of_its_own() {
    let spec = decide_add(
        &draft("Fix the flaky login test.\nIt fails one run in ten."),
        &ledger(&[]),
    )
    .unwrap();
    assert_eq!(spec.title, "Fix the flaky login test.");
    assert_eq!(spec.id, "fix-the-flaky-login-test");
    assert_eq!(spec.content_hash, content_hash(&spec.prompt));
    // Taken ids get a number; long titles are cut at a word.
    let spec = decide_add(
        &draft("Fix the flaky login test"),
        &ledger(&[("fix-the-flaky-login-test", TaskState::Done)]),
    )
    .unwrap();
    assert_eq!(spec.id, "fix-the-flaky-login-test-2");
    let long = "Rewrite the configuration loader so that every error carries its file and line";
    let spec = decide_add(&draft(long), &ledger(&[])).unwrap();
    assert_eq!(spec.id, "rewrite-the-configuration-loader-so-that");
    assert!(spec.title.ends_with('…') && spec.title.chars().count() == 73);
    // Nothing usable for an id: "task".
    assert_eq!(decide_add(&draft("¿¡!"), &ledger(&[])).unwrap().id, "task");
}

#[test]
fn every_flag_is_validated_like_a_plan_task_and_named_in_its_error() {
    let d = Draft {
        prompt: "do it".into(),
        id: Some("Bad Id".into()),
        after: vec!["buld".into()],
        budget: Some("time=0s,tokens=lots,cost=3".into()),
        checks: vec![" ".into()],
        ..Draft::default()
    };
    let err = decide_add(&d, &ledger(&[("build", TaskState::Done)])).unwrap_err();
    let all = messages(&err).join("\n");
    for want in [
        "orch-tui add: error: --id: bad task id `Bad Id`",
        "--budget: unknown key `cost` in budget of task `Bad Id`",
        "--budget: budget of task `Bad Id` time is zero",
        "--budget: budget of task `Bad Id` tokens must be a non-negative integer, found string",
        "--check: task `Bad Id` has an empty check",
        "--after: unknown dependency `buld`",
        "did you mean `build`?",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}

#[test]
fn a_taken_id_and_a_self_dependency_are_refused() {
    let d = Draft {
        prompt: "x".into(),
        id: Some("a".into()),
        after: vec!["a".into()],
        ..Draft::default()
    };
    let all =
        messages(&decide_add(&d, &ledger(&[("a", TaskState::Failed)])).unwrap_err()).join("\n");
    assert!(
        all.contains("--id: task id `a` is taken (that task is failed)"),
        "{all}"
    );
    assert!(all.contains("`orch-tui edit a`"), "{all}");
    assert!(
        all.contains("--after: task `a` cannot depend on itself"),
        "{all}"
    );
}

#[test]
fn flags_round_trip_through_the_plan_parser() {
    let d = Draft {
        prompt: "say \"hi\"\\ and\tgo\nline two".into(),
        title: Some("Greet".into()),
        after: vec!["a".into(), "b".into()],
        agent: Some("codex".into()),
        budget: Some("time=5m, tokens=400_000, cost_usd=2.5".into()),
        priority: Some(-3),
        checks: vec!["cargo test -q".into()],
        ..Draft::default()
    };
    let spec = decide_add(
        &d,
        &ledger(&[("a", TaskState::Done), ("b", TaskState::Pending)]),
    )
    .unwrap();
    assert_eq!(spec.prompt, d.prompt);
    assert_eq!(spec.depends_on, ["a", "b"]);
    assert_eq!(spec.agent.as_deref(), Some("codex"));
    assert_eq!(spec.budget.time_ms, Some(300_000));
    assert_eq!(spec.budget.tokens, Some(400_000));
    assert_eq!(spec.budget.cost_usd, Some(2.5));
    assert_eq!(spec.priority, -3);
    assert_eq!(spec.checks, ["cargo test -q"]);
    // The agent line is where a config check would point: it maps back to --agent.
    let (_, flags) = draft_text(&d, &ledger(&[]));
    assert_eq!(flags[spec.agent_line - 1], "--agent");
}

#[test]
fn edits_reach_only_tasks_whose_next_attempt_has_not_started() {
    let old = content_hash("old");
    for s in EDITABLE {
        let e = decide_edit("t", *s, &old, "new").unwrap().unwrap();
        assert_eq!(e.content_hash, content_hash("new"));
        assert_eq!(e.state, *s);
    }
    assert_eq!(decide_edit("t", TaskState::Pending, &old, "old"), Ok(None));
    let err = decide_edit("t", TaskState::Working, &old, "new").unwrap_err();
    assert!(err.contains("`orch-tui pause` it first"), "{err}");
    let err = decide_edit("t", TaskState::Ready, &old, "new").unwrap_err();
    assert!(err.contains("it is ready"), "{err}");
    let err = decide_edit("t", TaskState::Done, &old, "new").unwrap_err();
    assert!(err.contains("it is done"), "{err}");
    let err = decide_edit("t", TaskState::Failed, &old, "  \n").unwrap_err();
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn toml_strings_hold_any_text() {
    let nasty = "a\"b\\c\u{1b}[31m\u{7f}é\r\n";
    let text = format!("v = {}", toml_string(nasty));
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(parsed["v"].as_str(), Some(nasty));
}
