//! What the tests that drive the real agent CLIs share: the pinned CLIs that
//! `.ci/install-agent-clis` put in the cache, the mock API servers from `shared/tools/` on a
//! free loopback port (stopped by pid on drop), a temporary HOME / CODEX_HOME with the presets
//! the tools README describes, and the rule that a test whose CLI is missing never passes
//! silently: with `ORCH_REQUIRE_AGENT_CLIS=1` it fails; without, it is recorded, and the last
//! test binary (`zz_skipped_agent_tests`) names it in the closing line of `cargo test`.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orch_tui::agent::pty::{AgentProcess, ExitInfo, RAW_LOG, SpawnSpec};
use orch_tui::core::screen_rules::signals::{Signal, classify_signal};
use orch_tui::core::screen_rules::{ScreenRule, ScreenState};

/// The pins `.ci/install-agent-clis` installs (keep the two in step).
pub const CLAUDE_PIN: &str = "@anthropic-ai/claude-code@2.1.328";
pub const CODEX_PIN: &str = "@openai/codex@0.169.0";

/// The API key the Claude tests use, and its last 20 characters (pre-approved in `.claude.json`).
pub const CLAUDE_KEY: &str = "sk-ant-orch-tui-test-key-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cli {
    Claude,
    Codex,
}

impl Cli {
    fn pin(self) -> &'static str {
        match self {
            Cli::Claude => CLAUDE_PIN,
            Cli::Codex => CODEX_PIN,
        }
    }
    pub fn program(self) -> &'static str {
        match self {
            Cli::Claude => "claude",
            Cli::Codex => "codex",
        }
    }
}

/// The cache folder of the install script.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ORCH_AGENT_CLIS") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    base.join("orch-tui/agent-clis")
}

/// The folder holding the pinned CLI's executable, if installed.
pub fn bin_dir(cli: Cli) -> Option<PathBuf> {
    let dir = cache_dir()
        .join(cli.pin().replace('/', "+"))
        .join("node_modules/.bin");
    dir.join(cli.program()).exists().then_some(dir)
}

/// `shared/tools/<name>`, found beside the repository or above it (a worktree sits deeper).
pub fn shared_tool(name: &str) -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ORCH_SHARED_TOOLS") {
        let p = PathBuf::from(d).join(name);
        return p.exists().then_some(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    root.ancestors()
        .map(|a| a.join("shared/tools").join(name))
        .find(|p| p.exists())
}

fn skip_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skipped-agent-tests")
}

/// What a test needs, or `None` when something is missing: then it fails under
/// `ORCH_REQUIRE_AGENT_CLIS=1`, and is recorded as skipped otherwise.
pub fn require(test: &str, cli: Cli) -> Option<PathBuf> {
    let mock = match cli {
        Cli::Claude => "mock_anthropic.py",
        Cli::Codex => "mock_openai.py",
    };
    let mut missing = Vec::new();
    let bin = bin_dir(cli);
    if bin.is_none() {
        missing.push(cli.pin().to_string());
    }
    if shared_tool(mock).is_none() {
        missing.push(format!("shared/tools/{mock}"));
    }
    if Command::new("python3").arg("--version").output().is_err() {
        missing.push("python3".into());
    }
    let marker = skip_dir().join(test);
    if missing.is_empty() {
        let _ = std::fs::remove_file(&marker);
        return bin;
    }
    let why = missing.join(", ");
    if std::env::var("ORCH_REQUIRE_AGENT_CLIS").is_ok_and(|v| v == "1") {
        panic!("{test}: ORCH_REQUIRE_AGENT_CLIS=1 and missing: {why}");
    }
    let _ = std::fs::create_dir_all(skip_dir());
    let _ = std::fs::write(&marker, format!("{why}\n"));
    eprintln!("SKIPPED {test}: missing {why}");
    None
}

/// A mock API server from shared/tools on a free loopback port; stopped by pid on drop.
pub struct MockServer {
    pub port: u16,
    child: Child,
}

