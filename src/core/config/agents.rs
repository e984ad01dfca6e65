//! Agent profiles in the config: `[agents.<name>]` tables, their commands and placeholders.

use toml::Spanned;
use toml::de::DeValue;

use super::{AGENT_KEYS, AUTHOR_KEYS, Adapter, AgentProfile, Config, PLACEHOLDERS};
use crate::core::diag::{Sink, entries_in_order};

pub(super) fn apply_agent(
    sink: &mut Sink<'_>,
    cfg: &mut Config,
    name: &Spanned<std::borrow::Cow<'_, str>>,
    v: &Spanned<DeValue<'_>>,
) {
    let key = name.get_ref().to_string();
    let place = format!("[agents.{key}]");
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        sink.error(
            &name.span(),
            format!("bad agent profile name `{key}`"),
            "profile names use letters, digits, '-' and '_', e.g. [agents.claude-fast]",
        );
        return;
    }
    let Some(t) = sink.table(v, &place, &format!("{place}\ncommand = [\"...\"]")) else {
        return;
    };
    sink.check_keys(t, AGENT_KEYS, &place);
    let is_new = !cfg.agents.contains_key(&key);
    if is_new {
        // A profile the defaults do not know must say how to start the agent and how to read it.
        for required in ["command", "adapter"] {
            if !t.contains_key(required) {
                let hint = if required == "command" {
                    "add command = [\"program\", \"arg\", \"{prompt}\"]".to_string()
                } else {
                    format!(
                        "add adapter = \"generic\" (exit code 0 = done) or one of {}",
                        Adapter::NAMES.join(", ")
                    )
                };
                sink.error(
                    &name.span(),
                    format!("agent profile `{key}` has no `{required}`"),
                    hint,
                );
            }
        }
    }
    let p = cfg
        .agents
        .entry(key.clone())
        .or_insert_with(|| AgentProfile {
            name: key.clone(),
            max_concurrent: 1,
            author_name: format!("orch agent {key}"),
            author_email: format!("{key}@orch.invalid"),
            ..AgentProfile::default()
        });
    if let Some(c) = t.get("command")
        && let Some(cmd) = sink.strings(
            c,
            &format!("{place} command"),
            "command = [\"claude\", \"-p\", \"{prompt}\"]",
        )
    {
        check_command(sink, c, &cmd, &place);
        p.command = cmd;
    }
    if let Some(a) = t.get("adapter")
        && let Some(s) = sink.string(a, &format!("{place} adapter"), "adapter = \"generic\"")
    {
        match Adapter::parse(&s) {
            Some(ad) => p.adapter = ad,
            None => sink.error(
                &a.span(),
                format!("unknown adapter `{s}` in {place}"),
                format!("adapter is one of {}", Adapter::NAMES.join(", ")),
            ),
        }
    }
    if let Some(c) = t.get("capabilities")
        && let Some(caps) = sink.strings(
            c,
            &format!("{place} capabilities"),
            "capabilities = [\"rust\"]",
        )
    {
        p.capabilities = caps;
    }
    if let Some(m) = t.get("max_concurrent")
        && let Some(n) = sink.int_in(
            m,
            &format!("{place} max_concurrent"),
            1,
            64,
            "max_concurrent = 2",
        )
    {
        p.max_concurrent = n as usize;
    }
    if let Some(e) = t.get("env")
        && let Some(env) = sink.table(e, &format!("{place} env"), "env = { NAME = \"value\" }")
    {
        for (k, val) in entries_in_order(env) {
            if let Some(s) = sink.string(
                val,
                &format!("{place} env {}", k.get_ref()),
                "NAME = \"value\"",
            ) {
                p.env.insert(k.get_ref().to_string(), s);
            }
        }
    }
    if let Some(a) = t.get("author")
        && let Some(author) = sink.table(
            a,
            &format!("{place} author"),
            "author = { name = \"Bot\", email = \"bot@example.com\" }",
        )
    {
        sink.check_keys(author, AUTHOR_KEYS, &format!("{place} author"));
        if let Some(n) = author
            .get("name")
            .and_then(|n| sink.string(n, "author name", "name = \"Bot\""))
        {
            p.author_name = n;
        }
        if let Some(m) = author
            .get("email")
            .and_then(|m| sink.string(m, "author email", "email = \"bot@example.com\""))
        {
            p.author_email = m;
        }
    }
}

/// A command must have a program, and its placeholders must be ones orch-tui fills in: a typo
/// such as `{promt}` would otherwise reach the agent literally.
fn check_command(sink: &mut Sink<'_>, v: &Spanned<DeValue<'_>>, cmd: &[String], place: &str) {
    if cmd.first().is_none_or(|p| p.trim().is_empty()) {
        sink.error(
            &v.span(),
            format!("{place} command is empty"),
            "give the program and its arguments, e.g. command = [\"claude\", \"-p\", \"{prompt}\"]",
        );
    }
    for arg in cmd {
        for name in placeholders_in(arg) {
            if !PLACEHOLDERS.contains(&name) {
                let known: Vec<String> = PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
                sink.error(
                    &v.span(),
                    format!("unknown placeholder `{{{name}}}` in {place} command"),
                    format!("placeholders are {}", known.join(" ")),
                );
            }
        }
    }
}

/// Names inside `{...}` that look like placeholders (lowercase letters and '_'), so literal
/// braces such as JSON arguments are left alone.
pub(super) fn placeholders_in(arg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find('}') {
            let name = &rest[..close];
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                out.push(name);
            }
        }
    }
    out
}

/// Why a string cannot be a branch name (a subset of git-check-ref-format), or None.
pub(super) fn branch_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("is empty")
    } else if s.starts_with('-')
        || s.starts_with('/')
        || s.ends_with('/')
        || s.ends_with('.')
        || s.ends_with(".lock")
    {
        Some("is not a valid branch name (bad start or end)")
    } else if s.contains("..") || s.contains("//") || s.contains("@{") {
        Some("is not a valid branch name (contains `..`, `//` or `@{`)")
    } else if s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
    {
        Some("is not a valid branch name (contains a space or one of ~^:?*[\\)")
    } else {
        None
    }
}
