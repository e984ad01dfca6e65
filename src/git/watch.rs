//! Which files changed in an attempt's worktree, so the per-turn commit does not `lstat` every
//! tracked file (issue #11: on 100,000 files that scan was most of the commit).
//!
//! One inotify instance per worktree (`notify`, one watch per directory) keeps a journal of the
//! paths touched. git asks for it through its fsmonitor hook protocol (version 2): our own git
//! calls in that worktree get `-c core.fsmonitor=<a small sh command>`, which prints the answer
//! we wrote into a file of the worktree's admin dir beforehand. git then trusts, without an
//! `lstat`, only index entries that were up to date at a token we issued and that no event
//! touched since; everything else it checks as usual. The agent's own git calls do not carry
//! the setting, so when they rewrite the index its token goes and the next call scans fully.
//!
//! When unsure the answer is "everything" (git's full scan, today's cost), never "nothing":
//! the index holds a token we did not issue or no longer keep; the kernel's queue overflowed
//! (watches are re-added, old tokens dropped); the sync with the event stream timed out. When
//! a directory cannot be watched (the user's inotify limits) the journal is given up and the
//! caller falls back to its plain commands. Writes through a shared `mmap` make no inotify
//! event: like every inotify-based monitor, this does not see them.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

/// Tokens whose answers are kept: an index may hold one a few calls old (a read-only git call
/// asks without storing the new one).
const KEPT_TOKENS: usize = 8;
/// Beyond this many paths an answer is "everything": git's scan is then as cheap.
const MAX_LISTED: usize = 20_000;
/// Paths kept at most; beyond, the journal starts again as if events had been lost.
const MAX_JOURNAL: usize = 200_000;
/// How long a sync waits for the event stream to catch up before answering "everything".
const SYNC_DEADLINE: Duration = Duration::from_secs(2);
/// The file of the admin dir's journal folder that answers an unknown token.
const ALL: &str = "all";

/// The watched worktrees of one repository handle (shared by its clones).
#[derive(Default)]
pub(super) struct Watches {
    map: Mutex<HashMap<PathBuf, Arc<TreeWatch>>>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watches({})", lock(&self.map).len())
    }
}

impl Watches {
    /// Starts watching the worktree at `root`, its answers kept in `journal_dir` (created and
    /// emptied). Replaces an earlier watch of the same path; drops watches of vanished paths.
    pub(super) fn start(&self, root: &Path, journal_dir: &Path) -> Result<(), String> {
        let root = &key(root);
        lock(&self.map).retain(|p, _| p != root && p.exists());
        let watch = TreeWatch::start(root, journal_dir)?;
        lock(&self.map).insert(root.clone(), Arc::new(watch));
        Ok(())
    }

    pub(super) fn forget(&self, root: &Path) {
        let gone = lock(&self.map).remove(&key(root));
        if let Some(w) = gone {
            let _ = std::fs::remove_dir_all(&w.dir);
        }
    }

    /// The `-c` settings that let git ask the journal, after syncing it with the events so far.
    /// None: no watch here, or it cannot be trusted now; run git without them.
    pub(super) fn fsmonitor_args(&self, root: &Path) -> Option<Vec<String>> {
        self.answer(root, false).map(|a| a.args)
    }

    /// As `fsmonitor_args`, and which paths an `add` must look at for new files (`NewFiles`).
    pub(super) fn answer(&self, root: &Path, new_files: bool) -> Option<Answer> {
        let watch = lock(&self.map).get(&key(root)).cloned()?;
        match watch.answer(new_files) {
            Ok(a) => Some(a),
            Err(why) => {
                tracing::info!(worktree = %root.display(), %why, "git: no change journal for this call; full scan");
                None
            }
        }
    }

    /// An `add` run with `answer`'s settings covered every new file (by walking every folder,
    /// or the paths `answer` listed): from then on, the journal's paths are enough.
    pub(super) fn vouch(&self, root: &Path, answer: &Answer) {
        if let Some(watch) = lock(&self.map).get(&key(root)).cloned() {
            let mut st = lock(&watch.shared.state);
            // Events lost since that answer (not yet rescanned) leave the journal short.
            if !st.overflowed && st.lost_at <= answer.token {
                st.listed_from = Some(answer.token + 1);
            }
        }
    }
}

