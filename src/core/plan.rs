//! The plan file (DESIGN §8): its model, and validation that lists every error at once, each with
//! its file:line:col and a hint saying what to do.
//!
//! The file is parsed into a spanned TOML tree and checked by hand rather than through serde,
//! because serde stops at the first error and loses positions for semantic problems (unknown
//! dependency, cycle) that span several tasks.

use std::collections::{BTreeMap, HashMap};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::core::diag::{Diagnostic, Sink, closest};
mod task;
pub use task::valid_task_id;
use task::{RawTask, parse_task};

pub use crate::core::plan_graph::{content_hash, cycles_in, find_cycle, find_cycles, fnv1a64};

/// Limits on time, tokens and money. `None` = no limit at this level (a wider level may set one).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    pub time_ms: Option<u64>,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

impl Budget {
    /// Key-by-key override: each limit this budget sets wins, the others come from `fallback`.
    pub fn or(&self, fallback: &Budget) -> Budget {
        Budget {
            time_ms: self.time_ms.or(fallback.time_ms),
            tokens: self.tokens.or(fallback.tokens),
            cost_usd: self.cost_usd.or(fallback.cost_usd),
        }
    }
}

/// One task as loaded from a plan, with plan defaults already applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSpec {
    pub id: String,
    pub title: String,
    /// The prompt text, or the spec file's content.
    pub prompt: String,
    /// The spec path as written in the plan (relative to the plan's folder), if `spec` was used.
    pub spec_path: Option<String>,
    /// `content_hash` of `prompt`: the prompt/spec version.
    pub content_hash: String,
    pub depends_on: Vec<String>,
    pub capabilities: Vec<String>,
    pub priority: i64,
    pub checks: Vec<String>,
    /// The task's agent, else `[defaults] agent`; `None` = the config's `default_agent`.
    pub agent: Option<String>,
    /// Line of the `agent = ...` that applies (task's or defaults'); 0 when `agent` is None.
    pub agent_line: usize,
    /// The task's, else `[defaults] max_attempts`; `None` = the config's retry policy.
    pub max_attempts: Option<u32>,
    /// The task's budget over `[defaults] budget`, key by key; the config's task budget applies
    /// to whatever both leave unset (see `Budget::or`).
    pub budget: Budget,
    pub risk_high: bool,
    /// Line of the task's `[[task]]` header in the plan file.
    pub line: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub name: String,
    /// The file name diagnostics use for this plan.
    pub file: String,
    pub tasks: Vec<TaskSpec>,
}

const TOP_KEYS: &[&str] = &["plan", "defaults", "task"];
const PLAN_KEYS: &[&str] = &["name"];
const DEFAULT_KEYS: &[&str] = &["agent", "max_attempts", "budget", "priority"];
const TASK_KEYS: &[&str] = &[
    "id",
    "title",
    "prompt",
    "spec",
    "depends_on",
    "capabilities",
    "priority",
    "checks",
    "agent",
    "max_attempts",
    "budget",
    "risk",
];
/// More attempts than this is a typo, not a plan.
pub const MAX_ATTEMPTS_LIMIT: i64 = 100;
const BUDGET_KEYS: &[&str] = &["time", "tokens", "cost_usd"];

const MINIMAL_PLAN: &str =
    "[plan] name = \"...\", then one [[task]] per task with id, title and prompt (or spec)";

/// Plan-wide defaults as read from `[defaults]`.
#[derive(Default)]
struct Defaults {
    agent: Option<(String, usize)>,
    max_attempts: Option<u32>,
    budget: Budget,
    priority: i64,
}

/// Parses and validates a plan. `specs` reads a spec file given its path as written in the plan
/// (the caller resolves it against the plan's folder); its `Err` text explains why it could not.
pub fn parse_plan(
    file: &str,
    text: &str,
    specs: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut sink = Sink::new(file, text);
    let root = sink.parse().ok_or_else(|| sink.diags.clone())?;
    if root.get_ref().is_empty() {
        sink.error(
            &(0..0),
            "the plan is empty",
            format!("a plan needs {MINIMAL_PLAN}"),
        );
        return Err(sink.diags);
    }
    let root = root.get_ref();
    sink.check_keys(root, TOP_KEYS, "the plan file (top level)");

    let name = plan_name(&mut sink, root);
    let defaults = root
        .get("defaults")
        .map(|v| parse_defaults(&mut sink, v))
        .unwrap_or_default();

    let mut tasks: Vec<RawTask> = Vec::new();
    match root.get("task") {
        None => sink.error(
            &(0..0),
            "the plan has no tasks",
            format!("add at least one [[task]] table; a plan needs {MINIMAL_PLAN}"),
        ),
        Some(v) => match v.get_ref() {
            DeValue::Array(items) => {
                for item in items.iter() {
                    if let Some(t) = parse_task(&mut sink, item, &defaults, specs) {
                        tasks.push(t);
                    }
                }
            }
            _ => sink.error(
                &v.span(),
                "`task` must be an array of tables",
                "write each task under its own [[task]] header (two brackets)",
            ),
        },
    }

    check_graph(&mut sink, &tasks);
    if sink.diags.is_empty() {
        Ok(Plan {
            name,
            file: file.to_string(),
            tasks: tasks.into_iter().map(|t| t.spec).collect(),
        })
    } else {
        sink.diags.sort_by_key(|d| (d.line, d.col));
        Err(sink.diags)
    }
}

