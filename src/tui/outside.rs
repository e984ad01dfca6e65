//! Leaving the TUI for a while: a shell in a task's worktree (`o`), `$EDITOR` on a worktree, a
//! diff or the new task's prompt (`E`, ctrl-e). The terminal is handed over whole — the input
//! thread parks first, so no keystroke meant for the shell is read by the TUI — and taken back
//! afterwards, whatever the program did or however it ended.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{UiEvent, terminal};

/// How long the input thread waits for input before it looks at the gate again, when it
/// cannot be woken (no wake-up socket, or the terminal unknown).
const INPUT_POLL: Duration = Duration::from_millis(50);
/// How long it waits with nothing happening when it can be woken: a key, a resize (SIGWINCH)
/// and a pause wake it at once, so this only bounds a wake-up that went missing. At 50 ms it
/// was 20 wake-ups a second, a third of an idle TUI's CPU.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// How long a pause waits for the input thread to park (one poll, with room to spare).
const PARK_WAIT: Duration = Duration::from_secs(1);
/// How long crossterm may look for events once the wait said there is input. Its poll(2)
/// source does not look at all (not even at keys it has parsed but not returned) for a zero
/// timeout, and counts whole milliseconds: 1 ms is the least that reads. Finding nothing more,
/// it spins out that millisecond — once per burst of input, never while idle.
const DRAIN: Duration = Duration::from_millis(1);

#[derive(Default)]
struct GateState {
    paused: bool,
    parked: bool,
}

/// Lets the UI thread stop the input thread from reading the terminal while another program
/// owns it.
#[derive(Default)]
pub struct InputGate {
    state: Mutex<GateState>,
    cv: Condvar,
    /// Wakes the input thread from its wait (`Waker`), once it has one.
    wake: Mutex<Option<UnixStream>>,
}

impl InputGate {
    /// Ask the input thread to stop reading, and wait (bounded) until it has.
    pub(super) fn pause(&self) {
        let Ok(mut g) = self.state.lock() else { return };
        g.paused = true;
        if let Ok(w) = self.wake.lock()
            && let Some(w) = w.as_ref()
        {
            let _ = (&*w).write(&[1]);
        }
        drop(self.cv.wait_timeout_while(g, PARK_WAIT, |g| !g.parked));
    }

    fn paused(&self) -> bool {
        self.state.lock().is_ok_and(|g| g.paused)
    }

    fn resume(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.paused = false;
            g.parked = false;
        }
        self.cv.notify_all();
    }

    /// The input thread's side: park here while paused.
    fn wait_if_paused(&self) {
        let Ok(mut g) = self.state.lock() else { return };
        if g.paused {
            g.parked = true;
            self.cv.notify_all();
            drop(self.cv.wait_while(g, |g| g.paused));
        }
    }
}

/// The thread that reads the terminal's input and sends it to the loop, parking at the gate.
///
/// It waits for input itself and calls crossterm only when there is some (or every
/// `INPUT_POLL`, for the resizes crossterm hears through a signal pipe of its own): a hung-up
/// terminal is seen here and ends the thread, where crossterm would poll it again and again for
/// as long as a run went on headless after its terminal closed. Both waits are level-triggered
/// (crossterm's `use-dev-tty` source), so a key that came with a resize is read with it.
pub fn spawn_input_thread(tx: Sender<UiEvent>, gate: Arc<InputGate>) {
    let _ = std::thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || {
            let tty = Tty::open();
            let waker = Waker::new(&gate);
            // crossterm starts its reader, and its own SIGWINCH handler, at its first poll: now,
            // not at the first key, or a resize before that key would never be seen.
            let _ = crossterm::event::poll(Duration::ZERO);
            'reading: loop {
                gate.wait_if_paused();
                // Woken by our SIGWINCH pipe: a resize crossterm may not report this round.
                let mut resized = false;
                let limit = match tty.fd() {
                    Some(fd) => {
                        let (wake, wait) = match &waker {
                            Some(w) => (Some(w.rx.as_fd()), IDLE_WAIT),
                            None => (None, INPUT_POLL),
                        };
                        let input = crate::os::wait_for_input(fd, wake, wait);
                        if let Some(w) = &waker {
                            w.drain();
                        }
                        match input {
                            crate::os::Input::HungUp => break 'reading,
                            // A pause came meanwhile: what is typed now is another program's.
                            _ if gate.paused() => continue 'reading,
                            // Nothing came: crossterm would only spin out its millisecond.
                            // (Without the waker a resize shows only in crossterm's own pipe.)
                            crate::os::Input::Quiet if waker.is_some() => continue 'reading,
                            crate::os::Input::Woken => {
                                resized = true;
                                DRAIN
                            }
                            _ => DRAIN,
                        }
                    }
                    None => INPUT_POLL,
                };
                loop {
                    match crossterm::event::poll(limit) {
                        Ok(true) => match crossterm::event::read() {
                            Ok(ev) => {
                                if matches!(ev, crossterm::event::Event::Resize(..)) {
                                    resized = false;
                                }
                                if tx.send(UiEvent::Term(ev)).is_err() {
                                    break 'reading;
                                }
                            }
                            Err(_) => break 'reading,
                        },
                        Ok(false) => break,
                        Err(_) => break 'reading,
                    }
                    if limit > DRAIN {
                        break;
                    }
                }
                // crossterm looks at its own SIGWINCH pipe only within its millisecond, which a
                // busy machine can spend before it polls; its pipe is then left unread, and no
                // wait of ours wakes for it again. The size is asked here instead (a second
                // resize event, when crossterm reports it later, redraws nothing new).
                if resized
                    && let Ok((cols, rows)) = crossterm::terminal::size()
                    && tx
                        .send(UiEvent::Term(crossterm::event::Event::Resize(cols, rows)))
                        .is_err()
                {
                    break 'reading;
                }
            }
            // The terminal hung up (a read fails with EIO) without a SIGHUP reaching this
            // process: say so, or the TUI would wait for keys that never come.
            if terminal::gone() {
                let _ = tx.send(UiEvent::TerminalLost);
            }
        });
}