/// What a journal answer says about new files, for `add`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NewFiles {
    /// Every path (relative to the worktree) where a file may have appeared or changed since the
    /// last `add` that covered everything: looking at these is enough.
    Listed(Vec<PathBuf>),
    /// The journal cannot vouch for that (why): `add` must walk every folder.
    Walk(&'static str),
}

/// One answer of the journal: git's settings and, when asked, the paths for `add`.
pub(super) struct Answer {
    pub args: Vec<String>,
    /// The token this answer issued.
    token: u64,
    pub new_files: NewFiles,
}

/// A linked worktree's own folder in the repository (`.git/worktrees/<id>`), read from its
/// `.git` file (`gitdir: <path>`, relative to the worktree when git wrote it so) instead of
/// asking a git process. None: not such a file; the caller asks git.
fn linked_admin_dir(worktree: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    let dir = text
        .strip_prefix("gitdir: ")?
        .trim_end_matches(['\n', '\r']);
    let dir = worktree.join(dir);
    dir.join("HEAD").is_file().then_some(dir)
}

/// Worktrees are named by their canonical path (git lists them so; callers join paths).
fn key(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

impl super::Repo {
    /// Starts journaling what changes in the attempt's worktree at `worktree`, so commits there
    /// skip the full scan. Call it once the worktree is in place, before the agent starts. A
    /// failure (inotify limits) only means those commits scan as before: it is logged.
    ///
    /// The worktree must hold no untracked files but ignored ones (a fresh checkout, or one our
    /// own calls clean before the agent starts, as the pool's does): the first commit then
    /// looks for new files only where the journal saw something happen.
    pub fn watch_worktree(&self, worktree: &Path) {
        let path = self.root.join(worktree);
        let admin = match linked_admin_dir(&path) {
            Some(dir) => Ok(dir.to_string_lossy().into_owned()),
            None => self
                .git_in(&path)
                .args(["rev-parse", "--absolute-git-dir"])
                .run(),
        };
        let started = admin.map_err(|e| e.to_string()).and_then(|admin| {
            let journal = PathBuf::from(admin).join("orch-fsmonitor");
            self.watches.start(&path, &journal)
        });
        if let Err(why) = started {
            tracing::warn!(worktree = %path.display(), %why, "git: not watching a worktree; its commits scan every file");
        }
    }

    /// The `-c` settings for a git call in `worktree` that may trust the change journal (see
    /// the module doc); None: run it plainly.
    pub(super) fn fsmonitor_args(&self, worktree: &Path) -> Option<Vec<String>> {
        self.watches.fsmonitor_args(&self.root.join(worktree))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct TreeWatch {
    root: PathBuf,
    dir: PathBuf,
    session: String,
    shared: Arc<Shared>,
    watcher: Mutex<RecommendedWatcher>,
    /// Serializes answers; the tokens whose answers are on disk, oldest first.
    tokens: Mutex<VecDeque<u64>>,
    /// The worktree's admin dir (`.git/worktrees/<id>`, or `.git`): its index and HEAD.
    admin: PathBuf,
    /// The index file when the watch started: no git wrote it since while it is the same.
    index_at_start: Option<FileId>,
    /// The repository's `info/exclude` as last seen: a change can un-ignore files anywhere.
    exclude_seen: Mutex<Option<FileId>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cookie_seen: Condvar,
}

#[derive(Default)]
struct State {
    /// The stamp of events now; every token issued is below it.
    epoch: u64,
    /// Path relative to the root -> (stamp of its last event, may name a directory).
    touched: HashMap<PathBuf, (u64, bool)>,
    /// Directories created or moved in since the last sync: to watch, and to list (what was
    /// made in them before their watch existed).
    unwatched: Vec<PathBuf>,
    /// Events were lost (queue overflow, a read error): watches are re-added, tokens dropped.
    overflowed: bool,
    cookies_seen: u64,
    cookies_made: u64,
    /// How many times lost events made every watch be added again.
    rescans: u64,
    /// Why the journal cannot be trusted any more (the worktree itself moved or vanished).
    broken: Option<String>,
    /// Every path where a new file may have appeared since the last `add` that covered all
    /// of them has a stamp from this one on (None: not known; `add` walks every folder). From
    /// the start: the worktree holds nothing untracked then (see `watch_worktree`).
    listed_from: Option<u64>,
    /// The epoch when lost events were last dealt with (watches re-added).
    lost_at: u64,
}

impl TreeWatch {
    fn start(root: &Path, dir: &Path) -> Result<TreeWatch, String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let shared = Arc::new(Shared::default());
        let handler = {
            let (shared, root, dir) = (shared.clone(), root.to_path_buf(), dir.to_path_buf());
            move |res: notify::Result<Event>| record(&shared, &root, &dir, res)
        };
        let watcher = notify::recommended_watcher(handler).map_err(|e| e.to_string())?;
        let session = crate::os::random_token().map_err(|e| e.to_string())?[..8].to_string();
        lock(&shared.state).listed_from = Some(0);
        let admin = dir.parent().unwrap_or(dir).to_path_buf();
        let w = TreeWatch {
            root: root.to_path_buf(),
            dir: dir.to_path_buf(),
            session,
            shared,
            watcher: Mutex::new(watcher),
            tokens: Mutex::new(VecDeque::new()),
            index_at_start: FileId::of(&admin.join("index")),
            exclude_seen: Mutex::new(FileId::of(&exclude_file(&admin))),
            admin,
        };
        w.watch_dir(dir)?;
        w.watch_tree(root, false)?;
        Ok(w)
    }

    fn watch_dir(&self, dir: &Path) -> Result<bool, String> {
        match lock(&self.watcher).watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => Ok(false),
            Err(e) => Err(format!("cannot watch {}: {e}", dir.display())),
        }
    }

    /// Watches `top` and every directory under it (but `.git` at the root). With `journal`,
    /// `top` is a folder that had no watch until now: it is recorded as touched, as a folder, so
    /// git looks again at everything under it (whatever was written there before its watches
    /// existed). Its entries are not recorded one by one: a build's new `target/` would
    /// otherwise fill the journal.
    fn watch_tree(&self, top: &Path, journal: bool) -> Result<(), String> {
        if journal
            && let Ok(rel) = top.strip_prefix(&self.root)
            && !rel.as_os_str().is_empty()
        {
            let mut st = lock(&self.shared.state);
            let stamp = st.epoch;
            st.touched.insert(rel.to_path_buf(), (stamp, true));
        }
        let mut stack = vec![top.to_path_buf()];
        while let Some(d) = stack.pop() {
            if !d.symlink_metadata().is_ok_and(|m| m.is_dir()) || !self.watch_dir(&d)? {
                continue;
            }
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot list {}: {e}", d.display())),
            };
            for entry in entries.flatten() {
                if d == self.root && entry.file_name() == ".git" {
                    continue;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Syncs with the events so far, writes the answers for every kept token under a new one,
    /// and returns the git settings that read them (with `new_files`, what `add` must look at).
    fn answer(&self, new_files: bool) -> Result<Answer, String> {
        let mut tokens = lock(&self.tokens);
        self.sync(&mut tokens)?;
        // Before our call writes the index: did another git write it since ours did?
        let (foreign, index_token) = self.foreign_index_or_excludes();
        let (now, answers, listed) = {
            let mut st = lock(&self.shared.state);
            if let Some(why) = foreign {
                tracing::debug!(worktree = %self.root.display(), why, "git: new files need a walk");
                st.listed_from = None;
            }
            let now = st.epoch;
            st.epoch += 1;
            tokens.push_back(now);
            while tokens.len() > KEPT_TOKENS {
                if let Some(old) = tokens.pop_front() {
                    let _ = std::fs::remove_file(self.dir.join(self.token(old)));
                }
            }
            // Entries neither a kept token nor the next `add` needs any more.
            let oldest = tokens.front().copied().unwrap_or(now);
            let listed_from = st.listed_from.unwrap_or(u64::MAX);
            st.touched
                .retain(|_, (stamp, _)| *stamp > oldest || *stamp >= listed_from);
            let answers: Vec<(u64, Vec<u8>)> = tokens
                .iter()
                .map(|&t| (t, self.changed_since(&st, t, now)))
                .collect();
            let listed = new_files.then(|| listed_for_add(&st));
            (now, answers, listed)
        };
        let write = |name: &str, body: &[u8]| {
            std::fs::write(self.dir.join(name), body)
                .map_err(|e| format!("cannot write {}: {e}", self.dir.join(name).display()))
        };
        let everything = self.everything(now);
        write(ALL, &everything)?;
        let mut named = Vec::with_capacity(answers.len());
        for (t, body) in answers {
            write(&self.token(t), &body)?;
            named.push((self.token(t), body));
        }
        // The new token too: a later call with these same settings finds it in the index.
        let inlined = [index_token, Some(self.token(now))];
        let hook = match inline_hook(&inlined, &named, &everything) {
            Some(h) => h,
            None => hook_command(&self.dir).ok_or("the journal's path is not UTF-8")?,
        };
        let args = vec![
            "-c".into(),
            format!("core.fsmonitor={hook}"),
            "-c".into(),
            "core.fsmonitorHookVersion=2".into(),
            "-c".into(),
            "core.untrackedCache=true".into(),
        ];
        Ok(Answer {
            args,
            token: now,
            new_files: listed.unwrap_or(NewFiles::Walk("not asked")),
        })
    }

    /// Why the journal may have missed a new file although it lost no event: another git wrote
    /// the index (a `git reset` or `rm --cached` makes files untracked without touching them;
    /// git without our settings drops our token from the index), or `info/exclude` changed.
    /// Also returns the index's token when it is one of ours.
    fn foreign_index_or_excludes(&self) -> (Option<&'static str>, Option<String>) {
        let index = self.admin.join("index");
        let ours = format!("o{}t", self.session);
        let token =
            super::turn_commit::index_fsmonitor_token(&index).filter(|t| t.starts_with(&ours));
        let exclude = FileId::of(&exclude_file(&self.admin));
        if std::mem::replace(&mut *lock(&self.exclude_seen), exclude.clone()) != exclude {
            return (Some("info/exclude changed"), token);
        }
        if token.is_some() || FileId::of(&index) == self.index_at_start {
            return (None, token);
        }
        (Some("another git wrote the index"), None)
    }

    /// Waits until every event made before now has been recorded (a cookie file made now comes
    /// back through the same queue after them), then watches and lists the new directories.
    fn sync(&self, tokens: &mut VecDeque<u64>) -> Result<(), String> {
        let n = {
            let mut st = lock(&self.shared.state);
            st.cookies_made += 1;
            st.cookies_made
        };
        let cookie = self.dir.join(format!("cookie-{n}"));
        std::fs::write(&cookie, b"").map_err(|e| format!("cannot write the sync cookie: {e}"))?;
        let deadline = Instant::now() + SYNC_DEADLINE;
        let mut st = lock(&self.shared.state);
        while st.cookies_seen < n && st.broken.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(st);
                let _ = std::fs::remove_file(&cookie);
                return Err("the file events did not catch up in time".into());
            }
            st = self
                .shared
                .cookie_seen
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(st);
        let _ = std::fs::remove_file(&cookie);
        loop {
            let (todo, rescan) = {
                let mut st = lock(&self.shared.state);
                if let Some(why) = &st.broken {
                    return Err(why.clone());
                }
                let rescan = std::mem::take(&mut st.overflowed);
                st.rescans += u64::from(rescan);
                if rescan {
                    st.listed_from = None;
                    st.lost_at = st.epoch;
                }
                (std::mem::take(&mut st.unwatched), rescan)
            };
            if rescan {
                // Events were lost, directories made meanwhile may lack a watch: every watch
                // again, and no token issued before can be trusted.
                for t in tokens.drain(..) {
                    let _ = std::fs::remove_file(self.dir.join(self.token(t)));
                }
                self.watch_tree(&self.root, false)?;
            }
            if todo.is_empty() && !rescan {
                return Ok(());
            }
            for d in todo {
                self.watch_tree(&d, true)?;
            }
        }
    }

    fn token(&self, n: u64) -> String {
        format!("o{}t{n}", self.session)
    }

    /// The answer to token `since`: the new token, then every path touched after it (a path
    /// that may be a directory also as `path/`, which git reads as everything under it).
    fn changed_since(&self, st: &State, since: u64, now: u64) -> Vec<u8> {
        let changed: Vec<(&PathBuf, bool)> = st
            .touched
            .iter()
            .filter(|(_, (stamp, _))| *stamp > since)
            .map(|(p, (_, d))| (p, *d))
            .collect();
        if changed.len() > MAX_LISTED {
            return self.everything(now);
        }
        let mut out = self.token(now).into_bytes();
        out.push(0);
        for (p, maybe_dir) in changed {
            out.extend_from_slice(p.as_os_str().as_bytes());
            out.push(0);
            if maybe_dir {
                out.extend_from_slice(p.as_os_str().as_bytes());
                out.extend_from_slice(b"/\0");
            }
        }
        out
    }

    fn everything(&self, now: u64) -> Vec<u8> {
        let mut out = self.token(now).into_bytes();
        out.extend_from_slice(b"\0/\0");
        out
    }
}

/// Called on notify's thread for each event: records the paths, spots cookies.
fn record(shared: &Shared, root: &Path, dir: &Path, res: notify::Result<Event>) {
    let mut st = lock(&shared.state);
    let ev = match res {
        Ok(ev) => ev,
        Err(e) => {
            tracing::debug!(error = %e, "git: file event error; rescanning at the next commit");
            st.overflowed = true;
            return;
        }
    };
    if ev.need_rescan() {
        st.overflowed = true;
    }
    let maybe_dir = match ev.kind {
        // Reads say nothing about content.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
        EventKind::Access(_) => return,
        EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => false,
        _ => true,
    };
    let new_dir = matches!(
        ev.kind,
        EventKind::Create(CreateKind::Folder | CreateKind::Any | CreateKind::Other)
            | EventKind::Modify(ModifyKind::Name(_))
    );
    for p in &ev.paths {
        if let Ok(name) = p.strip_prefix(dir) {
            if let Some(n) = cookie_number(name.as_os_str()) {
                st.cookies_seen = st.cookies_seen.max(n);
                shared.cookie_seen.notify_all();
            }
            continue;
        }
        let Ok(rel) = p.strip_prefix(root) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            if !p.is_dir() {
                st.broken = Some("the worktree was moved or removed".into());
                shared.cookie_seen.notify_all();
            }
            continue;
        }
        if rel == Path::new(".git") {
            continue;
        }
        let stamp = st.epoch;
        st.touched.insert(rel.to_path_buf(), (stamp, maybe_dir));
        if new_dir {
            st.unwatched.push(p.clone());
        }
    }
    if st.touched.len() > MAX_JOURNAL {
        // Bounded memory: past this, the next answer is "everything" anyway.
        st.touched.clear();
        st.overflowed = true;
    }
}

/// The paths `add` must look at since `listed_from`, or why it must walk every folder.
fn listed_for_add(st: &State) -> NewFiles {
    let Some(from) = st.listed_from else {
        return NewFiles::Walk("lost events, or the index or excludes changed behind us");
    };
    let mut paths = Vec::new();
    for (p, (stamp, _)) in &st.touched {
        if *stamp < from {
            continue;
        }
        // A new or edited ignore file can bring in files nothing touched; a nested `.git`
        // can turn a folder into a repository of its own.
        if p.components()
            .any(|c| c.as_os_str() == ".git" || c.as_os_str() == ".gitignore")
        {
            return NewFiles::Walk("a .gitignore or a nested .git changed");
        }
        if paths.len() == MAX_LISTED {
            return NewFiles::Walk("too many paths");
        }
        paths.push(p.clone());
    }
    paths.sort();
    NewFiles::Listed(paths)
}

/// Which file this is on disk, and its last change: equal ids mean nobody replaced or wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The repository's `info/exclude`, found from a worktree's admin dir (`commondir` names the
/// repository's from a linked worktree's).
fn exclude_file(admin: &Path) -> PathBuf {
    let common = std::fs::read_to_string(admin.join("commondir"))
        .map(|c| admin.join(c.trim_end_matches(['\n', '\r'])))
        .unwrap_or_else(|_| admin.to_path_buf());
    common.join("info").join("exclude")
}

fn cookie_number(name: &OsStr) -> Option<u64> {
    name.to_str()?.strip_prefix("cookie-")?.parse().ok()
}

mod hook;
#[cfg(test)]
mod tests;

use hook::{hook_command, inline_hook};
