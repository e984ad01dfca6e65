//! `orch-tui gc` end to end: the real binary, a real ledger, and the leftovers a real
//! `run --headless` with the sim agent leaves behind.

mod common;
mod e2e_support;

use std::fs;
use std::time::Duration;

use e2e_support::{FAST_CONFIG, Out, Repo, state_of, wait_for};

const RUN_LIMIT: Duration = Duration::from_secs(40);
const CMD_LIMIT: Duration = Duration::from_secs(20);

fn plan(tasks: &str) -> String {
    format!("[plan]\nname = \"gc\"\n\n[defaults]\nagent = \"sim\"\n\n{tasks}")
}

fn task(id: &str, extra: &str, sims: &[&str]) -> String {
    let mut prompt = format!("Work on {id}.\n@sim speed fast\n");
    for s in sims {
        prompt.push_str(&format!("@sim {s}\n"));
    }
    format!("[[task]]\nid = \"{id}\"\ntitle = \"Task {id}\"\n{extra}prompt = '''\n{prompt}'''\n\n")
}

/// Refs, worktrees and prompt files: what gc may change.
fn snapshot(repo: &Repo) -> String {
    let prompts: Vec<String> = fs::read_dir(repo.dir.join(".orch/prompts"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}\n{}\n{prompts:?}",
        repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]),
        repo.git(&["worktree", "list", "--porcelain"]),
    )
}

fn gc(repo: &Repo, args: &[&str]) -> Out {
    let mut all = vec!["gc"];
    all.extend_from_slice(args);
    repo.orch(&all, CMD_LIMIT)
}

/// A finished run: `done-a` merged, `fails` failed with a file written and never committed.
fn finished_run() -> Repo {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(&format!(
        "{}{}",
        task("done-a", "", &[]),
        task(
            "fails",
            "max_attempts = 1\n",
            &["write partial.txt: half done", "fail 1"]
        ),
    )));
    let out = repo.orch(
        &["run", "--headless", "--plan", p.to_str().unwrap()],
        RUN_LIMIT,
    );
    assert_eq!(out.code, 1, "{}", out.show());
    let s = repo.status();
    assert_eq!(state_of(&s, "done-a"), "done");
    assert_eq!(state_of(&s, "fails"), "failed");
    repo
}

