//! `orch-tui hook AGENT --log FILE [PAYLOAD]`: what an agent's hooks call (Claude Code hooks
//! from the per-attempt `--settings` file; Codex `notify`, whose JSON is the last argument;
//! aider's `--notifications-command`).
//!
//! The event is appended to the attempt's hook log as one JSON line (the raw record), and —
//! fenced like `orch-tui worker`: the attempt's token, the current epoch, a caller descending
//! from the agent — what it shows (working, waiting, idle, a turn's last message) is written to
//! the ledger, whose supervisor is poked to act on it.
//!
//! A permission request (Claude's PermissionRequest) is answered here: by the config's
//! `[permissions]` rules or an "allow always" of this run, else by the human from the inbox
//! (`orch-tui answer TASK allow|always|deny`), which this call waits for. A PreToolUse is
//! answered only when a rule covers it. Every answer is an event.
//!
//! It always exits 0: Claude treats exit 2 as "block this tool call", and a hook that cannot
//! write must not stop the agent's work. Problems go to stderr.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{CliResult, EXIT_OK};
use crate::core::domain::{Actor, AttemptNo};
use crate::core::hooks::{self, HookReport};
use crate::core::permissions::{Decision, decide};
use crate::ledger::{Caller, Ledger, PendingPermission};

/// Larger hook input is cut: the log is for state changes, not for whole transcripts.
const MAX_INPUT: u64 = 1024 * 1024;
/// How long a permission request waits for the human (the hook's own timeout is 600 s).
const ANSWER_WAIT: Duration = Duration::from_secs(590);

pub fn hook(agent: &str, log: &Path, payload: Option<&str>) -> CliResult {
    let text = match payload {
        Some(p) => p.to_string(),
        None => {
            let mut s = String::new();
            let _ = std::io::stdin().take(MAX_INPUT).read_to_string(&mut s);
            s
        }
    };
    let parsed = serde_json::from_str::<serde_json::Value>(text.trim()).ok();
    let mut event = match &parsed {
        Some(serde_json::Value::Object(m)) => serde_json::Value::Object(m.clone()),
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
    let value = parsed.unwrap_or(serde_json::Value::Null);
    let report = match agent {
        "claude" => hooks::claude(&value),
        "codex" => hooks::codex(&value),
        "aider" => hooks::aider(),
        _ => HookReport {
            hook: agent.to_string(),
            rule: format!("hook:{agent}"),
            ..HookReport::default()
        },
    };
    if let Some(att) = Attempt::from_env() {
        // An interactive Claude prints no totals: its spend is read from the transcript at
        // each turn's end — before the turn's end is reported, after which the human may end
        // the agent (and this hook with it).
        if agent == "claude"
            && matches!(report.hook.as_str(), "Stop" | "SessionEnd")
            && let Some(t) = &report.transcript
        {
            let last = (report.hook == "Stop")
                .then_some(report.question.as_deref())
                .flatten();
            att.spend_from(Path::new(t), last);
        }
        if let Some(answer) = att.report(&report) {
            out!("{answer}");
        }
        att.poke();
    }
    Ok(EXIT_OK)
}

/// The attempt this hook runs for, from the agent's environment.
struct Attempt {
    ledger: std::path::PathBuf,
    task: String,
    n: AttemptNo,
    token: String,
}

/// The transcript holds `needle` after its last user line (a prompt or a tool's result): the
/// turn's last message is written. A session kept through review says the same words ("Done.")
/// turn after turn: found anywhere, they may be an earlier turn's.
fn answered(transcript: &str, needle: &str) -> bool {
    let lines: Vec<&str> = transcript.lines().collect();
    let last_user = lines.iter().rposition(|l| {
        serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["type"] == "user")
    });
    let after = last_user.map_or(0, |i| i + 1);
    lines[after..].iter().any(|l| l.contains(needle))
}

impl Attempt {
    fn from_env() -> Option<Attempt> {
        let ledger = std::env::var_os("ORCH_LEDGER")?.into();
        let task = std::env::var("ORCH_TASK").ok()?;
        let n = std::env::var("ORCH_ATTEMPT").ok()?.parse().ok()?;
        let token = std::env::var("ORCH_TOKEN").ok()?;
        Some(Attempt {
            ledger,
            task,
            n: AttemptNo(n),
            token,
        })
    }

    fn open(&self, wait: Duration) -> Result<Ledger, crate::ledger::LedgerError> {
        Ledger::open_waiting(&self.ledger, wait)
    }

    fn poke(&self) {
        if let Some(orch) = self.ledger.parent() {
            crate::engine::poke(orch);
        }
    }

