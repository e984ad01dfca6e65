//! Stopping an agent and everything it started: SIGTERM, a grace period, then SIGKILL, to the
//! whole tree — not only the process group, which a child leaves by calling `setsid`.
//!
//! The tree is found three ways, every round (processes fork while being stopped):
//! - the parent chain in `/proc`: the root, its process group, and every descendant of any
//!   process already found (a `setsid` grandchild whose parent still lives included);
//! - the attempt's token: every process whose environment carries `ORCH_TOKEN=<token>` (finds
//!   orphans whose parent died, and agents whose pid was never recorded);
//! - cgroup v2: when an agent runs in a cgroup of its own (`orch-agent-*`, see
//!   `os::reap::agent_cgroup`), every member is a target and `cgroup.kill` ends them at once.
//!
//! Each process is named by (pid, start time) and signalled through a pidfd, so a pid reused by
//! an unrelated process in the meantime is never hit. This process and its ancestors are never
//! targets.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sys::{self, ProcStat};
use super::{descendants_in, has_token};

/// The prefix of the cgroups orch-tui makes for agents.
pub const AGENT_CGROUP_PREFIX: &str = "orch-agent-";

/// How often the tree is looked at again while waiting for it to go.
const POLL: Duration = Duration::from_millis(20);
/// How long SIGKILL is given (a process in uninterruptible sleep dies when its I/O ends).
const KILL_WAIT: Duration = Duration::from_secs(2);

/// What [`kill_tree`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KillReport {
    /// Every process found, at any round.
    pub found: Vec<i32>,
    /// Those still alive after the grace period, sent SIGKILL.
    pub killed: Vec<i32>,
    /// Those still alive at the end (empty unless a process is stuck in the kernel).
    pub survivors: Vec<i32>,
    /// Whether `cgroup.kill` was used.
    pub used_cgroup: bool,
}

/// Stop the agent `root` and every process of its tree (see the module doc): SIGTERM to all,
/// up to `grace` for them to go, then SIGKILL to whatever is left. Returns when none is left
/// (or after the SIGKILL wait).
///
/// `root` must be the agent (a child not yet reaped, or a pid whose environment carries the
/// token); pass 0 when the pid is unknown and rely on `token`. Zombies count as gone: their
/// parent reaps them.
pub fn kill_tree(root: i32, token: Option<&str>, grace: Duration) -> KillReport {
    stop_tree(
        &Tree {
            root: if root > 1 { sys::stat(root) } else { None },
            token,
            cgroup: None,
        },
        grace,
    )
}

/// What names an agent's processes, for [`stop_tree`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Tree<'a> {
    /// The agent as seen when it was known to be the agent (pid + start time, e.g. right after
    /// spawning it): safe even if its pid has been reused since.
    pub root: Option<ProcStat>,
    /// The attempt's token (`ORCH_TOKEN`).
    pub token: Option<&'a str>,
    /// The agent's own cgroup, if it was given one: finds even a process that left the tree
    /// and cleared its environment.
    pub cgroup: Option<&'a Path>,
}

/// [`kill_tree`] with everything known about the agent.
pub fn stop_tree(tree: &Tree, grace: Duration) -> KillReport {
    let mut hunt = Hunt::new(tree.root, tree.token);
    if let Some(cg) = tree.cgroup {
        hunt.cgroups.push(cg.to_path_buf());
    }
    let mut report = KillReport::default();
    let first = hunt.round();
    if first.is_empty() {
        return report;
    }
    for p in &first {
        term(p);
    }
    let deadline = Instant::now() + grace;
    let mut left = first;
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(POLL);
        left = hunt.round();
        // Late arrivals (forked meanwhile) get their SIGTERM too.
        for p in &left {
            if !hunt.termed.contains(&p.pid) {
                term(p);
            }
        }
        hunt.termed.extend(left.iter().map(|p| p.pid));
    }
    let kill_deadline = Instant::now() + KILL_WAIT;
    while !left.is_empty() {
        for cg in &hunt.cgroups {
            report.used_cgroup |= sys::cgroup_kill(cg).is_ok();
        }
        for p in &left {
            if sys::signal_exact(p.pid, p.start_time, libc::SIGKILL)
                && !report.killed.contains(&p.pid)
            {
                report.killed.push(p.pid);
            }
        }
        if Instant::now() >= kill_deadline {
            break;
        }
        std::thread::sleep(POLL);
        left = hunt.round();
    }
    report.survivors = left.iter().map(|p| p.pid).collect();
    report.found = hunt.known.iter().map(|p| p.pid).collect();
    report
}

