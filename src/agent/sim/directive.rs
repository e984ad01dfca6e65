//! Parsing of `@sim` directives out of a prompt.
//!
//! Parsing is separate from playing so that a malformed line can be reported with its line
//! number at the moment it is reached, without stopping the script (a real agent shrugs off
//! prose it does not understand, and tests rely on "unknown directive does not fail").

use std::time::Duration;

/// The prefix that marks a directive line; everything else in a prompt is prose.
pub(super) const PREFIX: &str = "@sim ";

/// One action of the simulated agent.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Directive {
    Write {
        path: String,
        content: String,
    },
    Append {
        path: String,
        content: String,
    },
    Sleep(Duration),
    /// Delay per progress step.
    Speed(Duration),
    Progress(u32),
    Say(String),
    Fail(i32),
    FailAttempts {
        attempts: u32,
        code: i32,
    },
    Hang {
        ignore_term: bool,
    },
    Ask(String),
    Usage {
        tokens_in: u64,
        tokens_out: u64,
        cost_usd: f64,
    },
    Flood(u64),
    Done,
    Exit(i32),
    ReportDone,
    /// Write the whole prompt the agent was given to a file (tests check what a retry was told).
    CopyPrompt(String),
    /// A reviewer's answer, sent with `worker verdict`.
    Verdict {
        approve: bool,
        notes: String,
    },
    Bell,
    Notify(String),
    CheckEdit,
}

impl Directive {
    /// Whether this directive edits files itself (then the agent makes no default edit).
    pub(super) fn edits_files(&self) -> bool {
        matches!(
            self,
            Directive::Write { .. } | Directive::Append { .. } | Directive::CopyPrompt(_)
        )
    }
}

/// A directive line of the prompt: its 1-based line number and the parsed directive, or a
/// warning explaining why it was not understood.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    pub number: usize,
    pub parsed: Result<Directive, String>,
}

/// All directive lines of a prompt, in order. Leading whitespace is allowed so that directives
/// can sit in indented TOML multi-line strings.
pub(super) fn parse_prompt(prompt: &str) -> Vec<Line> {
    prompt
        .lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let rest = raw.trim_start().strip_prefix(PREFIX)?;
            Some(Line {
                number: i + 1,
                parsed: parse_directive(rest.trim_end()),
            })
        })
        .collect()
}

/// The first line of prose (not a directive, not blank), without Markdown heading marks; used
/// as the title of the default edit.
pub(super) fn first_prose_line(prompt: &str) -> Option<String> {
    prompt
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(PREFIX))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .find(|l| !l.is_empty())
}

/// Parses the text after `@sim `.
fn parse_directive(text: &str) -> Result<Directive, String> {
    let (verb, arg) = match text.split_once(char::is_whitespace) {
        Some((verb, arg)) => (verb, arg.trim()),
        None => (text, ""),
    };
    let directive = match verb {
        "write" | "append" => {
            let (path, content) = arg.split_once(':').ok_or_else(|| {
                format!("`@sim {verb}` needs `PATH: CONTENT`, e.g. `@sim {verb} src/a.txt: hello`")
            })?;
            let path = path.trim().to_string();
            if path.is_empty() {
                return Err(format!("`@sim {verb}` has an empty path before `:`"));
            }
            // One space after the colon is the separator; any further spaces are content.
            let content = unescape(content.strip_prefix(' ').unwrap_or(content));
            if verb == "write" {
                Directive::Write { path, content }
            } else {
                Directive::Append { path, content }
            }
        }
        "sleep" => Directive::Sleep(parse_duration(arg)?),
        "speed" => Directive::Speed(match arg {
            "fast" => Duration::ZERO,
            "normal" => super::paint::DEFAULT_STEP_DELAY,
            other => parse_duration(other).map_err(|e| {
                format!("`@sim speed` takes `fast`, `normal` or a duration per step: {e}")
            })?,
        }),
        "progress" => Directive::Progress(parse_number(arg, "progress", "a step count")?),
        "say" => Directive::Say(arg.to_string()),
        "fail" => Directive::Fail(parse_fail_code(arg)?),
        "fail-attempts" => {
            let (n, code) = arg
                .split_once(char::is_whitespace)
                .ok_or("`@sim fail-attempts` needs `N CODE`, e.g. `@sim fail-attempts 2 1`")?;
            Directive::FailAttempts {
                attempts: parse_number(n, "fail-attempts", "an attempt count")?,
                code: parse_fail_code(code.trim())?,
            }
        }
        "hang" => Directive::Hang { ignore_term: false },
        "hang-ignore-term" => Directive::Hang { ignore_term: true },
        "ask" => {
            if arg.is_empty() {
                return Err("`@sim ask` needs a question, e.g. `@sim ask Which port?`".into());
            }
            Directive::Ask(arg.to_string())
        }
        "usage" => {
            let parts: Vec<&str> = arg.split_whitespace().collect();
            let [tokens_in, tokens_out, cost] = parts[..] else {
                return Err("`@sim usage` needs `TOKENS_IN TOKENS_OUT COST_USD`, \
                            e.g. `@sim usage 1200 340 0.02`"
                    .into());
            };
            let cost_usd: f64 = cost
                .parse()
                .ok()
                .filter(|c: &f64| c.is_finite() && *c >= 0.0)
                .ok_or_else(|| format!("`@sim usage`: cost `{cost}` is not an amount in USD"))?;
            Directive::Usage {
                tokens_in: parse_number(tokens_in, "usage", "a token count")?,
                tokens_out: parse_number(tokens_out, "usage", "a token count")?,
                cost_usd,
            }
        }
        "flood" => Directive::Flood(parse_size(arg)?),
        "done" => Directive::Done,
        "exit" => Directive::Exit(parse_exit_code(arg)?),
        "report-done" => Directive::ReportDone,
        "copy-prompt" if !arg.trim().is_empty() => Directive::CopyPrompt(arg.trim().to_string()),
        "verdict" => {
            let (word, notes) = arg.split_once(' ').unwrap_or((arg, ""));
            match word {
                "approve" => Directive::Verdict {
                    approve: true,
                    notes: notes.trim().to_string(),
                },
                "changes" if !notes.trim().is_empty() => Directive::Verdict {
                    approve: false,
                    notes: notes.trim().to_string(),
                },
                _ => {
                    return Err("`@sim verdict` needs `approve [NOTES]` or `changes NOTES`".into());
                }
            }
        }
        "bell" => Directive::Bell,
        "notify" => Directive::Notify(arg.to_string()),
        "check-edit" => Directive::CheckEdit,
        other => {
            return Err(format!(
                "unknown directive `@sim {other}`; see docs/sim-agent.md for the list"
            ));
        }
    };
    Ok(directive)
}

