//! An attempt's record on real PTYs: what `screen.log` keeps of an agent that uses the
//! alternate screen, of one that clears and redraws, of one killed mid-output; the asciicast
//! parses as v2 and replays to the same screen; resizes and input are in it.
//!
//! No sleeps as synchronization: the agents' own pauses are part of what they do; the test
//! waits for their exit or for a condition with a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orch_tui::agent::pty::{AgentProcess, SpawnSpec};
use orch_tui::agent::record::cast::read_cast;
use orch_tui::agent::record::text::{LineKind, TextLine, parse_line};
use orch_tui::agent::record::{CAST_LOG, TEXT_LOG};

const LONG: Duration = Duration::from_secs(20);

fn spawn(dir: &Path, script: &str, rows: u16, cols: u16) -> AgentProcess {
    AgentProcess::spawn(
        SpawnSpec {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            cwd: dir.to_path_buf(),
            env: vec![],
            rows,
            cols,
            log_dir: dir.join("logs"),
            log_rotate_bytes: 1 << 20,
        },
        Box::new(|_| {}),
    )
    .expect("spawn")
}

fn log(dir: &Path) -> Vec<TextLine> {
    let text = std::fs::read_to_string(dir.join("logs").join(TEXT_LOG)).unwrap_or_default();
    text.lines()
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("not a log line: {l:?}")))
        .collect()
}

fn show(lines: &[TextLine]) -> Vec<String> {
    lines
        .iter()
        .map(|l| format!("{}{}", l.kind.mark(), l.text))
        .collect()
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ok()
}

#[test]
fn an_agent_on_the_alternate_screen_leaves_its_last_screen_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // Like an editor or `less`: enter, draw with cursor addressing (several frames), leave.
    let script = r#"
        echo "opening the editor"
        printf '\033[?1049h\033[H\033[2J'
        for i in 1 2 3 4 5; do
          printf '\033[1;1Hnotes.md\033[3;1Hline one\033[4;1Hline two, frame %s\033[10;1H-- INSERT --' $i
          sleep 0.02
        done
        printf '\033[?1049l'
        echo "editor closed"
    "#;
    let a = spawn(dir.path(), script, 12, 60);
    assert_eq!(a.wait_exit(LONG).and_then(|e| e.code), Some(0));
    let lines = show(&log(dir.path()));
    let note = lines
        .iter()
        .position(|l| l.contains("before the full-screen app left"))
        .unwrap_or_else(|| panic!("no snapshot before leaving: {lines:#?}"));
    assert_eq!(
        lines[note + 1..note + 5],
        ["|notes.md", "|", "|line one", "|line two, frame 5"],
        "{lines:#?}"
    );
    assert_eq!(lines[0], " opening the editor");
    assert!(lines.contains(&" editor closed".to_string()), "{lines:#?}");
    assert!(lines.last().unwrap().contains("agent exited with code 0"));
    // What the human saw when it left, not every frame.
    assert!(!lines.iter().any(|l| l.contains("frame 2")), "{lines:#?}");
}

#[test]
fn an_agent_that_clears_and_redraws_keeps_each_screen_before_a_clear() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
        for step in fetching compiling testing packaging; do
          printf '\033[H\033[2JPipeline\r\nnow: %s\r\n' $step
          sleep 0.05
        done
        printf '\033[H\033[2Jall steps done\r\n'
    "#;
    let a = spawn(dir.path(), script, 8, 40);
    assert_eq!(a.wait_exit(LONG).and_then(|e| e.code), Some(0));
    let lines = show(&log(dir.path()));
    for step in ["fetching", "compiling", "testing", "packaging"] {
        let n = lines
            .iter()
            .filter(|l| l.ends_with(&format!("now: {step}")))
            .count();
        assert_eq!(n, 1, "{step} once: {lines:#?}");
    }
    assert!(
        lines.iter().any(|l| l.ends_with("all steps done")),
        "{lines:#?}"
    );
    let pipeline = lines.iter().filter(|l| l.ends_with("Pipeline")).count();
    assert!(
        pipeline <= 2,
        "the unchanged title is not repeated: {lines:#?}"
    );
}

