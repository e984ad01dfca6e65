//! Screen rules on real screens: the pinned Claude Code and Codex run interactively in a PTY
//! against the mocks, the emulator (`src/agent/screen.rs`) renders them, and the built-in rules
//! (`assets/screen-rules/`) must classify each right. The screens are also kept as fixtures
//! (`tests/fixtures/screens/`, recorded with `ORCH_RECORD_FIXTURES=1`), each with the state it
//! shows on its first line, and replayed without the CLIs: every fixture classified right, no
//! "waiting" on a working screen.

mod agent_support;

use std::path::Path;
use std::time::{Duration, Instant};

use agent_support::{AgentHome, Cli, MockServer, record_fixture, require, scratch_repo};
use orch_tui::agent::adapter::{self, LaunchContext};
use orch_tui::agent::pty::{AgentProcess, SpawnSpec};
use orch_tui::core::config::{AgentMode, default_config};
use orch_tui::core::screen_rules::{ScreenState, classify, merged};

fn screen_text(p: &AgentProcess) -> String {
    let screen = p.screen();
    let guard = screen.lock().unwrap_or_else(|e| e.into_inner());
    guard.screen().contents()
}

fn state_name(s: ScreenState) -> &'static str {
    use orch_tui::core::screen_rules::WaitingFor::*;
    match s {
        ScreenState::Waiting(Question) => "waiting-question",
        ScreenState::Waiting(Permission) => "waiting-permission",
        ScreenState::Waiting(FirstRun) => "waiting-first-run",
        ScreenState::Working => "working",
        ScreenState::Idle => "idle",
        ScreenState::Limited => "limited",
    }
}

/// An interactive agent in a PTY, watched.
struct Live {
    p: AgentProcess,
    rules: Vec<orch_tui::core::screen_rules::ScreenRule>,
    _logs: tempfile::TempDir,
}

impl Live {
    /// `argv`: instead of the built-in profile's interactive argv.
    fn start(
        cli: Cli,
        bin: &Path,
        mock: &MockServer,
        home: &AgentHome,
        worktree: &Path,
        argv: &[&str],
        prompt: &str,
    ) -> Live {
        let mut profile = default_config().agents[cli.program()].clone();
        profile.mode = AgentMode::Interactive;
        if !argv.is_empty() {
            profile.interactive = argv.iter().map(|s| s.to_string()).collect();
        }
        let logs = tempfile::tempdir().expect("logs");
        let prompt_file = logs.path().join("prompt.md");
        std::fs::write(&prompt_file, prompt).expect("prompt");
        let launch = adapter::launch(
            &profile,
            &LaunchContext {
                prompt,
                prompt_file: &prompt_file,
                task: "t1",
                worktree,
                orch_bin: Path::new(env!("CARGO_BIN_EXE_orch-tui")),
                attempt_dir: logs.path(),
                resume: None,
                max_budget_usd: None,
            },
        )
        .expect("launch");
        let mut env: Vec<(String, String)> = profile.env.clone().into_iter().collect();
        env.extend(home.env(cli, bin, mock));
        let p = AgentProcess::spawn(
            SpawnSpec {
                argv: launch.argv,
                cwd: worktree.to_path_buf(),
                env,
                rows: 30,
                cols: 110,
                log_dir: logs.path().to_path_buf(),
                log_rotate_bytes: 0,
            },
            Box::new(|_| {}),
        )
        .expect("spawn");
        Live {
            p,
            rules: merged(cli.program(), &Default::default()),
            _logs: logs,
        }
    }

