use super::*;

fn rule(name: &str, state: ScreenState, any: &[&str]) -> ScreenRule {
    ScreenRule {
        name: name.into(),
        state,
        any: any.iter().map(|s| s.to_string()).collect(),
        all: Vec::new(),
        none: Vec::new(),
        bottom: 0,
        disabled: false,
        on: Layer::Screen,
        when: None,
        tool: None,
        capture: None,
    }
}

#[test]
fn builtin_rules_parse() {
    for a in ["claude", "codex", "aider", "generic"] {
        let text = builtin_text(a);
        parse_rules_file(a, text).unwrap_or_else(|d| panic!("{a}: {d:?}"));
    }
    assert!(!builtin("claude").is_empty());
    assert!(!builtin("codex").is_empty());
}

#[test]
fn first_matching_rule_wins_and_is_named() {
    let rules = vec![
        rule(
            "dialog",
            ScreenState::Waiting(WaitingFor::FirstRun),
            &["trust this folder"],
        ),
        rule("prompt", ScreenState::Idle, &["❯"]),
    ];
    let m = classify(&rules, "Do you trust this folder?\n❯ 1. Yes\n\n\n").unwrap();
    assert_eq!(m.rule, "dialog");
    assert_eq!(m.excerpt, "Do you trust this folder?");
    assert_eq!(classify(&rules, "❯ \n").unwrap().state, ScreenState::Idle);
    assert_eq!(classify(&rules, "nothing\n"), None);
}

#[test]
fn none_all_and_bottom_narrow_a_rule() {
    let mut r = rule("idle", ScreenState::Idle, &["❯"]);
    r.none = vec!["esc to interrupt".into()];
    r.all = vec!["? for shortcuts".into()];
    r.bottom = 2;
    let rules = vec![r];
    assert!(classify(&rules, "❯ old\nx\ny\n? for shortcuts\n❯\n").is_some());
    assert!(classify(&rules, "❯\n? for shortcuts\nesc to interrupt\n").is_none());
    // `none` vetoes from anywhere on the screen.
    assert!(classify(&rules, "esc to interrupt\na\nb\n? for shortcuts\n❯\n").is_none());
    // The prompt scrolled above the bottom rows does not count.
    assert!(classify(&rules, "❯\na\nb\n? for shortcuts\n").is_none());
}

#[test]
fn user_rules_replace_by_name_or_go_first() {
    let text = r#"
[[screen_rules.claude]]
name = "mine"
state = "waiting-question"
any = ["Shall I"]

[[screen_rules.claude]]
name = "claude-idle-prompt"
disabled = true
"#;
    let cfg = crate::core::config::parse_config("c.toml", text).unwrap();
    let rules = merged("claude", &cfg.screen_rules);
    assert_eq!(rules[0].name, "mine");
    assert!(
        rules
            .iter()
            .any(|r| r.name == "claude-idle-prompt" && r.disabled)
    );
    assert_eq!(rules.len(), builtin("claude").len() + 1);
}

#[test]
fn bad_user_rules_are_reported_with_positions() {
    let text = "[[screen_rules.claud]]\nname = \"x\"\n\n[[screen_rules.codex]]\nname = \"y\"\nstate = \"sleepy\"\nany = [\"z\"]\n\n[[screen_rules.codex]]\nname = \"e\"\nstate = \"idle\"\nany = [\"\"]\n";
    let errs = crate::core::config::parse_config("c.toml", text).unwrap_err();
    let msgs: Vec<String> = errs
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.col, d.message))
        .collect();
    assert!(
        msgs.iter().any(|m| m.contains("unknown adapter `claud`")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("6:") && m.contains("unknown state `sleepy`")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("empty string")), "{msgs:?}");
}

#[test]
fn debounce_reports_a_state_once_it_held() {
    let w = ScreenMatch {
        state: ScreenState::Waiting(WaitingFor::Permission),
        rule: "perm".into(),
        excerpt: String::new(),
        layer: Layer::Screen,
        call: None,
    };
    let b = ScreenMatch {
        state: ScreenState::Working,
        rule: "busy".into(),
        excerpt: String::new(),
        layer: Layer::Screen,
        call: None,
    };
    let mut d = Debounce::new(300);
    assert_eq!(d.observe(Some(&b), 0), None);
    assert_eq!(
        d.observe(Some(&b), 300).map(|m| m.rule),
        Some("busy".into())
    );
    assert_eq!(d.observe(Some(&w), 400), None);
    // A flicker back resets the candidate.
    assert_eq!(d.observe(Some(&b), 500), None);
    assert_eq!(d.observe(Some(&w), 600), None);
    assert_eq!(d.observe(None, 700), None);
    assert_eq!(d.observe(Some(&w), 800), None);
    assert_eq!(
        d.observe(Some(&w), 1100).map(|m| m.rule),
        Some("perm".into())
    );
    assert_eq!(
        d.state(),
        Some(ScreenState::Waiting(WaitingFor::Permission))
    );
    assert_eq!(d.observe(Some(&w), 2000), None);
}

