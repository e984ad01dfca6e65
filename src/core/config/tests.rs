//! Unit tests of config merging; the bad-input corpus is in tests/bad_input.rs.

use super::*;
use crate::core::plan::{Plan, TaskSpec};

#[test]
fn embedded_defaults_parse_without_errors() {
    let mut sink = Sink::new(DEFAULTS_FILE, DEFAULT_CONFIG_TOML);
    let mut cfg = Config::default();
    apply_file(&mut sink, &mut cfg);
    assert_eq!(
        sink.diags,
        vec![],
        "{}",
        crate::core::diag::render_all(&sink.diags)
    );
    assert_eq!(cfg, default_config());
    assert_eq!(cfg.slots, 4);
    assert_eq!(cfg.default_agent, "");
    assert_eq!(cfg.integration_branch, "orch/integration");
    assert_eq!(cfg.stop_grace_ms, 3_000);
    let sim = &cfg.agents["sim"];
    assert_eq!(sim.command, ["{orch}", "sim-agent"]);
    assert_eq!(sim.adapter, Adapter::Sim);
    assert_eq!(sim.author_email, "sim@orch.invalid");
    assert_eq!(cfg.agents["claude"].adapter, Adapter::Claude);
    assert_eq!(
        cfg.agents["claude"].env["CLAUDE_CODE_DISABLE_ALTERNATE_SCREEN"],
        "1"
    );
    assert_eq!(cfg.task_budget.time_ms, Some(1_200_000));
    assert_eq!(cfg.run_budget, Budget::default());
    assert_eq!(
        cfg.retry,
        RetryPolicy {
            max_attempts: 3,
            backoff_base_ms: 2_000,
            backoff_cap_ms: 300_000
        }
    );
    assert_eq!(cfg.funnel.autonomy, Autonomy::OnTheLoop);
    assert_eq!(cfg.funnel.reviewer, None);
    assert_eq!(cfg.funnel.veto_window_ms, 120_000);
    assert_eq!(cfg.funnel.check_timeout_ms, 600_000);
    assert_eq!(cfg.log_rotate_bytes, 16_777_216);
    assert_eq!(cfg.git.timeout_ms, 600_000);
    assert_eq!(cfg.ui.theme, "dark");
}

#[test]
fn the_example_config_documents_every_default() {
    // In config.example.toml, "# key = value" lines show each setting at its default and "##"
    // lines explain. As is, and with every setting uncommented, it must give the defaults back.
    let text = include_str!("../../../config.example.toml");
    assert_eq!(
        parse_config("config.example.toml", text),
        Ok(default_config())
    );
    let uncommented: String = text
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|_| !l.starts_with("##"))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        parse_config("config.example.toml", &uncommented),
        Ok(default_config())
    );
    // Every top-level key and section is shown.
    for key in TOP_KEYS {
        assert!(
            uncommented.contains(&format!("\n{key} =")) || uncommented.contains(&format!("[{key}")),
            "{key}"
        );
    }
}

#[test]
fn user_file_overrides_key_by_key() {
    let text = r#"
slots = 2
[agents.claude]
max_concurrent = 1
env = { EXTRA = "x" }
[agents.script]
command = ["./agent.sh", "{task}"]
adapter = "generic"
[budgets]
task = { tokens = 1000 }
run = { cost_usd = 50 }
[funnel]
reviewer = "claude"
autonomy = "in-the-loop"
[git]
timeout = "90s"
"#;
    let cfg = parse_config("config.toml", text).unwrap();
    let d = default_config();
    assert_eq!(cfg.slots, 2);
    let claude = &cfg.agents["claude"];
    assert_eq!(claude.max_concurrent, 1);
    assert_eq!(claude.command, d.agents["claude"].command);
    assert_eq!(claude.env.len(), 2);
    let script = &cfg.agents["script"];
    assert_eq!(script.adapter, Adapter::Generic);
    assert_eq!(script.max_concurrent, 1);
    assert_eq!(script.author_email, "script@orch.invalid");
    assert_eq!(
        cfg.task_budget,
        Budget {
            time_ms: Some(1_200_000),
            tokens: Some(1000),
            cost_usd: None
        }
    );
    assert_eq!(cfg.run_budget.cost_usd, Some(50.0));
    assert_eq!(cfg.funnel.reviewer.as_deref(), Some("claude"));
    assert_eq!(cfg.funnel.autonomy, Autonomy::InTheLoop);
    assert_eq!(cfg.git.timeout_ms, 90_000);
    assert_eq!(cfg.retry, d.retry);
}

