//! The reviewer's prompt: the task, the check results and the diff, and how to answer
//! (`orch-tui worker verdict approve|changes --notes TEXT`). Simulator directives reach only a
//! simulated reviewer: a real one reads the task as written.

use crate::core::config::{Adapter, AgentProfile};
use crate::core::domain::AttemptNo;

pub fn review_prompt(
    task: &str,
    title: &str,
    prompt: &str,
    n: AttemptNo,
    diff: &str,
    checks: &str,
    reviewer: &AgentProfile,
) -> String {
    let simulated = reviewer.adapter == Adapter::Sim;
    let mut directives = Vec::new();
    let mut quoted = String::new();
    for line in prompt.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("@review ") {
            directives.push(review_directive(rest.trim(), n));
        } else {
            // Directives meant for the task's agent must not be replayed by a simulated reviewer.
            quoted.push_str(&line.replace("@sim", "(sim)"));
            quoted.push('\n');
        }
    }
    let checks = if checks.is_empty() {
        "(no checks configured)\n"
    } else {
        checks
    };
    let mut p = format!(
        "You are reviewing attempt {n} of task `{task}`: {title}\n\n\
         ## The task\n\n{quoted}\n## Check results\n\n{checks}\n## The change\n\n```diff\n{diff}```\n\n\
         Answer by running exactly one of:\n\n\
         \x20   \"$ORCH_BIN\" worker verdict approve [--notes TEXT]\n\
         \x20   \"$ORCH_BIN\" worker verdict changes --notes \"what to change\"\n",
    );
    if !simulated {
        // A reviewer that cannot run commands still has a way to answer.
        p.push_str(
            "\nIf you cannot run commands, make the last line of your reply exactly \
             `VERDICT: approve` or `VERDICT: changes: <what to change>`.\n",
        );
    }
    if simulated {
        if directives.is_empty() {
            // A simulated reviewer with no script approves.
            directives.push("@sim verdict approve".to_string());
        }
        for d in directives {
            p.push('\n');
            p.push_str(&d);
        }
        p.push('\n');
    }
    p
}

/// `approve`, `changes NOTES`, or `changes-attempts K NOTES` (ask for changes on attempts up to
/// K, then approve): the simulated reviewer's script, for tests and the demo.
fn review_directive(rest: &str, n: AttemptNo) -> String {
    if let Some(more) = rest.strip_prefix("changes-attempts ") {
        let (k, notes) = more.split_once(' ').unwrap_or((more, "please revise"));
        let k: u32 = k.parse().unwrap_or(0);
        return if n.0 <= k {
            format!("@sim verdict changes {notes}")
        } else {
            "@sim verdict approve".to_string()
        };
    }
    format!("@sim verdict {rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviewer_script_follows_the_attempt_number() {
        assert_eq!(
            review_directive("approve", AttemptNo(1)),
            "@sim verdict approve"
        );
        assert_eq!(
            review_directive("changes-attempts 1 name it better", AttemptNo(1)),
            "@sim verdict changes name it better"
        );
        assert_eq!(
            review_directive("changes-attempts 1 x", AttemptNo(2)),
            "@sim verdict approve"
        );
    }
}
