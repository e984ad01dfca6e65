//! `status`, `events`: read-only views of the ledger (`logs` is in `logs.rs`).

use std::sync::mpsc::channel;
use std::time::Duration;

use super::{CliError, CliResult, Context, EXIT_OK};
use crate::core::domain::{EventKind, FunnelStage};
use crate::core::state::TaskState;
use crate::engine::summary::format_ms;
use crate::ledger::{EventRow, now_ms};
use crate::os::out;
use crate::read::{InboxItem, InboxKind, JsonError, Snapshot, SupervisorState};

/// `status` and `status --json`: both print one snapshot of the read model (`crate::read`), the
/// same the TUI shows. (`--json` writes it without building every attempt's row: the same
/// bytes, in half the time on a large ledger.)
pub fn status(ctx: &Context, json: bool) -> CliResult {
    let ledger = ctx.open_ledger()?;
    if json {
        let printed = print_json(&ledger);
        drop(ledger);
        return printed.map(|()| EXIT_OK);
    }
    // Pages read through a map of the file rather than copied into SQLite's page cache, as
    // `status --json` reads them: 41 -> 39 ms at 10,000 tasks. This connection only reads.
    let _ = ledger.conn().execute_batch("PRAGMA mmap_size = 268435456");
    let snap = crate::read::snapshot(&ledger, now_ms())?;
    print_text(&snap);
    // The process ends right after: freeing tens of thousands of rows one by one would cost a
    // large plan's status a tenth of its time for nothing. (The connection is closed as usual:
    // the last one to close removes the WAL file.)
    std::mem::forget(snap);
    drop(ledger);
    if let Ok((running, _)) = super::attach::leftovers(ctx)
        && !running.is_empty()
    {
        let ids: Vec<String> = running.iter().map(|i| i.to_string()).collect();
        out!(
            "holders with no live attempt (attempt ids): {}; `orch-tui gc` stops them",
            ids.join(", ")
        );
    }
    Ok(EXIT_OK)
}

