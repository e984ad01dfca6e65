//! Adapters: what orch-tui knows about each kind of agent CLI (DESIGN §6), one module each
//! behind [`AgentKind`]:
//! - how to start it, headless or interactive, from the profile's argv ([`launch`]): the
//!   placeholders filled in one pass, a large prompt kept out of the argument list, and the
//!   per-attempt files the CLI needs (Claude's `--settings` with hooks);
//! - how to read what it prints into [`AgentEvent`]s ([`AgentKind::parser`]);
//! - how its screen says that it waits, works, is idle or limited (`assets/screen-rules/`).
//!
//! The engine calls [`launch`] in its setup job (`engine/jobs.rs`), feeds
//! every chunk the agent prints to the attempt's [`EventParser`], and classifies the screen of
//! interactive agents with [`crate::core::screen_rules`].

pub mod aider;
pub mod claude;
pub mod codex;
pub mod generic;
pub mod pause;
pub mod sim;

use std::path::{Path, PathBuf};

use crate::core::agent_event::{AgentEvent, Price};
use crate::core::config::{Adapter, AgentMode, AgentProfile};

/// The longest argument orch-tui passes. Linux refuses any single argument over 128 KiB
/// (MAX_ARG_STRLEN) with E2BIG, which a PTY spawn reports as the child dying at exec.
pub const MAX_ARG_BYTES: usize = 100 * 1024;

/// Everything a launch may substitute or write, for one attempt.
#[derive(Debug, Clone)]
pub struct LaunchContext<'a> {
    pub prompt: &'a str,
    /// Already written, holding `prompt`.
    pub prompt_file: &'a Path,
    pub task: &'a str,
    pub worktree: &'a Path,
    /// This binary, for `{orch}` and for hooks that call `orch-tui hook ...`.
    pub orch_bin: &'a Path,
    /// The attempt's log folder: per-attempt files (Claude's settings) are written here,
    /// never into the user's own configuration.
    pub attempt_dir: &'a Path,
    /// The agent's conversation to continue (an earlier attempt's `AgentEvent::Session`).
    pub resume: Option<&'a str>,
    /// What the task may still spend, for agents that stop themselves at a budget (Claude's
    /// `--max-budget-usd`, headless).
    pub max_budget_usd: Option<f64>,
}

/// How to start the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub argv: Vec<String>,
    /// Added to the agent's environment (after the profile's own `env`).
    pub env: Vec<(String, String)>,
    /// Files written for this attempt (already on disk).
    pub files: Vec<PathBuf>,
    /// Text to type into an interactive agent once its prompt is up (bracketed paste, then
    /// Enter on its own), when the argv does not carry the prompt.
    pub paste: Option<String>,
    /// True when the prompt was too large for an argument and went by file instead.
    pub prompt_by_file: bool,
}

/// Reads one agent's output as it arrives. Bytes are what the PTY gave (lines end in `\r\n`,
/// chunks end anywhere); only complete lines produce events until [`EventParser::finish`].
pub trait EventParser: Send {
    fn feed(&mut self, bytes: &[u8]) -> Vec<AgentEvent>;
    /// The output ended: the last, unterminated line too.
    fn finish(&mut self) -> Vec<AgentEvent>;
}

/// Options every parser takes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParserOptions {
    pub mode: AgentMode,
    /// The profile's prices, for live cost where the agent prints none.
    pub price: Option<Price>,
}

/// One kind of agent CLI.
pub trait AgentKind: Sync {
    fn adapter(&self) -> Adapter;

    /// What replaces `{prompt}` when the prompt is too long for an argument, or an error that
    /// says what to change. `arg_before` is the argument just before the one holding it (aider
    /// swaps `--message` for `--message-file`).
    fn large_prompt(&self, ctx: &LaunchContext<'_>) -> Result<String, String> {
        let _ = ctx;
        Err(format!(
            "the prompt is over {} KiB, too long for a command-line argument; put {{prompt_file}} \
             in the profile's command instead of {{prompt}} (the program reads the file)",
            MAX_ARG_BYTES / 1024
        ))
    }

