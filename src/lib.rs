//! orch-tui: a terminal supervisor for several coding agents.
//!
//! Arrows point one way (docs/architecture.md): `core` is pure; `ledger`, `git` and `agent`
//! do the I/O; `engine` drives them; `cli` and `tui` are clients of the engine and read the
//! ledger through one query layer, `read` (what `status` and the TUI show). `os` (processes,
//! file modes, locks, quiet printing) sits under all of them and uses none.

/// `println!` and `eprintln!` that a closed pipe (`| head`) cannot crash: see `os::out`.
macro_rules! out {
    ($($t:tt)*) => {{
        let _ = $crate::os::out::say(&format!($($t)*));
    }};
}
macro_rules! err_out {
    ($($t:tt)*) => {{
        let _ = $crate::os::out::warn(&format!($($t)*));
    }};
}

pub mod agent;
pub mod cli;
pub mod core;
pub mod engine;
pub mod git;
pub mod ledger;
pub mod os;
pub mod read;
pub mod tui;
