//! Everyday use from the keyboard, end to end (the real binary in tmux): a task added with `n`
//! runs and merges; an edit with `e` reaches the next attempt's prompt; the inbox selection
//! holds while items arrive above it; each confirmation (cancel, approve all, a quit that stops
//! agents); the veto countdown stops while the veto is typed; `o` opens a shell in the worktree
//! and the TUI comes back.

mod common;
mod e2e_support;

use std::time::{Duration, Instant};

use common::tmux::Tmux;
use e2e_support::{BIN, FAST_CONFIG, Repo, state_of, wait_for};

/// The TUI on `plan` (or bare `orch-tui` without one) in `repo`, in a 120×30 tmux window.
fn tui(name: &str, repo: &Repo, plan: Option<&str>) -> Option<Tmux> {
    tui_with(name, repo, plan, "SHELL=/bin/sh")
}

fn tui_with(name: &str, repo: &Repo, plan: Option<&str>, env: &str) -> Option<Tmux> {
    let run = match plan {
        Some(p) => format!("run --plan {}", repo.write_plan(p).display()),
        None => String::new(),
    };
    let cmd = format!(
        "cd {} && GIT_CONFIG_GLOBAL=/dev/null NO_COLOR=1 {env} {BIN} {run}",
        repo.dir.display()
    );
    Tmux::start(name, &cmd, 120, 30)
}

fn text(t: &Tmux, s: &str) {
    t.keys(&["-l", s]);
}

/// Waits until task `id` is in `state` (by `status --json`), or panics with the screen.
fn wait_state(repo: &Repo, t: &Tmux, id: &str, state: &str, secs: u64) {
    wait_states(repo, t, id, &[state], secs);
}

fn wait_states(repo: &Repo, t: &Tmux, id: &str, states: &[&str], secs: u64) {
    let state = states.join(" or ");
    let r = wait_for(Duration::from_secs(secs), || {
        let s = repo.status();
        if states.contains(&state_of(&s, id).as_str()) {
            Ok(())
        } else {
            Err(s)
        }
    });
    if let Err(s) = r {
        panic!("{id} never became {state}: {s:#}\nscreen:\n{}", t.screen());
    }
}

