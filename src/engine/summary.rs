//! The end-of-run summary table: task, attempts, duration, outcome.

use crate::ledger::{Ledger, Result};

pub fn summary_table(ledger: &Ledger) -> Result<String> {
    let tasks = ledger.tasks()?;
    let mut rows = vec![[
        "task".to_string(),
        "attempts".into(),
        "duration".into(),
        "outcome".into(),
    ]];
    for t in &tasks {
        let attempts = ledger.attempts(&t.id)?;
        let first = attempts.iter().map(|a| a.started_ms).min();
        let last = attempts.iter().filter_map(|a| a.ended_ms).max();
        let duration = match (first, last) {
            (Some(f), Some(l)) if l >= f => format_ms((l - f) as u64),
            _ => "-".into(),
        };
        let mut outcome = t.state.clone();
        if let Some(r) = &t.reason
            && !t.state.eq("done")
        {
            outcome.push_str(": ");
            outcome.push_str(r);
        }
        rows.push([t.id.clone(), attempts.len().to_string(), duration, outcome]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        out.push_str(&format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
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

pub fn format_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
