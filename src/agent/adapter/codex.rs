//! OpenAI Codex CLI: `codex exec --json --sandbox workspace-write PROMPT` headless, `codex` in a
//! PTY interactive.
//!
//! Facts measured with 0.169.0 (research/agents.md, shared/tools/README.md): `turn.completed`
//! usage sums the turn's requests, and after `exec resume` it is cumulative over the thread, so
//! a parser for a resumed attempt starts from the earlier total and counts differences. No cost
//! is printed: it is priced from the profile's `price`. API errors arrive as an `error` event and
//! `turn.failed` with prose only ("You've hit your usage limit. ... try again at 1:28 PM.").
//! In a PTY its stderr (warnings, tracing lines) is interleaved with the JSON.

use serde_json::Value;

use super::claude::short;
use super::{AgentKind, EventParser, LaunchContext, LineParser, ParserOptions, Silent};
use crate::core::agent_event::{
    AgentEvent, Failure, FailureKind, Limit, LimitKind, PaneKind, PaneLine, Permission,
    PermissionKind, Price, Reset, Tokens, TurnEnd,
};
use crate::core::config::{Adapter, AgentMode};

pub struct Codex;

/// The config override that makes interactive Codex send its notifications as OSC 9.
pub const NOTIFY_BY_OSC9: &str = "tui.notification_method=\"osc9\"";

impl AgentKind for Codex {
    fn adapter(&self) -> Adapter {
        Adapter::Codex
    }

    fn large_prompt(&self, ctx: &LaunchContext<'_>) -> Result<String, String> {
        Ok(super::claude::pointer_prompt(ctx))
    }

    /// Interactive: its approval and turn-end notifications as OSC 9, which carries their text
    /// ("Approval requested: CMD", "Codex wants to edit FILE"); its default (`auto`) rings a
    /// bare bell in a PTY that is no known terminal (measured with 0.169.0). A profile that
    /// sets `tui.notification_method` itself keeps its own.
    fn prepare(
        &self,
        _ctx: &LaunchContext<'_>,
        mode: AgentMode,
        launch: &mut super::Launch,
    ) -> Result<(), String> {
        if mode == AgentMode::Interactive
            && !launch
                .argv
                .iter()
                .any(|a| a.contains("tui.notification_method"))
        {
            launch
                .argv
                .splice(1..1, ["-c".to_string(), NOTIFY_BY_OSC9.to_string()]);
        }
        Ok(())
    }

    /// `codex exec ARGS` -> `codex exec resume ID ARGS`; `exec resume` has no `--sandbox`, so a
    /// sandbox flag becomes the equivalent `-c sandbox_mode=...`.
    fn resume(&self, argv: &mut Vec<String>, session: &str) {
        let Some(exec) = argv.iter().position(|a| a == "exec") else {
            // Interactive: `codex resume ID`.
            argv.splice(1..1, ["resume".to_string(), session.to_string()]);
            return;
        };
        let mut i = exec + 1;
        while i < argv.len() {
            let a = argv[i].clone();
            if (a == "--sandbox" || a == "-s") && i + 1 < argv.len() {
                argv[i] = "-c".into();
                argv[i + 1] = format!("sandbox_mode=\"{}\"", argv[i + 1]);
                i += 2;
            } else if let Some(mode) = a.strip_prefix("--sandbox=") {
                argv[i] = format!("sandbox_mode=\"{mode}\"");
                argv.insert(i, "-c".into());
                i += 2;
            } else {
                i += 1;
            }
        }
        argv.splice(
            exec + 1..exec + 1,
            ["resume".to_string(), session.to_string()],
        );
    }

    fn parser(&self, opts: ParserOptions) -> Box<dyn EventParser> {
        match opts.mode {
            AgentMode::Headless => {
                let mut s = ExecState::new(opts.price, Tokens::default());
                Box::new(LineParser::new(move |l| s.line(l)))
            }
            AgentMode::Interactive => Box::new(Silent),
        }
    }

    fn flag_checks(&self) -> &'static [super::FlagCheck] {
        &[
            super::FlagCheck {
                args: &["exec", "--help"],
                flags: &["--json", "--sandbox", "--config"],
            },
            super::FlagCheck {
                args: &["exec", "resume", "--help"],
                flags: &["--json", "--last"],
            },
        ]
    }

    fn screen_rules(&self) -> &'static str {
        include_str!("../../../assets/screen-rules/codex.toml")
    }

    /// Escape ends its turn; Ctrl-C empties the input (a single one on an empty input only
    /// shows a hint); `/quit` ends the session (its slash command; the conversation stays on
    /// disk for a later `--resume`).
    fn stop_keys(&self) -> Option<super::StopKeys> {
        Some(super::StopKeys {
            interrupt: super::pause::INTERRUPT,
            clear: b"\x03",
            exit: "/quit",
        })
    }
}

