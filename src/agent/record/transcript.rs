//! The agent's own record of its conversation: Claude Code and Codex write one as JSONL
//! (Claude under `~/.claude/projects/<cwd>/<session>.jsonl`, Codex under
//! `~/.codex/sessions/Y/M/D/rollout-...-<thread>.jsonl`). Its path comes with Claude's hooks
//! (`transcript_path`) or follows from the first stream event (Claude's `system/init` with
//! `session_id` and `cwd`; Codex's `thread.started`); once found it is linked from the attempt's
//! log folder (`transcript.jsonl`, a symlink) and read as a conversation: messages, tool calls,
//! their results.
//!
//! Facts from Claude Code 2.1.328 and Codex 0.169.0 run against the mock servers
//! (`tests/fixtures/transcripts/`): Claude's project folder is the working directory with every
//! character that is not a letter or digit turned into `-`.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{TEXT_LOG, TRANSCRIPT_LINK};

/// Which CLI wrote a transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    Claude,
    Codex,
}

/// One step of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// What the agent was asked (its prompt, a follow-up, an answer typed by the human).
    User(String),
    Assistant(String),
    /// The model's reasoning summary, when the transcript keeps one.
    Thinking(String),
    ToolCall {
        name: String,
        subject: String,
    },
    ToolResult {
        text: String,
        error: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub writer: Writer,
    pub path: PathBuf,
    pub items: Vec<Item>,
}

/// Where the CLIs keep their transcripts: `$CLAUDE_CONFIG_DIR` or `~/.claude`, and
/// `$CODEX_HOME` or `~/.codex` (this process's environment: the agents inherit it).
#[derive(Debug, Clone)]
pub struct Homes {
    pub claude: PathBuf,
    pub codex: PathBuf,
}

impl Homes {
    pub fn from_env() -> Homes {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        Homes {
            claude: std::env::var_os("CLAUDE_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".claude")),
            codex: std::env::var_os("CODEX_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".codex")),
        }
    }
}

/// Where the attempt's agent wrote its transcript, if it can be told: the link, then what the
/// hooks reported, then the first stream events of the text log. Links it when found.
pub fn locate(log_dir: &Path, homes: &Homes) -> Option<PathBuf> {
    let link = log_dir.join(TRANSCRIPT_LINK);
    if let Ok(target) = std::fs::read_link(&link) {
        return Some(target);
    }
    let found = from_hooks(log_dir).or_else(|| from_stream(log_dir, homes))?;
    // Best effort: a folder that cannot take a link still shows the conversation.
    let _ = std::os::unix::fs::symlink(&found, &link);
    Some(found)
}

/// The last `transcript_path` in the hook log (every Claude hook event carries it).
fn from_hooks(log_dir: &Path) -> Option<PathBuf> {
    let text =
        std::fs::read_to_string(log_dir.join(crate::agent::adapter::claude::HOOKS_LOG)).ok()?;
    text.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        let p = v.get("transcript_path")?.as_str()?;
        Some(PathBuf::from(p)).filter(|p| p.is_file())
    })
}

/// The first stream event naming a session, among the text log's first lines.
fn from_stream(log_dir: &Path, homes: &Homes) -> Option<PathBuf> {
    let lines = super::tail::all_lines(&log_dir.join(TEXT_LOG)).ok()?;
    for raw in lines.take(200) {
        let text = super::text::parse_line(&raw).map_or(raw.clone(), |l| l.text);
        let Some(start) = text.find('{') else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text[start..]) else {
            continue;
        };
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        match (s("type"), s("subtype")) {
            (Some("system"), Some("init")) => {
                let (Some(id), Some(cwd)) = (s("session_id"), s("cwd")) else {
                    continue;
                };
                return Some(claude_path(&homes.claude, id, cwd)).filter(|p| p.is_file());
            }
            (Some("thread.started"), _) => return codex_path(&homes.codex, s("thread_id")?),
            _ => {}
        }
    }
    None
}

/// Claude's transcript of session `id` run in `cwd`, under its config folder `base`.
pub fn claude_path(base: &Path, id: &str, cwd: &str) -> PathBuf {
    let folder: String = cwd
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    base.join("projects")
        .join(folder)
        .join(format!("{id}.jsonl"))
}

/// Codex's rollout of thread `id` under its home `base`: the newest day folders first.
pub fn codex_path(base: &Path, id: &str) -> Option<PathBuf> {
    let base = base.join("sessions");
    let suffix = format!("-{id}.jsonl");
    let sorted = |p: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v.reverse();
        v
    };
    for year in sorted(&base) {
        for month in sorted(&year) {
            for day in sorted(&month) {
                if let Some(f) = sorted(&day).into_iter().find(|f| {
                    f.file_name()
                        .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
                }) {
                    return Some(f);
                }
            }
        }
    }
    None
}

/// Transcripts larger than this are read from their end (the latest turns).
pub const READ_LIMIT: u64 = 4 * 1024 * 1024;

