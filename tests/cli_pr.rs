//! `orch-tui pr` and `orch-tui shell` through the real binary. GitHub cannot be reached from
//! tests: a fake `gh` on PATH records its arguments (and answers `pr view` / `pr create` as gh
//! would), and the remote is a bare repository on disk, so `git push` is real.

mod common;
mod e2e_support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

const PLAN: &str = r#"
[plan]
name = "pr-demo"

[defaults]
agent = "sim"

[[task]]
id = "a"
title = "Task a"
prompt = "Do a.\n@sim speed fast"
checks = ["test -f work/a.md"]

[[task]]
id = "b"
title = "Task b"
depends_on = ["a"]
prompt = "Do b.\n@sim speed fast"
"#;

const FAKE_GH: &str = r#"#!/bin/sh
for a in "$@"; do printf '%s\n' "$a" >> "$FAKE_GH_LOG"; done
printf -- '--\n' >> "$FAKE_GH_LOG"
case "$1 $2" in
  "pr view") if [ -n "$FAKE_GH_OPEN" ]; then echo "https://github.com/o/r/pull/7"; exit 0; fi; exit 1 ;;
  "pr create") echo "https://github.com/o/r/pull/8" ;;
esac
exit 0
"#;

struct Setup {
    repo: Repo,
    bin: PathBuf,
    log: PathBuf,
    remote: PathBuf,
}

