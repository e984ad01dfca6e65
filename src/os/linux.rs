//! The Linux-only calls behind `os`: `/proc`, `prctl`, pidfds, cgroup v2 and `getrandom`.
//! A port to another kernel replaces this one file (see docs/security.md, "Porting").
//!
//! Everything here is best effort on a live system: a process can exit between two reads, so a
//! missing `/proc` entry is "gone", never an error.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// `R`, `S`, `D`, `T`, `Z` (zombie: dead, waiting for its parent), `X` ...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks since boot: with the pid, it names one process even after the pid is reused.
    pub start_time: u64,
}

impl ProcStat {
    /// Dead (a zombie or being torn down): it can run no more code.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// `/proc/<pid>/stat`, or `None` when the process is gone (or was never there).
pub fn stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// The fields after the command name, which sits in parentheses and may itself hold spaces or
/// parentheses (so the last `)` ends it).
fn parse_stat(pid: i32, text: &str) -> Option<ProcStat> {
    let (_, rest) = text.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); start_time is field 22.
    if f.len() < 20 {
        return None;
    }
    Some(ProcStat {
        pid,
        state: f[0].chars().next()?,
        ppid: f[1].parse().ok()?,
        pgrp: f[2].parse().ok()?,
        session: f[3].parse().ok()?,
        start_time: f[19].parse().ok()?,
    })
}

/// Every process visible in `/proc`.
pub fn all_stats() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The children of this process, whichever thread is their parent (orphans adopted as a
/// subreaper included), from `/proc/self/task/*/children`: a few small reads, where reading
/// every process's stat costs one read per process on the machine. None when the kernel does
/// not offer the file (built without `CONFIG_PROC_CHILDREN`).
pub fn own_children() -> Option<Vec<i32>> {
    let main = format!("/proc/self/task/{}/children", std::process::id());
    if !std::path::Path::new(&main).exists() {
        return None;
    }
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // A thread that ended since the listing has no children left to read.
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    Some(out)
}

/// Whether `/proc/<pid>/environ` holds exactly the entry `NAME=VALUE`. False when it cannot be
/// read (gone, or another user's process).
pub fn environ_has(pid: i32, name: &str, value: &str) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let needle = format!("{name}={value}");
    env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())
}

/// The value of `name` in `pid`'s environment, if it has one.
pub fn environ_value(pid: i32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// `/proc/<pid>/cgroup`'s cgroup v2 line (`0::/path`) as a directory under the v2 mount.
pub fn cgroup_of(pid: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(cgroup2_mount()?.join(rel.trim_start_matches('/')))
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on
/// hybrid systems), from `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<PathBuf> {
    static MOUNT: OnceLock<Option<PathBuf>> = OnceLock::new();
    MOUNT
        .get_or_init(|| {
            let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            info.lines().find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                let fstype = right.split_whitespace().next()?;
                let mount_point = left.split_whitespace().nth(4)?;
                (fstype == "cgroup2").then(|| PathBuf::from(mount_point))
            })
        })
        .clone()
}

/// Our own cgroup v2 directory, if we may create agent cgroups under it and `cgroup.kill` works
/// there (Linux 5.14+). Checked once, by creating and removing a probe cgroup: permission bits
/// alone do not tell whether the cgroup was delegated to us.
pub fn delegated_cgroup() -> Option<PathBuf> {
    static DELEGATED: OnceLock<Option<PathBuf>> = OnceLock::new();
    DELEGATED
        .get_or_init(|| {
            let ours = cgroup_of(std::process::id() as i32)?;
            let probe = ours.join(format!("orch-probe-{}", std::process::id()));
            std::fs::create_dir(&probe).ok()?;
            let usable =
                probe.join("cgroup.kill").exists() && writable(&probe.join("cgroup.procs"));
            let _ = std::fs::remove_dir(&probe);
            usable.then_some(ours)
        })
        .clone()
}

fn writable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a NUL-terminated path we own.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Kill every process in a cgroup at once (`cgroup.kill`, Linux 5.14+): SIGKILL to all members,
/// including those that left the session and process group.
pub fn cgroup_kill(dir: &Path) -> io::Result<()> {
    std::fs::write(dir.join("cgroup.kill"), "1")
}

