//! Starting `orch-tui __hold`, and one holder started ahead (a spare) so a dispatch does not
//! wait for a process to exec and initialise: that was 18-31 ms of the 45-67 ms spawn at load
//! 5-8 (docs/benchmarks.md, "Dispatch").
//!
//! A spare is a holder that has not read its spec yet: it carries no `ORCH_` variable and no
//! attempt's token, makes its files under a name of its own (`holder::spare`: the spec only
//! renames them), and stays in our session until the spec comes (it leaves it then, as every
//! holder does). One at a time: in a steady run dispatches come one after a
//! merge; a burst takes the spare and starts the rest cold. An unused spare exits 0 without a
//! word when its pipe closes (we dropped it, or died) or after `SPARE_WAIT` with no spec (an
//! idle run keeps no process for nothing).

use std::io::Write;
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent::holder::client::{self, Ready};
use crate::agent::holder::serve::SPARE_WAIT;
use crate::agent::holder::{self as holder, HoldSpec};

/// A started holder waiting for its spec.
pub struct Waiting {
    pid: u32,
    started: Instant,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

/// Starts `orch-tui __hold` with its stderr on `stderr` (a spare: making its files in
/// `prepare_in`, `.orch/holders/`). A waiter thread reaps it.
fn start(orch_bin: &Path, stderr: Stdio, prepare_in: Option<&Path>) -> Result<Waiting, String> {
    let mut cmd = Command::new(orch_bin);
    cmd.arg("__hold");
    if let Some(dir) = prepare_in {
        cmd.arg(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // The holder is no process of this epoch (its agent carries the attempt's variables).
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ORCH_") {
            cmd.env_remove(&key);
        }
    }
    // Registered before the lock drops, so the orphan reaper leaves its exit to our waiter.
    let mut child = {
        let guard = crate::os::reap::before_spawn_in_new_session();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{} __hold`: {e}", orch_bin.display()))?;
        guard.own(child.id() as i32);
        child
    };
    let pid = child.id() as i32;
    let pipes = child.stdin.take().zip(child.stdout.take());
    let _ = std::thread::Builder::new()
        .name("holder-waiter".into())
        .spawn(move || {
            let _ = child.wait();
            crate::os::reap::waited(pid);
        });
    let (stdin, stdout) = pipes.ok_or("no pipes to the holder")?;
    Ok(Waiting {
        pid: pid as u32,
        started: Instant::now(),
        stdin,
        stdout,
    })
}

/// Why handing a spec over failed.
enum HandOver {
    /// The holder was gone before it could read the spec: nothing started.
    Gone(String),
    /// It read the spec (or may have) and then failed: its own words.
    Failed(String),
}

/// A spare older than this is let go unused: it gives up waiting at `SPARE_WAIT`, and one
/// that gave up while its spec was on the way would only cost a second try.
const SPARE_FRESH: Duration = SPARE_WAIT.saturating_sub(Duration::from_secs(1));

/// Gives `w` its spec and waits for `ready` (the holder's pid and the agent's).
fn hand_over(w: Waiting, spec: &HoldSpec) -> Result<Ready, HandOver> {
    let Waiting {
        mut stdin, stdout, ..
    } = w;
    let bytes = serde_json::to_vec(spec).map_err(|e| HandOver::Failed(e.to_string()))?;
    stdin
        .write_all(&bytes)
        .map_err(|e| HandOver::Gone(format!("cannot hand the holder its spec: {e}")))?;
    // End of file ends the spec.
    drop(stdin);
    match client::read_ready_or_silence(stdout) {
        Ok(Some(ready)) => Ok(ready),
        // It gave up waiting as the spec came: it never read it.
        Ok(None) => Err(HandOver::Gone(
            "the holder exited before it was ready".into(),
        )),
        Err(e) => Err(HandOver::Failed(e)),
    }
}

/// One spare holder, refilled off the dispatch path after each take.
#[derive(Default, Clone)]
pub struct Spares {
    slot: Arc<Mutex<Option<Waiting>>>,
    filling: Arc<AtomicBool>,
}

impl Spares {
    fn take(&self) -> Option<Waiting> {
        let spare = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        spare.filter(|w| w.started.elapsed() < SPARE_FRESH)
    }

    /// The spare's pid, if one is waiting.
    pub fn spare_pid(&self) -> Option<u32> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().map(|w| w.pid)
    }

    /// Starts a spare on a thread of its own, unless one is there or on its way. It makes its
    /// files in `dir` (`.orch/holders/`) while it waits.
    fn refill(&self, orch_bin: &Path, dir: &Path) {
        let full = self.slot.lock().is_ok_and(|s| s.is_some());
        if full || self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let orch_bin = orch_bin.to_path_buf();
        let dir = dir.to_path_buf();
        let started = std::thread::Builder::new()
            .name("holder-spare".into())
            .spawn(move || {
                // Its stderr goes to the log it makes itself.
                match start(&orch_bin, Stdio::null(), Some(&dir)) {
                    Ok(w) => *me.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(w),
                    Err(e) => tracing::warn!(error = %e, "no spare holder"),
                }
                me.filling.store(false, Ordering::Release);
            });
        if started.is_err() {
            self.filling.store(false, Ordering::Release);
        }
    }

    /// Starts a holder for `spec` (the spare if there is one, else a new process) and waits
    /// for its `ready`; then readies the next spare. Also says whether the spare took it.
    pub fn start(&self, orch_bin: &Path, spec: &HoldSpec) -> Result<(Ready, bool), String> {
        let out = match self.take().map(|w| hand_over(w, spec)) {
            Some(Ok(ready)) => Ok((ready, true)),
            Some(Err(HandOver::Failed(e))) => Err(e),
            Some(Err(HandOver::Gone(e))) => {
                tracing::info!(error = %e, "the spare holder was gone; starting one");
                start_holder(orch_bin, spec).map(|r| (r, false))
            }
            None => start_holder(orch_bin, spec).map(|r| (r, false)),
        };
        self.refill(orch_bin, &spec.dir);
        out
    }
}

/// Starts `orch-tui __hold` for `spec`, its stderr in the attempt's holder log, and waits for
/// its `ready` (the holder's pid and the agent's: it starts before anyone connects).
pub fn start_holder(orch_bin: &Path, spec: &HoldSpec) -> Result<Ready, String> {
    crate::os::files::private_dir(&spec.dir)
        .map_err(|e| format!("cannot create {}: {e}", spec.dir.display()))?;
    let log = crate::os::files::append_private(&holder::log_path(&spec.dir, spec.attempt))
        .map_err(|e| format!("cannot open the holder's log: {e}"))?;
    let w = start(orch_bin, Stdio::from(log), None)?;
    hand_over(w, spec).map_err(|e| match e {
        HandOver::Gone(e) => format!("{e} (see its log in .orch/holders/)"),
        HandOver::Failed(e) => e,
    })
}
