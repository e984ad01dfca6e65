//! aider: `aider --message-file FILE --yes-always ...` headless; plain text output.
//!
//! Its usage line, per reply (aider's `base_coder.py`): `Tokens: 2.5k sent, 1.2k cache write,
//! 3k cache hit, 120 received. Cost: $0.0081 message, $0.0081 session.` — numbers under 1000
//! raw, then `2.5k` / `12k`; the cache parts only when non-zero; the cost part only when the
//! model has a price, sometimes on the next line. Confirmations end in `(Y)es/(N)o...`.

use super::{AgentKind, EventParser, LaunchContext, LineBuffer, ParserOptions, strip_ansi};
use crate::core::agent_event::{
    AgentEvent, Limit, LimitKind, Permission, PermissionKind, Price, Tokens,
};
use crate::core::config::Adapter;

pub struct Aider;

impl AgentKind for Aider {
    fn adapter(&self) -> Adapter {
        Adapter::Aider
    }

    /// aider reads a message file itself: `--message {prompt}` becomes `--message-file FILE`.
    fn large_prompt(&self, ctx: &LaunchContext<'_>) -> Result<String, String> {
        Ok(ctx.prompt_file.to_string_lossy().into_owned())
    }

    fn parser(&self, opts: ParserOptions) -> Box<dyn EventParser> {
        Box::new(AiderParser {
            lines: LineBuffer::default(),
            pending: None,
            price: opts.price,
        })
    }

    fn flag_checks(&self) -> &'static [super::FlagCheck] {
        &[super::FlagCheck {
            args: &["--help"],
            flags: &["--message-file", "--yes-always", "--no-auto-commits"],
        }]
    }

    fn screen_rules(&self) -> &'static str {
        include_str!("../../../assets/screen-rules/aider.toml")
    }
}

struct AiderParser {
    lines: LineBuffer,
    /// A `Tokens:` line whose `Cost:` may follow on the next line.
    pending: Option<Tokens>,
    price: Option<Price>,
}

impl EventParser for AiderParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<AgentEvent> {
        let lines = self.lines.push(bytes);
        lines
            .iter()
            .flat_map(|l| self.line(&strip_ansi(l)))
            .collect()
    }

    fn finish(&mut self) -> Vec<AgentEvent> {
        let mut out = match self.lines.finish() {
            Some(l) => self.line(&strip_ansi(&l)),
            None => Vec::new(),
        };
        out.extend(self.flush());
        out
    }
}

impl AiderParser {
    fn flush(&mut self) -> Option<AgentEvent> {
        let tokens = self.pending.take()?;
        Some(AgentEvent::Usage {
            tokens,
            cost_usd: self.price.map(|p| p.cost(&tokens)),
        })
    }

    fn line(&mut self, line: &str) -> Vec<AgentEvent> {
        let t = line.trim();
        let mut out = Vec::new();
        if let Some(cost_at) = t.find("Cost: $")
            && let Some(tokens) = self.pending.take().or_else(|| tokens_in(t))
        {
            let (message, session) = costs_in(&t[cost_at..]);
            out.push(AgentEvent::Usage {
                tokens,
                cost_usd: message.or_else(|| self.price.map(|p| p.cost(&tokens))),
            });
            if let Some(total) = session {
                out.push(AgentEvent::Total {
                    tokens: None,
                    cost_usd: total,
                });
            }
            return out;
        }
        out.extend(self.flush());
        if let Some(tokens) = tokens_in(t) {
            self.pending = Some(tokens);
        } else if t.contains("rate limited you") {
            out.push(AgentEvent::Limit(Limit {
                kind: LimitKind::Rate,
                resets: None,
                text: t.to_string(),
            }));
        } else if t.contains("(Y)es/(N)o") {
            let question = t.split(" (Y)es/(N)o").next().unwrap_or(t);
            out.push(AgentEvent::Permission(Permission {
                kind: PermissionKind::Request,
                tool: "aider".into(),
                subject: question.to_string(),
                reason: None,
            }));
        }
        out
    }
}

