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
    for t in &plan.tasks {
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
    out.sort_by_key(|d| (d.line, d.col));
    out
}
