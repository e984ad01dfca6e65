//! Every file of the bad-input corpus (tests/corpus/plans, tests/corpus/configs) through the real
//! loaders: each must fail with exactly the listed errors, each at the listed line, so a user is
//! always told where the problem is and what to do.

use std::collections::BTreeSet;
use std::path::Path;

use orch_tui::cli::load::{load_config, load_config_required, load_plan, load_plan_checked};
use orch_tui::core::config::default_config;
use orch_tui::core::diag::{Diagnostic, render_all};

/// (corpus file, line, fragment of the message). A file with several errors has several rows;
/// the file must produce exactly that many.
const PLANS: &[(&str, usize, &str)] = &[
    ("bad_duration.toml", 5, "bad duration \"20 minutes\""),
    ("bad_id.toml", 2, "bad task id `Extract_Client`"),
    (
        "both_prompt_and_spec.toml",
        5,
        "has both `prompt` and `spec`",
    ),
    ("comments_only.toml", 1, "the plan is empty"),
    ("cycle.toml", 9, "dependency cycle: a -> b -> c -> a"),
    (
        "duplicate_id.toml",
        10,
        "duplicate task id `build` (first defined on line 5)",
    ),
    ("duplicate_key.toml", 4, "duplicate key `title`"),
    ("empty.toml", 1, "the plan is empty"),
    ("empty_title.toml", 3, "task `a` has an empty title"),
    ("many_errors.toml", 3, "unknown key `owner` in [plan]"),
    ("many_errors.toml", 6, "[defaults] max_attempts is 0"),
    (
        "many_errors.toml",
        12,
        "bad duration \"20\": the number has no unit",
    ),
    (
        "many_errors.toml",
        12,
        "tokens must be a non-negative integer, found float",
    ),
    (
        "many_errors.toml",
        16,
        "task `use-client` has an empty title",
    ),
    (
        "many_errors.toml",
        18,
        "unknown dependency `extract-clinet` in task `use-client`",
    ),
    (
        "many_errors.toml",
        18,
        "task `use-client` depends on itself",
    ),
    (
        "many_errors.toml",
        19,
        "risk of task `use-client` is `medium`",
    ),
    (
        "many_errors.toml",
        22,
        "duplicate task id `extract-client` (first defined on line 9)",
    ),
    (
        "many_errors.toml",
        24,
        "cannot read spec file `specs/nope.md`",
    ),
    ("max_attempts_zero.toml", 5, "max_attempts of task `a` is 0"),
    (
        "missing_spec.toml",
        7,
        "cannot read spec file `specs/does-not-exist.md` of task `a`: no such file",
    ),
    (
        "negative_budget.toml",
        10,
        "tokens is -5; it must be a non-negative integer",
    ),
    (
        "negative_cost.toml",
        2,
        "cost_usd is -0.5; it cannot be negative",
    ),
    (
        "neither_prompt_nor_spec.toml",
        4,
        "task `a` has neither `prompt` nor `spec`",
    ),
    ("no_tasks.toml", 1, "the plan has no tasks"),
    (
        "non_numeric_budget.toml",
        5,
        "tokens must be a non-negative integer, found string",
    ),
    ("not_toml.toml", 3, "TOML syntax"),
    ("not_toml.toml", 4, "TOML syntax"),
    ("self_dependency.toml", 5, "task `a` depends on itself"),
    (
        "task_not_array.toml",
        4,
        "`task` must be an array of tables",
    ),
    (
        "unknown_agent.toml",
        5,
        "agent `gpt-9` is not defined in the config (used by tasks `a`, `b`)",
    ),
    (
        "unknown_dependency.toml",
        13,
        "unknown dependency `lint` in task `test`",
    ),
    (
        "unknown_key_budget.toml",
        8,
        "unknown key `dollars` in budget of task `a`",
    ),
    (
        "unknown_key_task.toml",
        8,
        "unknown key `depend_on` in task `a`",
    ),
    (
        "unknown_key_top.toml",
        4,
        "unknown key `default` in the plan file (top level)",
    ),
    ("zero_time.toml", 5, "budget of task `a` time is zero"),
];

const CONFIGS: &[(&str, usize, &str)] = &[
    (
        "bad_adapter.toml",
        3,
        "unknown adapter `gpt` in [agents.mine]",
    ),
    ("bad_autonomy.toml", 2, "unknown autonomy `on-loop`"),
    (
        "bad_duration.toml",
        1,
        "stop_grace: bad duration \"3 seconds\"",
    ),
    ("bad_placeholder.toml", 3, "unknown placeholder `{task_id}`"),
    ("bad_theme.toml", 2, "unknown theme `solarized`"),
    ("empty_command.toml", 2, "[agents.claude] command is empty"),
    (
        "negative_slots.toml",
        2,
        "slots is -1, but must be between 1 and 64",
    ),
    (
        "new_agent_incomplete.toml",
        1,
        "agent profile `script` has no `command`",
    ),
    (
        "new_agent_incomplete.toml",
        1,
        "agent profile `script` has no `adapter`",
    ),
    ("not_toml.toml", 1, "TOML syntax: invalid unquoted key"),
    ("not_toml.toml", 1, "TOML syntax: key with no value"),
    (
        "unknown_default_agent.toml",
        1,
        "default_agent `claud` is not an agent profile",
    ),
    (
        "unknown_key.toml",
        2,
        "unknown key `integration-branch` in the config (top level)",
    ),
    (
        "unknown_key_agent.toml",
        3,
        "unknown key `concurrency` in [agents.claude]",
    ),
    ("zero_git_timeout.toml", 3, "[git] timeout is zero"),
];

