//! Screen rules: how an interactive agent's screen says that it waits for the human, works, is
//! idle at its prompt or is limited. Data, not code: built-in rules per adapter live in
//! `assets/screen-rules/<adapter>.toml`; a project's config adds or replaces rules by name under
//! `[[screen_rules.<adapter>]]`. Every classification names the rule that fired.
//!
//! Rules are the last layer of detection (hooks and terminal notifications come first, DESIGN
//! §6) and the caller debounces them ([`Debounce`]): a screen is classified many times a second
//! while it redraws, and only a state that holds counts.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};

use crate::core::diag::{Diagnostic, Sink, entries_in_order};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitingFor {
    /// The agent asked something in words.
    Question,
    /// A tool call waits for approval.
    Permission,
    /// A first-run screen: folder trust, API key, login, onboarding.
    FirstRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScreenState {
    Waiting(WaitingFor),
    Working,
    /// At its prompt, the turn over.
    Idle,
    /// A usage or rate limit is on screen.
    Limited,
}

impl ScreenState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScreenState::Waiting(WaitingFor::Question) => "waiting (question)",
            ScreenState::Waiting(WaitingFor::Permission) => "waiting (permission)",
            ScreenState::Waiting(WaitingFor::FirstRun) => "waiting (first-run dialog)",
            ScreenState::Working => "working",
            ScreenState::Idle => "idle",
            ScreenState::Limited => "limited",
        }
    }
}

/// The detection layer a rule listens to: the screen's text (the default), or a terminal
/// signal the PTY reader reports as a fact (`signals.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layer {
    #[default]
    Screen,
    /// The terminal title (OSC 0/2) changed.
    Title,
    /// A desktop notification (OSC 9 or OSC 777).
    Osc,
    /// The bell (BEL).
    Bell,
}

impl Layer {
    /// As the ledger's rule names show it (`title:claude-title-idle`).
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Screen => "screen",
            Layer::Title => "title",
            Layer::Osc => "osc",
            Layer::Bell => "bell",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenRule {
    pub name: String,
    pub state: ScreenState,
    /// At least one of these must be on screen (when not empty).
    pub any: Vec<String>,
    /// Each of these must be on screen.
    pub all: Vec<String>,
    /// None of these may be on screen (anywhere, whatever `bottom` says).
    pub none: Vec<String>,
    /// Only the last N non-blank rows count for `any` and `all` (0: the whole screen).
    pub bottom: usize,
    /// A user rule with `disabled = true` switches off the built-in rule of that name.
    pub disabled: bool,
    /// What the rule listens to (`on = "title" | "notification" | "bell"`; the screen if unset).
    pub on: Layer,
    /// Only while the agent's last known state is this one (`when = "idle"`).
    pub when: Option<ScreenState>,
    /// A permission prompt's tool as `[permissions]` rules name it (`Bash`, `Edit`), and a
    /// regular expression over the screen's rows whose first group is the command or file.
    pub tool: Option<String>,
    pub capture: Option<String>,
}

/// What a screen was classified as, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenMatch {
    pub state: ScreenState,
    pub rule: String,
    /// The screen's line that matched, for the inbox item (the title or notification text
    /// for a signal).
    pub excerpt: String,
    /// Which layer fired.
    pub layer: Layer,
    /// A permission prompt's call, from the rule's `tool` and `capture`: (tool, command/file).
    pub call: Option<(String, String)>,
}

impl ScreenRule {
    fn matches(&self, all_rows: &[&str]) -> Option<String> {
        // `none` vetoes on the whole screen (a banner at the top can say "not yet"); `any` and
        // `all` look at the bottom rows when `bottom` is set.
        if self
            .none
            .iter()
            .any(|n| all_rows.iter().any(|r| r.contains(n.as_str())))
        {
            return None;
        }
        let rows = if self.bottom > 0 && all_rows.len() > self.bottom {
            &all_rows[all_rows.len() - self.bottom..]
        } else {
            all_rows
        };
        let on = |needle: &str| rows.iter().find(|r| r.contains(needle));
        let mut excerpt = None;
        for needle in &self.all {
            excerpt = Some(on(needle)?);
        }
        if !self.any.is_empty() {
            excerpt = Some(self.any.iter().find_map(|n| on(n))?);
        }
        excerpt.map(|r| r.trim().to_string())
    }
}

