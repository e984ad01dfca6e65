//! The per-turn commit's shortcuts on big repositories (issue #11), used by `commit_all`:
//! new files staged by name from the change journal (`watch.rs`) instead of `add` reading every
//! folder (the new HEAD is read from the files `git commit` just wrote: `files.rs`). Each
//! shortcut falls back to the plain command when unsure.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::watch::{Answer, NewFiles};
use super::{GitError, Repo};

/// How much of the index's end is searched for the fsmonitor extension. It is written after
/// the entries, the cache tree and the untracked cache, followed only by small extensions and
/// the checksum; its bitmap holds one bit per entry at most.
const INDEX_TAIL: u64 = 256 * 1024;

impl Repo {
    /// Stages what `add --all` would in `worktree`, run with the journal's `answer`: only the
    /// listed paths when the journal vouches for them, else every folder. Tracked files changed
    /// or deleted are left to `commit --all`, which finds them through the same journal.
    pub(super) fn add_with_journal(
        &self,
        worktree: &Path,
        answer: &Answer,
    ) -> Result<(), GitError> {
        let g = || self.git_in(worktree).args(&answer.args);
        let listed = match &answer.new_files {
            NewFiles::Listed(paths) => paths,
            NewFiles::Walk(why) => {
                tracing::debug!(worktree = %worktree.display(), why, "git: add walks every folder");
                return g().args(["add", "--all"]).run().map(|_| ());
            }
        };
        let candidates = existing(worktree, listed);
        if candidates.is_empty() {
            return Ok(());
        }
        let add_by_name = |paths: &[PathBuf]| {
            g().config("advice.addIgnoredFile", "false")
                .args([
                    "--literal-pathspecs",
                    "add",
                    "--all",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                ])
                .stdin(&nul_list(paths))
        };
        // Usually nothing listed is ignored: one `add`. When something is, `add` still stages
        // the rest and says which it refused (exit 1): that answer alone is enough. Anything
        // else it says, and the ignored ones are left out by `check-ignore` first.
        let out = add_by_name(&candidates).output()?;
        if out.status.success() || refused_only_ignored(&out, &candidates) {
            return Ok(());
        }
        let wanted = self.not_ignored(worktree, candidates)?;
        if wanted.is_empty() {
            return Ok(());
        }
        let by_name = add_by_name(&wanted).run();
        if let Err(e) = by_name {
            // A path git refuses by name (inside a nested repository, beyond a symlink) is
            // one `add --all` deals with its own way: do exactly that.
            tracing::debug!(error = %e, "git: add by name failed; walking every folder");
            g().args(["add", "--all"]).run()?;
        }
        Ok(())
    }

