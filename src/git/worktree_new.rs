//! A new linked worktree registered in one rename, so no git process sees it half made.
//!
//! `git worktree add` writes `.git/worktrees/<id>/commondir` in place, and any git process that
//! lists the worktrees meanwhile dies reading it empty ("fatal: failed to read
//! .../commondir: Success"). Our own worktree commands wait on each other (`run.rs`), but an
//! agent's do not: `git checkout -b` looks at every worktree for the branch, and one did die
//! so while a dispatch added the worktree of another task (`tests/e2e_faults.rs`, 1 run in 9
//! with three runs side by side). Here the admin folder is written whole in
//! `.git/orch-staging/` and renamed into `.git/worktrees/`; the worktree's files are then
//! checked out by a plain `git checkout --force` in it, which also runs the user's
//! post-checkout hook as `worktree add` does.
//!
//! Only the plain case: files refs (not reftable), a repository without per-worktree config or
//! sparse checkout (which `worktree add` copies), a full object id, a folder name git keeps as
//! it is, nothing at the worktree's path. Anything else is left to `git worktree add`.

use std::path::{Path, PathBuf};

use crate::git::files::GitDirs;
use crate::git::{GitError, Repo};

/// What `locked` says while the worktree is being made (as git's "initializing").
const MAKING: &str = "orch-tui: being made";

/// A worktree registered but not yet checked out: where its admin folder is.
pub(super) struct Registered {
    path: PathBuf,
    admin: PathBuf,
    common: PathBuf,
}

impl Registered {
    /// Lets git prune it again (and our pool take it): the `locked` file goes.
    pub(super) fn unlock(&self) {
        let _ = std::fs::remove_file(self.admin.join("locked"));
    }

