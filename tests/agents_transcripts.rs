//! The real Claude Code and Codex CLIs (pinned) against the mock servers, in a PTY with the
//! attempt's record written as the engine writes it: their own transcript is found from what
//! the attempt recorded (Claude: its hooks, and the `system/init` line of its stream, rebuilt
//! from the wrapped rows of the text log; Codex: `thread.started`) and read as the conversation.

mod agent_support;

use std::path::Path;
use std::time::Duration;

use agent_support::{AgentHome, Cli, MockServer, require, run_in_pty, scratch_repo};
use orch_tui::agent::adapter::{self, LaunchContext};
use orch_tui::agent::record::transcript::{Homes, Item, locate, read};
use orch_tui::core::config::default_config;

const RUN: Duration = Duration::from_secs(120);

fn run(cli: Cli, bin: &Path, prompt: &str) -> (tempfile::TempDir, AgentHome, tempfile::TempDir) {
    let mock = MockServer::start(match cli {
        Cli::Claude => "mock_anthropic.py",
        Cli::Codex => "mock_openai.py",
    });
    let worktree = scratch_repo();
    let home = AgentHome::new(&[worktree.path()], true);
    if cli == Cli::Codex {
        home.use_openai_mock(&mock);
    }
    let logs = tempfile::tempdir().expect("logs");
    let prompt_file = logs.path().join("prompt.md");
    std::fs::write(&prompt_file, prompt).expect("prompt");
    let profile = default_config().agents[cli.program()].clone();
    let launch = adapter::launch(
        &profile,
        &LaunchContext {
            prompt,
            prompt_file: &prompt_file,
            task: "t1",
            worktree: worktree.path(),
            orch_bin: Path::new(env!("CARGO_BIN_EXE_orch-tui")),
            attempt_dir: logs.path(),
            resume: None,
            max_budget_usd: None,
        },
    )
    .expect("launch");
    let mut env: Vec<(String, String)> = profile.env.clone().into_iter().collect();
    env.extend(home.env(cli, bin, &mock));
    env.extend(launch.env.clone());
    let r = run_in_pty(launch.argv, worktree.path(), env, logs.path(), RUN);
    assert_eq!(r.exit.code, Some(0), "{}", String::from_utf8_lossy(&r.raw));
    (logs, home, worktree)
}

fn homes(home: &AgentHome) -> Homes {
    Homes {
        claude: home.dir.path().join(".claude"),
        codex: home.codex_home(),
    }
}

#[test]
fn claudes_transcript_is_found_and_read_as_the_conversation() {
    let name = "claudes_transcript_is_found_and_read_as_the_conversation";
    let Some(bin) = require(name, Cli::Claude) else {
        return;
    };
    let prompt = "write the greeting\n@mock write hello.txt: hi\n@mock bash echo done";
    let (logs, home, _wt) = run(Cli::Claude, &bin, prompt);
    let h = homes(&home);
    // From the hooks (the adapter's per-attempt settings).
    let found = locate(logs.path(), &h).expect("found through the hooks");
    assert!(found.starts_with(&h.claude), "{}", found.display());
    // And from the stream alone, without hooks or link.
    std::fs::remove_file(logs.path().join("hooks.jsonl")).unwrap();
    std::fs::remove_file(logs.path().join("transcript.jsonl")).unwrap();
    assert_eq!(
        locate(logs.path(), &h),
        Some(found.clone()),
        "from system/init"
    );
    let c = read(&found).unwrap();
    assert!(
        c.items.iter().any(|i| *i == Item::User(prompt.into())),
        "{:#?}",
        c.items
    );
    assert!(c.items.iter().any(
        |i| matches!(i, Item::ToolCall { name, subject } if name == "Bash" && subject == "echo done")
    ));
    assert_eq!(c.items.last(), Some(&Item::Assistant("Done.".into())));
}

#[test]
fn codexs_rollout_is_found_and_read_as_the_conversation() {
    let name = "codexs_rollout_is_found_and_read_as_the_conversation";
    let Some(bin) = require(name, Cli::Codex) else {
        return;
    };
    let prompt = "write the greeting\n@mock write hello.txt: hi";
    let (logs, home, _wt) = run(Cli::Codex, &bin, prompt);
    let found = locate(logs.path(), &homes(&home)).expect("found from thread.started");
    let c = read(&found).unwrap();
    assert!(
        c.items.iter().any(|i| *i == Item::User(prompt.into())),
        "{:#?}",
        c.items
    );
    assert!(
        c.items.iter().any(|i| matches!(i, Item::Assistant(_))),
        "{:#?}",
        c.items
    );
}
