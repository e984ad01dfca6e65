//! Tasks made without a plan file (`orch-tui add`) and prompts edited in place (`orch-tui
//! edit`), as pure decisions: what the human typed and the ledger's tasks in, the row to write
//! out — or every problem, each naming the flag it is about.
//!
//! An added task is validated exactly like a plan's: its flags are written as the keys of one
//! `[[task]]` table, one key per line, and go through `plan::parse_task_table`; a diagnostic's
//! line then says which flag it is about. Dependencies are checked against the ledger's tasks.

use std::collections::BTreeMap;

use crate::core::diag::{Diagnostic, closest};
use crate::core::plan::{TaskSpec, content_hash, parse_task_table, valid_task_id};
use crate::core::state::TaskState;

/// What diagnostics of `orch-tui add` name as their file.
pub const ADD: &str = "orch-tui add";

/// A task as the human described it on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub prompt: String,
    /// Default: made from the title.
    pub id: Option<String>,
    /// Default: the prompt's first line.
    pub title: Option<String>,
    /// Ids of tasks that must be merged first.
    pub after: Vec<String>,
    pub agent: Option<String>,
    /// `time=20m,tokens=400000,cost_usd=3`: any of the three keys.
    pub budget: Option<String>,
    pub priority: Option<i64>,
    pub checks: Vec<String>,
}

/// The task `draft` describes, given the ledger's tasks and their states; or every problem.
/// The spec's `line` is 0 (it has no file); `agent_line` is the `--agent` line of
/// [`draft_text`], so config checks on it can be mapped to the flag with [`as_flags`].
pub fn decide_add(
    draft: &Draft,
    existing: &BTreeMap<String, TaskState>,
) -> Result<TaskSpec, Vec<Diagnostic>> {
    let (text, flags) = draft_text(draft, existing);
    let mut diags = Vec::new();
    let spec = match parse_task_table(ADD, &text) {
        Ok(s) => Some(s),
        Err(d) => {
            diags.extend(d);
            None
        }
    };
    let id = spec
        .as_ref()
        .map_or_else(|| new_id(draft, existing), |s| s.id.clone());
    if draft.id.is_some()
        && let Some(state) = existing.get(&id)
    {
        diags.push(flag_error(
            "--id",
            format!("task id `{id}` is taken (that task is {state})"),
            format!("choose another --id, or change that task's prompt with `orch-tui edit {id}`"),
        ));
    }
    let ids: Vec<&str> = existing.keys().map(String::as_str).collect();
    for dep in &draft.after {
        if *dep == id {
            diags.push(flag_error(
                "--after",
                format!("task `{id}` cannot depend on itself"),
                "remove its own id from --after",
            ));
        } else if !existing.contains_key(dep) {
            let hint = match closest(dep, &ids) {
                Some(c) => format!("did you mean `{c}`? `orch-tui status` lists the tasks"),
                None => "--after names tasks already in the ledger; `orch-tui status` lists them"
                    .to_string(),
            };
            diags.push(flag_error(
                "--after",
                format!("unknown dependency `{dep}`"),
                hint,
            ));
        }
    }
    let mut diags = as_flags(diags, &flags);
    diags.dedup();
    match spec {
        Some(s) if diags.is_empty() => Ok(s),
        _ => Err(diags),
    }
}

/// The draft as the keys of one task table, one per line, and the flag each line came from.
pub fn draft_text(
    draft: &Draft,
    existing: &BTreeMap<String, TaskState>,
) -> (String, Vec<&'static str>) {
    let mut text = String::new();
    let mut flags = Vec::new();
    let mut line = |flag: &'static str, key: &str, value: String| {
        text.push_str(&format!("{key} = {value}\n"));
        flags.push(flag);
    };
    line("--id", "id", toml_string(&new_id(draft, existing)));
    line("--title", "title", toml_string(&title_of(draft)));
    line("PROMPT", "prompt", toml_string(&draft.prompt));
    if !draft.after.is_empty() {
        line("--after", "depends_on", toml_strings(&draft.after));
    }
    if let Some(a) = &draft.agent {
        line("--agent", "agent", toml_string(a));
    }
    if let Some(b) = &draft.budget {
        line("--budget", "budget", budget_table(b));
    }
    if let Some(p) = draft.priority {
        line("--priority", "priority", p.to_string());
    }
    if !draft.checks.is_empty() {
        line("--check", "checks", toml_strings(&draft.checks));
    }
    (text, flags)
}