    /// Changes to the expanded argv and files to write for this attempt (Claude's hooks).
    fn prepare(
        &self,
        ctx: &LaunchContext<'_>,
        mode: AgentMode,
        launch: &mut Launch,
    ) -> Result<(), String> {
        let _ = (ctx, mode, launch);
        Ok(())
    }

    /// The argv that continues conversation `session` instead of starting a new one.
    fn resume(&self, argv: &mut Vec<String>, session: &str) {
        let _ = (argv, session);
    }

    fn parser(&self, opts: ParserOptions) -> Box<dyn EventParser>;

    /// An offline self-test for `orch-tui doctor`: run the program with these arguments and
    /// expect each listed flag in what it prints (the flags orch-tui passes it).
    fn flag_checks(&self) -> &'static [FlagCheck] {
        &[]
    }

    /// This adapter's built-in screen rules (TOML, see `core::screen_rules`).
    fn screen_rules(&self) -> &'static str;

    /// How its interactive session is asked to end before any signal (`None`: it is only
    /// signalled: TERM, grace, KILL).
    fn stop_keys(&self) -> Option<StopKeys> {
        None
    }
}

/// An interactive session's own way out: its interrupt ends the turn under way, its clear key
/// empties the input box (an interrupted turn puts its prompt back there: measured with Claude
/// 2.1.328, an exit command typed after it was sent as part of that prompt), then its exit
/// command is typed (Enter sent apart), and it is given a grace to end by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopKeys {
    pub interrupt: &'static [u8],
    pub clear: &'static [u8],
    pub exit: &'static str,
}

/// The stop keys of a profile's agent when it runs as an interactive session.
pub fn stop_keys_for(profile: &AgentProfile) -> Option<StopKeys> {
    if profile.mode != AgentMode::Interactive {
        return None;
    }
    kind(profile.adapter).stop_keys()
}

/// `args` run against the profile's program must print every one of `flags`.
#[derive(Debug, Clone, Copy)]
pub struct FlagCheck {
    pub args: &'static [&'static str],
    pub flags: &'static [&'static str],
}

/// The adapter module for a profile's `adapter`.
pub fn kind(adapter: Adapter) -> &'static dyn AgentKind {
    match adapter {
        Adapter::Claude => &claude::Claude,
        Adapter::Codex => &codex::Codex,
        Adapter::Aider => &aider::Aider,
        Adapter::Generic => &generic::Generic,
        Adapter::Sim => &sim::Sim,
    }
}

/// The parser for an attempt of `profile`.
pub fn parser_for(profile: &AgentProfile) -> Box<dyn EventParser> {
    kind(profile.adapter).parser(ParserOptions {
        mode: profile.mode,
        price: profile.price,
    })
}

/// How to start `profile`'s agent for one attempt: its argv for the profile's mode with every
/// placeholder filled in one pass, the adapter's changes, per-attempt files written.
pub fn launch(profile: &AgentProfile, ctx: &LaunchContext<'_>) -> Result<Launch, String> {
    let mode = profile.mode;
    let template = match mode {
        AgentMode::Headless => &profile.command,
        AgentMode::Interactive => &profile.interactive,
    };
    if template.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(format!(
            "agent profile `{}` has no {} command; add `{}` to [agents.{}]",
            profile.name,
            mode.as_str(),
            if mode == AgentMode::Headless {
                "command"
            } else {
                "interactive"
            },
            profile.name
        ));
    }
    let agent = kind(profile.adapter);
    let carries_prompt = template
        .iter()
        .any(|a| a.contains("{prompt}") || a.contains("{prompt_file}"));
    let mut prompt_by_file = false;
    let mut argv = Vec::with_capacity(template.len());
    for arg in template {
        let mut expanded = expand(arg, ctx, ctx.prompt);
        if expanded.len() > MAX_ARG_BYTES && arg.contains("{prompt}") {
            let instead = agent.large_prompt(ctx)?;
            if instead == ctx.prompt_file.to_string_lossy() {
                // aider: `--message {prompt}` becomes `--message-file FILE`.
                if let Some(prev) = argv.last_mut()
                    && (*prev == "--message" || *prev == "-m" || *prev == "--msg")
                {
                    *prev = "--message-file".to_string();
                }
            }
            expanded = expand(arg, ctx, &instead);
            prompt_by_file = true;
        }
        if expanded.len() > MAX_ARG_BYTES {
            return Err(format!(
                "an argument of agent profile `{}` is {} KiB after its placeholders are filled in, \
                 over the {} KiB orch-tui passes; shorten it or pass a file",
                profile.name,
                expanded.len() / 1024,
                MAX_ARG_BYTES / 1024
            ));
        }
        argv.push(expanded);
    }
    if let Some(session) = ctx.resume {
        agent.resume(&mut argv, session);
    }
    let mut out = Launch {
        argv,
        env: Vec::new(),
        files: Vec::new(),
        paste: (mode == AgentMode::Interactive && !carries_prompt).then(|| ctx.prompt.to_string()),
        prompt_by_file,
    };
    agent.prepare(ctx, mode, &mut out)?;
    Ok(out)
}