/// A parser for a resumed `codex exec resume`, whose usage counts on from `earlier` (the
/// thread's total when the previous attempt ended).
pub fn resumed_parser(price: Option<Price>, earlier: Tokens) -> Box<dyn EventParser> {
    let mut s = ExecState::new(price, earlier);
    Box::new(LineParser::new(move |l| s.line(l)))
}

/// `now - seen` for cumulative usage, comparing all input tokens together: an earlier total
/// handed in from the ledger has its cache reads inside `input` (the ledger keeps tokens in
/// and out only). The cached share of the difference is what the cache fields grew by.
fn since_combined(now: &Tokens, seen: &Tokens) -> Tokens {
    let all = |t: &Tokens| {
        t.input
            .saturating_add(t.cache_read)
            .saturating_add(t.cache_write)
    };
    let input = all(now).saturating_sub(all(seen));
    let cache_read = now.cache_read.saturating_sub(seen.cache_read).min(input);
    let cache_write = now
        .cache_write
        .saturating_sub(seen.cache_write)
        .min(input - cache_read);
    Tokens {
        input: input - cache_read - cache_write,
        cache_read,
        cache_write,
        output: now.output.saturating_sub(seen.output),
    }
}

struct ExecState {
    price: Option<Price>,
    /// The thread's cumulative usage at the last `turn.completed`.
    seen: Tokens,
    thread: Option<String>,
    last_message: Option<String>,
    error: Option<String>,
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn pane(kind: PaneKind, text: impl Into<String>) -> AgentEvent {
    AgentEvent::Pane(PaneLine {
        kind,
        text: text.into(),
    })
}

/// Codex's usage: `input_tokens` includes the cached ones (OpenAI's convention).
fn tokens_of(usage: &Value) -> Tokens {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("cached_input_tokens");
    Tokens {
        input: n("input_tokens").saturating_sub(cached),
        cache_read: cached,
        cache_write: n("cache_write_input_tokens"),
        output: n("output_tokens"),
    }
}

impl ExecState {
    fn new(price: Option<Price>, seen: Tokens) -> Self {
        ExecState {
            price,
            seen,
            thread: None,
            last_message: None,
            error: None,
        }
    }

