//! The agent's own transcript: found from what the attempt recorded (the hooks' log, the first
//! stream event in the text log), linked from the attempt's log folder, and read as a
//! conversation. The transcripts are real: Claude Code 2.1.328 and Codex 0.169.0 run against
//! the mock servers (tests/fixtures/transcripts, trimmed of the CLIs' own instructions).

use std::path::{Path, PathBuf};

use orch_tui::agent::record::text::{LineKind, StampCache, TextLine, write_line};
use orch_tui::agent::record::transcript::{Homes, Item, Writer, locate, read, render};
use orch_tui::agent::record::{TEXT_LOG, TRANSCRIPT_LINK};

const CLAUDE: &str = "tests/fixtures/transcripts/claude-2.1.328.jsonl";
const CODEX: &str = "tests/fixtures/transcripts/codex-0.169.0.jsonl";

fn homes(root: &Path) -> Homes {
    Homes {
        claude: root.join("claude-home"),
        codex: root.join("codex-home"),
    }
}

/// A text log whose lines are what the agent printed, as the recorder writes them.
fn write_log(dir: &Path, printed: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut buf = Vec::new();
    let mut stamps = StampCache::default();
    for (i, p) in printed.iter().enumerate() {
        let line = TextLine::new(1_700_000_000_000 + i as u64, LineKind::Output, *p);
        write_line(&mut buf, &mut stamps, &line);
    }
    std::fs::write(dir.join(TEXT_LOG), buf).unwrap();
}

#[test]
fn a_claude_transcript_reads_as_the_conversation() {
    let c = read(Path::new(CLAUDE)).unwrap();
    assert_eq!(c.writer, Writer::Claude);
    let want = vec![
        Item::User("write a file\n@mock write hello.txt: hi\n@mock bash echo done".into()),
        Item::Assistant("On it.".into()),
        Item::ToolCall {
            name: "Write".into(),
            subject: "/tmp/cl/work.d_x/hello.txt".into(),
        },
        Item::Assistant("On it.".into()),
        Item::ToolCall {
            name: "Bash".into(),
            subject: "echo done".into(),
        },
        Item::ToolResult {
            text: "done".into(),
            error: false,
        },
        Item::Assistant("Done.".into()),
    ];
    // The first tool result's text is long; compare its start.
    let mut got = c.items.clone();
    let first_result = got.remove(3);
    assert!(
        matches!(&first_result, Item::ToolResult { text, error: false } if text.starts_with("File created successfully")),
        "{first_result:?}"
    );
    assert_eq!(got, want);
    let lines = render(&c);
    assert_eq!(lines[0].1, "you › write a file");
    assert!(
        lines.iter().any(|(_, l)| l == "  → Bash echo done"),
        "{lines:#?}"
    );
    assert_eq!(lines.last().unwrap().1, "claude › Done.");
}

#[test]
fn a_codex_rollout_reads_as_the_conversation() {
    let c = read(Path::new(CODEX)).unwrap();
    assert_eq!(c.writer, Writer::Codex);
    assert_eq!(
        c.items[0],
        Item::User("write it\n@mock write hello.txt: hi\n@mock bash echo done".into())
    );
    let calls: Vec<&Item> = c
        .items
        .iter()
        .filter(|i| matches!(i, Item::ToolCall { .. }))
        .collect();
    assert_eq!(calls.len(), 2, "{:#?}", c.items);
    assert!(
        c.items
            .iter()
            .any(|i| matches!(i, Item::ToolResult { text, .. } if text.contains("done"))),
        "{:#?}",
        c.items
    );
    assert_eq!(c.items.last(), Some(&Item::Assistant("Done.".into())));
    assert_eq!(render(&c).last().unwrap().1, "codex › Done.");
}

#[test]
fn found_from_claudes_first_stream_event_and_linked_from_the_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let h = homes(dir.path());
    let cwd = "/work/repo/.orch/worktrees/t-1";
    let id = "e9b5eba1-59d9-466d-b27d-5b4b5d6f9f5b";
    let target: PathBuf = h
        .claude
        .join("projects/-work-repo--orch-worktrees-t-1")
        .join(format!("{id}.jsonl"));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(CLAUDE, &target).unwrap();
    let logs = dir.path().join("logs");
    let init = format!(
        "{{\"type\":\"system\",\"subtype\":\"init\",\"cwd\":\"{cwd}\",\"session_id\":\"{id}\",\"tools\":[]}}"
    );
    write_log(&logs, &[&init, "{\"type\":\"assistant\"}"]);
    assert_eq!(locate(&logs, &h), Some(target.clone()));
    assert_eq!(
        std::fs::read_link(logs.join(TRANSCRIPT_LINK)).unwrap(),
        target
    );
    // From then on the link is the answer, whatever else changes.
    std::fs::remove_file(logs.join(TEXT_LOG)).unwrap();
    assert_eq!(locate(&logs, &h), Some(target));
}

#[test]
fn found_from_the_hooks_log() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    write_log(&logs, &["no stream events here"]);
    let transcript = dir.path().join("elsewhere.jsonl");
    std::fs::copy(CLAUDE, &transcript).unwrap();
    let hook = serde_json::json!({
        "hook_event_name": "Stop",
        "session_id": "s",
        "transcript_path": transcript,
        "orch_agent": "claude",
    });
    std::fs::write(logs.join("hooks.jsonl"), format!("{hook}\n")).unwrap();
    assert_eq!(locate(&logs, &homes(dir.path())), Some(transcript));
}

#[test]
fn found_from_codex_thread_started() {
    let dir = tempfile::tempdir().unwrap();
    let h = homes(dir.path());
    let id = "01a22cd6-900e-78e2-873a-3c40c0603fad";
    let day = h.codex.join("sessions/2026/11/30");
    std::fs::create_dir_all(&day).unwrap();
    let target = day.join(format!("rollout-2026-11-30T14-23-08-{id}.jsonl"));
    std::fs::copy(CODEX, &target).unwrap();
    std::fs::write(day.join("rollout-2026-11-30T10-00-00-other.jsonl"), "{}\n").unwrap();
    let logs = dir.path().join("logs");
    write_log(
        &logs,
        &[&format!(
            "{{\"type\":\"thread.started\",\"thread_id\":\"{id}\"}}"
        )],
    );
    assert_eq!(locate(&logs, &h), Some(target));
}

#[test]
fn an_agent_without_a_transcript_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    write_log(&logs, &["◆ sim-agent task t attempt 1", "● done"]);
    assert_eq!(locate(&logs, &homes(dir.path())), None);
    assert!(!logs.join(TRANSCRIPT_LINK).exists());
    let not = dir.path().join("x.jsonl");
    std::fs::write(&not, "{\"a\":1}\n").unwrap();
    let err = read(&not).unwrap_err().to_string();
    assert!(
        err.contains("not a Claude Code or Codex transcript"),
        "{err}"
    );
}
