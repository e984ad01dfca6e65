//! One `[[task]]` table: its keys, its prompt or spec, its defaults.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{
    Budget, Defaults, TASK_KEYS, TaskSpec, agent_name, content_hash, max_attempts, parse_budget,
};
use crate::core::diag::Sink;

/// Whether `id` is usable as a task id (it also names the git branch `orch/<id>`).
pub fn valid_task_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A parsed task plus the positions the cross-task checks point at.
pub(super) struct RawTask {
    pub(super) spec: TaskSpec,
    pub(super) id_span: Range<usize>,
    pub(super) deps: Vec<(String, Range<usize>)>,
}

/// One `[[task]]`. Returns the task (even with errors, so cross-task checks still see its id)
/// or `None` when it has no usable id.
pub(super) fn parse_task(
    sink: &mut Sink<'_>,
    item: &Spanned<DeValue<'_>>,
    defaults: &Defaults,
    specs: &dyn Fn(&str) -> Result<String, String>,
) -> Option<RawTask> {
    let header = item.span();
    let t = sink.table(item, "each [[task]]", "[[task]]\nid = \"extract-client\"")?;
    let (id, id_span) = match t.get("id") {
        Some(v) => {
            let id = sink.string(v, "task id", "id = \"extract-client\"")?;
            if !valid_task_id(&id) {
                sink.error(
                    &v.span(),
                    format!("bad task id `{id}`"),
                    "ids use 1 to 64 of a-z, 0-9 and '-', not starting with '-', e.g. id = \"extract-client\"",
                );
            }
            (id, v.span())
        }
        None => {
            sink.error(
                &header,
                "task has no id",
                "add id = \"some-name\" (a-z, 0-9 and '-', unique in the plan)",
            );
            return None;
        }
    };
    let place = format!("task `{id}`");
    sink.check_keys(t, TASK_KEYS, &place);

    let mut task = TaskSpec {
        id: id.clone(),
        line: sink.line(&header),
        priority: defaults.priority,
        max_attempts: defaults.max_attempts,
        ..TaskSpec::default()
    };
    if let Some((a, line)) = &defaults.agent {
        task.agent = Some(a.clone());
        task.agent_line = *line;
    }

    match t.get("title") {
        Some(v) => {
            if let Some(s) = sink.string(
                v,
                &format!("title of {place}"),
                "title = \"Extract the HTTP client\"",
            ) {
                if s.trim().is_empty() {
                    sink.error(
                        &v.span(),
                        format!("{place} has an empty title"),
                        "write a one-line title saying what the task does",
                    );
                } else if let Some(why) = impossible_text(&s) {
                    sink.error(
                        &v.span(),
                        format!("the title of {place} {why}"),
                        "a title is one line of text: remove the control characters",
                    );
                }
                task.title = s;
            }
        }
        None => sink.error(
            &header,
            format!("{place} has no title"),
            "add title = \"...\": one line saying what the task does",
        ),
    }

    read_prompt(sink, t, &header, &place, specs, &mut task);

    let mut deps = Vec::new();
    if let Some(v) = t.get("depends_on")
        && let Some(DeValue::Array(items)) = sink
            .strings(
                v,
                &format!("depends_on of {place}"),
                "depends_on = [\"other-task\"]",
            )
            .map(|_| v.get_ref())
    {
        for item in items.iter() {
            if let DeValue::String(s) = item.get_ref() {
                // Listing a dependency twice is harmless; keep one.
                if !task.depends_on.iter().any(|d| d == s.as_ref()) {
                    task.depends_on.push(s.to_string());
                    deps.push((s.to_string(), item.span()));
                }
            }
        }
    }
    if let Some(v) = t.get("capabilities") {
        task.capabilities = sink
            .strings(
                v,
                &format!("capabilities of {place}"),
                "capabilities = [\"rust\"]",
            )
            .unwrap_or_default();
    }
    if let Some(v) = t.get("checks") {
        let checks = sink
            .strings(
                v,
                &format!("checks of {place}"),
                "checks = [\"cargo test -q\"]",
            )
            .unwrap_or_default();
        if checks.iter().any(|c| c.trim().is_empty()) {
            sink.error(
                &v.span(),
                format!("{place} has an empty check"),
                "each check is a command line, e.g. \"cargo test -q\"; remove the empty one",
            );
        } else if checks.iter().any(|c| c.contains('\0')) {
            sink.error(
                &v.span(),
                format!("a check of {place} holds a NUL byte, which no shell can run"),
                "remove the \\u0000 from the command",
            );
        }
        task.checks = checks;
    }
    if let Some(v) = t.get("priority") {
        task.priority = sink
            .integer(v, &format!("priority of {place}"), "priority = 5")
            .unwrap_or(0);
    }
    if let Some(v) = t.get("agent") {
        task.agent = agent_name(sink, v, &format!("agent of {place}"));
        task.agent_line = if task.agent.is_some() {
            sink.line(&v.span())
        } else {
            0
        };
    }
    if let Some(v) = t.get("max_attempts") {
        task.max_attempts = max_attempts(sink, v, &format!("max_attempts of {place}"));
    }
    let own_budget = match t.get("budget") {
        Some(v) => parse_budget(sink, v, &format!("budget of {place}")).unwrap_or_default(),
        None => Budget::default(),
    };
    task.budget = own_budget.or(&defaults.budget);
    if let Some(v) = t.get("risk") {
        match sink
            .string(v, &format!("risk of {place}"), "risk = \"high\"")
            .as_deref()
        {
            Some("low") => task.risk_high = false,
            Some("high") => task.risk_high = true,
            Some(other) => sink.error(
                &v.span(),
                format!("risk of {place} is `{other}`"),
                "risk is \"low\" (the default) or \"high\"",
            ),
            None => {}
        }
    }
    Some(RawTask {
        spec: task,
        id_span,
        deps,
    })
}

