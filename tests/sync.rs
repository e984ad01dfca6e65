//! `orch-tui sync` and the base branch, as a user meets them: the real binary, real git, a bare
//! repository on this machine as the remote (loopback only: nothing here reaches a network).

mod common;
mod e2e_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_support::{FAST_CONFIG, Repo, state_of, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

fn plan(tasks: &[(&str, &str)]) -> String {
    let mut s = String::from("[plan]\nname = \"sync\"\n\n");
    for (id, prompt) in tasks {
        s.push_str(&format!(
            "[[task]]\nid = \"{id}\"\ntitle = \"Task {id}\"\nprompt = \"\"\"\n{prompt}\n\"\"\"\n\n"
        ));
    }
    s
}

fn commit(dir: &Path, msg: &str) {
    common::git(
        dir,
        &[
            "-c",
            "user.name=Upstream",
            "-c",
            "user.email=up@example.com",
            "commit",
            "-qm",
            msg,
        ],
    );
}

/// The repository with `origin` (a bare repository beside it) that `main` tracks, and a second
/// clone to push upstream commits from, as a colleague would.
struct World {
    repo: Repo,
    upstream: PathBuf,
}

impl World {
    fn new(config: &str) -> World {
        let repo = Repo::new();
        let bare = repo.root.join("origin.git");
        common::git(
            &repo.root,
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        repo.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
        repo.git(&["push", "-q", "-u", "origin", "main"]);
        let upstream = repo.root.join("colleague");
        common::git(
            &repo.root,
            &[
                "clone",
                "-q",
                "-b",
                "main",
                bare.to_str().unwrap(),
                "colleague",
            ],
        );
        repo.init(config);
        World { repo, upstream }
    }

    /// A colleague pushes a commit writing `path` to origin's main.
    fn push_upstream(&self, path: &str, content: &str) -> String {
        let file = self.upstream.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
        common::git(&self.upstream, &["add", "--", path]);
        commit(&self.upstream, &format!("upstream: {path}"));
        common::git(&self.upstream, &["push", "-q", "origin", "main"]);
        common::git(&self.upstream, &["rev-parse", "HEAD"])
    }

    fn run(&self, tasks: &[(&str, &str)]) -> e2e_support::Out {
        let p = self.repo.write_plan(&plan(tasks));
        self.repo
            .orch(&["run", "--headless", "--plan", p.to_str().unwrap()], LIMIT)
    }

    fn integration(&self) -> String {
        self.repo.git(&["rev-parse", "orch/integration"])
    }

    fn holds(&self, ancestor: &str) -> bool {
        std::process::Command::new("git")
            .args(["merge-base", "--is-ancestor", ancestor, "orch/integration"])
            .current_dir(&self.repo.dir)
            .status()
            .unwrap()
            .success()
    }

    fn show(&self, path: &str) -> String {
        self.repo
            .git(&["show", &format!("orch/integration:{path}")])
    }
}

#[test]
fn a_base_moved_upstream_is_synced_and_later_merges_land_on_the_new_tip() {
    let w = World::new(FAST_CONFIG);
    let out = w.run(&[("a", "Do a.")]);
    assert_eq!(out.code, 0, "{}", out.show());
    let status = w.repo.status();
    assert_eq!(
        status["integration"]["base"]["ref"], "refs/heads/main",
        "the base is the branch checked out at the first start: {status:#}"
    );
    let up = w.push_upstream("UP.md", "from upstream\n");
    // Nothing moved yet for orch-tui's eyes: `sync` fetches and replays.
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("fetched origin/main"), "{}", out.stdout);
    assert!(out.stdout.contains("synced"), "{}", out.stdout);
    assert!(
        w.holds(&up),
        "the integration branch holds the upstream commit"
    );
    assert_eq!(w.show("UP.md"), "from upstream");
    assert!(!w.show("work/a.md").is_empty(), "a's work is still there");
    // The replayed commit is still a's, trailers and all.
    let commits = w.repo.commits(&format!("{up}..orch/integration"));
    assert_eq!(commits.len(), 1, "{commits:?}");
    assert_eq!(commits[0].trailer("Orch-Task").as_deref(), Some("a"));
    let status = w.repo.status();
    assert_eq!(status["integration"]["base"]["commit"], up.as_str());
    assert!(status["integration"]["sync"]["requested"].is_null());
    // Asked again with nothing new: said, exit 0, nothing changed.
    let tip = w.integration();
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("up to date"), "{}", out.stdout);
    assert_eq!(w.integration(), tip);
    // A task merged after the sync lands on the new tip.
    let out = w.run(&[("a", "Do a."), ("b", "Do b.")]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(w.holds(&tip), "b landed on top of the synced tip");
    assert_eq!(w.show("UP.md"), "from upstream");
    assert!(!w.show("work/b.md").is_empty());
}

#[test]
fn a_conflicting_upstream_commit_moves_nothing_and_the_human_sees_the_files() {
    let w = World::new(FAST_CONFIG);
    let out = w.run(&[("a", "@sim write shared.txt: ours")]);
    assert_eq!(out.code, 0, "{}", out.show());
    let before = w.integration();
    w.push_upstream("shared.txt", "theirs\n");
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(
        out.stdout.contains("conflicts with it in shared.txt"),
        "{}",
        out.stdout
    );
    assert_eq!(w.integration(), before, "nothing moved");
    let status = w.repo.status();
    let inbox = status["inbox"].as_array().unwrap();
    let item = inbox
        .iter()
        .find(|i| i["kind"] == "sync")
        .unwrap_or_else(|| panic!("a sync item in the inbox: {status:#}"));
    assert!(item["text"].as_str().unwrap().contains("shared.txt"));
    assert!(
        status["integration"]["sync"]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("orch-tui sync")),
        "it says what to do: {status:#}"
    );
    let text = w.repo.orch(&["status"], LIMIT);
    assert!(text.stdout.contains("[sync]"), "{}", text.stdout);
    // The upstream side settles it: the problem goes with the next sync.
    common::git(&w.upstream, &["rm", "-q", "shared.txt"]);
    commit(&w.upstream, "drop shared.txt");
    common::git(&w.upstream, &["push", "-q", "origin", "main"]);
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        w.repo.status()["inbox"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] != "sync")
    );
}

