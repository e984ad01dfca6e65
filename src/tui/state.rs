//! The view state: everything `render` draws, as plain data (television's render-from-snapshot).
//! It is refreshed from the ledger only when something changed, and the clock fields are updated
//! just before a draw, so `render` itself never does I/O or reads the time.

use std::time::Duration;

use crate::agent::record::tail::SourceKind;
use crate::agent::record::text::LineKind;
pub use crate::agent::record::transcript::ItemKind as TranscriptKind;
use crate::agent::screen::SharedScreen;
use crate::core::domain::{AttemptId, AttemptNo, AttemptState, FunnelStage, Substatus};
use crate::core::state::TaskState;

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Dashboard,
    Focus,
    Logs,
    Inbox,
    Detail,
    Dag,
    Help,
    /// A task's diff (the latest agent attempt's commit against its base).
    Diff,
    /// Where the run's time went: one row per slot, bars by phase, the human's decisions.
    Timeline,
}

/// One task row as the dashboard shows it.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub id: String,
    pub title: String,
    pub state: TaskState,
    pub deps: Vec<String>,
    /// The profile of the agent holding it, when one is live.
    pub agent: Option<String>,
    pub reason: Option<String>,
    /// The funnel stage while in review.
    pub stage: Option<FunnelStage>,
    /// When the veto window closes (wall clock, ms).
    pub stage_until_ms: Option<u64>,
}

/// One live agent pane.
#[derive(Clone)]
pub struct AgentInfo {
    pub attempt: AttemptId,
    pub task: String,
    pub n: AttemptNo,
    pub profile: String,
    pub substatus: Substatus,
    pub question: Option<String>,
    pub elapsed: Duration,
    pub time_budget: Option<Duration>,
    /// For the clock tick (render reads `elapsed` only).
    pub started: std::time::Instant,
    /// Held by a pause since then: its clock stands still (the time budget counts running time).
    pub held_since: Option<std::time::Instant>,
    pub tokens: i64,
    pub cost_usd: f64,
    pub budget_tokens: Option<u64>,
    pub budget_cost_usd: Option<f64>,
    pub screen: Option<SharedScreen>,
}

/// The inbox is the read model's (`crate::read::inbox`): the same items `status` prints.
pub use crate::read::{Approval, BudgetKind, BudgetUse, CheckResult, InboxItem, InboxKind};

/// One line of the merged log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was printed (Unix ms) and the same as local `HH:MM:SS`.
    pub ms: u64,
    pub clock: String,
    /// `task#2`, `task#2 review`, `task#2 checks`, `task#2 merge`.
    pub tag: String,
    pub task: String,
    pub n: u32,
    pub source: SourceKind,
    /// The agent profile of the attempt.
    pub profile: String,
    /// Printed output, a snapshot row, or orch-tui's note.
    pub kind: LineKind,
    pub text: String,
}

