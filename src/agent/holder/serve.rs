//! The holder process (`orch-tui __hold`): reads a `HoldSpec` on stdin, leaves the spawner's
//! session, binds `<id>.sock`, starts the agent, and says `ready <holder pid>` and
//! `agent <agent pid>` on stdout (or `error: ...`). It then serves any number of clients until
//! the agent has ended and they have heard so.
//!
//! The agent starts before anyone connects, so the spawner does not wait for a round trip
//! through two processes (docs/benchmarks.md, "Dispatch"). What it prints meanwhile is kept
//! (`Hub::early`, up to `KEEP_EARLY`) and the first client gets it right after a blank
//! snapshot: its stream holds every byte from the first, as when the agent started on its
//! hello. A spawner that reads only the `ready` line (an older supervisor) connects as before.
//!
//! A client's snapshot plus the stream after it is exactly the screen, no byte twice or
//! missing: the reader thread queues each chunk to the clients (under the `Hub` mutex) while it
//! still holds the agent's screen, and a new client takes its snapshot of that screen and joins
//! the queue while holding the screen too. The screen is the agent's own (`AgentProcess`, which
//! also feeds the text log); the holder keeps no second copy. Lock order: screen, then hub.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc};

use super::proto::{self, ExitRecord, Frame};
use super::{HoldSpec, exit_path, socket_path};
use crate::agent::pty::{AgentProcess, AgentSignal, SpawnSpec};
use crate::agent::record::text::now_ms;

/// How long a holder waits for its first client before it stops its agent and exits (its
/// spawner died before connecting: no supervisor will follow this attempt, and the next one
/// abandons it). The spawner connects right after `ready`.
pub const FIRST_CLIENT: Duration = Duration::from_secs(60);
/// How long a spare holder waits for its spec before it exits (a dispatch comes within
/// milliseconds in a busy run; an idle run should not keep a process for none).
pub const SPARE_WAIT: Duration = Duration::from_secs(5);
/// Output kept for the first client while none has joined; beyond it the first client joins
/// like a later one, with the screen (the raw log on disk still has every byte).
const KEEP_EARLY: usize = 8 << 20;
/// How long it stays after the agent ended for connected clients to read the end.
const LINGER: Duration = Duration::from_secs(5);

struct Hub {
    clients: Vec<(u64, mpsc::UnboundedSender<Frame>)>,
    next_client: u64,
    /// The agent's output before the first client joined: handed to that client whole. None
    /// once it joined (or the output outgrew `KEEP_EARLY`).
    early: Option<Vec<u8>>,
    exit: Option<ExitRecord>,
    bytes_out: u64,
    frozen: bool,
    /// Frozen since (ms), and the time frozen before that.
    frozen_since: Option<u64>,
    held_ms: u64,
}

struct Holder {
    spec: HoldSpec,
    hub: Mutex<Hub>,
    agent: OnceLock<AgentProcess>,
    started_ms: OnceLock<u64>,
    /// The agent ended: time to wind down.
    done: Notify,
    /// A client joined (the first one ends the wait for it).
    joined: Notify,
    /// A client left.
    left: Notify,
}

fn lock(m: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `orch-tui __hold`: exit 0 after the agent ended (its exit is in `<id>.exit`), 1 when it
/// could not be started or nobody came, 2 for a spec it cannot read.
/// `prepare_in`: a spare's `.orch/holders/`, where it makes its files while it waits
/// (`spare.rs`).
pub fn main(prepare_in: Option<&std::path::Path>) -> i32 {
    // Its threads mostly sleep: one arena keeps the holder's resident memory small.
    crate::os::one_malloc_arena();
    // Its folder goes when `prepared` drops: unused, on any return below.
    let prepared = prepare_in.and_then(|dir| super::spare::prepare(dir).ok());
    // A spare (`engine::holder_start`) that gets no spec soon is not worth its memory: it goes
    // without a word, and its spawner starts a holder anew when it needs one.
    if !stdin_within(SPARE_WAIT) {
        return 0;
    }
    let mut input = Vec::new();
    let read = std::io::stdin().read_to_end(&mut input);
    // A spare holder (`engine::holder_start`) whose spawner let it go without a spec.
    if read.is_ok() && input.is_empty() {
        return 0;
    }
    let spec: HoldSpec = match read
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice(&input).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            let e = format!("cannot read the hold spec on stdin: {e}");
            let _ = writeln!(std::io::stdout(), "error: {e}");
            err_out!("orch-tui __hold: {e}; this mode is started by the supervisor, not by hand");
            return 2;
        }
    };
    // Made for another `.orch/` (not by our supervisor): not used.
    let prepared = prepared.filter(|p| p.dir == spec.dir);
    match start(spec, prepared) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stdout(), "error: {e}");
            err_out!("orch-tui __hold: {e}");
            1
        }
    }
}

