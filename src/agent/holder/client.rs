//! The client side of the holder protocol, with plain blocking sockets (the supervisor and
//! `attach` are threads, not an async runtime): connect, hello, the welcome and the snapshot,
//! then frames both ways.

use std::io::{self, BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::proto::{self, Frame, Hello, Welcome};

/// Sends frames to a holder from any thread.
#[derive(Clone)]
pub struct Sender(Arc<Mutex<UnixStream>>);

impl Sender {
    pub fn send(&self, f: &Frame) -> io::Result<()> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        proto::write_frame(&mut *s, f)
    }
}

/// A connected, welcomed client.
pub struct Conn {
    pub welcome: Welcome,
    /// Escape sequences that draw the agent's screen as it was when we joined.
    pub snapshot: Vec<u8>,
    reader: BufReader<UnixStream>,
    sender: Sender,
}

impl Conn {
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The next frame from the holder; `Ok(None)` when it closed the connection.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        proto::read_frame(&mut self.reader)
    }
}

/// Connects to the holder at `sock` and says hello as `client`. The error says what went wrong
/// in words (no holder there, refused and why, another protocol version).
pub fn connect(sock: &Path, client: &str) -> Result<Conn, String> {
    let stream = super::with_short_path(sock, |p| UnixStream::connect(p))
        .map_err(|e| format!("cannot reach the holder at {}: {e}", sock.display()))?;
    let broken = |e: io::Error| format!("holder at {}: {e}", sock.display());
    // Only the handshake has a deadline; the stream after it may be quiet for hours.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(broken)?;
    let mut writer = stream.try_clone().map_err(broken)?;
    proto::write_frame(
        &mut writer,
        &Frame::Hello(Hello {
            version: proto::VERSION,
            client: format!("orch-tui {} {client}", env!("CARGO_PKG_VERSION")),
        }),
    )
    .map_err(broken)?;
    let mut reader = BufReader::new(stream);
    let welcome = match proto::read_frame(&mut reader).map_err(broken)? {
        Some(Frame::Welcome(w)) => w,
        Some(Frame::Refuse(text)) => return Err(format!("holder at {}: {text}", sock.display())),
        Some(other) => {
            return Err(format!(
                "holder at {}: unexpected {other:?}",
                sock.display()
            ));
        }
        None => {
            return Err(format!(
                "holder at {} closed the connection",
                sock.display()
            ));
        }
    };
    if welcome.version != proto::VERSION {
        return Err(proto::version_refusal(proto::VERSION, welcome.version));
    }
    let snapshot = match proto::read_frame(&mut reader).map_err(broken)? {
        Some(Frame::Snapshot(s)) => s,
        other => {
            return Err(format!(
                "holder at {}: expected the screen, got {other:?}",
                sock.display()
            ));
        }
    };
    reader.get_ref().set_read_timeout(None).map_err(broken)?;
    Ok(Conn {
        welcome,
        snapshot,
        reader,
        sender: Sender(Arc::new(Mutex::new(writer))),
    })
}

/// One status question and its answer.
pub fn status(sock: &Path) -> Result<proto::Status, String> {
    let mut c = connect(sock, "status")?;
    c.sender()
        .send(&Frame::StatusRequest)
        .map_err(|e| e.to_string())?;
    loop {
        match c.next_frame().map_err(|e| e.to_string())? {
            Some(Frame::Status(s)) => return Ok(s),
            Some(_) => continue,
            None => return Err("the holder closed the connection".into()),
        }
    }
}

/// Reads the spawner's handshake line from a holder's stdout: `ready <pid>` or `error: ...`.
pub fn read_ready(out: impl io::Read) -> Result<u32, String> {
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| format!("cannot read from the holder: {e}"))?;
    let line = line.trim();
    if let Some(pid) = line.strip_prefix("ready ") {
        return pid
            .parse()
            .map_err(|_| format!("holder said `{line}`, not `ready <pid>`"));
    }
    if let Some(e) = line.strip_prefix("error: ") {
        return Err(e.to_string());
    }
    Err(if line.is_empty() {
        "the holder exited before it was ready (see its log in .orch/holders/)".into()
    } else {
        format!("holder said `{line}`")
    })
}