impl LogLine {
    /// A line the agent printed (for tests and fixtures).
    pub fn output(task: &str, n: u32, text: &str) -> LogLine {
        LogLine {
            ms: 0,
            clock: String::new(),
            tag: SourceKind::Agent.tag(task, n),
            task: task.to_string(),
            n,
            source: SourceKind::Agent,
            profile: String::new(),
            kind: LineKind::Output,
            text: text.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogsState {
    pub lines: Vec<LogLine>,
    pub follow: bool,
    /// Lines scrolled up from the bottom (when not following).
    pub scroll: usize,
    /// The search as typed, and as compiled (a bad regex is searched as plain text).
    pub search: Option<String>,
    pub search_re: Option<regex::Regex>,
    /// Terms: `task` or `task#2`, `agent:PROFILE`, `kind:agent|review|checks|merge`; terms
    /// of one field are alternatives, fields must all match.
    pub filter: Option<String>,
}

impl LogsState {
    /// Sets the search; returns an error note when the text is not a valid regex (it is then
    /// searched as plain text).
    pub fn set_search(&mut self, text: Option<String>) -> Option<String> {
        self.search = text;
        self.search_re = None;
        let q = self.search.as_deref()?;
        match regex::Regex::new(q) {
            Ok(re) => {
                self.search_re = Some(re);
                None
            }
            Err(e) => {
                self.search_re = regex::Regex::new(&regex::escape(q)).ok();
                let first = e.to_string();
                let why = first.lines().last().unwrap_or("invalid").trim().to_string();
                Some(format!("not a regex ({why}); searching the plain text"))
            }
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        self.search_re.as_ref().is_some_and(|re| re.is_match(text))
    }
}

/// A parsed logs filter.
#[derive(Debug, Default)]
struct LogFilter {
    tasks: Vec<String>,
    agents: Vec<String>,
    /// `None`: a kind that does not exist (matches nothing).
    kinds: Vec<Option<SourceKind>>,
}

impl LogFilter {
    fn parse(s: &str) -> LogFilter {
        let mut f = LogFilter::default();
        for term in s.split_whitespace() {
            if let Some(a) = term.strip_prefix("agent:") {
                f.agents.push(a.to_string());
            } else if let Some(k) = term.strip_prefix("kind:") {
                // An unknown kind matches nothing rather than everything.
                f.kinds.push(SourceKind::parse(k));
            } else {
                f.tasks.push(term.to_string());
            }
        }
        f
    }

    fn keeps(&self, l: &LogLine) -> bool {
        let task_ok = self.tasks.is_empty()
            || self
                .tasks
                .iter()
                .any(|t| *t == l.task || *t == format!("{}#{}", l.task, l.n) || *t == l.tag);
        let agent_ok = self.agents.is_empty() || self.agents.contains(&l.profile);
        let kind_ok = self.kinds.is_empty() || self.kinds.contains(&Some(l.source));
        task_ok && agent_ok && kind_ok
    }
}

/// One attempt in the task detail.
#[derive(Debug, Clone)]
pub struct AttemptInfo {
    pub n: AttemptNo,
    pub profile: String,
    pub state: AttemptState,
    pub outcome: String,
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct DetailInfo {
    pub task: String,
    pub title: String,
    pub state: TaskState,
    pub prompt: String,
    pub deps: Vec<String>,
    pub note: Option<String>,
    pub reason: Option<String>,
    pub attempts: Vec<AttemptInfo>,
    /// `kind actor text` per event, oldest first.
    pub events: Vec<String>,
    /// The same events as a person tells them: time, who, what (`history::line`).
    pub history: Vec<String>,
    /// The funnel history, oldest first: stages, check results, verdicts, human decisions.
    pub funnel: Vec<String>,
    /// Per attempt: where its record is, how to replay it, its agent's transcript.
    pub records: Vec<String>,
    /// The newest agent attempt's conversation from its own transcript (Claude Code, Codex),
    /// and where that transcript is; empty when the agent keeps none.
    pub conversation: Vec<(TranscriptKind, String)>,
    pub conversation_path: Option<String>,
    /// The last lines of the newest agent attempt's screen.log (`HH:MM:SS text`).
    pub screen_tail: Vec<String>,
    pub scroll: usize,
}

/// The diff view.
#[derive(Debug, Clone, Default)]
pub struct DiffState {
    pub task: String,
    /// `base..commit` of the attempt shown, for the title.
    pub range: String,
    pub lines: Vec<String>,
    pub scroll: usize,
}

/// What a text prompt is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPurpose {
    RetryNote {
        task: String,
    },
    RejectNote {
        task: String,
    },
    /// The note a denied permission request passes to the agent.
    DenyNote {
        task: String,
    },
    Search,
    Filter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputState {
    pub purpose: InputPurpose,
    pub text: String,
}

/// The whole view: plain data plus the shared agent screens.
#[derive(Clone)]
pub struct ViewState {
    pub plan: String,
    pub tasks: Vec<TaskInfo>,
    pub agents: Vec<AgentInfo>,
    pub inbox: Vec<InboxItem>,
    pub spend_tokens: i64,
    pub spend_usd: f64,
    /// Limits (with their countdown), open breakers, a spent run budget: why work waits.
    pub alerts: Vec<crate::ledger::Alert>,
    pub elapsed: Duration,
    pub view: View,
    /// Where Esc returns to from Help, Detail and Focus.
    pub back: View,
    pub selected_task: usize,
    pub selected_agent: usize,
    pub selected_inbox: usize,
    /// The attempt shown full size in Focus.
    pub focus: Option<AttemptId>,
    /// Agents that ended, newest last, with their last screen (focus keeps showing it).
    pub ended: Vec<AgentInfo>,
    pub logs: LogsState,
    pub detail: Option<DetailInfo>,
    pub diff: Option<DiffState>,
    /// Built from the ledger's events when the timeline view opens (and on changes).
    pub timeline: Option<crate::core::timeline::Timeline>,
    pub input: Option<InputState>,
    pub quit_prompt: bool,
    /// A y/n question before an act that is hard to undo (it names its target).
    pub confirm: Option<super::confirm::Confirm>,
    /// The new-task form or the prompt editor.
    pub form: Option<super::form::TaskForm>,
    /// The task detail shows its events as raw JSON rather than as a timeline.
    pub detail_raw: bool,
    /// The config's integration branch (the done screen names it).
    pub integration_branch: String,
    /// The config's agent profiles and its default one (the new-task form lists them).
    pub profiles: Vec<String>,
    pub default_agent: String,
    /// The integration branch's commits once every task is done (`git log`, read once).
    pub done_summary: Option<String>,
    /// A one-line status message (last action's result or error).
    pub message: Option<String>,
    /// The engine failed: shown instead of the dashboard body.
    pub error: Option<String>,
    /// The run ended (all done, unfinished, stopped).
    pub finished: Option<String>,
    /// Another process supervises (its pid): this TUI watches it (keys go to the agents' holders).
    pub watching: Option<u32>,
    /// (keys, action, description), generated from the keymap.
    pub help: Vec<(String, String, String)>,
    pub page_scroll: usize,
    /// False under NO_COLOR: render draws no colours (attributes stay).
    pub color: bool,
    /// The key that leaves Focus, for the hint line.
    pub unfocus_key: String,
    /// The wall clock (ms), for veto countdowns; set with the other clock fields.
    pub wall_ms: u64,
    /// `git diff --stat` by `base..commit` (fetched in the background for approvals; a
    /// refresh does not run git again).
    pub stat_cache: std::collections::HashMap<String, String>,
    /// The DAG view's rows, computed with each refresh (not per frame).
    pub dag: super::render::DagLayout,
    /// Human commands still waiting for the ledger (another process holds its write lock, or
    /// the disk is full), and why: the footer says so until they land.
    pub waiting: Option<String>,
    /// Human commands sent and not answered yet (the quit question warns about them).
    pub pending_commands: usize,
    /// The first refresh has arrived (until then an empty list means "not read yet").
    pub loaded: bool,
}

impl ViewState {
    pub fn new(color: bool) -> ViewState {
        ViewState {
            plan: String::new(),
            tasks: Vec::new(),
            agents: Vec::new(),
            inbox: Vec::new(),
            spend_tokens: 0,
            spend_usd: 0.0,
            alerts: Vec::new(),
            elapsed: Duration::ZERO,
            view: View::Dashboard,
            back: View::Dashboard,
            selected_task: 0,
            selected_agent: 0,
            selected_inbox: 0,
            focus: None,
            ended: Vec::new(),
            logs: LogsState {
                follow: true,
                ..LogsState::default()
            },
            detail: None,
            diff: None,
            timeline: None,
            input: None,
            quit_prompt: false,
            confirm: None,
            form: None,
            detail_raw: false,
            integration_branch: String::new(),
            profiles: Vec::new(),
            default_agent: String::new(),
            done_summary: None,
            message: None,
            error: None,
            finished: None,
            watching: None,
            help: Vec::new(),
            page_scroll: 0,
            color,
            unfocus_key: "ctrl-]".into(),
            wall_ms: 0,
            stat_cache: std::collections::HashMap::new(),
            dag: Default::default(),
            waiting: None,
            pending_commands: 0,
            loaded: false,
        }
    }

    pub fn count(&self, s: TaskState) -> usize {
        self.tasks.iter().filter(|t| t.state == s).count()
    }

    pub fn selected_task(&self) -> Option<&TaskInfo> {
        self.tasks.get(self.selected_task)
    }

    pub fn agent(&self, attempt: AttemptId) -> Option<&AgentInfo> {
        self.agents.iter().find(|a| a.attempt == attempt)
    }

    pub fn agent_for_task(&self, task: &str) -> Option<&AgentInfo> {
        self.agents.iter().find(|a| a.task == task)
    }

    /// Every task that depends on `task`, directly or through others (what a cancel blocks),
    /// in the task list's order.
    pub fn dependents(&self, task: &str) -> Vec<String> {
        use std::collections::{HashMap, HashSet};
        let mut users: HashMap<&str, Vec<&str>> = HashMap::new();
        for t in &self.tasks {
            for d in &t.deps {
                users.entry(d.as_str()).or_default().push(t.id.as_str());
            }
        }
        let mut found: HashSet<&str> = HashSet::new();
        let mut todo = vec![task];
        while let Some(id) = todo.pop() {
            for u in users.get(id).into_iter().flatten() {
                if *u != task && found.insert(u) {
                    todo.push(u);
                }
            }
        }
        self.tasks
            .iter()
            .filter(|t| found.contains(t.id.as_str()))
            .map(|t| t.id.clone())
            .collect()
    }

    /// Clamp every selection to its list (lists shrink when the ledger changes).
    pub fn clamp(&mut self) {
        self.selected_task = self.selected_task.min(self.tasks.len().saturating_sub(1));
        self.selected_agent = self.selected_agent.min(self.agents.len().saturating_sub(1));
        self.selected_inbox = self.selected_inbox.min(self.inbox.len().saturating_sub(1));
    }

    /// Every inbox item waiting for approval (stage human or veto).
    pub fn approvals(&self) -> Vec<String> {
        self.inbox
            .iter()
            .filter(|i| matches!(i.kind, InboxKind::Approval(_)))
            .filter_map(|i| i.task.clone())
            .collect()
    }

    pub fn approval_count(&self) -> usize {
        self.inbox
            .iter()
            .filter(|i| matches!(i.kind, InboxKind::Approval(_)))
            .count()
    }

    /// True while a veto window, a usage limit or a breaker counts down: the clock needs to tick.
    pub fn has_countdown(&self) -> bool {
        self.alerts.iter().any(|a| a.until_ms.is_some())
            || self.tasks.iter().any(|t| t.stage_until_ms.is_some())
            || self.inbox.iter().any(|i| {
                matches!(
                    i.kind,
                    InboxKind::Limited {
                        until_ms: Some(_),
                        ..
                    }
                )
            })
    }

    /// The log lines that pass the filter.
    pub fn visible_log_lines(&self) -> Vec<&LogLine> {
        let filter = self.logs.filter.as_deref().map(LogFilter::parse);
        self.logs
            .lines
            .iter()
            .filter(|l| filter.as_ref().is_none_or(|f| f.keeps(l)))
            .collect()
    }
}