/// Whether stdin has something to read (or its end) within `limit`.
fn stdin_within(limit: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = limit.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one pollfd that lives across the call.
    let n = unsafe { libc::poll(&mut fd, 1, ms) };
    // An error (EINTR) is no timeout: the read decides.
    n != 0
}

fn start(spec: HoldSpec, mut prepared: Option<super::spare::Prepared>) -> Result<i32, String> {
    // Before any thread exists, so every thread inherits the blocked signals.
    let _ = crate::os::detach::new_session();
    let holder = Arc::new(Holder {
        hub: Mutex::new(Hub {
            clients: Vec::new(),
            next_client: 0,
            early: Some(Vec::new()),
            exit: None,
            bytes_out: 0,
            frozen: false,
            frozen_since: None,
            held_ms: 0,
        }),
        spec,
        agent: OnceLock::new(),
        started_ms: OnceLock::new(),
        done: Notify::new(),
        joined: Notify::new(),
        left: Notify::new(),
    });
    let on_stop = Arc::clone(&holder);
    crate::os::detach::take_signals(Box::new(move || match on_stop.agent.get() {
        Some(a) => a.stop(Duration::from_secs(2)),
        None => on_stop.done.notify_one(),
    }))
    .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    if let Err(e) = crate::os::reap::set_child_subreaper() {
        tracing::warn!(error = %e, "holder is not a child subreaper");
    }
    let dir = holder.spec.dir.clone();
    crate::os::files::private_dir(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Each file is the spare's, renamed, or made now (a cold holder, or a rename refused).
    let p = prepared.as_mut();
    // A cold holder's stderr is this log already (its spawner opened it); a spare's is its own.
    let log = super::log_path(&dir, holder.spec.attempt);
    if !p.as_ref().is_some_and(|p| p.log_to(&log))
        && let Err(e) = crate::os::detach::stderr_to(&log)
    {
        err_out!("orch-tui __hold: cannot write to {}: {e}", log.display());
    }
    let branches = serde_json::to_vec(&holder.spec.branches_before).unwrap_or_default();
    let kept = super::branches_path(&dir, holder.spec.attempt);
    if !p.as_ref().is_some_and(|p| p.branches_to(&kept, &branches)) {
        crate::os::files::write_private(&kept, &branches)
            .map_err(|e| format!("cannot write {}: {e}", kept.display()))?;
    }
    if let Some(f) = &holder.spec.prompt_file
        && !p.as_ref().is_some_and(|p| p.prompt_to(f))
    {
        f.write()?;
    }
    let sock = socket_path(&dir, holder.spec.attempt);
    let listener = match p.and_then(|p| p.socket_to(&sock)) {
        Some(l) => l,
        None => super::with_short_path(&sock, crate::os::detach::bind_private)
            .map_err(|e| format!("cannot listen on {}: {e}", sock.display()))?,
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    if let Some(p) = &prepared {
        p.logs_to(&holder.spec.log_dir);
    }
    // The spare's folder goes before the agent starts.
    drop(prepared);
    if let Err(e) = start_agent(&holder) {
        let _ = std::fs::remove_file(&sock);
        return Err(e);
    }
    let agent_pid = holder.agent.get().map_or(0, |a| a.pid());
    // Two lines: a spawner that knows only `ready <pid>` reads the first and connects.
    let _ = write!(
        std::io::stdout(),
        "ready {}\nagent {agent_pid}\n",
        std::process::id()
    );
    let _ = std::io::stdout().flush();
    let _ = crate::os::detach::quiet_stdio();
    let first_client = holder
        .spec
        .first_client_ms
        .map_or(FIRST_CLIENT, Duration::from_millis);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    let code = rt.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(listener)?;
        let accepting = Arc::clone(&holder);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_client(Arc::clone(&accepting), stream));
            }
        });
        let came = tokio::time::timeout(first_client, async {
            while lock(&holder.hub).next_client == 0 {
                holder.joined.notified().await;
            }
        })
        .await;
        if came.is_err() {
            // Nobody will follow this agent: end it (its tree, as a stop does) and go.
            err_out!(
                "orch-tui __hold: no client came within {} ms; stopping the agent",
                first_client.as_millis()
            );
            if let Some(a) = holder.agent.get() {
                a.stop(Duration::from_secs(2));
            }
            holder.done.notified().await;
            let _ = std::fs::remove_file(&sock);
            return Ok::<i32, std::io::Error>(1);
        }
        holder.done.notified().await;
        // Clients that are connected hear the end, then go.
        let _ = tokio::time::timeout(LINGER, async {
            while !lock(&holder.hub).clients.is_empty() {
                holder.left.notified().await;
            }
        })
        .await;
        let _ = std::fs::remove_file(&sock);
        Ok(if holder.agent.get().is_some() { 0 } else { 1 })
    });
    code.map_err(|e| e.to_string())
}

