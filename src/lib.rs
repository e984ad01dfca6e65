//! orch-tui: a terminal supervisor for several coding agents.
//!
//! Arrows point one way (docs/architecture.md): `core` is pure; `ledger`, `git` and `agent`
//! do the I/O; `engine` drives them; `cli` and `tui` are clients of the engine. `os` (processes,
//! file modes, locks, quiet printing) sits under all of them and uses none.

pub mod agent;
pub mod cli;
pub mod core;
pub mod engine;
pub mod git;
pub mod ledger;
pub mod os;
pub mod tui;
