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

/// The file an agent reads its prompt from, written by whoever starts the agent just before
/// it: the in-process PTY world, or the holder (into a file a spare made ahead: no new inode
/// on the dispatch's path, `holder::spare`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PromptFile {
    pub path: std::path::PathBuf,
    pub text: String,
}

impl PromptFile {
    /// Writes it, private like everything under `.orch/` (a prompt may carry secrets a user
    /// pasted).
    pub fn write(&self) -> Result<(), String> {
        if let Some(dir) = self.path.parent() {
            let _ = crate::os::files::private_dir(dir);
        }
        crate::os::files::write_private(&self.path, self.text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}
