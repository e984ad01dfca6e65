//! Diagnostics for bad input files, and the small toolkit the plan and config validators share
//! to read a spanned TOML tree while collecting every error (never stopping at the first one).
//!
//! A `Diagnostic` always carries a file and, when the problem is inside the file, a 1-based line
//! and column: users jump straight to it from the message (DESIGN §7: "where: file and line").

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

mod line_index;
pub use line_index::{LineIndex, line_col};

/// One problem found in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem is the file as a whole (missing, unreadable).
    pub line: usize,
    /// 1-based, counted in characters; 0 together with `line == 0`.
    pub col: usize,
    pub message: String,
    /// What to do about it; may be empty.
    pub hint: String,
}

impl Diagnostic {
    /// A problem with the file as a whole (it has no position inside the file).
    pub fn whole_file(file: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: 0,
            col: 0,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A problem at byte `offset` of `text`.
    pub fn at(
        file: &str,
        text: &str,
        offset: usize,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        let (line, col) = line_col(text, offset);
        Diagnostic {
            file: file.to_string(),
            line,
            col,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: error: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, self.line, self.col, self.message
            )?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Renders a list of diagnostics the way `plan validate` prints them: one block per error, in
/// order, followed by a count so a long list still ends with the total.
pub fn render_all(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    let n = diags.len();
    out.push_str(&format!("{n} error{}\n", if n == 1 { "" } else { "s" }));
    out
}

/// Collects diagnostics for one file while a validator walks its TOML tree.
pub struct Sink<'t> {
    pub file: &'t str,
    pub text: &'t str,
    pub diags: Vec<Diagnostic>,
    /// Built on first use: most files have no error and ask for few positions.
    lines: Option<LineIndex>,
}

impl<'t> Sink<'t> {
    pub fn new(file: &'t str, text: &'t str) -> Self {
        Sink {
            file,
            text,
            diags: Vec::new(),
            lines: None,
        }
    }

    fn index(&mut self) -> &LineIndex {
        self.lines.get_or_insert_with(|| LineIndex::new(self.text))
    }

    /// 1-based (line, column) of byte `offset` of the file.
    pub fn line_col(&mut self, offset: usize) -> (usize, usize) {
        let text = self.text;
        self.index().line_col(text, offset)
    }

    /// Byte offset where 1-based `line` starts.
    pub fn line_start(&mut self, line: usize) -> usize {
        let text = self.text;
        self.index().line_start(text, line)
    }

    pub fn error(
        &mut self,
        span: &Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let (line, col) = self.line_col(span.start);
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
            hint: hint.into(),
        });
    }

    pub fn line(&mut self, span: &Range<usize>) -> usize {
        self.line_col(span.start).0
    }

