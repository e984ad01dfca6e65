//! The three threads of one agent: the reader (raw log, emulator, query replies, the text log's
//! quiet-moment snapshots), the waiter (reaps the child, then reports its exit once the output is
//! complete) and the writer (input, so a large paste never blocks the caller).

use std::io::{Read, Write};
use std::sync::mpsc;

use super::super::record::lines;
use super::super::record::text::{LineKind, LogLines, TextLine, now_ms};
use super::super::screen::ScreenEvent;
use super::{
    AgentSignal, BATCH_ROOM, EOF_GRACE, ExitInfo, READ_CHUNK, Shared, WriterMsg, lock, wait_for,
};

pub(super) fn writer_loop(mut writer: Box<dyn Write + Send>, rx: mpsc::Receiver<WriterMsg>) {
    let mut failed = false;
    for msg in rx {
        match msg {
            WriterMsg::Bytes(bytes) => {
                // After the agent is gone writes fail with EIO; drop the input but keep the
                // writer (dropping it would type Ctrl-D into anything still on the tty).
                if let Err(e) = writer.write_all(&bytes).and_then(|()| writer.flush())
                    && !failed
                {
                    failed = true;
                    tracing::debug!(error = %e, "agent input dropped: the terminal is closed");
                }
            }
            WriterMsg::Close => break,
        }
    }
}

pub(super) fn reader_loop(shared: &Shared, mut reader: Box<dyn Read + Send>) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut text = LogLines::default();
    let mut quiet_at: Option<u64> = None;
    loop {
        if let Some(at) = quiet_at
            && !wait_readable(shared.master_fd, at)
        {
            // No output until the quiet deadline: the text log looks at the screen now.
            quiet_at = None;
            quiet(shared);
            continue;
        }
        let mut n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(pid = shared.pid, error = %e, "reading the agent's terminal failed; treating as end of output");
                break;
            }
        };
        // More already waiting: read it too (never blocking, so nothing read waits for more).
        while buf.len() - n >= BATCH_ROOM && readable_now(shared.master_fd) {
            match reader.read(&mut buf[n..]) {
                Ok(0) | Err(_) => break, // the next read() reports it
                Ok(k) => n += k,
            }
        }
        let chunk = &buf[..n];
        let now = now_ms();
        let (replies, events) = {
            let mut logs = lock(&shared.logs);
            logs.rec.output(now, chunk); // before parsing: the raw log must not depend on vt100
            let mut screen = lock(&shared.screen);
            lines::feed(&mut screen, chunk, now);
            let cb = screen.callbacks_mut();
            cb.take_log(&mut text);
            let (replies, events) = (cb.take_replies(), cb.take_events());
            quiet_at = cb.quiet_deadline();
            if let Some(tap) = &shared.tap {
                tap(chunk);
            }
            drop(screen);
            if !logs.finalized {
                logs.rec.log(&text);
            }
            (replies, events)
        };
        if !replies.is_empty() {
            let _ = shared.writer_tx.send(WriterMsg::Bytes(replies));
        }
        (shared.notify)(AgentSignal::Output);
        for ev in events {
            (shared.notify)(match ev {
                ScreenEvent::Bell => AgentSignal::Bell,
                ScreenEvent::Notification(text) => AgentSignal::Notification(text),
                ScreenEvent::Title(text) => AgentSignal::Title(text),
            });
        }
    }
    finalize_logs(shared);
    lock(&shared.life).eof = true;
    shared.changed.notify_all();
    let _ = shared.writer_tx.send(WriterMsg::Close);
}

