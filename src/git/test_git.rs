//! For the git module's unit tests: plain `git` in a folder, with an identity and none of the
//! caller's `GIT_DIR`/`GIT_WORK_TREE`, failing the test when git fails.

use std::path::Path;

/// Runs `git args` in `dir`; its standard output, trailing whitespace trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}
