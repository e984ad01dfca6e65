//! `.orch/config.toml` (DESIGN §8): embedded defaults, overridden key by key by the user's file.
//!
//! Both files go through the same `apply` walk: the defaults are applied to an empty config,
//! then the user's file to the result. So a user table only changes the keys it names (tables
//! merge deeply; arrays and plain values replace), and every error points into the file that
//! holds the bad value.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::DeTable;

use crate::core::diag::{Diagnostic, Sink, entries_in_order};
use crate::core::plan::{Budget, MAX_ATTEMPTS_LIMIT, parse_budget};

mod agents;
mod git;
mod limits;
mod plan_check;
mod worktree;
#[cfg(test)]
use agents::placeholders_in;
use agents::{apply_agent, branch_problem};
pub use plan_check::{check_plan_against_config, tasks_on_simulator};
pub use worktree::WorktreeSettings;

/// The embedded defaults; also what `orch-tui init` can show.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../assets/default-config.toml");
const DEFAULTS_FILE: &str = "<built-in defaults>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Adapter {
    Claude,
    Codex,
    Aider,
    #[default]
    Generic,
    Sim,
}

impl Adapter {
    pub const NAMES: &[&str] = &["claude", "codex", "aider", "generic", "sim"];

    pub fn parse(s: &str) -> Option<Adapter> {
        Some(match s {
            "claude" => Adapter::Claude,
            "codex" => Adapter::Codex,
            "aider" => Adapter::Aider,
            "generic" => Adapter::Generic,
            "sim" => Adapter::Sim,
            _ => return None,
        })
    }

    /// Whether its CLI can continue an earlier conversation (`--resume`, `exec resume`); an
    /// agent that cannot starts afresh, and its spend is its own from zero.
    pub fn resumes_conversations(self) -> bool {
        matches!(self, Adapter::Claude | Adapter::Codex)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Adapter::Claude => "claude",
            Adapter::Codex => "codex",
            Adapter::Aider => "aider",
            Adapter::Generic => "generic",
            Adapter::Sim => "sim",
        }
    }
}

/// How much the human is asked (DESIGN §1): approve every merge, get a veto window, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Autonomy {
    InTheLoop,
    #[default]
    OnTheLoop,
    OutOfTheLoop,
}

impl Autonomy {
    pub const NAMES: &[&str] = &["in-the-loop", "on-the-loop", "out-of-the-loop"];