/// The first rule that matches `screen` (its text, rows separated by newlines), if any.
pub fn classify(rules: &[ScreenRule], screen: &str) -> Option<ScreenMatch> {
    let mut rows: Vec<&str> = screen.lines().collect();
    while rows.last().is_some_and(|r| r.trim().is_empty()) {
        rows.pop();
    }
    let rows: Vec<&str> = rows.into_iter().filter(|r| !r.trim().is_empty()).collect();
    rules
        .iter()
        .filter(|r| !r.disabled && r.on == Layer::Screen)
        .find_map(|r| {
            r.matches(&rows).map(|excerpt| ScreenMatch {
                state: r.state,
                rule: r.name.clone(),
                excerpt,
                layer: Layer::Screen,
                call: call_on(r, &rows),
            })
        })
}

/// The tool call a permission prompt shows: the rule's `capture` over the screen's rows
/// (joined by newlines, so a pattern can take the line above a question), first group.
fn call_on(rule: &ScreenRule, rows: &[&str]) -> Option<(String, String)> {
    let (tool, pattern) = (rule.tool.as_ref()?, rule.capture.as_ref()?);
    let re = regex::Regex::new(pattern).ok()?;
    let text = rows
        .iter()
        .map(|r| r.trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    let subject = re.captures(&text)?.get(1)?.as_str().trim();
    (!subject.is_empty()).then(|| (tool.clone(), subject.to_string()))
}

/// The built-in rules of an adapter, as TOML text.
pub fn builtin_text(adapter: &str) -> &'static str {
    match adapter {
        "claude" => include_str!("../../assets/screen-rules/claude.toml"),
        "codex" => include_str!("../../assets/screen-rules/codex.toml"),
        "aider" => include_str!("../../assets/screen-rules/aider.toml"),
        _ => include_str!("../../assets/screen-rules/generic.toml"),
    }
}

/// The built-in rules of an adapter. They are checked by a unit test, so the empty fallback
/// is never used.
pub fn builtin(adapter: &str) -> Vec<ScreenRule> {
    let file = format!("assets/screen-rules/{adapter}.toml");
    let text = builtin_text(adapter);
    let mut sink = Sink::new(&file, text);
    let Some(root) = sink.parse() else {
        return Vec::new();
    };
    sink.check_keys(root.get_ref(), &["rule"], "a screen-rules file");
    match root.get_ref().get("rule") {
        Some(v) => parse_rules(&mut sink, v, "[[rule]]"),
        None => Vec::new(),
    }
}

/// Built-in rules with the user's merged in: a user rule replaces the built-in rule of the
/// same name where it stands; new rules go first, so they win over the built-ins.
pub fn merged(adapter: &str, user: &BTreeMap<String, Vec<ScreenRule>>) -> Vec<ScreenRule> {
    let mut rules = builtin(adapter);
    let Some(mine) = user.get(adapter) else {
        return rules;
    };
    let mut fresh = Vec::new();
    for r in mine {
        match rules.iter_mut().find(|b| b.name == r.name) {
            Some(b) => *b = r.clone(),
            None => fresh.push(r.clone()),
        }
    }
    fresh.extend(rules);
    fresh
}

const RULE_KEYS: &[&str] = &[
    "name", "state", "any", "all", "none", "bottom", "disabled", "on", "when", "tool", "capture",
];
const LAYERS: &str = "screen, title, notification, bell";
const STATES: &[&str] = &[
    "waiting-question",
    "waiting-permission",
    "waiting-first-run",
    "working",
    "idle",
    "limited",
];

fn parse_state(s: &str) -> Option<ScreenState> {
    Some(match s {
        "waiting-question" => ScreenState::Waiting(WaitingFor::Question),
        "waiting-permission" => ScreenState::Waiting(WaitingFor::Permission),
        "waiting-first-run" => ScreenState::Waiting(WaitingFor::FirstRun),
        "working" => ScreenState::Working,
        "idle" => ScreenState::Idle,
        "limited" => ScreenState::Limited,
        _ => return None,
    })
}

/// An array of rule tables; each problem is recorded in `sink` and that rule is skipped.
pub fn parse_rules(
    sink: &mut Sink<'_>,
    v: &toml::Spanned<DeValue<'_>>,
    place: &str,
) -> Vec<ScreenRule> {
    let DeValue::Array(items) = v.get_ref() else {
        sink.error(
            &v.span(),
            format!("{place} must be an array of tables"),
            "write each rule as [[screen_rules.claude]] with name, state and any = [\"...\"]",
        );
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let t = sink.table(
                item,
                place,
                "{ name = \"...\", state = \"idle\", any = [\"❯\"] }",
            )?;
            parse_rule(sink, item, t, place)
        })
        .collect()
}

