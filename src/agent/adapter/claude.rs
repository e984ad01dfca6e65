//! Claude Code: `claude -p ... --output-format stream-json --verbose --include-partial-messages`
//! headless, `claude` in a PTY interactive; hooks through a per-attempt `--settings` file.
//!
//! Facts measured with 2.1.328 (research/agents.md): every `assistant` event carries one content
//! block and repeats its message's `usage`, whose `output_tokens` is a placeholder (1); the real
//! per-call count is the `stream_event` -> `message_delta` usage. The last `result` holds
//! `total_cost_usd`, the bill, which settles the live figures. API errors end in a `result`
//! with `is_error`, `api_error_status` and `api_error_type`.

use std::collections::HashMap;

use serde_json::Value;

use super::{AgentKind, EventParser, Launch, LaunchContext, LineParser, ParserOptions, Silent};
use crate::core::agent_event::{
    AgentEvent, Failure, FailureKind, Limit, LimitKind, PaneKind, PaneLine, Permission,
    PermissionKind, Price, Reset, Tokens, TurnEnd,
};
use crate::core::config::{Adapter, AgentMode};

pub struct Claude;

/// The per-attempt settings file, next to the attempt's logs.
pub const SETTINGS_FILE: &str = "claude-settings.json";
/// Where `orch-tui hook` appends what the hooks receive, one JSON object a line.
pub const HOOKS_LOG: &str = "hooks.jsonl";
/// The hook events orch-tui listens to.
pub const HOOK_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "Notification",
    "Stop",
    "StopFailure",
    "SessionEnd",
];

impl AgentKind for Claude {
    fn adapter(&self) -> Adapter {
        Adapter::Claude
    }

    fn large_prompt(&self, ctx: &LaunchContext<'_>) -> Result<String, String> {
        Ok(pointer_prompt(ctx))
    }

    fn prepare(
        &self,
        ctx: &LaunchContext<'_>,
        mode: AgentMode,
        launch: &mut Launch,
    ) -> Result<(), String> {
        // Claude stops itself at what the task may still spend (orch-tui stops it too).
        if let Some(usd) = ctx.max_budget_usd.filter(|u| u.is_finite() && *u >= 0.0)
            && mode == AgentMode::Headless
            && !launch.argv.iter().any(|a| a == "--max-budget-usd")
        {
            launch
                .argv
                .splice(1..1, ["--max-budget-usd".to_string(), format!("{usd:.4}")]);
        }
        let path = ctx.attempt_dir.join(SETTINGS_FILE);
        std::fs::create_dir_all(ctx.attempt_dir)
            .and_then(|()| std::fs::write(&path, settings_json(ctx).to_string()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        launch.argv.splice(
            1..1,
            [
                "--settings".to_string(),
                path.to_string_lossy().into_owned(),
            ],
        );
        launch.files.push(path);
        Ok(())
    }

    fn resume(&self, argv: &mut Vec<String>, session: &str) {
        argv.splice(1..1, ["--resume".to_string(), session.to_string()]);
    }

    fn parser(&self, opts: ParserOptions) -> Box<dyn EventParser> {
        match opts.mode {
            AgentMode::Headless => {
                let mut s = StreamState::new(opts.price);
                Box::new(LineParser::new(move |l| s.line(l)))
            }
            // The TUI prints no JSON: hooks and screen rules tell its state.
            AgentMode::Interactive => Box::new(Silent),
        }
    }

    fn flag_checks(&self) -> &'static [super::FlagCheck] {
        &[super::FlagCheck {
            args: &["--help"],
            flags: &[
                "--settings",
                "--output-format",
                "--include-partial-messages",
                "--permission-mode",
                "--resume",
                "--max-budget-usd",
            ],
        }]
    }

    fn screen_rules(&self) -> &'static str {
        include_str!("../../../assets/screen-rules/claude.toml")
    }

