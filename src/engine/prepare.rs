//! `[worktree]` made real: before an agent starts in its new worktree (and before the merge
//! queue's re-checks run in theirs), shared cache folders are made, untracked files are copied in
//! from the main working tree, and the setup commands run — their output in the attempt's log.
//! The slot's variables (`ORCH_SLOT`, `ORCH_PORT`, `ORCH_PORT_COUNT`) and the caches' go into
//! the environment of the setup commands and of the agent.
//!
//! With an empty `[worktree]` nothing here touches the disk (the simulator's worktrees are not
//! on it).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::agent::record::text::{LineKind, StampCache, TextLine, write_line};
use crate::core::config::WorktreeSettings;
use crate::core::supervisor::{CheckOutcome, Setup};
use crate::git::{PathStatus, Repo};

/// What `[worktree]` asks, with the places it refers to.
#[derive(Debug, Clone, Default)]
pub struct WorktreePrep {
    pub settings: WorktreeSettings,
    /// The user's working tree: where `copy` takes files from.
    pub main_tree: PathBuf,
    /// `.orch/cache`: where the `cache` folders live.
    pub cache_root: PathBuf,
    pub git_timeout: Duration,
}

impl WorktreePrep {
    /// For the repository whose worktrees live in `worktrees_dir` (`REPO/.orch/worktrees`).
    pub fn new(settings: &WorktreeSettings, worktrees_dir: &str, git_timeout_ms: u64) -> Self {
        let orch = Path::new(worktrees_dir).parent().unwrap_or(Path::new("."));
        WorktreePrep {
            settings: settings.clone(),
            main_tree: orch.parent().unwrap_or(Path::new(".")).to_path_buf(),
            cache_root: orch.join("cache"),
            git_timeout: Duration::from_millis(git_timeout_ms),
        }
    }

    /// The variables of slot `slot` (from 1; 0 = no slot: the re-check worktree) and of the
    /// caches, or why the slot's ports do not fit.
    pub fn env(&self, slot: u32) -> Result<Vec<(String, String)>, String> {
        let mut env = vec![("ORCH_SLOT".to_string(), slot.to_string())];
        if slot > 0 {
            let port = self.settings.port_of(slot)?;
            env.push(("ORCH_PORT".into(), port.to_string()));
            env.push((
                "ORCH_PORT_COUNT".into(),
                self.settings.ports_per_slot.to_string(),
            ));
        }
        for (var, dir) in &self.settings.cache {
            let path = self.cache_root.join(dir);
            env.push((var.clone(), path.to_string_lossy().into_owned()));
        }
        Ok(env)
    }
}

/// Ready an agent's new worktree before its agent starts; its notes and the setup's output go
/// to the attempt's `screen.log` as stamped lines. `Err`: why the agent cannot start.
pub fn ready_worktree(
    prep: &WorktreePrep,
    s: &Setup,
    env: &[(String, String)],
) -> Result<(), String> {
    if !s.create_worktree || prep.settings.is_empty() {
        return Ok(());
    }
    let dir = Path::new(&s.log_dir);
    let _ = crate::os::files::private_dir(dir);
    let log_file = dir.join(crate::agent::record::TEXT_LOG);
    let mut log = PrepLog::open(&log_file, true);
    prepare(prep, Path::new(&s.worktree), env, &mut log)
        .map_err(|why| format!("{why} (the whole output is in {})", log_file.display()))
}

/// Ready the re-check worktree before its checks; its output goes to `log` (the merge's checks
/// log). A failure comes back as a failed check named `[worktree] setup`, so the merge is
/// escalated with it like any red re-check.
pub fn ready_recheck(prep: &WorktreePrep, scratch: &str, log: &str) -> Result<(), CheckOutcome> {
    if prep.settings.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let env = prep.env(0).unwrap_or_default();
    let mut out = PrepLog::open(Path::new(log), false);
    prepare(prep, Path::new(scratch), &env, &mut out).map_err(|why| CheckOutcome {
        command: "[worktree] setup".into(),
        passed: false,
        exit_code: None,
        timed_out: why.contains("timed out"),
        duration_ms: started.elapsed().as_millis() as u64,
        tail: why,
    })
}

/// Caches, copies, then each setup command in order; the first failure ends it.
fn prepare(
    prep: &WorktreePrep,
    worktree: &Path,
    env: &[(String, String)],
    log: &mut PrepLog,
) -> Result<(), String> {
    for dir in prep.settings.cache.values() {
        let path = prep.cache_root.join(dir);
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create the cache folder {}: {e}", path.display()))?;
    }
    copy_in(prep, worktree, log)?;
    let timeout = Duration::from_millis(prep.settings.setup_timeout_ms.max(1));
    for cmd in &prep.settings.setup {
        run_setup_command(worktree, cmd, env, timeout, log)?;
    }
    Ok(())
}

