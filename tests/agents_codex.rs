//! The real Codex CLI (pinned, from `.ci/install-agent-clis`) against
//! `shared/tools/mock_openai.py`, started through `adapter::launch` from the built-in profile, in
//! a PTY, its output read by the codex parser. Records fixtures with `ORCH_RECORD_FIXTURES=1`.

mod agent_support;

use std::path::Path;
use std::time::Duration;

use agent_support::{AgentHome, Cli, MockServer, record_fixture, require, run_in_pty};
use orch_tui::agent::adapter::{self, LaunchContext, codex};
use orch_tui::core::agent_event::{AgentEvent, LimitKind, Price, Reset, Spend, Tokens, TurnEnd};
use orch_tui::core::config::{AgentProfile, default_config};

const RUN: Duration = Duration::from_secs(120);

const PRICE: Price = Price {
    input: 1.25,
    cache_read: 0.125,
    cache_write: 0.0,
    output: 10.0,
};

struct Agent {
    bin: std::path::PathBuf,
    mock: MockServer,
    home: AgentHome,
    worktree: tempfile::TempDir,
    profile: AgentProfile,
}

struct Outcome {
    events: Vec<AgentEvent>,
    raw: Vec<u8>,
    exit_code: Option<i32>,
}

impl Outcome {
    fn turn_end(&self) -> &TurnEnd {
        self.events
            .iter()
            .find_map(|e| match e {
                AgentEvent::TurnEnd(t) => Some(t),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no turn end in {}", String::from_utf8_lossy(&self.raw)))
    }
    fn usage(&self) -> Vec<Tokens> {
        self.events
            .iter()
            .filter_map(|e| match e {
                AgentEvent::Usage { tokens, .. } => Some(*tokens),
                _ => None,
            })
            .collect()
    }
}

impl Agent {
    fn new(bin: std::path::PathBuf) -> Agent {
        let mock = MockServer::start("mock_openai.py");
        let worktree = agent_support::scratch_repo();
        let home = AgentHome::new(&[worktree.path()], true);
        home.use_openai_mock(&mock);
        let mut profile = default_config().agents["codex"].clone();
        profile.price = Some(PRICE);
        Agent {
            bin,
            mock,
            home,
            worktree,
            profile,
        }
    }

    /// One `codex exec` (or `exec resume`) run; `earlier`: the thread's usage so far.
    fn run(&self, prompt: &str, resume: Option<(&str, Tokens)>) -> Outcome {
        let logs = tempfile::tempdir().expect("logs");
        let prompt_file = logs.path().join("prompt.md");
        std::fs::write(&prompt_file, prompt).expect("prompt");
        let launch = adapter::launch(
            &self.profile,
            &LaunchContext {
                prompt,
                prompt_file: &prompt_file,
                task: "t1",
                worktree: self.worktree.path(),
                orch_bin: Path::new(env!("CARGO_BIN_EXE_orch-tui")),
                attempt_dir: logs.path(),
                resume: resume.map(|r| r.0),
                max_budget_usd: None,
            },
        )
        .expect("launch");
        let env = self.home.env(Cli::Codex, &self.bin, &self.mock);
        let r = run_in_pty(launch.argv, self.worktree.path(), env, logs.path(), RUN);
        let mut parser = match resume {
            Some((_, earlier)) => codex::resumed_parser(Some(PRICE), earlier),
            None => adapter::parser_for(&self.profile),
        };
        let mut events = Vec::new();
        for chunk in r.raw.chunks(501) {
            events.extend(parser.feed(chunk));
        }
        events.extend(parser.finish());
        Outcome {
            events,
            raw: r.raw,
            exit_code: r.exit.code,
        }
    }
}

#[test]
fn codex_spend_comes_from_turn_usage_and_a_resume_counts_only_its_own() {
    let Some(bin) = require(
        "codex_spend_comes_from_turn_usage_and_a_resume_counts_only_its_own",
        Cli::Codex,
    ) else {
        return;
    };
    let a = Agent::new(bin);
    let first = a.run(
        "Write it.\n@mock write hello.txt: hi\n@mock tokens 700",
        None,
    );
    record_fixture("codex/spend.out", &first.raw);
    assert_eq!(
        first.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.raw)
    );
    assert_eq!(
        std::fs::read_to_string(a.worktree.path().join("hello.txt"))
            .ok()
            .as_deref(),
        Some("hi\n")
    );
    // Two requests of 100 input and 700 output tokens each, priced from the profile.
    let want = Tokens {
        input: 200,
        output: 1400,
        ..Tokens::default()
    };
    assert_eq!(first.usage(), [want]);
    let mut s = Spend::default();
    first.events.iter().for_each(|e| s.apply(e));
    assert_eq!(s.cost_usd, PRICE.cost(&want));
    let end = first.turn_end();
    assert!(end.ok);
    assert_eq!(end.last_message.as_deref(), Some("Done."));
    let thread = end.session_id.clone().expect("thread id");

    // The next attempt resumes the same thread; Codex's usage is now cumulative.
    let second = a.run(
        "Again.\n@mock write b.txt: yo\n@mock tokens 500",
        Some((&thread, want)),
    );
    record_fixture("codex/resume.out", &second.raw);
    assert_eq!(
        second.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.raw)
    );
    assert_eq!(
        second.turn_end().session_id.as_deref(),
        Some(thread.as_str()),
        "same conversation"
    );
    assert_eq!(
        second.usage(),
        [Tokens {
            input: 200,
            output: 1000,
            ..Tokens::default()
        }]
    );
    // The resumed run kept the write sandbox (exec resume takes it as -c sandbox_mode).
    assert_eq!(
        std::fs::read_to_string(a.worktree.path().join("b.txt"))
            .ok()
            .as_deref(),
        Some("yo\n")
    );
}

#[test]
fn codex_limits_and_api_failures_are_named() {
    let Some(bin) = require("codex_limits_and_api_failures_are_named", Cli::Codex) else {
        return;
    };
    let a = Agent::new(bin);
    let out = a.run("x\n@mock limit 30", None);
    record_fixture("codex/limit.out", &out.raw);
    assert_eq!(out.exit_code, Some(1));
    let limit = out
        .events
        .iter()
        .find_map(|e| match e {
            AgentEvent::Limit(l) => Some(l.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no limit in {}", String::from_utf8_lossy(&out.raw)));
    assert_eq!(limit.kind, LimitKind::Usage);
    assert!(
        matches!(limit.resets, Some(Reset::ClockTime { .. })),
        "{limit:?}"
    );

    for (status, words) in [
        ("429", "API 429 rate limit"),
        ("401", "auth 401"),
        ("500", "API server error"),
    ] {
        let out = a.run(&format!("x\n@mock fail {status}"), None);
        record_fixture(&format!("codex/fail-{status}.out"), &out.raw);
        assert_eq!(out.exit_code, Some(1));
        let end = out.turn_end();
        assert!(!end.ok);
        assert_eq!(
            end.failure.as_ref().map(|f| f.words()).as_deref(),
            Some(words),
            "{status}"
        );
    }
}