    /// `paths` without the ones `.gitignore`, `info/exclude` or `core.excludesFile` exclude
    /// (`add` refuses an ignored path named on its command line). The index is not read:
    /// a tracked file reported here is staged by `commit --all` all the same.
    fn not_ignored(&self, worktree: &Path, paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, GitError> {
        // check-ignore reads a leading `:` as pathspec magic (and takes no `--literal-pathspecs`):
        // such a path is not asked about; were it ignored, `add` refuses it and walks instead.
        let asked: Vec<PathBuf> = paths
            .iter()
            .filter(|p| !p.as_os_str().as_bytes().starts_with(b":"))
            .cloned()
            .collect();
        if asked.is_empty() {
            return Ok(paths);
        }
        let out = self
            .git_in(worktree)
            .args(["check-ignore", "--no-index", "--stdin", "-z"])
            .stdin(&nul_list(&asked))
            .output()?;
        // 0: some are ignored, 1: none is; anything else is an error.
        match out.status.code() {
            Some(1) => Ok(paths),
            Some(0) => {
                let ignored: std::collections::HashSet<&[u8]> = out
                    .stdout
                    .split(|b| *b == 0)
                    .filter(|p| !p.is_empty())
                    .collect();
                Ok(paths
                    .into_iter()
                    .filter(|p| !ignored.contains(p.as_os_str().as_bytes()))
                    .collect())
            }
            code => Err(GitError::exit(
                vec!["check-ignore".into()],
                code,
                String::from_utf8_lossy(&out.stderr),
            )),
        }
    }
}

/// The listed paths that exist now (a deleted file is `commit --all`'s; a file made and removed
/// within the turn is nothing), relative and plain (no `..`, nothing absolute).
fn existing(worktree: &Path, listed: &[PathBuf]) -> Vec<PathBuf> {
    listed
        .iter()
        .filter(|p| p.components().all(|c| matches!(c, Component::Normal(_))))
        .filter(|p| worktree.join(p).symlink_metadata().is_ok())
        .cloned()
        .collect()
}

/// What `git add` says when a path named on its command line is ignored, before listing them
/// one a line (C locale; `advice.addIgnoredFile` off, so nothing after the list).
const IGNORED_REFUSED: &str = "The following paths are ignored by one of your .gitignore files:\n";

/// True when `add` failed only because some `named` paths are ignored: exit 1, and it said
/// nothing but that message and a list in which each line is a named path or a folder above
/// one. It staged every other path then.
fn refused_only_ignored(out: &super::run::Output, named: &[PathBuf]) -> bool {
    let Some(list) = std::str::from_utf8(&out.stderr)
        .ok()
        .and_then(|e| e.strip_prefix(IGNORED_REFUSED))
    else {
        return false;
    };
    let named_or_above = |line: &str| {
        named.iter().any(|p| {
            let p = p.as_os_str().as_bytes();
            p == line.as_bytes()
                || (p.starts_with(line.as_bytes()) && p.get(line.len()) == Some(&b'/'))
        })
    };
    out.status.code() == Some(1)
        && !list.is_empty()
        && list.ends_with('\n')
        && list.lines().all(|l| !l.is_empty() && named_or_above(l))
}

fn nul_list(paths: &[PathBuf]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in paths {
        out.extend_from_slice(p.as_os_str().as_bytes());
        out.push(0);
    }
    out
}

/// The token git keeps in `index`'s fsmonitor extension ("FSMN", its size, version 2, the token
/// and a NUL), found in the file's last part. None: no such extension (git without a monitor
/// wrote the index last), or it could not be read.
pub(super) fn index_fsmonitor_token(index: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(index).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(INDEX_TAIL)))
        .ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    // The last match: an entry's name could contain these bytes, the extension comes after.
    let at = (0..tail.len().saturating_sub(12))
        .rev()
        .find(|&i| tail[i..].starts_with(b"FSMN") && tail[i + 8..i + 12] == [0, 0, 0, 2])?;
    let token = &tail[at + 12..];
    let end = token.iter().position(|b| *b == 0)?;
    String::from_utf8(token[..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_said(code: i32, stderr: &str) -> crate::git::run::Output {
        use std::os::unix::process::ExitStatusExt;
        crate::git::run::Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn only_a_refusal_of_named_ignored_paths_counts_as_done() {
        let named: Vec<PathBuf> = ["a.o", "build/sub/o", "src/new.rs"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let list = |l: &str| format!("{IGNORED_REFUSED}{l}");
        // A named path, and a folder above one (git names an ignored folder as such).
        assert!(refused_only_ignored(
            &add_said(1, &list("a.o\nbuild\n")),
            &named
        ));
        // Not named, not above a named one: something else happened.
        assert!(!refused_only_ignored(&add_said(1, &list("bui\n")), &named));
        assert!(!refused_only_ignored(
            &add_said(1, &list("other.o\n")),
            &named
        ));
        // Another message after the list, another exit code, another message, no list.
        let extra = list("a.o\nfatal: adding files failed\n");
        assert!(!refused_only_ignored(&add_said(1, &extra), &named));
        assert!(!refused_only_ignored(
            &add_said(128, &list("a.o\n")),
            &named
        ));
        assert!(!refused_only_ignored(&add_said(1, "fatal: oops\n"), &named));
        assert!(!refused_only_ignored(&add_said(1, IGNORED_REFUSED), &named));
    }

    #[test]
    fn the_token_is_read_from_the_end_of_the_index() {
        let t = tempfile::tempdir().expect("tempdir");
        let index = t.path().join("index");
        let mut body = b"DIRC\0\0\0\x02 entries FSMN look-alike in a name ".to_vec();
        body.extend_from_slice(b"FSMN\0\0\0\x20\0\0\0\x02oabcdefgt12\0\0\0\0\x08bitmap");
        body.extend_from_slice(&[0xaa; 20]);
        std::fs::write(&index, &body).expect("write");
        assert_eq!(
            index_fsmonitor_token(&index).as_deref(),
            Some("oabcdefgt12")
        );
        std::fs::write(&index, b"DIRC\0\0\0\x02 no extension").expect("write");
        assert_eq!(index_fsmonitor_token(&index), None);
        assert_eq!(index_fsmonitor_token(&t.path().join("missing")), None);
    }
}
