//! `[worktree]`: what each new worktree gets before its agent starts (and the merge queue's
//! re-check worktree before its checks): setup commands, untracked files copied in from the main
//! working tree, a slot number and a port range, shared cache directories.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};

use crate::core::diag::{Sink, entries_in_order};

pub(super) const WORKTREE_KEYS: &[&str] = &[
    "setup",
    "setup_timeout",
    "copy",
    "cache",
    "port_base",
    "ports_per_slot",
    "reuse",
    "keep_idle",
];

/// `[worktree]`, merged over the defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorktreeSettings {
    /// Shell command lines run in order in each new worktree (`sh -c`); the first failure fails
    /// the attempt before its agent starts.
    pub setup: Vec<String>,
    /// Deadline of each setup command.
    pub setup_timeout_ms: u64,
    /// Paths relative to the repository root, copied from the main working tree (files or
    /// folders that git ignores).
    pub copy: Vec<String>,
    /// Environment variable -> folder under `.orch/cache/`, shared by every worktree.
    pub cache: BTreeMap<String, String>,
    /// Slot N (from 1) gets ports `port_base + (N-1) * ports_per_slot` and the next
    /// `ports_per_slot - 1`.
    pub port_base: u16,
    pub ports_per_slot: u16,
    /// Ignored paths (relative to a worktree's top, e.g. `target`) that a worktree reused from
    /// the pool keeps for the next task: build caches. Nothing else untracked is ever kept.
    pub reuse: Vec<String>,
    /// Idle pooled worktrees left in place when a run ends, so the next run's first tasks
    /// start without a full checkout (0: the pool is emptied; `orch-tui gc` empties it).
    pub keep_idle: usize,
}

impl WorktreeSettings {
    /// Nothing to do in a new worktree besides the slot's variables.
    pub fn is_empty(&self) -> bool {
        self.setup.is_empty() && self.copy.is_empty() && self.cache.is_empty()
    }

    /// The first port of slot `slot` (from 1), or why it does not fit under 65536.
    pub fn port_of(&self, slot: u32) -> Result<u16, String> {
        let first = u64::from(self.port_base)
            + u64::from(slot.saturating_sub(1)) * u64::from(self.ports_per_slot);
        let last = first + u64::from(self.ports_per_slot).saturating_sub(1);
        if last > 65_535 {
            return Err(format!(
                "slot {slot}'s ports ({first}-{last}) do not fit under 65536: lower \
                 [worktree] port_base or ports_per_slot, or use fewer slots"
            ));
        }
        u16::try_from(first).map_err(|e| e.to_string())
    }
}

/// A path under the repository (or `.orch/cache/`): relative, no `..`, not empty.
fn relative_problem(p: &str) -> Option<&'static str> {
    if p.trim().is_empty() {
        Some("is empty")
    } else if p.starts_with('/') {
        Some("is absolute")
    } else if p.split('/').any(|c| c == "..") {
        Some("leaves the repository (`..`)")
    } else if p.contains('\0') {
        Some("holds a NUL byte")
    } else if p.split('/').next() == Some(".git") || p.split('/').next() == Some(".orch") {
        Some("is inside .git/ or .orch/")
    } else {
        None
    }
}

