//! `cargo bench --bench bigrepo`: what the supervisor's git work costs on big repositories
//! (issue #11: worktree ready for the agent p50 < 1 s, the per-turn commit p50 < 300 ms, the
//! merge < 500 ms, on a generated repository of 100,000 files and one of 1 GB).
//!
//! Prints figures only (no pass/fail). Per repository: the plain `git worktree add` the
//! supervisor does today (a full checkout, `Repo::create_worktree`) as the reference, then
//! tasks run the way the pool runs them — `Repo::take_worktree` (an idle worktree moved and
//! reset: only changed files are written), an agent's edit and build, `Repo::collect_attempt`,
//! the merge (`replay_onto` + `cas_update_ref`), `Repo::retire_merged_to_pool` — two tasks per
//! round from the same base, so one merge fast-forwards and the other is replayed onto a moved
//! tip. Wall time and the CPU time of the git processes (`RUSAGE_CHILDREN`), which holds
//! better on a busy machine.
//! Knobs: `BENCH_REPOS` (`files`, `gb`, or both comma-separated; default both), `BENCH_FILES`
//! (files of the first repository, default 100000), `BENCH_GB_MB` (size of the second in MB,
//! default 1024), `BENCH_ROUNDS` (pool rounds, default 10), `BENCH_REF` (reference checkouts,
//! default 3; 0 skips them), `BENCH_DIR` (where to build them; default the system temp dir),
//! `BENCH_GIT_CONFIG` (`key=value,...` set in the generated repository, as a user could: e.g.
//! `core.splitIndex=true` to measure what it changes).

#[allow(dead_code)] // the shared helpers this bench does not use
mod common;

use common::{Rng, git, line_with};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use orch_tui::git::{Collect, Pool, Replay, Repo, Taken, backup_ref_name, trailers};

const INTEGRATION: &str = "orch/integration";

fn main() {
    let repos = std::env::var("BENCH_REPOS").unwrap_or_else(|_| "files,gb".into());
    let rounds = env_usize("BENCH_ROUNDS", 10);
    let refs = env_usize("BENCH_REF", 3);
    println!("orch-tui big repository bench");
    println!(
        "  cores: {}\n  git: {}\n  load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_out("git", &["--version"]),
        load_average()
    );
    let parent = std::env::var("BENCH_DIR").map(PathBuf::from).ok();
    for which in repos.split(',').map(str::trim) {
        let tmp = match &parent {
            Some(p) => tempfile::Builder::new()
                .prefix("orch-bigrepo-")
                .tempdir_in(p),
            None => tempfile::Builder::new().prefix("orch-bigrepo-").tempdir(),
        }
        .expect("tempdir");
        let dir = tmp.path().join("repo");
        let shape = match which {
            "files" => Shape {
                files: env_usize("BENCH_FILES", 100_000),
                bytes_each: 320,
            },
            "gb" => {
                let mb = env_usize("BENCH_GB_MB", 1024);
                Shape {
                    files: 20_000,
                    bytes_each: mb * 1024 * 1024 / 20_000,
                }
            }
            other => {
                println!("  (unknown repository kind {other:?}: use files or gb)");
                continue;
            }
        };
        bench_repo(&dir, &shape, rounds, refs);
    }
    println!("\n  load average at the end: {}", load_average());
}

struct Shape {
    files: usize,
    bytes_each: usize,
}

