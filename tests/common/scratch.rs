//! A scratch repository for the git tests, and the small steps they share.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use orch_tui::git::{Repo, backup_ref_name, trailers};
use tempfile::TempDir;

use super::git;

/// A fresh repo on `main` with one commit holding `f.txt` (three lines) and a `.gitignore`.
pub fn fixture() -> (TempDir, Repo) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    fs::create_dir(&dir).expect("mkdir");
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["config", "user.name", "Test User"]);
    git(&dir, &["config", "user.email", "user@example.com"]);
    git(&dir, &["config", "commit.gpgsign", "false"]);
    fs::write(dir.join("f.txt"), "one\ntwo\nthree\n").expect("write");
    fs::write(dir.join(".gitignore"), "*.log\n").expect("write");
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "initial"]);
    let repo = Repo::open(&dir).expect("open");
    (tmp, repo)
}

pub fn wt_path(repo: &Repo, name: &str) -> PathBuf {
    repo.root().join(".orch").join("worktrees").join(name)
}

pub fn oid(repo: &Repo, rev: &str) -> String {
    repo.rev_parse(rev).expect("rev-parse").expect("exists")
}

/// Creates a worktree for `task` from `base` and commits `files` there as agent `Agent A`.
pub fn task_commit(
    repo: &Repo,
    task: &str,
    base: &str,
    files: &[(&str, &str)],
) -> (PathBuf, String) {
    let wt = wt_path(repo, task);
    let branch = format!("orch/{task}");
    repo.create_worktree(&wt, &branch, base, &backup_ref_name(task, 1))
        .expect("create worktree");
    for (name, body) in files {
        fs::write(wt.join(name), body).expect("write");
    }
    let msg = format!("Do {task}\n\n{}", trailers(task, 1));
    let c = repo
        .commit_all(&wt, "Agent A", "agent-a@example.com", &msg)
        .expect("commit")
        .expect("something to commit");
    (wt, c)
}

/// Installs an executable hook script in the repository's hooks folder.
pub fn write_hook(repo: &Repo, name: &str, script: &str) {
    let hooks = repo.root().join(".git/hooks");
    fs::create_dir_all(&hooks).expect("mkdir");
    let hook = hooks.join(name);
    fs::write(&hook, script).expect("write");
    let mut perm = fs::metadata(&hook).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    fs::set_permissions(&hook, perm).expect("chmod");
}

/// Writes `body` to `name` in `dir` and commits it there with plain git, as an agent would.
pub fn agent_commit(dir: &Path, name: &str, body: &str, subject: &str) -> String {
    fs::write(dir.join(name), body).expect("write");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", subject]);
    git(dir, &["rev-parse", "HEAD"])
}
