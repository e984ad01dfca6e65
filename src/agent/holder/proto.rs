//! The holder's wire protocol: a byte stream of length-prefixed frames, nothing else (no file
//! descriptors, no datagrams), so the same bytes could travel over `ssh -W` or any pipe.
//!
//! A frame is `len: u32 big-endian` (the kind byte plus the payload), `kind: u8`, `payload`.
//! Bulk bytes (output, input, the screen snapshot) travel raw; the few structured frames carry
//! JSON, so a field can be added without a new version.
//!
//! The conversation: the client sends `Hello{version}` first; the holder answers `Refuse(text)`
//! and closes (another protocol, another user, the agent could not start), or `Welcome`,
//! `Snapshot` (the screen as escape sequences that redraw it) and from then on every chunk of
//! output as `Output`, and `Exited` once when the agent is gone. The client sends `Input`,
//! `Resize`, `Stop`, `Freeze` and `StatusRequest` (answered by `Status`) at any time; a
//! `Resize` any client made comes back to every client, in order with the output.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Bumped when a frame changes meaning; a peer of another version is refused by name.
pub const VERSION: u32 = 1;
/// A frame longer than this is a broken or hostile peer, not output.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Hello = 1,
    Welcome = 2,
    Refuse = 3,
    Snapshot = 4,
    Output = 5,
    Exited = 6,
    Input = 7,
    Resize = 8,
    Stop = 9,
    Freeze = 10,
    StatusRequest = 11,
    Status = 12,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        use Kind::*;
        Some(match b {
            1 => Hello,
            2 => Welcome,
            3 => Refuse,
            4 => Snapshot,
            5 => Output,
            6 => Exited,
            7 => Input,
            8 => Resize,
            9 => Stop,
            10 => Freeze,
            11 => StatusRequest,
            12 => Status,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// Who asks (`orch-tui 0.1.0 supervisor`, `... attach`), for the holder's log.
    pub client: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: u32,
    /// The agent's pid (its process group and session).
    pub pid: u32,
    pub holder_pid: u32,
    pub rows: u16,
    pub cols: u16,
    /// When the agent started (ms since the epoch).
    pub started_ms: u64,
    pub frozen: bool,
    /// Set when the agent has already ended; `Exited` follows the snapshot.
    pub exit: Option<ExitRecord>,
    /// What the spawner handed the holder to keep for an adopting supervisor.
    #[serde(default)]
    pub branches_before: Vec<String>,
}

/// How the agent ended, as the holder records it (also the durable exit file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub ended_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub holder_pid: u32,
    pub task: String,
    pub attempt: i64,
    pub frozen: bool,
    pub clients: usize,
    /// Output bytes since the agent started.
    pub bytes_out: u64,
    /// Time the agent was frozen so far (a paused task), up to now.
    #[serde(default)]
    pub held_ms: u64,
    pub exit: Option<ExitRecord>,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Welcome(Welcome),
    Refuse(String),
    Snapshot(Vec<u8>),
    Output(Vec<u8>),
    Exited(ExitRecord),
    Input(Vec<u8>),
    Resize { rows: u16, cols: u16 },
    Stop { grace_ms: u64 },
    Freeze(bool),
    StatusRequest,
    Status(Status),
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of numbers and strings always serialize.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Frame {
    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (Kind, std::borrow::Cow<'_, [u8]>) = match self {
            Frame::Hello(h) => (Kind::Hello, json(h).into()),
            Frame::Welcome(w) => (Kind::Welcome, json(w).into()),
            Frame::Refuse(t) => (Kind::Refuse, t.as_bytes().into()),
            Frame::Snapshot(b) => (Kind::Snapshot, b.as_slice().into()),
            Frame::Output(b) => (Kind::Output, b.as_slice().into()),
            Frame::Exited(e) => (Kind::Exited, json(e).into()),
            Frame::Input(b) => (Kind::Input, b.as_slice().into()),
            Frame::Resize { rows, cols } => {
                let mut p = rows.to_be_bytes().to_vec();
                p.extend_from_slice(&cols.to_be_bytes());
                (Kind::Resize, p.into())
            }
            Frame::Stop { grace_ms } => (Kind::Stop, grace_ms.to_be_bytes().to_vec().into()),
            Frame::Freeze(f) => (Kind::Freeze, vec![u8::from(*f)].into()),
            Frame::StatusRequest => (Kind::StatusRequest, Vec::new().into()),
            Frame::Status(s) => (Kind::Status, json(s).into()),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.extend_from_slice(&((payload.len() + 1) as u32).to_be_bytes());
        out.push(kind as u8);
        out.extend_from_slice(&payload);
        out
    }

    /// A frame from its kind byte and payload (the length prefix already taken off).
    pub fn decode(kind: u8, payload: Vec<u8>) -> io::Result<Frame> {
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("holder protocol: {what}"),
            )
        };
        let Some(kind) = Kind::from_u8(kind) else {
            return Err(bad(&format!("unknown frame kind {kind}")));
        };
        Ok(match kind {
            Kind::Hello => Frame::Hello(from_json(&payload, bad)?),
            Kind::Welcome => Frame::Welcome(from_json(&payload, bad)?),
            Kind::Refuse => Frame::Refuse(String::from_utf8_lossy(&payload).into_owned()),
            Kind::Snapshot => Frame::Snapshot(payload),
            Kind::Output => Frame::Output(payload),
            Kind::Exited => Frame::Exited(from_json(&payload, bad)?),
            Kind::Input => Frame::Input(payload),
            Kind::Resize => {
                let [r0, r1, c0, c1] = payload[..] else {
                    return Err(bad("a resize frame is 4 bytes"));
                };
                Frame::Resize {
                    rows: u16::from_be_bytes([r0, r1]),
                    cols: u16::from_be_bytes([c0, c1]),
                }
            }
            Kind::Stop => {
                let b: [u8; 8] = payload[..]
                    .try_into()
                    .map_err(|_| bad("a stop frame is 8 bytes"))?;
                Frame::Stop {
                    grace_ms: u64::from_be_bytes(b),
                }
            }
            Kind::Freeze => Frame::Freeze(payload.first().copied().unwrap_or(0) != 0),
            Kind::StatusRequest => Frame::StatusRequest,
            Kind::Status => Frame::Status(from_json(&payload, bad)?),
        })
    }
}