/// `\n` → newline, `\t` → tab, `\\` → backslash; any other backslash is kept as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn parse_number<T: std::str::FromStr>(s: &str, verb: &str, what: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("`@sim {verb}`: `{s}` is not {what} (a whole number)"))
}

fn parse_exit_code(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i32>() {
        Ok(code) if (0..=255).contains(&code) => Ok(code),
        _ => Err(format!("`{s}` is not an exit code (0 to 255)")),
    }
}

/// A failure code must be non-zero, else the "failure" would read as success.
fn parse_fail_code(s: &str) -> Result<i32, String> {
    match parse_exit_code(s)? {
        0 => {
            Err("a failure exit code must be 1 to 255 (0 means success; use `@sim exit 0`)".into())
        }
        code => Ok(code),
    }
}

/// `300ms`, `2s`, `1.5s`, `1m`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a duration; write e.g. `300ms`, `2s` or `1m`");
    let (number, unit_secs) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(bad());
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(value * unit_secs).map_err(|_| bad())
}

/// `4096`, `64KiB`, `1MiB` (also `K`/`KB`/`M`/`MB`, all binary).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let bad = || format!("`@sim flood`: `{s}` is not a byte count; write e.g. `65536` or `64KiB`");
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KiB" | "k" => 1024,
        "M" | "MB" | "MiB" => 1024 * 1024,
        _ => return Err(bad()),
    };
    number.checked_mul(scale).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<Directive, String> {
        let lines = parse_prompt(line);
        assert_eq!(lines.len(), 1, "{line}");
        lines[0].parsed.clone()
    }

    #[test]
    fn parses_write_with_escapes_and_colons_in_content() {
        assert_eq!(
            one("@sim write src/a.txt: a: b\\nc"),
            Ok(Directive::Write {
                path: "src/a.txt".into(),
                content: "a: b\nc".into()
            })
        );
    }

    #[test]
    fn prose_and_indented_directives() {
        let lines = parse_prompt("Do things\n  @sim say hi\n@simulate no\n@sim done\r\n");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].number, 2);
        assert_eq!(lines[1].parsed, Ok(Directive::Done));
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("10"), Ok(10));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn codes_and_usage() {
        assert_eq!(
            one("@sim fail-attempts 2 1"),
            Ok(Directive::FailAttempts {
                attempts: 2,
                code: 1
            })
        );
        assert!(one("@sim fail 0").is_err());
        assert!(one("@sim exit 300").is_err());
        assert!(one("@sim usage 1 2").is_err());
        assert!(one("@sim usage 1 2 -3").is_err());
        assert!(one("@sim frobnicate").is_err());
    }

    #[test]
    fn first_prose_line_skips_directives_and_heading_marks() {
        assert_eq!(
            first_prose_line("\n@sim say x\n# Add a parser\nmore"),
            Some("Add a parser".into())
        );
        assert_eq!(first_prose_line("@sim done"), None);
    }
}
