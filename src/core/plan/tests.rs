//! Unit tests of plan parsing; the bad-input corpus is in tests/bad_input.rs.

use super::*;

fn no_specs(_: &str) -> Result<String, String> {
    Err("no specs in this test".to_string())
}

fn parse(text: &str) -> Result<Plan, Vec<Diagnostic>> {
    parse_plan("plan.toml", text, &no_specs)
}

const GOOD: &str = r#"
[plan]
name = "payments-refactor"

[defaults]
agent = "claude"
max_attempts = 3
budget = { time = "20m", tokens = 400_000, cost_usd = 3.0 }

[[task]]
id = "extract-client"
title = "Extract the HTTP client"
prompt = "Move it."
capabilities = ["rust"]
priority = 5
checks = ["cargo test -q"]

[[task]]
id = "use-client"
title = "Use it"
spec = "specs/use.md"
depends_on = ["extract-client"]
agent = "codex"
max_attempts = 2
budget = { time = "5m" }
risk = "high"
"#;

#[test]
fn a_good_plan_loads_with_defaults_applied() {
    let specs = |p: &str| {
        if p == "specs/use.md" {
            Ok("Use the client.\n".to_string())
        } else {
            Err("not found".to_string())
        }
    };
    let plan = parse_plan("plan.toml", GOOD, &specs).unwrap();
    assert_eq!(plan.name, "payments-refactor");
    let [a, b] = &plan.tasks[..] else {
        panic!("two tasks")
    };
    assert_eq!(a.agent.as_deref(), Some("claude"));
    assert_eq!(a.agent_line, 6);
    assert_eq!(a.line, 10);
    assert_eq!(a.max_attempts, Some(3));
    assert_eq!(
        a.budget,
        Budget {
            time_ms: Some(1_200_000),
            tokens: Some(400_000),
            cost_usd: Some(3.0)
        }
    );
    assert_eq!(a.content_hash, content_hash("Move it."));
    assert!(!a.risk_high);
    assert_eq!(b.prompt, "Use the client.\n");
    assert_eq!(b.spec_path.as_deref(), Some("specs/use.md"));
    assert_eq!(b.agent.as_deref(), Some("codex"));
    assert_eq!(b.max_attempts, Some(2));
    // Per-key override: time from the task, the rest from [defaults].
    assert_eq!(
        b.budget,
        Budget {
            time_ms: Some(300_000),
            tokens: Some(400_000),
            cost_usd: Some(3.0)
        }
    );
    assert!(b.risk_high);
    assert_eq!(b.depends_on, vec!["extract-client".to_string()]);
}

#[test]
fn a_plan_without_plan_table_is_named_after_its_file() {
    let plan = parse_plan(
        "dir/my-plan.toml",
        "[[task]]\nid=\"a\"\ntitle=\"A\"\nprompt=\"p\"\n",
        &no_specs,
    )
    .unwrap();
    assert_eq!(plan.name, "my-plan");
    assert_eq!(plan.tasks[0].agent, None);
    assert_eq!(plan.tasks[0].priority, 0);
}

#[test]
fn every_error_is_listed_at_once() {
    let text = "[[task]]\nid = \"A\"\ntitle = \"\"\nprompt = \"p\"\nmax_attempts = 0\nbogus = 1\n";
    let errs = parse(text).unwrap_err();
    let msgs: Vec<String> = errs
        .iter()
        .map(|d| format!("{}: {}", d.line, d.message))
        .collect();
    assert_eq!(
        msgs,
        [
            "2: bad task id `A`",
            "3: task `A` has an empty title",
            "5: max_attempts of task `A` is 0, but must be between 1 and 100",
            "6: unknown key `bogus` in task `A`",
        ]
    );
}

#[test]
fn ids_follow_the_rules() {
    assert!(valid_task_id("a"));
    assert!(valid_task_id("extract-client-2"));
    assert!(!valid_task_id(""));
    assert!(!valid_task_id("-a"));
    assert!(!valid_task_id("Upper"));
    assert!(!valid_task_id("a_b"));
    assert!(!valid_task_id(&"a".repeat(65)));
    assert!(valid_task_id(&"a".repeat(64)));
}

#[test]
fn a_typo_in_a_dependency_gets_a_suggestion() {
    let text = "[[task]]\nid=\"build\"\ntitle=\"b\"\nprompt=\"p\"\n[[task]]\nid=\"test\"\ntitle=\"t\"\nprompt=\"p\"\ndepends_on=[\"biuld\"]\n";
    let errs = parse(text).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 9);
    assert!(errs[0].hint.contains("did you mean `build`"), "{}", errs[0]);
}
