//! Key → action, overridable by `[ui] keymap` (action name → key string). Pure: no terminal.
//! Focus mode sends every key to the agent except the one bound to `unfocus`.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for. The names are the config's keymap names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Back,
    Dashboard,
    Inbox,
    Logs,
    Dag,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextPane,
    Open,
    Detail,
    Focus,
    Unfocus,
    Retry,
    Cancel,
    Pause,
    Resume,
    PauseAll,
    Approve,
    Reject,
    ApproveAll,
    Diff,
    Follow,
    Search,
    SearchNext,
    SearchPrev,
    Filter,
    Timeline,
    NewTask,
    Edit,
    Shell,
    Editor,
    Raw,
}

impl Action {
    pub const ALL: [Action; 38] = [
        Action::Quit,
        Action::Help,
        Action::Back,
        Action::Dashboard,
        Action::Inbox,
        Action::Logs,
        Action::Dag,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::NextPane,
        Action::Open,
        Action::Detail,
        Action::Focus,
        Action::Unfocus,
        Action::Retry,
        Action::Cancel,
        Action::Pause,
        Action::Resume,
        Action::PauseAll,
        Action::Approve,
        Action::Reject,
        Action::ApproveAll,
        Action::Diff,
        Action::Follow,
        Action::Search,
        Action::SearchNext,
        Action::SearchPrev,
        Action::Filter,
        Action::Timeline,
        Action::NewTask,
        Action::Edit,
        Action::Shell,
        Action::Editor,
        Action::Raw,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Back => "back",
            Action::Dashboard => "dashboard",
            Action::Inbox => "inbox",
            Action::Logs => "logs",
            Action::Dag => "dag",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::NextPane => "next_pane",
            Action::Open => "open",
            Action::Detail => "detail",
            Action::Focus => "focus",
            Action::Unfocus => "unfocus",
            Action::Retry => "retry",
            Action::Cancel => "cancel",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::PauseAll => "pause_all",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::ApproveAll => "approve_all",
            Action::Diff => "diff",
            Action::Follow => "follow",
            Action::Search => "search",
            Action::SearchNext => "search_next",
            Action::SearchPrev => "search_prev",
            Action::Filter => "filter",
            Action::Timeline => "timeline",
            Action::NewTask => "new_task",
            Action::Edit => "edit",
            Action::Shell => "shell",
            Action::Editor => "editor",
            Action::Raw => "raw",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => {
                "quit: leave the agents running in the background, stop them (asks), or leave the run"
            }
            Action::Help => "this help",
            Action::Back => "back to the previous view",
            Action::Dashboard => "dashboard: tasks and live agents",
            Action::Inbox => "inbox: what waits for you",
            Action::Logs => "logs: merged tail of every attempt",
            Action::Dag => "DAG: dependency layers, critical path",
            Action::Up => "select the previous item / scroll up",
            Action::Down => "select the next item / scroll down",
            Action::PageUp => "scroll a page up",
            Action::PageDown => "scroll a page down",
            Action::Top => "first item / oldest line",
            Action::Bottom => "last item / newest line",
            Action::NextPane => "next agent pane",
            Action::Open => "open: focus the live agent, else the task detail",
            Action::Detail => "task detail: prompt, attempts, events",
            Action::Focus => "focus the selected agent (keys go to it)",
            Action::Unfocus => "leave focus (the only key an agent never gets)",
            Action::Retry => {
                "retry a failed, escalated or cancelled task, with a note for the next attempt"
            }
            Action::Cancel => "cancel the task (asks; its dependents are blocked)",
            Action::Pause => {
                "pause the task (its agent is held; a headless Claude/Codex run ends, resumed later)"
            }
            Action::Resume => "resume a paused task (a held agent continues)",
            Action::PauseAll => {
                "pause every ready and working task (each agent its own way); when none is, resume every paused one"
            }
            Action::Approve => "approve a task in review or escalated",
            Action::Reject => {
                "reject a task in review with a note, then asks (in a veto window: the countdown stops while you type)"
            }
            Action::ApproveAll => {
                "approve every approval in the inbox (asks; all passed checks and reviewer)"
            }
            Action::Diff => "the task's diff (latest attempt against its base)",
            Action::Follow => "logs: follow the newest lines on/off",
            Action::Search => "logs: regex search, newest match first",
            Action::SearchNext => "logs: the next earlier match (elsewhere n is a new task)",
            Action::SearchPrev => "logs: the next later match",
            Action::Filter => {
                "logs: filter by task (`task` or `task#2`), `agent:NAME`, `kind:agent|review|checks|merge` (empty: all)"
            }
            Action::Timeline => "timeline: where the run's time went, per slot",
            Action::NewTask => {
                "new task: title, prompt (ctrl-e: $EDITOR), dependencies, agent, budget"
            }
            Action::Edit => {
                "edit the prompt of a pending, paused, escalated, failed or cancelled task"
            }
            Action::Shell => "a shell ($SHELL) in the task's worktree; exit to come back",
            Action::Editor => "$EDITOR on the task's worktree (in the diff view: on the diff)",
            Action::Raw => "task detail: the events as raw JSON / as a timeline",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// A key as the keymap stores it.
pub type Key = (KeyCode, KeyModifiers);

/// Parses `q`, `?`, `enter`, `esc`, `tab`, `backtab`, `up`, `down`, `left`, `right`, `pgup`,
/// `pgdn`, `home`, `end`, `space`, `f1`..`f12`, with `ctrl-`/`alt-`/`shift-` prefixes.
pub fn parse_key(s: &str) -> Option<Key> {
    let mut mods = KeyModifiers::NONE;
    let mut rest = s;
    loop {
        let lower = rest.to_ascii_lowercase();
        if let Some(r) = lower
            .strip_prefix("ctrl-")
            .or_else(|| lower.strip_prefix("c-"))
        {
            mods |= KeyModifiers::CONTROL;
            rest = &rest[rest.len() - r.len()..];
        } else if let Some(r) = lower.strip_prefix("alt-") {
            mods |= KeyModifiers::ALT;
            rest = &rest[rest.len() - r.len()..];
        } else if let Some(r) = lower.strip_prefix("shift-") {
            mods |= KeyModifiers::SHIFT;
            rest = &rest[rest.len() - r.len()..];
        } else {
            break;
        }
    }
    let code = match rest.to_ascii_lowercase().as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "backspace" => KeyCode::Backspace,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdn" | "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "space" => KeyCode::Char(' '),
        f if f.len() > 1 && f.starts_with('f') => KeyCode::F(f[1..].parse().ok()?),
        _ => {
            let mut chars = rest.chars();
            let c = chars.next()?;
            if chars.next().is_some() {
                return None;
            }
            KeyCode::Char(c)
        }
    };
    Some((code, mods))
}

/// Readable form of a key, the inverse of `parse_key`.
pub fn key_name(k: &Key) -> String {
    let mut s = String::new();
    if k.1.contains(KeyModifiers::CONTROL) {
        s.push_str("ctrl-");
    }
    if k.1.contains(KeyModifiers::ALT) {
        s.push_str("alt-");
    }
    if k.1.contains(KeyModifiers::SHIFT) && !matches!(k.0, KeyCode::Char(_)) {
        s.push_str("shift-");
    }
    match k.0 {
        KeyCode::Enter => s.push_str("enter"),
        KeyCode::Esc => s.push_str("esc"),
        KeyCode::Tab => s.push_str("tab"),
        KeyCode::BackTab => s.push_str("backtab"),
        KeyCode::Backspace => s.push_str("backspace"),
        KeyCode::Up => s.push_str("up"),
        KeyCode::Down => s.push_str("down"),
        KeyCode::Left => s.push_str("left"),
        KeyCode::Right => s.push_str("right"),
        KeyCode::PageUp => s.push_str("pgup"),
        KeyCode::PageDown => s.push_str("pgdn"),
        KeyCode::Home => s.push_str("home"),
        KeyCode::End => s.push_str("end"),
        KeyCode::F(n) => s.push_str(&format!("f{n}")),
        KeyCode::Char(' ') => s.push_str("space"),
        KeyCode::Char(c) => s.push(c),
        _ => s.push('?'),
    }
    s
}

/// The default bindings: (action, keys).
pub const DEFAULTS: &[(Action, &[&str])] = &[
    (Action::Quit, &["q", "ctrl-c"]),
    (Action::Help, &["?", "f1"]),
    (Action::Back, &["esc"]),
    (Action::Dashboard, &["1"]),
    (Action::Inbox, &["2", "i"]),
    (Action::Logs, &["3", "l"]),
    (Action::Dag, &["4", "g"]),
    (Action::Timeline, &["5", "T"]),
    (Action::Up, &["up", "k"]),
    (Action::Down, &["down", "j"]),
    (Action::PageUp, &["pgup"]),
    (Action::PageDown, &["pgdn"]),
    (Action::Top, &["home"]),
    (Action::Bottom, &["end", "G"]),
    (Action::NextPane, &["tab"]),
    (Action::Open, &["enter"]),
    (Action::Detail, &["t"]),
    (Action::Focus, &["F"]),
    (Action::Unfocus, &["ctrl-]", "f10"]),
    (Action::Retry, &["r"]),
    (Action::Cancel, &["c"]),
    (Action::Pause, &["p"]),
    (Action::Resume, &["u"]),
    (Action::PauseAll, &["P"]),
    (Action::Approve, &["a"]),
    (Action::Reject, &["x"]),
    (Action::ApproveAll, &["A"]),
    (Action::Diff, &["d"]),
    (Action::Follow, &["f"]),
    (Action::Search, &["/"]),
    (Action::SearchNext, &["n"]),
    (Action::SearchPrev, &["N"]),
    (Action::Filter, &["s"]),
    (Action::NewTask, &["n"]),
    (Action::Edit, &["e"]),
    (Action::Shell, &["o"]),
    (Action::Editor, &["E"]),
    (Action::Raw, &["J"]),
];

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: BTreeMap<Action, Vec<Key>>,
}

