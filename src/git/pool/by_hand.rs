//! The two steps of a pooled worktree's take that git's own files allow without starting a git
//! process: moving the worktree (a rename plus the one admin file `git worktree move` rewrites)
//! and making a new task branch on a worktree whose HEAD already is the base (the ref written
//! through git's own lock-file protocol, HEAD pointed at it, the reflog entries git would
//! write). Each answers `false` — touching nothing — whenever the case is not the plain one it
//! knows (reftable refs, relative worktree links, submodules, an existing branch, a lock held),
//! and the caller then runs git as before. Two processes fewer on the dispatch path, which on
//! two busy cores is most of its time (docs/benchmarks.md, "Dispatch").

use std::io::Write;
use std::path::Path;

use crate::git::collect::ATTEMPT_START_REFLOG;
use crate::git::files::{GitDirs, plain_branch_name};

/// Writes `path` whole or not at all (a temporary beside it, renamed over it).
fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("orch-tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Creates `path` only if nothing is there (git's lock files), holding `text`.
fn create_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())
        .inspect_err(|_| drop(std::fs::remove_file(path)))
}

/// `git worktree move from to` for a worktree without submodules that nobody locked: the
/// folder renamed, and its admin folder's `gitdir` pointed at the new place (all that git
/// 2.47's move writes). Call it under the pool lock; it also holds the worktree bookkeeping
/// lock (`run.rs`) so no `git worktree` command of this process reads it half done.
pub(super) fn move_worktree(from: &Path, to: &Path) -> bool {
    let _admin = crate::git::run::worktree_admin_lock();
    let Some(GitDirs { admin, .. }) = GitDirs::linked_strict(from) else {
        return false;
    };
    if admin.join("locked").exists()
        || from.join(".gitmodules").exists()
        || to.exists()
        || to.parent().is_none_or(|p| !p.is_dir())
    {
        return false;
    }
    if std::fs::rename(from, to).is_err() {
        return false;
    }
    let linked = to.canonicalize().map(|t| {
        replace_file(
            &admin.join("gitdir"),
            &format!("{}\n", t.join(".git").display()),
        )
    });
    match linked {
        Ok(Ok(())) => true,
        _ => {
            // Undone: the caller asks git instead.
            let _ = std::fs::rename(to, from);
            false
        }
    }
}