    /// Records the conversation's spend from its transcript (priced with the profile's `price`
    /// when it has one; tokens only otherwise).
    fn spend_from(&self, transcript: &Path, last: Option<&str>) {
        // Claude may run the Stop hook before the turn's last message reaches the transcript:
        // wait a little for it (its text, as the transcript's JSON writes it).
        let needle = last
            .filter(|m| !m.trim().is_empty())
            .map(|m| serde_json::to_string(m.trim()).unwrap_or_default())
            .map(|q| q.trim_matches('"').to_string());
        let deadline = Instant::now() + Duration::from_secs(3);
        let text = loop {
            let Ok(text) = std::fs::read_to_string(transcript) else {
                return;
            };
            let complete = needle.as_deref().is_none_or(|n| answered(&text, n));
            if complete || Instant::now() >= deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let tokens = crate::agent::adapter::claude::transcript_tokens(&text);
        let price = self.ledger.parent().and_then(|orch| {
            let cfg = super::load::load_config(Some(&orch.join("config.toml"))).ok()?;
            let profile = Ledger::open_waiting(&self.ledger, Duration::from_secs(2))
                .ok()?
                .attempt_profile(&self.task, self.n)
                .ok()??;
            cfg.agents.get(&profile)?.price
        });
        let cost = price.map_or(0.0, |p| p.cost(&tokens));
        let tokens_in = tokens
            .input
            .saturating_add(tokens.cache_read)
            .saturating_add(tokens.cache_write);
        let recorded = super::worker::retry_transient(Duration::from_secs(30), |wait| {
            self.open(wait)?.hook_spend(
                &self.task,
                self.n,
                &self.token,
                &Caller::this_process(),
                (tokens_in, tokens.output),
                cost,
            )
        });
        if let Err(e) = recorded {
            err_out!("orch-tui hook: {}", e.message);
        }
    }

    /// Writes the report; for a permission request or a tool call a rule covers, returns the
    /// answer to print for the agent.
    fn report(&self, r: &HookReport) -> Option<String> {
        let budget = Duration::from_secs(30);
        let reported = super::worker::retry_transient(budget, |wait| {
            self.open(wait)?.hook_report(
                &self.task,
                self.n,
                &self.token,
                r,
                &Caller::this_process(),
            )
        });
        let request = match reported {
            Ok(req) => req,
            Err(e) => {
                err_out!("orch-tui hook: {}", e.message);
                return None;
            }
        };
        match (request, r.hook.as_str()) {
            (Some(seq), _) => self.permission(seq, r),
            (None, "PreToolUse") => self.pre_tool_use(r),
            _ => None,
        }
    }

    /// The config's rules and this run's "allow always" answers, for this call.
    fn rule_for(&self, tool: &str, subject: &str) -> Option<(Decision, String)> {
        let orch = self.ledger.parent()?;
        let cfg = super::load::load_config(Some(&orch.join("config.toml"))).ok()?;
        let always = self
            .open(Duration::from_secs(2))
            .and_then(|l| l.always_rules())
            .unwrap_or_default();
        decide(
            &cfg.permissions.allow,
            &cfg.permissions.deny,
            &always,
            tool,
            subject,
        )
    }

    fn permission(&self, seq: i64, r: &HookReport) -> Option<String> {
        let (tool, subject) = (r.tool.clone()?, r.subject.clone().unwrap_or_default());
        let pending = PendingPermission {
            seq,
            task: self.task.clone(),
            attempt: self.n,
            tool: tool.clone(),
            subject: subject.clone(),
            source: "hook".into(),
        };
        if let Some((decision, rule)) = self.rule_for(&tool, &subject) {
            let answered = self.open(Duration::from_secs(5)).and_then(|mut l| {
                l.answer_permission(&pending, decision, None, Actor::Supervisor, Some(&rule))
            });
            if let Err(e) = answered {
                err_out!("orch-tui hook: {e}");
            }
            return Some(permission_output(
                decision,
                &format!("orch-tui rule: {rule}"),
            ));
        }
        // The supervisor shows it in the inbox; wait for the human's answer.
        self.poke();
        let deadline = Instant::now() + ANSWER_WAIT;
        let mut ledger = None;
        while Instant::now() < deadline {
            if ledger.is_none() {
                ledger = self.open(Duration::from_secs(2)).ok();
            }
            if let Some(l) = &ledger
                && let Ok(Some((decision, note))) = l.permission_answer(seq)
            {
                let why = note.unwrap_or_else(|| "answered from the orch-tui inbox".into());
                return Some(permission_output(decision, &why));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }

    fn pre_tool_use(&self, r: &HookReport) -> Option<String> {
        let (tool, subject) = (r.tool.as_deref()?, r.subject.as_deref().unwrap_or(""));
        let (decision, rule) = self.rule_for(tool, subject)?;
        let recorded = self
            .open(Duration::from_secs(5))
            .and_then(|mut l| l.rule_decision(&self.task, self.n, tool, subject, decision, &rule));
        if let Err(e) = recorded {
            err_out!("orch-tui hook: {e}");
        }
        let word = if decision.allows() { "allow" } else { "deny" };
        Some(
            serde_json::json!({
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": word,
                    "permissionDecisionReason": format!("orch-tui rule: {rule}"),
                }
            })
            .to_string(),
        )
    }
}

/// Claude's PermissionRequest hook output.
fn permission_output(decision: Decision, why: &str) -> String {
    let mut d = serde_json::json!({ "behavior": if decision.allows() { "allow" } else { "deny" } });
    if !decision.allows() {
        d["message"] = serde_json::Value::from(why);
    }
    serde_json::json!({
        "hookSpecificOutput": { "hookEventName": "PermissionRequest", "decision": d }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::answered;

    #[test]
    fn a_turns_last_message_counts_only_after_its_prompt() {
        let first = concat!(
            r#"{"type":"user","message":{"content":"Write it."}}"#,
            "\n",
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Done."}]}}"#,
            "\n"
        );
        assert!(answered(first, "Done."));
        // The next turn's prompt is in, its reply not yet: the earlier "Done." does not count.
        let second = format!(
            "{first}{}\n",
            r#"{"type":"user","message":{"content":"Also add the fix."}}"#
        );
        assert!(!answered(&second, "Done."));
        let third = format!(
            "{second}{}\n",
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Done."}]}}"#
        );
        assert!(answered(&third, "Done."));
    }
}