/// What wakes the input thread: a byte on a socket, written by SIGWINCH (beside crossterm's
/// own handler, which turns it into a resize event) and by the gate's `pause`.
struct Waker {
    rx: UnixStream,
    on_resize: signal_hook::SigId,
}

impl Waker {
    fn new(gate: &InputGate) -> Option<Waker> {
        let (tx, rx) = UnixStream::pair().ok()?;
        rx.set_nonblocking(true).ok()?;
        tx.set_nonblocking(true).ok()?;
        let on_resize =
            signal_hook::low_level::pipe::register(libc::SIGWINCH, tx.try_clone().ok()?).ok()?;
        if let Ok(mut w) = gate.wake.lock() {
            *w = Some(tx);
        }
        Some(Waker { rx, on_resize })
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.on_resize);
    }
}

/// The terminal crossterm reads keys from: stdin when it is one, else `/dev/tty`.
enum Tty {
    Stdin(std::io::Stdin),
    Dev(std::fs::File),
    /// Neither could be had: crossterm waits on its own, as before.
    Unknown,
}

impl Tty {
    fn open() -> Tty {
        use std::io::IsTerminal;
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Tty::Stdin(stdin);
        }
        match std::fs::File::open("/dev/tty") {
            Ok(f) => Tty::Dev(f),
            Err(_) => Tty::Unknown,
        }
    }

    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match self {
            Tty::Stdin(s) => Some(s.as_fd()),
            Tty::Dev(f) => Some(f.as_fd()),
            Tty::Unknown => None,
        }
    }
}

/// Hand the terminal to `run`, then take it back. The TUI's modes are restored even when `run`
/// fails; an error re-entering them is returned (the loop then ends, and the guard restores).
pub fn suspended<T>(gate: &InputGate, run: impl FnOnce() -> T) -> Result<T, String> {
    gate.pause();
    terminal::restore();
    let out = run();
    let back = terminal::resume().map_err(|e| format!("cannot take the terminal back: {e}"));
    gate.resume();
    back.map(|()| out)
}

fn editor() -> String {
    let set = |name: &str| std::env::var(name).ok().filter(|e| !e.trim().is_empty());
    set("VISUAL")
        .or_else(|| set("EDITOR"))
        .unwrap_or_else(|| "vi".into())
}

/// `$EDITOR path` through `sh -c` ($EDITOR may carry arguments, like `code --wait`).
fn run_editor(path: &Path) -> Result<(), String> {
    let editor = editor();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("orch-tui-editor")
        .arg(path)
        .status()
        .map_err(|e| format!("cannot start the editor `{editor}`: {e}; set $EDITOR"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the editor `{editor}` exited with {status}"))
    }
}

/// `text` in $EDITOR, from a private file under `.orch/` (removed afterwards); the text as the
/// editor left it. An editor that fails (vim's `:cq`) changes nothing.
pub fn edit_text(orch: &Path, text: &str) -> Result<String, String> {
    let file = orch.join(format!("tui-prompt-{}.md", std::process::id()));
    crate::os::files::write_private(&file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let ran = run_editor(&file);
    let back = std::fs::read_to_string(&file);
    let _ = std::fs::remove_file(&file);
    ran.map_err(|e| format!("{e}: the prompt is as it was"))?;
    back.map_err(|e| format!("cannot read back {}: {e}", file.display()))
}

/// A task's diff in $EDITOR, from a file under `.orch/` (kept: the editor may still be open in
/// another window when it returns, as `code` does).
pub fn edit_diff(orch: &Path, task: &str, lines: &[String]) -> Result<(), String> {
    let file: PathBuf = orch.join(format!("diff-{task}.patch"));
    let mut text = lines.join("\n");
    text.push('\n');
    crate::os::files::write_private(&file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    run_editor(&file)
}

/// $EDITOR on a worktree folder.
pub fn edit_dir(dir: &Path) -> Result<(), String> {
    run_editor(dir)
}

/// $SHELL in a task's worktree, with a line saying where and how to come back.
pub fn shell(task: &str, dir: &Path) -> Result<(), String> {
    let sh = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "orch-tui: {sh} in {} (task `{task}`); exit to come back to the TUI",
        dir.display()
    );
    let _ = out.flush();
    Command::new(&sh)
        .current_dir(dir)
        .env("ORCH_SHELL_TASK", task)
        .status()
        .map(|_| ())
        .map_err(|e| format!("cannot start {sh}: {e}; set $SHELL"))
}