/// Buffered: one write per 64 KiB, not per line. A reader that went away (`| head -1`) ends the
/// listing; that is a normal end.
fn print_text(snap: &Snapshot) {
    use std::io::Write;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, Stdout);
    for l in &text_lines(snap) {
        if w.write_all(l.as_bytes())
            .and_then(|()| w.write_all(b"\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = w.flush();
}

/// stdout for a writer: what `out` writes, so a reader that went away ends the writing quietly.
struct Stdout;

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if out::write_bytes(buf) {
            Ok(buf.len())
        } else {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The snapshot as JSON: indented for a person at a terminal, one line for a pipe (a plan of
/// 10,000 tasks is megabytes either way; the compact form is half the bytes, and written
/// without building every attempt's row, `read::write_json`).
fn print_json(ledger: &crate::ledger::Ledger) -> Result<(), CliError> {
    use std::io::{IsTerminal, Write};
    let mut w = std::io::BufWriter::with_capacity(1 << 16, Stdout);
    let written = if std::io::stdout().is_terminal() {
        let snap = crate::read::snapshot(ledger, now_ms())?;
        let written = serde_json::to_writer_pretty(&mut w, &snap).map_err(std::io::Error::from);
        std::mem::forget(snap);
        written
    } else {
        out::widen_stdout_pipe();
        match crate::read::write_json(ledger, now_ms(), &mut w) {
            Err(JsonError::Ledger(e)) => return Err(e.into()),
            Err(JsonError::Write(e)) => Err(e),
            Ok(()) => Ok(()),
        }
    };
    let ended = written
        .and_then(|()| w.write_all(b"\n"))
        .and_then(|()| w.flush());
    match ended {
        // The reader went away (`| head -c 100`): a normal end.
        Err(_) if out::stdout_gone() => Ok(()),
        Err(e) => Err(CliError::failed(format!(
            "cannot write the status as JSON: {e}"
        ))),
        Ok(()) => Ok(()),
    }
}

fn text_lines(snap: &Snapshot) -> Vec<String> {
    let mut lines = vec![format!(
        "plan {}  ·  {} tasks  ·  spend {} tokens, ${:.2}",
        snap.run.plan.as_deref().unwrap_or("(none loaded)"),
        snap.tasks.len(),
        snap.spend.tokens,
        snap.spend.cost_usd
    )];
    let running = matches!(snap.run.supervisor, SupervisorState::Running { .. });
    lines.push(match snap.run.supervisor {
        SupervisorState::Running { pid: 0 } => "supervisor: starting".to_string(),
        SupervisorState::Running { pid } => format!("supervisor: running (pid {pid})"),
        SupervisorState::NotRunning {
            attempts_to_recover: live,
        } if live > 0 => format!(
            "supervisor: none running; {live} attempt{} marked live will be recovered at the \
             next `orch-tui run` (their agents are stopped and their tasks run again)",
            if live == 1 { "" } else { "s" }
        ),
        SupervisorState::NotRunning { .. } => "supervisor: none running".to_string(),
    });
    if let Some(hold) = &snap.run.hold {
        lines.push(format!("run held: {hold}"));
    }
    let parts: Vec<String> = snap
        .counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    lines.extend(base_lines(&snap.run));
    // Limits, breakers and a spent run budget: why nothing (new) starts.
    for a in &snap.run.alerts {
        lines.push(a.line(snap.at_ms));
    }
    lines.push(format!("{}\n", parts.join(", ")));
    let w = snap
        .tasks
        .iter()
        .map(|t| t.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    lines.push(format!(
        "{:<w$}  {:<9}  {:>8}  {:<10}  detail",
        "task", "state", "attempts", "agent"
    ));
    let now = snap.at_ms;
    for t in &snap.tasks {
        let last = t.attempts.last();
        let agent = last.map_or("-", |a| a.profile.as_str());
        let detail = match (t.state, last) {
            // Nobody supervises it: its clock is not running, whatever the ledger last said.
            (TaskState::Working | TaskState::Assigned, Some(a))
                if !running && a.state.is_live() =>
            {
                format!(
                    "no supervisor: recovered at the next start, {} tokens",
                    a.tokens_in.saturating_add(a.tokens_out)
                )
            }
            (TaskState::Working, Some(a)) => format!(
                "{} for {}, {} tokens",
                a.substatus,
                format_ms(now.saturating_sub(a.started_ms.max(0) as u64)),
                a.tokens_in.saturating_add(a.tokens_out)
            ),
            (TaskState::Review, _) => {
                format!("stage: {}", t.stage.map_or("-", FunnelStage::as_str))
            }
            (_, _) => t.reason.clone().unwrap_or_default(),
        };
        lines.push(format!(
            "{:<w$}  {:<9}  {:>8}  {:<10}  {}",
            t.id,
            t.state,
            t.attempts.len(),
            agent,
            detail
        ));
    }
    if !snap.inbox.is_empty() {
        lines.push(format!("\ninbox ({}):", snap.inbox.len()));
        for i in &snap.inbox {
            lines.push(inbox_line(i, now));
        }
    }
    lines
}

/// `  task [kind] what · details — what to do`.
fn inbox_line(i: &InboxItem, now: u64) -> String {
    let task = i.task.as_deref().unwrap_or("(run)");
    let mut what = i.text.clone();
    let hint = match &i.kind {
        InboxKind::Held | InboxKind::Sync => String::new(),
        InboxKind::Limited { .. } => "it resumes by itself".into(),
        // The text is `TOOL: subject` already.
        InboxKind::Permission { .. } => format!("`orch-tui answer {task} allow|always|deny`"),
        InboxKind::IdleTurn => {
            format!("review it: `orch-tui done {task}`, or answer in the TUI (focus its agent)")
        }
        InboxKind::Question | InboxKind::Dialog => "answer it in the TUI (focus its agent)".into(),
        InboxKind::Approval(a) => {
            what = format!("#{} {what}", a.n);
            if !a.checks.is_empty() {
                what.push_str(&format!(
                    " · checks {}/{}",
                    a.checks_passed(),
                    a.checks.len()
                ));
            }
            if let Some(v) = a.verdict {
                what.push_str(&format!(" · reviewer {v}"));
            }
            if let Some(l) = a.diff_lines {
                what.push_str(&format!(" · {l} lines changed"));
            }
            match (a.stage, a.until_ms) {
                (FunnelStage::Veto, Some(u)) => format!(
                    "merges in {} unless vetoed: `orch-tui reject {task} --note ...`",
                    format_ms(u.saturating_sub(now))
                ),
                _ => format!("`orch-tui approve {task}` or `orch-tui reject {task} --note ...`"),
            }
        }
        InboxKind::BudgetExhausted { budgets } => {
            for b in budgets {
                what.push_str(&format!(" · {}", b.describe()));
            }
            format!("`orch-tui retry {task} --note ...` or `orch-tui cancel {task}`")
        }
        InboxKind::Escalated => {
            format!("`orch-tui retry {task} --note ...` or `orch-tui cancel {task}`")
        }
        InboxKind::Failed { .. } => format!("`orch-tui retry {task}`"),
        InboxKind::BudgetWarning { .. } => String::new(),
    };
    if hint.is_empty() {
        format!("  {task} [{}] {what}", i.kind.title())
    } else {
        format!("  {task} [{}] {what} — {hint}", i.kind.title())
    }
}

/// False once stdout is closed.
fn print_event(e: &EventRow, json: bool) -> bool {
    if json {
        return out::say(&serde_json::to_string(e).unwrap_or_default());
    }
    let secs = e.ts_ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let who = match (&e.task, e.attempt) {
        (Some(t), Some(a)) => format!("{t}#{a}"),
        (Some(t), None) => t.clone(),
        _ => "-".into(),
    };
    let detail = if e.kind == EventKind::State {
        format!(
            "{} -> {}",
            e.data["from"].as_str().unwrap_or("?"),
            e.data["to"].as_str().unwrap_or("?")
        )
    } else {
        e.data.to_string()
    };
    out::say(&format!(
        "{:>6} {h:02}:{m:02}:{s:02} {:<10} {:<22} {:<14} {detail}",
        e.seq, e.actor, who, e.kind
    ))
}

pub fn events(ctx: &Context, follow: bool, json: bool, task: Option<&str>) -> CliResult {
    let ledger = ctx.open_ledger()?;
    let mut after = 0;
    // Follow by watching .orch/ for writes to the ledger's WAL, not by polling on a timer.
    let (tx, rx) = channel();
    let _watcher = if follow {
        use notify::Watcher;
        let mut w = notify::recommended_watcher(move |_res| {
            let _ = tx.send(());
        })
        .map_err(|e| CliError::failed(format!("cannot watch the ledger: {e}")))?;
        w.watch(&ctx.paths.orch, notify::RecursiveMode::NonRecursive)
            .map_err(|e| {
                CliError::failed(format!("cannot watch {}: {e}", ctx.paths.orch.display()))
            })?;
        Some(w)
    } else {
        None
    };
    loop {
        loop {
            let batch = ledger.events(after, task, 1000)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for e in &batch {
                // The reader went away: a normal end, even while following.
                if !print_event(e, json) {
                    return Ok(EXIT_OK);
                }
            }
        }
        if !follow || out::stdout_closed_by_reader() {
            return Ok(EXIT_OK);
        }
        // A long timeout only guards against a missed notification (and notices a reader that
        // went away while nothing happened).
        let _ = rx.recv_timeout(Duration::from_secs(2));
        while rx.try_recv().is_ok() {}
    }
}

/// "base: main @ 1a2b3c4d", and a sync asked for, in words.
fn base_lines(run: &crate::read::RunView) -> Vec<String> {
    let i = &run.integration;
    let short = |o: &str| o.get(..8).unwrap_or(o).to_string();
    let mut lines = Vec::new();
    if let (Some(r), Some(o)) = (&i.base.refname, &i.base.commit) {
        lines.push(format!(
            "base: {} @ {}",
            crate::core::base::label(r),
            short(o)
        ));
    }
    if let Some(r) = &i.sync.requested {
        lines.push(format!(
            "sync onto {} ({}) asked: the merge queue takes it when no merge is in flight{}",
            crate::core::base::label(&r.refname),
            short(&r.onto),
            if run.hold.is_some() {
                " (it waits: the run is held)"
            } else {
                ""
            }
        ));
    }
    lines
}