fn bench_repo(dir: &Path, shape: &Shape, rounds: usize, refs: usize) {
    let mb = shape.files * shape.bytes_each / (1024 * 1024);
    println!(
        "\n== repository of {} files, {} MB checked out ({})",
        shape.files,
        mb,
        dir.display()
    );
    let t = Instant::now();
    generate(dir, shape);
    println!(
        "  generated (fast-import + checkout of the main tree) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let repo = Repo::open(dir).expect("open");
    repo.ensure_excluded(".orch/").expect("exclude");
    let base = repo.ensure_branch(INTEGRATION).expect("integration");

    // The reference: what a worktree costs today.
    let (mut add, mut add_cpu, mut rm, mut rm_cpu) = (vec![], vec![], vec![], vec![]);
    let (mut commit_a, mut commit_a_cpu, mut watch) = (vec![], vec![], vec![]);
    for i in 0..refs {
        let path = dir.join(format!(".orch/worktrees/ref{i}-1"));
        let branch = format!("orch/ref{i}");
        let (w, c) = timed(|| {
            repo.create_worktree(&path, &branch, &base, &backup_ref_name("ref", 1))
                .expect("worktree add")
        });
        add.push(w);
        add_cpu.push(c);
        // The reference commit: an agent turn's edits, then plain `git commit -a` (which
        // `lstat`s every tracked file), twice.
        // What the change journal costs to start (inside take_worktree): a watch per folder.
        let (w, _) = timed(|| repo.watch_worktree(&path));
        watch.push(w);
        let mut rng = Rng(0xc0 + i as u64);
        for turn in 0..2 {
            agent_edits(&path, shape, &mut rng);
            let (w, c) =
                timed(|| git(&path, &["commit", "-q", "-a", "-m", &format!("ref {turn}")]));
            commit_a.push(w);
            commit_a_cpu.push(c);
        }
        let (w, c) = timed(|| {
            repo.retire_worktree(&path, &backup_ref_name("ref", 1))
                .expect("worktree remove")
        });
        rm.push(w);
        rm_cpu.push(c);
        git(dir, &["branch", "-q", "-D", &branch]);
    }
    println!("  reference: today's worktree, a full checkout (ms)");
    line("worktree add (create_worktree)", &add, &add_cpu);
    line("worktree remove (retire_worktree)", &rm, &rm_cpu);
    line("plain git commit -a after a turn", &commit_a, &commit_a_cpu);
    line_with("watch_worktree (journal start), wall", &watch, "", 0);

    // The pool, warmed the way a supervisor would at start (one per slot; two here).
    let pool = Pool {
        dir: PathBuf::from(".orch/pool"),
        reuse: vec!["target".into()],
        max_idle: 2,
        keep_idle: 0,
    };
    let (w, _) = timed(|| repo.fill_pool(&pool, &base).expect("fill"));
    println!(
        "  pool filled with {} worktrees in {:.2} s (at start, before any task waits on it)",
        pool.max_idle,
        w / 1000.0
    );
    let mut s = Samples::default();
    let mut rng = Rng(0x5ca1e);
    for round in 0..rounds {
        let tip = repo
            .rev_parse(&format!("refs/heads/{INTEGRATION}"))
            .expect("rev-parse")
            .expect("integration");
        let before = repo.branch_names().expect("branches");
        let mut made = Vec::new();
        for k in 0..2 {
            let task = format!("r{round}k{k}");
            let path = dir.join(format!(".orch/worktrees/{task}-1"));
            let branch = format!("orch/{task}");
            let ((w, c), taken) = timed_val(|| {
                repo.take_worktree(&pool, &path, &branch, &tip, &backup_ref_name(&task, 1))
                    .expect("take")
            });
            if taken == Taken::Reused {
                s.ready.push(w);
                s.ready_cpu.push(c);
            } else {
                s.created += 1;
            }
            agent_edits(&path, shape, &mut rng);
            let message = format!("{task}: agent work\n\n{}", trailers(&task, 1));
            let ((w, c), change) = timed_val(|| {
                repo.collect_attempt(&Collect {
                    worktree: &path,
                    task: &task,
                    attempt: 1,
                    task_branch: &branch,
                    base: &tip,
                    branches_before: &before,
                    author_name: "Agent",
                    author_email: "agent@bench.invalid",
                    message: &message,
                })
                .expect("collect")
            });
            s.commit.push(w);
            s.commit_cpu.push(c);
            made.push((task, path, branch, change.tip.expect("a change")));
        }
        for (k, (task, path, branch, agent_tip)) in made.into_iter().enumerate() {
            let onto = repo
                .rev_parse(&format!("refs/heads/{INTEGRATION}"))
                .expect("rev-parse")
                .expect("integration");
            let ((w, c), merged) = timed_val(|| {
                let Replay::Clean { tip: new } =
                    repo.replay_onto(&tip, &agent_tip, &onto).expect("replay")
                else {
                    panic!("the bench's tasks never conflict");
                };
                assert!(
                    repo.cas_update_ref(&format!("refs/heads/{INTEGRATION}"), &new, &onto)
                        .expect("cas")
                );
                new
            });
            if k == 0 {
                s.merge_ff.push(w);
                s.merge_ff_cpu.push(c);
            } else {
                s.merge_replay.push(w);
                s.merge_replay_cpu.push(c);
            }
            let (w, c) = timed(|| {
                repo.retire_merged_to_pool(
                    &pool,
                    &path,
                    &branch,
                    &merged,
                    &agent_tip,
                    &backup_ref_name(&task, 1),
                )
                .expect("retire")
            });
            s.give_back.push(w);
            s.give_back_cpu.push(c);
        }
    }
    println!(
        "  {rounds} rounds of 2 tasks through the pool (ms; {} of {} worktrees had to be created)",
        s.created,
        rounds * 2
    );
    line("ready: take_worktree (reused)", &s.ready, &s.ready_cpu);
    line("commit: collect_attempt", &s.commit, &s.commit_cpu);
    line("merge: fast-forward", &s.merge_ff, &s.merge_ff_cpu);
    line(
        "merge: replayed onto a moved tip",
        &s.merge_replay,
        &s.merge_replay_cpu,
    );
    line(
        "give back: retire_merged_to_pool",
        &s.give_back,
        &s.give_back_cpu,
    );
    if let (Some(a), Some(r)) = (median(&add), median(&s.ready)) {
        println!(
            "  worktree ready: p50 {r:.0} ms with the pool against {a:.0} ms for git worktree add ({:.1}x)",
            a / r
        );
    }
    if let (Some(a), Some(c)) = (median(&commit_a), median(&s.commit)) {
        println!(
            "  per-turn commit: p50 {c:.0} ms (collect_attempt, the change journal) against {a:.0} ms for plain git commit -a"
        );
    }
    next_run_from_kept(&repo, &pool, dir, shape, &mut rng);
}

/// `[worktree] keep_idle`: the run ends keeping its idle worktrees, the integration tip moves
/// (another task merged), and the next run's first tasks take the kept ones at the new tip
/// instead of a full checkout each (the reference above).
fn next_run_from_kept(repo: &Repo, pool: &Pool, dir: &Path, shape: &Shape, rng: &mut Rng) {
    let kept = Pool {
        keep_idle: pool.max_idle,
        ..pool.clone()
    };
    let (w, _) = timed(|| repo.trim_pool(&kept).expect("trim"));
    let left = repo.pool_idle(&kept).expect("idle").len();
    println!("  a run ends: {left} idle worktrees kept ([worktree] keep_idle) in {w:.0} ms");
    // The tip moves between the runs: one more commit on the integration branch.
    let tip = repo
        .rev_parse(&format!("refs/heads/{INTEGRATION}"))
        .expect("rev-parse")
        .expect("integration");
    let moved = dir.join(".orch/worktrees/between-1");
    repo.create_worktree(&moved, "orch/between", &tip, &backup_ref_name("between", 1))
        .expect("worktree add");
    agent_edits(&moved, shape, rng);
    git(&moved, &["add", "-A", "src"]);
    git(&moved, &["commit", "-q", "-m", "between the runs"]);
    let between = repo
        .rev_parse("refs/heads/orch/between")
        .expect("rev-parse")
        .expect("the commit between the runs");
    git(
        dir,
        &["update-ref", &format!("refs/heads/{INTEGRATION}"), &between],
    );
    repo.retire_worktree(&moved, &backup_ref_name("between", 1))
        .expect("worktree remove");
    let (mut ready, mut ready_cpu, mut created) = (vec![], vec![], 0);
    for k in 0..left {
        let task = format!("next{k}");
        let path = dir.join(format!(".orch/worktrees/{task}-1"));
        let ((w, c), taken) = timed_val(|| {
            repo.take_worktree(
                &kept,
                &path,
                &format!("orch/{task}"),
                &between,
                &backup_ref_name(&task, 1),
            )
            .expect("take")
        });
        if taken == Taken::Reused {
            ready.push(w);
            ready_cpu.push(c);
        } else {
            created += 1;
        }
        repo.retire_merged_to_pool(
            &kept,
            &path,
            &format!("orch/{task}"),
            &between,
            &between,
            &backup_ref_name(&task, 1),
        )
        .expect("retire");
    }
    println!(
        "  the next run's first takes, from the kept worktrees at a moved tip ({created} created)"
    );
    line("ready: take_worktree (kept)", &ready, &ready_cpu);
    let drained = repo.drain_pool(pool).expect("drain");
    println!("  drained {drained} idle worktrees");
}

#[derive(Default)]
struct Samples {
    ready: Vec<f64>,
    ready_cpu: Vec<f64>,
    created: usize,
    commit: Vec<f64>,
    commit_cpu: Vec<f64>,
    merge_ff: Vec<f64>,
    merge_ff_cpu: Vec<f64>,
    merge_replay: Vec<f64>,
    merge_replay_cpu: Vec<f64>,
    give_back: Vec<f64>,
    give_back_cpu: Vec<f64>,
}

/// What an agent turn leaves: a few files edited, one added, an ignored build cache written.
fn agent_edits(wt: &Path, shape: &Shape, rng: &mut Rng) {
    for _ in 0..5 {
        let i = rng.below(shape.files);
        let p = wt.join(file_path(i));
        let mut body = std::fs::read(&p).expect("read a tracked file");
        body.extend_from_slice(format!("// edited {}\n", rng.next()).as_bytes());
        std::fs::write(&p, body).expect("edit");
    }
    let fresh = wt.join(format!("src/new-{}.rs", rng.next()));
    std::fs::write(fresh, "pub fn new() {}\n").expect("add");
    let cache = wt.join("target/debug");
    std::fs::create_dir_all(&cache).expect("mkdir target");
    for i in 0..20 {
        std::fs::write(cache.join(format!("obj{i}.o")), [0u8; 4096]).expect("cache");
    }
}

fn file_path(i: usize) -> String {
    format!("src/d{:04}/f{i:06}.rs", i / 100)
}

/// A repository of `shape.files` files in folders of 100, committed with `git fast-import`
/// (no working tree to write first), then checked out in the main tree as a user has it.
fn generate(dir: &Path, shape: &Shape) {
    std::fs::create_dir_all(dir).expect("mkdir");
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "bench"]);
    git(dir, &["config", "user.email", "bench@orch.invalid"]);
    let extra = std::env::var("BENCH_GIT_CONFIG").unwrap_or_default();
    for setting in extra.split(',').filter(|s| !s.trim().is_empty()) {
        let (k, v) = setting
            .trim()
            .split_once('=')
            .expect("BENCH_GIT_CONFIG: key=value");
        git(dir, &["config", k, v]);
        println!("  git config {k} {v}");
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("stdin"));
        let mut rng = Rng(0xb16);
        let words: [&[u8]; 12] = [
            b"fn ",
            b"let ",
            b"mut ",
            b"struct ",
            b"impl ",
            b"match ",
            b"Some(x) ",
            b"None ",
            b"return ",
            b"self.",
            b"value ",
            b"\n",
        ];
        let mut body = Vec::with_capacity(shape.bytes_each + 64);
        for i in 0..shape.files {
            body.clear();
            body.extend_from_slice(format!("// file {i}\n").as_bytes());
            while body.len() < shape.bytes_each {
                body.extend_from_slice(words[rng.below(words.len())]);
            }
            write!(w, "blob\nmark :{}\ndata {}\n", i + 1, body.len()).expect("write");
            w.write_all(&body).expect("write");
            w.write_all(b"\n").expect("write");
        }
        write!(
            w,
            "commit refs/heads/main\ncommitter bench <bench@orch.invalid> 1700000000 +0000\ndata 5\ninit\n"
        )
        .expect("write");
        writeln!(w, "M 100644 inline .gitignore\ndata 8\ntarget/\n").expect("write");
        for i in 0..shape.files {
            writeln!(w, "M 100644 :{} {}", i + 1, file_path(i)).expect("write");
        }
        writeln!(w).expect("write");
    }
    assert!(child.wait().expect("wait").success(), "fast-import failed");
    git(dir, &["reset", "-q", "--hard"]);
}

fn timed<T>(f: impl FnOnce() -> T) -> (f64, f64) {
    timed_val(f).0
}

/// (wall ms, CPU ms of the child processes reaped meanwhile), and what `f` returned.
fn timed_val<T>(f: impl FnOnce() -> T) -> ((f64, f64), T) {
    let cpu0 = children_cpu_ms();
    let t = Instant::now();
    let v = f();
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    ((wall, children_cpu_ms() - cpu0), v)
}

fn children_cpu_ms() -> f64 {
    // SAFETY: getrusage fills the struct we pass and reads nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(u.ru_utime) + ms(u.ru_stime)
}

fn line(label: &str, wall: &[f64], cpu: &[f64]) {
    line_with(&format!("{label}, wall"), wall, "", 0);
    line_with(&format!("{label}, git CPU"), cpu, "", 0);
}

fn median(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| common::pct(v, 50.0))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn command_out(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
