//! Keys and pastes → the bytes a terminal would send to the agent in its PTY.
//! Cursor keys honour the agent's application-cursor mode (DECCKM), pastes its bracketed-paste
//! mode, as a real terminal does; otherwise readline-style agents misread arrows.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The agent's input modes, read from its emulated screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modes {
    pub application_cursor: bool,
    pub bracketed_paste: bool,
}

/// Bytes for one key, or None for keys a terminal sends nothing for.
pub fn encode_key(ev: &KeyEvent, modes: Modes) -> Option<Vec<u8>> {
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    let alt = ev.modifiers.contains(KeyModifiers::ALT);
    let mut out = match ev.code {
        KeyCode::Char(c) if ctrl => vec![ctrl_byte(c)?],
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => b"\r".to_vec(),
        KeyCode::Tab => b"\t".to_vec(),
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Backspace => b"\x7f".to_vec(),
        KeyCode::Esc => b"\x1b".to_vec(),
        KeyCode::Up => cursor(b'A', modes),
        KeyCode::Down => cursor(b'B', modes),
        KeyCode::Right => cursor(b'C', modes),
        KeyCode::Left => cursor(b'D', modes),
        KeyCode::Home => cursor(b'H', modes),
        KeyCode::End => cursor(b'F', modes),
        KeyCode::PageUp => b"\x1b[5~".to_vec(),
        KeyCode::PageDown => b"\x1b[6~".to_vec(),
        KeyCode::Insert => b"\x1b[2~".to_vec(),
        KeyCode::Delete => b"\x1b[3~".to_vec(),
        KeyCode::F(n) => function_key(n)?,
        _ => return None,
    };
    if alt {
        out.insert(0, 0x1b);
    }
    Some(out)
}

fn cursor(c: u8, modes: Modes) -> Vec<u8> {
    if modes.application_cursor {
        vec![0x1b, b'O', c]
    } else {
        vec![0x1b, b'[', c]
    }
}

fn ctrl_byte(c: char) -> Option<u8> {
    match c {
        'a'..='z' => Some(c as u8 - b'a' + 1),
        'A'..='Z' => Some(c as u8 - b'A' + 1),
        ' ' | '@' | '2' => Some(0),
        '[' | '3' => Some(0x1b),
        '\\' | '4' => Some(0x1c),
        ']' | '5' => Some(0x1d),
        '^' | '6' => Some(0x1e),
        '_' | '7' | '/' => Some(0x1f),
        '?' | '8' => Some(0x7f),
        _ => None,
    }
}

fn function_key(n: u8) -> Option<Vec<u8>> {
    let s: &[u8] = match n {
        1 => b"\x1bOP",
        2 => b"\x1bOQ",
        3 => b"\x1bOR",
        4 => b"\x1bOS",
        5 => b"\x1b[15~",
        6 => b"\x1b[17~",
        7 => b"\x1b[18~",
        8 => b"\x1b[19~",
        9 => b"\x1b[20~",
        10 => b"\x1b[21~",
        11 => b"\x1b[23~",
        12 => b"\x1b[24~",
        _ => return None,
    };
    Some(s.to_vec())
}

/// A paste: wrapped in ESC[200~ … ESC[201~ when the agent asked for bracketed paste. Line ends
/// become CR, as terminals send them.
pub fn encode_paste(text: &str, modes: Modes) -> Vec<u8> {
    let body = text.replace("\r\n", "\r").replace('\n', "\r");
    if modes.bracketed_paste {
        // An embedded end marker would let the paste escape the bracket; drop it.
        let body = body.replace("\x1b[201~", "");
        let mut out = b"\x1b[200~".to_vec();
        out.extend_from_slice(body.as_bytes());
        out.extend_from_slice(b"\x1b[201~");
        out
    } else {
        body.into_bytes()
    }
}