/// One task written as a bare table (the keys of a `[[task]]`, at top level), validated exactly
/// as in a plan: for tasks made without a plan file (`core::new_task`). Dependencies are not
/// checked here (they name tasks of the ledger, not of this text). No spec files: `spec` is
/// refused like any path that cannot be read.
pub fn parse_task_table(file: &str, text: &str) -> Result<TaskSpec, Vec<Diagnostic>> {
    let mut sink = Sink::new(file, text);
    let root = sink.parse().ok_or_else(|| sink.diags.clone())?;
    let item = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let no_files = |_: &str| Err("a task added without a plan has no spec files".to_string());
    let task = parse_task(&mut sink, &item, &Defaults::default(), &no_files);
    match task {
        Some(t) if sink.diags.is_empty() => Ok(t.spec),
        _ => {
            sink.diags.sort_by_key(|d| (d.line, d.col));
            Err(sink.diags)
        }
    }
}

/// `[plan] name`, or the file's stem when the plan has no `[plan]` table.
fn plan_name(sink: &mut Sink<'_>, root: &DeTable<'_>) -> String {
    let stem = sink
        .file
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(sink.file)
        .trim_end_matches(".toml")
        .to_string();
    let Some(v) = root.get("plan") else {
        return stem;
    };
    let Some(t) = sink.table(v, "[plan]", "[plan] name = \"payments-refactor\"") else {
        return stem;
    };
    sink.check_keys(t, PLAN_KEYS, "[plan]");
    match t.get("name") {
        Some(n) => match sink.string(n, "[plan] name", "name = \"payments-refactor\"") {
            Some(s) if s.trim().is_empty() => {
                sink.error(
                    &n.span(),
                    "[plan] name is empty",
                    "give the plan a short name, e.g. name = \"payments-refactor\"",
                );
                stem
            }
            Some(s) => s,
            None => stem,
        },
        None => stem,
    }
}

fn parse_defaults(sink: &mut Sink<'_>, v: &Spanned<DeValue<'_>>) -> Defaults {
    let mut d = Defaults::default();
    let Some(t) = sink.table(v, "[defaults]", "[defaults] agent = \"claude\"") else {
        return d;
    };
    sink.check_keys(t, DEFAULT_KEYS, "[defaults]");
    if let Some(a) = t.get("agent") {
        d.agent = agent_name(sink, a, "[defaults] agent").map(|s| (s, sink.line(&a.span())));
    }
    if let Some(m) = t.get("max_attempts") {
        d.max_attempts = max_attempts(sink, m, "[defaults] max_attempts");
    }
    if let Some(b) = t.get("budget") {
        d.budget = parse_budget(sink, b, "[defaults] budget").unwrap_or_default();
    }
    if let Some(p) = t.get("priority") {
        d.priority = sink
            .integer(p, "[defaults] priority", "priority = 0")
            .unwrap_or(0);
    }
    d
}

fn agent_name(sink: &mut Sink<'_>, v: &Spanned<DeValue<'_>>, what: &str) -> Option<String> {
    let s = sink.string(v, what, "agent = \"claude\"")?;
    if s.trim().is_empty() {
        sink.error(
            &v.span(),
            format!("{what} is empty"),
            "name an agent profile from the config, e.g. agent = \"claude\"",
        );
        return None;
    }
    Some(s)
}

fn max_attempts(sink: &mut Sink<'_>, v: &Spanned<DeValue<'_>>, what: &str) -> Option<u32> {
    let n = sink.int_in(v, what, 1, MAX_ATTEMPTS_LIMIT, "max_attempts = 3")?;
    u32::try_from(n).ok()
}