/// Waits until the terminal has output or `deadline_ms` passes: true when there is something
/// to read (or the terminal closed), false at the deadline.
fn wait_readable(fd: Option<i32>, deadline_ms: u64) -> bool {
    let Some(fd) = fd else {
        return true;
    };
    loop {
        let left = deadline_ms.saturating_sub(now_ms());
        if left == 0 {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own; the fd stays open while `Shared` (held by this thread) lives.
        let r = unsafe { libc::poll(&mut pfd, 1, left.min(i32::MAX as u64) as i32) };
        match r {
            0 => return false,
            r if r > 0 => return true,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            // poll failing is no reason to stop reading: let read() say what is wrong.
            _ => return true,
        }
    }
}

/// True when the terminal has output waiting right now (no wait).
fn readable_now(fd: Option<i32>) -> bool {
    let Some(fd) = fd else {
        return false;
    };
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd we own; the fd stays open while `Shared` (held by this thread) lives.
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    // Only data: a hang-up is left to the blocking read() to report.
    r > 0 && pfd.revents & libc::POLLIN != 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) == 0
}

/// A quiet moment: the text log snapshots what the human sees.
fn quiet(shared: &Shared) {
    let mut logs = lock(&shared.logs);
    if logs.finalized {
        return;
    }
    let text = {
        let mut screen = lock(&shared.screen);
        lines::quiet(&mut screen);
        screen.callbacks_mut().take_lines()
    };
    logs.rec.lines(&text);
}

pub(super) fn waiter_loop(shared: &Shared, child: Box<dyn portable_pty::Child + Send + Sync>) {
    if let Some(cg) = &shared.cgroup {
        crate::os::reap::join_agent_cgroup(cg, shared.pid);
    }
    // waitpid directly: portable-pty's ExitStatus keeps only the signal's name, not its number.
    let mut status: libc::c_int = 0;
    let info = loop {
        // SAFETY: plain syscall on our own child with a valid out-pointer.
        let r = unsafe { libc::waitpid(shared.pid, &mut status, 0) };
        if r == shared.pid {
            lock(&shared.life).reaped = true;
            crate::os::reap::waited(shared.pid);
            break decode_status(status);
        }
        if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        tracing::error!(
            pid = shared.pid,
            "waitpid failed: {}",
            std::io::Error::last_os_error()
        );
        break ExitInfo {
            code: None,
            signal: None,
        };
    };
    drop(child);
    drop(wait_for(shared, EOF_GRACE, |l| l.eof));
    // Gone with its agent, unless something it started still lives there (then `stop` or the
    // next start's sweep removes it).
    if let Some(cg) = &shared.cgroup {
        crate::os::reap::remove_agent_cgroup(cg);
    }
    finalize_logs(shared);
    record_exit(shared, info);
    lock(&shared.life).exit = Some(info);
    shared.changed.notify_all();
    (shared.notify)(AgentSignal::Exited(info));
}

pub(super) fn decode_status(status: libc::c_int) -> ExitInfo {
    if libc::WIFEXITED(status) {
        ExitInfo {
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
        }
    } else if libc::WIFSIGNALED(status) {
        ExitInfo {
            code: None,
            signal: Some(libc::WTERMSIG(status)),
        }
    } else {
        ExitInfo {
            code: None,
            signal: None,
        }
    }
}

/// Appends the final screen to the text log, once.
fn finalize_logs(shared: &Shared) {
    let mut logs = lock(&shared.logs);
    if logs.finalized {
        return;
    }
    logs.finalized = true;
    let text = {
        let mut screen = lock(&shared.screen);
        lines::finish(&mut screen, now_ms());
        screen.callbacks_mut().take_lines()
    };
    logs.rec.lines(&text);
}

/// The exit in the text log (its last line: a reader knows the log is complete), then every
/// file to disk.
fn record_exit(shared: &Shared, info: ExitInfo) {
    let mut logs = lock(&shared.logs);
    let what = match (info.code, info.signal) {
        (Some(c), _) => format!("agent exited with code {c}"),
        (None, Some(s)) => format!("agent killed by signal {s}"),
        (None, None) => "agent ended (exit status unknown)".to_string(),
    };
    logs.rec
        .lines(&[TextLine::new(now_ms(), LineKind::Note, what)]);
    logs.rec.sync();
}