    /// Escape ends its turn; Ctrl-C empties the input (a single one on an empty input only
    /// shows a hint); `/exit` ends the session (its slash command; the conversation stays on
    /// disk for a later `--resume`).
    fn stop_keys(&self) -> Option<super::StopKeys> {
        Some(super::StopKeys {
            interrupt: super::pause::INTERRUPT,
            clear: b"\x03",
            exit: "/exit",
        })
    }
}

/// The prompt that stands in for one too long to pass as an argument.
pub(super) fn pointer_prompt(ctx: &LaunchContext<'_>) -> String {
    format!(
        "Your task is too long to pass on the command line. It is in the file {}: read all of it \
         first, then do what it says.",
        ctx.prompt_file.display()
    )
}

/// Hooks for every event orch-tui listens to, each running `orch-tui hook claude --log FILE`.
/// Claude runs hook commands through a shell, so both paths are quoted.
pub fn settings_json(ctx: &LaunchContext<'_>) -> Value {
    let command = format!(
        "{} hook claude --log {}",
        super::shell_quote(&ctx.orch_bin.to_string_lossy()),
        super::shell_quote(&ctx.attempt_dir.join(HOOKS_LOG).to_string_lossy())
    );
    let mut hooks = serde_json::Map::new();
    for ev in HOOK_EVENTS {
        // A permission request waits for its answer (a rule, or the human from the inbox).
        let timeout = if *ev == "PermissionRequest" { 600 } else { 30 };
        let mut entry = serde_json::json!({
            "hooks": [{ "type": "command", "command": command, "timeout": timeout }]
        });
        if matches!(*ev, "PreToolUse" | "PermissionRequest") {
            entry["matcher"] = Value::from("*");
        }
        hooks.insert(ev.to_string(), Value::Array(vec![entry]));
    }
    serde_json::json!({ "hooks": hooks })
}

/// What the stream-json parser remembers between lines.
struct StreamState {
    price: Option<Price>,
    /// Usage from `message_start`, by message id, until its `message_delta`.
    started: HashMap<String, Tokens>,
    /// Messages whose usage was already counted (from `message_delta`, or from the
    /// `assistant` fallback when partial messages are off).
    counted: std::collections::HashSet<String>,
    partial_messages: bool,
    /// Tool inputs by tool_use id, to say what a refused call wanted.
    tool_subjects: HashMap<String, String>,
    session: Option<String>,
    last_text: Option<String>,
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Token fields of an API `usage` object.
pub fn tokens_of(usage: &Value) -> Tokens {
    Tokens {
        input: u(usage, "input_tokens"),
        cache_read: u(usage, "cache_read_input_tokens"),
        cache_write: u(usage, "cache_creation_input_tokens"),
        output: u(usage, "output_tokens"),
    }
}

fn pane(kind: PaneKind, text: impl Into<String>) -> AgentEvent {
    AgentEvent::Pane(PaneLine {
        kind,
        text: text.into(),
    })
}

/// The first line of `text`, at most `max` characters.
pub(super) fn short(text: &str, max: usize) -> String {
    crate::core::agent_event::short_text(text, max)
}

/// What a tool call is about: its file, command or pattern.
fn subject_of(input: &Value) -> String {
    for key in [
        "file_path",
        "command",
        "path",
        "pattern",
        "url",
        "description",
    ] {
        if let Some(v) = s(input, key) {
            return short(v, 200);
        }
    }
    short(&input.to_string(), 200)
}

impl StreamState {
    fn new(price: Option<Price>) -> Self {
        StreamState {
            price,
            started: HashMap::new(),
            counted: Default::default(),
            partial_messages: false,
            tool_subjects: HashMap::new(),
            session: None,
            last_text: None,
        }
    }

    fn usage(&self, tokens: Tokens) -> AgentEvent {
        AgentEvent::Usage {
            tokens,
            cost_usd: self.price.map(|p| p.cost(&tokens)),
        }
    }