#[test]
fn a_check_failing_after_the_replay_moves_nothing_and_shows_its_tail() {
    let config = format!(
        "{FAST_CONFIG}checks = [\"test ! -e BREAK || (echo broken by upstream; exit 1)\"]\n"
    );
    let w = World::new(&config);
    let out = w.run(&[("a", "Do a.")]);
    assert_eq!(out.code, 0, "{}", out.show());
    let before = w.integration();
    w.push_upstream("BREAK", "x\n");
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 1, "{}", out.show());
    assert!(out.stdout.contains("broken by upstream"), "{}", out.stdout);
    assert_eq!(w.integration(), before, "nothing moved");
    let status = w.repo.status();
    assert!(
        status["integration"]["sync"]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("broken by upstream") && p.contains("test ! -e BREAK")),
        "{status:#}"
    );
}

#[test]
fn sync_while_a_supervisor_runs_is_done_by_it_and_the_running_task_lands_on_the_new_tip() {
    let w = World::new(FAST_CONFIG);
    let gate = w.repo.root.join("gate");
    let config = format!(
        "{FAST_CONFIG}\n[agents.gated]\ncommand = [\"sh\", \"-c\", \"while [ ! -e {} ]; do sleep 0.05; done; echo x > x.txt\"]\nadapter = \"generic\"\n",
        gate.display()
    );
    std::fs::write(w.repo.dir.join(".orch/config.toml"), config).unwrap();
    let p = w.repo.write_plan(
        "[plan]\nname = \"s\"\n\n[[task]]\nid = \"g\"\ntitle = \"G\"\nprompt = \"g\"\nagent = \"gated\"\n",
    );
    let run = w
        .repo
        .spawn(&["run", "--headless", "--plan", p.to_str().unwrap()]);
    wait_for(LIMIT, || {
        let s = w.repo.status();
        (s["supervisor"]["running"] == true && state_of(&s, "g") == "working")
            .then_some(())
            .ok_or(s)
    })
    .unwrap_or_else(|s| panic!("the task never started: {s:#}"));
    let up = w.push_upstream("UP.md", "up\n");
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(out.stdout.contains("the supervisor (pid"), "{}", out.stdout);
    assert!(w.holds(&up));
    // The agent, started on the old base, finishes: its work is replayed onto the new tip.
    std::fs::write(&gate, "").unwrap();
    let out = run.wait(LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(w.holds(&up));
    assert_eq!(w.show("x.txt"), "x");
    assert_eq!(w.show("UP.md"), "up");
}

#[test]
fn a_supervisor_killed_mid_sync_is_recovered_by_the_next_run_without_a_hold() {
    let w = World::new(FAST_CONFIG);
    let inside = w.repo.root.join("in-check");
    let go = w.repo.root.join("go");
    // The check blocks only on the replayed tree (it holds UP.md) until the test says go.
    let check = format!(
        "if [ -e UP.md ]; then touch {}; while [ ! -e {} ]; do sleep 0.05; done; fi",
        inside.display(),
        go.display()
    );
    let config = format!("{FAST_CONFIG}checks = [\"{check}\"]\n");
    std::fs::write(w.repo.dir.join(".orch/config.toml"), config).unwrap();
    let out = w.run(&[("a", "Do a.")]);
    assert_eq!(out.code, 0, "{}", out.show());
    let before = w.integration();
    let up = w.push_upstream("UP.md", "up\n");
    let sync = w.repo.spawn(&["sync"]);
    wait_for(LIMIT, || inside.exists().then_some(()).ok_or(()))
        .expect("the sync reached its check");
    // kill -9 while the replayed branch is being checked (the longest step of a sync).
    let killed = sync.kill9();
    assert_ne!(killed.code, 0);
    std::fs::write(&go, "").unwrap();
    assert_eq!(
        w.integration(),
        before,
        "nothing moved before the check passed"
    );
    let out = w.repo.orch(&["run", "--headless"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        !out.stdout.contains("held"),
        "no hold for orch-tui's own sync: {}",
        out.stdout
    );
    assert!(w.holds(&up), "the sync asked for was done by the next run");
    let status = w.repo.status();
    assert!(status["integration"]["sync"]["requested"].is_null());
    assert_eq!(status["integration"]["base"]["commit"], up.as_str());
    let events = w.repo.orch(&["events", "--json"], LIMIT);
    assert_eq!(
        events.stdout.matches("\"kind\":\"synced\"").count(),
        1,
        "synced once: {}",
        events.stdout
    );
}

#[test]
fn base_at_the_first_start_cuts_the_integration_branch_and_a_later_other_base_is_refused() {
    let repo = Repo::new();
    repo.git(&["checkout", "-q", "-b", "dev"]);
    std::fs::write(repo.dir.join("DEV.md"), "dev\n").unwrap();
    repo.git(&["add", "DEV.md"]);
    commit(&repo.dir, "dev work");
    repo.git(&["checkout", "-q", "main"]);
    repo.init(FAST_CONFIG);
    let p = repo.write_plan(&plan(&[("a", "Do a.")]));
    let out = repo.orch(
        &[
            "run",
            "--headless",
            "--base",
            "dev",
            "--plan",
            p.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(repo.git(&["show", "orch/integration:DEV.md"]), "dev");
    let status = repo.status();
    assert_eq!(status["integration"]["base"]["ref"], "refs/heads/dev");
    // Another base for a later run is a sync, never a side effect of a run.
    let tip = repo.git(&["rev-parse", "orch/integration"]);
    let out = repo.orch(&["run", "--headless", "--base", "main"], LIMIT);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stderr.contains("orch-tui sync --base main"),
        "{}",
        out.stderr
    );
    assert_eq!(repo.git(&["rev-parse", "orch/integration"]), tip);
    // Bad input: what, and what to do; nothing changed.
    for args in [
        vec!["sync", "--base", "nope"],
        vec!["run", "--headless", "--base", "nope"],
        vec!["sync", "--base", "orch/integration"],
    ] {
        let out = repo.orch(&args, LIMIT);
        assert_eq!(out.code, 2, "{args:?}: {}", out.show());
        assert!(out.stderr.contains("main"), "{args:?}: {}", out.stderr);
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(e2e_support::BIN)
        .arg("sync")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "not a repository");
    assert!(String::from_utf8_lossy(&out.stderr).contains("git init"));
    // Switching on purpose: the merged work is replayed onto main.
    let out = repo.orch(&["sync", "--base", "main"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(
        repo.status()["integration"]["base"]["ref"],
        "refs/heads/main"
    );
}

#[test]
fn a_local_base_is_followed_without_a_remote_and_unpushed_commits_are_never_dropped() {
    let w = World::new(FAST_CONFIG);
    let out = w.run(&[("a", "Do a.")]);
    assert_eq!(out.code, 0, "{}", out.show());
    // An unpushed commit on the local main: the base follows it.
    std::fs::write(w.repo.dir.join("LOCAL.md"), "mine\n").unwrap();
    w.repo.git(&["add", "LOCAL.md"]);
    commit(&w.repo.dir, "local, unpushed");
    let local = w.repo.git(&["rev-parse", "main"]);
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(w.holds(&local), "the unpushed commit is in the base");
    // The upstream moves too: main and origin/main diverged. Refused, nothing moved.
    let tip = w.integration();
    w.push_upstream("UP.md", "up\n");
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 3, "{}", out.show());
    assert!(out.stderr.contains("diverged"), "{}", out.stderr);
    assert_eq!(w.integration(), tip);
    // Without a remote at all, the local branch alone is the base.
    w.repo.git(&["branch", "--unset-upstream", "main"]);
    w.repo.git(&["remote", "remove", "origin"]);
    std::fs::write(w.repo.dir.join("MORE.md"), "more\n").unwrap();
    w.repo.git(&["add", "MORE.md"]);
    commit(&w.repo.dir, "more local work");
    // Asked without waiting: recorded for the next supervisor; the next `sync` does it.
    let out = w.repo.orch(&["sync", "--no-wait"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    let status = w.repo.status();
    assert!(
        status["integration"]["sync"]["requested"]["onto"].is_string(),
        "{status:#}"
    );
    assert_eq!(w.integration(), tip, "nothing moved yet");
    let out = w.repo.orch(&["sync"], LIMIT);
    assert_eq!(out.code, 0, "{}", out.show());
    assert_eq!(w.show("MORE.md"), "more");
    assert!(w.repo.status()["integration"]["sync"]["requested"].is_null());
}