/// The pids in a cgroup (empty when it is gone).
pub fn cgroup_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Move `pid` into the cgroup `dir` (created if missing).
pub fn cgroup_add(dir: &Path, pid: i32) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
}

/// `prctl(PR_SET_CHILD_SUBREAPER)`: orphaned descendants are re-parented to this process
/// instead of init, so they stay findable (and must be reaped here; see `os::reap`).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether this process is a child subreaper.
pub fn is_child_subreaper() -> bool {
    let mut flag: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer we pass.
    let rc = unsafe {
        libc::prctl(
            libc::PR_GET_CHILD_SUBREAPER,
            &mut flag as *mut libc::c_int as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    rc == 0 && flag != 0
}

/// Send `sig` to exactly the process `(pid, start_time)`: through a pidfd, so a pid that was
/// reused in the meantime is never hit. Returns false when that process is gone.
pub fn signal_exact(pid: i32, start_time: u64, sig: libc::c_int) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: pidfd_open takes a pid and flags; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    if fd < 0 {
        if io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            // Kernels before 5.3: check the identity, then plain kill(2).
            return stat(pid).is_some_and(|s| s.start_time == start_time)
                // SAFETY: plain kill(2).
                && unsafe { libc::kill(pid, sig) } == 0;
        }
        return false;
    }
    // The fd pins the process: if its stat still matches now, the signal reaches it.
    let same = stat(pid).is_some_and(|s| s.start_time == start_time);
    let sent = same
        // SAFETY: pidfd_send_signal on the fd we just opened, no siginfo.
        && unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        } == 0;
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };
    sent
}

/// `getrandom(2)`, falling back to `/dev/urandom` on kernels without it.
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom writes at most rest.len() bytes into rest.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
            continue;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOSYS) => {
                use std::io::Read;
                return std::fs::File::open("/dev/urandom")?.read_exact(rest);
            }
            _ => return Err(err),
        }
    }
    Ok(())
}

/// See `os::one_malloc_arena`.
pub fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; no pointer is passed.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Widens the pipe `fd`, when it is one, to `bytes` (the kernel rounds it up to pages and
/// caps it at `/proc/sys/fs/pipe-max-size`, 1 MiB by default): a reader of megabytes then
/// wakes the writer a sixteenth as often as through the default 64 KiB. Anything else (a file,
/// a terminal, a refusal) is left as it is.
pub fn widen_pipe(fd: std::os::fd::BorrowedFd<'_>, bytes: usize) {
    use std::os::fd::AsRawFd;
    let fd = fd.as_raw_fd();
    // SAFETY: fstat fills the struct we own; fcntl on a descriptor the caller lends us.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO {
            let n = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            let _ = libc::fcntl(fd, libc::F_SETPIPE_SZ, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_is_widened_and_a_file_is_left_alone() {
        use std::os::fd::{AsFd, AsRawFd};
        let (_r, w) = std::io::pipe().unwrap();
        // SAFETY: fcntl queries on descriptors we own.
        let size = |fd: i32| unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
        assert_eq!(size(w.as_raw_fd()), 65536, "the kernel's default");
        let max: i32 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        widen_pipe(w.as_fd(), 1 << 20);
        assert_eq!(size(w.as_raw_fd()), max.min(1 << 20));
        let f = tempfile::tempfile().unwrap();
        widen_pipe(f.as_fd(), 1 << 20);
        assert_eq!(size(f.as_raw_fd()), -1, "not a pipe: untouched");
    }

    #[test]
    fn stat_parses_a_command_name_with_spaces_and_parentheses() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
        let s = parse_stat(42, line).unwrap();
        assert_eq!((s.state, s.ppid, s.pgrp, s.session), ('S', 1, 42, 42));
        assert_eq!(s.start_time, 777);
        assert!(parse_stat(1, "garbage").is_none());
    }

    #[test]
    fn our_own_process_is_visible_and_alive() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(!s.is_dead());
        assert_eq!(s.pid, me);
        assert!(all_stats().iter().any(|p| p.pid == me));
        assert!(stat(-1).is_none());
    }

    #[test]
    fn our_children_are_listed_until_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let listed = own_children().expect("this kernel offers /proc/self/task/*/children");
        assert!(listed.contains(&pid), "{pid} not in {listed:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!own_children().unwrap().contains(&pid));
    }

    #[test]
    fn random_bytes_are_not_all_equal() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