/// Starts the agent; its output is kept for the first client until one joins.
fn start_agent(h: &Arc<Holder>) -> Result<(), String> {
    let s = &h.spec;
    let tap_to = Arc::clone(h);
    let exit_to = Arc::clone(h);
    let process = AgentProcess::spawn_tapped(
        SpawnSpec {
            argv: s.argv.clone(),
            cwd: s.cwd.clone(),
            env: s.env.clone(),
            rows: s.rows,
            cols: s.cols,
            log_dir: s.log_dir.clone(),
            log_rotate_bytes: s.rotate_bytes,
        },
        Box::new(move |signal| {
            if let AgentSignal::Exited(info) = signal {
                ended(&exit_to, info.code, info.signal);
            }
        }),
        Some(Box::new(move |bytes: &[u8]| {
            let mut hub = lock(&tap_to.hub);
            hub.bytes_out += bytes.len() as u64;
            if let Some(early) = &mut hub.early {
                if early.len() + bytes.len() <= KEEP_EARLY {
                    early.extend_from_slice(bytes);
                } else {
                    hub.early = None;
                }
            }
            hub.clients
                .retain(|(_, tx)| tx.send(Frame::Output(bytes.to_vec())).is_ok());
        })),
    )
    .map_err(|e| e.to_string())?;
    let _ = h.started_ms.set(now_ms());
    let _ = h.agent.set(process);
    Ok(())
}

/// The agent ended: the record on disk first, then every client hears it.
fn ended(h: &Holder, code: Option<i32>, signal: Option<i32>) {
    let rec = ExitRecord {
        code,
        signal,
        ended_ms: now_ms(),
    };
    if let Err(e) = super::write_exit(&h.spec.dir, h.spec.attempt, &rec) {
        err_out!(
            "orch-tui __hold: cannot record the exit in {}: {e}",
            exit_path(&h.spec.dir, h.spec.attempt).display()
        );
    }
    let mut hub = lock(&h.hub);
    hub.exit = Some(rec);
    for (_, tx) in &hub.clients {
        let _ = tx.send(Frame::Exited(rec));
    }
    drop(hub);
    h.done.notify_one();
}

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<Frame>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (len, kind) = proto::header(head)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Frame::decode(kind, payload).map(Some)
}

async fn refuse(mut stream: UnixStream, text: String) {
    let _ = stream.write_all(&Frame::Refuse(text).encode()).await;
    let _ = stream.shutdown().await;
}