/// Reads a transcript (either CLI's format, told apart by its lines); of a very long one, the
/// last [`READ_LIMIT`] bytes.
pub fn read(path: &Path) -> io::Result<Conversation> {
    let lines = super::tail::Tail::new(path, READ_LIMIT)
        .poll(READ_LIMIT)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let text = lines.join("\n");
    let mut writer = None;
    let mut items = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v.get("payload").is_some() {
            writer.get_or_insert(Writer::Codex);
            codex_line(&v, &mut items);
        } else if v.get("message").is_some() || v.get("sessionId").is_some() {
            writer.get_or_insert(Writer::Claude);
            claude_line(&v, &mut items);
        }
    }
    let writer = writer.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a Claude Code or Codex transcript", path.display()),
        )
    })?;
    Ok(Conversation {
        writer,
        path: path.to_path_buf(),
        items,
    })
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// What a tool call is about: its file, command or pattern.
fn subject(input: &Value) -> String {
    for k in [
        "file_path",
        "command",
        "cmd",
        "path",
        "pattern",
        "url",
        "description",
    ] {
        if let Some(s) = input.get(k).and_then(Value::as_str) {
            return s.to_string();
        }
    }
    match input {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// Text of a content value: a string, or the text parts of an array.
fn text_of(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn claude_line(v: &Value, items: &mut Vec<Item>) {
    let kind = str_of(v, "type");
    if kind != "user" && kind != "assistant" {
        return;
    }
    let Some(content) = v.pointer("/message/content") else {
        return;
    };
    if let Value::String(s) = content {
        items.push(if kind == "user" {
            Item::User(s.clone())
        } else {
            Item::Assistant(s.clone())
        });
        return;
    }
    for block in content.as_array().into_iter().flatten() {
        match block.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                let t = str_of(block, "text");
                // Claude's own reminders to itself are not the conversation.
                if t.starts_with("<system-reminder>") {
                    continue;
                }
                items.push(if kind == "user" {
                    Item::User(t)
                } else {
                    Item::Assistant(t)
                });
            }
            "thinking" => items.push(Item::Thinking(str_of(block, "thinking"))),
            "tool_use" => items.push(Item::ToolCall {
                name: str_of(block, "name"),
                subject: subject(block.get("input").unwrap_or(&Value::Null)),
            }),
            "tool_result" => items.push(Item::ToolResult {
                text: text_of(block.get("content").unwrap_or(&Value::Null)),
                error: block.get("is_error").and_then(Value::as_bool) == Some(true),
            }),
            _ => {}
        }
    }
}

fn codex_line(v: &Value, items: &mut Vec<Item>) {
    if str_of(v, "type") != "response_item" {
        return;
    }
    let Some(p) = v.get("payload") else {
        return;
    };
    match p.get("type").and_then(Value::as_str).unwrap_or("") {
        "message" => {
            let text = text_of(p.get("content").unwrap_or(&Value::Null));
            match p.get("role").and_then(Value::as_str) {
                Some("user") if !text.starts_with("<environment_context>") => {
                    items.push(Item::User(text))
                }
                Some("assistant") => items.push(Item::Assistant(text)),
                _ => {}
            }
        }
        "reasoning" => {
            let t = text_of(p.get("summary").unwrap_or(&Value::Null));
            if !t.is_empty() {
                items.push(Item::Thinking(t));
            }
        }
        "function_call" | "custom_tool_call" | "local_shell_call" => {
            let input = p
                .get("arguments")
                .and_then(Value::as_str)
                .and_then(|a| serde_json::from_str::<Value>(a).ok())
                .or_else(|| p.get("input").cloned())
                .or_else(|| p.get("action").cloned())
                .unwrap_or(Value::Null);
            items.push(Item::ToolCall {
                name: str_of(p, "name"),
                subject: subject(&input),
            });
        }
        "function_call_output" | "custom_tool_call_output" | "local_shell_call_output" => {
            let out = p.get("output").unwrap_or(&Value::Null);
            let text = match out {
                // Older Codex wraps the output as JSON text with an `output` field.
                Value::String(s) => serde_json::from_str::<Value>(s)
                    .ok()
                    .and_then(|j| j.get("output").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| s.clone()),
                v => text_of(v),
            };
            items.push(Item::ToolResult { text, error: false });
        }
        _ => {}
    }
}

/// The conversation as lines to read: a role mark, then the text (tool results cut to their
/// first lines).
pub fn render(c: &Conversation) -> Vec<(ItemKind, String)> {
    let agent = match c.writer {
        Writer::Claude => "claude",
        Writer::Codex => "codex",
    };
    let mut out = Vec::new();
    for item in &c.items {
        match item {
            Item::User(t) => push_text(&mut out, ItemKind::User, "you › ", t, usize::MAX),
            Item::Assistant(t) => push_text(
                &mut out,
                ItemKind::Assistant,
                &format!("{agent} › "),
                t,
                usize::MAX,
            ),
            Item::Thinking(t) => push_text(&mut out, ItemKind::Thinking, "  (thinking) ", t, 3),
            Item::ToolCall { name, subject } => {
                let subject = subject.lines().next().unwrap_or("");
                out.push((ItemKind::Tool, format!("  → {name} {subject}")));
            }
            Item::ToolResult { text, error } => {
                let kind = if *error {
                    ItemKind::Error
                } else {
                    ItemKind::Tool
                };
                push_text(&mut out, kind, "  ← ", text, 4);
            }
        }
    }
    out
}

/// How a rendered line reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    User,
    Assistant,
    Thinking,
    Tool,
    Error,
}

fn push_text(
    out: &mut Vec<(ItemKind, String)>,
    kind: ItemKind,
    lead: &str,
    text: &str,
    max: usize,
) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let pad = " ".repeat(lead.chars().count());
    for (i, l) in lines.iter().take(max).enumerate() {
        out.push((kind, format!("{}{l}", if i == 0 { lead } else { &pad })));
    }
    if lines.len() > max {
        out.push((kind, format!("{pad}… {} more lines", lines.len() - max)));
    }
    if lines.is_empty() {
        out.push((kind, lead.trim_end().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_folders_are_the_cwd_with_every_other_character_a_dash() {
        let p = claude_path(Path::new("/h/.claude"), "abc", "/tmp/cl/work.d_x");
        assert_eq!(
            p,
            Path::new("/h/.claude/projects/-tmp-cl-work-d-x/abc.jsonl")
        );
    }
}
