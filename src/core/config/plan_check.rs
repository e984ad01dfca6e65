//! The checks between a plan and the config it will run with.

use std::collections::BTreeMap;

use super::Config;
use crate::core::diag::Diagnostic;
use crate::core::plan::Plan;

/// Checks a loaded plan against the config: every agent it names exists, and that agent has
/// the capabilities each task lists. Positions point into the plan file.
pub fn check_plan_against_config(plan: &Plan, cfg: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // A `[defaults] agent` is shared by many tasks: one error per place an unknown agent is
    // written, naming the tasks that use it.
    let mut unknown: BTreeMap<(usize, &str), Vec<&str>> = BTreeMap::new();
    let mut agentless = Vec::new();
    for t in &plan.tasks {
        if t.agent.is_none() && cfg.default_agent.is_empty() {
            agentless.push(t);
            continue;
        }
        let name = t.agent.as_deref().unwrap_or(&cfg.default_agent);
        let Some(profile) = cfg.agents.get(name) else {
            unknown.entry((t.agent_line, name)).or_default().push(&t.id);
            continue;
        };
        if profile.capabilities.is_empty() {
            continue;
        }
        let missing: Vec<&str> = t
            .capabilities
            .iter()
            .filter(|c| !profile.capabilities.contains(c))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            out.push(Diagnostic {
                file: plan.file.clone(),
                line: t.line,
                col: 1,
                message: format!(
                    "task `{}` needs capabilities [{}] that agent `{name}` lacks",
                    t.id,
                    missing.join(", ")
                ),
                hint: format!(
                    "add them to [agents.{name}] capabilities, or give the task an agent that has them"
                ),
            });
        }
    }
    let known = cfg
        .agents
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    for ((line, name), tasks) in unknown {
        let used_by: Vec<String> = tasks.iter().map(|t| format!("`{t}`")).collect();
        out.push(Diagnostic {
            file: plan.file.clone(),
            line,
            col: usize::from(line > 0),
            message: format!(
                "agent `{name}` is not defined in the config (used by task{} {})",
                if tasks.len() == 1 { "" } else { "s" },
                used_by.join(", ")
            ),
            hint: format!("use one of {known}, or add [agents.{name}] to .orch/config.toml"),
        });
    }
    for t in agentless {
        out.push(Diagnostic {
            file: plan.file.clone(),
            line: t.line,
            col: 1,
            message: format!(
                "task `{}` names no agent, and the config has no default_agent",
                t.id
            ),
            hint: format!(
                "add agent = \"...\" to the task or to [defaults] (one of {known}), or set default_agent in .orch/config.toml (`orch-tui init` sets it to an agent CLI it finds)"
            ),
        });
    }
    out.sort_by_key(|d| (d.line, d.col));
    out
}

/// Tasks that would run on the built-in simulator (fake work): `plan validate` says so loudly
/// outside `orch-tui demo`. Returns (profile, task ids) per simulator profile in use.
pub fn tasks_on_simulator<'p>(plan: &'p Plan, cfg: &Config) -> Vec<(String, Vec<&'p str>)> {
    let mut by_profile: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for t in &plan.tasks {
        let name = t.agent.as_deref().unwrap_or(&cfg.default_agent);
        if cfg
            .agents
            .get(name)
            .is_some_and(|p| p.adapter == super::Adapter::Sim)
        {
            by_profile.entry(name.to_string()).or_default().push(&t.id);
        }
    }
    by_profile.into_iter().collect()
}