/// The state of one search across rounds.
struct Hunt<'a> {
    token: Option<&'a str>,
    /// The root while it is still the same process.
    root: Option<ProcStat>,
    /// Every process found so far (pid + start time).
    known: Vec<ProcStat>,
    /// Pids already sent SIGTERM.
    termed: Vec<i32>,
    cgroups: Vec<PathBuf>,
    /// This process and its ancestors: never targets.
    spared: Vec<i32>,
}

impl<'a> Hunt<'a> {
    fn new(root: Option<ProcStat>, token: Option<&'a str>) -> Hunt<'a> {
        let me = std::process::id() as i32;
        let mut spared = vec![me];
        let mut cur = me;
        while let Some(s) = sys::stat(cur) {
            if s.ppid <= 0 || spared.contains(&s.ppid) {
                break;
            }
            spared.push(s.ppid);
            cur = s.ppid;
        }
        let root = root.filter(|r| r.pid > 1 && !spared.contains(&r.pid));
        Hunt {
            token: token.filter(|t| !t.is_empty()),
            root,
            known: Vec::new(),
            termed: Vec::new(),
            cgroups: Vec::new(),
            spared,
        }
    }

    /// The live targets now.
    fn round(&mut self) -> Vec<ProcStat> {
        let all = sys::all_stats();
        let same = |p: &ProcStat| {
            all.iter()
                .find(|s| s.pid == p.pid && s.start_time == p.start_time)
                .copied()
        };
        let mut live: Vec<ProcStat> = Vec::new();
        match self.root.and_then(|r| same(&r)) {
            Some(r) => {
                live.push(r);
                live.extend(all.iter().filter(|s| s.pgrp == r.pid));
            }
            // Gone and reaped: its pid may belong to someone else from now on.
            None => self.root = None,
        }
        live.extend(self.known.iter().filter_map(same));
        let mut i = 0;
        while i < live.len() {
            let parent = live[i].pid;
            for d in descendants_in(&all, parent) {
                if !live.iter().any(|l| l.pid == d.pid) {
                    live.push(d);
                }
            }
            i += 1;
        }
        if let Some(token) = self.token {
            live.extend(
                all.iter()
                    .filter(|s| !s.is_dead() && has_token(s.pid, token)),
            );
        }
        for p in &live {
            if let Some(cg) = sys::cgroup_of(p.pid)
                && cg
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(AGENT_CGROUP_PREFIX))
                && !self.cgroups.contains(&cg)
            {
                self.cgroups.push(cg);
            }
        }
        for cg in &self.cgroups {
            live.extend(
                sys::cgroup_procs(cg)
                    .into_iter()
                    .filter_map(|pid| all.iter().find(|s| s.pid == pid).copied()),
            );
        }
        live.retain(|p| !p.is_dead() && p.pid > 1 && !self.spared.contains(&p.pid));
        live.sort_by_key(|p| p.pid);
        live.dedup_by_key(|p| p.pid);
        for p in &live {
            if !self
                .known
                .iter()
                .any(|k| k.pid == p.pid && k.start_time == p.start_time)
            {
                self.known.push(*p);
            }
        }
        live
    }
}