impl Keymap {
    /// The defaults with the config's overrides applied. An override replaces every default key
    /// of that action. Unknown names and bad keys are returned as messages, never fatal.
    pub fn new(overrides: &BTreeMap<String, String>) -> (Keymap, Vec<String>) {
        let mut bindings: BTreeMap<Action, Vec<Key>> = BTreeMap::new();
        for (a, keys) in DEFAULTS {
            bindings.insert(*a, keys.iter().filter_map(|k| parse_key(k)).collect());
        }
        let mut problems = Vec::new();
        for (name, key) in overrides {
            match (Action::parse(name), parse_key(key)) {
                (Some(a), Some(k)) => {
                    // A key belongs to one action: take it away from any other.
                    for keys in bindings.values_mut() {
                        keys.retain(|x| *x != k);
                    }
                    bindings.insert(a, vec![k]);
                }
                (None, _) => problems.push(format!("[ui] keymap: unknown action '{name}'")),
                (Some(_), None) => {
                    problems.push(format!("[ui] keymap {name}: cannot read the key '{key}'"))
                }
            }
        }
        (Keymap { bindings }, problems)
    }

    /// The first action bound to the key (see `actions` for keys that mean one thing per view).
    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        self.actions(ev).first().copied()
    }

    /// Every action bound to the key. By default only `n` has two: the next search match in
    /// the logs view, a new task everywhere else (`App` picks by view).
    pub fn actions(&self, ev: &KeyEvent) -> Vec<Action> {
        let norm = normalize(ev);
        self.bindings
            .iter()
            .filter(|(_, keys)| keys.contains(&norm))
            .map(|(a, _)| *a)
            .collect()
    }

    pub fn keys(&self, a: Action) -> Vec<String> {
        self.bindings
            .get(&a)
            .map(|ks| ks.iter().map(key_name).collect())
            .unwrap_or_default()
    }

    /// (keys, action, description) for the help view, in the order of `Action::ALL`.
    pub fn help(&self) -> Vec<(String, String, String)> {
        Action::ALL
            .iter()
            .map(|a| {
                (
                    self.keys(*a).join(" "),
                    a.name().to_string(),
                    a.describe().to_string(),
                )
            })
            .collect()
    }
}

/// Terminals report `G` as Char('G') with or without SHIFT; drop SHIFT on characters so both
/// match a binding written `G`. Ctrl-] arrives as Char(']') + CONTROL or as Char('5') + CONTROL
/// on some terminals (the old ASCII mapping); fold the latter.
pub fn normalize(ev: &KeyEvent) -> Key {
    let mut mods = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
    let mut code = ev.code;
    if let KeyCode::Char(c) = code {
        mods.remove(KeyModifiers::SHIFT);
        if mods.contains(KeyModifiers::CONTROL) && c == '5' {
            code = KeyCode::Char(']');
        }
    }
    (code, mods)
}