#[test]
fn cross_checks_point_at_the_user_key() {
    let text = "default_agent = \"ghost\"\n[funnel]\nreviewer = \"nobody\"\n[retry]\nbackoff_base = \"10m\"\n[agents.new]\nmax_concurrent = 1\n";
    let errs = parse_config("c.toml", text).unwrap_err();
    let got: Vec<(usize, &str)> = errs.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (1, "default_agent `ghost` is not an agent profile"),
            (3, "[funnel] reviewer `nobody` is not an agent profile"),
            (5, "[retry] backoff_cap is shorter than backoff_base"),
            (6, "agent profile `new` has no `command`"),
            (6, "agent profile `new` has no `adapter`"),
        ]
    );
}

#[test]
fn placeholders_are_checked_but_json_braces_pass() {
    assert_eq!(placeholders_in("{prompt}"), ["prompt"]);
    assert_eq!(
        placeholders_in("--x={task}-{worktree}"),
        ["task", "worktree"]
    );
    assert!(placeholders_in("{\"a\": 1}").is_empty());
    let errs = parse_config(
        "c.toml",
        "[agents.x]\ncommand = [\"a\", \"{promt}\"]\nadapter = \"generic\"\n",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].message.contains("unknown placeholder `{promt}`"),
        "{}",
        errs[0]
    );
}

#[test]
fn branch_names_are_checked() {
    assert_eq!(branch_problem("orch/integration"), None);
    for bad in ["", "-x", "a..b", "a b", "x.lock", "a/", "a:b"] {
        assert!(branch_problem(bad).is_some(), "{bad}");
    }
}

#[test]
fn plan_agents_and_capabilities_are_checked_against_the_config() {
    let mut cfg = default_config();
    if let Some(p) = cfg.agents.get_mut("codex") {
        p.capabilities = vec!["python".into()];
    }
    let task = |id: &str, agent: Option<&str>, line: usize, caps: &[&str]| TaskSpec {
        id: id.into(),
        agent: agent.map(String::from),
        agent_line: if agent.is_some() { line } else { 0 },
        line,
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        ..TaskSpec::default()
    };
    let plan = Plan {
        name: "p".into(),
        file: "plan.toml".into(),
        tasks: vec![
            task("a", Some("ghost"), 3, &[]),
            task("b", Some("ghost"), 3, &[]),
            task("c", Some("codex"), 9, &["rust"]),
            task("d", None, 12, &["rust"]),
        ],
    };
    let diags = check_plan_against_config(&plan, &cfg);
    let got: Vec<(usize, &str)> = diags.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (
                3,
                "agent `ghost` is not defined in the config (used by tasks `a`, `b`)"
            ),
            (
                9,
                "task `c` needs capabilities [rust] that agent `codex` lacks"
            ),
            (
                12,
                "task `d` names no agent, and the config has no default_agent"
            ),
        ]
    );
    // With a default agent, `d` runs on it; on the simulator, validate is told so.
    cfg.default_agent = "sim".into();
    let on_sim = crate::core::config::tasks_on_simulator(&plan, &cfg);
    assert_eq!(on_sim, vec![("sim".to_string(), vec!["d"])]);
}

#[test]
fn worktree_reuse_names_paths_inside_the_worktree() {
    let cfg = parse_config(
        "c.toml",
        "[worktree]\nreuse = [\"target\", \"/web/node_modules/\"]\n",
    )
    .expect("valid");
    assert_eq!(cfg.worktree.reuse, ["target", "web/node_modules"]);
    assert_eq!(default_config().worktree.reuse, Vec::<String>::new());
    let errs = parse_config(
        "c.toml",
        "[worktree]\nreuse = [\"../elsewhere\", \"\", \".git/objects\", \"*.o\", \"ok\"]\n",
    )
    .expect_err("bad entries");
    let messages: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
    assert_eq!(errs.len(), 4, "{messages:#?}");
    assert!(messages[0].starts_with("c.toml:2:10: error: [worktree] reuse entry \"../elsewhere\" must stay inside the worktree"), "{messages:#?}");
    assert!(
        messages
            .iter()
            .all(|m| m.contains("hint: name an ignored folder"))
    );
}
