//! The end-of-run summary: one row per task (attempts, duration, outcome, review trail), then
//! the integration branch's commits, ready for one pull request.

use crate::core::domain::Role;
use crate::core::state::TaskState;
use crate::git::Repo;
use crate::ledger::{EventRow, Ledger, Result};

/// Commits listed at the end of a run; older ones are counted, with the command that shows them.
const SHOWN_COMMITS: usize = 30;

/// How a task went through the funnel, from its events: "checks ✓ · review ✗✓ · veto".
fn trail(events: &[EventRow]) -> String {
    let mut checks = String::new();
    let mut review = String::new();
    let mut approval = "";
    for e in events {
        match (e.actor.as_str(), e.kind.as_str()) {
            ("check", "check_passed") => checks.push('✓'),
            ("check", "check_failed") => checks.push('✗'),
            ("agent", "verdict") => review.push(if e.data["approve"] == true {
                '✓'
            } else {
                '✗'
            }),
            (actor, "state") if e.data["to"] == "approved" => {
                approval = match (actor, e.data["why"].as_str()) {
                    ("human", _) => "approved by human",
                    (_, Some(w)) if w.contains("funnel") => "auto",
                    _ => "approved",
                };
            }
            ("supervisor", "funnel") if e.data["stage"] == "veto" => approval = "veto window",
            _ => {}
        }
    }
    let mut parts = Vec::new();
    if !checks.is_empty() {
        parts.push(format!("checks {checks}"));
    }
    if !review.is_empty() {
        parts.push(format!("review {review}"));
    }
    if !approval.is_empty() {
        parts.push(approval.to_string());
    }
    parts.join(" · ")
}

pub fn summary_table(ledger: &Ledger) -> Result<String> {
    let tasks = ledger.tasks()?;
    let mut rows = vec![[
        "task".to_string(),
        "attempts".into(),
        "duration".into(),
        "outcome".into(),
        "review trail".into(),
    ]];
    for t in &tasks {
        let attempts: Vec<_> = ledger
            .attempts(&t.id)?
            .into_iter()
            .filter(|a| a.role == Role::Agent)
            .collect();
        let first = attempts.iter().map(|a| a.started_ms).min();
        let last = attempts.iter().filter_map(|a| a.ended_ms).max();
        let duration = match (first, last) {
            (Some(f), Some(l)) if l >= f => format_ms((l - f) as u64),
            _ => "-".into(),
        };
        let mut outcome = t.state.to_string();
        if let Some(r) = &t.reason
            && t.state != TaskState::Done
        {
            outcome.push_str(": ");
            outcome.push_str(r);
        }
        let events = ledger.events(0, Some(&t.id), 100_000)?;
        rows.push([
            t.id.clone(),
            attempts.len().to_string(),
            duration,
            outcome,
            trail(&events),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let outcome_pad = widths[3].saturating_sub(r[3].chars().count());
        out.push_str(&format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {}{}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            " ".repeat(outcome_pad.min(40)),
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    let counts = ledger.state_counts()?;
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    out.push_str(&format!("\n{} tasks: {}\n", tasks.len(), parts.join(", ")));
    Ok(out)
}

/// The integration branch's commits since the user's HEAD, oldest first, with their task.
pub fn integration_summary(repo: &Repo, branch: &str) -> String {
    let Ok(Some(head)) = repo.rev_parse("HEAD") else {
        return String::new();
    };
    let Ok(Some(tip)) = repo.rev_parse(branch) else {
        return String::new();
    };
    let Ok(commits) = repo.one_lines(&head, &tip) else {
        return String::new();
    };
    if commits.is_empty() {
        return format!("{branch}: nothing new since HEAD\n");
    }
    let mut out = format!(
        "{branch}: {} commit(s) ahead of HEAD, ready for one pull request\n",
        commits.len()
    );
    // A long run's list would bury the summary above it: the newest ones, and how to see all.
    let skip = commits.len().saturating_sub(SHOWN_COMMITS);
    if skip > 0 {
        out.push_str(&format!(
            "  … {skip} older commit(s): `git log --oneline HEAD..{branch}`\n"
        ));
    }
    for (c, line) in commits.iter().skip(skip) {
        out.push_str(&format!("  {} {line}\n", c.get(..8).unwrap_or(c)));
    }
    out
}

pub fn format_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