/// SIGTERM, then SIGCONT: a frozen process (a paused task's agent, see [`freeze_tree`]) keeps a
/// SIGTERM pending until it runs again, and would only go at the SIGKILL.
fn term(p: &ProcStat) {
    sys::signal_exact(p.pid, p.start_time, libc::SIGTERM);
    sys::signal_exact(p.pid, p.start_time, libc::SIGCONT);
}

/// Freeze (SIGSTOP) or thaw (SIGCONT) the agent `root` and its tree: its process group and
/// every descendant, a `setsid` one included. Two rounds when freezing, so a child forked while
/// the first round ran is caught. Returns how many processes were signalled in the last round.
///
/// A frozen agent is not an exited one: its waiter's `waitpid` (without `WUNTRACED`) does not
/// return for a stopped child, and its PTY simply stays quiet.
pub fn freeze_tree(root: i32, freeze: bool) -> usize {
    let Some(top) = (if root > 1 { sys::stat(root) } else { None }) else {
        return 0;
    };
    let sig = if freeze { libc::SIGSTOP } else { libc::SIGCONT };
    let mut sent = 0;
    for _ in 0..if freeze { 2 } else { 1 } {
        let all = sys::all_stats();
        let mut tree = vec![top];
        tree.extend(
            all.iter()
                .filter(|s| s.pgrp == root && s.pid != root && !s.is_dead()),
        );
        tree.extend(descendants_in(&all, root));
        tree.sort_by_key(|s| s.pid);
        tree.dedup_by_key(|s| s.pid);
        let me = std::process::id() as i32;
        sent = tree
            .iter()
            .filter(|s| s.pid != me && sys::signal_exact(s.pid, s.start_time, sig))
            .count();
    }
    sent
}

/// True while some process of the group is alive. Zombies do not count: they are dead, and an
/// orphaned one may wait for a PID 1 that never reaps (containers).
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(-pgid, 0) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    sys::all_stats()
        .iter()
        .any(|s| s.pgrp == pgid && !s.is_dead())
}

/// Signal a whole process group; refuses pgid <= 1 (our own group or every process).
pub fn signal_group(pgid: i32, sig: libc::c_int) {
    if pgid > 1 {
        // SAFETY: plain syscall; a gone group gives ESRCH, which is fine.
        unsafe { libc::killpg(pgid, sig) };
    }
}

/// Kills a process group: SIGTERM, wait up to `grace` for the group to go, then SIGKILL.
/// Returns true when no live process of the group remains. Refuses (false) pgid <= 1 and our
/// own group. Only the group: prefer [`kill_tree`], which also finds those that left it.
pub fn kill_process_group(pgid: i32, grace: Duration) -> bool {
    // SAFETY: getpgrp cannot fail.
    if pgid <= 1 || pgid == unsafe { libc::getpgrp() } {
        return false;
    }
    // Not our children, so nothing to wait on: poll, briefly.
    let gone_within = |limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            if !group_alive(pgid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    if !group_alive(pgid) {
        return true;
    }
    signal_group(pgid, libc::SIGTERM);
    if gone_within(grace) {
        return true;
    }
    signal_group(pgid, libc::SIGKILL);
    gone_within(KILL_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_our_own_group_or_everyone() {
        assert!(!kill_process_group(1, Duration::ZERO));
        assert!(!kill_process_group(0, Duration::ZERO));
        // SAFETY: getpgrp cannot fail.
        assert!(!kill_process_group(
            unsafe { libc::getpgrp() },
            Duration::ZERO
        ));
    }

    #[test]
    fn nothing_to_do_for_a_gone_root_and_an_unknown_token() {
        let r = kill_tree(0, Some("no-such-token-anywhere"), Duration::ZERO);
        assert_eq!(r, KillReport::default());
        let me = std::process::id() as i32;
        let r = kill_tree(me, None, Duration::ZERO);
        assert!(r.found.is_empty(), "this process is spared: {r:?}");
    }
}
