//! Answers read from the files git keeps (HEAD, loose and packed refs, the HEAD reflog) instead
//! of starting a git process for each (issue #11: a git process costs ~1 ms of CPU before it
//! does anything; collecting an attempt asked three such questions). Each reader answers only
//! what the files plainly say and returns None for anything else (the reftable format, a
//! symbolic ref where a commit is expected, a name git would not accept): the caller asks git
//! then, so the answer is always git's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A worktree's own git folder (`.git`, or `.git/worktrees/<id>` for a linked one) and the
/// folder it shares with every worktree (`.git`). None when git keeps its refs in the reftable
/// format, or the folders are not found the plain way.
pub(super) struct GitDirs {
    pub admin: PathBuf,
    pub common: PathBuf,
}

/// Whether the repository's config (in its common folder) may change where its working tree
/// is: `bare` set to anything but false, a `worktree` key (`core.worktree`, and
/// `extensions.worktreeConfig`), or an include (which could set either). Any of them sends
/// the question to git; so does a folder without a config.
pub(super) fn config_moves_worktree(common: &Path) -> bool {
    std::fs::read_to_string(common.join("config")).map_or(true, |c| {
        c.lines().any(|l| {
            let l = l.trim_start().to_ascii_lowercase();
            (l.starts_with("bare") && l.split_once('=').is_none_or(|(_, v)| v.trim() != "false"))
                || l.starts_with("worktree")
                || l.starts_with("[include")
        })
    })
}

impl GitDirs {
    pub(super) fn of(worktree: &Path) -> Option<GitDirs> {
        let dotgit = worktree.join(".git");
        let admin = if dotgit.is_dir() {
            dotgit
        } else {
            let text = std::fs::read_to_string(&dotgit).ok()?;
            worktree.join(
                text.strip_prefix("gitdir: ")?
                    .trim_end_matches(['\n', '\r']),
            )
        };
        let common = match std::fs::read_to_string(admin.join("commondir")) {
            Ok(c) => admin.join(c.trim_end_matches(['\n', '\r'])),
            Err(_) => admin.clone(),
        };
        if common.join("reftable").exists() || !common.join("refs").is_dir() {
            return None;
        }
        Some(GitDirs { admin, common })
    }

    /// A linked worktree's folders by the stricter rules of the writers that change them by
    /// hand (`pool/by_hand.rs`): the `.git` file names its admin folder by an absolute path,
    /// that folder has a HEAD and its `gitdir` names this worktree back, and the common folder
    /// is the one that holds it (`<common>/worktrees/<id>`). None for anything else: git then.
    pub(super) fn linked_strict(worktree: &Path) -> Option<GitDirs> {
        let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
        let admin = PathBuf::from(
            text.strip_prefix("gitdir: ")?
                .trim_end_matches(['\n', '\r']),
        );
        if !admin.is_absolute() || !admin.join("HEAD").is_file() {
            return None;
        }
        let back = std::fs::read_to_string(admin.join("gitdir")).ok()?;
        let back = PathBuf::from(back.trim_end_matches(['\n', '\r']));
        let here = worktree.canonicalize().ok()?.join(".git");
        if back != here {
            return None;
        }
        let common = admin.parent()?.parent()?.to_path_buf();
        Some(GitDirs { admin, common })
    }

    /// HEAD: the branch it names (`refs/heads/...`; None when detached) and its commit. None
    /// when that is not plainly answered: a branch not yet born or only in `packed-refs`, a
    /// HEAD naming anything but a branch.
    pub(super) fn head(&self) -> Option<(Option<String>, String)> {
        let head = std::fs::read_to_string(self.admin.join("HEAD")).ok()?;
        let head = head.trim_end_matches(['\n', '\r']);
        match head.strip_prefix("ref: ") {
            // Only branches: they live in the common dir, other refs may be per worktree.
            Some(r) if r.starts_with("refs/heads/") && plain_ref_name(r) => {
                let oid = oid_line(&std::fs::read_to_string(self.common.join(r)).ok()?)?;
                Some((Some(r.to_string()), oid))
            }
            Some(_) => None,
            None => Some((None, oid_line(head)?)),
        }
    }

