//! What the run loop carries out for the pure state machine (`app.rs`, `update.rs`): ledger
//! reads and writes on the background lanes, bytes and sizes for agents' PTYs, programs that
//! take the terminal for a while, the end of the TUI.

use crate::core::domain::AttemptId;
use crate::engine::HumanCommand;

/// Something the run loop must do outside the pure state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A human command through `apply_human` (actor human) in the background, waiting out a
    /// busy ledger, then a poke.
    Human {
        cmd: HumanCommand,
        task: String,
        note: Option<String>,
    },
    /// Bytes for an agent's PTY.
    Input { attempt: AttemptId, bytes: Vec<u8> },
    /// Resize an agent's PTY and emulated screen.
    Resize {
        attempt: AttemptId,
        rows: u16,
        cols: u16,
    },
    /// Read the ledger again (coalesced: one refresh at a time).
    Refresh,
    /// Read a task's detail from the ledger.
    LoadDetail { task: String },
    /// Read a task's diff (latest agent attempt: base..commit).
    LoadDiff { task: String },
    /// `git diff --stat base..commit` for an approval's context.
    LoadDiffStat { base: String, commit: String },
    /// Answer the permission request `task`'s agent waits on, as `orch-tui answer` does.
    Answer {
        task: String,
        decision: crate::core::permissions::Decision,
        note: Option<String>,
    },
    /// Approve each of these tasks (every inbox approval); the status line says how many.
    ApproveAll { tasks: Vec<String> },
    /// Read the logs again.
    LoadLogs,
    /// The integration branch's commits, for the done screen.
    LoadDone,
    /// Build the timeline from the ledger's events.
    LoadTimeline,
    /// Add a task as `orch-tui add` does (the form's answer comes back as `on_form_answer`).
    AddTask { draft: crate::core::new_task::Draft },
    /// Write a new prompt as `orch-tui edit` does.
    EditPrompt { task: String, prompt: String },
    /// Read a task's prompt, then open the edit form on it.
    LoadPrompt { task: String },
    /// Suspend the TUI and edit this text in $EDITOR (`on_editor_text` gets the result).
    EditText { text: String },
    /// Suspend the TUI for a shell ($SHELL) in the task's worktree.
    OpenShell { task: String },
    /// Suspend the TUI for $EDITOR on the task's worktree, or on `diff` (the diff view's text).
    OpenEditor {
        task: String,
        diff: Option<Vec<String>>,
    },
    /// Suspend the TUI for a shell (or, `editor`, $EDITOR) in `dir`, the task's worktree.
    RunIn {
        task: String,
        dir: std::path::PathBuf,
        editor: bool,
    },
    /// Stop the engine (agents stopped or left running for the next start) and quit.
    Stop { stop_agents: bool },
    /// Leave it running: end this engine with its agents left running, and quit; a background
    /// supervisor (`run --detach`) then adopts them (`cli::run::supervise_tui`).
    Detach,
    /// Leave the TUI (the engine has already ended).
    Exit,
}