#[test]
fn gc_removes_the_leftovers_of_finished_tasks_and_says_so() {
    let repo = finished_run();
    let worktree = repo.dir.join(".orch/worktrees/fails-1");
    assert!(
        worktree.join("partial.txt").exists(),
        "the failed attempt's worktree is left"
    );
    // The supervisor deletes a task's branch once it merged; an older orch-tui left it.
    let branches = repo.git(&["branch", "--list", "orch/done-a"]);
    assert!(
        branches.trim().is_empty(),
        "the merged branch is gone: {branches}"
    );
    repo.git(&["update-ref", "refs/heads/orch/done-a", "orch/integration"]);
    // A backup from before backups had a reflog: its age is unknown.
    repo.git(&["update-ref", "refs/orch/backup/ancient/1", "main"]);
    // A crash between writing a new worktree's admin folder and renaming it into place.
    let staged = repo.dir.join(".git/orch-staging/t-9.4242.1");
    fs::create_dir_all(&staged).expect("mkdir");
    fs::write(staged.join("commondir"), "../..\n").expect("write");
    // A spare holder killed before it got an attempt (its empty logs; a pid above pid_max).
    let spare = repo.dir.join(".orch/holders/spare-99999999");
    fs::create_dir_all(spare.join("logs")).expect("mkdir");
    fs::write(spare.join("logs/pty.raw"), "").expect("write");
    let before = snapshot(&repo);

    let dry = gc(&repo, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.show());
    for line in [
        "would remove worktree",
        "fails-1 (task fails is failed",
        "would remove prompt",
        "done-a-1.md (task done-a is done)",
        "would delete branch orch/done-a (merged)",
        "kept 1 backup ref(s) of unknown age",
        "dry run: nothing was removed",
        "would remove 1 half-made worktree admin folder(s) under .git/orch-staging",
        "would remove 1 spare holder folder(s) under .orch/holders",
    ] {
        assert!(
            dry.stdout.contains(line),
            "{line:?} missing: {}",
            dry.show()
        );
    }
    assert_eq!(snapshot(&repo), before, "--dry-run changed something");
    assert!(staged.exists(), "--dry-run removed the leftover");
    assert!(spare.exists(), "--dry-run removed the spare's folder");

    let out = gc(&repo, &[]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(!worktree.exists());
    assert!(!staged.exists());
    assert!(!spare.exists());
    for line in [
        "removed 1 half-made worktree admin folder(s) under .git/orch-staging",
        "removed 1 spare holder folder(s) under .orch/holders",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing: {}",
            out.show()
        );
    }
    assert!(
        out.stdout
            .contains("(task fails is failed); its work is kept under refs/orch/backup/fails/1"),
        "{}",
        out.show()
    );
    // The uncommitted file is in the backup.
    let kept = repo.git(&["show", "refs/orch/backup/fails/1:partial.txt"]);
    assert_eq!(kept, "half done");
    let branches = repo.git(&["for-each-ref", "--format=%(refname:short)", "refs/heads/"]);
    assert_eq!(
        branches, "main\norch/fails\norch/integration",
        "done-a's merged branch goes; failed work stays"
    );
    let prompts = fs::read_dir(repo.dir.join(".orch/prompts"))
        .expect("prompts")
        .count();
    assert_eq!(prompts, 0);
    assert_eq!(
        repo.git(&["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    // Young backups stay by default; the ledger is untouched.
    assert!(
        repo.git(&["for-each-ref", "refs/orch/backup/"])
            .contains("refs/orch/backup/ancient/1")
    );
    assert_eq!(state_of(&repo.status(), "done-a"), "done");

    let again = gc(&repo, &[]);
    assert_eq!(again.code, 0, "{}", again.show());
    assert!(
        again.stdout.contains("nothing to remove"),
        "{}",
        again.show()
    );

    let all = gc(&repo, &["--older-than", "0s"]);
    assert_eq!(all.code, 0, "{}", all.show());
    assert!(
        all.stdout
            .contains("dropped backup refs/orch/backup/ancient/1 (age unknown)"),
        "{}",
        all.show()
    );
    assert!(
        all.stdout
            .contains("dropped backup refs/orch/backup/fails/1"),
        "{}",
        all.show()
    );
    assert_eq!(repo.git(&["for-each-ref", "refs/orch/backup/"]), "");
}

#[test]
fn gc_refuses_while_a_supervisor_runs() {
    let repo = Repo::new();
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(&task("hung", "", &["write w.txt: wip", "hang"])));
    let run = repo.spawn(&["run", "--headless", "--plan", p.to_str().unwrap()]);
    let worktree = repo.dir.join(".orch/worktrees/hung-1");
    let up = wait_for(CMD_LIMIT, || {
        let a = repo.agents();
        if a.iter().any(|p| p.task.as_deref() == Some("hung")) && worktree.join("w.txt").exists() {
            Ok(())
        } else {
            Err(a)
        }
    });
    assert!(up.is_ok(), "the agent never started: {up:?}");

    let refused = gc(&repo, &[]);
    assert_eq!(refused.code, 3, "{}", refused.show());
    assert!(
        refused.stderr.contains("a supervisor (pid "),
        "{}",
        refused.show()
    );
    assert!(
        refused.stderr.contains("stop it first"),
        "{}",
        refused.show()
    );
    let dry = gc(&repo, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.show());
    assert!(
        dry.stdout.contains("note: a supervisor (pid "),
        "{}",
        dry.show()
    );
    assert!(
        worktree.join("w.txt").exists(),
        "the running agent's worktree was touched"
    );

    let cancel = repo.orch(&["cancel", "hung"], CMD_LIMIT);
    assert_eq!(cancel.code, 0, "{}", cancel.show());
    let out = run.wait(RUN_LIMIT);
    assert_eq!(out.code, 1, "{}", out.show());
    repo.assert_no_agents_left(Duration::from_secs(3));

    let after = gc(&repo, &[]);
    assert_eq!(after.code, 0, "{}", after.show());
    assert!(
        after.stdout.contains("(task hung is cancelled)"),
        "{}",
        after.show()
    );
    assert!(!worktree.exists());
}

#[test]
fn gc_bad_input_changes_nothing() {
    let repo = finished_run();
    let before = snapshot(&repo);
    let bad = gc(&repo, &["--older-than", "5"]);
    assert_eq!(bad.code, 2, "{}", bad.show());
    assert!(
        bad.stderr
            .contains("--older-than \"5\": the number has no unit"),
        "{}",
        bad.show()
    );
    assert_eq!(snapshot(&repo), before);

    let fresh = Repo::new();
    let none = gc(&fresh, &[]);
    assert_eq!(none.code, 2, "{}", none.show());
    assert!(none.stderr.contains("orch-tui init"), "{}", none.show());
}
