use std::path::Path;

use super::*;
use crate::core::config::default_config;

fn ctx<'a>(prompt: &'a str, dir: &'a Path) -> LaunchContext<'a> {
    LaunchContext {
        prompt,
        prompt_file: Path::new("/p/prompt.md"),
        task: "t1",
        worktree: Path::new("/w"),
        orch_bin: Path::new("/bin/orch-tui"),
        attempt_dir: dir,
        resume: None,
        max_budget_usd: None,
    }
}

#[test]
fn placeholders_are_filled_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx("fix {task} and {worktree}", dir.path());
    assert_eq!(
        expand("{prompt} in {worktree} for {task} {json} {", &c, c.prompt),
        "fix {task} and {worktree} in /w for t1 {json} {"
    );
    assert_eq!(
        expand("{orch}:{prompt_file}", &c, ""),
        "/bin/orch-tui:/p/prompt.md"
    );
}

#[test]
fn a_large_prompt_never_becomes_an_argument() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(MAX_ARG_BYTES + 1);
    let cfg = default_config();
    for name in ["claude", "codex"] {
        let l = launch(&cfg.agents[name], &ctx(&big, dir.path())).unwrap();
        assert!(l.prompt_by_file, "{name}");
        assert!(
            l.argv.iter().all(|a| a.len() < 1024),
            "{name}: {:?}",
            l.argv.iter().map(String::len).collect::<Vec<_>>()
        );
        assert!(l.argv.iter().any(|a| a.contains("/p/prompt.md")), "{name}");
    }
    // aider: `--message {prompt}` becomes `--message-file FILE`.
    let mut aider = cfg.agents["aider"].clone();
    aider.command = vec!["aider".into(), "--message".into(), "{prompt}".into()];
    let l = launch(&aider, &ctx(&big, dir.path())).unwrap();
    assert_eq!(l.argv, ["aider", "--message-file", "/p/prompt.md"]);
    // A generic program gets no surprise text in place of its prompt: a clear error instead.
    let mut generic = cfg.agents["aider"].clone();
    generic.adapter = Adapter::Generic;
    generic.command = vec!["./agent.sh".into(), "{prompt}".into()];
    let e = launch(&generic, &ctx(&big, dir.path())).unwrap_err();
    assert!(e.contains("{prompt_file}"), "{e}");
    // Just under the limit still goes as an argument.
    let fits = "y".repeat(MAX_ARG_BYTES);
    let l = launch(&generic, &ctx(&fits, dir.path())).unwrap();
    assert_eq!(l.argv[1].len(), MAX_ARG_BYTES);
}

#[test]
fn claude_gets_its_own_settings_file_with_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = default_config();
    let l = launch(&cfg.agents["claude"], &ctx("do it", dir.path())).unwrap();
    let settings = dir.path().join(claude::SETTINGS_FILE);
    assert_eq!(l.argv[0], "claude");
    assert_eq!(l.argv[1], "--settings");
    assert_eq!(l.argv[2], settings.to_string_lossy());
    assert_eq!(l.files, vec![settings.clone()]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    let cmd = v
        .pointer("/hooks/Stop/0/hooks/0/command")
        .and_then(|c| c.as_str())
        .unwrap();
    assert!(
        cmd.starts_with("'/bin/orch-tui' hook claude --log '"),
        "{cmd}"
    );
    assert!(cmd.ends_with("hooks.jsonl'"), "{cmd}");
    for ev in claude::HOOK_EVENTS {
        assert!(v["hooks"].get(*ev).is_some(), "{ev}");
    }
    assert!(l.argv.contains(&"do it".to_string()));
    assert!(l.paste.is_none());
}

#[test]
fn resume_continues_the_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = default_config();
    let mut c = ctx("again", dir.path());
    c.resume = Some("abc");
    let l = launch(&cfg.agents["claude"], &c).unwrap();
    assert_eq!(
        &l.argv[..5],
        [
            "claude",
            "--settings",
            l.argv[2].as_str(),
            "--resume",
            "abc"
        ]
    );
    let l = launch(&cfg.agents["codex"], &c).unwrap();
    let i = l.argv.iter().position(|a| a == "exec").unwrap();
    assert_eq!(&l.argv[i + 1..i + 3], ["resume", "abc"]);
    assert!(!l.argv.contains(&"--sandbox".to_string()), "{:?}", l.argv);
    assert!(
        l.argv
            .contains(&"sandbox_mode=\"workspace-write\"".to_string()),
        "{:?}",
        l.argv
    );
    assert_eq!(l.argv.last().unwrap(), "again");
}

/// Interactive Codex is told to send its notifications as OSC 9 (their text names the command
/// or file); headless Codex, and a profile that chose its own method, are left alone.
#[test]
fn interactive_codex_notifies_by_osc9() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = default_config().agents["codex"].clone();
    let l = launch(&p, &ctx("hello", dir.path())).unwrap();
    assert!(
        !l.argv.iter().any(|a| a.contains("notification_method")),
        "{:?}",
        l.argv
    );
    p.mode = AgentMode::Interactive;
    let l = launch(&p, &ctx("hello", dir.path())).unwrap();
    assert_eq!(
        l.argv,
        [
            "codex",
            "-c",
            codex::NOTIFY_BY_OSC9,
            "--sandbox",
            "workspace-write",
            "hello"
        ]
    );
    let mut c = ctx("again", dir.path());
    c.resume = Some("abc");
    let l = launch(&p, &c).unwrap();
    assert_eq!(
        &l.argv[..5],
        ["codex", "-c", codex::NOTIFY_BY_OSC9, "resume", "abc"]
    );
    p.interactive = vec![
        "codex".into(),
        "-c".into(),
        "tui.notification_method=\"bel\"".into(),
        "{prompt}".into(),
    ];
    let l = launch(&p, &ctx("hello", dir.path())).unwrap();
    assert_eq!(l.argv.len(), 4, "{:?}", l.argv);
}

#[test]
fn interactive_without_a_prompt_argument_pastes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = default_config().agents["aider"].clone();
    p.mode = AgentMode::Interactive;
    p.interactive = vec!["aider".into()];
    let l = launch(&p, &ctx("hello", dir.path())).unwrap();
    assert_eq!(l.argv, ["aider"]);
    assert_eq!(l.paste.as_deref(), Some("hello"));
    p.interactive.clear();
    assert!(
        launch(&p, &ctx("hello", dir.path()))
            .unwrap_err()
            .contains("interactive")
    );
}

#[test]
fn lines_are_split_across_chunks_and_lose_their_cr() {
    let mut b = LineBuffer::default();
    assert_eq!(b.push(b"ab"), Vec::<String>::new());
    assert_eq!(b.push(b"c\r\nd\n\r\ne"), vec!["abc", "d", ""]);
    assert_eq!(b.finish().as_deref(), Some("e"));
    assert_eq!(b.finish(), None);
}

#[test]
fn ansi_is_stripped() {
    assert_eq!(
        strip_ansi("\x1b[1;32mok\x1b[0m \x1b]0;title\x07done\x1b(B"),
        "ok done"
    );
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
}

#[test]
fn codex_clock_times() {
    assert_eq!(
        codex::clock_time_in("try again at 3:28 PM."),
        Some((15, 28))
    );
    assert_eq!(codex::clock_time_in("Try again at 12:05 AM"), Some((0, 5)));
    assert_eq!(
        codex::clock_time_in("try again at 12:43 PM."),
        Some((12, 43))
    );
    assert_eq!(codex::clock_time_in("try again at 15:28"), Some((15, 28)));
    assert_eq!(codex::clock_time_in("try again later"), None);
}