#[test]
fn killed_mid_output_the_log_holds_every_line_up_to_the_last_complete_one() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"i=0; while :; do echo "line $i"; i=$((i+1)); done"#;
    let a = spawn(dir.path(), script, 24, 80);
    let path = dir.path().join("logs").join(TEXT_LOG);
    assert!(wait_until(LONG, || std::fs::metadata(&path)
        .is_ok_and(|m| m.len() > 200_000)));
    // SAFETY: signalling the agent's own process group, which this test started.
    unsafe { libc::killpg(a.pid() as i32, libc::SIGKILL) };
    let exit = a.wait_exit(LONG).expect("exit reported");
    assert_eq!(exit.signal, Some(libc::SIGKILL));
    let lines = log(dir.path());
    let out: Vec<&str> = lines
        .iter()
        .filter(|l| l.kind == LineKind::Output)
        .map(|l| l.text.as_str())
        .collect();
    // Every line in order, none twice; at most the last one cut short.
    let (last, whole) = out.split_last().unwrap();
    for (i, l) in whole.iter().enumerate() {
        assert_eq!(*l, format!("line {i}"), "line {i} of {}", out.len());
    }
    assert!(format!("line {}", whole.len()).starts_with(last), "{last}");
    // The raw record agrees: its last complete line is in the text log.
    let raw = std::fs::read(dir.path().join("logs/pty.raw")).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    let complete = raw.trim_end_matches(|c| c != '\n').lines().count();
    assert!(out.len() >= complete, "{} < {complete}", out.len());
    assert!(
        lines.last().unwrap().text.contains("killed by signal 9"),
        "{:?}",
        lines.last()
    );
}

/// Plays a cast's output into a fresh emulator the way a player does.
fn replay_screen(cast: &orch_tui::agent::record::cast::Cast) -> String {
    let nz = |n: u16| std::num::NonZeroU16::new(n).unwrap();
    let mut p = vt100::Parser::new(nz(cast.rows), nz(cast.cols), 0);
    for e in &cast.events {
        match e.code.as_str() {
            "o" => p.process(e.data.as_bytes()),
            "r" => {
                let (c, r) = e.data.split_once('x').unwrap();
                p.screen_mut()
                    .set_size(nz(r.parse().unwrap()), nz(c.parse().unwrap()));
            }
            _ => {}
        }
    }
    p.screen().contents()
}

#[test]
fn the_cast_is_asciicast_v2_and_replays_to_the_same_screen() {
    let dir = tempfile::tempdir().unwrap();
    // Colours, UTF-8, cursor addressing, a resize while it draws, input typed into it.
    let script = r#"
        printf '\033[1;32m✔ ready\033[0m\r\n'
        read -r answer
        printf 'got: %s\r\n' "$answer"
        printf '\033[5;10H\033[7m status \033[0m\033[1;1Hübergröße → done\r\n'
        sleep 0.1
    "#;
    let a = spawn(dir.path(), script, 10, 50);
    let screen = a.screen();
    assert!(wait_until(LONG, || screen
        .lock()
        .unwrap()
        .screen()
        .contents()
        .contains("ready")));
    a.resize(12, 60).unwrap();
    a.write(b"yes\r".to_vec());
    assert_eq!(a.wait_exit(LONG).and_then(|e| e.code), Some(0));
    let cast_path: PathBuf = dir.path().join("logs").join(CAST_LOG);
    // Every line is JSON; the header is v2 with the size; events are [time, code, text].
    let text = std::fs::read_to_string(&cast_path).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(50), Some(10))
    );
    assert!(header["timestamp"].as_u64().unwrap() > 1_600_000_000);
    let mut last_t = 0.0;
    for l in lines {
        let ev: serde_json::Value = serde_json::from_str(l).unwrap();
        let arr = ev.as_array().unwrap();
        assert_eq!(arr.len(), 3, "{l}");
        let t = arr[0].as_f64().unwrap();
        assert!(t >= last_t, "times never go back: {l}");
        last_t = t;
        assert!(
            ["o", "r", "m", "i"].contains(&arr[1].as_str().unwrap()),
            "{l}"
        );
        assert!(arr[2].is_string(), "{l}");
    }
    let cast = read_cast(&cast_path).unwrap();
    assert!(
        cast.events
            .iter()
            .any(|e| e.code == "r" && e.data == "60x12")
    );
    assert!(
        cast.events
            .iter()
            .any(|e| e.code == "m" && e.data.starts_with("input")),
        "an input marker"
    );
    // What the human typed is not recorded as input (only what the terminal echoed is output).
    assert!(!cast.events.iter().any(|e| e.code == "i"));
    let original = screen.lock().unwrap().screen().contents();
    assert!(original.contains("got: yes"), "{original}");
    assert_eq!(replay_screen(&cast), original);
}