fn quit_stopping_agents(t: &Tmux, agent: &str) {
    t.keys(&["q"]);
    t.wait("the quit question", 10, |s| s.contains("Quit orch-tui?"));
    t.keys(&["s"]);
    let s = t.wait("the stop question", 10, |s| s.contains("and quit?"));
    assert!(s.contains(agent), "the question names the agent:\n{s}");
    t.keys(&["y"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}

fn integration_file(repo: &Repo, path: &str) -> String {
    let out = std::process::Command::new("git")
        .args(["-C", &repo.dir.display().to_string()])
        .args(["show", &format!("orch/integration:{path}")])
        .output()
        .expect("git show");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_task_added_with_n_runs_and_merges() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let Some(t) = tui("new", &repo, None) else {
        return;
    };
    t.wait("the empty task list", 20, |s| s.contains("no tasks yet"));
    t.keys(&["n"]);
    t.wait("the form", 10, |s| {
        s.contains("new task") && s.contains("title")
    });
    text(&t, "Say hello");
    t.keys(&["Tab"]);
    text(&t, "Write the greeting.");
    t.keys(&["Enter"]);
    text(&t, "@sim write hello.txt: hi there");
    t.keys(&["Tab", "Tab"]);
    text(&t, "sim");
    t.keys(&["Tab"]);
    text(&t, "time=2m");
    t.keys(&["Enter"]);
    t.wait("the task added", 20, |s| s.contains("added `say-hello`"));
    wait_state(&repo, &t, "say-hello", "done", 60);
    assert_eq!(integration_file(&repo, "hello.txt").trim(), "hi there");
    t.wait("the end on screen", 20, |s| s.contains("all done"));
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}

#[test]
fn a_form_the_add_refuses_stays_open_with_the_reason() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let Some(t) = tui("refused", &repo, None) else {
        return;
    };
    t.wait("the empty task list", 20, |s| s.contains("no tasks yet"));
    t.keys(&["n", "Tab"]);
    text(&t, "Do it.");
    t.keys(&["Tab", "Tab"]);
    text(&t, "no-such-agent");
    t.keys(&["C-s"]);
    let s = t.wait("the refusal in the form", 20, |s| s.contains("✗ agent:"));
    assert!(s.contains("no-such-agent"), "{s}");
    assert!(
        repo.status()["tasks"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "nothing was added"
    );
    t.keys(&["Escape"]);
    t.wait("the question before dropping it", 10, |s| {
        s.contains("Throw this new task away?")
    });
    t.keys(&["y"]);
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}

const FLAKY: &str = r#"
[plan]
name = "e2e-edit"

[defaults]
agent = "sim"
max_attempts = 1

[[task]]
id = "flaky"
title = "Fails once, then works"
prompt = '''
@sim fail-attempts 1 3
@sim copy-prompt prompt.txt
'''
"#;

#[test]
fn an_edit_with_e_reaches_the_next_attempts_prompt() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let Some(t) = tui("edit", &repo, Some(FLAKY)) else {
        return;
    };
    t.wait("the failure", 30, |s| {
        s.contains("inbox 1") && s.contains("not done")
    });
    t.keys(&["e"]);
    t.wait("the edit form", 20, |s| {
        s.contains("edit the prompt of flaky")
    });
    text(&t, "EDITED-IN-THE-TUI");
    t.keys(&["C-s"]);
    t.wait("the edit written", 20, |s| s.contains("prompt changed"));
    t.keys(&["r", "Enter"]);
    wait_state(&repo, &t, "flaky", "done", 60);
    let prompt = integration_file(&repo, "prompt.txt");
    assert!(prompt.contains("EDITED-IN-THE-TUI"), "{prompt}");
    t.wait("the end on screen", 20, |s| s.contains("all done"));
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}

const ARRIVING: &str = r#"
[plan]
name = "e2e-inbox"

[defaults]
agent = "sim"
max_attempts = 1

[[task]]
id = "broken"
title = "Fails at once"
prompt = '''
@sim fail-attempts 1 3
'''

[[task]]
id = "asker"
title = "Asks later"
prompt = '''
@sim sleep 3s
@sim ask Which port?
'''
"#;

#[test]
fn the_inbox_selection_holds_while_items_arrive_above_it() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let Some(t) = tui("inbox", &repo, Some(ARRIVING)) else {
        return;
    };
    t.wait("the failure in the inbox", 30, |s| s.contains("inbox 1"));
    t.keys(&["i"]);
    t.wait("the failed item", 10, |s| {
        s.contains("failed") && s.contains("broken")
    });
    // The question arrives, ranked above the failure.
    t.wait("the question above it", 30, |s| {
        s.contains("inbox 2") && s.contains("Which port?")
    });
    // `r` acts on the item the human picked (the failure), not on the row it used to be.
    t.keys(&["r", "Enter"]);
    t.wait("the retry of broken", 20, |s| {
        s.contains("broken: failed -> ")
    });
    assert_ne!(state_of(&repo.status(), "broken"), "failed");
    assert_eq!(state_of(&repo.status(), "asker"), "working");
    quit_stopping_agents(&t, "asker#1");
}

const CHAIN: &str = r#"
[plan]
name = "e2e-cancel"

[defaults]
agent = "sim"

[[task]]
id = "base"
title = "Takes a while"
prompt = '''
@sim sleep 60s
'''

[[task]]
id = "child"
title = "After base"
depends_on = ["base"]
prompt = '''
@sim write child.txt: child
'''
"#;

#[test]
fn cancel_names_its_target_and_what_it_blocks_and_asks() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let Some(t) = tui("cancel", &repo, Some(CHAIN)) else {
        return;
    };
    t.wait("base at work", 30, |s| s.contains("base #1"));
    t.keys(&["c"]);
    let s = t.wait("the question", 10, |s| s.contains("Cancel task `base`?"));
    assert!(s.contains("`child`"), "it names what it blocks:\n{s}");
    t.keys(&["n"]);
    t.wait("nothing done", 10, |s| s.contains("nothing was done"));
    let base = state_of(&repo.status(), "base");
    assert!(base == "assigned" || base == "working", "{base}");
    t.keys(&["c"]);
    t.wait("the question again", 10, |s| {
        s.contains("Cancel task `base`?")
    });
    t.keys(&["y"]);
    wait_state(&repo, &t, "base", "cancelled", 20);
    assert_eq!(state_of(&repo.status(), "child"), "blocked");
    // Brought back: a retry of the cancelled task unblocks its dependent.
    t.keys(&["r", "Enter"]);
    wait_states(&repo, &t, "base", &["assigned", "working"], 20);
    assert_eq!(state_of(&repo.status(), "child"), "pending");
    // "assigned" may be before its agent starts; the stop question names running agents only.
    t.wait("base's second attempt at work", 30, |s| {
        s.contains("base #2")
    });
    quit_stopping_agents(&t, "base#2");
}

const TWO: &str = r#"
[plan]
name = "e2e-approve-all"

[defaults]
agent = "sim"