async fn serve_client(h: Arc<Holder>, mut stream: UnixStream) {
    match stream.peer_cred() {
        Ok(c) if super::same_user(c.uid()) => {}
        Ok(c) => {
            let text = format!(
                "refused: this holder serves only its own user, not uid {}",
                c.uid()
            );
            return refuse(stream, text).await;
        }
        Err(e) => return refuse(stream, format!("refused: cannot tell who is asking: {e}")).await,
    }
    let hello = match tokio::time::timeout(Duration::from_secs(10), read_frame(&mut stream)).await {
        Ok(Ok(Some(Frame::Hello(hello)))) => hello,
        _ => return refuse(stream, "expected a hello frame first".into()).await,
    };
    if hello.version != proto::VERSION {
        return refuse(
            stream,
            proto::version_refusal(proto::VERSION, hello.version),
        )
        .await;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let Some(id) = join(&h, &tx) else {
        return refuse(stream, "the agent is not running".into()).await;
    };
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            let last = matches!(f, Frame::Exited(_));
            if writer.write_all(&f.encode()).await.is_err() || last {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    while let Ok(Some(frame)) = read_frame(&mut reader).await {
        command(&h, frame, &tx);
    }
    lock(&h.hub).clients.retain(|(c, _)| *c != id);
    drop(tx);
    let _ = writing.await;
    h.left.notify_one();
}

/// Registers a welcomed client: its welcome and snapshot first, then every chunk of output.
/// The first client gets a blank snapshot and everything the agent printed before it came
/// (`Hub::early`); later ones, and the first when that outgrew its bound, the agent's screen as
/// it is. Both hold the screen while they join, so no chunk is missed or doubled (see the
/// module doc for why, and for the lock order). None: no agent (it always has one once served).
fn join(h: &Arc<Holder>, tx: &mpsc::UnboundedSender<Frame>) -> Option<u64> {
    let agent = h.agent.get()?;
    let screen = agent.screen();
    let screen = screen.lock().unwrap_or_else(|e| e.into_inner());
    let mut hub = lock(&h.hub);
    let (rows, cols) = screen.screen().size();
    let (snapshot, early) = match hub.early.take() {
        Some(early) => (Vec::new(), early),
        None => (screen.screen().state_formatted().into_bytes(), Vec::new()),
    };
    let id = register(h, &mut hub, tx, (rows.get(), cols.get()), snapshot, early);
    drop(hub);
    h.joined.notify_one();
    Some(id)
}

fn register(
    h: &Holder,
    hub: &mut Hub,
    tx: &mpsc::UnboundedSender<Frame>,
    (rows, cols): (u16, u16),
    snapshot: Vec<u8>,
    early: Vec<u8>,
) -> u64 {
    let _ = tx.send(Frame::Welcome(proto::Welcome {
        version: proto::VERSION,
        pid: h.agent.get().map(|a| a.pid()).unwrap_or(0),
        holder_pid: std::process::id(),
        rows,
        cols,
        started_ms: h.started_ms.get().copied().unwrap_or(0),
        frozen: hub.frozen,
        exit: hub.exit,
        branches_before: h.spec.branches_before.clone(),
    }));
    let _ = tx.send(Frame::Snapshot(snapshot));
    if !early.is_empty() {
        let _ = tx.send(Frame::Output(early));
    }
    if let Some(rec) = hub.exit {
        let _ = tx.send(Frame::Exited(rec));
    }
    hub.next_client += 1;
    let id = hub.next_client;
    hub.clients.push((id, tx.clone()));
    id
}

/// One frame from a client.
fn command(h: &Holder, frame: Frame, tx: &mpsc::UnboundedSender<Frame>) {
    let Some(agent) = h.agent.get() else { return };
    match frame {
        Frame::Input(bytes) => agent.write(bytes),
        // The resize is not made under the hub: the reader holds the screen when it takes the
        // hub, and a resize takes the screen. Every client's copy of the screen follows; one
        // that does not keep a copy ignores it.
        Frame::Resize { rows, cols } if agent.resize(rows, cols).is_ok() => {
            lock(&h.hub)
                .clients
                .retain(|(_, tx)| tx.send(Frame::Resize { rows, cols }).is_ok());
        }
        Frame::Resize { .. } => {}
        Frame::Stop { grace_ms } => agent.stop(Duration::from_millis(grace_ms)),
        Frame::Freeze(f) => {
            agent.freeze(f);
            let mut hub = lock(&h.hub);
            let now = now_ms();
            match (f, hub.frozen_since) {
                (true, None) => hub.frozen_since = Some(now),
                (false, Some(since)) => {
                    hub.held_ms += now.saturating_sub(since);
                    hub.frozen_since = None;
                }
                _ => {}
            }
            hub.frozen = f;
        }
        Frame::StatusRequest => {
            let hub = lock(&h.hub);
            let _ = tx.send(Frame::Status(proto::Status {
                pid: agent.pid(),
                holder_pid: std::process::id(),
                task: h.spec.task.clone(),
                attempt: h.spec.attempt,
                frozen: hub.frozen,
                clients: hub.clients.len(),
                bytes_out: hub.bytes_out,
                held_ms: hub.held_ms + hub.frozen_since.map_or(0, |s| now_ms().saturating_sub(s)),
                exit: hub.exit,
            }));
        }
        _ => {}
    }
}