/// `[worktree] copy`: each path git ignores is copied from the main working tree; a tracked one
/// is already there; one that is neither is refused (an agent's commit would take it).
fn copy_in(prep: &WorktreePrep, worktree: &Path, log: &mut PrepLog) -> Result<(), String> {
    if prep.settings.copy.is_empty() {
        return Ok(());
    }
    let repo = Repo::open(&prep.main_tree)
        .map_err(|e| format!("[worktree] copy: {e}"))?
        .with_timeout(prep.git_timeout);
    let mut copied = Vec::new();
    for rel in &prep.settings.copy {
        let from = prep.main_tree.join(rel);
        if std::fs::symlink_metadata(&from).is_err() {
            log.note(&format!(
                "worktree: `{rel}` is not in {}: not copied",
                prep.main_tree.display()
            ));
            continue;
        }
        match repo.path_status(worktree, rel) {
            Err(e) => return Err(format!("[worktree] copy: `{rel}`: {e}")),
            Ok(PathStatus::Tracked) => {
                log.note(&format!(
                    "worktree: `{rel}` is tracked by git: the worktree has it already"
                ));
            }
            Ok(PathStatus::Untracked) => {
                let why = format!(
                    "[worktree] copy: `{rel}` is not ignored by git, so the agent's commit would \
                     take it: add it to .gitignore or .git/info/exclude, or drop it from copy"
                );
                log.note(&why);
                return Err(why);
            }
            Ok(PathStatus::Ignored) => {
                copy_path(&from, &worktree.join(rel))
                    .map_err(|e| format!("[worktree] copy: cannot copy `{rel}`: {e}"))?;
                copied.push(format!("`{rel}`"));
            }
        }
    }
    if !copied.is_empty() {
        log.note(&format!(
            "worktree: copied {} from {}",
            copied.join(", "),
            prep.main_tree.display()
        ));
    }
    Ok(())
}

/// A file, a symlink (as a link) or a folder with everything in it; modes are kept.
fn copy_path(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        let _ = std::fs::remove_file(to);
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_path(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

/// Lines of the last output kept for the failure's message.
const TAIL_LINES: usize = 12;

/// One setup command through `sh -c` in its own process group, stdout and stderr into one pipe
/// read line by line into the log as they come. Past `timeout` the group is stopped.
fn run_setup_command(
    dir: &Path,
    cmd: &str,
    env: &[(String, String)],
    timeout: Duration,
    log: &mut PrepLog,
) -> Result<(), String> {
    let started = Instant::now();
    log.note(&format!("worktree setup: $ {cmd}"));
    let fail = |log: &mut PrepLog, why: String| {
        log.note(&format!("worktree setup: {why}"));
        Err(why)
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return fail(log, format!("cannot run `{cmd}`: no pipe ({e})")),
    };
    let child = {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(cmd)
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .process_group(0);
        match writer.try_clone() {
            Ok(w) => command.stdout(w).stderr(writer),
            Err(e) => return fail(log, format!("cannot run `{cmd}`: {e}")),
        };
        command.spawn()
        // `command` (holding the pipe's write ends) is dropped here: EOF comes when the
        // command and whatever it started are done with the pipe.
    };
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(log, format!("cannot run `{cmd}`: {e}")),
    };
    let (tx, rx) = channel::<Vec<u8>>();
    let _ = std::thread::Builder::new()
        .name("worktree-setup".into())
        .spawn(move || {
            for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    let deadline = started + timeout;
    let mut tail: Vec<String> = Vec::new();
    let mut exited_at: Option<Instant> = None;
    let mut timed_out = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(bytes) => {
                let line = String::from_utf8_lossy(&bytes)
                    .trim_end_matches('\r')
                    .to_string();
                log.output(&line);
                tail.push(line);
                if tail.len() > TAIL_LINES {
                    tail.remove(0);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // A daemon the command left running may hold the pipe open: once the command itself
        // has exited, what it printed is read for a moment more, then the rest is left.
        if exited_at.is_none() && matches!(child.try_wait(), Ok(Some(_))) {
            exited_at = Some(Instant::now());
        }
        if exited_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
            break;
        }
        if exited_at.is_none() && Instant::now() >= deadline {
            timed_out = true;
            crate::os::kill_process_group(child.id() as i32, Duration::from_secs(2));
            break;
        }
    }
    let status = child.wait();
    let took = format!("{:.1}s", started.elapsed().as_secs_f64());
    let code = status.as_ref().ok().and_then(|s| s.code());
    if !timed_out && code == Some(0) {
        log.note(&format!("worktree setup: `{cmd}` passed in {took}"));
        return Ok(());
    }
    let what = if timed_out {
        format!(
            "timed out after {} ([worktree] setup_timeout)",
            crate::core::duration::format_duration(timeout.as_millis() as u64)
        )
    } else {
        match code {
            Some(c) => format!("exited with {c}"),
            None => "was killed by a signal".to_string(),
        }
    };
    let mut why = format!("worktree setup `{cmd}` {what} in {took}; the agent was not started");
    if !tail.is_empty() {
        why.push_str(&format!("; its output ends:\n{}", tail.join("\n")));
    }
    log.note(&format!("worktree setup: `{cmd}` FAILED: {what}"));
    Err(why)
}

/// Where setup writes: stamped lines in an agent's `screen.log`, plain ones in a checks log.
struct PrepLog {
    file: Option<File>,
    stamped: bool,
    stamps: StampCache,
}

impl PrepLog {
    fn open(path: &Path, stamped: bool) -> PrepLog {
        let file = crate::os::files::append_private(path)
            .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "no setup log"))
            .ok();
        PrepLog {
            file,
            stamped,
            stamps: StampCache::default(),
        }
    }

    fn write(&mut self, kind: LineKind, text: &str) {
        let mut buf = Vec::new();
        if self.stamped {
            let line = TextLine::new(crate::ledger::now_ms(), kind, text);
            write_line(&mut buf, &mut self.stamps, &line);
        } else {
            if kind == LineKind::Note {
                buf.extend_from_slice(b"# ");
            }
            buf.extend_from_slice(text.as_bytes());
            buf.push(b'\n');
        }
        if let Some(f) = &mut self.file
            && f.write_all(&buf).is_err()
        {
            self.file = None;
        }
    }

    fn note(&mut self, text: &str) {
        self.write(LineKind::Note, text);
    }

    fn output(&mut self, text: &str) {
        self.write(LineKind::Output, text);
    }
}
