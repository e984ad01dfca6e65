//! What an agent said, as typed events: the adapters (`src/agent/adapter/`) turn each CLI's
//! output (Claude Code `stream-json`, Codex `exec --json`, aider's text) into these, and the
//! engine decides on them (spend, budgets, limits, failures, turn ends). Pure data, no I/O.

/// The first non-blank line of `text`, at most `max` characters (an ellipsis marks a cut).
pub fn short_text(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// Token counts of one API call, or a sum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Input tokens billed at the full rate (cache reads and writes not included).
    pub input: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write: u64,
    pub output: u64,
}

impl Tokens {
    /// Everything the call counted, the number budgets in tokens compare against.
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
            .saturating_add(self.output)
    }

    pub fn add(&self, o: &Tokens) -> Tokens {
        Tokens {
            input: self.input.saturating_add(o.input),
            cache_read: self.cache_read.saturating_add(o.cache_read),
            cache_write: self.cache_write.saturating_add(o.cache_write),
            output: self.output.saturating_add(o.output),
        }
    }

    /// `self - earlier`, field by field, never below zero (Codex reports running totals).
    pub fn since(&self, earlier: &Tokens) -> Tokens {
        Tokens {
            input: self.input.saturating_sub(earlier.input),
            cache_read: self.cache_read.saturating_sub(earlier.cache_read),
            cache_write: self.cache_write.saturating_sub(earlier.cache_write),
            output: self.output.saturating_sub(earlier.output),
        }
    }
}

/// Prices in US dollars per million tokens, from an agent profile's `price` (Codex prints no
/// cost; Claude's own figure arrives only at the end of a run).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Price {
    pub input: f64,
    pub cache_read: f64,
    pub cache_write: f64,
    pub output: f64,
}

impl Price {
    pub fn cost(&self, t: &Tokens) -> f64 {
        (t.input as f64 * self.input
            + t.cache_read as f64 * self.cache_read
            + t.cache_write as f64 * self.cache_write
            + t.output as f64 * self.output)
            / 1_000_000.0
    }
}

/// Why a turn or a run ended badly, in words a person reads in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The API answered with this HTTP status (after the agent's own retries).
    Api { status: u16 },
    /// A server-side error whose status the agent did not print (Codex: "high demand").
    ApiServer,
    /// The credentials were refused (401/403, "Failed to authenticate").
    Auth { status: Option<u16> },
    /// The agent stopped at its turn limit (`--max-turns`).
    MaxTurns,
    /// The agent stopped at its own spending limit (`--max-budget-usd`).
    MaxBudget,
    /// The program, or a program it needed, was not found.
    CommandNotFound,
    /// Anything else the agent reported as an error.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// The agent's own text, for the details view.
    pub detail: String,
}

impl Failure {
    /// The short reason: "API 429 rate limit", "API 500", "auth 401", "max turns", ...
    pub fn words(&self) -> String {
        match &self.kind {
            FailureKind::Api { status: 429 } => "API 429 rate limit".into(),
            FailureKind::Api { status: 529 } => "API 529 overloaded".into(),
            FailureKind::Api { status } => format!("API {status}"),
            FailureKind::ApiServer => "API server error".into(),
            FailureKind::Auth { status: Some(s) } => format!("auth {s}"),
            FailureKind::Auth { status: None } => "auth failed".into(),
            FailureKind::MaxTurns => "max turns".into(),
            FailureKind::MaxBudget => "max budget".into(),
            FailureKind::CommandNotFound => "command not found".into(),
            FailureKind::Other => "agent error".into(),
        }
    }

    /// API trouble that is the provider's, not the task's: worth a pause and a probe rather
    /// than spending the task's attempts (issue #8: limits and breakers).
    pub fn is_infrastructure(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::Api { .. }
                | FailureKind::ApiServer
                | FailureKind::Auth { .. }
                | FailureKind::CommandNotFound
        )
    }
}

/// When a limit lifts, as the agent said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Seconds since the Unix epoch (Claude `rate_limit_event.resetsAt`).
    At { epoch_s: i64 },
    /// A local time of day (Codex: "try again at 3:28 PM"): the next such time from now.
    ClockTime { hour: u8, minute: u8 },
}

