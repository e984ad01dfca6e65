//! The base branch: which branch the integration branch is cut from and `orch-tui sync` follows,
//! and which commit a sync goes onto — decided from facts the caller read from git
//! (docs/git.md, "The base").

/// The base when none is asked for and none is recorded: the branch checked out in the main
/// worktree — what `HEAD` meant before there were bases, and the branch whose work this is —
/// unless it is orch-tui's own or `HEAD` is detached; then `main`, when it exists.
/// `current`: the full ref HEAD points at (`refs/heads/...`), if any.
pub fn default_base(
    current: Option<&str>,
    integration_branch: &str,
    main_exists: bool,
) -> Option<String> {
    match current {
        Some(c) if not_a_base(c, integration_branch).is_none() => Some(c.to_string()),
        _ if main_exists => Some("refs/heads/main".into()),
        _ => None,
    }
}

/// Why a ref cannot be a base, or `None`: it must be a branch (local or remote-tracking), and
/// not one orch-tui writes (the integration branch, a task's `orch/...`).
pub fn not_a_base(refname: &str, integration_branch: &str) -> Option<String> {
    let Some(name) = refname
        .strip_prefix("refs/heads/")
        .or_else(|| refname.strip_prefix("refs/remotes/"))
    else {
        return Some(format!(
            "{refname} is not a branch: the base is a branch that moves (main, origin/main)"
        ));
    };
    let local = refname.starts_with("refs/heads/");
    if local && (name == integration_branch || name.starts_with("orch/")) {
        return Some(format!(
            "{name} is orch-tui's own branch: the base is the branch the work is for (main, \
             origin/main)"
        ));
    }
    None
}

/// A run that names a base (`--base`, `base` in the config) on a ledger that records another.
/// Switching the base replays the merged work onto it: that is a sync, with its checks, never a
/// side effect of starting a run. `None`: the run may go on.
pub fn refuse_other_base(recorded: Option<&str>, asked: Option<&str>) -> Option<String> {
    let (Some(recorded), Some(asked)) = (recorded, asked) else {
        return None;
    };
    (recorded != asked).then(|| {
        format!(
            "this run's integration branch stands on {}, not {}: to move it onto {} (its merged \
             work replayed there and checked), run `orch-tui sync --base {}`; to keep {}, drop \
             --base (or `base` in the config)",
            label(recorded),
            label(asked),
            label(asked),
            label(asked),
            label(recorded)
        )
    })
}

/// Which commit a local base that tracks an upstream has moved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The local branch holds the upstream (it is even with it, or has unpushed commits):
    /// the local branch's commit — unpushed work is never dropped.
    Local,
    /// The upstream is ahead and the local branch has nothing of its own: the upstream's.
    Upstream,
    /// Each has commits the other lacks: refused (either choice would drop work).
    Diverged,
}

pub fn follow(local_has_upstream: bool, upstream_has_local: bool) -> Follow {
    if local_has_upstream {
        Follow::Local
    } else if upstream_has_local {
        Follow::Upstream
    } else {
        Follow::Diverged
    }
}

/// `main`, `origin/main` for a full ref name.
pub fn label(refname: &str) -> &str {
    crate::core::supervisor::ref_label(refname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_checked_out_branch_unless_it_is_orch_tuis_own() {
        let main = Some("refs/heads/main".to_string());
        assert_eq!(
            default_base(Some("refs/heads/dev"), "orch/integration", true).as_deref(),
            Some("refs/heads/dev")
        );
        assert_eq!(
            default_base(
                Some("refs/heads/orch/integration"),
                "orch/integration",
                true
            ),
            main
        );
        assert_eq!(
            default_base(Some("refs/heads/orch/t1"), "orch/integration", true),
            main
        );
        assert_eq!(default_base(None, "orch/integration", true), main);
        assert_eq!(default_base(None, "orch/integration", false), None);
        assert_eq!(
            default_base(Some("refs/heads/work"), "work", false),
            None,
            "a custom integration branch checked out is not a base either"
        );
    }

    #[test]
    fn only_branches_that_orch_tui_does_not_write_are_bases() {
        assert!(not_a_base("refs/heads/main", "orch/integration").is_none());
        assert!(not_a_base("refs/remotes/origin/main", "orch/integration").is_none());
        assert!(not_a_base("refs/tags/v1", "orch/integration").is_some());
        assert!(not_a_base("refs/heads/orch/integration", "orch/integration").is_some());
    }

    #[test]
    fn a_run_asking_for_another_base_is_pointed_at_sync() {
        assert_eq!(refuse_other_base(None, Some("refs/heads/main")), None);
        assert_eq!(refuse_other_base(Some("refs/heads/main"), None), None);
        assert_eq!(
            refuse_other_base(Some("refs/heads/main"), Some("refs/heads/main")),
            None
        );
        let why = refuse_other_base(Some("refs/heads/main"), Some("refs/remotes/origin/dev"))
            .unwrap_or_default();
        assert!(why.contains("orch-tui sync --base origin/dev"), "{why}");
    }

    #[test]
    fn a_sync_follows_whichever_side_holds_the_other() {
        assert_eq!(follow(true, true), Follow::Local, "even");
        assert_eq!(follow(true, false), Follow::Local, "unpushed commits kept");
        assert_eq!(follow(false, true), Follow::Upstream);
        assert_eq!(follow(false, false), Follow::Diverged);
    }
}
