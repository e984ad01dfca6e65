//! agent: PTY processes, their emulated screens and their logs (DESIGN §6), and the
//! built-in simulated agent.

pub mod adapter;
pub mod holder;
pub mod logs;
pub mod pty;
pub mod record;
pub mod screen;
pub mod sim;
pub mod typing;
