//! The operating system behind one door: processes and their trees, stopping them, reaping
//! orphans, file modes, the supervisor's lock, random tokens and quiet printing.
//!
//! Arrows: every part may use `os`; `os` uses no other part of orch-tui. The Linux-only calls
//! (`/proc`, `prctl`, pidfds, cgroup v2, `getrandom`) are all in `linux.rs`, so a port to another
//! kernel is one file; the rest is POSIX.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as sys;

pub mod detach;
pub mod files;
pub mod kill;
pub mod lock;
pub mod out;
pub mod reap;

pub use kill::{KillReport, Tree, freeze_tree, kill_process_group, kill_tree, stop_tree};
pub use lock::supervisor_running;
pub use sys::ProcStat;

/// One malloc arena for the whole process (glibc otherwise gives each thread that allocates
/// its own, ~70 KB resident even when the thread then sleeps): for small long-lived processes
/// whose threads mostly wait (holders). Call before starting threads; nothing elsewhere.
pub fn one_malloc_arena() {
    sys::one_malloc_arena()
}

/// The environment variable that carries an attempt's fencing token.
pub const TOKEN_VAR: &str = "ORCH_TOKEN";

/// A fresh fencing token: 128 bits from the OS random source (`getrandom(2)`), as 32 hex
/// digits. An error only when the kernel has no random source to give.
pub fn random_token() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    sys::fill_random(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The local time zone's offset from UTC at `epoch_s`, in seconds east (0 when unknown).
pub fn utc_offset_s(epoch_s: i64) -> i64 {
    let t = epoch_s as libc::time_t;
    // SAFETY: localtime_r writes only into the `tm` we own; a zeroed tm is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok { tm.tm_gmtoff } else { 0 }
}

/// What `/proc` says of `pid` now (`None`: gone).
pub fn process(pid: i32) -> Option<ProcStat> {
    sys::stat(pid)
}

/// Alive: exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    sys::stat(pid).is_some_and(|s| !s.is_dead())
}

/// The parent of `pid`, if it still runs.
pub fn parent_of(pid: i32) -> Option<i32> {
    sys::stat(pid).map(|s| s.ppid)
}

/// Whether `pid`'s environment carries `ORCH_TOKEN=<token>`: the mark of an attempt's agent and
/// everything it started (unless a process rewrote its environment).
pub fn has_token(pid: i32, token: &str) -> bool {
    !token.is_empty() && sys::environ_has(pid, TOKEN_VAR, token)
}

/// True when `ancestor` is `pid` itself or one of its ancestors, walking the parent chain in
/// `/proc`. A process whose parent died was re-parented (to init or a subreaper), so the chain
/// then no longer leads to its old ancestors.
pub fn descends_from(pid: i32, ancestor: i32) -> bool {
    if ancestor <= 0 {
        return false;
    }
    let mut cur = pid;
    // The hop limit only guards against a corrupt /proc; real chains are short.
    for _ in 0..4096 {
        if cur == ancestor {
            return true;
        }
        match sys::stat(cur) {
            Some(s) if s.ppid > 0 && s.ppid != cur => cur = s.ppid,
            _ => return false,
        }
    }
    false
}

/// Every live descendant of `root` (not `root` itself), found through each process's parent in
/// `/proc`: sessions and process groups do not matter, so a child that called `setsid` is found
/// as long as its parent chain still leads to `root`.
pub fn descendants(root: i32) -> Vec<i32> {
    descendants_in(&sys::all_stats(), root)
        .into_iter()
        .map(|s| s.pid)
        .collect()
}

fn descendants_in(all: &[ProcStat], root: i32) -> Vec<ProcStat> {
    let mut found: Vec<ProcStat> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for s in all.iter().filter(|s| s.ppid == parent && s.pid != root) {
            if !found.iter().any(|f| f.pid == s.pid) {
                found.push(*s);
                frontier.push(s.pid);
            }
        }
    }
    found.retain(|s| !s.is_dead());
    found
}