    /// The commit the branch `refname` (`refs/heads/...`) points at, loose over packed as git
    /// reads it: Some(None) when it does not exist (a branch not yet born). None when that is
    /// not plainly answered (a symbolic ref, an odd name, a file that is not a ref).
    pub(super) fn branch_oid(&self, refname: &str) -> Option<Option<String>> {
        if !refname.starts_with("refs/heads/") || !plain_ref_name(refname) {
            return None;
        }
        // Loose first: `pack-refs` writes `packed-refs` before it deletes the loose file.
        match std::fs::read_to_string(self.common.join(refname)) {
            Ok(text) => return Some(Some(oid_line(&text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
        let packed = match std::fs::read_to_string(self.common.join("packed-refs")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(None),
            Err(_) => return None,
        };
        for line in packed.lines() {
            if let Some((oid, name)) = line.split_once(' ')
                && name == refname
                && !line.starts_with(['#', '^'])
            {
                return Some(Some(oid_line(oid)?));
            }
        }
        Some(None)
    }

    /// The HEAD reflog, newest first: each entry's new commit and its message (`%H %gs` of
    /// `git reflog show`). Empty when there is none (reflogs turned off). Entries that moved
    /// HEAD to nothing are left out, as git's walk leaves them.
    pub(super) fn head_reflog(&self) -> Option<Vec<(String, String)>> {
        let text = match std::fs::read(self.admin.join("logs/HEAD")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
            Err(_) => return None,
        };
        let text = String::from_utf8(text).ok()?;
        let mut out = Vec::new();
        for line in text.lines().rev() {
            // `<old> <new> <name> <<email>> <time> <tz>\t<message>`; no tab: no message.
            let (who, message) = line.split_once('\t').unwrap_or((line, ""));
            let mut fields = who.splitn(3, ' ');
            let (_old, new) = (fields.next()?, fields.next()?);
            let new = oid_line(new)?;
            if new.bytes().all(|b| b == b'0') {
                continue;
            }
            out.push((new, message.to_string()));
        }
        Some(out)
    }

    /// Every local branch (without `refs/heads/`) and its commit, sorted by name as
    /// `for-each-ref` sorts them: loose refs over packed ones. Loose refs are read first, so a
    /// `pack-refs` running meanwhile (it writes `packed-refs`, then deletes the loose files)
    /// cannot hide a branch.
    pub(super) fn branch_tips(&self) -> Option<Vec<(String, String)>> {
        let mut tips = BTreeMap::new();
        let heads = self.common.join("refs/heads");
        let mut stack = vec![(heads, String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => return None,
            };
            for entry in entries {
                let entry = entry.ok()?;
                let name = entry.file_name().into_string().ok()?;
                let full = format!("{prefix}{name}");
                let kind = entry.file_type().ok()?;
                if kind.is_dir() {
                    stack.push((entry.path(), format!("{full}/")));
                } else if name.ends_with(".lock") {
                    // A ref being written: its old value, if any, is the file without `.lock`.
                } else if kind.is_file() && plain_ref_name(&format!("refs/heads/{full}")) {
                    let text = std::fs::read_to_string(entry.path()).ok()?;
                    tips.insert(full, oid_line(&text)?);
                } else {
                    return None;
                }
            }
        }
        match std::fs::read_to_string(self.common.join("packed-refs")) {
            Ok(text) => {
                for line in text.lines() {
                    if line.starts_with('#') || line.starts_with('^') {
                        continue;
                    }
                    let (oid, name) = line.split_once(' ')?;
                    let Some(branch) = name.strip_prefix("refs/heads/") else {
                        continue;
                    };
                    if !plain_ref_name(name) {
                        return None;
                    }
                    let oid = oid_line(oid)?;
                    tips.entry(branch.to_string()).or_insert(oid);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
        Some(tips.into_iter().collect())
    }
}

/// A full lowercase object id alone on its line.
pub(super) fn oid_line(text: &str) -> Option<String> {
    let oid = text.trim_end_matches(['\n', '\r']);
    let hex = oid
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (matches!(oid.len(), 40 | 64) && hex).then(|| oid.to_string())
}

/// A ref name git accepts and lists, for the names we read from files (stricter than git:
/// anything unusual is left to git).
fn plain_ref_name(name: &str) -> bool {
    !name.contains("..")
        && !name.contains("@{")
        && !name.ends_with('/')
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && !part.ends_with(".lock")
                && part
                    .bytes()
                    .all(|b| b > b' ' && b != 0x7f && !b"~^:?*[\\".contains(&b))
        })
}

/// A branch name (without `refs/heads/`) that code may write by hand without asking git
/// whether it is valid: a plain ref name made only of the characters task ids use (letters,
/// digits, `-`, `_`, `.`, `/` between components).
pub(super) fn plain_branch_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && plain_ref_name(&format!("refs/heads/{name}"))
}

/// The commit HEAD names in `worktree`, read from the files git keeps. None whenever that is
/// not plainly answered: ask git then.
pub(super) fn head_from_files(worktree: &Path) -> Option<String> {
    GitDirs::of(worktree)?.head().map(|(_, oid)| oid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::test_git::git;

    #[test]
    fn ref_names_git_would_refuse_or_treat_specially_are_left_to_git() {
        for ok in ["refs/heads/main", "refs/heads/orch/t-1", "refs/heads/a.b"] {
            assert!(plain_ref_name(ok), "{ok}");
        }
        for odd in [
            "refs/heads/a..b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/a b",
            "refs/heads/a@{1}",
            "refs/heads/a:b",
            "refs/heads//a",
            "refs/heads/a/",
        ] {
            assert!(!plain_ref_name(odd), "{odd}");
        }
    }

    /// What `for-each-ref` lists, as `branch_tips` answers it.
    fn listed(dir: &Path) -> Vec<(String, String)> {
        git(
            dir,
            &[
                "for-each-ref",
                "--format=%(refname:strip=2) %(objectname)",
                "refs/heads/",
            ],
        )
        .lines()
        .map(|l| l.split_once(' ').expect("two fields"))
        .map(|(n, o)| (n.to_string(), o.to_string()))
        .collect()
    }

    #[test]
    fn the_files_answer_what_git_answers() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("repo");
        std::fs::create_dir(&root).expect("mkdir");
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["commit", "-q", "--allow-empty", "-m", "one"]);
        git(&root, &["branch", "a"]);
        git(&root, &["branch", "b/c"]);
        git(&root, &["branch", "z"]);
        git(&root, &["pack-refs", "--all"]);
        git(&root, &["commit", "-q", "--allow-empty", "-m", "two"]);
        // Loose over packed (`main` moved), packed only (`b/c`, `z`), loose only (`d/e`).
        git(&root, &["branch", "d/e"]);
        git(&root, &["update-ref", "refs/heads/a", "HEAD"]);
        git(&root, &["update-ref", "-d", "refs/heads/z"]);
        let dirs = GitDirs::of(&root).expect("plain files");
        assert_eq!(dirs.branch_tips().expect("read"), listed(&root));

        // A linked worktree: detached, then switched to a branch, then committed on it.
        let wt = t.path().join("wt");
        git(
            &root,
            &[
                "worktree",
                "add",
                "-q",
                "--detach",
                wt.to_str().expect("utf8"),
                "a",
            ],
        );
        let wd = GitDirs::of(&wt).expect("plain files");
        assert_eq!(wd.head(), Some((None, git(&wt, &["rev-parse", "HEAD"]))));
        git(&wt, &["checkout", "-q", "-b", "w"]);
        git(&wt, &["commit", "-q", "--allow-empty", "-m", "three"]);
        let head = Some((
            Some("refs/heads/w".to_string()),
            git(&wt, &["rev-parse", "HEAD"]),
        ));
        assert_eq!(wd.head(), head);
        let reflog: Vec<(String, String)> =
            git(&wt, &["reflog", "show", "--format=%H %gs", "HEAD"])
                .lines()
                .map(|l| l.split_once(' ').unwrap_or((l, "")))
                .map(|(o, s)| (o.to_string(), s.to_string()))
                .collect();
        assert_eq!(reflog.len(), 3, "{reflog:?}");
        assert_eq!(wd.head_reflog().expect("read"), reflog);
        // A branch only in packed-refs is not answered from the files: git is asked.
        git(&wt, &["checkout", "-q", "b/c"]);
        assert_eq!(wd.head(), None);
    }

    #[test]
    fn only_a_full_lowercase_id_is_an_id() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(oid_line(&format!("{id}\n")).as_deref(), Some(id));
        assert_eq!(oid_line(&id.to_uppercase()), None);
        assert_eq!(oid_line("ref: refs/heads/main\n"), None);
        assert_eq!(oid_line(&id[..39]), None);
    }
}