impl MockServer {
    pub fn start(script: &str) -> MockServer {
        let path = shared_tool(script).expect("mock script (checked by require)");
        // Ask the kernel for a free port, then hand it to the server. Another process could
        // take it in between; the readiness wait below would then fail loudly.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .arg(&path)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the mock server");
        let mut server = MockServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = server.child.try_wait() {
                panic!("{script} exited at start ({st}); port {port} taken?");
            }
            assert!(
                Instant::now() < deadline,
                "{script} not listening on {port} after 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary HOME (and CODEX_HOME inside it) with the presets that let the real CLIs run
/// offline against the mocks without first-run screens. Never the user's own.
pub struct AgentHome {
    pub dir: tempfile::TempDir,
}

impl AgentHome {
    /// `trusted`: folders whose trust dialog is pre-answered. Leave a folder out to see it.
    pub fn new(trusted: &[&Path], onboarded: bool) -> AgentHome {
        let dir = tempfile::tempdir().expect("temp home");
        let projects: serde_json::Map<String, serde_json::Value> = trusted
            .iter()
            .map(|p| {
                (
                    p.to_string_lossy().into_owned(),
                    serde_json::json!({ "hasTrustDialogAccepted": true }),
                )
            })
            .collect();
        let key_tail = &CLAUDE_KEY[CLAUDE_KEY.len() - 20..];
        let mut claude = serde_json::json!({
            "customApiKeyResponses": { "approved": [key_tail], "rejected": [] },
            "projects": projects,
        });
        if onboarded {
            claude["hasCompletedOnboarding"] = serde_json::Value::Bool(true);
        }
        std::fs::write(dir.path().join(".claude.json"), claude.to_string()).expect("claude.json");
        let codex = dir.path().join(".codex");
        std::fs::create_dir_all(&codex).expect("codex home");
        let mut trust = String::new();
        for p in trusted {
            trust.push_str(&format!(
                "[projects.\"{}\"]\ntrust_level = \"trusted\"\n",
                p.display()
            ));
        }
        std::fs::write(codex.join("config.toml"), trust).expect("codex config");
        AgentHome { dir }
    }

    pub fn codex_home(&self) -> PathBuf {
        self.dir.path().join(".codex")
    }

    /// Points Codex at the mock (a provider in its config; it ignores OPENAI_BASE_URL).
    pub fn use_openai_mock(&self, mock: &MockServer) {
        let path = self.codex_home().join("config.toml");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text = format!(
            "model_provider = \"mock\"\n{text}\n[model_providers.mock]\nname = \"mock\"\nbase_url = \"{}/v1\"\nwire_api = \"responses\"\nsupports_websockets = false\nexperimental_bearer_token = \"sk-mock\"\nrequest_max_retries = 0\nstream_max_retries = 0\n",
            mock.url()
        );
        std::fs::write(path, text).expect("codex config");
    }

    /// Codex's own command rules (`$CODEX_HOME/rules/default.rules`, its execpolicy): a
    /// `prefix_rule(pattern = [...], decision = "prompt")` makes Codex ask before running a
    /// matching command, whatever its approval mode (seen with 0.169.0) — how the tests get its
    /// command-approval prompt from a mock that asks for plain commands.
    pub fn codex_rules(&self, rules: &str) {
        let dir = self.codex_home().join("rules");
        std::fs::create_dir_all(&dir).expect("codex rules dir");
        std::fs::write(dir.join("default.rules"), rules).expect("codex rules");
    }

    /// The environment for an agent of `cli`: the temporary HOME, the mock, the pinned CLI
    /// first on PATH, no self-update, no API retries (a failure test ends in a second).
    pub fn env(&self, cli: Cli, bin: &Path, mock: &MockServer) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let home = self.dir.path().to_string_lossy().into_owned();
        let mut env = vec![
            ("HOME".to_string(), home),
            ("PATH".to_string(), path),
            ("DISABLE_AUTOUPDATER".to_string(), "1".to_string()),
            ("IS_SANDBOX".to_string(), "1".to_string()),
        ];
        match cli {
            Cli::Claude => env.extend([
                ("ANTHROPIC_BASE_URL".to_string(), mock.url()),
                ("ANTHROPIC_API_KEY".to_string(), CLAUDE_KEY.to_string()),
                ("CLAUDE_CODE_MAX_RETRIES".to_string(), "0".to_string()),
            ]),
            Cli::Codex => env.push((
                "CODEX_HOME".to_string(),
                self.codex_home().to_string_lossy().into_owned(),
            )),
        }
        env
    }
}

/// A scratch git repository to run an agent in.
pub fn scratch_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp repo");
    let run = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("git")
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    run(&["init", "-q", "-b", "main"]);
    run(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    ]);
    dir
}

/// One finished agent run in a PTY, as the engine runs it.
pub struct Run {
    pub exit: ExitInfo,
    /// The raw PTY bytes (`pty.raw`).
    pub raw: Vec<u8>,
    pub log_dir: PathBuf,
}

/// Runs `argv` in a PTY in `cwd` until it exits (at most `timeout`), logs under `log_dir`.
pub fn run_in_pty(
    argv: Vec<String>,
    cwd: &Path,
    env: Vec<(String, String)>,
    log_dir: &Path,
    timeout: Duration,
) -> Run {
    let p = AgentProcess::spawn(
        SpawnSpec {
            argv: argv.clone(),
            cwd: cwd.to_path_buf(),
            env,
            rows: 40,
            cols: 200,
            log_dir: log_dir.to_path_buf(),
            log_rotate_bytes: 0,
        },
        Box::new(|_| {}),
    )
    .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    let exit = p.wait_exit(timeout).unwrap_or_else(|| {
        p.stop(Duration::from_millis(200));
        p.wait_exit(Duration::from_secs(5));
        panic!("{argv:?} still running after {timeout:?}")
    });
    let raw = std::fs::read(log_dir.join(RAW_LOG)).expect("raw log");
    Run {
        exit,
        raw,
        log_dir: log_dir.to_path_buf(),
    }
}

/// Writes `bytes` as fixture `tests/fixtures/agents/<name>` when `ORCH_RECORD_FIXTURES=1`
/// (the live tests record what the fixture tests replay).
pub fn record_fixture(name: &str, bytes: &[u8]) {
    if std::env::var("ORCH_RECORD_FIXTURES").is_ok_and(|v| v == "1") {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/agents")
            .join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("fixture dir");
        std::fs::write(&p, bytes).expect("write fixture");
        eprintln!("recorded {}", p.display());
    }
}

/// A screen state as the fixtures' first line names it.
pub fn state_name(s: ScreenState) -> &'static str {
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

/// Each title signal with the state the rules give it, the agent's last known state carried
/// along as the screen watch does (a title that says nothing keeps it).
pub fn title_states(
    rules: &[ScreenRule],
    signals: &[Signal],
) -> Vec<(String, Option<ScreenState>)> {
    let mut now = None;
    let mut out = Vec::new();
    for s in signals {
        let Signal::Title(t) = s else { continue };
        let got = classify_signal(rules, s, now).map(|m| m.state);
        now = got.or(now);
        out.push((t.clone(), got));
    }
    out
}
