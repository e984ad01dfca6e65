//! The change journal against real inotify and real git (`super` is `src/git/watch.rs`).
use super::*;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The hook as git runs it (`sh -c '<hook> "$@"'`, the version and the index's token).
#[test]
fn the_inline_hook_answers_the_indexs_token_and_everything_for_others() {
    let answers = vec![
        ("oabct3".to_string(), b"oabct5\0a b/$x`y`*\0".to_vec()),
        ("oabct5".to_string(), b"oabct5\0".to_vec()),
    ];
    let tokens = [Some("oabct3".to_string()), Some("oabct5".to_string())];
    let hook = inline_hook(&tokens, &answers, b"oabct5\0/\0").expect("inline");
    let run = |token: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{hook} \"$@\""))
            .arg(&hook)
            .args(["2", token])
            .output()
            .expect("sh");
        assert!(out.status.success());
        out.stdout
    };
    assert_eq!(run("oabct3"), b"oabct5\0a b/$x`y`*\0");
    // The next call with the same settings (the index holds the new token by then).
    assert_eq!(run("oabct5"), b"oabct5\0");
    assert_eq!(run("oabct2"), b"oabct5\0/\0");
    assert_eq!(run(""), b"oabct5\0/\0");
    // What a printf format or the quotes would change goes through the files.
    for odd in [&b"it's"[..], b"50%", b"back\\slash", "é".as_bytes()] {
        let answers = vec![("oabct3".to_string(), [b"oabct5\0", odd, b"\0"].concat())];
        assert_eq!(inline_hook(&tokens, &answers, b"oabct5\0/\0"), None);
    }
}

fn new_files(repo: &crate::git::Repo, root: &Path) -> NewFiles {
    repo.watches
        .answer(root, true)
        .expect("an answer")
        .new_files
}

/// `add` is told only the paths the journal saw (a file made before the watch started is
/// not among them), until it cannot vouch: another git wrote the index.
#[test]
fn add_is_told_the_journals_paths_until_another_git_writes_the_index() {
    let t = tempfile::tempdir().expect("tempdir");
    let root = &t.path().canonicalize().expect("canonical");
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("kept.txt"), "one\n").expect("write");
    git(root, &["add", "-A"]);
    let who = ["-c", "user.name=t", "-c", "user.email=t@t"];
    git(root, &[&who[..], &["commit", "-qm", "base"]].concat());
    std::fs::write(root.join("before-the-watch.txt"), "unseen\n").expect("write");
    let repo = crate::git::Repo::open(root).expect("open");
    repo.watch_worktree(root);
    assert_eq!(new_files(&repo, root), NewFiles::Listed(vec![]));
    std::fs::create_dir_all(root.join("d/e")).expect("mkdir");
    std::fs::write(root.join("d/e/f.txt"), "new\n").expect("write");
    std::fs::write(root.join("kept.txt"), "two\n").expect("write");
    let NewFiles::Listed(paths) = new_files(&repo, root) else {
        panic!("the journal should vouch");
    };
    assert!(paths.contains(&PathBuf::from("d")), "{paths:?}");
    assert!(paths.contains(&PathBuf::from("kept.txt")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with("before-the-watch.txt")));
    let tip = repo
        .commit_all(root, "A", "a@a", "turn")
        .expect("commit")
        .expect("a commit");
    let files = git(root, &["ls-tree", "-r", "--name-only", &tip]);
    assert_eq!(files, "d/e/f.txt\nkept.txt");
    // The commit vouched again: nothing since. Its token in the index is found, so the
    // hook carries the answer inline.
    assert_eq!(new_files(&repo, root), NewFiles::Listed(vec![]));
    let args = repo.fsmonitor_args(root).expect("an answer");
    assert!(args[1].contains("printf"), "{args:?}");
    git(root, &["rm", "-q", "--cached", "kept.txt"]);
    assert!(matches!(new_files(&repo, root), NewFiles::Walk(_)));
}

/// Events the kernel dropped (its queue overflowed while the reader was stalled) must not
/// lose a change: the next commit scans, and the journal is trusted again after it.
#[test]
fn a_change_made_while_the_queue_overflowed_lands_in_the_commit() {
    let t = tempfile::tempdir().expect("tempdir");
    let root = t.path();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join(".gitignore"), "junk/\n").expect("write");
    std::fs::write(root.join("kept.txt"), "one\n").expect("write");
    git(root, &["add", "-A"]);
    git(
        root,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "base",
        ],
    );
    std::fs::create_dir(root.join("junk")).expect("mkdir");
    let repo = crate::git::Repo::open(root).expect("open");
    repo.watch_worktree(root);
    assert_eq!(
        repo.commit_all(root, "A", "a@a", "nothing")
            .expect("commit"),
        None
    );
    let watch = lock(&repo.watches.map)
        .values()
        .next()
        .cloned()
        .expect("watched");
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16_384);
    {
        // notify's reader blocks in our handler on this lock: the kernel queue fills up.
        let _stalled = lock(&watch.shared.state);
        // Each new file with content is a create, a modify and a close: more than twice
        // the queue's length in distinct events, whatever mask the watcher asked for.
        for i in 0..limit {
            std::fs::write(root.join(format!("junk/{i}")), b"x").expect("write");
        }
        std::fs::write(root.join("kept.txt"), "two\n").expect("write");
        std::fs::write(root.join("new-while-lost.txt"), "new\n").expect("write");
    }
    // The reader reaches the kernel's overflow mark after the events queued before it
    // (seconds on a loaded machine; a commit meanwhile would time out its sync and scan).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !{
        let st = lock(&watch.shared.state);
        st.overflowed || st.rescans > 0
    } {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue never overflowed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let tip = repo
        .commit_all(root, "A", "a@a", "after the overflow")
        .expect("commit")
        .expect("a commit");
    assert_eq!(git(root, &["show", &format!("{tip}:kept.txt")]), "two");
    // Its event may be among the lost ones: the add walked every folder.
    assert_eq!(
        git(root, &["show", &format!("{tip}:new-while-lost.txt")]),
        "new"
    );
    // Trusted again: a later change is found through the journal.
    std::fs::write(root.join("kept.txt"), "three\n").expect("write");
    let tip = repo
        .commit_all(root, "A", "a@a", "later")
        .expect("commit")
        .expect("a commit");
    assert_eq!(git(root, &["show", &format!("{tip}:kept.txt")]), "three");
    assert_eq!(git(root, &["status", "--porcelain"]), "");
}