/// Fills the placeholders of one argument in a single left-to-right pass: text that came from
/// a placeholder (the prompt) is never scanned again, so a `{task}` written inside a prompt
/// stays as written. Braces that are not a known placeholder are kept (JSON arguments).
pub fn expand(arg: &str, ctx: &LaunchContext<'_>, prompt: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let v = match &after[..close] {
                "prompt" => prompt.to_string(),
                "prompt_file" => ctx.prompt_file.to_string_lossy().into_owned(),
                "task" => ctx.task.to_string(),
                "worktree" => ctx.worktree.to_string_lossy().into_owned(),
                "orch" => ctx.orch_bin.to_string_lossy().into_owned(),
                _ => return None,
            };
            Some((v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a byte stream into lines: `\n` ends a line, a `\r` before it (the terminal's line
/// discipline adds one) is dropped, invalid UTF-8 is replaced. Shared by the parsers.
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
}

/// A line longer than this is cut (a runaway line must not hold memory without bound).
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

impl LineBuffer {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                lines.push(self.take());
            } else if self.partial.len() < MAX_LINE_BYTES {
                self.partial.push(b);
            }
        }
        lines
    }

    /// The unterminated rest, if any.
    pub fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut line = std::mem::take(&mut self.partial);
        while line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8_lossy(&line).into_owned()
    }
}

/// A parser from a per-line function: the JSON adapters' common shape.
pub(crate) struct LineParser<F: FnMut(&str) -> Vec<AgentEvent> + Send> {
    lines: LineBuffer,
    on_line: F,
}

impl<F: FnMut(&str) -> Vec<AgentEvent> + Send> LineParser<F> {
    pub(crate) fn new(on_line: F) -> Self {
        LineParser {
            lines: LineBuffer::default(),
            on_line,
        }
    }
}

impl<F: FnMut(&str) -> Vec<AgentEvent> + Send> EventParser for LineParser<F> {
    fn feed(&mut self, bytes: &[u8]) -> Vec<AgentEvent> {
        let lines = self.lines.push(bytes);
        lines.iter().flat_map(|l| (self.on_line)(l)).collect()
    }

    fn finish(&mut self) -> Vec<AgentEvent> {
        match self.lines.finish() {
            Some(l) => (self.on_line)(&l),
            None => Vec::new(),
        }
    }
}

/// A parser that recognises nothing (generic agents, interactive TUIs read by screen rules).
pub(crate) struct Silent;

impl EventParser for Silent {
    fn feed(&mut self, _: &[u8]) -> Vec<AgentEvent> {
        Vec::new()
    }
    fn finish(&mut self) -> Vec<AgentEvent> {
        Vec::new()
    }
}

/// Removes terminal escape sequences (CSI, OSC, two-byte ESC) from a line of text output.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            if !c.is_control() || c == '\t' {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // Up to BEL or ST (ESC \).
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' {
                        chars.next();
                        break;
                    }
                }
            }
            // ESC, intermediates (charset designations such as `ESC ( B`), one final byte.
            Some(c) if (' '..='/').contains(&c) => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

/// Shell-quotes one word for a hook command line (Claude runs hook commands through a shell).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests;