fn corpus_files(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect()
}

/// Checks one file's diagnostics against its rows of the table.
fn check(dir: &str, name: &str, table: &[(&str, usize, &str)], diags: &[Diagnostic]) {
    let path = format!("{dir}/{name}");
    let expected: Vec<_> = table.iter().filter(|(f, _, _)| *f == name).collect();
    let shown = render_all(diags);
    assert_eq!(
        diags.len(),
        expected.len(),
        "{path}: wrong number of errors:\n{shown}"
    );
    for (_, line, fragment) in expected {
        assert!(
            diags
                .iter()
                .any(|d| d.line == *line && d.message.contains(fragment)),
            "{path}: expected line {line} with {fragment:?}, got:\n{shown}"
        );
    }
    for d in diags {
        // Every error names the file, points inside it, and says what to do.
        assert_eq!(d.file, path);
        assert!(d.line > 0 && d.col > 0, "{d}");
        assert!(!d.hint.is_empty(), "{d}");
        assert!(
            d.to_string()
                .starts_with(&format!("{path}:{}:{}: error: ", d.line, d.col))
        );
    }
}

#[test]
fn every_bad_plan_is_refused_with_its_errors_and_lines() {
    let dir = "tests/corpus/plans";
    let files = corpus_files(dir);
    let listed: BTreeSet<String> = PLANS.iter().map(|(f, _, _)| f.to_string()).collect();
    assert_eq!(
        files, listed,
        "every corpus file needs its expectations here, and vice versa"
    );
    let cfg = default_config();
    for name in &files {
        let path = format!("{dir}/{name}");
        let diags = load_plan_checked(Path::new(&path), &cfg).expect_err(&path);
        check(dir, name, PLANS, &diags);
    }
}

#[test]
fn every_bad_config_is_refused_with_its_errors_and_lines() {
    let dir = "tests/corpus/configs";
    let files = corpus_files(dir);
    let listed: BTreeSet<String> = CONFIGS.iter().map(|(f, _, _)| f.to_string()).collect();
    assert_eq!(
        files, listed,
        "every corpus file needs its expectations here, and vice versa"
    );
    for name in &files {
        let path = format!("{dir}/{name}");
        let diags = load_config(Some(Path::new(&path))).expect_err(&path);
        check(dir, name, CONFIGS, &diags);
    }
}

#[test]
fn the_full_report_of_a_plan_with_many_errors() {
    let diags = load_plan(Path::new("tests/corpus/plans/many_errors.toml")).unwrap_err();
    insta::assert_snapshot!(render_all(&diags));
}

#[test]
fn a_good_plan_reads_its_spec_relative_to_the_plan_file() {
    let cfg = load_config(Some(Path::new("tests/corpus/good/config.toml"))).unwrap();
    assert_eq!(cfg.slots, 2);
    assert_eq!(cfg.default_agent, "claude");
    let plan = load_plan_checked(Path::new("tests/corpus/good/plan.toml"), &cfg).unwrap();
    assert_eq!(plan.name, "good");
    assert_eq!(plan.tasks[0].prompt, "Write the thing.\n");
    assert_eq!(
        plan.tasks[0].spec_path.as_deref(),
        Some("specs/spec-task.md")
    );
    assert_eq!(plan.tasks[0].content_hash.len(), 16);
    assert_eq!(plan.tasks[1].budget.time_ms, Some(300_000));
}

#[test]
fn a_missing_plan_file_is_a_whole_file_error() {
    let diags = load_plan(Path::new("tests/corpus/no-such-plan.toml")).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].line, 0);
    assert_eq!(
        diags[0].to_string().lines().next(),
        Some("tests/corpus/no-such-plan.toml: error: cannot read the plan: no such file")
    );
}

#[test]
fn a_missing_config_file_means_defaults_unless_it_was_named() {
    let missing = Path::new("tests/corpus/no-such-config.toml");
    assert_eq!(load_config(None), Ok(default_config()));
    assert_eq!(load_config(Some(missing)), Ok(default_config()));
    let diags = load_config_required(missing).unwrap_err();
    assert_eq!(diags[0].line, 0);
    assert!(diags[0].message.contains("no such file"), "{}", diags[0]);
}

#[test]
fn unreadable_inputs_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("plan.toml");
    std::fs::write(&bin, [b'a', b'=', 0xff, 0xfe]).unwrap();
    let diags = load_plan(&bin).unwrap_err();
    assert!(diags[0].message.contains("not UTF-8"), "{}", diags[0]);
    // A directory where the plan should be.
    let diags = load_plan(dir.path()).unwrap_err();
    assert_eq!(diags[0].line, 0);
    // A byte-order mark is tolerated.
    let bom = dir.path().join("bom.toml");
    std::fs::write(
        &bom,
        "\u{feff}[[task]]\nid = \"a\"\ntitle = \"A\"\nprompt = \"p\"\n",
    )
    .unwrap();
    assert_eq!(load_plan(&bom).unwrap().tasks[0].line, 1);
}
