//! Interrupting and continuing an interactive session agent's turn (Claude Code, Codex), for a
//! paused task: both name the key on their screen while they work ("esc to interrupt"), and go
//! on from a message typed into the same conversation.

/// Escape: ends the turn under way; the session, its context and the process stay.
pub const INTERRUPT: &[u8] = b"\x1b";

/// What is typed (pasted, Enter sent on its own after [`ENTER_AFTER_MS`]) when the task is
/// resumed.
pub const CONTINUE: &str = "You were paused by the human and are resumed now: carry on with \
                            the task where you stopped.";

/// Enter right after pasted text is swallowed by some agents' input boxes (research/agents.md):
/// it goes on its own, this long after the text.
pub const ENTER_AFTER_MS: u64 = 300;

/// The bytes of the continue message (without the Enter): a bracketed paste when the agent's
/// terminal asked for one (both CLIs do), else the plain text.
pub fn continue_paste(bracketed: bool) -> Vec<u8> {
    paste(CONTINUE, bracketed)
}

/// `text` as one paste (without the Enter): bracketed when the agent's terminal asked for it.
/// Control characters other than newlines and tabs are dropped, so a note cannot end the
/// paste early (`ESC[201~`) or send keys of its own.
pub fn paste(text: &str, bracketed: bool) -> Vec<u8> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    if !bracketed {
        return clean.into_bytes();
    }
    let mut b = b"\x1b[200~".to_vec();
    b.extend_from_slice(clean.as_bytes());
    b.extend_from_slice(b"\x1b[201~");
    b
}