/// Exactly one of `prompt` and `spec`; a spec is read through `specs` and its content becomes
/// the prompt.
fn read_prompt(
    sink: &mut Sink<'_>,
    t: &DeTable<'_>,
    header: &Range<usize>,
    place: &str,
    specs: &dyn Fn(&str) -> Result<String, String>,
    task: &mut TaskSpec,
) {
    match (t.get("prompt"), t.get("spec")) {
        (Some(_), Some(s)) => sink.error(
            &s.span(),
            format!("{place} has both `prompt` and `spec`"),
            "keep one: `prompt` for text inline, `spec` for a file path",
        ),
        (None, None) => sink.error(
            header,
            format!("{place} has neither `prompt` nor `spec`"),
            "add prompt = \"...\" with the instructions, or spec = \"specs/<file>.md\"",
        ),
        (Some(p), None) => {
            if let Some(text) = sink.string(p, &format!("prompt of {place}"), "prompt = \"...\"") {
                if text.trim().is_empty() {
                    sink.error(
                        &p.span(),
                        format!("{place} has an empty prompt"),
                        "write the instructions for the agent, or use spec = \"...\"",
                    );
                } else if text.contains('\0') {
                    sink.error(
                        &p.span(),
                        format!(
                            "the prompt of {place} holds a NUL byte, which no agent can be given"
                        ),
                        "remove the \\u0000 from the prompt",
                    );
                }
                task.content_hash = content_hash(&text);
                task.prompt = text;
            }
        }
        (None, Some(s)) => {
            let Some(path) =
                sink.string(s, &format!("spec of {place}"), "spec = \"specs/task.md\"")
            else {
                return;
            };
            match specs(&path) {
                Ok(text) if text.trim().is_empty() => sink.error(
                    &s.span(),
                    format!("spec file `{path}` of {place} is empty"),
                    "write the task's instructions in it, or use prompt = \"...\"",
                ),
                Ok(text) if text.contains('\0') => sink.error(
                    &s.span(),
                    format!("spec file `{path}` of {place} holds a NUL byte (is it a binary file?)"),
                    "a spec is text for the agent: point `spec` at a text file",
                ),
                Ok(text) => {
                    task.content_hash = content_hash(&text);
                    task.prompt = text;
                }
                Err(why) => sink.error(
                    &s.span(),
                    format!("cannot read spec file `{path}` of {place}: {why}"),
                    "spec paths are relative to the plan file's folder; create the file or fix the path",
                ),
            }
            task.spec_path = Some(path);
        }
    }
}

/// Why text cannot stand in a one-line field (a NUL no process can receive, a line break or
/// other control character that breaks the commit subject), or None.
fn impossible_text(s: &str) -> Option<&'static str> {
    if s.contains('\0') {
        Some("holds a NUL byte")
    } else if s.chars().any(|c| c.is_control() && c != '\t') {
        Some("holds a line break or another control character")
    } else {
        None
    }
}
