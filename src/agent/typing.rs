//! Typing into an agent as a person would: a paste wrapped in bracketed-paste markers when the
//! agent asked for them (so its editor takes newlines as text, not as Enter), Enter sent apart.

/// `text` as a paste: line ends become CR, as terminals send them; inside ESC[200~ … ESC[201~
/// when `bracketed` (an end marker inside the text is dropped, so it cannot escape).
pub fn paste_bytes(text: &str, bracketed: bool) -> Vec<u8> {
    let body = text.replace("\r\n", "\r").replace('\n', "\r");
    if !bracketed {
        return body.into_bytes();
    }
    let body = body.replace("\x1b[201~", "");
    let mut out = b"\x1b[200~".to_vec();
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(b"\x1b[201~");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paste_cannot_escape_its_brackets() {
        assert_eq!(paste_bytes("a\nb", false), b"a\rb");
        assert_eq!(
            paste_bytes("x\x1b[201~y", true),
            b"\x1b[200~xy\x1b[201~".to_vec()
        );
    }
}
