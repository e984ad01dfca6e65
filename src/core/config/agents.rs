//! Agent profiles in the config: `[agents.<name>]` tables, their commands and placeholders.

use toml::Spanned;
use toml::de::DeValue;

use super::{
    AGENT_KEYS, AUTHOR_KEYS, Adapter, AgentMode, AgentProfile, Config, PLACEHOLDERS, PRICE_KEYS,
};
use crate::core::agent_event::Price;
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
    let mut mode_span = None;
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
    if let Some(c) = t.get("interactive")
        && let Some(cmd) = sink.strings(
            c,
            &format!("{place} interactive"),
            "interactive = [\"claude\", \"{prompt}\"]",
        )
    {
        check_command(sink, c, &cmd, &format!("{place} interactive"));
        p.interactive = cmd;
    }
    if let Some(m) = t.get("mode")
        && let Some(s) = sink.string(m, &format!("{place} mode"), "mode = \"headless\"")
    {
        match AgentMode::parse(&s) {
            Some(mode) => {
                p.mode = mode;
                mode_span = Some(m.span());
            }
            None => sink.error(
                &m.span(),
                format!("unknown mode `{s}` in {place}"),
                format!("mode is one of {}", AgentMode::NAMES.join(", ")),
            ),
        }
    }
    if let Some(pr) = t.get("price")
        && let Some(price) = parse_price(sink, pr, &format!("{place} price"))
    {
        p.price = Some(price);
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
                let name = k.get_ref();
                if name.is_empty() || name.contains(['=', '\0']) {
                    sink.error(
                        &k.span(),
                        format!(
                            "{place} env has an impossible variable name `{}`",
                            name.escape_debug()
                        ),
                        "an environment variable name is not empty and holds no `=` or NUL",
                    );
                } else if s.contains('\0') {
                    sink.error(
                        &val.span(),
                        format!(
                            "{place} env {name} holds a NUL byte, which no environment can carry"
                        ),
                        "remove the \\u0000 from the value",
                    );
                } else {
                    p.env.insert(name.to_string(), s);
                }
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
    if let Some(a) = t.get("account")
        && let Some(s) = sink.string(a, &format!("{place} account"), "account = \"work\"")
    {
        p.account = s;
    }
    if let Some(f) = t.get("fallback")
        && let Some(list) = sink.strings(f, &format!("{place} fallback"), "fallback = [\"codex\"]")
    {
        p.fallback = list;
    }
    let p = p.clone();
    check_mode(sink, &p, mode_span);
}

/// The prices of `price = { input = 3.0, output = 15.0, ... }`, in dollars per million tokens.
fn parse_price(sink: &mut Sink<'_>, v: &Spanned<DeValue<'_>>, place: &str) -> Option<Price> {
    let t = sink.table(v, place, "price = { input = 1.25, output = 10.0 }")?;
    sink.check_keys(t, PRICE_KEYS, place);
    let mut price = Price::default();
    let mut ok = true;
    for (key, field) in [
        ("input", &mut price.input),
        ("output", &mut price.output),
        ("cache_read", &mut price.cache_read),
        ("cache_write", &mut price.cache_write),
    ] {
        let Some(x) = t.get(key) else { continue };
        match sink.number(x, &format!("{place} {key}"), "input = 1.25") {
            Some(n) if n >= 0.0 => *field = n,
            Some(_) => {
                sink.error(
                    &x.span(),
                    format!("{place} {key} is negative"),
                    "prices are dollars per million tokens, 0 or more",
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(price)
}

/// After the whole table is read: a profile set to run interactively must have that argv.
pub(super) fn check_mode(
    sink: &mut Sink<'_>,
    p: &AgentProfile,
    span: Option<std::ops::Range<usize>>,
) {
    if let Some(span) = span
        && p.mode == AgentMode::Interactive
        && p.interactive.is_empty()
    {
        sink.error(
            &span,
            format!(
                "[agents.{}] mode is \"interactive\" but the profile has no `interactive` command",
                p.name
            ),
            "add interactive = [\"program\", \"{prompt}\"], or set mode = \"headless\"",
        );
    }
}

/// A command must have a program, and its placeholders must be ones orch-tui fills in: a typo
/// such as `{promt}` would otherwise reach the agent literally. Nothing may hold a NUL byte
/// (exec cannot pass one), and the program itself is never a placeholder's text.
fn check_command(sink: &mut Sink<'_>, v: &Spanned<DeValue<'_>>, cmd: &[String], place: &str) {
    if cmd.first().is_none_or(|p| p.trim().is_empty()) {
        sink.error(
            &v.span(),
            format!("{place} command is empty"),
            "give the program and its arguments, e.g. command = [\"claude\", \"-p\", \"{prompt}\"]",
        );
    }
    if let Some(program) = cmd.first()
        && ["{prompt}", "{prompt_file}", "{task}", "{worktree}"]
            .iter()
            .any(|p| program.contains(p))
    {
        sink.error(
            &v.span(),
            format!("{place}: the program `{program}` is a placeholder"),
            "the first entry names the program to run; placeholders go in its arguments ({orch} is allowed)",
        );
    }
    if cmd.iter().any(|a| a.contains('\0')) {
        sink.error(
            &v.span(),
            format!("{place} has an argument with a NUL byte, which no program can receive"),
            "remove the \\u0000 from the argument",
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
