//! git: worktrees, branches, commits, rebase without a working tree, the ref compare-and-swap the
//! merge queue relies on (DESIGN §5; what this does to the user's repo is in docs/git.md).
//!
//! Everything goes through the `git` binary with argument vectors (see `run.rs`). Nothing here
//! checks out, resets or stashes in the user's working tree: new branches are made with
//! `update-ref`, rebases with `merge-tree` + `commit-tree`, and only worktrees under our control
//! are ever written to.

mod backup;
mod base;
mod collect;
mod files;
mod housekeeping;
mod paths;
mod pool;
mod process;
mod replay;
mod retire;
mod run;
mod scratch;
#[cfg(test)]
mod test_git;
mod top_level;
mod turn_commit;
mod watch;
mod worktree;
mod worktree_list;
mod worktree_new;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use backup::BackupRef;
pub use base::RemoteBranch;
pub use collect::{AttemptChange, ChangeSource, Collect, Stray};
pub use housekeeping::HOUSEKEEPING_EVERY;
pub use paths::PathStatus;
pub use pool::{Pool, Readied, Taken, takes_waiting_for_refresh};
pub use retire::{OrchWorktree, Retired};
use run::Git;
pub use run::GitError;
pub use worktree::WorktreeInfo;

/// Where backups of branch tips live; `orch-tui gc` is the only thing that deletes them.
pub const BACKUP_PREFIX: &str = "refs/orch/backup/";

/// The trailers that mark a commit as the result of one attempt of one task. Recovery after a
/// crash looks for them (`find_task_commit`) to learn whether a merge already happened.
pub fn trailers(task: &str, attempt: u32) -> String {
    format!("Orch-Task: {task}\nOrch-Attempt: {attempt}")
}

/// The conventional backup ref for an attempt: `refs/orch/backup/<task>/<attempt>`.
pub fn backup_ref_name(task: &str, attempt: u32) -> String {
    format!("{BACKUP_PREFIX}{task}/{attempt}")
}

/// The outcome of replaying a branch onto a new base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Every commit applied; `tip` is the new tip (the old one when nothing had to move).
    Clean { tip: String },
    /// A commit did not apply; these paths conflict. Nothing was written to any ref.
    Conflict { files: Vec<String> },
}

/// How long one git call may run before it is stopped, unless the config says otherwise
/// (`[git] timeout`). Generous: commits run the user's hooks, which may run a test suite.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A git repository (its main working tree), driven through the git binary.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    /// The deadline of every git call made through this handle.
    timeout: Duration,
    /// Attempts' worktrees whose changes are journaled (`watch.rs`), shared by clones.
    watches: Arc<watch::Watches>,
    /// Worktrees tidied since git's housekeeping last ran (`housekeeping.rs`), shared by clones.
    tidied: Arc<std::sync::atomic::AtomicU32>,
}

impl Repo {
    /// Opens the repository containing `dir`, resolving its top level. Calls get
    /// `DEFAULT_TIMEOUT`; see `with_timeout`.
    pub fn open(dir: &Path) -> Result<Repo, GitError> {
        let root = match top_level::plain_top_level(dir) {
            Some(root) => root,
            None => Repo::ask_top_level(dir)?,
        };
        Ok(Repo {
            root,
            timeout: DEFAULT_TIMEOUT,
            watches: Arc::default(),
            tidied: Arc::default(),
        })
    }

    /// `git rev-parse --show-toplevel` in `dir`, its error saying what to do.
    fn ask_top_level(dir: &Path) -> Result<PathBuf, GitError> {
        let out = Git::new(dir, DEFAULT_TIMEOUT)
            .args(["rev-parse", "--show-toplevel"])
            .run()
            .map_err(|mut e| {
                e.stderr = format!(
                    "{}\n{} is not inside a git working tree; run `git init` there (and make a \
                     first commit) before using orch-tui",
                    e.stderr.trim_end(),
                    dir.display()
                );
                e
            })?;
        if out.is_empty() {
            return Err(GitError::ours(
                &["rev-parse", "--show-toplevel"],
                format!("{} has no working tree (bare repository?)", dir.display()),
            ));
        }
        Ok(PathBuf::from(out))
    }