    fn line(&mut self, line: &str) -> Vec<AgentEvent> {
        let Some(start) = line.find('{') else {
            return match line.trim() {
                "" => Vec::new(),
                t => vec![pane(PaneKind::Info, t)],
            };
        };
        let Ok(v) = serde_json::from_str::<Value>(&line[start..]) else {
            return vec![pane(PaneKind::Info, line.trim())];
        };
        match s(&v, "type").unwrap_or("") {
            "system" => self.system(&v),
            "stream_event" => self.stream_event(&v),
            "assistant" => self.assistant(&v),
            "user" => user(&v),
            "rate_limit_event" => rate_limit(&v),
            "result" => self.result(&v),
            _ => Vec::new(),
        }
    }

    fn system(&mut self, v: &Value) -> Vec<AgentEvent> {
        match s(v, "subtype").unwrap_or("") {
            "init" => {
                let mut out = Vec::new();
                if let Some(id) = s(v, "session_id") {
                    self.session = Some(id.to_string());
                    out.push(AgentEvent::Session { id: id.to_string() });
                }
                out.push(pane(
                    PaneKind::Info,
                    format!(
                        "Claude Code {} · {} · permissions: {}",
                        s(v, "claude_code_version").unwrap_or("?"),
                        s(v, "model").unwrap_or("?"),
                        s(v, "permissionMode").unwrap_or("?")
                    ),
                ));
                out
            }
            "api_retry" => vec![pane(
                PaneKind::Error,
                format!(
                    "API {} ({}), retry {}/{} in {} ms",
                    u(v, "error_status"),
                    s(v, "error").unwrap_or("error"),
                    u(v, "attempt"),
                    u(v, "max_retries"),
                    u(v, "retry_delay_ms")
                ),
            )],
            "permission_denied" => {
                let tool = s(v, "tool_name").unwrap_or("?").to_string();
                let subject = s(v, "tool_use_id")
                    .and_then(|id| self.tool_subjects.get(id).cloned())
                    .unwrap_or_default();
                vec![
                    pane(PaneKind::Error, format!("✗ {tool} refused: {subject}")),
                    AgentEvent::Permission(Permission {
                        kind: PermissionKind::Denied,
                        tool,
                        subject,
                        reason: s(v, "message").map(str::to_string),
                    }),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn stream_event(&mut self, v: &Value) -> Vec<AgentEvent> {
        self.partial_messages = true;
        let Some(ev) = v.get("event") else {
            return Vec::new();
        };
        match s(ev, "type").unwrap_or("") {
            "message_start" => {
                let msg = ev.get("message").cloned().unwrap_or_default();
                let id = s(&msg, "id").unwrap_or("").to_string();
                let t = msg.get("usage").map(tokens_of).unwrap_or_default();
                self.started.insert(id, t);
                Vec::new()
            }
            "message_delta" => {
                let id = s(v, "api_message_id").unwrap_or("").to_string();
                let mut t = self.started.remove(&id).unwrap_or_default();
                if let Some(usage) = ev.get("usage") {
                    // The delta's counts are the message's final ones; absent fields keep
                    // what message_start said.
                    let d = tokens_of(usage);
                    let pick = |new: u64, old: u64, key: &str| {
                        if usage.get(key).is_some() { new } else { old }
                    };
                    t = Tokens {
                        input: pick(d.input, t.input, "input_tokens"),
                        cache_read: pick(d.cache_read, t.cache_read, "cache_read_input_tokens"),
                        cache_write: pick(
                            d.cache_write,
                            t.cache_write,
                            "cache_creation_input_tokens",
                        ),
                        output: pick(d.output, t.output, "output_tokens"),
                    };
                }
                self.counted.insert(id);
                vec![self.usage(t)]
            }
            _ => Vec::new(),
        }
    }

    fn assistant(&mut self, v: &Value) -> Vec<AgentEvent> {
        let msg = v.get("message").cloned().unwrap_or_default();
        let mut out = Vec::new();
        let is_error = v.get("error").is_some();
        for block in msg
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match s(block, "type").unwrap_or("") {
                "text" => {
                    let text = s(block, "text").unwrap_or("").to_string();
                    let kind = if is_error {
                        PaneKind::Error
                    } else {
                        PaneKind::Assistant
                    };
                    for l in text.lines().filter(|l| !l.trim().is_empty()) {
                        out.push(pane(kind, l));
                    }
                    if !is_error {
                        self.last_text = Some(text);
                    }
                }
                "tool_use" => {
                    let name = s(block, "name").unwrap_or("?");
                    let input = block.get("input").cloned().unwrap_or_default();
                    let subject = subject_of(&input);
                    if let Some(id) = s(block, "id") {
                        self.tool_subjects.insert(id.to_string(), subject.clone());
                    }
                    out.push(pane(PaneKind::ToolCall, format!("→ {name} {subject}")));
                }
                _ => {}
            }
        }
        // Without --include-partial-messages the per-block usage is all there is: count each
        // message once (its output count is a placeholder; the result settles it).
        let id = s(&msg, "id").unwrap_or("").to_string();
        if !self.partial_messages
            && !is_error
            && !id.is_empty()
            && let Some(usage) = msg.get("usage")
            && self.counted.insert(id)
        {
            out.push(self.usage(tokens_of(usage)));
        }
        out
    }

    fn result(&mut self, v: &Value) -> Vec<AgentEvent> {
        let mut out = Vec::new();
        let session = s(v, "session_id")
            .map(str::to_string)
            .or(self.session.clone());
        if let Some(cost) = v.get("total_cost_usd").and_then(Value::as_f64) {
            out.push(AgentEvent::Total {
                tokens: v.get("usage").map(tokens_of),
                cost_usd: cost,
            });
        }
        let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
        let text = s(v, "result").map(str::to_string);
        let failure = is_error.then(|| failure_of(v, text.as_deref().unwrap_or("")));
        if let Some(limit) = is_error
            .then(|| limit_of(v, text.as_deref().unwrap_or("")))
            .flatten()
        {
            out.push(AgentEvent::Limit(limit));
        }
        let denials = v
            .get("permission_denials")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|d| Permission {
                kind: PermissionKind::Denied,
                tool: s(d, "tool_name").unwrap_or("?").to_string(),
                subject: d.get("tool_input").map(subject_of).unwrap_or_default(),
                reason: None,
            })
            .collect::<Vec<_>>();
        let summary = match &failure {
            Some(f) => format!("✗ {} — {}", f.words(), short(&f.detail, 200)),
            None if !denials.is_empty() => {
                format!(
                    "■ done, but {} tool call(s) were refused (no permission)",
                    denials.len()
                )
            }
            None => "■ done".to_string(),
        };
        out.push(pane(
            if failure.is_some() {
                PaneKind::Error
            } else {
                PaneKind::Info
            },
            summary,
        ));
        out.push(AgentEvent::TurnEnd(TurnEnd {
            ok: !is_error,
            last_message: if is_error {
                self.last_text.clone()
            } else {
                text
            },
            session_id: session,
            transcript_path: None,
            failure,
            denials,
        }));
        out
    }
}

fn user(v: &Value) -> Vec<AgentEvent> {
    let content = v.pointer("/message/content").and_then(Value::as_array);
    let mut out = Vec::new();
    for block in content.into_iter().flatten() {
        if s(block, "type") != Some("tool_result") {
            continue;
        }
        let text = match block.get("content") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| s(p, "text"))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        let err = block
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        out.push(pane(
            if err {
                PaneKind::Error
            } else {
                PaneKind::ToolResult
            },
            format!("← {}", short(&text, 200)),
        ));
    }
    out
}

/// The failure a `result` with `is_error` describes.
fn failure_of(v: &Value, text: &str) -> Failure {
    let status = v
        .get("api_error_status")
        .and_then(Value::as_u64)
        .map(|n| n as u16);
    let kind = match (s(v, "subtype").unwrap_or(""), status) {
        ("error_max_turns", _) => FailureKind::MaxTurns,
        ("error_max_budget_usd", _) => FailureKind::MaxBudget,
        (_, Some(st @ (401 | 403))) => FailureKind::Auth { status: Some(st) },
        (_, Some(st)) => FailureKind::Api { status: st },
        _ if text.contains("authenticate") => FailureKind::Auth { status: None },
        _ => FailureKind::Other,
    };
    let errors = v
        .get("errors")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    Failure {
        kind,
        detail: if text.is_empty() {
            errors
        } else {
            text.to_string()
        },
    }
}

/// A 429 is a limit: a usage limit when the API says `rate_limit_error` or the text says so,
/// else a rate limit that outlasted the agent's retries.
fn limit_of(v: &Value, text: &str) -> Option<Limit> {
    if v.get("api_error_status").and_then(Value::as_u64) != Some(429) {
        return None;
    }
    let usage = s(v, "api_error_type") == Some("rate_limit_error")
        || text.contains("usage limit")
        || text.contains("limit reached");
    Some(Limit {
        kind: if usage {
            LimitKind::Usage
        } else {
            LimitKind::Rate
        },
        resets: reset_in_text(text),
        text: text.to_string(),
    })
}

/// Claude's legacy "...limit reached|1771390800" carries the reset as epoch seconds.
fn reset_in_text(text: &str) -> Option<Reset> {
    let (_, tail) = text.rsplit_once('|')?;
    let n: i64 = tail.trim().parse().ok()?;
    Some(Reset::At {
        epoch_s: epoch_seconds(n),
    })
}

/// `resetsAt` is seconds in real captures and milliseconds in some docs: accept both.
fn epoch_seconds(n: i64) -> i64 {
    if n > 100_000_000_000 { n / 1000 } else { n }
}

fn rate_limit(v: &Value) -> Vec<AgentEvent> {
    let Some(info) = v.get("rate_limit_info") else {
        return Vec::new();
    };
    let kind = match s(info, "status").unwrap_or("") {
        "rejected" => LimitKind::Usage,
        "allowed_warning" => LimitKind::Warning,
        _ => return Vec::new(),
    };
    let resets = info
        .get("resetsAt")
        .and_then(Value::as_i64)
        .map(|n| Reset::At {
            epoch_s: epoch_seconds(n),
        });
    let text = format!(
        "{} limit {}",
        s(info, "rateLimitType").unwrap_or("usage"),
        if kind == LimitKind::Usage {
            "reached"
        } else {
            "nearly reached"
        }
    );
    vec![AgentEvent::Limit(Limit { kind, resets, text })]
}

/// Spend recorded in an interactive session's transcript (the `transcript_path` its hooks
/// name): each API message once, by `message.id`, with the largest counts seen for it (the
/// transcript, like the stream, repeats a message per content block).
pub fn transcript_tokens(transcript: &str) -> Tokens {
    let mut per_message: HashMap<String, Tokens> = HashMap::new();
    for line in transcript.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if s(&v, "type") != Some("assistant") {
            continue;
        }
        let Some(msg) = v.get("message") else {
            continue;
        };
        let (Some(id), Some(usage)) = (s(msg, "id"), msg.get("usage")) else {
            continue;
        };
        let t = tokens_of(usage);
        let e = per_message.entry(id.to_string()).or_default();
        *e = Tokens {
            input: e.input.max(t.input),
            cache_read: e.cache_read.max(t.cache_read),
            cache_write: e.cache_write.max(t.cache_write),
            output: e.output.max(t.output),
        };
    }
    per_message
        .values()
        .fold(Tokens::default(), |a, t| a.add(t))
}
