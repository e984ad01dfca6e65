//! What an agent's hook says about its state — the first layer of detection (DESIGN §6): Claude
//! Code's hook events (from the per-attempt `--settings` file), Codex's `notify`, aider's
//! `--notifications-command`, each turned into the state it shows and the rule that says so.

use serde_json::Value;

use crate::core::domain::Substatus;

/// One hook call, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookReport {
    /// The hook's name (`Stop`, `Notification`, `agent-turn-complete`, ...).
    pub hook: String,
    /// The state it shows, when it shows one.
    pub substatus: Option<Substatus>,
    /// What waits for the human (a question, a permission), or the turn's last message.
    pub question: Option<String>,
    /// The rule that fired, for `explain` ("hook:Stop", "hook:Notification permission_prompt").
    pub rule: String,
    pub session: Option<String>,
    /// The conversation's transcript (interactive spend is read from it).
    pub transcript: Option<String>,
    /// A permission request: the tool and what it concerns.
    pub tool: Option<String>,
    pub subject: Option<String>,
}

impl HookReport {
    /// A permission request the hook can answer (Claude's PermissionRequest).
    pub fn is_permission_request(&self) -> bool {
        self.hook == "PermissionRequest"
    }

    /// Whether its text is only the agent's generic notice ("Claude needs your permission",
    /// "Claude is waiting for your input"). Claude sends it some seconds after the
    /// PermissionRequest or Stop that said the same state in detail: it must not replace that
    /// detail, or the inbox stops naming the call the human is asked about.
    pub fn says_only_the_state(&self) -> bool {
        self.hook == "Notification"
    }

    /// The call a PreToolUse announces, worded as the PermissionRequest for it words its
    /// question (`TOOL: subject`). Claude sends PreToolUse and then, when the call needs
    /// permission, PermissionRequest; each runs in a hook process of its own, so their writes
    /// can land in either order, and a PreToolUse landing after the request for its own call
    /// must not end that wait (the inbox would lose the call for the screen's bare prompt).
    pub fn announced_call(&self) -> Option<String> {
        match (self.hook.as_str(), &self.tool) {
            ("PreToolUse", Some(tool)) => Some(format!(
                "{tool}: {}",
                self.subject.as_deref().unwrap_or_default()
            )),
            _ => None,
        }
    }
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A turn that ends in a question waits for an answer; any other ended turn is idle.
pub fn turn_end_state(last: Option<&str>) -> (Substatus, &'static str) {
    let asks = last.is_some_and(|m| {
        m.trim_end()
            .trim_end_matches(['*', '_', '`', ')'])
            .ends_with('?')
    });
    if asks {
        (Substatus::WaitingInput, "ends with a question")
    } else {
        (Substatus::Idle, "turn ended")
    }
}

/// What the tool call is about: its command, file or pattern.
pub fn tool_subject(input: &Value) -> String {
    for key in [
        "command",
        "file_path",
        "path",
        "pattern",
        "url",
        "description",
    ] {
        if let Some(v) = input.get(key).and_then(Value::as_str) {
            return crate::core::agent_event::short_text(v, 300);
        }
    }
    crate::core::agent_event::short_text(&input.to_string(), 300)
}

/// A Claude Code hook's input (its stdin JSON).
pub fn claude(v: &Value) -> HookReport {
    let hook = s(v, "hook_event_name").unwrap_or_else(|| "unknown".into());
    let mut r = HookReport {
        hook: hook.clone(),
        rule: format!("hook:{hook}"),
        session: s(v, "session_id"),
        transcript: s(v, "transcript_path"),
        ..HookReport::default()
    };
    match hook.as_str() {
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" => {
            r.substatus = Some(Substatus::Busy);
            if hook == "PreToolUse" {
                r.tool = s(v, "tool_name");
                r.subject = v.get("tool_input").map(tool_subject);
            }
        }
        "PermissionRequest" => {
            let tool = s(v, "tool_name").unwrap_or_else(|| "?".into());
            let subject = v.get("tool_input").map(tool_subject).unwrap_or_default();
            r.substatus = Some(Substatus::WaitingPermission);
            r.question = Some(format!("{tool}: {subject}"));
            r.tool = Some(tool);
            r.subject = Some(subject);
        }
        "Notification" => {
            let kind = s(v, "notification_type").unwrap_or_default();
            r.rule = format!("hook:Notification {kind}");
            let message = s(v, "message");
            r.substatus = match kind.as_str() {
                "permission_prompt" => Some(Substatus::WaitingPermission),
                "idle_prompt" => Some(Substatus::Idle),
                "elicitation_dialog" => Some(Substatus::WaitingInput),
                _ => None,
            };
            r.question = message;
        }
        "Stop" => {
            let last = s(v, "last_assistant_message");
            let (state, why) = turn_end_state(last.as_deref());
            r.substatus = Some(state);
            r.rule = format!("hook:Stop ({why})");
            r.question = last;
        }
        _ => {}
    }
    r
}

