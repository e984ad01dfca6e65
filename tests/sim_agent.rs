//! The simulated agent, driven in-process through `run_with` with explicit inputs.
//!
//! Worker reports go to a recording shell script standing in for `orch-tui`: it appends each
//! call's arguments, bracketed, as one line of `.worker-calls` in its working directory (the
//! worktree), and fails when `.worker-fail` exists there.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use orch_tui::agent::sim::{SimEnv, run_with};
use tempfile::TempDir;

/// One recorder script per test process. Written once, before any test can spawn a child:
/// a child forked by another thread while the script is still open for writing would make
/// its exec fail with "text file busy".
fn recorder() -> &'static Path {
    static SCRIPT: OnceLock<PathBuf> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // One fixed name shared by every test process (same content, so any copy will do),
        // replaced atomically from a per-process temporary file: files don't pile up, and no
        // process ever executes a file another process has open for writing.
        let path = dir.join("sim-agent-worker.sh");
        let tmp = dir.join(format!("sim-agent-worker.{}.tmp", std::process::id()));
        let script = "#!/bin/sh\n\
                      printf '[%s]' \"$@\" >> .worker-calls\n\
                      echo >> .worker-calls\n\
                      if [ -e .worker-fail ]; then echo 'ledger busy' >&2; exit 1; fi\n";
        fs::write(&tmp, script).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, &path).unwrap();
        path
    })
}

struct Outcome {
    code: i32,
    out: String,
    err: String,
}

fn run_sim_with(
    prompt: &str,
    wt: &Path,
    task: &str,
    attempt: u32,
    bin: &Path,
    input: &str,
) -> Outcome {
    let mut input = Cursor::new(input.as_bytes().to_vec());
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_with(SimEnv {
        prompt: prompt.to_string(),
        worktree: wt.to_path_buf(),
        task: task.to_string(),
        attempt,
        bin: bin.to_path_buf(),
        input: &mut input,
        out: &mut out,
        err: &mut err,
    });
    Outcome {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn run_sim(prompt: &str, wt: &Path, task: &str, attempt: u32) -> Outcome {
    run_sim_with(prompt, wt, task, attempt, recorder(), "")
}

fn worker_calls(wt: &Path) -> Vec<String> {
    match fs::read_to_string(wt.join(".worker-calls")) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

fn worktree() -> TempDir {
    // Make sure the recorder exists before this test could fork anything (see `recorder`).
    recorder();
    TempDir::new().unwrap()
}

#[test]
fn write_and_append_edit_files_inside_the_worktree() {
    let wt = worktree();
    let prompt = "Edit some files\n\
                  @sim write src/a.txt: one\\ntwo\n\
                  @sim append src/a.txt: three\n\
                  @sim append log/new.txt: first\n";
    let r = run_sim(prompt, wt.path(), "edit", 1);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        fs::read_to_string(wt.path().join("src/a.txt")).unwrap(),
        "one\ntwo\nthree\n"
    );
    assert_eq!(
        fs::read_to_string(wt.path().join("log/new.txt")).unwrap(),
        "first\n"
    );
    // Explicit edits replace the default one.
    assert!(!wt.path().join("work/edit.md").exists());
    assert!(r.out.contains("sim-agent") && r.out.contains("edit") && r.out.contains("done"));
}

#[test]
fn paths_escaping_the_worktree_are_refused() {
    let root = worktree();
    let wt = root.path().join("wt");
    fs::create_dir(&wt).unwrap();

    let r = run_sim("@sim write ../outside.txt: x", &wt, "esc", 1);
    assert_ne!(r.code, 0);
    assert!(r.err.contains(".."), "{}", r.err);
    assert!(!root.path().join("outside.txt").exists());

    let abs = root.path().join("abs.txt");
    let r = run_sim(&format!("@sim append {}: x", abs.display()), &wt, "esc", 1);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("absolute"), "{}", r.err);
    assert!(!abs.exists());

    let outside = root.path().join("elsewhere");
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, wt.join("link")).unwrap();
    let r = run_sim("@sim write link/sub/x.txt: x", &wt, "esc", 1);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("symlink"), "{}", r.err);
    assert!(!outside.join("sub").exists());
}

#[test]
fn fail_attempts_fails_early_attempts_and_passes_later_ones() {
    let prompt = "@sim fail-attempts 2 7\n@sim write ok.txt: passed";
    let wt = worktree();
    let r = run_sim(prompt, wt.path(), "flaky", 1);
    assert_eq!(r.code, 7);
    assert!(!wt.path().join("ok.txt").exists());

    let wt = worktree();
    let r = run_sim(prompt, wt.path(), "flaky", 3);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        fs::read_to_string(wt.path().join("ok.txt")).unwrap(),
        "passed\n"
    );
}

#[test]
fn fail_and_exit_stop_playing() {
    let wt = worktree();
    let r = run_sim("@sim fail 4\n@sim write a.txt: x", wt.path(), "f", 1);
    assert_eq!(r.code, 4);
    assert!(!wt.path().join("a.txt").exists());

    let r = run_sim("@sim exit 3\n@sim write b.txt: x", wt.path(), "f", 1);
    assert_eq!(r.code, 3);
    assert!(!wt.path().join("b.txt").exists());

    let r = run_sim(
        "@sim write c.txt: x\n@sim done\n@sim fail 9",
        wt.path(),
        "f",
        1,
    );
    assert_eq!(r.code, 0);
}

