//! `orch-tui hook AGENT --log FILE [PAYLOAD]`: what an agent's hooks call (Claude Code hooks
//! from the per-attempt `--settings` file; Codex `notify`, whose JSON is the last argument;
//! aider's `--notifications-command`). The event is appended to the attempt's hook log as one
//! JSON line, with the time it arrived, and the supervisor is poked to read it.
//!
//! It always exits 0: Claude treats exit 2 as "block this tool call", and a hook that cannot
//! write its log must not stop the agent's work. Problems go to stderr.

use std::io::{Read, Write};
use std::path::Path;

use super::{CliResult, EXIT_OK};

/// Larger hook input is cut: the log is for state changes, not for whole transcripts.
const MAX_INPUT: u64 = 1024 * 1024;

pub fn hook(agent: &str, log: &Path, payload: Option<&str>) -> CliResult {
    let text = match payload {
        Some(p) => p.to_string(),
        None => {
            let mut s = String::new();
            let _ = std::io::stdin().take(MAX_INPUT).read_to_string(&mut s);
            s
        }
    };
    let mut event = match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(serde_json::Value::Object(m)) => serde_json::Value::Object(m),
        _ => serde_json::json!({ "raw": text.trim() }),
    };
    event["orch_agent"] = serde_json::Value::from(agent);
    event["orch_received_ms"] = serde_json::Value::from(crate::ledger::now_ms());
    for key in ["ORCH_TASK", "ORCH_ATTEMPT"] {
        if let Ok(v) = std::env::var(key) {
            event[key.to_ascii_lowercase()] = serde_json::Value::from(v);
        }
    }
    let mut line = event.to_string();
    line.push('\n');
    // One write with O_APPEND: concurrent hooks of one agent never interleave their lines.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        err_out!("orch-tui hook: cannot append to {}: {e}", log.display());
    }
    if let Ok(ledger) = std::env::var("ORCH_LEDGER")
        && let Some(orch) = Path::new(&ledger).parent()
    {
        crate::engine::poke(orch);
    }
    Ok(EXIT_OK)
}
