//! The simulated world: a virtual clock, jobs that finish at random moments, fake agents that
//! work, commit, report, hang, lie and die, checks that pass or fail, and a ledger that is
//! sometimes busy. Everything is driven by one seeded random source, so a seed replays exactly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use orch_tui::core::agent_event::{
    AgentEvent, Failure, FailureKind, Limit, LimitKind, Tokens, TurnEnd,
};
use orch_tui::core::domain::{AttemptId, AttemptNo};
use orch_tui::core::ops::Op;
use orch_tui::core::screen_rules::{Layer, ScreenMatch, ScreenState, WaitingFor};
use orch_tui::core::supervisor::{Boot, CheckOutcome, Event, Exit, HolderFact, Observed};
use orch_tui::engine::real_store::SqliteStore;
use orch_tui::engine::world::{
    AgentProc, Agents, Checks, Incoming, Job, Launch, Runtime, Sink, Spawned, Store, WriteError,
};
use orch_tui::ledger::{Ledger, WorkerCall, with_clock};

use super::fake_git::FakeGit;

/// splitmix64: small, fast, and the same everywhere.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len() as u64) as usize)
        }
    }
}

/// What a fake agent does with its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Writes its work and exits 0 (`commit`: commits it itself; `branch`: on a new branch,
    /// `stay`: and leaves the worktree there; `report`: says `worker done` and waits to be
    /// ended; `shared`: writes the file every such task writes, so merges conflict).
    Work {
        commit: bool,
        branch: bool,
        stay: bool,
        report: bool,
        shared: bool,
    },
    /// Changes nothing and exits 0.
    Nothing,
    /// Exits 1 (after `worker fail` when `report`).
    Fail { report: bool },
    /// Never ends by itself; `stubborn`: ignores TERM.
    Hang { stubborn: bool },
    /// A reviewer: approve, ask for changes, or end without a verdict.
    Review { verdict: Option<bool> },
    /// Hits a usage limit after some spend (its next attempt continues it once it lifts).
    Limited,
    /// The provider fails it (API 500, auth 401): an infrastructure failure, exit 1.
    Infra,
}

pub struct FakeProc {
    pub attempt: AttemptId,
    pub task: String,
    pub n: u32,
    pub token: String,
    pub worktree: String,
    pub epoch: u64,
    pub plan: Plan,
    pub step: u32,
    pub next_at: u64,
    /// TERM asked at, and the grace after which KILL comes.
    pub stop: Option<(u64, u64)>,
    pub alive: bool,
    /// `ORCH_SLOT` it was started with.
    pub slot: u32,
    /// Frozen (its task paused) since then: it does nothing until thawed or stopped.
    pub frozen_since: Option<u64>,
    /// Time spent frozen so far.
    pub frozen_ms: u64,
    pub generation: u64,
    /// What it has spent, as its own total would say.
    pub spent: (u64, u64, f64),
    /// An interactive session (Codex): it reads keys, stays after `worker done`, takes a
    /// change request as its next turn and ends on its exit command.
    pub interactive: bool,
    /// Its turn was interrupted (Escape): it does nothing until the next turn is sent.
    pub interrupted: bool,
    /// What was pasted or typed into its input box and not sent yet.
    pub input: String,
    /// It was asked to exit (`/quit` and Enter): it ends by itself next.
    pub quitting: bool,
    /// When the human last typed into its pane.
    pub human_key_at: Option<u64>,
    /// A headless session (`codex exec`): never frozen, ended at a pause.
    pub headless_session: bool,
    /// Its conversation: the one its argv resumes, else its own; and what that conversation
    /// had spent before it started (its own total counts the whole conversation, as the real
    /// CLIs' do after a resume).
    pub conversation: String,
    pub earlier: (u64, u64, f64),
    /// A restarted supervisor adopted it from its holder.
    pub adopted: bool,
    /// It runs in a holder: it outlives a crashed supervisor, and how it ended is recorded.
    pub held: bool,
    pub recorded_exit: Option<Exit>,
    /// What its holder keeps for an adopting supervisor.
    pub branches_before: Vec<String>,
}