fn parse_rule(
    sink: &mut Sink<'_>,
    item: &toml::Spanned<DeValue<'_>>,
    t: &DeTable<'_>,
    place: &str,
) -> Option<ScreenRule> {
    sink.check_keys(t, RULE_KEYS, place);
    let name = match t.get("name") {
        Some(n) => sink.string(n, &format!("{place} name"), "name = \"my-rule\"")?,
        None => {
            sink.error(
                &item.span(),
                format!("a rule in {place} has no `name`"),
                "add name = \"...\" (it is shown when the rule fires)",
            );
            return None;
        }
    };
    let here = format!("{place} rule `{name}`");
    let disabled = match t.get("disabled") {
        Some(d) => sink.boolean(d, &format!("{here} disabled"))?,
        None => false,
    };
    let state = match t.get("state") {
        Some(s) => {
            let text = sink.string(s, &format!("{here} state"), "state = \"idle\"")?;
            match parse_state(&text) {
                Some(st) => st,
                None => {
                    sink.error(
                        &s.span(),
                        format!("unknown state `{text}` in {here}"),
                        format!("state is one of {}", STATES.join(", ")),
                    );
                    return None;
                }
            }
        }
        None if disabled => ScreenState::Working,
        None => {
            sink.error(
                &item.span(),
                format!("{here} has no `state`"),
                format!("add state = one of {}", STATES.join(", ")),
            );
            return None;
        }
    };
    let mut list = |key: &str| -> Option<Vec<String>> {
        match t.get(key) {
            Some(v) => {
                let l = sink.strings(v, &format!("{here} {key}"), "[\"text on screen\"]")?;
                if l.iter().any(String::is_empty) {
                    sink.error(
                        &v.span(),
                        format!("{here} {key} has an empty string, which is on every screen"),
                        "remove it",
                    );
                    return None;
                }
                Some(l)
            }
            None => Some(Vec::new()),
        }
    };
    let (any, all, none) = (list("any")?, list("all")?, list("none")?);
    let on = match t.get("on") {
        Some(v) => {
            let text = sink.string(v, &format!("{here} on"), "on = \"title\"")?;
            match text.as_str() {
                "screen" => Layer::Screen,
                "title" => Layer::Title,
                "notification" => Layer::Osc,
                "bell" => Layer::Bell,
                _ => {
                    sink.error(
                        &v.span(),
                        format!("unknown layer `{text}` in {here}"),
                        format!("on is one of {LAYERS}"),
                    );
                    return None;
                }
            }
        }
        None => Layer::Screen,
    };
    let when = match t.get("when") {
        Some(v) => {
            let text = sink.string(v, &format!("{here} when"), "when = \"idle\"")?;
            let Some(st) = parse_state(&text) else {
                sink.error(
                    &v.span(),
                    format!("unknown state `{text}` in {here} when"),
                    format!("when is one of {}", STATES.join(", ")),
                );
                return None;
            };
            Some(st)
        }
        None => None,
    };
    let mut text_of = |key: &str, hint: &str| -> Option<Option<String>> {
        match t.get(key) {
            Some(v) => Some(Some(sink.string(v, &format!("{here} {key}"), hint)?)),
            None => Some(None),
        }
    };
    let tool = text_of("tool", "tool = \"Bash\"")?;
    let capture = text_of("capture", "capture = \"^\\\\$ (.+)$\"")?;
    if let (Some(c), Some(v)) = (&capture, t.get("capture")) {
        let why = match regex::Regex::new(c) {
            Err(e) => Some(format!("is not a regular expression: {e}")),
            Ok(re) if re.captures_len() < 2 => Some("has no group ( ) to take".to_string()),
            Ok(_) => None,
        };
        if let Some(why) = why {
            sink.error(
                &v.span(),
                format!("{here} capture {why}"),
                "write a pattern whose first group is the command or file, e.g. \"\\\\$ (.+)\"",
            );
            return None;
        }
    }
    if capture.is_some() != tool.is_some() {
        sink.error(
            &item.span(),
            format!("{here} needs both `tool` and `capture` (it has one)"),
            "tool names the call as [permissions] rules do (Bash, Edit); capture takes its argument",
        );
        return None;
    }
    // A bell says nothing more than that it rang: it needs no text.
    if any.is_empty() && all.is_empty() && !disabled && on != Layer::Bell {
        sink.error(
            &item.span(),
            format!("{here} matches every screen: it has no `any` or `all`"),
            "add any = [\"text that appears on the screen\"]",
        );
        return None;
    }
    let bottom = match t.get("bottom") {
        Some(b) => sink.int_in(b, &format!("{here} bottom"), 0, 1000, "bottom = 8")? as usize,
        None => 0,
    };
    Some(ScreenRule {
        name,
        state,
        any,
        all,
        none,
        bottom,
        disabled,
        on,
        when,
        tool,
        capture,
    })
}