[[task]]
id = "one"
title = "One"
prompt = '''
@sim write one.txt: 1
'''

[[task]]
id = "two"
title = "Two"
prompt = '''
@sim write two.txt: 2
'''
"#;

#[test]
fn approve_all_names_the_approvals_and_asks() {
    let repo = Repo::new();
    repo.init(&FAST_CONFIG.replace("out-of-the-loop", "in-the-loop"));
    let Some(t) = tui("approve-all", &repo, Some(TWO)) else {
        return;
    };
    t.wait("two approvals", 60, |s| s.contains("inbox 2"));
    t.keys(&["A"]);
    let s = t.wait("the question", 10, |s| s.contains("Approve all 2"));
    assert!(s.contains("`one`") && s.contains("`two`"), "{s}");
    t.keys(&["Escape"]);
    t.wait("nothing done", 10, |s| s.contains("nothing was done"));
    assert_eq!(state_of(&repo.status(), "one"), "review");
    t.keys(&["A", "y"]);
    t.wait("the end", 60, |s| s.contains("all done"));
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED 0"));
}

const VETOED: &str = r#"
[plan]
name = "e2e-veto"

[defaults]
agent = "sim"

[[task]]
id = "feature"
title = "A feature"
prompt = '''
@sim copy-prompt prompt.txt
'''
"#;

#[test]
fn the_veto_countdown_stops_while_the_veto_is_typed() {
    let repo = Repo::new();
    let config = FAST_CONFIG.replace(
        "autonomy = \"out-of-the-loop\"",
        "autonomy = \"on-the-loop\"\nveto_window = \"5s\"",
    );
    repo.init(&config);
    let Some(t) = tui("veto", &repo, Some(VETOED)) else {
        return;
    };
    t.wait("the veto window", 60, |s| s.contains("review·veto"));
    t.keys(&["i", "x"]);
    t.wait("the veto prompt", 10, |s| s.contains("reject feature"));
    text(&t, "use the");
    // Well past the 5 s window, the task still waits for the note (checked all along).
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let s = repo.status();
        assert_eq!(
            state_of(&s, "feature"),
            "review",
            "merged while the veto was typed: {s:#}\nscreen:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    text(&t, " builder");
    t.keys(&["Enter"]);
    let s = t.wait("the question", 10, |s| s.contains("Reject task `feature`?"));
    assert!(s.contains("use the builder"), "{s}");
    t.keys(&["y"]);
    // The next attempt is told the note; its own window closes without a veto and it merges.
    wait_state(&repo, &t, "feature", "done", 60);
    let prompt = integration_file(&repo, "prompt.txt");
    assert!(prompt.contains("use the builder"), "{prompt}");
    t.wait("the end on screen", 20, |s| s.contains("all done"));
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}

const SLOW: &str = r#"
[plan]
name = "e2e-shell"

[defaults]
agent = "sim"

[[task]]
id = "slow"
title = "Works a while"
prompt = '''
@sim sleep 60s
'''
"#;

#[test]
fn o_opens_a_shell_in_the_worktree_and_the_tui_comes_back() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let Some(t) = tui("shell", &repo, Some(SLOW)) else {
        return;
    };
    t.wait("the agent at work", 30, |s| s.contains("slow #1"));
    wait_state(&repo, &t, "slow", "working", 30);
    t.keys(&["o"]);
    t.wait("the shell", 20, |s| {
        s.contains("exit to come back to the TUI")
    });
    text(
        &t,
        "echo \"in=$ORCH_SHELL_TASK $(basename $(git rev-parse --show-toplevel))\"",
    );
    t.keys(&["Enter"]);
    let s = t.wait("the shell's answer", 20, |s| s.contains("in=slow "));
    assert!(!s.contains("e2e-shell"), "the TUI is away meanwhile:\n{s}");
    text(&t, "exit");
    t.keys(&["Enter"]);
    t.wait("the TUI again", 20, |s| {
        s.contains("e2e-shell") && s.contains("slow #1")
    });
    // Keys reach the TUI again (the input thread took the terminal back).
    t.keys(&["?"]);
    t.wait("the help", 10, |s| s.contains("ctrl-c"));
    t.keys(&["Escape"]);
    t.wait("the dashboard again", 10, |s| !s.contains("help: keys"));
    quit_stopping_agents(&t, "slow#1");
}

