//! The supervisor as a child subreaper, and reaping the orphans it adopts without stealing an
//! exit status someone else waits for.
//!
//! With `PR_SET_CHILD_SUBREAPER`, a descendant whose parent dies (a `setsid` daemon an agent
//! left behind) is re-parented to us instead of init. It stays findable — `ppid` is us — but
//! when it exits it is our zombie, and only we can reap it. A careless `waitpid(-1)` would also
//! take the exit status of children that other code waits for: std's `Child::wait` (git, checks)
//! would then fail with ECHILD, and an agent's waiter would never learn its exit code.
//!
//! The rule that makes reaping safe here: only a zombie child that is **in another session than
//! ours** and **not registered** is reaped.
//! - Everything std::process starts (git, checks, `process_group(0)` included) stays in our
//!   session, so it is never touched.
//! - Agents get a session of their own (portable-pty calls `setsid`); they are registered under
//!   [`before_spawn_in_new_session`]'s lock from before the fork until their waiter has reaped
//!   them, and [`reap_adopted`] takes the same lock, so an agent that exits at once is never
//!   mistaken for an orphan.
//! - An adopted orphan descends from an agent, so its session is the agent's or one it made with
//!   `setsid`: never ours.
//!
//! Anything else that starts a child in a new session must register it the same way.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::kill::AGENT_CGROUP_PREFIX;
use super::sys;

pub use sys::{is_child_subreaper, set_child_subreaper};

/// Children started in a session of their own whose exit status their spawner waits for.
static OWN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn own() -> MutexGuard<'static, Vec<i32>> {
    OWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held from before a child is started in a new session until its pid is registered.
pub struct SpawnGuard(MutexGuard<'static, Vec<i32>>);

impl SpawnGuard {
    /// Register the child: [`reap_adopted`] leaves it to its own waiter.
    pub fn own(mut self, pid: i32) {
        self.0.push(pid);
    }
}

/// Take before spawning a child that calls `setsid` (an agent); register it with
/// [`SpawnGuard::own`] before dropping the guard.
pub fn before_spawn_in_new_session() -> SpawnGuard {
    SpawnGuard(own())
}

/// The spawner reaped `pid` itself: forget it.
pub fn waited(pid: i32) {
    own().retain(|p| *p != pid);
}

/// An orphan reaped by [`reap_adopted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// Reap every adopted orphan that has exited (see the module doc for which zombies qualify).
/// Never blocks. Call it when SIGCHLD arrives or on a timer, in the process that is the
/// subreaper.
pub fn reap_adopted() -> Vec<Reaped> {
    let registered = own();
    let me = std::process::id() as i32;
    // SAFETY: getsid(0) asks for our own session; it cannot fail for the caller.
    let our_session = unsafe { libc::getsid(0) };
    let mut reaped = Vec::new();
    // Our children only (zombies stay listed until reaped); every process where the kernel
    // cannot list them.
    let candidates = match sys::own_children() {
        Some(pids) => pids.into_iter().filter_map(sys::stat).collect(),
        None => sys::all_stats(),
    };
    for s in candidates {
        if s.ppid != me || s.state != 'Z' || s.session == our_session || registered.contains(&s.pid)
        {
            continue;
        }
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid on one zombie child of ours with a valid out-pointer; WNOHANG.
        if unsafe { libc::waitpid(s.pid, &mut status, libc::WNOHANG) } == s.pid {
            reaped.push(Reaped {
                pid: s.pid,
                code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
                signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
            });
        }
    }
    reaped
}

/// Put a just-started agent into a cgroup of its own (`<our cgroup>/orch-agent-<pid>`), when
/// our cgroup v2 is delegated to us and writable; `None` otherwise (then only the process tree
/// and the token find its descendants). Children it forked before the move stay outside; the
/// token finds those.
pub fn agent_cgroup(pid: i32) -> Option<PathBuf> {
    let dir = new_agent_cgroup(pid)?;
    if join_agent_cgroup(&dir, pid) {
        Some(dir)
    } else {
        let _ = std::fs::remove_dir(&dir);
        None
    }
}

/// `agent_cgroup` in two halves: the cgroup made now (cheap), the agent moved into it by
/// `join_agent_cgroup` later — by whoever reaps it, before it does (its zombie keeps the pid
/// from being reused). The move waits for an RCU grace period in the kernel (10-15 ms on a busy
/// VM, measured with strace: a third of a holder's start), which a spawn need not wait for.
pub fn new_agent_cgroup(pid: i32) -> Option<PathBuf> {
    let dir = sys::delegated_cgroup()?.join(format!("{AGENT_CGROUP_PREFIX}{pid}"));
    match std::fs::create_dir(&dir) {
        Ok(()) => Some(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Some(dir),
        Err(e) => {
            tracing::debug!(pid, error = %e, "agent left in our cgroup");
            None
        }
    }
}

/// Moves `pid` into its cgroup `dir` (`new_agent_cgroup`); false (logged) when it could not,
/// and the agent stays in ours: the process tree and the token still find it.
pub fn join_agent_cgroup(dir: &Path, pid: i32) -> bool {
    match sys::cgroup_add(dir, pid) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(pid, error = %e, "agent left in our cgroup");
            false
        }
    }
}

/// Remove an agent's cgroup once it is empty. False while processes remain in it.
pub fn remove_agent_cgroup(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Remove every empty agent cgroup under ours (left by agents whose supervisor was killed).
/// Returns how many went. A cgroup with processes in it stays.
pub fn sweep_agent_cgroups() -> usize {
    let Some(parent) = sys::delegated_cgroup() else {
        return 0;
    };
    let Ok(dir) = std::fs::read_dir(&parent) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(AGENT_CGROUP_PREFIX))
        })
        .filter(|e| {
            sys::cgroup_procs(&e.path()).is_empty() && std::fs::remove_dir(e.path()).is_ok()
        })
        .count()
}

/// Whether cgroup v2 `cgroup.kill` is available to this process (see `agent_cgroup`).
pub fn cgroups_available() -> bool {
    sys::delegated_cgroup().is_some()
}