/// The user's `[screen_rules]` table: adapter name -> rules. Unknown adapters are errors.
pub fn parse_user_rules(
    sink: &mut Sink<'_>,
    t: &DeTable<'_>,
    adapters: &[&str],
) -> BTreeMap<String, Vec<ScreenRule>> {
    let mut out = BTreeMap::new();
    for (k, v) in entries_in_order(t) {
        let name = k.get_ref().to_string();
        if !adapters.contains(&name.as_str()) {
            sink.error(
                &k.span(),
                format!("unknown adapter `{name}` in [screen_rules]"),
                format!("screen rules are per adapter: {}", adapters.join(", ")),
            );
            continue;
        }
        let rules = parse_rules(sink, v, &format!("[[screen_rules.{name}]]"));
        out.insert(name, rules);
    }
    out
}

/// A state reported once it held for `hold_ms`: a redrawing screen passes through states that
/// mean nothing (a dialog half drawn, a spinner between frames). A permission prompt whose call
/// (tool, subject) the stable state does not know yet is news too: a notification may have told
/// "waiting for permission" first, and only the screen names what for (the `[permissions]`
/// rules need it).
#[derive(Debug, Clone, Default)]
pub struct Debounce {
    hold_ms: u64,
    candidate: Option<(ScreenState, Option<Call>, u64)>,
    stable: Option<ScreenState>,
    stable_call: Option<Call>,
}

/// A permission prompt's call: (tool, command or file).
type Call = (String, String);

impl Debounce {
    pub fn new(hold_ms: u64) -> Self {
        Debounce {
            hold_ms,
            ..Default::default()
        }
    }

    /// The stable state so far.
    pub fn state(&self) -> Option<ScreenState> {
        self.stable
    }

    /// A higher layer (a terminal signal) says the state is `state`: it is stable now, and a
    /// screen classification must hold again to change it.
    pub fn settle(&mut self, state: ScreenState) {
        self.stable = Some(state);
        self.stable_call = None;
        self.candidate = None;
    }

    /// Feeds one classification at `now_ms`; returns the match when it becomes the new stable
    /// state (or names a call the stable state did not). An unclassified screen (no rule fired)
    /// resets the candidate but keeps the stable state: nothing on screen proves a change.
    pub fn observe(&mut self, m: Option<&ScreenMatch>, now_ms: u64) -> Option<ScreenMatch> {
        let Some(m) = m else {
            self.candidate = None;
            return None;
        };
        let since = match &self.candidate {
            Some((st, call, since)) if *st == m.state && *call == m.call => *since,
            _ => {
                self.candidate = Some((m.state, m.call.clone(), now_ms));
                now_ms
            }
        };
        let news = self.stable != Some(m.state) || (m.call.is_some() && m.call != self.stable_call);
        if news && now_ms.saturating_sub(since) >= self.hold_ms {
            self.stable = Some(m.state);
            self.stable_call = m.call.clone();
            return Some(m.clone());
        }
        None
    }
}

/// Parses a whole rules file (for tests of user-supplied files).
pub fn parse_rules_file(file: &str, text: &str) -> Result<Vec<ScreenRule>, Vec<Diagnostic>> {
    let mut sink = Sink::new(file, text);
    let rules = match sink.parse() {
        Some(root) => {
            sink.check_keys(root.get_ref(), &["rule"], "a screen-rules file");
            root.get_ref()
                .get("rule")
                .map(|v| parse_rules(&mut sink, v, "[[rule]]"))
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    if sink.diags.is_empty() {
        Ok(rules)
    } else {
        Err(sink.diags)
    }
}

pub mod signals;

#[cfg(test)]
mod tests;