#[test]
fn ask_escalates_reads_the_answer_and_records_it() {
    let wt = worktree();
    let prompt = "@sim ask Which colour?\n@sim write x.txt: y";
    let r = run_sim_with(prompt, wt.path(), "q-task", 1, recorder(), "blue\nred\n");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.contains("\x1b[1mWhich colour?"),
        "question in bold: {:?}",
        r.out
    );
    assert!(r.out.contains("got answer: "), "{:?}", r.out);
    assert!(r.out.contains("blue"));
    assert_eq!(
        fs::read_to_string(wt.path().join("answers/q-task.txt")).unwrap(),
        "blue\n"
    );
    assert_eq!(
        worker_calls(wt.path()),
        ["[worker][escalate][--reason][question: Which colour?]"]
    );
}

#[test]
fn ask_with_closed_input_fails() {
    let wt = worktree();
    let r = run_sim_with("@sim ask Anyone?", wt.path(), "q", 1, recorder(), "");
    assert_eq!(r.code, 1);
    assert!(r.err.contains("Anyone?"), "{}", r.err);
}

#[test]
fn usage_and_report_done_call_the_worker_with_the_right_arguments() {
    let wt = worktree();
    let r = run_sim(
        "@sim report-done\n@sim usage 1200 340 0.25",
        wt.path(),
        "u",
        1,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        worker_calls(wt.path()),
        [
            "[worker][usage][--tokens-in][1200][--tokens-out][340][--cost-usd][0.25]",
            "[worker][done]",
        ]
    );
}

#[test]
fn report_done_is_not_sent_when_the_agent_fails() {
    let wt = worktree();
    let r = run_sim("@sim report-done\n@sim fail 2", wt.path(), "u", 1);
    assert_eq!(r.code, 2);
    assert!(worker_calls(wt.path()).is_empty());
}

#[test]
fn a_failing_or_missing_worker_command_only_warns() {
    let wt = worktree();
    fs::write(wt.path().join(".worker-fail"), "").unwrap();
    let r = run_sim("@sim usage 1 2 0.5\n@sim report-done", wt.path(), "w", 1);
    assert_eq!(r.code, 0);
    assert!(
        r.err.contains("warning") && r.err.contains("ledger busy"),
        "{}",
        r.err
    );
    assert_eq!(worker_calls(wt.path()).len(), 2);

    let missing = wt.path().join("no-such-orch-tui");
    let r = run_sim_with("@sim report-done", wt.path(), "w", 1, &missing, "");
    assert_eq!(r.code, 0);
    assert!(r.err.contains("could not start"), "{}", r.err);
}

#[test]
fn without_edit_directives_each_task_writes_its_own_file() {
    let wt = worktree();
    let a = run_sim("# Add a parser\nMore details.", wt.path(), "task-a", 1);
    let b = run_sim("@sim say hello\nFix the bug", wt.path(), "task-b", 2);
    assert_eq!((a.code, b.code), (0, 0), "{} {}", a.err, b.err);
    let text_a = fs::read_to_string(wt.path().join("work/task-a.md")).unwrap();
    let text_b = fs::read_to_string(wt.path().join("work/task-b.md")).unwrap();
    assert!(text_a.starts_with("# Add a parser\n"), "{text_a}");
    assert!(text_b.starts_with("# Fix the bug\n"), "{text_b}");
    assert_ne!(text_a.replace("task-a", ""), text_b.replace("task-b", ""));
    assert!(b.out.contains("hello"));

    // Deterministic: the same task gives the same file, whatever the attempt.
    let other = worktree();
    run_sim("# Add a parser\nMore details.", other.path(), "task-a", 3);
    assert_eq!(
        fs::read_to_string(other.path().join("work/task-a.md")).unwrap(),
        text_a
    );
}

#[test]
fn flood_writes_at_least_the_requested_bytes() {
    let wt = worktree();
    let r = run_sim("@sim flood 300KiB", wt.path(), "flood", 1);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.len() >= 300 * 1024, "{} bytes", r.out.len());
    assert!(r.out.contains("\x1b[3"), "coloured");
}

#[test]
fn unknown_and_malformed_directives_only_warn() {
    let wt = worktree();
    let r = run_sim(
        "Title\n@sim frobnicate now\n@sim sleep soon\n@sim check-edit\n@sim write a.txt: ok",
        wt.path(),
        "unk",
        1,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err.contains("line 2") && r.err.contains("frobnicate"),
        "{}",
        r.err
    );
    assert!(r.err.contains("line 3"), "{}", r.err);
    assert!(wt.path().join("a.txt").exists());
}

#[test]
fn progress_bell_and_notify_draw_like_a_terminal_agent() {
    let wt = worktree();
    let prompt = "@sim speed fast\n@sim progress 3\n@sim bell\n@sim notify build ok\n\
                  @sim sleep 1ms\n@sim write a: b";
    let r = run_sim(prompt, wt.path(), "p", 1);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("\r\x1b[2K"), "spinner redrawn in place");
    assert!(r.out.contains("✔\x1b[0m step 3/3"), "{:?}", r.out);
    assert!(r.out.contains("\x07"));
    assert!(r.out.contains("\x1b]9;build ok\x07"));
}

#[test]
fn an_edit_after_done_is_not_played_and_the_default_edit_is_made() {
    let wt = worktree();
    let r = run_sim(
        "Tidy up\n@sim done\n@sim write late.txt: x",
        wt.path(),
        "late",
        1,
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!wt.path().join("late.txt").exists());
    assert!(wt.path().join("work/late.md").exists());
}