    /// The same repository, with `timeout` as the deadline of each git call: set once from
    /// `[git] timeout`, or per call (`repo.with_timeout(t).commit_all(...)`).
    pub fn with_timeout(&self, timeout: Duration) -> Repo {
        Repo {
            root: self.root.clone(),
            timeout,
            watches: self.watches.clone(),
            tidied: self.tidied.clone(),
        }
    }

    /// The top level of the working tree this repo was opened on.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn git(&self) -> Git {
        Git::new(&self.root, self.timeout)
    }

    /// git run inside another working tree of this repository (an attempt's worktree).
    fn git_in(&self, worktree: &Path) -> Git {
        Git::new(worktree, self.timeout)
    }

    /// The directory shared by all worktrees (`.git` of the main one), as an absolute path.
    pub fn common_dir(&self) -> Result<PathBuf, GitError> {
        let out = self
            .git()
            .args(["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .run()?;
        Ok(PathBuf::from(out))
    }

    /// Appends `pattern` to `info/exclude` unless a line already says exactly that. It lives in
    /// the common dir, so it applies to every worktree, and it is never committed (unlike
    /// `.gitignore`, which belongs to the user).
    pub fn ensure_excluded(&self, pattern: &str) -> Result<(), GitError> {
        let args = ["info/exclude", pattern];
        let io_err = |what: &str, e: std::io::Error| GitError::ours(&args, format!("{what}: {e}"));
        let info = self.common_dir()?.join("info");
        let file = info.join("exclude");
        let current = match fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&format!("cannot read {}", file.display()), e)),
        };
        if current.lines().any(|l| l.trim_end() == pattern) {
            return Ok(());
        }
        fs::create_dir_all(&info)
            .map_err(|e| io_err(&format!("cannot create {}", info.display()), e))?;
        let mut text = String::new();
        if !current.is_empty() && !current.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(pattern);
        text.push('\n');
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| io_err(&format!("cannot write {}", file.display()), e))
    }

    /// Resolves `rev` to an object id; `None` when it does not exist.
    pub fn rev_parse(&self, rev: &str) -> Result<Option<String>, GitError> {
        let g = self
            .git()
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options", rev]);
        let out = g.output()?;
        match out.status.code() {
            Some(0) => Ok(Some(
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )),
            // --verify --quiet: exit 1 with nothing said means "no such object".
            Some(1) if out.stderr.is_empty() => Ok(None),
            code => Err(GitError::exit(
                vec!["rev-parse".into(), "--verify".into(), rev.into()],
                code,
                String::from_utf8_lossy(&out.stderr),
            )),
        }
    }

    /// Resolves `rev` to a commit id, or an error naming it when it does not exist.
    pub(crate) fn commit_oid(&self, rev: &str) -> Result<String, GitError> {
        let peeled = format!("{rev}^{{commit}}");
        self.rev_parse(&peeled)?.ok_or_else(|| {
            GitError::ours(&["rev-parse", &peeled], format!("no such commit: {rev}"))
        })
    }

    /// Makes sure `refs/heads/<branch>` exists, creating it at HEAD's commit when missing — with
    /// `update-ref`, so the user's checked-out branch and files are not touched. Returns its tip.
    pub fn ensure_branch(&self, branch: &str) -> Result<String, GitError> {
        let refname = format!("refs/heads/{branch}");
        if let Some(oid) = self.rev_parse(&refname)? {
            return Ok(oid);
        }
        let head = self.rev_parse("HEAD^{commit}")?.ok_or_else(|| {
            GitError::ours(
                &["rev-parse", "HEAD"],
                format!(
                    "the repository at {} has no commits yet; make a first commit \
                     (git commit) so {branch} has something to start from",
                    self.root.display()
                ),
            )
        })?;
        if self.cas_update_ref(&refname, &head, "")? {
            return Ok(head);
        }
        // Lost a race with someone creating it at the same moment: theirs stands.
        self.commit_oid(&refname)
    }

    /// `git update-ref REF NEW OLD`: moves `refname` to `new` only if it is still at
    /// `expected_old` (empty = must not exist yet). `Ok(false)` when it had moved.
    pub fn cas_update_ref(
        &self,
        refname: &str,
        new: &str,
        expected_old: &str,
    ) -> Result<bool, GitError> {
        let out = self
            .git()
            .args(["update-ref", "-m", "orch-tui", refname, new, expected_old])
            .output()?;
        if out.status.success() {
            return Ok(true);
        }
        // update-ref gives one exit code for every failure; tell "the ref moved" apart from a
        // real error by looking at the ref again.
        let now = self.rev_parse(refname)?;
        let expected = if expected_old.is_empty() || is_hex(expected_old) {
            expected_old.to_string()
        } else {
            self.rev_parse(expected_old)?.unwrap_or_default()
        };
        let expected_old = expected.as_str();
        let moved = match now.as_deref() {
            None => !expected_old.is_empty(),
            Some(cur) => expected_old.is_empty() || !oid_eq(cur, expected_old),
        };
        if moved {
            return Ok(false);
        }
        Err(GitError::exit(
            vec![
                "update-ref".into(),
                refname.into(),
                new.into(),
                expected_old.into(),
            ],
            out.status.code(),
            String::from_utf8_lossy(&out.stderr),
        ))
    }

    /// Commits reachable from `tip` but not from `base`, oldest first.
    pub fn commits_between(&self, base: &str, tip: &str) -> Result<Vec<String>, GitError> {
        let out = self
            .git()
            .args(["rev-list", "--reverse", "--end-of-options"])
            .arg(format!("{base}..{tip}"))
            .run()?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Whether commit `a` is an ancestor of (or equal to) `b`.
    pub fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, GitError> {
        self.git()
            .args(["merge-base", "--is-ancestor", a, b])
            .yes_no()
    }

    /// True when `oid` has commits reachable from none of `also`: dropping what points at it
    /// would lose them. `also` holds revisions checked with `safe_rev` or rev-list options
    /// (`--end-of-options` would forbid the `--not` after it). Backup refs are not walked here:
    /// there is one per merged task, and this check sits on the hot path.
    pub(crate) fn has_unsaved_commits(&self, oid: &str, also: &[&str]) -> Result<bool, GitError> {
        let out = self
            .git()
            .args(["rev-list", "-n1", safe_rev(oid)?, "--not"])
            .args(also)
            .run()?;
        Ok(!out.is_empty())
    }

    /// Deletes `refs/heads/<branch>` — only if every commit on it is in `merged_into` or kept by
    /// a backup ref, and it is not checked out in any worktree.
    pub fn delete_branch(&self, branch: &str, merged_into: &str) -> Result<(), GitError> {
        let refname = format!("refs/heads/{branch}");
        let Some(tip) = self.rev_parse(&refname)? else {
            return Ok(());
        };
        if self.has_unsaved_commits(&tip, &[safe_rev(merged_into)?])?
            && !self.held_by_backup(&tip)?
        {
            return Err(GitError::ours(
                &["branch", "-D", branch],
                format!(
                    "refusing to delete {branch}: it has commits that are neither in \
                     {merged_into} nor under a backup ref ({BACKUP_PREFIX}...)"
                ),
            ));
        }
        if let Some(wt) = self
            .worktrees()?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(refname.as_str()))
        {
            return Err(GitError::ours(
                &["branch", "-D", branch],
                format!(
                    "refusing to delete {branch}: it is checked out in {}",
                    wt.path.display()
                ),
            ));
        }
        // With the old value, so a branch that moved since we looked is not deleted.
        self.git()
            .args(["update-ref", "-m", "orch-tui", "-d", &refname, &tip])
            .run()
            .map(|_| ())
    }

    /// `git diff --stat base tip`.
    pub fn diff_stat(&self, base: &str, tip: &str) -> Result<String, GitError> {
        self.git()
            .args([
                "diff",
                "--stat",
                "--no-color",
                "--end-of-options",
                base,
                tip,
            ])
            .run()
    }

    /// Lines added plus removed between `base` and `tip` (binary files count as one line each):
    /// the size the funnel compares with `large_diff_lines`.
    pub fn diff_lines(&self, base: &str, tip: &str) -> Result<u64, GitError> {
        let out = self
            .git()
            .args([
                "diff",
                "--numstat",
                "--no-color",
                "--end-of-options",
                base,
                tip,
            ])
            .run()?;
        Ok(out
            .lines()
            .map(|l| {
                let mut f = l.split('\t');
                let a = f.next().and_then(|v| v.parse::<u64>().ok());
                let d = f.next().and_then(|v| v.parse::<u64>().ok());
                match (a, d) {
                    (Some(a), Some(d)) => a + d,
                    _ => 1,
                }
            })
            .sum())
    }

    /// The full diff between `base` and `tip`, for a reviewer or the human.
    pub fn diff(&self, base: &str, tip: &str) -> Result<String, GitError> {
        self.git()
            .args(["diff", "--no-color", "--end-of-options", base, tip])
            .run()
    }

    /// Each commit reachable from `tip` but not from `base`, oldest first, as its id and
    /// "subject [task]" (the task from its `Orch-Task` trailer when it has one) — one git call,
    /// however many commits.
    pub fn one_lines(&self, base: &str, tip: &str) -> Result<Vec<(String, String)>, GitError> {
        let out = self
            .git()
            .args([
                "log",
                "--reverse",
                "--format=%H%x00%s%x00%(trailers:key=Orch-Task,valueonly,separator=)%x1e",
                "--end-of-options",
            ])
            .arg(format!("{base}..{tip}"))
            .run()?;
        Ok(out
            .split('\x1e')
            .filter_map(|rec| {
                let mut parts = rec.trim_start_matches('\n').splitn(3, '\0');
                let oid = parts.next().filter(|o| !o.is_empty())?;
                let subject = parts.next().unwrap_or("");
                let task = parts.next().unwrap_or("").trim();
                let line = if task.is_empty() {
                    subject.to_string()
                } else {
                    format!("{subject}  [{task}]")
                };
                Some((oid.to_string(), line))
            })
            .collect())
    }

    /// The best common ancestor of two commits.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<String, GitError> {
        self.git()
            .args(["merge-base", "--end-of-options", a, b])
            .run()
    }

    /// Paths that differ between `base` and `tip`; a rename shows both its old and new path.
    pub fn changed_files(&self, base: &str, tip: &str) -> Result<Vec<String>, GitError> {
        let out = self
            .git()
            .args(["diff", "--name-only", "--no-renames", "-z"])
            .args(["--end-of-options", base, tip])
            .run_bytes()?;
        Ok(run::split_nul(&out))
    }
}

/// Refuses a revision that git would read as an option, for the few commands where
/// `--end-of-options` cannot be used (rev-list before `--not`, worktree add).
pub(crate) fn safe_rev(rev: &str) -> Result<&str, GitError> {
    if rev.is_empty() || rev.starts_with('-') {
        return Err(GitError::ours(&[rev], format!("not a revision: {rev:?}")));
    }
    Ok(rev)
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares object ids, allowing an abbreviated one on either side.
fn oid_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    !a.is_empty() && !b.is_empty() && (a.starts_with(b) || b.starts_with(a))
}
