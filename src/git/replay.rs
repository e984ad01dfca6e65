//! Rebase without a working tree, and finding an attempt's commit again after a crash.
//!
//! The merge queue must not check anything out (the user's tree is never touched, and a checkout
//! per merge would be the slowest step), so each commit is re-applied with
//! `merge-tree --write-tree` (a three-way merge done purely on objects) and recorded with
//! `commit-tree`, keeping the original author, committer, dates and message.

use super::run::split_nul;
use super::{GitError, Replay, Repo, safe_rev};

/// Metadata of one commit to replay, as read by `git log`.
struct Meta {
    oid: String,
    parent: String,
    author: (String, String, String),
    committer: (String, String, String),
    message: String,
}

/// `git log` fields, NUL-separated, in the order `Meta` is filled from.
const LOG_FORMAT: &str = "%H%x00%P%x00%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd%x00%B";
const LOG_FIELDS: usize = 9;

impl Repo {
    /// Replays the commits `base_of_branch..branch_tip` onto `onto`, following first parents
    /// (a merge the agent made becomes one commit carrying its whole change). No ref is moved:
    /// the caller publishes the new tip with `cas_update_ref`. When `onto` is `base_of_branch`
    /// the tip is returned as it is. Commits that become empty are kept, because their trailers
    /// are what crash recovery looks for.
    pub fn replay_onto(
        &self,
        base_of_branch: &str,
        branch_tip: &str,
        onto: &str,
    ) -> Result<Replay, GitError> {
        // Full object ids (what the merge queue passes, from the ledger) need no resolving: a
        // spawn is most of the cost of a small replay, and the queue replays one per merge. If
        // one of them is no commit, the replay fails and is made again the careful way below,
        // for an error that names it.
        if [base_of_branch, branch_tip, onto]
            .iter()
            .all(|r| is_full_oid(r))
            && let Ok(done) = self.replay_resolved(base_of_branch, branch_tip, onto)
        {
            return Ok(done);
        }
        // One rev-parse for the three. Without --verify it takes several revisions but no
        // --end-of-options, hence `safe_rev`.
        let resolved = self
            .git()
            .arg("rev-parse")
            .args(
                [
                    safe_rev(base_of_branch)?,
                    safe_rev(branch_tip)?,
                    safe_rev(onto)?,
                ]
                .map(|r| format!("{r}^{{commit}}")),
            )
            .run()
            .ok()
            .map(|out| out.lines().map(str::to_string).collect::<Vec<_>>());
        let [base, tip, onto] = match resolved.as_deref() {
            Some([b, t, o]) => [b.clone(), t.clone(), o.clone()],
            // One of them does not exist: resolve one by one for an error that names it.
            _ => [
                self.commit_oid(base_of_branch)?,
                self.commit_oid(branch_tip)?,
                self.commit_oid(onto)?,
            ],
        };
        self.replay_resolved(&base, &tip, &onto)
    }

    /// `replay_onto` with the three already resolved to commit ids.
    fn replay_resolved(&self, base: &str, tip: &str, onto: &str) -> Result<Replay, GitError> {
        if base == onto {
            return Ok(Replay::Clean {
                tip: tip.to_string(),
            });
        }
        let mut cur = onto.to_string();
        for m in self.commits_to_replay(base, tip)? {
            let out = self
                .git()
                .args([
                    "merge-tree",
                    "--write-tree",
                    "-z",
                    "--name-only",
                    "--no-messages",
                ])
                .arg(format!("--merge-base={}", m.parent))
                .args([cur.as_str(), m.oid.as_str()])
                .output()?;
            let fields = split_nul(&out.stdout);
            match out.status.code() {
                Some(0) => {}
                Some(1) => {
                    // After the tree id come the conflicted paths (once per stage with some
                    // versions), up to an empty field that would start the messages.
                    let mut files: Vec<String> = Vec::new();
                    for f in fields.iter().skip(1).take_while(|f| !f.is_empty()) {
                        if !files.contains(f) {
                            files.push(f.clone());
                        }
                    }
                    return Ok(Replay::Conflict { files });
                }
                code => {
                    return Err(GitError::exit(
                        vec!["merge-tree".into(), cur, m.oid],
                        code,
                        String::from_utf8_lossy(&out.stderr),
                    ));
                }
            }
            let tree = fields.first().cloned().unwrap_or_default();
            cur = self
                .git()
                .args(["commit-tree", &tree, "-p", &cur])
                .env("GIT_AUTHOR_NAME", &m.author.0)
                .env("GIT_AUTHOR_EMAIL", &m.author.1)
                .env("GIT_AUTHOR_DATE", &m.author.2)
                .env("GIT_COMMITTER_NAME", &m.committer.0)
                .env("GIT_COMMITTER_EMAIL", &m.committer.1)
                .env("GIT_COMMITTER_DATE", &m.committer.2)
                // commit-tree takes the message verbatim from stdin (no cleanup), so the replayed
                // commit's message is byte for byte the original's.
                .stdin(m.message.as_bytes())
                .run()?;
        }
        Ok(Replay::Clean { tip: cur })
    }