    /// Polls the screen until `want` classifies it (returns that screen and how long it took),
    /// checking meanwhile that no screen before it was classified `never`.
    fn wait_for(
        &self,
        want: ScreenState,
        never: Option<ScreenState>,
        limit: Duration,
    ) -> (String, Duration, Vec<String>) {
        let t0 = Instant::now();
        let mut seen = Vec::new();
        loop {
            let text = screen_text(&self.p);
            let m = classify(&self.rules, &text);
            if m.as_ref().map(|m| m.state) == Some(want) {
                return (text, t0.elapsed(), seen);
            }
            if let (Some(n), Some(m)) = (never, &m) {
                assert_ne!(m.state, n, "rule `{}` fired on:\n{text}", m.rule);
            }
            if seen.last() != Some(&text) {
                seen.push(text.clone());
            }
            assert!(
                t0.elapsed() < limit,
                "no {} screen within {limit:?}; last screen ({:?}):\n{text}",
                state_name(want),
                m.map(|m| m.rule)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.p.stop(Duration::from_millis(300));
        self.p.wait_exit(Duration::from_secs(10));
    }
}

fn keep(name: &str, state: ScreenState, text: &str) {
    record_fixture(
        &format!("../screens/{name}.txt"),
        format!("# {}\n{text}\n", state_name(state)).as_bytes(),
    );
}

#[test]
fn claude_interactive_screens_are_classified() {
    let Some(bin) = require("claude_interactive_screens_are_classified", Cli::Claude) else {
        return;
    };
    let mock = MockServer::start("mock_anthropic.py");
    use orch_tui::core::screen_rules::WaitingFor::*;
    // First run in an untrusted folder: the trust dialog, before any hook can fire.
    let w = scratch_repo();
    let home = AgentHome::new(&[], true);
    let live = Live::start(Cli::Claude, &bin, &mock, &home, w.path(), &[], "hello");
    let (text, took, _) = live.wait_for(
        ScreenState::Waiting(FirstRun),
        Some(ScreenState::Idle),
        Duration::from_secs(60),
    );
    keep("claude/trust-dialog", ScreenState::Waiting(FirstRun), &text);
    eprintln!("claude trust dialog detected after {took:?}");
    drop(live);

    // Trusted, a slow reply: working, then idle at the prompt; never "waiting" meanwhile.
    let w = scratch_repo();
    let home = AgentHome::new(&[w.path()], true);
    let live = Live::start(
        Cli::Claude,
        &bin,
        &mock,
        &home,
        w.path(),
        &[],
        "work slowly\n@mock sleep 4",
    );
    let (text, _, _) = live.wait_for(
        ScreenState::Working,
        Some(ScreenState::Waiting(FirstRun)),
        Duration::from_secs(60),
    );
    keep("claude/working", ScreenState::Working, &text);
    let (text, _, working) = live.wait_for(
        ScreenState::Idle,
        Some(ScreenState::Waiting(Permission)),
        Duration::from_secs(60),
    );
    keep("claude/idle", ScreenState::Idle, &text);
    // Screens seen while the 4-second reply was pending are working screens, whatever the
    // rules say (the label comes from the scenario, not from the rules under test).
    for (i, s) in working.iter().enumerate().skip(1).take(6) {
        keep(
            &format!("claude/while-working-{i}"),
            ScreenState::Working,
            s,
        );
    }
    drop(live);

    // Default permissions: a shell command waits for approval.
    let w = scratch_repo();
    let home = AgentHome::new(&[w.path()], true);
    let live = Live::start(
        Cli::Claude,
        &bin,
        &mock,
        &home,
        w.path(),
        &["claude", "--permission-mode", "default", "{prompt}"],
        "run it\n@mock bash echo hi > out.txt",
    );
    let (text, _, _) = live.wait_for(
        ScreenState::Waiting(Permission),
        Some(ScreenState::Idle),
        Duration::from_secs(60),
    );
    keep("claude/permission", ScreenState::Waiting(Permission), &text);
}

#[test]
fn codex_interactive_screens_are_classified() {
    let Some(bin) = require("codex_interactive_screens_are_classified", Cli::Codex) else {
        return;
    };
    let mock = MockServer::start("mock_openai.py");
    use orch_tui::core::screen_rules::WaitingFor::*;
    let w = scratch_repo();
    let home = AgentHome::new(&[], true);
    home.use_openai_mock(&mock);
    let live = Live::start(Cli::Codex, &bin, &mock, &home, w.path(), &[], "hello");
    // Codex draws its splash with an empty prompt for a moment before the trust dialog: that
    // frame reads as idle (a debounce absorbs it); never as working.
    let (text, took, _) = live.wait_for(
        ScreenState::Waiting(FirstRun),
        Some(ScreenState::Working),
        Duration::from_secs(60),
    );
    keep("codex/trust-dialog", ScreenState::Waiting(FirstRun), &text);
    eprintln!("codex trust dialog detected after {took:?}");
    drop(live);

    let w = scratch_repo();
    let home = AgentHome::new(&[w.path()], true);
    home.use_openai_mock(&mock);
    let live = Live::start(
        Cli::Codex,
        &bin,
        &mock,
        &home,
        w.path(),
        &[],
        "work slowly\n@mock sleep 4",
    );
    let (text, _, _) = live.wait_for(
        ScreenState::Working,
        Some(ScreenState::Waiting(FirstRun)),
        Duration::from_secs(60),
    );
    keep("codex/working", ScreenState::Working, &text);
    let (text, _, working) = live.wait_for(
        ScreenState::Idle,
        Some(ScreenState::Waiting(Permission)),
        Duration::from_secs(60),
    );
    keep("codex/idle", ScreenState::Idle, &text);
    for (i, s) in working.iter().enumerate().skip(1).take(6) {
        keep(&format!("codex/while-working-{i}"), ScreenState::Working, s);
    }
    drop(live);

    let w = scratch_repo();
    let home = AgentHome::new(&[w.path()], true);
    home.use_openai_mock(&mock);
    let live = Live::start(
        Cli::Codex,
        &bin,
        &mock,
        &home,
        w.path(),
        &["codex", "-s", "read-only", "-a", "on-request", "{prompt}"],
        "edit\n@mock write a.txt: hi",
    );
    // Its splash reads idle for a moment before the prompt is submitted (see above).
    let (text, _, _) = live.wait_for(
        ScreenState::Waiting(Permission),
        None,
        Duration::from_secs(60),
    );
    keep("codex/approval", ScreenState::Waiting(Permission), &text);
}

/// Every recorded screen is classified as the state on its first line.
#[test]
fn recorded_screens_are_classified_right() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let mut checked = 0;
    let mut false_waiting = Vec::new();
    for cli in ["claude", "codex"] {
        let rules = merged(cli, &Default::default());
        for entry in std::fs::read_dir(root.join(cli))
            .expect("screen fixtures")
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).expect("fixture");
            let (head, screen) = text.split_once('\n').expect("header line");
            let want = head.trim_start_matches("# ").trim();
            let got = classify(&rules, screen);
            let got_name = got.as_ref().map(|m| state_name(m.state)).unwrap_or("none");
            if want == "working" && got_name.starts_with("waiting") {
                false_waiting.push(entry.path());
            }
            assert_eq!(
                got_name,
                want,
                "{} (rule {:?}):\n{screen}",
                entry.path().display(),
                got.map(|m| m.rule)
            );
            checked += 1;
        }
    }
    assert!(false_waiting.is_empty(), "false waiting: {false_waiting:?}");
    assert!(checked >= 8, "only {checked} screen fixtures");
}