pub struct World {
    pub now: u64,
    pub rng: Rng,
    jobs: Vec<(u64, u64, Job)>,
    pub inbox: VecDeque<Incoming>,
    pub procs: BTreeMap<u32, FakeProc>,
    next_pid: u32,
    /// Bumped at every crash: what a dead supervisor's jobs and agents report goes nowhere.
    pub generation: u64,
    pub epoch: u64,
    pub git: FakeGit,
    pub ledger: Ledger,
    /// Every work token an agent wrote, with its attempt (for "no work is ever lost").
    pub work: Vec<(String, String, u32)>,
    pub violations: Vec<String>,
    /// The next writes the ledger refuses as busy.
    pub busy_writes: u32,
    /// Reviewers and agents: chosen per attempt from these weights.
    pub hang_percent: u64,
    pub check_fail_percent: u64,
    /// The old reap: only by pid, so a pid never recorded escapes.
    pub fault_reap_by_pid_only: bool,
    /// Agents frozen for a paused task, over the run.
    pub holds: usize,
    /// Change requests sent into live sessions, over the run.
    pub turns: usize,
    /// Headless sessions stopped while their task was paused, and agents started resuming a
    /// conversation, over the run.
    pub pause_ends: usize,
    pub resumed: usize,
    /// What each conversation spent so far (by session id).
    pub conversations: BTreeMap<String, (u64, u64, f64)>,
    /// Agents that run in holders (the rest die with a crashed supervisor's PTYs, as in
    /// process), per hundred; and the attempts a restarted supervisor adopted.
    pub holder_percent: u64,
    pub adoptions: usize,
    /// Of them: held for a paused task (frozen or interrupted), and sessions kept through
    /// review.
    pub adopted_held: usize,
    pub adopted_kept: usize,
    pub trace: VecDeque<String>,
    /// The integration tip and number of done tasks the funnel invariant last looked at.
    pub last_checked: Option<(Option<String>, usize)>,
    /// Someone other than orch-tui moved the integration branch at some point.
    pub meddled: bool,
    /// The base commit the last sync asked for was to go onto.
    pub sync_asked: Option<String>,
    /// Attempts whose agent hit a limit (they must never count as failures).
    pub limited: std::collections::BTreeSet<AttemptId>,
    /// Each attempt's spend as last seen in the ledger (it never goes down).
    pub spend_seen: BTreeMap<i64, (i64, i64, f64)>,
}

pub type Shared = Arc<Mutex<World>>;

pub fn lock(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    pub fn note(&mut self, line: String) {
        if self.trace.len() >= 60 {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("[{:>7}] {line}", self.now));
    }

    fn next_due(&self) -> Option<u64> {
        let jobs = self.jobs.iter().map(|(t, _, _)| *t);
        let procs = self
            .procs
            .values()
            .filter(|p| p.alive)
            .map(FakeProc::due_at);
        jobs.chain(procs).min()
    }
}

impl FakeProc {
    /// When it acts next: its script's next step, or — once asked to stop — its death (at once
    /// on TERM, or at KILL after the grace when it ignores TERM).
    fn due_at(&self) -> u64 {
        match self.stop {
            Some((at, grace)) if matches!(self.plan, Plan::Hang { stubborn: true }) => at + grace,
            Some((at, _)) => at + 5,
            None if self.quitting => self.next_at,
            None if self.frozen_since.is_some() || self.interrupted => u64::MAX,
            None => self.next_at,
        }
    }

    /// Time it ran, not frozen, from `since` to `now`.
    pub fn running_ms(&self, since: u64, now: u64) -> u64 {
        let frozen_now = self.frozen_since.map_or(0, |f| now.saturating_sub(f));
        now.saturating_sub(since)
            .saturating_sub(self.frozen_ms + frozen_now)
    }
}

/// The runtime: a virtual clock; jobs finish, agents act, in an order the seed chooses.
pub struct SimRuntime {
    pub world: Shared,
}

impl Runtime for SimRuntime {
    fn now_ms(&self) -> u64 {
        lock(&self.world).now
    }

    fn sink(&self) -> Sink {
        let world = self.world.clone();
        let generation = lock(&world).generation;
        Arc::new(move |i| {
            let mut w = lock(&world);
            if w.generation == generation {
                w.inbox.push_back(i);
            }
        })
    }

    fn spawn(&mut self, job: Job) {
        let mut w = lock(&self.world);
        let at = w.now + w.rng.below(400);
        let generation = w.generation;
        w.jobs.push((at, generation, job));
    }

    fn next(&mut self, deadline_ms: u64) -> Incoming {
        loop {
            let mut w = lock(&self.world);
            if let Some(i) = w.inbox.pop_front() {
                return i;
            }
            let now = w.now;
            let due: Vec<usize> = (0..w.jobs.len()).filter(|&i| w.jobs[i].0 <= now).collect();
            if !due.is_empty() {
                let pick = due[w.rng.below(due.len() as u64) as usize];
                let (_, generation, job) = w.jobs.swap_remove(pick);
                let current = w.generation;
                drop(w);
                let out = job();
                if generation == current {
                    return out;
                }
                continue;
            }
            let acting: Vec<u32> = w
                .procs
                .iter()
                .filter(|(_, p)| p.alive && p.due_at() <= now)
                .map(|(pid, _)| *pid)
                .collect();
            if let Some(&pid) = w.rng.pick(&acting) {
                act(&mut w, pid);
                continue;
            }
            match w.next_due() {
                Some(t) if t <= deadline_ms => w.now = t.max(now),
                _ => {
                    w.now = deadline_ms.max(now);
                    return Incoming::Timeout;
                }
            }
        }
    }

    fn pause(&mut self, ms: u64) {
        lock(&self.world).now += ms;
    }

    fn spawn_after(&mut self, delay_ms: u64, job: Job) {
        let mut w = lock(&self.world);
        let at = w.now + delay_ms;
        let generation = w.generation;
        w.jobs.push((at, generation, job));
    }
}

