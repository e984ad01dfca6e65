//! Reports to the supervisor through `orch-tui worker ...`, as a real interactive agent's hooks
//! would. The child inherits the `ORCH_*` environment, which is how it finds the ledger, task
//! and token.
//!
//! A failed report never fails the simulated agent: the supervisor also watches the process
//! and its exit code, and a demo should keep going when, say, the ledger is briefly busy.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::paint::{RESET, YELLOW};

/// Runs `bin worker ARGS...` in `cwd`; on failure writes a warning to `err` and returns false.
pub(super) fn call(bin: &Path, cwd: &Path, args: &[String], err: &mut dyn Write) -> bool {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect();
    let shown = format!("{} worker {}", bin.display(), quoted.join(" "));
    // Output is captured rather than inherited so it goes through our own writers (which the
    // tests capture), and so a chatty child cannot interleave with a spinner redraw.
    let result = Command::new(bin)
        .arg("worker")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output();
    let problem = match result {
        Ok(output) if output.status.success() => return true,
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            match stderr.trim() {
                "" => output.status.to_string(),
                said => format!("{}: {said}", output.status),
            }
        }
        Err(e) => {
            format!("could not start it ({e}); set ORCH_BIN to the path of the orch-tui binary")
        }
    };
    // Ignored write error: this is already the error path, and stderr is all we have.
    let _ = writeln!(
        err,
        "{YELLOW}warning:{RESET} sim-agent: `{shown}` failed: {problem}; \
         continuing without this report"
    );
    false
}