/// The middle layer on the recorded working screens: what a working agent's terminal also
/// says — its spinner titles, a bell, a notification that is no question — never makes it
/// "waiting", whatever the screen shows.
#[test]
fn terminal_signals_of_a_working_agent_are_no_wait() {
    use orch_tui::core::screen_rules::signals::{Signal, classify_signal};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let mut checked = 0;
    for cli in ["claude", "codex"] {
        let rules = merged(cli, &Default::default());
        for entry in std::fs::read_dir(root.join(cli))
            .expect("screen fixtures")
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).expect("fixture");
            let (head, screen) = text.split_once('\n').expect("header line");
            if head.trim_start_matches("# ").trim() != "working" {
                continue;
            }
            let now = classify(&rules, screen).map(|m| m.state);
            let mut signals: Vec<Signal> = "⠂⠐⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
                .chars()
                .map(|g| Signal::Title(format!("{g} Fix the parser")))
                .collect();
            signals.push(Signal::Bell);
            signals.push(Signal::Notification("Agent turn complete".into()));
            for sig in &signals {
                let got = classify_signal(&rules, sig, now);
                assert!(
                    !got.as_ref()
                        .is_some_and(|m| matches!(m.state, ScreenState::Waiting(_))),
                    "{}: {sig:?} said {got:?}",
                    entry.path().display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 12 * 14, "only {checked} signals checked");
}