/// Reads `{ time = "20m", tokens = 400_000, cost_usd = 3.0 }`; every key optional.
pub(crate) fn parse_budget(
    sink: &mut Sink<'_>,
    v: &Spanned<DeValue<'_>>,
    what: &str,
) -> Option<Budget> {
    let t = sink.table(
        v,
        what,
        "budget = { time = \"20m\", tokens = 400_000, cost_usd = 3.0 }",
    )?;
    sink.check_keys(t, BUDGET_KEYS, what);
    let mut b = Budget::default();
    if let Some(x) = t.get("time") {
        let label = format!("{what} time");
        b.time_ms = sink.duration(x, &label);
        if b.time_ms == Some(0) {
            sink.error(&x.span(), format!("{label} is zero"), "a time budget must be more than zero, e.g. time = \"20m\"; leave it out for no limit");
            b.time_ms = None;
        }
    }
    if let Some(x) = t.get("tokens") {
        let label = format!("{what} tokens");
        match x.get_ref() {
            DeValue::Integer(_) => match sink.integer(x, &label, "tokens = 400_000") {
                Some(n) if n < 0 => sink.error(
                    &x.span(),
                    format!("{label} is {n}; it must be a non-negative integer"),
                    "write a token count like tokens = 400_000, or leave it out for no limit",
                ),
                Some(n) => b.tokens = u64::try_from(n).ok(),
                None => {}
            },
            _ => sink.error(
                &x.span(),
                format!(
                    "{label} must be a non-negative integer, found {}",
                    x.get_ref().type_str()
                ),
                "write a whole number without quotes, e.g. tokens = 400_000",
            ),
        }
    }
    if let Some(x) = t.get("cost_usd") {
        let label = format!("{what} cost_usd");
        match sink.number(x, &label, "cost_usd = 3.0") {
            Some(c) if c < 0.0 => sink.error(
                &x.span(),
                format!("{label} is {c}; it cannot be negative"),
                "write an amount in US dollars like cost_usd = 3.0, or leave it out for no limit",
            ),
            Some(c) => b.cost_usd = Some(c),
            None => {}
        }
    }
    Some(b)
}

/// Cross-task checks: duplicate ids, unknown and self dependencies, cycles.
fn check_graph(sink: &mut Sink<'_>, tasks: &[RawTask]) {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tasks {
        let id = t.spec.id.as_str();
        if let Some(line) = first.get(id) {
            sink.error(
                &t.id_span,
                format!("duplicate task id `{id}` (first defined on line {line})"),
                "task ids must be unique in a plan; rename one of them",
            );
        } else {
            first.insert(id, sink.line(&t.id_span));
        }
    }
    let mut clean_deps: Vec<TaskSpec> = Vec::new();
    for RawTask { spec: t, deps, .. } in tasks {
        let mut kept = Vec::new();
        for (d, span) in deps {
            if *d == t.id {
                sink.error(
                    span,
                    format!("task `{}` depends on itself", t.id),
                    "remove its own id from depends_on",
                );
            } else if !first.contains_key(d.as_str()) {
                let hint = match closest_id(d, &first) {
                    Some(c) => format!("did you mean `{c}`? depends_on lists ids of other tasks in this plan"),
                    None => "depends_on lists ids of other tasks in this plan; add that task or remove the entry".to_string(),
                };
                sink.error(
                    span,
                    format!("unknown dependency `{d}` in task `{}`", t.id),
                    hint,
                );
            } else {
                kept.push(d.clone());
            }
        }
        clean_deps.push(TaskSpec {
            id: t.id.clone(),
            depends_on: kept,
            line: t.line,
            ..TaskSpec::default()
        });
    }
    // The header line of each task (the first of a duplicated id), for the cycles below.
    let mut header_line: HashMap<&str, usize> = HashMap::new();
    for t in &clean_deps {
        header_line.entry(t.id.as_str()).or_insert(t.line);
    }
    for cycle in find_cycles(&clean_deps) {
        let line = cycle
            .first()
            .and_then(|id| header_line.get(id.as_str()))
            .copied()
            .unwrap_or(1);
        let start = if line > 1 { sink.line_start(line) } else { 0 };
        sink.error(
            &(start..start),
            format!("dependency cycle: {}", cycle.join(" -> ")),
            "each arrow reads \"depends on\"; remove one of these depends_on entries to break the loop",
        );
    }
}

fn closest_id<'a>(name: &str, ids: &BTreeMap<&'a str, usize>) -> Option<&'a str> {
    let all: Vec<&'a str> = ids.keys().copied().collect();
    closest(name, &all)
}

#[cfg(test)]
mod tests;