/// One step of a fake agent's life.
fn act(w: &mut World, pid: u32) {
    let Some(p) = w.procs.get(&pid) else { return };
    // Asked to stop: it is due now, so it dies (KILL for one that ignored TERM).
    if p.stop.is_some() {
        let stubborn = matches!(p.plan, Plan::Hang { stubborn: true });
        return exit(w, pid, None, Some(if stubborn { 9 } else { 15 }));
    }
    // Asked to exit by its own command: it ends well, no signal needed.
    if p.quitting {
        return exit(w, pid, Some(0), None);
    }
    let (plan, step) = (p.plan, p.step);
    if step == 0 && !matches!(plan, Plan::Review { .. }) {
        let session = p.conversation.clone();
        emit(w, pid, AgentEvent::Session { id: session });
    }
    match (plan, step) {
        (Plan::Limited, 0) => {
            spend(w, pid);
            advance(w, pid, 50);
        }
        (Plan::Limited, 1) if w.rng.chance(40) => {
            // An interactive agent shows its limit on screen and waits there: the supervisor
            // must end it (the next step would be its death by TERM).
            let attempt = w.procs.get(&pid).map(|p| p.attempt);
            if let Some(a) = attempt {
                w.limited.insert(a);
            }
            screen(
                w,
                pid,
                ScreenState::Limited,
                "limit-screen",
                "You've hit your limit",
            );
            idle(w, pid);
        }
        (Plan::Limited, _) => {
            let attempt = w.procs.get(&pid).map(|p| p.attempt);
            if let Some(a) = attempt {
                w.limited.insert(a);
            }
            emit(
                w,
                pid,
                AgentEvent::Limit(Limit {
                    kind: LimitKind::Usage,
                    resets: None,
                    text: "usage limit reached (simulated)".into(),
                }),
            );
            exit(w, pid, Some(1), None);
        }
        (Plan::Infra, _) => {
            let kind = if w.rng.chance(50) {
                FailureKind::Api { status: 500 }
            } else {
                FailureKind::Auth { status: Some(401) }
            };
            emit(
                w,
                pid,
                AgentEvent::TurnEnd(TurnEnd {
                    ok: false,
                    last_message: None,
                    session_id: None,
                    transcript_path: None,
                    failure: Some(Failure {
                        kind,
                        detail: "simulated".into(),
                    }),
                    denials: Vec::new(),
                }),
            );
            exit(w, pid, Some(1), None);
        }
        (Plan::Work { .. }, 0) => {
            // An interactive agent may stop at a dialog or a permission prompt first; the
            // human answers it (its screen shows it working again) before it works.
            if w.rng.chance(10) {
                let (state, rule, line) = match w.rng.below(3) {
                    0 => (
                        ScreenState::Waiting(WaitingFor::Permission),
                        "permission-prompt",
                        "Do you want to proceed?",
                    ),
                    1 => (
                        ScreenState::Waiting(WaitingFor::FirstRun),
                        "trust-dialog",
                        "Yes, I trust this folder",
                    ),
                    _ => (
                        ScreenState::Waiting(WaitingFor::Question),
                        "question",
                        "Which file should I change?",
                    ),
                };
                screen(w, pid, state, rule, line);
                screen(w, pid, ScreenState::Working, "working", "esc to interrupt");
            }
            spend(w, pid);
            do_work(w, pid)
        }
        (Plan::Work { report: true, .. }, 1) => report(w, pid, WorkerCall::Done { summary: None }),
        (Plan::Work { report: true, .. }, _) => idle(w, pid),
        (Plan::Work { .. }, _) | (Plan::Nothing, _) => {
            total(w, pid);
            exit(w, pid, Some(0), None)
        }
        (Plan::Fail { report: true }, 0) => report(w, pid, WorkerCall::Fail { reason: None }),
        (Plan::Fail { .. }, _) => exit(w, pid, Some(1), None),
        (Plan::Hang { .. }, _) => idle(w, pid),
        (
            Plan::Review {
                verdict: Some(approve),
            },
            0,
        ) => {
            let notes = (!approve).then(|| "rename it".to_string());
            report(w, pid, WorkerCall::Verdict { approve, notes })
        }
        (Plan::Review { .. }, _) => exit(w, pid, Some(0), None),
    }
    // A stale or forged report must be refused and change nothing.
    if w.rng.chance(3) {
        forge(w, pid);
    }
}

/// What an interactive agent's watched screen settled on, as `engine::watch` delivers it.
fn screen(w: &mut World, pid: u32, state: ScreenState, rule: &str, line: &str) {
    let Some(p) = w.procs.get(&pid) else { return };
    if p.generation == w.generation {
        let (attempt, n) = (p.attempt, p.n);
        let said = format!("{}#{} screen: {rule}", p.task, p.n);
        w.note(said);
        // Some states come from the terminal-signal layer (a notification, the title) and a
        // permission prompt may name its call; chosen without the rng, so seeds keep their paths.
        let layer = match (state, pid % 2) {
            (ScreenState::Waiting(WaitingFor::Permission), 0) => Layer::Osc,
            (ScreenState::Working, 1) => Layer::Title,
            _ => Layer::Screen,
        };
        let call = (state == ScreenState::Waiting(WaitingFor::Permission) && n % 2 == 1)
            .then(|| ("Bash".to_string(), "rm -rf build".to_string()));
        let seen = ScreenMatch {
            state,
            rule: rule.to_string(),
            excerpt: line.to_string(),
            layer,
            call,
        };
        w.inbox
            .push_back(Incoming::Event(Event::Screen { attempt, seen }));
    }
}