/// Codex's `notify` payload (the last argument; kebab-case keys).
pub fn codex(v: &Value) -> HookReport {
    let kind = s(v, "type").unwrap_or_else(|| "unknown".into());
    let mut r = HookReport {
        hook: kind.clone(),
        rule: format!("notify:{kind}"),
        session: s(v, "thread-id"),
        ..HookReport::default()
    };
    if kind == "agent-turn-complete" {
        let last = s(v, "last-assistant-message");
        let (state, why) = turn_end_state(last.as_deref());
        r.substatus = Some(state);
        r.rule = format!("notify:agent-turn-complete ({why})");
        r.question = last;
    }
    r
}

/// aider's `--notifications-command` (no payload: it waits for input).
pub fn aider() -> HookReport {
    HookReport {
        hook: "notification".into(),
        rule: "aider notifications-command".into(),
        substatus: Some(Substatus::Idle),
        ..HookReport::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claude_hooks_say_what_the_agent_does() {
        let stop = claude(&json!({"hook_event_name": "Stop", "session_id": "s1",
            "last_assistant_message": "Should I also update the docs?"}));
        assert_eq!(stop.substatus, Some(Substatus::WaitingInput));
        assert_eq!(stop.rule, "hook:Stop (ends with a question)");
        assert_eq!(stop.session.as_deref(), Some("s1"));
        let done = claude(&json!({"hook_event_name": "Stop", "last_assistant_message": "Done."}));
        assert_eq!(done.substatus, Some(Substatus::Idle));
        let perm = claude(
            &json!({"hook_event_name": "PermissionRequest", "tool_name": "Bash",
            "tool_input": {"command": "npm install"}}),
        );
        assert!(perm.is_permission_request());
        assert_eq!(perm.question.as_deref(), Some("Bash: npm install"));
        let note = claude(&json!({"hook_event_name": "Notification",
            "notification_type": "permission_prompt", "message": "Claude needs your permission"}));
        assert_eq!(note.substatus, Some(Substatus::WaitingPermission));
        let busy = claude(
            &json!({"hook_event_name": "PreToolUse", "tool_name": "Write",
            "tool_input": {"file_path": "/w/a.txt"}}),
        );
        assert_eq!(busy.substatus, Some(Substatus::Busy));
        assert_eq!(busy.subject.as_deref(), Some("/w/a.txt"));
        assert_eq!(
            claude(&json!({"hook_event_name": "SessionEnd"})).substatus,
            None
        );
    }

    #[test]
    fn codex_turn_complete_is_a_turn_end() {
        let r = codex(&json!({"type": "agent-turn-complete", "thread-id": "t",
            "last-assistant-message": "All done."}));
        assert_eq!(r.substatus, Some(Substatus::Idle));
        assert_eq!(r.session.as_deref(), Some("t"));
    }
}