    /// Undoes the registration after a failed checkout: the admin folder leaves
    /// `.git/worktrees/` in one rename, then the new folder goes (it held only what the
    /// checkout wrote from the repository).
    pub(super) fn unregister(self) {
        let _admin = crate::git::run::worktree_admin_lock();
        let gone = staging_dir(&self.common, "gone");
        let moved = std::fs::create_dir_all(staging(&self.common))
            .and_then(|()| std::fs::rename(&self.admin, &gone));
        let _ = std::fs::remove_dir_all(if moved.is_ok() { &gone } else { &self.admin });
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn staging(common: &Path) -> PathBuf {
    common.join("orch-staging")
}

fn staging_dir(common: &Path, what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    staging(common).join(format!("{what}.{}.{nanos}", std::process::id()))
}

/// A folder name git uses as the worktree's id unchanged.
fn plain_id(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with(".lock")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether the repository's config asks `worktree add` for more than the admin folder.
fn asks_for_more(common: &Path) -> bool {
    let config = std::fs::read_to_string(common.join("config"))
        .unwrap_or_default()
        .to_ascii_lowercase();
    config.contains("worktreeconfig")
        || config.contains("sparsecheckout")
        || common.join("info/sparse-checkout").exists()
}

impl Repo {
    /// What a crash left in `.git/orch-staging/` between writing a worktree's admin folder and
    /// renaming it into place: nothing of value (`orch-tui gc` removes it).
    pub fn staging_leftovers(&self) -> Vec<PathBuf> {
        let Some(GitDirs { common, .. }) = GitDirs::of(&self.root) else {
            return Vec::new();
        };
        std::fs::read_dir(staging(&common))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// Registers a new worktree at `path`, detached at `oid` and locked, its files not yet
    /// checked out. None (nothing changed) when the case is not the plain one.
    pub(super) fn register_worktree(&self, path: &Path, oid: &str) -> Option<Registered> {
        let full = matches!(oid.len(), 40 | 64) && oid.bytes().all(|b| b.is_ascii_hexdigit());
        let id = path.file_name()?.to_str()?;
        if !full || !plain_id(id) || path.symlink_metadata().is_ok() {
            return None;
        }
        let GitDirs { common, .. } = GitDirs::of(&self.root)?;
        let common = common.canonicalize().ok()?;
        if asks_for_more(&common) {
            return None;
        }
        let parent = path.parent()?;
        std::fs::create_dir_all(parent).ok()?;
        let path = parent.canonicalize().ok()?.join(id);
        let worktrees = common.join("worktrees");
        std::fs::create_dir_all(&worktrees).ok()?;
        let _admin = crate::git::run::worktree_admin_lock();
        // git names it after the folder, with a number when that name is taken.
        let admin = std::iter::once(id.to_string())
            .chain((1..100).map(|n| format!("{id}{n}")))
            .map(|name| worktrees.join(name))
            .find(|a| a.symlink_metadata().is_err())?;
        let staged = staging_dir(&common, id);
        let written = std::fs::create_dir_all(&staged)
            .and_then(|()| std::fs::write(staged.join("locked"), MAKING))
            .and_then(|()| std::fs::write(staged.join("HEAD"), format!("{oid}\n")))
            .and_then(|()| std::fs::write(staged.join("commondir"), "../..\n"))
            .and_then(|()| {
                std::fs::write(
                    staged.join("gitdir"),
                    format!("{}\n", path.join(".git").display()),
                )
            })
            .and_then(|()| std::fs::create_dir(&path))
            .and_then(|()| {
                std::fs::write(path.join(".git"), format!("gitdir: {}\n", admin.display()))
            })
            .and_then(|()| std::fs::rename(&staged, &admin));
        if let Err(e) = written {
            tracing::debug!(error = %e, path = %path.display(), "git: could not register a worktree by hand; asking git");
            let _ = std::fs::remove_dir_all(&staged);
            let _ = std::fs::remove_dir_all(&path);
            return None;
        }
        Some(Registered {
            path,
            admin,
            common,
        })
    }

    /// A new worktree at `path` as `git worktree add` makes it, registered in one rename
    /// (`register_worktree`) and checked out with `git checkout --force <checkout...>` in it
    /// (e.g. `["--detach", oid]`, `["--no-track", "-b", branch, oid]`), unlocked after
    /// unless `keep_locked`. None: not the plain case, nothing changed (ask git); Some(Err):
    /// the checkout failed and the registration is undone.
    pub(super) fn add_worktree_in_one_rename(
        &self,
        path: &Path,
        oid: &str,
        checkout: &[&str],
        keep_locked: bool,
    ) -> Option<Result<Registered, GitError>> {
        let reg = self.register_worktree(path, oid)?;
        let done = self
            .git_in(&reg.path)
            .args(["checkout", "--quiet", "--force"])
            .args(checkout)
            .run();
        Some(match done {
            Ok(_) => {
                if !keep_locked {
                    reg.unlock();
                }
                Ok(reg)
            }
            Err(e) => {
                reg.unregister();
                Err(e)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_git::git;

    fn repo() -> (tempfile::TempDir, PathBuf, String) {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("repo");
        std::fs::create_dir(&root).expect("mkdir");
        git(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("a.txt"), "a\n").expect("write");
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-q", "-m", "one"]);
        let oid = git(&root, &["rev-parse", "HEAD"]);
        (t, root, oid)
    }

    /// What git says of a worktree made in one rename is what it says of one it added.
    #[test]
    fn a_worktree_made_in_one_rename_is_one_git_knows() {
        let (t, root, oid) = repo();
        let r = Repo::open(&root).expect("open");
        let wt = t.path().join("wts/task-1");
        let made = r
            .add_worktree_in_one_rename(&wt, &oid, &["--no-track", "-b", "orch/task"], false)
            .expect("the plain case")
            .expect("checked out");
        assert!(!made.admin.join("locked").exists(), "unlocked");
        assert_eq!(std::fs::read_to_string(wt.join("a.txt")).expect("a"), "a\n");
        assert_eq!(git(&wt, &["symbolic-ref", "HEAD"]), "refs/heads/orch/task");
        assert_eq!(git(&wt, &["status", "--porcelain"]), "");
        let listed = git(&root, &["worktree", "list", "--porcelain"]);
        assert!(
            listed.contains(&format!(
                "worktree {}",
                wt.canonicalize().expect("c").display()
            )),
            "{listed}"
        );
        // The staging folder holds nothing left over, and git's own checks pass.
        let staged = root.join(".git/orch-staging");
        assert!(staged.read_dir().expect("staging").next().is_none());
        git(&root, &["worktree", "prune"]);
        assert!(wt.join(".git").exists(), "not pruned");
        git(&root, &["fsck", "--no-progress"]);
        git(&root, &["worktree", "remove", wt.to_str().expect("utf8")]);
        assert!(!wt.exists());

        // A second one under a name whose admin folder is taken gets a number, as git does.
        let again = t.path().join("other/task-1");
        r.add_worktree_in_one_rename(&again, &oid, &["--detach", &oid], true)
            .expect("plain")
            .expect("checked out");
        let second = t.path().join("third/task-1");
        let reg = r
            .add_worktree_in_one_rename(&second, &oid, &["--detach", &oid], false)
            .expect("plain")
            .expect("checked out");
        assert!(
            reg.admin.ends_with("worktrees/task-11"),
            "{}",
            reg.admin.display()
        );
        assert!(
            git(&root, &["worktree", "list", "--porcelain"])
                .contains("locked orch-tui: being made"),
            "kept locked when asked"
        );
    }

    /// git dies reading a worktree's admin folder half written (an agent's `checkout -b`
    /// looks at every worktree), and `git worktree add` makes that folder in place: first the
    /// folder, then each file. Ours must arrive in `.git/worktrees/` whole, by one rename,
    /// never by a create there; what git does after (its checkout) is its own.
    #[test]
    fn the_admin_folder_arrives_whole_by_one_rename() {
        use notify::event::{CreateKind, ModifyKind, RenameMode};
        use notify::{EventKind, RecursiveMode, Watcher};
        let (t, root, oid) = repo();
        let r = Repo::open(&root).expect("open");
        let worktrees = root.join(".git/worktrees");
        std::fs::create_dir_all(&worktrees).expect("mkdir");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut w = notify::recommended_watcher(tx).expect("watcher");
        w.watch(&worktrees, RecursiveMode::NonRecursive)
            .expect("watch");
        for i in 0..3 {
            let path = t.path().join(format!("wts/t-{i}"));
            r.create_worktree(&path, &format!("orch/t-{i}"), &oid, "refs/orch/backup/t")
                .expect("made");
        }
        // A marker made after them: every event of theirs came before its own.
        std::fs::create_dir(worktrees.join("zz-marker")).expect("marker");
        let mut arrived = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let e = rx.recv_timeout(left).expect("events").expect("event");
            let name = e
                .paths
                .last()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            if name == "zz-marker" {
                break;
            }
            match e.kind {
                EventKind::Create(CreateKind::Folder | CreateKind::Any) => {
                    panic!("{name} was created in place in .git/worktrees")
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
                    arrived.push(name)
                }
                _ => {}
            }
        }
        arrived.sort();
        assert_eq!(arrived, ["t-0", "t-1", "t-2"]);
    }

    /// A checkout that fails (the branch exists) leaves nothing behind; anything but the
    /// plain case is left to git.
    #[test]
    fn a_failed_checkout_undoes_it_and_odd_cases_are_left_to_git() {
        let (t, root, oid) = repo();
        let r = Repo::open(&root).expect("open");
        git(&root, &["branch", "orch/taken"]);
        let wt = t.path().join("wts/t-2");
        let failed = r
            .add_worktree_in_one_rename(&wt, &oid, &["--no-track", "-b", "orch/taken"], false)
            .expect("the plain case");
        assert!(failed.is_err());
        assert!(!wt.exists());
        assert!(!root.join(".git/worktrees/t-2").exists());
        assert_eq!(
            git(&root, &["worktree", "list", "--porcelain"])
                .matches("worktree ")
                .count(),
            1
        );

        assert!(r.register_worktree(&wt, "main").is_none(), "not a full id");
        assert!(
            r.register_worktree(&t.path().join(".hidden"), &oid)
                .is_none()
        );
        std::fs::create_dir_all(&wt).expect("mkdir");
        assert!(
            r.register_worktree(&wt, &oid).is_none(),
            "something is there"
        );
        std::fs::remove_dir(&wt).expect("rmdir");
        git(&root, &["config", "extensions.worktreeConfig", "true"]);
        assert!(
            r.register_worktree(&wt, &oid).is_none(),
            "per-worktree config"
        );
    }
}