/// What a fake agent's adapter would have parsed, delivered as the real feed delivers it.
fn emit(w: &mut World, pid: u32, event: AgentEvent) {
    let Some(p) = w.procs.get(&pid) else { return };
    if p.generation == w.generation {
        let attempt = p.attempt;
        w.inbox
            .push_back(Incoming::Event(Event::Agent { attempt, event }));
    }
}

/// One API call's worth of spend.
fn spend(w: &mut World, pid: u32) {
    let tokens = Tokens {
        input: 100 + w.rng.below(5_000),
        output: 10 + w.rng.below(2_000),
        ..Tokens::default()
    };
    let cost = (tokens.input as f64 * 3.0 + tokens.output as f64 * 15.0) / 1e6;
    if let Some(p) = w.procs.get_mut(&pid) {
        p.spent.0 += tokens.input;
        p.spent.1 += tokens.output;
        p.spent.2 += cost;
        let conversation = p.conversation.clone();
        let c = w.conversations.entry(conversation).or_default();
        c.0 += tokens.input;
        c.1 += tokens.output;
        c.2 += cost;
    }
    emit(
        w,
        pid,
        AgentEvent::Usage {
            tokens,
            cost_usd: Some(cost),
        },
    );
}

/// The agent's own total at its end: its bill, sometimes a little above the live figures.
fn total(w: &mut World, pid: u32) {
    let Some(p) = w.procs.get(&pid) else { return };
    let (i, o, c) = p.spent;
    let (i, o, c) = (i + p.earlier.0, o + p.earlier.1, c + p.earlier.2);
    let extra = w.rng.below(3) as f64 * 0.001;
    emit(
        w,
        pid,
        AgentEvent::Total {
            tokens: Some(Tokens {
                input: i,
                output: o,
                ..Tokens::default()
            }),
            cost_usd: c + extra,
        },
    );
}

/// A fake agent reporting: in the simulated world every process descends from the supervisor,
/// and from itself.
fn fake_caller(pid: u32) -> orch_tui::ledger::Caller<'static> {
    fn any(_: i32) -> bool {
        true
    }
    orch_tui::ledger::Caller {
        pid,
        descends_from: &any,
    }
}

fn advance(w: &mut World, pid: u32, by: u64) {
    let at = w.now + by;
    if let Some(p) = w.procs.get_mut(&pid) {
        p.step += 1;
        p.next_at = at;
    }
}

fn idle(w: &mut World, pid: u32) {
    let at = w.now + 10_000;
    if let Some(p) = w.procs.get_mut(&pid) {
        p.next_at = at;
    }
}

fn do_work(w: &mut World, pid: u32) {
    let Some(p) = w.procs.get(&pid) else { return };
    let Plan::Work {
        commit,
        branch,
        stay,
        shared,
        ..
    } = p.plan
    else {
        return;
    };
    let (task, n, wt) = (p.task.clone(), p.n, p.worktree.clone());
    let token = format!("work:{task}:{n}:{}", w.rng.next() % 1_000_000);
    let path = if shared {
        "shared.txt".to_string()
    } else {
        format!("work/{task}.txt")
    };
    let mut repo = w.git.lock();
    if let Some(mut tree) = repo.worktrees.get(&wt).cloned() {
        // An attempt that continues an earlier one in its worktree keeps that one's work and
        // adds its own (the supervisor must lose neither).
        let path = if tree.files.contains_key(&path) {
            format!("{path}.{n}")
        } else {
            path
        };
        if branch {
            let name = format!("refs/heads/agent-{task}-{n}");
            repo.refs.insert(name.clone(), tree.head.clone());
            tree.visited.insert(name.clone());
            tree.branch = Some(name);
        }
        tree.files.insert(path, token.clone());
        if commit || branch {
            let parent = tree.head.clone();
            let c = repo.commit(
                vec![parent],
                tree.files.clone(),
                Some((task.clone(), n)),
                "agent's own commit",
            );
            tree.head = c.clone();
            if let Some(b) = &tree.branch {
                repo.refs.insert(b.clone(), c);
            }
        }
        if branch && !stay {
            tree.branch = Some(format!("refs/heads/orch/{task}"));
            let head = repo
                .refs
                .get(&format!("refs/heads/orch/{task}"))
                .cloned()
                .unwrap_or_default();
            tree.files = repo
                .commits
                .get(&head)
                .map(|c| c.files.clone())
                .unwrap_or_default();
            tree.head = head;
        }
        repo.worktrees.insert(wt, tree);
        drop(repo);
        w.work.push((token, task, n));
    } else {
        drop(repo);
    }
    let by = w.rng.below(300);
    advance(w, pid, by);
}

fn report(w: &mut World, pid: u32, call: WorkerCall) {
    let Some(p) = w.procs.get(&pid) else { return };
    let (task, n, token) = (p.task.clone(), p.n, p.token.clone());
    let now = w.now;
    let r = with_clock(now, || {
        w.ledger
            .worker_report(&task, AttemptNo(n), &token, &call, None, &fake_caller(pid))
    });
    w.note(format!(
        "{task}#{n} reports {call:?}: {}",
        r.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into())
    ));
    w.inbox.push_back(Incoming::Poke);
    let by = w.rng.below(200);
    advance(w, pid, by);
}