/// Whether `refname`, a ref under it (`refname/...`) or one it would be under (`refs/heads/orch`
/// for `refs/heads/orch/x`) is in `packed-refs`: git refuses both.
fn packed(common: &Path, refname: &str) -> Result<bool, ()> {
    let text = match std::fs::read_to_string(common.join("packed-refs")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(_) => return Err(()),
    };
    let under = format!("{refname}/");
    Ok(text.lines().any(|l| {
        l.split_once(' ').is_some_and(|(_, r)| {
            r == refname
                || r.starts_with(&under)
                || refname
                    .strip_prefix(r)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }))
}

/// A reflog line as git writes it: old, new, who, when, then the message after a tab.
fn reflog_line(old: &str, new: &str, msg: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{old} {new} orch-tui <orch-tui@localhost> {secs} +0000\t{msg}\n")
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// In the linked worktree `worktree`, whose HEAD is detached at `oid` with nothing changed:
/// the new branch `branch` made at `oid` and checked out, as `git checkout -b branch oid`
/// (with `GIT_REFLOG_ACTION` set to the attempt's mark) leaves it, files untouched. False,
/// having changed nothing, unless that is exactly the case: the branch (or a ref below or
/// above it) exists, a lock is held, the refs are not git's files backend.
pub(super) fn new_branch_at_head(worktree: &Path, branch: &str, oid: &str) -> bool {
    let Some(GitDirs { admin, common }) = GitDirs::linked_strict(worktree) else {
        return false;
    };
    let common = common.as_path();
    let hex = oid.len() == 40 || oid.len() == 64;
    if !hex || !oid.bytes().all(|b| b.is_ascii_hexdigit()) || !plain_branch_name(branch) {
        return false;
    }
    if common.join("reftable").exists() {
        return false;
    }
    match std::fs::read_to_string(admin.join("HEAD")) {
        Ok(h) if h.trim_end() == oid => {}
        _ => return false,
    }
    let refname = format!("refs/heads/{branch}");
    let loose = common.join(&refname);
    let ref_lock = common.join(format!("{refname}.lock"));
    let head_lock = admin.join("HEAD.lock");
    if loose
        .parent()
        .is_none_or(|dir| std::fs::create_dir_all(dir).is_err())
    {
        return false;
    }
    if create_new(&ref_lock, &format!("{oid}\n")).is_err() {
        return false;
    }
    // Loose before packed: `pack-refs` writes the packed copy before it deletes the loose one,
    // so a branch being packed meanwhile is seen in one of the two.
    let taken = loose.exists() || packed(common, &refname) != Ok(false);
    if taken || create_new(&head_lock, &format!("ref: {refname}\n")).is_err() {
        let _ = std::fs::remove_file(&ref_lock);
        return false;
    }
    if std::fs::rename(&ref_lock, &loose).is_err() {
        let _ = std::fs::remove_file(&ref_lock);
        let _ = std::fs::remove_file(&head_lock);
        return false;
    }
    if std::fs::rename(&head_lock, admin.join("HEAD")).is_err() {
        // The branch stays (at the base: nothing of value); git makes the rest.
        let _ = std::fs::remove_file(&head_lock);
        return false;
    }
    let zero = "0".repeat(oid.len());
    // The reflogs are bookkeeping (collect reads HEAD's back to the attempt's mark); a failure
    // to write them costs a longer read there, not correctness.
    let _ = append(
        &common.join("logs").join(&refname),
        &reflog_line(&zero, oid, &format!("branch: Created from {oid}")),
    );
    let _ = append(
        &admin.join("logs/HEAD"),
        &reflog_line(oid, oid, ATTEMPT_START_REFLOG),
    );
    true
}

/// In the linked worktree `worktree`, on a branch: HEAD detached at that branch's commit, as
/// `git checkout --detach` writes it (HEAD through its lock file, the reflog entry), files and
/// index untouched: for parking a worktree whose files and index are its HEAD's already. True
/// when HEAD is detached now (also when it already was); false, having changed nothing, for
/// anything but that plain case (reftable, an odd branch name, a lock held).
pub(super) fn detach_head(worktree: &Path) -> bool {
    let Some(dirs) = GitDirs::linked_strict(worktree) else {
        return false;
    };
    if dirs.common.join("reftable").exists() {
        return false;
    }
    let head_file = dirs.admin.join("HEAD");
    let Ok(head) = std::fs::read_to_string(&head_file) else {
        return false;
    };
    let Some(refname) = head
        .strip_prefix("ref: ")
        .and_then(|r| r.strip_suffix('\n'))
    else {
        return crate::git::files::oid_line(&head).is_some();
    };
    let Some(branch) = refname
        .strip_prefix("refs/heads/")
        .filter(|b| plain_branch_name(b))
    else {
        return false;
    };
    let Some(Some(oid)) = dirs.branch_oid(refname) else {
        return false;
    };
    let head_lock = dirs.admin.join("HEAD.lock");
    if create_new(&head_lock, &format!("{oid}\n")).is_err() {
        return false;
    }
    // Read again under the lock: a HEAD changed meanwhile is left to git.
    if std::fs::read_to_string(&head_file).ok().as_deref() != Some(head.as_str())
        || std::fs::rename(&head_lock, &head_file).is_err()
    {
        let _ = std::fs::remove_file(&head_lock);
        return false;
    }
    // Bookkeeping only, as in `new_branch_at_head`.
    let _ = append(
        &dirs.admin.join("logs/HEAD"),
        &reflog_line(
            &oid,
            &oid,
            // What `checkout --detach` with no commit named writes.
            &format!("checkout: moving from {branch} to HEAD"),
        ),
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_branch_above_below_or_equal_blocks_the_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = |r: &str| format!("{} {r}\n", "a".repeat(40));
        let cases = [
            ("refs/heads/orch/t", true),
            ("refs/heads/orch", true),
            ("refs/heads/orch/t/x", true),
            ("refs/heads/orch/tt", false),
            ("refs/heads/orc", false),
        ];
        for (packed_ref, blocks) in cases {
            let text = format!(
                "# pack-refs with: peeled fully-peeled sorted \n{}",
                line(packed_ref)
            );
            std::fs::write(dir.path().join("packed-refs"), text).expect("write");
            assert_eq!(
                packed(dir.path(), "refs/heads/orch/t"),
                Ok(blocks),
                "{packed_ref}"
            );
        }
        std::fs::remove_file(dir.path().join("packed-refs")).expect("rm");
        assert_eq!(packed(dir.path(), "refs/heads/orch/t"), Ok(false));
    }

    #[test]
    fn only_plain_branch_names_are_written_by_hand() {
        for ok in ["orch/t-1", "orch/a_b.c", "orch/x"] {
            assert!(plain_branch_name(ok), "{ok}");
        }
        for bad in [
            "",
            "orch//t",
            "orch/.t",
            "orch/t.lock",
            "orch/a..b",
            "orch/t x",
            "orch/ä",
        ] {
            assert!(!plain_branch_name(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod detach_tests {
    use super::*;
    use crate::git::test_git::git;

    /// git's own view after the detach by hand is what `git checkout --detach` leaves.
    #[test]
    fn a_detach_by_hand_is_what_git_sees_as_detached() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("repo");
        std::fs::create_dir(&root).expect("mkdir");
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["commit", "-q", "--allow-empty", "-m", "one"]);
        let wt = t.path().join("wt");
        let wt_s = wt.to_str().expect("utf8");
        git(
            &root,
            &["worktree", "add", "-q", "-b", "orch/t-1", wt_s, "main"],
        );
        git(&wt, &["commit", "-q", "--allow-empty", "-m", "two"]);
        let tip = git(&wt, &["rev-parse", "HEAD"]);

        // A HEAD lock held by someone: nothing changes.
        std::fs::write(root.join(".git/worktrees/wt/HEAD.lock"), "x").expect("lock");
        assert!(!detach_head(&wt));
        assert_eq!(git(&wt, &["symbolic-ref", "HEAD"]), "refs/heads/orch/t-1");
        std::fs::remove_file(root.join(".git/worktrees/wt/HEAD.lock")).expect("unlock");

        assert!(detach_head(&wt));
        assert_eq!(git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]), "HEAD");
        assert_eq!(git(&wt, &["rev-parse", "HEAD"]), tip);
        assert_eq!(
            git(&wt, &["reflog", "-1", "--format=%gs"]),
            "checkout: moving from orch/t-1 to HEAD"
        );
        // The branch is no longer checked out anywhere: git deletes it.
        git(&root, &["branch", "-D", "orch/t-1"]);
        assert!(detach_head(&wt), "already detached");

        // A branch only in packed-refs is read there.
        git(&wt, &["checkout", "-q", "-b", "orch/t-2"]);
        git(&root, &["pack-refs", "--all"]);
        assert!(detach_head(&wt));
        assert_eq!(git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]), "HEAD");
        assert_eq!(git(&wt, &["rev-parse", "HEAD"]), tip);
        // A name git accepts but task ids never have is left to git.
        git(&wt, &["checkout", "-q", "-b", "orch/t@3"]);
        assert!(!detach_head(&wt));
        assert_eq!(git(&wt, &["symbolic-ref", "HEAD"]), "refs/heads/orch/t@3");
    }
}
