//! Permission rules (`[permissions] allow/deny` in the config, and "allow always for this run"
//! answers): `Tool` or `Tool(pattern)`. The pattern is matched against what the call concerns —
//! a command for `Bash`, a path for the file tools — with `*` for any run of characters (not
//! crossing `/` in a path) and `**` for anything. `Edit` also names the other tools that change
//! files (Write, MultiEdit, NotebookEdit, Codex's apply_patch). A deny rule wins.

use std::fmt;

/// What the human or a rule answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// This call only.
    Allow,
    /// This call and every call the same rule covers, for the rest of the run.
    Always,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Always => "always",
            Decision::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "allow" | "yes" | "y" => Some(Decision::Allow),
            "always" | "a" => Some(Decision::Always),
            "deny" | "no" | "n" => Some(Decision::Deny),
            _ => None,
        }
    }

    pub fn allows(self) -> bool {
        self != Decision::Deny
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub tool: String,
    pub pattern: Option<String>,
}

/// Tools that change files: an `Edit(...)` rule covers them all.
const EDIT_TOOLS: &[&str] = &["Edit", "Write", "MultiEdit", "NotebookEdit", "apply_patch"];
const PATH_TOOLS: &[&str] = &[
    "Edit",
    "Write",
    "MultiEdit",
    "NotebookEdit",
    "Read",
    "apply_patch",
];

impl Rule {
    /// `Tool` or `Tool(pattern)`, or why not.
    pub fn parse(s: &str) -> Result<Rule, String> {
        let s = s.trim();
        let (tool, pattern) = match s.split_once('(') {
            Some((tool, rest)) => {
                let Some(p) = rest.strip_suffix(')') else {
                    return Err("has a `(` without its closing `)`".into());
                };
                (tool.trim(), Some(p.to_string()))
            }
            None => (s, None),
        };
        if tool.is_empty()
            || !tool
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*')
        {
            return Err("does not start with a tool name (letters, digits, `_`, or `*`)".into());
        }
        Ok(Rule {
            tool: tool.to_string(),
            pattern,
        })
    }

    /// The rule that allows exactly this kind of call again ("allow always"): the tool, and
    /// for a command its first word followed by anything.
    pub fn for_call(tool: &str, subject: &str) -> Rule {
        let pattern = if PATH_TOOLS.contains(&tool) || subject.is_empty() {
            None
        } else {
            subject.split_whitespace().next().map(|w| format!("{w}*"))
        };
        Rule {
            tool: tool.to_string(),
            pattern,
        }
    }

    pub fn matches(&self, tool: &str, subject: &str) -> bool {
        let tool_ok = self.tool == "*"
            || self.tool == tool
            || (self.tool == "Edit" && EDIT_TOOLS.contains(&tool));
        if !tool_ok {
            return false;
        }
        match &self.pattern {
            None => true,
            Some(p) => glob(p, subject, PATH_TOOLS.contains(&tool)),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Some(p) => write!(f, "{}({p})", self.tool),
            None => f.write_str(&self.tool),
        }
    }
}

/// `*` any run (not across `/` when `path`), `**` any run at all; everything else literal.
pub fn glob(pattern: &str, text: &str, path: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Memoised on (pattern index, text index): patterns and subjects are short.
    let mut memo = vec![None; (p.len() + 1) * (t.len() + 1)];
    fn go(
        p: &[char],
        t: &[char],
        i: usize,
        j: usize,
        path: bool,
        memo: &mut Vec<Option<bool>>,
    ) -> bool {
        let key = i * (t.len() + 1) + j;
        if let Some(v) = memo[key] {
            return v;
        }
        let v = if i == p.len() {
            j == t.len()
        } else if p[i] == '*' {
            let double = p.get(i + 1) == Some(&'*');
            let next = if double { i + 2 } else { i + 1 };
            let mut k = j;
            let mut found = false;
            loop {
                if go(p, t, next, k, path, memo) {
                    found = true;
                    break;
                }
                if k == t.len() || (path && !double && t[k] == '/') {
                    break;
                }
                k += 1;
            }
            found
        } else {
            j < t.len() && p[i] == t[j] && go(p, t, i + 1, j + 1, path, memo)
        };
        memo[key] = Some(v);
        v
    }
    go(&p, &t, 0, 0, path, &mut memo)
}

/// The answer the rules give a call, and the rule that gave it: deny rules first.
pub fn decide(
    allow: &[String],
    deny: &[String],
    always: &[Rule],
    tool: &str,
    subject: &str,
) -> Option<(Decision, String)> {
    let parsed = |list: &[String]| -> Vec<Rule> {
        list.iter().filter_map(|r| Rule::parse(r).ok()).collect()
    };
    if let Some(r) = parsed(deny).iter().find(|r| r.matches(tool, subject)) {
        return Some((Decision::Deny, format!("deny {r}")));
    }
    if let Some(r) = parsed(allow).iter().find(|r| r.matches(tool, subject)) {
        return Some((Decision::Allow, format!("allow {r}")));
    }
    always
        .iter()
        .find(|r| r.matches(tool, subject))
        .map(|r| (Decision::Allow, format!("allowed always for this run: {r}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_commands_and_paths() {
        let r = Rule::parse("Bash(cargo test*)").unwrap();
        assert!(r.matches("Bash", "cargo test -q"));
        assert!(!r.matches("Bash", "cargo build"));
        let e = Rule::parse("Edit(src/**)").unwrap();
        assert!(e.matches("Write", "src/a/b.rs"));
        assert!(!e.matches("Write", "docs/a.md"));
        let one = Rule::parse("Edit(src/*)").unwrap();
        assert!(one.matches("Edit", "src/a.rs"));
        assert!(!one.matches("Edit", "src/a/b.rs"), "* stays in one folder");
        assert!(Rule::parse("Read").unwrap().matches("Read", "anything"));
        assert!(Rule::parse("Bash(ls").is_err());
        assert!(Rule::parse("(x)").is_err());
    }

    #[test]
    fn deny_wins_and_always_covers_the_same_kind_of_call() {
        let allow = vec!["Bash(*)".to_string()];
        let deny = vec!["Bash(rm *)".to_string()];
        assert_eq!(
            decide(&allow, &deny, &[], "Bash", "rm -rf /").map(|d| d.0),
            Some(Decision::Deny)
        );
        assert_eq!(
            decide(&allow, &deny, &[], "Bash", "ls").map(|d| d.0),
            Some(Decision::Allow)
        );
        let always = vec![Rule::for_call("Bash", "npm install left-pad")];
        let (d, why) = decide(&[], &[], &always, "Bash", "npm ci").unwrap();
        assert_eq!(d, Decision::Allow);
        assert!(why.contains("Bash(npm*)"), "{why}");
        assert_eq!(decide(&[], &[], &[], "Bash", "ls"), None);
    }
}