/// A report with a made-up token, or from an attempt that is over: refused, nothing written.
fn forge(w: &mut World, pid: u32) {
    let Some(p) = w.procs.get(&pid) else { return };
    let (task, n) = (p.task.clone(), p.n);
    let token = format!("forged-{}", w.rng.next());
    let now = w.now;
    let call = WorkerCall::Done { summary: None };
    let r = with_clock(now, || {
        w.ledger
            .worker_report(&task, AttemptNo(n), &token, &call, None, &fake_caller(pid))
    });
    if r.is_ok() {
        w.violations
            .push(format!("a forged report for {task}#{n} was accepted"));
    }
}

fn exit(w: &mut World, pid: u32, code: Option<i32>, signal: Option<i32>) {
    let Some(p) = w.procs.get_mut(&pid) else {
        return;
    };
    p.alive = false;
    if p.held {
        p.recorded_exit = Some(Exit { code, signal });
    }
    let (attempt, generation) = (p.attempt, p.generation);
    let line = format!("{}#{} exits {code:?}/{signal:?}", p.task, p.n);
    w.note(line);
    if generation == w.generation {
        w.inbox.push_back(Incoming::Event(Event::Exited {
            attempt,
            exit: Exit { code, signal },
        }));
    }
}

/// Keys typed into a fake agent: an interactive session reads them as the real CLIs do (Escape
/// interrupts its turn, a paste fills its input box, Enter sends it, `/quit` ends it); the
/// human's keys (`h`) are only noted. Anything else ignores its input.
fn keys(w: &mut World, pid: u32, bytes: &[u8]) {
    let now = w.now;
    let Some(p) = w.procs.get_mut(&pid) else {
        return;
    };
    if !p.alive || !p.interactive || p.generation != w.generation {
        return;
    }
    let stubborn = matches!(p.plan, Plan::Hang { stubborn: true });
    match bytes {
        b"h" => p.human_key_at = Some(now),
        b"\x1b" => p.interrupted = !stubborn,
        b"\x03" => p.input.clear(),
        b"\r" => {
            let sent = std::mem::take(&mut p.input);
            if sent == "/quit" || sent == "/exit" {
                if !stubborn {
                    p.quitting = true;
                    p.next_at = now + 5;
                }
            } else if sent.contains("changes are asked for") {
                // A change request: a new turn of work, reported done again.
                w.turns += 1;
                p.interrupted = false;
                p.step = 0;
                p.next_at = now + 20;
                p.plan = Plan::Work {
                    commit: false,
                    branch: false,
                    stay: false,
                    report: true,
                    shared: false,
                };
            } else if !sent.is_empty() {
                // "Go on": the interrupted turn continues where it stood.
                p.interrupted = false;
                p.next_at = p.next_at.max(now + 20);
            }
        }
        b => {
            // A paste (bracketed when the terminal asked for it) or plain text.
            let text = String::from_utf8_lossy(b);
            let text = text
                .strip_prefix("\x1b[200~")
                .map_or(text.as_ref(), |t| t.trim_end_matches("\x1b[201~"))
                .to_string();
            let typing = p
                .human_key_at
                .is_some_and(|at| now < at + orch_tui::core::supervisor::TYPING_QUIET_MS);
            if typing && text.contains("changes are asked for") {
                let v = format!(
                    "{}#{}: a change request was typed while the human typed in its pane",
                    p.task, p.n
                );
                w.violations.push(v);
                return;
            }
            p.input.push_str(&text);
        }
    }
    let line = format!(
        "{}#{} keys {:?}",
        p.task,
        p.n,
        String::from_utf8_lossy(bytes)
    );
    w.note(line);
}

pub struct SimProc {
    world: Shared,
    pid: u32,
}

impl AgentProc for SimProc {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn write(&self, bytes: Vec<u8>) {
        let mut w = lock(&self.world);
        keys(&mut w, self.pid, &bytes);
    }
    fn resize(&self, _rows: u16, _cols: u16) {}
    fn stop(&self, grace: Duration) {
        let mut w = lock(&self.world);
        let now = w.now;
        let mut ended_at_pause = false;
        if let Some(p) = w.procs.get(&self.pid)
            && p.stop.is_none()
            && p.headless_session
        {
            let state = w.ledger.task(&p.task).ok().flatten().map(|t| t.state);
            ended_at_pause = state == Some(orch_tui::core::state::TaskState::Paused);
        }
        if let Some(p) = w.procs.get_mut(&self.pid)
            && p.stop.is_none()
        {
            p.stop = Some((now, grace.as_millis() as u64));
        }
        if ended_at_pause {
            w.pause_ends += 1;
        }
    }
    fn freeze(&self, freeze: bool) {
        let mut w = lock(&self.world);
        let now = w.now;
        let Some(p) = w.procs.get_mut(&self.pid) else {
            return;
        };
        if p.headless_session {
            // Its connection to the API would time out while it is stopped.
            let line = format!("{}#{}: a headless session was frozen", p.task, p.n);
            w.violations.push(line);
            return;
        }
        match (freeze, p.frozen_since) {
            (true, None) => {
                p.frozen_since = Some(now);
                w.holds += 1;
            }
            (false, Some(since)) => {
                // It goes on where it stood: its next step is as far away as it was.
                let held = now.saturating_sub(since);
                p.frozen_ms += held;
                p.next_at = p.next_at.saturating_add(held);
                p.frozen_since = None;
            }
            _ => {
                let line = format!("{}#{} frozen={freeze} twice", p.task, p.n);
                w.violations.push(line);
            }
        }
    }
    fn screen(&self) -> Option<orch_tui::agent::screen::SharedScreen> {
        None
    }
}

