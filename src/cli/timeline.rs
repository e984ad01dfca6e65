//! `orch-tui timeline [--json]`: where the run's time went, from the ledger's events (read
//! only): one row per slot, bars by phase, the human's decisions, totals, spend.

use std::io::IsTerminal;

use super::{CliResult, Context, EXIT_OK};
use crate::core::timeline::text::{LABEL_W, RowKind, rows};
use crate::core::timeline::{Phase, human_ms};
use crate::ledger::now_ms;

pub fn timeline(ctx: &Context, json: bool) -> CliResult {
    let ledger = ctx.open_ledger()?;
    let tl = crate::tui::data::load_timeline(&ledger, now_ms())?;
    if json {
        let totals: serde_json::Map<String, serde_json::Value> = tl
            .totals
            .iter()
            .map(|(p, ms)| (phase_key(*p), serde_json::Value::from(*ms)))
            .collect();
        let out = serde_json::json!({
            "start_ms": tl.start_ms,
            "end_ms": tl.end_ms,
            "lanes": tl.lanes,
            "marks": tl.marks,
            "totals_ms": totals,
            "waited_for_human_ms": tl.waited_for_human_ms(),
            "failures": tl.failures,
            "spend": tl.spend,
        });
        out!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(EXIT_OK);
    }
    let tty = std::io::stdout().is_terminal();
    let colour = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let width = if tty {
        crossterm::terminal::size().map_or(100, |(w, _)| w as usize)
    } else {
        100
    };
    if tl.lanes.is_empty() {
        out!("no agent has started yet");
        return Ok(EXIT_OK);
    }
    out!(
        "timeline {} · {}",
        human_ms(tl.end_ms - tl.start_ms),
        crate::core::timeline::text::summary(&tl)
    );
    for row in rows(&tl, width) {
        if !colour {
            out!("{}", row.text(LABEL_W));
            continue;
        }
        let mut s = format!("\x1b[2m{:<LABEL_W$}\x1b[0m", row.label);
        if row.kind == RowKind::Names {
            s.push_str("\x1b[2m");
        }
        for (c, p) in &row.cells {
            match p {
                Some(p) => s.push_str(&format!("\x1b[{}m{c}\x1b[0m", ansi(*p))),
                None => s.push(*c),
            }
        }
        out!("{}\x1b[0m", s.trim_end());
    }
    Ok(EXIT_OK)
}

fn phase_key(p: Phase) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn ansi(p: Phase) -> &'static str {
    match p {
        Phase::Starting | Phase::Paused => "90",
        Phase::Working => "32",
        Phase::WaitingInput => "33",
        Phase::Review => "36",
        Phase::Human => "35",
        Phase::MergeQueue => "34",
        Phase::Failed => "31",
    }
}