    pub fn parse(s: &str) -> Option<Autonomy> {
        Some(match s {
            "in-the-loop" => Autonomy::InTheLoop,
            "on-the-loop" => Autonomy::OnTheLoop,
            "out-of-the-loop" => Autonomy::OutOfTheLoop,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// How a profile's agent runs: to the end of its task on its own (`command`), or as a live
/// session in its PTY (`interactive`), read through hooks and screen rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentMode {
    #[default]
    Headless,
    Interactive,
}

impl AgentMode {
    pub const NAMES: &[&str] = &["headless", "interactive"];

    pub fn parse(s: &str) -> Option<AgentMode> {
        Some(match s {
            "headless" => AgentMode::Headless,
            "interactive" => AgentMode::Interactive,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentProfile {
    pub name: String,
    /// Argument vector; placeholders are replaced inside single arguments, never via a shell.
    pub command: Vec<String>,
    /// The argument vector for `mode = "interactive"` (empty: the profile has none).
    pub interactive: Vec<String>,
    pub mode: AgentMode,
    /// Prices per million tokens, for agents that print no cost (Codex) and for live cost
    /// before an agent's own total arrives.
    pub price: Option<crate::core::agent_event::Price>,
    pub adapter: Adapter,
    /// Empty = can take any task.
    pub capabilities: Vec<String>,
    pub max_concurrent: usize,
    pub env: BTreeMap<String, String>,
    pub author_name: String,
    pub author_email: String,
    /// The account its agents spend from: a usage limit pauses every profile of the same
    /// account. Empty: the adapter's name (plus the credential or config folder its env names).
    pub account: String,
    /// Profiles that take its tasks while its circuit breaker is open (when their capabilities
    /// fit the task).
    pub fallback: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Funnel {
    /// Commands run on every task after its own checks.
    pub checks: Vec<String>,
    /// Agent profile that reviews each attempt; `None` = no reviewer stage.
    pub reviewer: Option<String>,
    pub autonomy: Autonomy,
    pub veto_window_ms: u64,
    pub check_timeout_ms: u64,
    /// On-the-loop waits for the human anyway when a diff changes more lines than this.
    pub large_diff_lines: u64,
    /// A dependent may start on the candidate tip while its dependency's veto window runs.
    pub speculative: bool,
}

/// Usage limits and circuit breakers (`[limits]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LimitSettings {
    /// How long a limit that names no reset time pauses its account.
    pub wait_ms: u64,
    /// Infrastructure failures in a row (auth, API 5xx, command not found) that open a
    /// profile's breaker.
    pub breaker_failures: u32,
    /// How long an open breaker waits before a probe; doubled each time a probe fails.
    pub breaker_cooldown_ms: u64,
}

/// Fleet-wide answers to agents' permission requests (`[permissions]`): `Tool` or
/// `Tool(pattern)`, `*` matching anything; a deny rule wins over an allow rule.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PermissionRules {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// How orch-tui runs git (`[git]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GitSettings {
    /// Deadline of one git call; a call running longer is stopped with everything it started.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ui {
    pub theme: String,
    /// Action name -> key; the TUI checks the names and key syntax.
    pub keymap: BTreeMap<String, String>,
    /// Run (through `sh -c`, the message as `$1`) when something enters the inbox while the
    /// terminal is not focused; empty: the terminal's own notification only.
    pub notify_command: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub slots: usize,
    /// Profile for tasks whose plan names no agent.
    pub default_agent: String,
    pub integration_branch: String,
    /// The branch the integration branch is based on and `orch-tui sync` follows (`main`,
    /// `origin/main`); `None`: chosen at the first start (docs/git.md, "The base").
    pub base: Option<String>,
    pub stop_grace_ms: u64,
    pub agents: BTreeMap<String, AgentProfile>,
    pub task_budget: Budget,
    pub run_budget: Budget,
    pub retry: RetryPolicy,
    pub funnel: Funnel,
    pub log_rotate_bytes: u64,
    pub git: GitSettings,
    pub worktree: WorktreeSettings,
    pub limits: LimitSettings,
    pub permissions: PermissionRules,
    pub ui: Ui,
    /// The user's screen rules per adapter, merged over the built-in ones by
    /// `core::screen_rules::merged`.
    pub screen_rules: BTreeMap<String, Vec<crate::core::screen_rules::ScreenRule>>,
}

pub const PLACEHOLDERS: &[&str] = &["prompt", "prompt_file", "task", "worktree", "orch"];
pub const THEMES: &[&str] = &["dark", "light"];

const TOP_KEYS: &[&str] = &[
    "slots",
    "default_agent",
    "integration_branch",
    "base",
    "stop_grace",
    "agents",
    "budgets",
    "retry",
    "funnel",
    "logs",
    "git",
    "worktree",
    "limits",
    "permissions",
    "ui",
    "screen_rules",
];
const AGENT_KEYS: &[&str] = &[
    "command",
    "interactive",
    "mode",
    "price",
    "adapter",
    "capabilities",
    "max_concurrent",
    "env",
    "author",
    "account",
    "fallback",
];
const AUTHOR_KEYS: &[&str] = &["name", "email"];
const PRICE_KEYS: &[&str] = &["input", "output", "cache_read", "cache_write"];
const BUDGETS_KEYS: &[&str] = &["task", "run"];
const RETRY_KEYS: &[&str] = &["max_attempts", "backoff_base", "backoff_cap"];
const FUNNEL_KEYS: &[&str] = &[
    "checks",
    "reviewer",
    "autonomy",
    "veto_window",
    "check_timeout",
    "large_diff_lines",
    "speculative",
];
const LOGS_KEYS: &[&str] = &["rotate_bytes"];
const UI_KEYS: &[&str] = &["theme", "keymap", "notify_command"];

/// The embedded defaults. They are checked by a unit test, so the empty fallback is never used.
pub fn default_config() -> Config {
    let mut cfg = Config::default();
    let mut sink = Sink::new(DEFAULTS_FILE, DEFAULT_CONFIG_TOML);
    apply_file(&mut sink, &mut cfg);
    cfg
}

/// The defaults overridden by the user's config `text`; every error in it, or the config.
pub fn parse_config(file: &str, text: &str) -> Result<Config, Vec<Diagnostic>> {
    let mut cfg = default_config();
    let mut sink = Sink::new(file, text);
    apply_file(&mut sink, &mut cfg);
    if sink.diags.is_empty() {
        Ok(cfg)
    } else {
        sink.diags.sort_by_key(|d| (d.line, d.col));
        Err(sink.diags)
    }
}

/// Where the user set the keys that are checked against others once everything is merged.
#[derive(Default)]
struct CrossRefs {
    default_agent: Option<Range<usize>>,
    reviewer: Option<Range<usize>>,
    backoff: Option<Range<usize>>,
}

fn apply_file(sink: &mut Sink<'_>, cfg: &mut Config) {
    let Some(root) = sink.parse() else { return };
    let root = root.get_ref();
    sink.check_keys(root, TOP_KEYS, "the config (top level)");
    let mut refs = CrossRefs::default();
    if let Some(v) = root.get("slots")
        && let Some(n) = sink.int_in(v, "slots", 1, 64, "slots = 4")
    {
        cfg.slots = n as usize;
    }
    if let Some(v) = root.get("default_agent")
        && let Some(s) = sink.string(v, "default_agent", "default_agent = \"claude\"")
    {
        cfg.default_agent = s;
        refs.default_agent = Some(v.span());
    }
    if let Some(v) = root.get("integration_branch")
        && let Some(s) = sink.string(
            v,
            "integration_branch",
            "integration_branch = \"orch/integration\"",
        )
    {
        match branch_problem(&s) {
            Some(why) => sink.error(
                &v.span(),
                format!("integration_branch `{s}` {why}"),
                "use a plain branch name such as \"orch/integration\"",
            ),
            None => cfg.integration_branch = s,
        }
    }
    if let Some(v) = root.get("base")
        && let Some(s) = sink.string(v, "base", "base = \"main\"")
    {
        // "" is the default: chosen at the first start.
        match branch_problem(&s) {
            Some(why) if !s.is_empty() => sink.error(
                &v.span(),
                format!("base `{s}` {why}"),
                "name a branch such as \"main\" or \"origin/main\", or \"\" for the default",
            ),
            _ => cfg.base = (!s.is_empty()).then_some(s),
        }
    }
    if let Some(v) = root.get("stop_grace")
        && let Some(ms) = sink.duration(v, "stop_grace")
    {
        cfg.stop_grace_ms = ms;
    }
    if let Some(v) = root.get("agents")
        && let Some(t) = sink.table(v, "[agents]", "[agents.claude]")
    {
        for (name, profile) in entries_in_order(t) {
            apply_agent(sink, cfg, name, profile);
        }
    }
    if let Some(t) = sub_table(sink, root, "budgets", BUDGETS_KEYS) {
        if let Some(v) = t.get("task") {
            cfg.task_budget = parse_budget(sink, v, "[budgets] task")
                .unwrap_or_default()
                .or(&cfg.task_budget);
        }
        if let Some(v) = t.get("run") {
            cfg.run_budget = parse_budget(sink, v, "[budgets] run")
                .unwrap_or_default()
                .or(&cfg.run_budget);
        }
    }
    if let Some(t) = sub_table(sink, root, "retry", RETRY_KEYS) {
        apply_retry(sink, &mut cfg.retry, t, &mut refs);
    }
    if let Some(t) = sub_table(sink, root, "funnel", FUNNEL_KEYS) {
        apply_funnel(sink, &mut cfg.funnel, t, &mut refs);
    }
    if let Some(t) = sub_table(sink, root, "logs", LOGS_KEYS)
        && let Some(v) = t.get("rotate_bytes")
        && let Some(n) = sink.int_in(
            v,
            "[logs] rotate_bytes",
            4096,
            i64::MAX,
            "rotate_bytes = 16_777_216",
        )
    {
        cfg.log_rotate_bytes = n as u64;
    }
    if let Some(t) = sub_table(sink, root, "git", git::GIT_KEYS) {
        git::apply_git(sink, &mut cfg.git, t);
    }
    if let Some(t) = sub_table(sink, root, "worktree", worktree::WORKTREE_KEYS) {
        worktree::apply_worktree(sink, &mut cfg.worktree, t);
    }
    if let Some(t) = sub_table(sink, root, "limits", limits::LIMITS_KEYS) {
        limits::apply_limits(sink, &mut cfg.limits, t);
    }
    if let Some(t) = sub_table(sink, root, "permissions", limits::PERMISSIONS_KEYS) {
        limits::apply_permissions(sink, &mut cfg.permissions, t);
    }
    if let Some(t) = sub_table(sink, root, "ui", UI_KEYS) {
        apply_ui(sink, &mut cfg.ui, t);
    }
    if let Some(v) = root.get("screen_rules")
        && let Some(t) = sink.table(v, "[screen_rules]", "[[screen_rules.claude]]")
    {
        let rules = crate::core::screen_rules::parse_user_rules(sink, t, Adapter::NAMES);
        cfg.screen_rules.extend(rules);
    }
    check_cross_refs(sink, cfg, &refs);
}

fn sub_table<'a, 'i>(
    sink: &mut Sink<'_>,
    root: &'a DeTable<'i>,
    key: &str,
    allowed: &[&str],
) -> Option<&'a DeTable<'i>> {
    let place = format!("[{key}]");
    let t = sink.table(root.get(key)?, &place, &format!("[{key}]"))?;
    sink.check_keys(t, allowed, &place);
    Some(t)
}

fn apply_retry(sink: &mut Sink<'_>, r: &mut RetryPolicy, t: &DeTable<'_>, refs: &mut CrossRefs) {
    if let Some(v) = t.get("max_attempts")
        && let Some(n) = sink.int_in(
            v,
            "[retry] max_attempts",
            1,
            MAX_ATTEMPTS_LIMIT,
            "max_attempts = 3",
        )
    {
        r.max_attempts = n as u32;
    }
    for (key, field) in [
        ("backoff_base", &mut r.backoff_base_ms),
        ("backoff_cap", &mut r.backoff_cap_ms),
    ] {
        if let Some(v) = t.get(key)
            && let Some(ms) = sink.duration(v, &format!("[retry] {key}"))
        {
            *field = ms;
            refs.backoff = Some(v.span());
        }
    }
}

fn apply_funnel(sink: &mut Sink<'_>, f: &mut Funnel, t: &DeTable<'_>, refs: &mut CrossRefs) {
    if let Some(v) = t.get("checks")
        && let Some(c) = sink.strings(v, "[funnel] checks", "checks = [\"cargo test -q\"]")
    {
        f.checks = c;
    }
    if let Some(v) = t.get("reviewer")
        && let Some(s) = sink.string(v, "[funnel] reviewer", "reviewer = \"claude\"")
    {
        f.reviewer = (!s.is_empty()).then_some(s);
        refs.reviewer = Some(v.span());
    }
    if let Some(v) = t.get("autonomy")
        && let Some(s) = sink.string(v, "[funnel] autonomy", "autonomy = \"on-the-loop\"")
    {
        match Autonomy::parse(&s) {
            Some(a) => f.autonomy = a,
            None => sink.error(
                &v.span(),
                format!("unknown autonomy `{s}`"),
                format!("autonomy is one of {}", Autonomy::NAMES.join(", ")),
            ),
        }
    }
    if let Some(v) = t.get("veto_window")
        && let Some(ms) = sink.duration(v, "[funnel] veto_window")
    {
        f.veto_window_ms = ms;
    }
    if let Some(v) = t.get("speculative")
        && let Some(b) = sink.boolean(v, "[funnel] speculative")
    {
        f.speculative = b;
    }
    if let Some(v) = t.get("check_timeout") {
        match sink.duration(v, "[funnel] check_timeout") {
            Some(0) => sink.error(
                &v.span(),
                "[funnel] check_timeout is zero",
                "give checks time to run, e.g. check_timeout = \"10m\"",
            ),
            Some(ms) => f.check_timeout_ms = ms,
            None => {}
        }
    }
    if let Some(v) = t.get("large_diff_lines")
        && let Some(n) = sink.int_in(
            v,
            "[funnel] large_diff_lines",
            1,
            10_000_000,
            "large_diff_lines = 400",
        )
    {
        f.large_diff_lines = n as u64;
    }
}

fn apply_ui(sink: &mut Sink<'_>, ui: &mut Ui, t: &DeTable<'_>) {
    if let Some(v) = t.get("theme")
        && let Some(s) = sink.string(v, "[ui] theme", "theme = \"dark\"")
    {
        if THEMES.contains(&s.as_str()) {
            ui.theme = s;
        } else {
            sink.error(
                &v.span(),
                format!("unknown theme `{s}`"),
                format!("theme is one of {}", THEMES.join(", ")),
            );
        }
    }
    if let Some(v) = t.get("notify_command")
        && let Some(s) = sink.string(
            v,
            "[ui] notify_command",
            "notify_command = \"notify-send orch-tui\"",
        )
    {
        ui.notify_command = s;
    }
    if let Some(v) = t.get("keymap")
        && let Some(km) = sink.table(v, "[ui] keymap", "keymap = { approve = \"a\" }")
    {
        for (k, val) in entries_in_order(km) {
            match sink.string(
                val,
                &format!("[ui] keymap {}", k.get_ref()),
                "approve = \"a\"",
            ) {
                Some(s) if s.is_empty() => sink.error(
                    &val.span(),
                    format!("empty key for action `{}`", k.get_ref()),
                    "write a key such as \"a\", \"ctrl-r\" or \"enter\"",
                ),
                Some(s) => {
                    ui.keymap.insert(k.get_ref().to_string(), s);
                }
                None => {}
            }
        }
    }
}

/// Checks between keys, once this file is merged in. Only keys this file set are blamed: the
/// defaults are consistent on their own.
fn check_cross_refs(sink: &mut Sink<'_>, cfg: &Config, refs: &CrossRefs) {
    let known = || {
        cfg.agents
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(span) = &refs.default_agent
        && !cfg.default_agent.is_empty()
        && !cfg.agents.contains_key(&cfg.default_agent)
    {
        sink.error(
            span,
            format!(
                "default_agent `{}` is not an agent profile",
                cfg.default_agent
            ),
            format!(
                "name one of {} or add [agents.{}]",
                known(),
                cfg.default_agent
            ),
        );
    }
    if let (Some(span), Some(r)) = (&refs.reviewer, &cfg.funnel.reviewer)
        && !cfg.agents.contains_key(r)
    {
        sink.error(
            span,
            format!("[funnel] reviewer `{r}` is not an agent profile"),
            format!("name one of {}, or \"\" for no reviewer", known()),
        );
    }
    if let Some(span) = &refs.backoff
        && cfg.retry.backoff_cap_ms < cfg.retry.backoff_base_ms
    {
        sink.error(
            span,
            "[retry] backoff_cap is shorter than backoff_base",
            "the cap bounds the growing wait between attempts; make it at least backoff_base",
        );
    }
}

#[cfg(test)]
mod tests;