    fn line(&mut self, line: &str) -> Vec<AgentEvent> {
        let parsed = line
            .find('{')
            .filter(|&i| line[..i].trim().is_empty())
            .and_then(|i| serde_json::from_str::<Value>(&line[i..]).ok());
        let Some(v) = parsed else {
            return stderr_line(line);
        };
        match s(&v, "type").unwrap_or("") {
            "thread.started" => match s(&v, "thread_id") {
                Some(id) => {
                    self.thread = Some(id.to_string());
                    vec![AgentEvent::Session { id: id.to_string() }]
                }
                None => Vec::new(),
            },
            "item.started" => item_started(v.get("item").unwrap_or(&Value::Null)),
            "item.completed" => self.item_completed(v.get("item").unwrap_or(&Value::Null)),
            "turn.completed" => {
                let now = v.get("usage").map(tokens_of).unwrap_or_default();
                let delta = since_combined(&now, &self.seen);
                self.seen = now;
                vec![
                    AgentEvent::Usage {
                        tokens: delta,
                        cost_usd: self.price.map(|p| p.cost(&delta)),
                    },
                    pane(PaneKind::Info, "■ turn done"),
                    AgentEvent::TurnEnd(TurnEnd {
                        ok: true,
                        last_message: self.last_message.clone(),
                        session_id: self.thread.clone(),
                        transcript_path: None,
                        failure: None,
                        denials: Vec::new(),
                    }),
                ]
            }
            "error" => {
                let msg = s(&v, "message").unwrap_or("").to_string();
                self.error = Some(msg.clone());
                let mut out = vec![pane(PaneKind::Error, format!("✗ {msg}"))];
                out.extend(limit_in(&msg).map(AgentEvent::Limit));
                out
            }
            "turn.failed" => {
                let msg = v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(self.error.clone())
                    .unwrap_or_default();
                let failure = failure_of(&msg);
                vec![
                    pane(PaneKind::Error, format!("✗ {}", failure.words())),
                    AgentEvent::TurnEnd(TurnEnd {
                        ok: false,
                        last_message: self.last_message.clone(),
                        session_id: self.thread.clone(),
                        transcript_path: None,
                        failure: Some(failure),
                        denials: Vec::new(),
                    }),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn item_completed(&mut self, item: &Value) -> Vec<AgentEvent> {
        match s(item, "type").unwrap_or("") {
            "agent_message" => {
                let text = s(item, "text").unwrap_or("").to_string();
                let lines = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| pane(PaneKind::Assistant, l))
                    .collect();
                self.last_message = Some(text);
                lines
            }
            "command_execution" => {
                let code = item.get("exit_code").and_then(Value::as_i64);
                let out = s(item, "aggregated_output").unwrap_or("");
                let kind = if code == Some(0) {
                    PaneKind::ToolResult
                } else {
                    PaneKind::Error
                };
                let code = code.map_or("?".to_string(), |c| c.to_string());
                vec![pane(kind, format!("← exit {code} {}", short(out, 160)))]
            }
            "file_change" => item
                .get("changes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    pane(
                        PaneKind::ToolResult,
                        format!(
                            "← {} {}",
                            s(c, "kind").unwrap_or("edit"),
                            s(c, "path").unwrap_or("?")
                        ),
                    )
                })
                .collect(),
            "error" => vec![pane(
                PaneKind::Error,
                format!("✗ {}", s(item, "message").unwrap_or("")),
            )],
            _ => Vec::new(),
        }
    }
}

fn item_started(item: &Value) -> Vec<AgentEvent> {
    match s(item, "type").unwrap_or("") {
        "command_execution" => vec![pane(
            PaneKind::ToolCall,
            format!("→ $ {}", short(s(item, "command").unwrap_or(""), 200)),
        )],
        "file_change" => vec![pane(PaneKind::ToolCall, "→ apply_patch")],
        _ => Vec::new(),
    }
}

/// A line that is not JSON: Codex's stderr in the same PTY. Sandbox refusals are permission
/// denials; the rest is shown as it is.
fn stderr_line(line: &str) -> Vec<AgentEvent> {
    let t = line.trim();
    if t.is_empty() {
        return Vec::new();
    }
    let mut out = vec![pane(PaneKind::Info, t)];
    if t.contains("blocked by read-only sandbox") || t.contains("rejected by user approval") {
        out.push(AgentEvent::Permission(Permission {
            kind: PermissionKind::Denied,
            tool: if t.contains("patch") {
                "apply_patch"
            } else {
                "exec_command"
            }
            .to_string(),
            subject: t.rsplit("error=").next().unwrap_or(t).to_string(),
            reason: Some("the sandbox refused it (run with --sandbox workspace-write)".into()),
        }));
    }
    out
}

/// The first `status NNN` / `status: NNN` in Codex's error prose.
fn status_in(msg: &str) -> Option<u16> {
    let i = msg.find("status")?;
    let digits: String = msg[i + 6..]
        .trim_start_matches([':', ' '])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|n| (100..600).contains(n))
}

fn failure_of(msg: &str) -> Failure {
    let kind = if msg.contains("usage limit") {
        FailureKind::Api { status: 429 }
    } else {
        match status_in(msg) {
            Some(st @ (401 | 403)) => FailureKind::Auth { status: Some(st) },
            Some(st) => FailureKind::Api { status: st },
            None if msg.contains("high demand") || msg.contains("server error") => {
                FailureKind::ApiServer
            }
            None => FailureKind::Other,
        }
    };
    Failure {
        kind,
        detail: msg.to_string(),
    }
}

/// Codex's usage-limit error, or a 429 it gave up on.
fn limit_in(msg: &str) -> Option<Limit> {
    let kind = if msg.contains("usage limit") {
        LimitKind::Usage
    } else if status_in(msg) == Some(429) {
        LimitKind::Rate
    } else {
        return None;
    };
    Some(Limit {
        kind,
        resets: clock_time_in(msg).map(|(hour, minute)| Reset::ClockTime { hour, minute }),
        text: msg.to_string(),
    })
}

/// "try again at 3:28 PM" / "at 15:28" -> (15, 28).
pub fn clock_time_in(msg: &str) -> Option<(u8, u8)> {
    let lower = msg.to_ascii_lowercase();
    let at = lower.find("again at ")? + "again at ".len();
    let rest = &lower[at..];
    let (h, tail) = rest.split_once(':')?;
    let hour: u8 = h.trim().parse().ok()?;
    let minute: u8 = tail.get(..2)?.parse().ok()?;
    let after = tail[2..].trim_start();
    let hour = match (after.starts_with("pm"), after.starts_with("am")) {
        (true, _) if hour < 12 => hour + 12,
        (_, true) if hour == 12 => 0,
        _ => hour,
    };
    (hour < 24 && minute < 60).then_some((hour, minute))
}
