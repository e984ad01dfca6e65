//! agent: PTY processes, their emulated screens and their logs (DESIGN §6).

pub mod logs;
pub mod pty;
pub mod screen;