/// Diagnostics of [`draft_text`] retold as being about flags: `orch-tui add: error: --budget:
/// ...`. Ones already about a flag (or about nothing in the text) are kept as they are.
pub fn as_flags(diags: Vec<Diagnostic>, flags: &[&str]) -> Vec<Diagnostic> {
    diags
        .into_iter()
        .map(|d| match d.line.checked_sub(1).and_then(|i| flags.get(i)) {
            Some(flag) => flag_error(flag, d.message, d.hint),
            None => d,
        })
        .collect()
}

/// `d` retold as being about `flag` (config checks of an added task are about its `--agent`).
pub fn about_flag(flag: &str, d: Diagnostic) -> Diagnostic {
    flag_error(flag, d.message, d.hint)
}

fn flag_error(flag: &str, message: impl Into<String>, hint: impl Into<String>) -> Diagnostic {
    Diagnostic::whole_file(ADD, format!("{flag}: {}", message.into()), hint)
}

/// The title: as given, else the prompt's first non-blank line, cut at 72 characters.
pub fn title_of(draft: &Draft) -> String {
    if let Some(t) = &draft.title {
        return t.clone();
    }
    let first = draft
        .prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut title: String = first.chars().take(72).collect();
    if first.chars().count() > 72 {
        title.push('…');
    }
    title
}

/// The id: as given, else the title's first words in `a-z0-9-` (at most 40 characters), with
/// `-2`, `-3`, ... when that id is taken.
pub fn new_id(draft: &Draft, existing: &BTreeMap<String, TaskState>) -> String {
    if let Some(id) = &draft.id {
        return id.clone();
    }
    let mut slug = String::new();
    for word in title_of(draft)
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let longer = if slug.is_empty() {
            word.to_string()
        } else {
            format!("{slug}-{word}")
        };
        if longer.len() > 40 {
            break;
        }
        slug = longer;
    }
    if slug.is_empty() {
        slug = "task".into();
    }
    if !existing.contains_key(&slug) {
        return slug;
    }
    (2..)
        .map(|n| format!("{slug}-{n}"))
        .find(|c| !existing.contains_key(c) && valid_task_id(c))
        .unwrap_or(slug)
}

/// `time=20m,tokens=400000,cost_usd=3` as a TOML inline table. Values that read as numbers stay
/// numbers, anything else becomes a string, so the plan's own checks say what is wrong.
fn budget_table(spec: &str) -> String {
    let mut parts = Vec::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (key.trim(), value.trim());
        let number = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_digit() || "._eE+-".contains(c))
            && value.replace('_', "").parse::<f64>().is_ok();
        let value = if number {
            value.to_string()
        } else {
            toml_string(value)
        };
        parts.push(format!("{} = {value}", toml_string(key)));
    }
    format!("{{ {} }}", parts.join(", "))
}

/// A TOML basic string holding exactly `s`.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\U{:08X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A prompt to write over a task's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptEdit {
    pub task: String,
    /// The state it must still be in when the edit is written.
    pub state: TaskState,
    pub prompt: String,
    pub content_hash: String,
}

/// States whose next attempt has not started yet: an edit reaches it.
pub const EDITABLE: &[TaskState] = &[
    TaskState::Pending,
    TaskState::Paused,
    TaskState::Escalated,
    TaskState::Failed,
    TaskState::Cancelled,
];

/// The edit of task `id` (in `state`, its prompt's hash `old_hash`) to `prompt`; `Ok(None)`
/// when the text is the same; `Err` says why it cannot be done and what to do.
pub fn decide_edit(
    id: &str,
    state: TaskState,
    old_hash: &str,
    prompt: &str,
) -> Result<Option<PromptEdit>, String> {
    if !EDITABLE.contains(&state) {
        let why = match state {
            TaskState::Done => "it is done (merged)".to_string(),
            TaskState::Ready => "it is ready: an agent may take it any moment; \
                                 `orch-tui pause` it first, edit, then `orch-tui resume` it"
                .to_string(),
            s => format!(
                "it is {s}: an attempt is under way; `orch-tui pause` it first (or wait \
                 until it is failed or escalated)"
            ),
        };
        return Err(format!("cannot edit task `{id}`: {why}"));
    }
    if prompt.trim().is_empty() {
        return Err(format!(
            "the new prompt of `{id}` is empty: nothing was changed; write the instructions for \
             the agent"
        ));
    }
    if prompt.contains('\0') {
        return Err(format!(
            "the new prompt of `{id}` holds a NUL byte, which no agent can be given; remove it"
        ));
    }
    let hash = content_hash(prompt);
    if hash == old_hash {
        return Ok(None);
    }
    Ok(Some(PromptEdit {
        task: id.to_string(),
        state,
        prompt: prompt.to_string(),
        content_hash: hash,
    }))
}

#[cfg(test)]
mod tests;
