//! The review funnel's rules, pure: which stage comes next after an attempt finished, after its
//! checks, after the reviewer, and whether the human must approve or may only veto.

use crate::core::config::Autonomy;

/// Where a task in `review` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Check commands run in the attempt's worktree.
    Checks,
    /// The reviewer agent reads the diff and answers with a verdict.
    Reviewer,
    /// Waits for the human's key (or `orch-tui approve`).
    Human,
    /// Merges at `until_ms` unless the human vetoes before.
    Veto { until_ms: u64 },
    /// Nothing left: approve and queue the merge.
    Approve,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Checks => "checks",
            Stage::Reviewer => "reviewer",
            Stage::Human => "human",
            Stage::Veto { .. } => "veto",
            Stage::Approve => "approve",
        }
    }
}

/// What the funnel knows about one finished attempt.
#[derive(Debug, Clone)]
pub struct FunnelFacts {
    pub has_checks: bool,
    pub has_reviewer: bool,
    pub autonomy: Autonomy,
    pub risk_high: bool,
    /// Lines added plus removed.
    pub diff_lines: u64,
    pub large_diff_lines: u64,
    pub veto_window_ms: u64,
}

/// The first stage after the agent's work was committed.
pub fn first_stage(f: &FunnelFacts, now_ms: u64) -> Stage {
    if f.has_checks {
        Stage::Checks
    } else {
        after_checks(f, now_ms)
    }
}

/// After the checks passed (or when there are none).
pub fn after_checks(f: &FunnelFacts, now_ms: u64) -> Stage {
    if f.has_reviewer {
        Stage::Reviewer
    } else {
        human_stage(f, now_ms)
    }
}

/// After the reviewer approved (or when there is none): what the human's part is.
pub fn human_stage(f: &FunnelFacts, now_ms: u64) -> Stage {
    match f.autonomy {
        Autonomy::InTheLoop => Stage::Human,
        Autonomy::OnTheLoop if f.risk_high || f.diff_lines > f.large_diff_lines => Stage::Human,
        Autonomy::OnTheLoop => Stage::Veto {
            until_ms: now_ms.saturating_add(f.veto_window_ms),
        },
        Autonomy::OutOfTheLoop => Stage::Approve,
    }
}

/// Keep the tail of a check's output for the next attempt's prompt: enough to see the failure,
/// short enough not to drown the task.
pub fn failure_excerpt(output: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    let mut s = String::new();
    if start > 0 {
        s.push_str(&format!("[... {start} earlier lines]\n"));
    }
    s.push_str(&lines[start..].join("\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(autonomy: Autonomy) -> FunnelFacts {
        FunnelFacts {
            has_checks: false,
            has_reviewer: false,
            autonomy,
            risk_high: false,
            diff_lines: 10,
            large_diff_lines: 400,
            veto_window_ms: 1_000,
        }
    }

    #[test]
    fn stages_run_in_order() {
        let mut f = facts(Autonomy::OutOfTheLoop);
        f.has_checks = true;
        f.has_reviewer = true;
        assert_eq!(first_stage(&f, 0), Stage::Checks);
        assert_eq!(after_checks(&f, 0), Stage::Reviewer);
        assert_eq!(human_stage(&f, 0), Stage::Approve);
        f.has_checks = false;
        assert_eq!(first_stage(&f, 0), Stage::Reviewer);
    }

    #[test]
    fn autonomy_decides_the_humans_part() {
        assert_eq!(human_stage(&facts(Autonomy::InTheLoop), 5), Stage::Human);
        assert_eq!(
            human_stage(&facts(Autonomy::OnTheLoop), 5),
            Stage::Veto { until_ms: 1_005 }
        );
        assert_eq!(
            human_stage(&facts(Autonomy::OutOfTheLoop), 5),
            Stage::Approve
        );
    }

    #[test]
    fn risky_or_large_changes_always_wait_for_the_human() {
        let mut f = facts(Autonomy::OnTheLoop);
        f.risk_high = true;
        assert_eq!(human_stage(&f, 0), Stage::Human);
        let mut f = facts(Autonomy::OnTheLoop);
        f.diff_lines = 401;
        assert_eq!(human_stage(&f, 0), Stage::Human);
        // Out of the loop means out of the loop, even for risky work: the user chose it.
        let mut f = facts(Autonomy::OutOfTheLoop);
        f.risk_high = true;
        assert_eq!(human_stage(&f, 0), Stage::Approve);
    }

    #[test]
    fn excerpt_keeps_the_tail() {
        let out: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        let e = failure_excerpt(&out, 3);
        assert_eq!(e, "[... 47 earlier lines]\nline 48\nline 49\nline 50");
        assert_eq!(failure_excerpt("one", 3), "one");
    }
}