fn env_name_ok(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn apply_worktree(sink: &mut Sink<'_>, w: &mut WorktreeSettings, t: &DeTable<'_>) {
    if let Some(v) = t.get("setup")
        && let Some(cmds) = sink.strings(v, "[worktree] setup", "setup = [\"npm ci\"]")
    {
        if cmds.iter().any(|c| c.trim().is_empty() || c.contains('\0')) {
            sink.error(
                &v.span(),
                "[worktree] setup has an empty command (or one holding a NUL byte)",
                "each entry is a shell command line run in the new worktree, e.g. \"npm ci\"",
            );
        } else {
            w.setup = cmds;
        }
    }
    if let Some(v) = t.get("setup_timeout") {
        match sink.duration(v, "[worktree] setup_timeout") {
            Some(0) => sink.error(
                &v.span(),
                "[worktree] setup_timeout is zero",
                "give setup commands time to run, e.g. setup_timeout = \"10m\"",
            ),
            Some(ms) => w.setup_timeout_ms = ms,
            None => {}
        }
    }
    if let Some(v) = t.get("copy")
        && let Some(paths) = sink.strings(v, "[worktree] copy", "copy = [\".env\"]")
    {
        let bad: Vec<String> = paths
            .iter()
            .filter_map(|p| relative_problem(p).map(|why| format!("`{p}` {why}")))
            .collect();
        if bad.is_empty() {
            w.copy = paths;
        } else {
            sink.error(
                &v.span(),
                format!("[worktree] copy: {}", bad.join(", ")),
                "list paths relative to the repository root, e.g. copy = [\".env\", \"CLAUDE.local.md\"]",
            );
        }
    }
    if let Some(v) = t.get("cache")
        && let Some(table) = sink.table(
            v,
            "[worktree] cache",
            "cache = { CARGO_TARGET_DIR = \"cargo-target\" }",
        )
    {
        for (k, val) in entries_in_order(table) {
            let name = k.get_ref().to_string();
            let what = format!("[worktree] cache {name}");
            let Some(dir) = sink.string(val, &what, "CARGO_TARGET_DIR = \"cargo-target\"") else {
                continue;
            };
            if !env_name_ok(&name) {
                sink.error(
                    &k.span(),
                    format!("{what}: `{name}` is not an environment variable name"),
                    "use letters, digits and `_`, not starting with a digit, e.g. CARGO_TARGET_DIR",
                );
            } else if let Some(why) = relative_problem(&dir) {
                sink.error(
                    &val.span(),
                    format!("{what}: the folder `{dir}` {why}"),
                    "name a folder under .orch/cache/, e.g. \"cargo-target\"",
                );
            } else {
                w.cache.insert(name, dir);
            }
        }
    }
    if let Some(v) = t.get("port_base")
        && let Some(n) = sink.int_in(v, "[worktree] port_base", 1024, 65_535, "port_base = 41000")
    {
        w.port_base = n as u16;
    }
    if let Some(v) = t.get("ports_per_slot")
        && let Some(n) = sink.int_in(
            v,
            "[worktree] ports_per_slot",
            1,
            1000,
            "ports_per_slot = 10",
        )
    {
        w.ports_per_slot = n as u16;
    }
    if let Some(v) = t.get("reuse") {
        apply_reuse(sink, w, v);
    }
    if let Some(v) = t.get("keep_idle")
        && let Some(n) = sink.int_in(v, "[worktree] keep_idle", 0, 64, "keep_idle = 4")
    {
        w.keep_idle = n as usize;
    }
}

fn apply_reuse(sink: &mut Sink<'_>, w: &mut WorktreeSettings, v: &toml::Spanned<DeValue<'_>>) {
    let Some(paths) = sink.strings(v, "[worktree] reuse", "reuse = [\"target\"]") else {
        return;
    };
    let DeValue::Array(items) = v.get_ref() else {
        return;
    };
    let mut ok = Vec::new();
    for (path, item) in paths.into_iter().zip(items.iter()) {
        match reuse_problem(&path) {
            Some(why) => sink.error(
                &item.span(),
                format!("[worktree] reuse entry \"{path}\" {why}"),
                "name an ignored folder or file relative to the top of the repository, e.g. reuse = [\"target\", \"web/node_modules\"]",
            ),
            None => ok.push(path.trim_matches('/').to_string()),
        }
    }
    w.reuse = ok;
}

/// Why a `[worktree] reuse` entry cannot name a path inside a worktree, or None.
fn reuse_problem(path: &str) -> Option<&'static str> {
    let p = path.trim_matches('/');
    if p.is_empty() {
        Some("names no path (the whole worktree cannot be kept)")
    } else if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        Some("must stay inside the worktree (no empty, `.` or `..` parts)")
    } else if p.split('/').any(|c| c == ".git") {
        Some("names git's own files")
    } else if p.contains(['*', '?', '[', '\\', '!', '\n', '\0']) {
        Some("holds a pattern character; name the path itself")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::{default_config, parse_config};

    #[test]
    fn a_worktree_table_is_read_and_checked() {
        let cfg = parse_config(
            "c.toml",
            "[worktree]\nsetup = [\"npm ci\"]\ncopy = [\".env\", \"conf/local.yml\"]\n\
             cache = { CARGO_TARGET_DIR = \"target\" }\nport_base = 5000\nports_per_slot = 3\n",
        )
        .unwrap();
        let w = &cfg.worktree;
        assert_eq!(w.setup, ["npm ci"]);
        assert_eq!(w.copy, [".env", "conf/local.yml"]);
        assert_eq!(w.cache["CARGO_TARGET_DIR"], "target");
        assert_eq!(w.port_of(1), Ok(5000));
        assert_eq!(w.port_of(3), Ok(5006));
        assert_eq!(
            w.setup_timeout_ms,
            default_config().worktree.setup_timeout_ms
        );
        let err = parse_config(
            "c.toml",
            "[worktree]\ncopy = [\"../secrets\", \"/etc/passwd\"]\ncache = { \"1X\" = \"a\", B = \"../b\" }\nsetup = [\"\"]\nports_per_slot = 0\n",
        )
        .unwrap_err();
        let all: Vec<String> = err.iter().map(|d| d.to_string()).collect();
        let all = all.join("\n");
        for want in [
            "c.toml:2:8: error: [worktree] copy: `../secrets` leaves the repository (`..`), `/etc/passwd` is absolute",
            "`1X` is not an environment variable name",
            "the folder `../b` leaves the repository",
            "[worktree] setup has an empty command",
            "ports_per_slot is 0",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
    }

    #[test]
    fn keep_idle_is_a_small_count_and_zero_by_default() {
        assert_eq!(default_config().worktree.keep_idle, 0);
        let cfg = parse_config("c.toml", "[worktree]\nkeep_idle = 4\n").unwrap();
        assert_eq!(cfg.worktree.keep_idle, 4);
        for bad in ["-1", "65", "\"4\""] {
            let err =
                parse_config("c.toml", &format!("[worktree]\nkeep_idle = {bad}\n")).unwrap_err();
            let text = err[0].to_string();
            assert!(
                text.starts_with("c.toml:2:13: error: [worktree] keep_idle"),
                "{bad}: {text}"
            );
        }
    }

    #[test]
    fn ports_that_do_not_fit_are_refused_per_slot() {
        let w = WorktreeSettings {
            port_base: 64_000,
            ports_per_slot: 600,
            ..WorktreeSettings::default()
        };
        assert_eq!(w.port_of(2), Ok(64_600));
        let err = w.port_of(3).unwrap_err();
        assert!(
            err.contains("65200-65799") && err.contains("port_base"),
            "{err}"
        );
    }
}
