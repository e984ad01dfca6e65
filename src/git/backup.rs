//! Backup refs (`refs/orch/backup/...`): where a commit goes before anything could make it
//! unreachable. They are written with a reflog, so `orch-tui gc` knows how old each one is.

use super::{BACKUP_PREFIX, GitError, Repo, is_hex, oid_eq};

/// The reflog message of every backup ref; its date is the backup's creation time.
const BACKUP_REFLOG_MESSAGE: &str = "orch-tui: backup";

/// Refs per `git log -g` call when reading creation times (keeps the argument list short).
const REFS_PER_CALL: usize = 256;

/// One backup ref, as `orch-tui gc` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRef {
    /// The full ref name, `refs/orch/backup/...`.
    pub name: String,
    pub oid: String,
    /// When it was made (seconds since the epoch), from its reflog. None for a backup made
    /// before backups had a reflog, or whose reflog `git gc` expired: its age is unknown.
    pub created: Option<u64>,
}

/// The backups of the task `backup_ref` belongs to (`refs/orch/backup/<task>/`), as a `--glob`
/// pattern: where that task's commits are looked for before another backup is made. A walk
/// against every backup ref grew with the run (a few hundred refs, each a commit to parse: most
/// of a merged task's retiring); a commit some other task's backup holds gets its own backup,
/// a second ref and never a lost commit.
pub(super) fn backup_scope(backup_ref: &str) -> String {
    match backup_ref
        .strip_prefix(BACKUP_PREFIX)
        .and_then(|rest| rest.rsplit_once('/'))
    {
        Some((task, _)) if !task.is_empty() => format!("{BACKUP_PREFIX}{task}/"),
        _ => BACKUP_PREFIX.to_string(),
    }
}

impl Repo {
    /// Saves `oid` under `refname`. A backup is never overwritten: if `refname` already holds
    /// another commit, `refname-2`, `-3`, ... is used. Returns the ref actually written.
    pub fn backup_ref(&self, refname: &str, oid: &str) -> Result<String, GitError> {
        let oid = if is_hex(oid) {
            oid.to_string()
        } else {
            self.commit_oid(oid)?
        };
        for n in 1..=1000u32 {
            let name = if n == 1 {
                refname.to_string()
            } else {
                format!("{refname}-{n}")
            };
            // Create-only first (one call in the usual case); look only when the name is taken.
            if self.create_logged_ref(&name, &oid)? {
                tracing::info!(backup = %name, %oid, "git: backed up");
                return Ok(name);
            }
            if self.rev_parse(&name)?.is_some_and(|cur| oid_eq(&cur, &oid)) {
                return Ok(name);
            }
        }
        Err(GitError::ours(
            &["update-ref", refname],
            "too many backups under this name; drop old ones with `orch-tui gc --older-than AGE`",
        ))
    }

    /// In one transaction (both or neither): creates the backup `refname` at `oid` and deletes
    /// `branch_ref` if it is still at `tip`. False when git refused (the name is taken, the
    /// branch moved) or failed: nothing changed then, and the caller takes the careful way.
    pub(super) fn backup_and_delete(
        &self,
        refname: &str,
        oid: &str,
        branch_ref: &str,
        tip: &str,
    ) -> bool {
        let commands = format!("create {refname} {oid}\ndelete {branch_ref} {tip}\n");
        let done = self
            .git()
            .args(["update-ref", "--create-reflog", "-m", BACKUP_REFLOG_MESSAGE])
            .arg("--stdin")
            .stdin(commands.as_bytes())
            .run();
        match done {
            Ok(_) => {
                tracing::info!(backup = %refname, %oid, branch = %branch_ref, "git: backed up, branch deleted");
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, backup = %refname, "git: backup and delete refused; one at a time");
                false
            }
        }
    }

    /// Creates `refname` at `oid` with a reflog entry (refs outside `refs/heads` get none by
    /// default). False when the ref already exists.
    fn create_logged_ref(&self, refname: &str, oid: &str) -> Result<bool, GitError> {
        let out = self
            .git()
            .args(["update-ref", "--create-reflog", "-m", BACKUP_REFLOG_MESSAGE])
            .args([refname, oid, ""])
            .output()?;
        if out.status.success() {
            return Ok(true);
        }
        if self.rev_parse(refname)?.is_some() {
            return Ok(false);
        }
        Err(GitError::exit(
            vec!["update-ref".into(), refname.into(), oid.into()],
            out.status.code(),
            String::from_utf8_lossy(&out.stderr),
        ))
    }

    /// True when some backup ref holds `oid` in its history (pointing right at it included).
    /// One walk: a `--points-at` listing first almost never answered (when a merged task is
    /// retired nothing points at its commit yet), so it only added a git process per task.
    pub(crate) fn held_by_backup(&self, oid: &str) -> Result<bool, GitError> {
        let glob = format!("--glob={BACKUP_PREFIX}");
        Ok(!self.has_unsaved_commits(oid, &[&glob])?)
    }

    /// Every backup ref with its creation time, sorted by name.
    pub fn backups(&self) -> Result<Vec<BackupRef>, GitError> {
        let listed = self
            .git()
            .args([
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                BACKUP_PREFIX,
            ])
            .run()?;
        let mut list: Vec<BackupRef> = listed
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, oid)| BackupRef {
                name: name.to_string(),
                oid: oid.to_string(),
                created: None,
            })
            .collect();
        for chunk in list.chunks_mut(REFS_PER_CALL) {
            self.read_creation_times(chunk)?;
        }
        Ok(list)
    }

    /// Fills `created` from the oldest reflog entry of each ref (refs without one are skipped
    /// by `git log -g`).
    fn read_creation_times(&self, refs: &mut [BackupRef]) -> Result<(), GitError> {
        let out = self
            .git()
            .args(["log", "-g", "--date=unix", "--format=%gD"])
            .args(refs.iter().map(|b| b.name.as_str()))
            .arg("--")
            .run()?;
        for line in out.lines() {
            let Some((name, rest)) = line.rsplit_once("@{") else {
                continue;
            };
            let Some(secs) = rest.strip_suffix('}').and_then(|t| t.parse::<u64>().ok()) else {
                continue;
            };
            if let Some(b) = refs.iter_mut().find(|b| b.name == name) {
                b.created = Some(b.created.map_or(secs, |c| c.min(secs)));
            }
        }
        Ok(())
    }

    /// Deletes a backup ref (and its reflog), only if it still points where `backup` says.
    pub fn drop_backup(&self, backup: &BackupRef) -> Result<(), GitError> {
        if !backup.name.starts_with(BACKUP_PREFIX) {
            return Err(GitError::ours(
                &["update-ref", "-d", &backup.name],
                format!("{} is not a backup ref", backup.name),
            ));
        }
        self.git()
            .args([
                "update-ref",
                "-m",
                "orch-tui gc",
                "-d",
                &backup.name,
                &backup.oid,
            ])
            .run()
            .map(|_| ())
    }
}