    /// Parses `text` as TOML. On a syntax error, records every error the parser reports (it
    /// recovers and keeps going) and returns `None`: a broken tree would only add noise.
    pub fn parse(&mut self) -> Option<Spanned<DeTable<'t>>> {
        let (table, errors) = DeTable::parse_recoverable(self.text);
        if errors.is_empty() {
            return Some(table);
        }
        // A file that is not TOML at all can produce an error per line; past a screenful the
        // rest is noise, so keep the first ones.
        for e in errors.iter().take(MAX_SYNTAX_ERRORS) {
            let span = e.span().unwrap_or(0..0);
            if e.message().contains("duplicate key") {
                // The parser does not say which key; it is the text under the span.
                let key = self.text.get(span.clone()).unwrap_or("").trim();
                self.error(
                    &span,
                    format!("TOML syntax: duplicate key `{key}`"),
                    "each key may appear only once in a table: remove or rename one of them",
                );
            } else {
                self.error(
                    &span,
                    format!("TOML syntax: {}", e.message()),
                    "this is not valid TOML here; see https://toml.io for the syntax",
                );
            }
        }
        None
    }

    /// Reports every key of `table` not in `allowed`. `place` names the table in the message,
    /// e.g. "task `build`" or "[defaults]".
    pub fn check_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], place: &str) {
        let mut unknown: Vec<&Spanned<std::borrow::Cow<'_, str>>> = table
            .keys()
            .filter(|k| !allowed.contains(&k.get_ref().as_ref()))
            .collect();
        // The map may not keep file order; report in file order.
        unknown.sort_by_key(|k| k.span().start);
        for key in unknown {
            let name = key.get_ref().as_ref();
            let mut hint = format!("allowed keys in {place}: {}", allowed.join(", "));
            if let Some(close) = closest(name, allowed) {
                hint = format!("did you mean `{close}`? {hint}");
            }
            self.error(
                &key.span(),
                format!("unknown key `{name}` in {place}"),
                hint,
            );
        }
    }

    fn wrong_type(&mut self, v: &Spanned<DeValue<'_>>, what: &str, expected: &str, example: &str) {
        self.error(
            &v.span(),
            format!(
                "{what} must be {expected}, found {}",
                v.get_ref().type_str()
            ),
            format!("write it like {example}"),
        );
    }

    /// A string value; reports a type error and returns `None` otherwise.
    pub fn string(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        what: &str,
        example: &str,
    ) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(v, what, "a string", example);
                None
            }
        }
    }

    /// An integer that fits in i64.
    pub fn integer(&mut self, v: &Spanned<DeValue<'_>>, what: &str, example: &str) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        &v.span(),
                        format!("{what} is too large"),
                        format!("write it like {example}"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(v, what, "an integer", example);
                None
            }
        }
    }

    /// An integer in `min..=max`; the message names the range when it is out of it.
    pub fn int_in(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        what: &str,
        min: i64,
        max: i64,
        example: &str,
    ) -> Option<i64> {
        let n = self.integer(v, what, example)?;
        if n < min || n > max {
            let range = if max == i64::MAX {
                format!("at least {min}")
            } else {
                format!("between {min} and {max}")
            };
            self.error(
                &v.span(),
                format!("{what} is {n}, but must be {range}"),
                format!("write it like {example}"),
            );
            return None;
        }
        Some(n)
    }

    /// A number (integer or float), finite.
    pub fn number(&mut self, v: &Spanned<DeValue<'_>>, what: &str, example: &str) -> Option<f64> {
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => {
                self.wrong_type(v, what, "a number", example);
                return None;
            }
        };
        match parsed {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                self.error(
                    &v.span(),
                    format!("{what} must be a finite number"),
                    format!("write it like {example}"),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, v: &Spanned<DeValue<'_>>, what: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, what, "true or false", "true");
                None
            }
        }
    }

    /// A table value (inline `{ ... }` or a `[header]`).
    pub fn table<'v, 'i>(
        &mut self,
        v: &'v Spanned<DeValue<'i>>,
        what: &str,
        example: &str,
    ) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, what, "a table", example);
                None
            }
        }
    }

    /// An array of strings; each bad element is reported on its own.
    pub fn strings(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        what: &str,
        example: &str,
    ) -> Option<Vec<String>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, what, "an array of strings", example);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(s.to_string()),
                _ => {
                    self.wrong_type(item, &format!("each entry of {what}"), "a string", example);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A duration string such as "20m", in milliseconds.
    pub fn duration(&mut self, v: &Spanned<DeValue<'_>>, what: &str) -> Option<u64> {
        let s = self.string(v, what, "\"20m\"")?;
        match crate::core::duration::parse_duration(&s) {
            Ok(ms) => Some(ms),
            Err(e) => {
                self.error(
                    &v.span(),
                    format!("{what}: bad duration \"{s}\": {e}"),
                    "write a number followed by a unit (ms, s, m, h, d), e.g. \"90s\", \"20m\", \"1h30m\"",
                );
                None
            }
        }
    }
}

const MAX_SYNTAX_ERRORS: usize = 20;

/// Entries of a table in file order (the map itself may be sorted by key).
pub fn entries_in_order<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut v: Vec<_> = table.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// The allowed name closest to a misspelt one, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let len = name.chars().count();
    allowed
        .iter()
        .filter_map(|a| {
            // A likely typo is at most this far; past it, stop counting (a plan with thousands
            // of ids asks this for each unknown dependency).
            let limit = 2.max(a.len() / 4).min(a.len().checked_sub(1)?);
            if len.abs_diff(a.chars().count()) > limit {
                return None;
            }
            edit_distance_within(name, a, limit).map(|d| (d, *a))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// The edit distance between `a` and `b` when it is at most `limit`, else None.
fn edit_distance_within(a: &str, b: &str, limit: usize) -> Option<usize> {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        // No cell of a later row can be smaller than the smallest of this one.
        if cur.iter().min().is_some_and(|&m| m > limit) {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|&d| d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_position_and_hint() {
        let d = Diagnostic::at("plan.toml", "a\nbc", 3, "boom", "do x");
        assert_eq!(d.to_string(), "plan.toml:2:2: error: boom\n  hint: do x");
        let w = Diagnostic::whole_file("plan.toml", "missing", "");
        assert_eq!(w.to_string(), "plan.toml: error: missing");
    }

    proptest::proptest! {
        #[test]
        fn closest_is_the_nearest_name_within_the_typo_limit(name in "[a-dé-]{0,9}", allowed in proptest::collection::vec("[a-dé-]{0,9}", 0..12)) {
            // The reference: full edit distances, then the limit.
            fn distance(a: &str, b: &str) -> usize {
                let b: Vec<char> = b.chars().collect();
                let mut prev: Vec<usize> = (0..=b.len()).collect();
                for (i, ca) in a.chars().enumerate() {
                    let mut cur = vec![i + 1; b.len() + 1];
                    for (j, cb) in b.iter().enumerate() {
                        cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
                    }
                    prev = cur;
                }
                prev[b.len()]
            }
            let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
            let expected = allowed
                .iter()
                .map(|a| (distance(&name, a), *a))
                .filter(|(d, a)| *d <= 2.max(a.len() / 4) && *d < a.len())
                .min_by_key(|(d, _)| *d)
                .map(|(_, a)| a);
            proptest::prop_assert_eq!(closest(&name, &allowed), expected);
        }
    }

    #[test]
    fn closest_finds_typos_only() {
        assert_eq!(
            closest("depend_on", &["depends_on", "id"]),
            Some("depends_on")
        );
        assert_eq!(closest("zzzzzz", &["depends_on", "id"]), None);
    }
}