impl Reset {
    /// The reset as epoch seconds. `utc_offset_s` is the local zone's offset (east positive),
    /// which the caller reads from the system; a clock time already passed today is tomorrow's.
    pub fn epoch_s(&self, now_epoch_s: i64, utc_offset_s: i64) -> i64 {
        match *self {
            Reset::At { epoch_s } => epoch_s,
            Reset::ClockTime { hour, minute } => {
                let local_now = now_epoch_s + utc_offset_s;
                let day_start = local_now - local_now.rem_euclid(86_400);
                let mut at = day_start + i64::from(hour) * 3600 + i64::from(minute) * 60;
                // A time given to the minute that is this minute (or just past, the agent's
                // clock a little ahead) is now, not tomorrow.
                if at <= local_now && local_now - at < 120 {
                    at = local_now;
                } else if at <= local_now {
                    at += 86_400;
                }
                at - utc_offset_s
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The account's usage allowance is spent (Claude's five-hour/weekly limits, Codex's usage
    /// limit): nothing of this account runs until the reset.
    Usage,
    /// Requests were refused with 429 after the agent's own retries.
    Rate,
    /// Still allowed, but close to the wall (`allowed_warning`): slow down.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub kind: LimitKind,
    pub resets: Option<Reset>,
    /// The agent's words, for the inbox.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionKind {
    /// The agent asked and waits for an answer.
    Request,
    /// The agent was refused (headless Claude without a permission mode; Codex's sandbox).
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub kind: PermissionKind,
    /// "Write", "Bash", "apply_patch", ...
    pub tool: String,
    /// The command or file concerned.
    pub subject: String,
    /// The agent's own explanation, when it gave one.
    pub reason: Option<String>,
}

/// One line for an agent's pane, instead of the raw JSON it printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneKind {
    Assistant,
    ToolCall,
    ToolResult,
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaneLine {
    pub kind: PaneKind,
    pub text: String,
}

/// The end of the agent's turn (headless: its run).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnEnd {
    /// False when the agent itself reported an error.
    pub ok: bool,
    pub last_message: Option<String>,
    pub session_id: Option<String>,
    pub transcript_path: Option<String>,
    pub failure: Option<Failure>,
    /// Tool calls the agent was refused during the run.
    pub denials: Vec<Permission>,
}

/// Everything the adapters recognise in an agent's output.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The agent's conversation id (Claude `session_id`, Codex `thread_id`): a retry resumes it.
    Session {
        id: String,
    },
    /// One API call's tokens as it completes, with its cost when known (aider prints it;
    /// Codex and Claude's live figures are priced from the profile's `price`).
    Usage {
        tokens: Tokens,
        cost_usd: Option<f64>,
    },
    /// The agent's own totals for this process so far (Claude's `result`, aider's "session"
    /// cost): the truth, which replaces the sum of the live `Usage` events.
    Total {
        tokens: Option<Tokens>,
        cost_usd: f64,
    },
    Pane(PaneLine),
    TurnEnd(TurnEnd),
    Failure(Failure),
    Limit(Limit),
    Permission(Permission),
}

/// Spend of one agent process, as the events arrive: live from `Usage`, settled by `Total`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    pub tokens: Tokens,
    pub cost_usd: f64,
    /// True once the agent's own total arrived: `cost_usd` is then exactly what it reported.
    pub settled: bool,
}

impl Spend {
    /// Folds one event in; other events change nothing. Spend never goes down: a total below
    /// the live sum (a price table that overestimates) keeps the larger token count but takes
    /// the agent's cost, which is the bill.
    pub fn apply(&mut self, ev: &AgentEvent) {
        match ev {
            AgentEvent::Usage { tokens, cost_usd } => {
                self.tokens = self.tokens.add(tokens);
                if !self.settled {
                    self.cost_usd += cost_usd.unwrap_or(0.0).max(0.0);
                }
            }
            AgentEvent::Total { tokens, cost_usd } if cost_usd.is_finite() => {
                if let Some(t) = tokens
                    && t.total() >= self.tokens.total()
                {
                    self.tokens = *t;
                }
                self.cost_usd = cost_usd.max(0.0);
                self.settled = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(input: u64, output: u64) -> Tokens {
        Tokens {
            input,
            output,
            ..Tokens::default()
        }
    }

    #[test]
    fn words_name_the_status() {
        let f = |kind| Failure {
            kind,
            detail: String::new(),
        };
        assert_eq!(
            f(FailureKind::Api { status: 429 }).words(),
            "API 429 rate limit"
        );
        assert_eq!(f(FailureKind::Api { status: 500 }).words(), "API 500");
        assert_eq!(
            f(FailureKind::Auth { status: Some(401) }).words(),
            "auth 401"
        );
        assert_eq!(f(FailureKind::MaxTurns).words(), "max turns");
        assert_eq!(f(FailureKind::CommandNotFound).words(), "command not found");
        assert!(f(FailureKind::Api { status: 500 }).is_infrastructure());
        assert!(!f(FailureKind::MaxTurns).is_infrastructure());
    }

    #[test]
    fn clock_time_resets_are_the_next_such_time() {
        // 2026-01-01 12:00 UTC, in a zone one hour east.
        let noon = 1_767_268_800;
        let r = Reset::ClockTime {
            hour: 15,
            minute: 28,
        };
        // 15:28 local = 14:28 UTC, the same day.
        assert_eq!(r.epoch_s(noon, 3600), noon + 2 * 3600 + 28 * 60);
        // 09:00 local has passed (it is 13:00 local): tomorrow.
        let r = Reset::ClockTime { hour: 9, minute: 0 };
        assert_eq!(r.epoch_s(noon, 3600), noon + 20 * 3600);
        assert_eq!(Reset::At { epoch_s: 5 }.epoch_s(noon, 0), 5);
    }

    #[test]
    fn spend_is_live_then_settled_by_the_total() {
        let mut s = Spend::default();
        let price = Price {
            input: 3.0,
            output: 15.0,
            ..Price::default()
        };
        for _ in 0..2 {
            let tokens = t(100, 50_000);
            s.apply(&AgentEvent::Usage {
                tokens,
                cost_usd: Some(price.cost(&tokens)),
            });
        }
        assert_eq!(s.tokens, t(200, 100_000));
        assert!((s.cost_usd - 1.5006).abs() < 1e-9);
        s.apply(&AgentEvent::Total {
            tokens: Some(t(200, 100_000)),
            cost_usd: 2.0008,
        });
        assert_eq!(s.cost_usd, 2.0008);
        assert!(s.settled);
        // A late call after the total adds tokens but not a guessed cost.
        s.apply(&AgentEvent::Usage {
            tokens: t(1, 1),
            cost_usd: Some(1.0),
        });
        assert_eq!(s.cost_usd, 2.0008);
        assert_eq!(s.tokens.total(), 100_202);
    }

    #[test]
    fn tokens_since_never_underflows() {
        assert_eq!(t(400, 1600).since(&t(200, 600)), t(200, 1000));
        assert_eq!(t(1, 1).since(&t(5, 5)), Tokens::default());
    }
}