/// A finished run of PLAN, a bare `origin`, and a fake gh in `bin/`.
fn finished_run() -> Setup {
    let repo = Repo::new();
    let remote = repo.root.join("origin.git");
    common::git(
        &repo.root,
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    repo.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    repo.init(FAST_CONFIG);
    let plan = repo.write_plan(PLAN);
    let run = repo.orch(
        &["run", "--headless", "--plan", plan.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.show());
    let bin = repo.root.join("bin");
    fs::create_dir(&bin).unwrap();
    let gh = bin.join("gh");
    fs::write(&gh, FAKE_GH).unwrap();
    fs::set_permissions(&gh, fs::Permissions::from_mode(0o755)).unwrap();
    let log = repo.root.join("gh.log");
    Setup {
        repo,
        bin,
        log,
        remote,
    }
}

impl Setup {
    fn pr(&self, args: &[&str], with_gh: bool, open: bool) -> (i32, String, String) {
        let path = if with_gh {
            format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display())
        } else {
            "/usr/local/bin:/usr/bin:/bin".to_string()
        };
        let mut cmd = self.repo.command(args);
        cmd.env("PATH", path).env("FAKE_GH_LOG", &self.log);
        if open {
            cmd.env("FAKE_GH_OPEN", "1");
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// gh's calls so far, each as its argument list.
    fn gh_calls(&self) -> Vec<Vec<String>> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.split("--\n")
            .filter(|c| !c.is_empty())
            .map(|c| c.lines().map(String::from).collect())
            .collect()
    }

    fn remote_ref(&self, name: &str) -> Option<String> {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--verify", "-q", name])
            .current_dir(&self.remote)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

#[test]
fn pr_pushes_and_opens_one_pull_request_with_the_runs_story() {
    let s = finished_run();
    // Without gh: the exact commands, and nothing pushed.
    let (code, out, err) = s.pr(&["pr"], false, false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("gh (the GitHub CLI) is not installed"),
        "{out}"
    );
    assert!(
        out.contains("git push origin orch/integration:refs/heads/orch/integration"),
        "{out}"
    );
    assert!(
        out.contains(
            "gh pr create --base main --head orch/integration --title pr-demo --body-file "
        ),
        "{out}"
    );
    assert_eq!(s.remote_ref("refs/heads/orch/integration"), None);
    // With gh: pushed, then created.
    let (code, out, err) = s.pr(&["pr"], true, false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("https://github.com/o/r/pull/8"), "{out}");
    let tip = s.repo.git(&["rev-parse", "orch/integration"]);
    assert_eq!(s.remote_ref("refs/heads/orch/integration"), Some(tip));
    let calls = s.gh_calls();
    assert_eq!(calls[0][..3], ["pr", "view", "orch/integration"]);
    let create = &calls[1];
    assert_eq!(
        create[..9],
        [
            "pr",
            "create",
            "--base",
            "main",
            "--head",
            "orch/integration",
            "--title",
            "pr-demo",
            "--body-file"
        ]
    );
    let body = fs::read_to_string(&create[9]).unwrap();
    for want in [
        "from `orch/integration` onto `main`: 2 tasks, 2 commits.",
        "## Task a (`a`)",
        "- checks: ✓ `test -f work/a.md`",
        "## Task b (`b`)",
        "- merge: merged without waiting for a human",
        "1 attempt",
    ] {
        assert!(body.contains(want), "missing {want:?} in\n{body}");
    }
    let a_pos = body.find("## Task a").unwrap();
    assert!(a_pos < body.find("## Task b").unwrap(), "merge order");
    // Again, with the pull request open: its text is brought up to date.
    let (code, out, err) = s.pr(&["pr"], true, true);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("updated https://github.com/o/r/pull/7"),
        "{out}"
    );
    let last = s.gh_calls().pop().unwrap();
    assert_eq!(last[..4], ["pr", "edit", "orch/integration", "--title"]);
}

#[test]
fn per_task_mode_stacks_one_pull_request_per_task() {
    let s = finished_run();
    let (code, out, err) = s.pr(&["pr", "--per-task", "--draft"], true, false);
    assert_eq!(code, 0, "{out}{err}");
    let tip = s.repo.git(&["rev-parse", "orch/integration"]);
    assert_eq!(s.remote_ref("refs/heads/orch/pr/b"), Some(tip.clone()));
    let a = s.remote_ref("refs/heads/orch/pr/a").expect("a pushed");
    assert_eq!(
        s.repo.git(&["rev-parse", &format!("{tip}~1")]),
        a,
        "a is b's parent"
    );
    let creates: Vec<Vec<String>> = s
        .gh_calls()
        .into_iter()
        .filter(|c| c[..2] == ["pr", "create"])
        .collect();
    assert_eq!(creates.len(), 2);
    assert_eq!(
        creates[0][2..8],
        ["--base", "main", "--head", "orch/pr/a", "--title", "Task a"]
    );
    assert_eq!(
        creates[1][2..8],
        [
            "--base",
            "orch/pr/a",
            "--head",
            "orch/pr/b",
            "--title",
            "Task b"
        ]
    );
    assert_eq!(creates[1].last().map(String::as_str), Some("--draft"));
    let body = fs::read_to_string(&creates[1][9]).unwrap();
    assert!(
        body.starts_with("Part 2 of 2, stacked on `orch/pr/a`"),
        "{body}"
    );
}

#[test]
fn pr_refuses_what_it_cannot_do() {
    let s = finished_run();
    let (code, _, err) = s.pr(&["pr", "--base", "nope"], true, false);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--base nope: no such local branch"), "{err}");
    let (code, _, err) = s.pr(&["pr", "--remote", "upstream"], true, false);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no git remote `upstream`"), "{err}");
    // Once the base holds everything, there is nothing to open.
    s.repo
        .git(&["merge", "-q", "--ff-only", "orch/integration"]);
    let (code, _, err) = s.pr(&["pr"], true, false);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing to open a pull request for"), "{err}");
    assert!(s.gh_calls().is_empty(), "gh was never called");
}

#[test]
fn shell_opens_in_the_tasks_worktree() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let out = repo.orch(&["add", "--id", "slow", "Slow.\n@sim sleep 60s"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let out = repo.orch(&["shell", "slow"], LIMIT);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stderr
            .contains("no attempt has started yet (it is ready)"),
        "{}",
        out.show()
    );
    let run = repo.spawn(&["run", "--headless"]);
    let started = wait_for(LIMIT, || {
        let t = repo.task("slow");
        if t["state"] == "working" {
            Ok(())
        } else {
            Err(t)
        }
    });
    started.unwrap_or_else(|t| panic!("never working: {t:#}"));
    let mut child = repo
        .command(&["shell", "slow"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"pwd; echo task=$ORCH_SHELL_TASK; exit 3\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let warned = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "the shell's own exit code");
    let wt = repo.dir.join(".orch/worktrees/slow-1");
    assert!(said.contains(&wt.display().to_string()), "{said}");
    assert!(said.contains("task=slow"), "{said}");
    assert!(
        warned.contains("its agent is still working here"),
        "{warned}"
    );
    let out = repo.orch(&["cancel", "slow"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let _ = run.wait(LIMIT);
    let out = repo.orch(&["shell", "nope"], LIMIT);
    assert_eq!(out.code, 2, "{}", out.show());
}
