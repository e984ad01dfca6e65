//! The pure domain: task states, plan model and validation, scheduling decisions.
//! No I/O, no tokio, no terminal; nothing here imports the other parts.

pub mod schedule;
pub mod state;