/// Codex's approval notification (OSC 9) settles "waiting for permission" before the screen
/// names the command: the prompt's call on screen is still reported, once it held, so the
/// `[permissions]` rules can answer it; the same call again is not news.
#[test]
fn a_call_on_screen_is_news_after_a_notification_said_waiting() {
    let perm = |call: Option<(&str, &str)>| ScreenMatch {
        state: ScreenState::Waiting(WaitingFor::Permission),
        rule: "codex-approval-command".into(),
        excerpt: String::new(),
        layer: Layer::Screen,
        call: call.map(|(t, s)| (t.to_string(), s.to_string())),
    };
    let mut d = Debounce::new(300);
    d.settle(ScreenState::Waiting(WaitingFor::Permission));
    assert_eq!(
        d.observe(Some(&perm(None)), 0),
        None,
        "no call: nothing new"
    );
    assert_eq!(d.observe(Some(&perm(Some(("Bash", "echo hi")))), 100), None);
    let m = d.observe(Some(&perm(Some(("Bash", "echo hi")))), 400);
    assert_eq!(
        m.and_then(|m| m.call),
        Some(("Bash".into(), "echo hi".into()))
    );
    assert_eq!(d.observe(Some(&perm(Some(("Bash", "echo hi")))), 900), None);
    // The prompt half redrawn (no call readable) changes nothing; a next prompt is news.
    assert_eq!(d.observe(Some(&perm(None)), 1000), None);
    assert_eq!(d.observe(Some(&perm(Some(("Bash", "ls")))), 1100), None);
    assert!(d.observe(Some(&perm(Some(("Bash", "ls")))), 1400).is_some());
}

#[test]
fn permission_prompts_name_their_call_for_the_permission_rules() {
    let codex = builtin("codex");
    let edit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/screens/codex/approval.txt"
    ))
    .unwrap();
    let m = classify(&codex, &edit).unwrap();
    assert_eq!(m.rule, "codex-approval-edit");
    assert_eq!(
        m.call,
        Some(("Edit".into(), "/tmp/.tmphD4RhM/a.txt".into()))
    );
    // Its command approval as 0.169.0 draws it (a command its execpolicy says to ask about).
    let run = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/screens/codex/approval-command.txt"
    ))
    .unwrap();
    let m = classify(&codex, &run).unwrap();
    assert_eq!(m.rule, "codex-approval-command");
    assert_eq!(m.call, Some(("Bash".into(), "touch out.txt".into())));

    let aider = builtin("aider");
    let screen =
        "Tokens: 1k sent\nrm -rf build\nRun shell command? (Y)es/(N)o/(D)on't ask again [Yes]: ";
    let m = classify(&aider, screen).unwrap();
    assert_eq!(m.state, ScreenState::Waiting(WaitingFor::Permission));
    assert_eq!(m.call, Some(("Bash".into(), "rm -rf build".into())));
    let screen = "src/new.rs\nCreate new file? (Y)es/(N)o [Yes]: ";
    assert_eq!(
        classify(&aider, screen).unwrap().call,
        Some(("Edit".into(), "src/new.rs".into()))
    );
}

#[test]
fn a_capture_must_be_a_pattern_with_a_group_and_come_with_its_tool() {
    let bad = "[[rule]]\nname = \"x\"\nstate = \"waiting-permission\"\nany = [\"?\"]\n\
               tool = \"Bash\"\ncapture = \"(unclosed\"\n";
    let d = parse_rules_file("r.toml", bad).unwrap_err();
    assert!(d[0].message.contains("not a regular expression"), "{d:?}");
    let no_group = bad.replace("(unclosed", "x");
    let d = parse_rules_file("r.toml", &no_group).unwrap_err();
    assert!(d[0].message.contains("no group"), "{d:?}");
    let no_tool = bad
        .replace("tool = \"Bash\"\n", "")
        .replace("(unclosed", "(x)");
    let d = parse_rules_file("r.toml", &no_tool).unwrap_err();
    assert!(d[0].message.contains("both `tool` and `capture`"), "{d:?}");
    let layer = "[[rule]]\nname = \"x\"\nstate = \"idle\"\non = \"smoke\"\nany = [\"a\"]\n";
    let d = parse_rules_file("r.toml", layer).unwrap_err();
    assert!(d[0].message.contains("unknown layer `smoke`"), "{d:?}");
}