#[test]
fn a_shell_that_cannot_start_gives_the_terminal_back_with_the_reason() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let Some(t) = tui_with("noshell", &repo, Some(SLOW), "SHELL=/nonexistent/sh") else {
        return;
    };
    t.wait("the agent at work", 30, |s| s.contains("slow #1"));
    wait_state(&repo, &t, "slow", "working", 30);
    t.keys(&["o"]);
    t.wait("the reason, in the TUI", 20, |s| {
        s.contains("cannot start /nonexistent/sh") && s.contains("e2e-shell")
    });
    t.keys(&["?"]);
    t.wait("the help", 10, |s| s.contains("ctrl-c"));
    t.keys(&["Escape"]);
    t.wait("the dashboard again", 10, |s| !s.contains("help: keys"));
    quit_stopping_agents(&t, "slow#1");
}

#[test]
fn ctrl_e_writes_the_prompt_in_the_editor_and_the_task_runs_with_it() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    // The "editor" replaces the file it is given with a prepared prompt.
    let prepared = repo.root.join("prepared.md");
    std::fs::write(
        &prepared,
        "Written in the editor.\n@sim write edited.txt: from the editor\n",
    )
    .expect("write");
    let env = format!("EDITOR='cp {}'", prepared.display());
    let Some(t) = tui_with("ctrl-e", &repo, None, &env) else {
        return;
    };
    t.wait("the empty task list", 20, |s| s.contains("no tasks yet"));
    t.keys(&["n", "Tab"]);
    text(&t, "draft");
    t.keys(&["C-e"]);
    t.wait("the editor's text in the form", 20, |s| {
        s.contains("Written in the editor.") && s.contains("new task")
    });
    t.keys(&["C-s"]);
    t.wait("the task added", 20, |s| {
        s.contains("added `written-in-the-editor`")
    });
    wait_state(&repo, &t, "written-in-the-editor", "done", 60);
    assert_eq!(
        integration_file(&repo, "edited.txt").trim(),
        "from the editor"
    );
    t.wait("the end on screen", 20, |s| s.contains("all done"));
    t.keys(&["q"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}

#[test]
fn e_upper_opens_the_editor_on_the_worktree_and_on_the_diff() {
    let repo = Repo::new();
    repo.init(&FAST_CONFIG.replace("out-of-the-loop", "in-the-loop"));
    let log = repo.root.join("editor.log");
    // The "editor" notes the path it was given.
    let env = format!("EDITOR='echo >> {}'", log.display());
    let Some(t) = tui_with("editor", &repo, Some(TWO), &env) else {
        return;
    };
    t.wait("two approvals", 60, |s| s.contains("inbox 2"));
    t.keys(&["E"]);
    let opened = wait_for(Duration::from_secs(20), || {
        let s = std::fs::read_to_string(&log).unwrap_or_default();
        if s.contains(".orch/worktrees/") || s.contains("worktrees") {
            Ok(s)
        } else {
            Err(s)
        }
    });
    let opened = opened.unwrap_or_else(|s| panic!("no worktree given to the editor: {s:?}"));
    let dir = opened.lines().last().unwrap_or_default().trim().to_string();
    assert!(std::path::Path::new(&dir).is_dir(), "{dir}");
    t.wait("the TUI again", 20, |s| s.contains("back from"));
    // In the diff view, E opens the diff itself.
    t.keys(&["i", "d"]);
    // Either approval may come first in the inbox.
    let s = t.wait("the diff", 20, |s| {
        s.contains("one.txt") || s.contains("two.txt")
    });
    let (task, line) = if s.contains("one.txt") {
        ("one", "+1")
    } else {
        ("two", "+2")
    };
    t.keys(&["E"]);
    let patch = repo.dir.join(format!(".orch/diff-{task}.patch"));
    let r = wait_for(Duration::from_secs(20), || {
        let s = std::fs::read_to_string(&log).unwrap_or_default();
        if s.contains(&format!("diff-{task}.patch")) {
            Ok(())
        } else {
            Err(s)
        }
    });
    assert!(r.is_ok(), "{r:?}");
    let diff = std::fs::read_to_string(&patch).expect("the diff file");
    assert!(diff.contains(line), "{diff}");
    // Keys typed while the editor has the terminal are the editor's: wait for the TUI first.
    let title = format!("diff {task} #1");
    t.wait("the diff again", 20, |s| s.contains(&title));
    t.keys(&["Escape"]);
    t.wait("the inbox again", 10, |s| !s.contains(&title));
    quit_twice(&t);
}

/// Quits a run with no live agent left (the approvals wait): the question, then stop.
fn quit_twice(t: &Tmux) {
    t.keys(&["q"]);
    t.wait("the quit question", 10, |s| s.contains("Quit orch-tui?"));
    t.keys(&["s"]);
    t.wait("the exit", 30, |s| s.contains("ORCH-EXITED"));
}
