//! `orch-tui replay TASK [--attempt N] [--speed X] [--review]`: plays an attempt's recorded
//! terminal session (`pty.cast`, asciicast v2) back on this terminal, with its timing.
//! Pauses longer than [`IDLE_LIMIT`] are shortened to it (an agent that waited ten minutes for
//! an answer replays in seconds). What the session printed goes to stdout exactly; notes go to
//! stderr, so `orch-tui replay t > out` holds only the session.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::agent::record::CAST_LOG;
use crate::agent::record::cast::read_cast;
use crate::core::domain::{AttemptNo, Role};

/// The longest pause replayed (before `--speed`).
pub const IDLE_LIMIT: Duration = Duration::from_secs(2);

pub fn replay(
    ctx: &Context,
    task: &str,
    attempt: Option<u32>,
    speed: f64,
    review: bool,
) -> CliResult {
    if !speed.is_finite() || speed <= 0.0 {
        return Err(CliError::bad_input(format!(
            "--speed {speed}: give a positive number (2 plays twice as fast, 0.5 half as fast)"
        )));
    }
    let ledger = ctx.open_ledger()?;
    if ledger.task(task)?.is_none() {
        return Err(CliError::bad_input(format!(
            "no task `{task}` in the ledger: `orch-tui status` lists the tasks"
        )));
    }
    let role = if review { Role::Reviewer } else { Role::Agent };
    let attempts = ledger.attempts(task)?;
    let chosen = match attempt {
        Some(n) => attempts
            .into_iter()
            .find(|a| a.n == AttemptNo(n) && a.role == role),
        None => attempts.into_iter().rev().find(|a| a.role == role),
    };
    let Some(a) = chosen else {
        return Err(CliError::bad_input(format!(
            "task `{task}` has no {}attempt{} to replay",
            if review { "review " } else { "" },
            attempt.map(|n| format!(" {n}")).unwrap_or_default()
        )));
    };
    let path = PathBuf::from(a.log_dir.unwrap_or_default()).join(CAST_LOG);
    let cast = read_cast(&path).map_err(|e| {
        CliError::failed(format!(
            "cannot replay {task}#{}: {e} (attempts recorded before orch-tui kept a cast have only pty.raw: `orch-tui logs {task} --raw`)",
            a.n
        ))
    })?;
    let tty = std::io::stdout().is_terminal();
    let took = cast
        .events
        .last()
        .zip(cast.events.first())
        .map_or(0, |(l, f)| l.ms.saturating_sub(f.ms));
    err_out!(
        "orch-tui: replaying {task}#{} ({}x{}, {} recorded) at {speed}x; Ctrl-C stops",
        a.n,
        cast.cols,
        cast.rows,
        crate::core::timeline::human_ms(took)
    );
    let mut out = std::io::stdout().lock();
    let mut prev: Option<u64> = None;
    for e in &cast.events {
        if let Some(p) = prev {
            let gap = Duration::from_millis(e.ms.saturating_sub(p)).min(IDLE_LIMIT);
            std::thread::sleep(gap.div_f64(speed));
        }
        prev = Some(e.ms);
        if e.code == "o" {
            // A reader that went away ends the replay.
            if out
                .write_all(e.data.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return Ok(EXIT_OK);
            }
        }
    }
    if tty {
        // Leave the terminal usable whatever the session left on: attributes, cursor, screen.
        let _ = out.write_all(b"\x1b[0m\x1b[?25h\x1b[?1049l\r\n");
        let _ = out.flush();
    }
    err_out!("orch-tui: end of {task}#{}", a.n);
    Ok(EXIT_OK)
}
