//! `[git]`: how orch-tui runs git.

use toml::de::DeTable;

use super::GitSettings;
use crate::core::diag::Sink;

pub(super) const GIT_KEYS: &[&str] = &["timeout"];

pub(super) fn apply_git(sink: &mut Sink<'_>, g: &mut GitSettings, t: &DeTable<'_>) {
    if let Some(v) = t.get("timeout") {
        match sink.duration(v, "[git] timeout") {
            Some(0) => sink.error(
                &v.span(),
                "[git] timeout is zero",
                "every git call needs time to run (commits run your hooks), e.g. timeout = \"10m\"",
            ),
            Some(ms) => g.timeout_ms = ms,
            None => {}
        }
    }
}
