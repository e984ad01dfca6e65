//! `orch-tui attach TASK`: the running agent's live terminal in yours, through its holder
//! (`agent::holder`), like `tmux attach`: the screen as it is first, then its output; your keys
//! and your terminal's size go to the agent; Ctrl-] detaches (the agent runs on). The terminal
//! is restored on every way out (a guard's `Drop`, which also runs when a panic unwinds).

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::agent::holder::{self, client, proto::Frame};
use crate::core::domain::{AttemptState, Role};

/// Ctrl-], as telnet: a byte no agent needs.
const DETACH_KEY: u8 = 0x1d;

pub fn attach(ctx: &Context, task: &str) -> CliResult {
    let ledger = ctx.open_ledger()?;
    if ledger.task(task)?.is_none() {
        return Err(CliError::bad_input(format!(
            "no task `{task}` in the ledger: `orch-tui status` lists the tasks"
        )));
    }
    let running = ledger
        .attempts(task)?
        .into_iter()
        .filter(|a| a.role == Role::Agent && a.state == AttemptState::Running)
        .max_by_key(|a| a.n.0);
    let Some(a) = running else {
        return Err(CliError::refused(format!(
            "task `{task}` has no running agent to attach to (`orch-tui logs {task}` shows what its last one did)"
        )));
    };
    drop(ledger);
    let sock = holder::socket_path(&holder::holders_dir(&ctx.paths.orch), a.id.0);
    let conn = client::connect(&sock, "attach").map_err(|e| {
        CliError::refused(format!(
            "attempt {} of `{task}` has no holder to attach to ({e}); it runs in-process \
             (ORCH_HOLDERS=0) or ended",
            a.n
        ))
    })?;
    err_out!(
        "orch-tui: attached to {task} attempt {} (pid {}); Ctrl-] detaches, the agent runs on",
        a.n,
        conn.welcome.pid
    );
    let ended = session(conn)?;
    err_out!(
        "orch-tui: {}",
        if ended {
            format!("{task}'s agent ended")
        } else {
            format!("detached from {task}; its agent runs on")
        }
    );
    Ok(EXIT_OK)
}

/// Holders whose attempt is not live (an abandoned supervisor's, or a crash between a holder's
/// start and its attempt's record), and exit records of closed attempts: `(live holders,
/// leftover files)` by attempt id. Nothing is asked of the ledger when `.orch/holders/` is empty.
pub fn leftovers(ctx: &Context) -> Result<(Vec<i64>, Vec<i64>), CliError> {
    let dir = holder::holders_dir(&ctx.paths.orch);
    let ids = holder::listed(&dir);
    if ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let ledger = ctx.open_ledger()?;
    let live: std::collections::BTreeSet<i64> = ledger
        .live_attempts()?
        .into_iter()
        .map(|a| a.id.0)
        .collect();
    let (mut running, mut files) = (Vec::new(), Vec::new());
    for id in ids.into_iter().filter(|id| !live.contains(id)) {
        if holder::socket_path(&dir, id).exists()
            && client::status(&holder::socket_path(&dir, id)).is_ok()
        {
            running.push(id);
        } else {
            files.push(id);
        }
    }
    Ok((running, files))
}

/// `gc`: stop holders with no live attempt (their agents' whole trees) and remove their files.
pub fn gc_holders(ctx: &Context, dry_run: bool) -> Result<(), CliError> {
    let dir = holder::holders_dir(&ctx.paths.orch);
    let (running, files) = leftovers(ctx)?;
    for id in &running {
        if dry_run {
            out!("would stop the holder of attempt {id} (no live attempt)");
            continue;
        }
        let sock = holder::socket_path(&dir, *id);
        if let Ok(c) = client::connect(&sock, "gc") {
            let _ = c.sender().send(&Frame::Stop { grace_ms: 2000 });
        }
        out!("stopped the holder of attempt {id} (no live attempt)");
    }
    if !dry_run {
        for id in running.iter().chain(&files) {
            holder::remove_files(&dir, *id);
        }
    }
    Ok(())
}

/// Raw mode and the alternate screen while it lives; the terminal as it was after.
struct RawTerminal;

impl RawTerminal {
    fn enter() -> Result<RawTerminal, CliError> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| CliError::bad_input(format!("attach needs a terminal: {e}")))?;
        let guard = RawTerminal;
        let _ = crate::os::out::write_bytes(b"\x1b[?1049h\x1b[H\x1b[2J");
        Ok(guard)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // Modes an agent may have set (mouse, bracketed paste, hidden cursor), then the screen.
        let _ = crate::os::out::write_bytes(
            b"\x1b[?1000l\x1b[?1002l\x1b[?1006l\x1b[?2004l\x1b[?25h\x1b[0m\x1b[?1049l",
        );
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Until Ctrl-] (false) or the agent's end (true).
fn session(mut conn: client::Conn) -> Result<bool, CliError> {
    let sender = conn.sender();
    let before = (conn.welcome.rows, conn.welcome.cols);
    let _raw = RawTerminal::enter()?;
    let _ = crate::os::out::write_bytes(&conn.snapshot);
    let ended = Arc::new(AtomicBool::new(false));
    let gone = Arc::new(AtomicBool::new(false));
    let (ended_r, gone_r) = (ended.clone(), gone.clone());
    std::thread::Builder::new()
        .name("attach-output".into())
        .spawn(move || {
            loop {
                match conn.next_frame() {
                    Ok(Some(Frame::Output(b))) => {
                        let _ = crate::os::out::write_bytes(&b);
                    }
                    Ok(Some(Frame::Exited(_))) => {
                        ended_r.store(true, Ordering::SeqCst);
                        break;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            gone_r.store(true, Ordering::SeqCst);
        })
        .map_err(|e| CliError::failed(format!("cannot start a thread: {e}")))?;
    let mut size = (0, 0);
    let mut buf = [0u8; 4096];
    while !gone.load(Ordering::SeqCst) {
        // The window may have changed: the agent draws for ours while we are attached.
        if let Ok((cols, rows)) = crossterm::terminal::size()
            && (rows, cols) != size
        {
            size = (rows, cols);
            let _ = sender.send(&Frame::Resize { rows, cols });
        }
        if !stdin_ready(Duration::from_millis(100)) {
            continue;
        }
        let n = match std::io::stdin().read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let keys = &buf[..n];
        let (typed, detach) = match keys.iter().position(|b| *b == DETACH_KEY) {
            Some(i) => (&keys[..i], true),
            None => (keys, false),
        };
        if !typed.is_empty() && sender.send(&Frame::Input(typed.to_vec())).is_err() {
            break;
        }
        if detach {
            break;
        }
    }
    // The agent goes back to the size the supervisor gave it.
    let _ = sender.send(&Frame::Resize {
        rows: before.0,
        cols: before.1,
    });
    let _ = std::io::stdout().flush();
    Ok(ended.load(Ordering::SeqCst))
}

/// Waits up to `wait` for a key.
fn stdin_ready(wait: Duration) -> bool {
    let mut fds = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd for a bounded time.
    unsafe { libc::poll(&mut fds, 1, wait.as_millis() as i32) > 0 }
}