/// `1.2k` -> 1200, `12k` -> 12000, `116` -> 116.
fn count(word: &str) -> Option<u64> {
    let w = word.trim().trim_end_matches(['.', ',']);
    let (num, mult) = match w.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1_000.0),
        None => match w.strip_suffix(['m', 'M']) {
            Some(n) => (n, 1_000_000.0),
            None => (w, 1.0),
        },
    };
    let x: f64 = num.parse().ok()?;
    (x.is_finite() && x >= 0.0).then(|| (x * mult).round() as u64)
}

/// The counts of a `Tokens: ...` line.
fn tokens_in(line: &str) -> Option<Tokens> {
    let body = line.strip_prefix("Tokens:")?;
    let body = body.split("Cost:").next().unwrap_or(body);
    let mut t = Tokens::default();
    let mut any = false;
    for part in body.split(',').map(|p| p.trim().trim_end_matches('.')) {
        let Some((n, what)) = part.split_once(' ') else {
            continue;
        };
        let Some(n) = count(n) else { continue };
        match what.trim() {
            "sent" => t.input = n,
            "cache write" => t.cache_write = n,
            "cache hit" | "cache read" => t.cache_read = n,
            "received" => t.output = n,
            _ => continue,
        }
        any = true;
    }
    // aider's "sent" includes the cache writes; keep each token counted once.
    t.input = t.input.saturating_sub(t.cache_write);
    any.then_some(t)
}

/// `Cost: $0.0081 message, $0.0123 session.` -> (message, session).
fn costs_in(text: &str) -> (Option<f64>, Option<f64>) {
    let mut message = None;
    let mut session = None;
    for part in text.trim_start_matches("Cost:").split(',') {
        let part = part.trim().trim_end_matches('.');
        let Some((amount, what)) = part.split_once(' ') else {
            continue;
        };
        let Ok(x) = amount.trim_start_matches('$').parse::<f64>() else {
            continue;
        };
        if !x.is_finite() || x < 0.0 {
            continue;
        }
        match what.trim() {
            "message" => message = Some(x),
            "session" => session = Some(x),
            _ => {}
        }
    }
    (message, session)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<AgentEvent> {
        let mut p = Aider.parser(ParserOptions::default());
        let mut ev = p.feed(text.as_bytes());
        ev.extend(p.finish());
        ev
    }

    #[test]
    fn a_usage_line_with_cost() {
        let ev =
            parse("Tokens: 2.5k sent, 120 received. Cost: $0.0081 message, $0.0123 session.\r\n");
        assert_eq!(
            ev,
            vec![
                AgentEvent::Usage {
                    tokens: Tokens {
                        input: 2500,
                        output: 120,
                        ..Tokens::default()
                    },
                    cost_usd: Some(0.0081)
                },
                AgentEvent::Total {
                    tokens: None,
                    cost_usd: 0.0123
                },
            ]
        );
    }

    #[test]
    fn cache_fields_and_cost_on_the_next_line() {
        let ev = parse(
            "Tokens: 12k sent, 2.0k cache write, 8.2k cache hit, 1.1k received.\nCost: $0.05 message, $0.07 session.\n",
        );
        assert_eq!(
            ev[0],
            AgentEvent::Usage {
                tokens: Tokens {
                    input: 10_000,
                    cache_write: 2000,
                    cache_read: 8200,
                    output: 1100
                },
                cost_usd: Some(0.05)
            }
        );
        assert_eq!(
            ev[1],
            AgentEvent::Total {
                tokens: None,
                cost_usd: 0.07
            }
        );
    }

    #[test]
    fn tokens_without_a_price_and_other_lines() {
        let ev = parse("\x1b[1mTokens: 116 sent, 30 received.\x1b[0m\nApplied edit to a.py\n");
        assert_eq!(
            ev,
            vec![AgentEvent::Usage {
                tokens: Tokens {
                    input: 116,
                    output: 30,
                    ..Tokens::default()
                },
                cost_usd: None
            }]
        );
        let ev = parse("Add file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]: \n");
        assert!(
            matches!(&ev[0], AgentEvent::Permission(p) if p.subject == "Add file to the chat?")
        );
        let ev =
            parse("The API provider has rate limited you. Try again later or check your quotas.\n");
        assert!(matches!(&ev[0], AgentEvent::Limit(l) if l.kind == LimitKind::Rate));
    }
}