fn from_json<T: serde::de::DeserializeOwned>(
    p: &[u8],
    bad: impl Fn(&str) -> io::Error,
) -> io::Result<T> {
    serde_json::from_slice(p).map_err(|e| bad(&e.to_string()))
}

/// Splits a frame header into (payload length, kind) or says why it is not one.
pub fn header(h: [u8; 5]) -> io::Result<(usize, u8)> {
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("holder protocol: frame of {len} bytes (at most {MAX_FRAME})"),
        ));
    }
    Ok((len - 1, h[4]))
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut h = [0u8; 5];
    match r.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (len, kind) = header(h)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Frame::decode(kind, payload).map(Some)
}

pub fn write_frame(w: &mut impl Write, f: &Frame) -> io::Result<()> {
    w.write_all(&f.encode())?;
    w.flush()
}

/// Why a peer of another protocol version cannot be served, naming both.
pub fn version_refusal(ours: u32, theirs: u32) -> String {
    format!(
        "holder protocol mismatch: this side speaks version {ours}, the peer speaks version {theirs}; \
         use the orch-tui that started the attempt to finish it (or `orch-tui cancel` the task)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(f: Frame) {
        let bytes = f.encode();
        let got = read_frame(&mut bytes.as_slice()).unwrap().unwrap();
        assert_eq!(got, f);
    }

    #[test]
    fn every_frame_survives_the_wire() {
        round_trip(Frame::Hello(Hello {
            version: VERSION,
            client: "test".into(),
        }));
        round_trip(Frame::Output(b"\x1b[31mred\x00".to_vec()));
        round_trip(Frame::Resize {
            rows: 50,
            cols: 200,
        });
        round_trip(Frame::Stop { grace_ms: 1500 });
        round_trip(Frame::Freeze(true));
        round_trip(Frame::StatusRequest);
        round_trip(Frame::Exited(ExitRecord {
            code: Some(3),
            signal: None,
            ended_ms: 9,
        }));
        round_trip(Frame::Refuse("no".into()));
    }

    #[test]
    fn a_huge_or_unknown_frame_is_an_error_not_an_allocation() {
        let mut huge = (u32::MAX).to_be_bytes().to_vec();
        huge.push(5);
        assert!(read_frame(&mut huge.as_slice()).is_err());
        let unknown = [0, 0, 0, 1, 200];
        assert!(read_frame(&mut unknown.as_slice()).is_err());
        assert!(read_frame(&mut [].as_slice()).unwrap().is_none());
    }

    #[test]
    fn a_refusal_names_both_versions() {
        let t = version_refusal(1, 2);
        assert!(t.contains("version 1") && t.contains("version 2"), "{t}");
    }
}