pub struct SimAgents {
    pub world: Shared,
}

impl Agents for SimAgents {
    fn spawn(&self, l: Launch, _sink: Sink) -> Result<Box<dyn AgentProc>, String> {
        let mut w = lock(&self.world);
        let env = |k: &str| {
            l.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let reviewer = env("ORCH_ROLE") == "reviewer";
        let interactive = l.profile.mode == orch_tui::core::config::AgentMode::Interactive;
        let r = w.rng.below(100);
        let plan = if reviewer {
            match r {
                0..=69 => Plan::Review {
                    verdict: Some(true),
                },
                70..=89 => Plan::Review {
                    verdict: Some(false),
                },
                _ => Plan::Review { verdict: None },
            }
        } else {
            let hang = w.hang_percent;
            match r {
                _ if r < hang => Plan::Hang {
                    stubborn: w.rng.chance(50),
                },
                _ if r >= 96 => Plan::Limited,
                _ if r >= 93 => Plan::Infra,
                _ if r < hang + 8 => Plan::Fail {
                    report: w.rng.chance(50),
                },
                _ if r < hang + 12 => Plan::Nothing,
                _ => Plan::Work {
                    commit: w.rng.chance(25),
                    branch: w.rng.chance(12),
                    stay: w.rng.chance(50),
                    // A session's turn ends at its prompt: it says `worker done` far more
                    // often than it exits by itself.
                    report: w.rng.chance(if interactive { 80 } else { 20 }),
                    shared: w.rng.chance(15),
                },
            }
        };
        if !reviewer {
            base_holds_dependencies(&mut w, &env("ORCH_TASK"), l.attempt, &l.cwd);
            resumes_its_conversation(&mut w, &env("ORCH_TASK"), &l);
        }
        let headless_session = !interactive
            && !reviewer
            && l.profile.adapter == orch_tui::core::config::Adapter::Codex;
        // `exec resume ID` (`--resume ID` for Claude): the conversation goes on.
        let resumed = l
            .argv
            .windows(2)
            .find(|a| a[0] == "resume" || a[0] == "--resume")
            .map(|a| a[1].clone());
        if resumed.is_some() {
            w.resumed += 1;
        }
        let conversation = resumed
            .clone()
            .unwrap_or_else(|| format!("session-{}-{}", env("ORCH_TASK"), l.attempt.0));
        let earlier = resumed
            .and_then(|r| w.conversations.get(&r).copied())
            .unwrap_or_default();
        w.next_pid += 1;
        let pid = w.next_pid;
        let (generation, epoch) = (w.generation, w.epoch);
        let holder_percent = w.holder_percent;
        let held = w.rng.chance(holder_percent);
        let next_at = w.now + 20 + w.rng.below(500);
        let task = env("ORCH_TASK");
        let n: u32 = env("ORCH_ATTEMPT").parse().unwrap_or(0);
        // Slots are the executor's: a live agent of this supervisor never shares one.
        let slot: u32 = env("ORCH_SLOT").parse().unwrap_or(0);
        let taken = w
            .procs
            .values()
            .any(|p| p.alive && p.generation == generation && p.slot == slot);
        if slot == 0 || taken {
            w.violations.push(format!(
                "{task}#{n} started in slot {slot}, which a live agent holds (or no slot)"
            ));
        }
        w.note(format!("spawn {task}#{n} slot {slot} {plan:?}"));
        w.procs.insert(
            pid,
            FakeProc {
                attempt: l.attempt,
                task,
                n,
                token: env("ORCH_TOKEN"),
                worktree: l.cwd.clone(),
                epoch,
                plan,
                step: 0,
                next_at,
                stop: None,
                alive: true,
                slot,
                frozen_since: None,
                frozen_ms: 0,
                generation,
                spent: (0, 0, 0.0),
                interactive,
                headless_session,
                conversation,
                earlier,
                adopted: false,
                interrupted: false,
                input: String::new(),
                quitting: false,
                human_key_at: None,
                held,
                recorded_exit: None,
                branches_before: l.branches_before.clone(),
            },
        );
        Ok(Box::new(SimProc {
            world: self.world.clone(),
            pid,
        }))
    }

    fn reap_stale(&self, stale: &orch_tui::engine::world::Stale) {
        let pids: Vec<u32> = stale.agents.iter().filter_map(|(p, _)| *p).collect();
        let mut w = lock(&self.world);
        let epoch = w.epoch;
        let by_pid_only = w.fault_reap_by_pid_only;
        let stale: Vec<u32> = w
            .procs
            .iter()
            .filter(|(pid, p)| p.alive && p.epoch < epoch && (!by_pid_only || pids.contains(pid)))
            .filter(|(_, p)| !stale.keep.contains(&p.token))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in stale {
            if let Some(p) = w.procs.get_mut(&pid) {
                p.alive = false;
                if p.held {
                    p.recorded_exit = Some(Exit {
                        code: None,
                        signal: Some(9),
                    });
                }
            }
        }
    }

    fn probe(&self, attempt: AttemptId) -> Option<(HolderFact, Vec<String>)> {
        let w = lock(&self.world);
        let (pid, p) = w
            .procs
            .iter()
            .find(|(_, p)| p.attempt == attempt && p.held && p.epoch < w.epoch)?;
        let now = w.now;
        let fact = HolderFact {
            attempt,
            holder: attempt,
            live_pid: p.alive.then_some(*pid),
            exit: p.recorded_exit,
            held_ms: p.frozen_ms + p.frozen_since.map_or(0, |f| now.saturating_sub(f)),
            frozen: p.alive && p.frozen_since.is_some(),
        };
        (fact.live_pid.is_some() || fact.exit.is_some()).then(|| (fact, p.branches_before.clone()))
    }

    fn adopt(&self, holder: AttemptId, l: Launch, _sink: Sink) -> Result<Spawned, String> {
        let mut w = lock(&self.world);
        let (generation, epoch) = (w.generation, w.epoch);
        let slot: u32 = l
            .env
            .iter()
            .find(|(k, _)| k == "ORCH_SLOT")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let found = w
            .procs
            .iter()
            .find(|(_, p)| p.attempt == holder && p.held && p.alive)
            .map(|(pid, _)| *pid);
        let Some(pid) = found else {
            return Err("its holder is gone".into());
        };
        let recorded = w
            .ledger
            .attempts(&l.task)
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.id == l.attempt)
            .and_then(|a| a.pid);
        if recorded.map(|p| p as u32) != Some(pid) {
            let v = format!(
                "attempt {} adopted with pid {pid}, recorded {recorded:?}",
                l.attempt
            );
            w.violations.push(v);
        }
        let taken = w
            .procs
            .iter()
            // This supervisor's own (a dead one's leftover job may still start an agent).
            .any(|(q, p)| *q != pid && p.alive && p.epoch == epoch && p.slot == slot);
        if slot == 0 || taken {
            let v = format!(
                "adopted attempt {} got slot {slot}, held by a live agent",
                l.attempt
            );
            w.violations.push(v);
        }
        if let Some(p) = w.procs.get_mut(&pid) {
            // Its reports and its exit reach this supervisor from now on.
            p.generation = generation;
            p.epoch = epoch;
            p.slot = slot;
            p.adopted = true;
        }
        w.adoptions += 1;
        let kept = w
            .ledger
            .attempts(&l.task)
            .unwrap_or_default()
            .into_iter()
            .any(|a| a.id == l.attempt && !a.state.is_live());
        let held = w
            .procs
            .get(&pid)
            .is_some_and(|p| p.frozen_since.is_some() || p.interrupted);
        w.adopted_kept += usize::from(kept);
        w.adopted_held += usize::from(held && !kept);
        w.note(format!("adopt attempt {} pid {pid}", l.attempt));
        let branches = w
            .procs
            .get(&pid)
            .map(|p| p.branches_before.clone())
            .unwrap_or_default();
        Ok(Spawned {
            process: Box::new(SimProc {
                world: self.world.clone(),
                pid,
            }),
            base: String::new(),
            branches,
        })
    }
}