/// Every live process whose environment carries `ORCH_TOKEN=<token>` (this process excepted):
/// how a stale agent is found when its pid was never recorded, or its parent is long gone.
pub fn processes_with_token(token: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    sys::all_stats()
        .into_iter()
        .filter(|s| s.pid != me && !s.is_dead() && has_token(s.pid, token))
        .map(|s| s.pid)
        .collect()
}

/// Every live process started for the ledger at `ledger` by a supervisor of an epoch before
/// `epoch` (`ORCH_LEDGER` and `ORCH_EPOCH` in its environment), this process and its ancestors
/// excepted: what a restarted supervisor stops before it starts anything.
pub fn processes_of_ledger(ledger: &str, epoch: i64) -> Vec<i32> {
    let me = std::process::id() as i32;
    let all = sys::all_stats();
    // This process's own chain, walked once (not once per process: a busy machine has hundreds).
    let mut mine = vec![me];
    let mut cur = me;
    while let Some(parent) = all
        .iter()
        .find(|s| s.pid == cur)
        .map(|s| s.ppid)
        .filter(|&p| p > 0 && !mine.contains(&p))
    {
        mine.push(parent);
        cur = parent;
    }
    all.into_iter()
        .filter(|s| !s.is_dead() && !mine.contains(&s.pid))
        .filter(|s| sys::environ_has(s.pid, "ORCH_LEDGER", ledger))
        .filter(|s| {
            sys::environ_value(s.pid, "ORCH_EPOCH")
                .and_then(|v| v.parse::<i64>().ok())
                .is_none_or(|e| e < epoch)
        })
        .map(|s| s.pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_differ() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_process_descends_from_itself_and_its_parent_but_not_from_a_stranger() {
        let me = std::process::id() as i32;
        let parent = parent_of(me).unwrap();
        assert!(descends_from(me, me));
        assert!(descends_from(me, parent));
        assert!(!descends_from(parent, me));
        assert!(!descends_from(me, 0));
    }

    #[test]
    fn the_tree_walk_follows_parents_only() {
        let p = |pid, ppid| ProcStat {
            pid,
            state: 'S',
            ppid,
            pgrp: pid,
            session: pid,
            start_time: 0,
        };
        let all = [p(10, 1), p(11, 10), p(12, 11), p(13, 1), p(14, 12)];
        let mut d: Vec<i32> = descendants_in(&all, 10).iter().map(|s| s.pid).collect();
        d.sort();
        assert_eq!(d, [11, 12, 14]);
        assert!(descendants_in(&all, 13).is_empty());
    }
}

/// What waiting for input on a terminal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Something to read on the terminal.
    Ready,
    /// Only the wake-up descriptor has something, or a signal cut the wait short.
    Woken,
    /// Nothing within the time given.
    Quiet,
    /// The terminal hung up (it closed): reads give end-of-file from now on.
    HungUp,
}

/// Waits up to `limit` for input on `tty` or anything on `wake`, telling a hang-up apart from
/// input (`poll(2)` reports both as readable to those who ask only for POLLIN).
pub fn wait_for_input(
    tty: std::os::fd::BorrowedFd<'_>,
    wake: Option<std::os::fd::BorrowedFd<'_>>,
    limit: std::time::Duration,
) -> Input {
    use std::os::fd::AsRawFd;
    let poll_fd = |fd: i32| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds = [
        poll_fd(tty.as_raw_fd()),
        // A negative descriptor is skipped by poll(2).
        poll_fd(wake.map_or(-1, |w| w.as_raw_fd())),
    ];
    let ms = limit.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: two pollfds that live across the call, for descriptors the caller keeps open.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    let [t, w] = fds;
    if n < 0 {
        Input::Woken
    } else if n == 0 {
        Input::Quiet
    } else if t.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Input::HungUp
    } else if t.revents & libc::POLLIN != 0 {
        Input::Ready
    } else if w.revents != 0 {
        Input::Woken
    } else {
        Input::Quiet
    }
}