    fn commits_to_replay(&self, base: &str, tip: &str) -> Result<Vec<Meta>, GitError> {
        let out = self
            .git()
            .args(["log", "-z", "--reverse", "--first-parent", "--date=raw"])
            .arg(format!("--format={LOG_FORMAT}"))
            .arg(format!("{base}..{tip}"))
            .arg("--")
            .run_bytes()?;
        let fields = split_nul(&out);
        if !fields.len().is_multiple_of(LOG_FIELDS) {
            return Err(GitError::ours(
                &["log", base, tip],
                format!("unexpected log output ({} fields)", fields.len()),
            ));
        }
        let mut metas = Vec::new();
        for c in fields.chunks(LOG_FIELDS) {
            let parent = c[1].split(' ').next().unwrap_or_default().to_string();
            if parent.is_empty() {
                return Err(GitError::ours(
                    &["log", base, tip],
                    format!("{} has no parent: {tip} does not descend from {base}", c[0]),
                ));
            }
            metas.push(Meta {
                oid: c[0].clone(),
                parent,
                author: (c[2].clone(), c[3].clone(), c[4].clone()),
                committer: (c[5].clone(), c[6].clone(), c[7].clone()),
                message: c[8].clone(),
            });
        }
        Ok(metas)
    }

    /// The tip of `refname` (a full ref name) unless `onto` already holds it: one ref listing
    /// that answers what a `rev-parse` and a `merge-base --is-ancestor` would. None: the ref is
    /// in `onto`, or there is no such ref.
    pub fn tip_unless_in(&self, refname: &str, onto: &str) -> Result<Option<String>, GitError> {
        let out = self
            .git()
            .args(["for-each-ref", "--format=%(objectname)"])
            .arg(format!("--no-merged={}", safe_rev(onto)?))
            .arg(safe_rev(refname)?)
            .run()?;
        Ok(out.lines().next().map(str::to_string))
    }

    /// The newest commit on `branch` whose trailers say `Orch-Task: <task>` and
    /// `Orch-Attempt: <attempt>` exactly (task `a` does not match `a-b`). Used at recovery to
    /// learn whether an attempt was already merged. None when there is none (or no branch).
    pub fn find_task_commit(
        &self,
        branch: &str,
        task: &str,
        attempt: u32,
    ) -> Result<Option<String>, GitError> {
        let Some(tip) = self.rev_parse(&format!("{branch}^{{commit}}"))? else {
            return Ok(None);
        };
        // --grep narrows the walk cheaply (fixed strings, may over-match a longer task id);
        // the trailers are then compared exactly.
        let out = self
            .git()
            .args(["log", "--fixed-strings", "--all-match"])
            .arg(format!("--grep=Orch-Task: {task}"))
            .arg(format!("--grep=Orch-Attempt: {attempt}"))
            .arg("--format=%H%x1f%(trailers:only,unfold)%x1e")
            .args([tip.as_str(), "--"])
            .run()?;
        let want_attempt = attempt.to_string();
        for record in out.split('\x1e') {
            let Some((oid, trailers)) = record.trim_start_matches('\n').split_once('\x1f') else {
                continue;
            };
            let mut task_ok = false;
            let mut attempt_ok = false;
            for line in trailers.lines() {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("Orch-Task") && v == task {
                    task_ok = true;
                } else if k.eq_ignore_ascii_case("Orch-Attempt") && v == want_attempt {
                    attempt_ok = true;
                }
            }
            if task_ok && attempt_ok {
                return Ok(Some(oid.trim().to_string()));
            }
        }
        Ok(None)
    }
}

/// A whole SHA-1 or SHA-256 object id, lowercase as git prints it.
pub(super) fn is_full_oid(rev: &str) -> bool {
    matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
