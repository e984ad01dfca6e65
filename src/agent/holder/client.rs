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

/// A connection whose hello is sent and whose welcome is not read yet: frames sent through its
/// `sender` reach the holder after the hello, in order. The kernel queues the connection until
/// the holder accepts it, so opening one does not wait for the holder to run.
pub struct Opening {
    reader: BufReader<UnixStream>,
    sender: Sender,
    sock: std::path::PathBuf,
}

impl Opening {
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Reads the holder's welcome and snapshot (with a deadline): the connected client.
    pub fn welcome(self) -> Result<Conn, String> {
        let Opening {
            mut reader,
            sender,
            sock,
        } = self;
        let sock = sock.as_path();
        let broken = |e: io::Error| format!("holder at {}: {e}", sock.display());
        // Only the handshake has a deadline; the stream after it may be quiet for hours.
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(broken)?;
        let welcome = match proto::read_frame(&mut reader).map_err(broken)? {
            Some(Frame::Welcome(w)) => w,
            Some(Frame::Refuse(text)) => {
                return Err(format!("holder at {}: {text}", sock.display()));
            }
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
            sender,
        })
    }
}

/// Connects to the holder at `sock` and says hello as `client`, without waiting for the answer
/// (`Opening::welcome` reads it). The error says what went wrong in words (no holder there).
pub fn open(sock: &Path, client: &str) -> Result<Opening, String> {
    let stream = super::with_short_path(sock, |p| UnixStream::connect(p))
        .map_err(|e| format!("cannot reach the holder at {}: {e}", sock.display()))?;
    let broken = |e: io::Error| format!("holder at {}: {e}", sock.display());
    let mut writer = stream.try_clone().map_err(broken)?;
    proto::write_frame(
        &mut writer,
        &Frame::Hello(Hello {
            version: proto::VERSION,
            client: format!("orch-tui {} {client}", env!("CARGO_PKG_VERSION")),
        }),
    )
    .map_err(broken)?;
    Ok(Opening {
        reader: BufReader::new(stream),
        sender: Sender(Arc::new(Mutex::new(writer))),
        sock: sock.to_path_buf(),
    })
}

/// Connects to the holder at `sock` and says hello as `client`. The error says what went wrong
/// in words (no holder there, refused and why, another protocol version).
pub fn connect(sock: &Path, client: &str) -> Result<Conn, String> {
    open(sock, client)?.welcome()
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

/// What a holder said when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub holder_pid: u32,
    /// The agent's pid, from a holder that starts its agent before anyone connects; None from
    /// one that starts it on the first hello (an older binary): connect to learn it.
    pub agent_pid: Option<u32>,
}

/// Reads the spawner's handshake from a holder's stdout: `ready <pid>`, then `agent <pid>`
/// (absent from an older holder), or `error: ...`.
pub fn read_ready(out: impl io::Read) -> Result<Ready, String> {
    read_ready_or_silence(out)?.ok_or_else(|| {
        "the holder exited before it was ready (see its log in .orch/holders/)".to_string()
    })
}

/// `read_ready`, with None when the holder closed its stdout without a word (a spare that
/// gave up waiting for its spec: `engine::holder_start`).
pub fn read_ready_or_silence(out: impl io::Read) -> Result<Option<Ready>, String> {
    let mut out = BufReader::new(out);
    let mut line = String::new();
    out.read_line(&mut line)
        .map_err(|e| format!("cannot read from the holder: {e}"))?;
    let line = line.trim();
    let holder_pid = if let Some(pid) = line.strip_prefix("ready ") {
        pid.parse()
            .map_err(|_| format!("holder said `{line}`, not `ready <pid>`"))?
    } else if let Some(e) = line.strip_prefix("error: ") {
        return Err(e.to_string());
    } else if line.is_empty() {
        return Ok(None);
    } else {
        return Err(format!("holder said `{line}`"));
    };
    // An older holder closes its stdout after `ready`: no second line.
    let mut second = String::new();
    let _ = out.read_line(&mut second);
    let agent_pid = second
        .trim()
        .strip_prefix("agent ")
        .and_then(|p| p.parse().ok())
        .filter(|&p: &u32| p > 0);
    Ok(Some(Ready {
        holder_pid,
        agent_pid,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_lines_of_a_new_and_an_old_holder_and_an_error() {
        let new = read_ready(&b"ready 10\nagent 11\n"[..]).unwrap();
        assert_eq!((new.holder_pid, new.agent_pid), (10, Some(11)));
        let old = read_ready(&b"ready 10\n"[..]).unwrap();
        assert_eq!((old.holder_pid, old.agent_pid), (10, None));
        let err = read_ready(&b"error: cannot start `x`: no such file\n"[..]).unwrap_err();
        assert!(err.contains("cannot start `x`"), "{err}");
        assert!(read_ready(&b""[..]).unwrap_err().contains("exited before"));
        assert!(
            read_ready(&b"ready me\n"[..])
                .unwrap_err()
                .contains("ready <pid>")
        );
    }
}
