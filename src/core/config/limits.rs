//! `[limits]`: how long a usage limit without a reset time pauses its account, and when a
//! profile's circuit breaker opens; `[permissions]`: the fleet-wide rules that answer agents'
//! permission requests without the human.

use toml::de::DeTable;

use super::{LimitSettings, PermissionRules};
use crate::core::diag::Sink;

pub(super) const LIMITS_KEYS: &[&str] = &["wait", "breaker_failures", "breaker_cooldown"];
pub(super) const PERMISSIONS_KEYS: &[&str] = &["allow", "deny"];

pub(super) fn apply_limits(sink: &mut Sink<'_>, l: &mut LimitSettings, t: &DeTable<'_>) {
    for (key, field) in [
        ("wait", &mut l.wait_ms),
        ("breaker_cooldown", &mut l.breaker_cooldown_ms),
    ] {
        if let Some(v) = t.get(key) {
            match sink.duration(v, &format!("[limits] {key}")) {
                Some(0) => sink.error(
                    &v.span(),
                    format!("[limits] {key} is zero"),
                    "give it a time such as \"15m\"",
                ),
                Some(ms) => *field = ms,
                None => {}
            }
        }
    }
    if let Some(v) = t.get("breaker_failures")
        && let Some(n) = sink.int_in(
            v,
            "[limits] breaker_failures",
            1,
            1000,
            "breaker_failures = 3",
        )
    {
        l.breaker_failures = n as u32;
    }
}

pub(super) fn apply_permissions(sink: &mut Sink<'_>, p: &mut PermissionRules, t: &DeTable<'_>) {
    for (key, field) in [("allow", &mut p.allow), ("deny", &mut p.deny)] {
        let Some(v) = t.get(key) else { continue };
        let Some(rules) = sink.strings(
            v,
            &format!("[permissions] {key}"),
            "allow = [\"Bash(cargo test*)\", \"Edit(src/**)\"]",
        ) else {
            continue;
        };
        for r in &rules {
            if let Err(why) = crate::core::permissions::Rule::parse(r) {
                sink.error(
                    &v.span(),
                    format!("[permissions] {key}: `{r}` {why}"),
                    "write Tool or Tool(pattern), e.g. \"Bash(cargo test*)\", \"Edit(src/**)\", \"Read\"",
                );
            }
        }
        *field = rules;
    }
}