/// An agent attempt that continues an earlier one of its profile in the same worktree (a
/// session ended at a pause, a limit lifted, a failure retried) resumes that one's
/// conversation when it had one: its argv names the session.
fn resumes_its_conversation(w: &mut World, task: &str, l: &Launch) {
    let rows = w.ledger.attempts(task).unwrap_or_default();
    let Some(prev) = rows
        .iter()
        .find(|a| a.id == l.attempt)
        .and_then(|a| a.continues)
        .and_then(|p| rows.iter().find(|a| a.id == p))
    else {
        return;
    };
    let Some(session) = prev.session.as_deref() else {
        return;
    };
    let resumes = l.argv.iter().any(|a| a == session);
    let can = l.profile.adapter == orch_tui::core::config::Adapter::Codex;
    if can && prev.profile == l.profile.name && !resumes {
        let v = format!(
            "{task} attempt {} continues attempt {} but does not resume its session {session}: {:?}",
            l.attempt, prev.id, l.argv
        );
        w.violations.push(v);
    }
}

/// A task starts only on a base that holds the work of all its dependencies: the merged ones,
/// and a dependency not merged yet only when the attempt names it as its candidate (started
/// during its veto window, `spec_on`) and the base holds that candidate's work.
fn base_holds_dependencies(
    w: &mut World,
    task: &str,
    attempt: orch_tui::core::domain::AttemptId,
    worktree: &str,
) {
    let Ok(Some(t)) = w.ledger.task(task) else {
        return;
    };
    let repo = w.git.lock();
    let Some(head) = repo.worktrees.get(worktree).map(|wt| wt.head.clone()) else {
        return;
    };
    let history = repo.ancestors(&head);
    let landed: std::collections::BTreeSet<String> = history
        .iter()
        .filter_map(|c| repo.commits.get(c).and_then(|c| c.origin.clone()))
        .map(|(t, _)| t)
        .collect();
    drop(repo);
    let rows = w.ledger.attempts(task).unwrap_or_default();
    let spec_on = rows
        .iter()
        .find(|a| a.id == attempt)
        .and_then(|a| a.spec_on.clone());
    for d in &t.depends_on {
        let done = matches!(w.ledger.task(d), Ok(Some(u)) if u.state == orch_tui::core::state::TaskState::Done);
        if !done {
            let work = w
                .ledger
                .attempts(d)
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.role == orch_tui::core::domain::Role::Agent)
                .max_by_key(|a| a.n)
                .is_some_and(|a| a.commit_oid.is_some() && a.commit_oid != a.base);
            // The candidate stands on merged work only (one level deep).
            let unmerged_below = match w.ledger.task(d) {
                Ok(Some(c)) => c
                    .depends_on
                    .iter()
                    .find(|x| {
                        !matches!(w.ledger.task(x), Ok(Some(u))
                        if u.state == orch_tui::core::state::TaskState::Done)
                    })
                    .cloned(),
                _ => None,
            };
            let v = if spec_on.as_deref() != Some(d.as_str()) {
                Some(format!(
                    "{task} started before its dependency {d} merged, naming no candidate \
                     ({spec_on:?})"
                ))
            } else if let Some(x) = unmerged_below {
                Some(format!(
                    "{task} started on the candidate tip of {d}, whose own dependency {x} is \
                     not merged"
                ))
            } else if work && !landed.contains(d) {
                Some(format!(
                    "{task} started on the candidate tip of {d} without {d}'s work"
                ))
            } else {
                None
            };
            w.violations.extend(v);
            continue;
        }
        let had_work = w
            .ledger
            .attempts(d)
            .unwrap_or_default()
            .iter()
            .any(|a| a.merge_tip.is_some());
        if had_work && !landed.contains(d) {
            let v = format!("{task} started on a base without the work of its dependency {d}");
            w.violations.push(v);
        }
    }
}

pub struct SimChecks {
    pub world: Shared,
}

impl Checks for SimChecks {
    fn run(&self, _dir: &str, commands: &[String], _log: &str) -> Vec<CheckOutcome> {
        let mut w = lock(&self.world);
        let fail = w.check_fail_percent;
        let mut out = Vec::new();
        for c in commands {
            let passed = !w.rng.chance(fail);
            out.push(CheckOutcome {
                command: c.clone(),
                passed,
                exit_code: Some(if passed { 0 } else { 1 }),
                timed_out: false,
                duration_ms: 5,
                tail: if passed { String::new() } else { "boom".into() },
            });
            if !passed {
                break;
            }
        }
        out
    }
}

/// The real ledger store, stamped with the simulated clock, sometimes busy.
pub struct SimStore {
    pub inner: SqliteStore,
    pub world: Shared,
}

impl Store for SimStore {
    fn write(&mut self, ops: &[Op]) -> Result<(), WriteError> {
        let now = {
            let mut w = lock(&self.world);
            if w.busy_writes > 0 {
                w.busy_writes -= 1;
                // Both are transient to the executor; alternate so a run meets each.
                let what = if w.busy_writes.is_multiple_of(2) {
                    "database is locked (simulated)"
                } else {
                    "database or disk is full (simulated)"
                };
                return Err(WriteError::Transient(what.into()));
            }
            w.now
        };
        with_clock(now, || self.inner.write(ops))
    }
    fn boot(&mut self) -> Result<Boot, String> {
        self.inner.boot()
    }
    fn rows(&mut self, tasks: &[String]) -> Result<Observed, String> {
        self.inner.rows(tasks)
    }
    fn foreign_changes(&mut self) -> Result<(Vec<String>, bool), String> {
        self.inner.foreign_changes()
    }
    fn token(&mut self, attempt: AttemptId) -> Option<String> {
        self.inner.token(attempt)
    }
    fn check_summary(&mut self, task: &str, n: u32) -> String {
        self.inner.check_summary(task, n)
    }
}

impl World {
    pub fn new(seed: u64, git: FakeGit, ledger: Ledger) -> World {
        World {
            now: 1_000_000,
            rng: Rng(seed),
            jobs: Vec::new(),
            inbox: VecDeque::new(),
            procs: BTreeMap::new(),
            next_pid: 1000,
            generation: 0,
            epoch: 0,
            git,
            ledger,
            work: Vec::new(),
            violations: Vec::new(),
            busy_writes: 0,
            hang_percent: 6,
            check_fail_percent: 10,
            fault_reap_by_pid_only: false,
            holds: 0,
            turns: 0,
            pause_ends: 0,
            resumed: 0,
            conversations: BTreeMap::new(),
            holder_percent: 50,
            adoptions: 0,
            adopted_held: 0,
            adopted_kept: 0,
            trace: VecDeque::new(),
            last_checked: None,
            meddled: false,
            sync_asked: None,
            limited: Default::default(),
            spend_seen: BTreeMap::new(),
        }
    }

    /// The supervisor died: what its jobs and agents report from now on goes nowhere; agents keep
    /// running. Returns the jobs that were under way: the caller runs some of them (they got as
    /// far as their git work before the process died).
    pub fn crash(&mut self) -> Vec<Job> {
        self.generation += 1;
        self.inbox.clear();
        std::mem::take(&mut self.jobs)
            .into_iter()
            .map(|(_, _, job)| job)
            .collect()
    }
}
