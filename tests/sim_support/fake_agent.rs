//! What a fake agent does, step by step: work, commit, report, spend, hang, ask, lie and die, as
//! its plan says; and how it reads the keys typed into it.

use orch_tui::core::agent_event::{
    AgentEvent, Failure, FailureKind, Limit, LimitKind, Tokens, TurnEnd,
};
use orch_tui::core::domain::AttemptNo;
use orch_tui::core::screen_rules::{Layer, ScreenMatch, ScreenState, WaitingFor};
use orch_tui::core::supervisor::{Event, Exit};
use orch_tui::engine::world::Incoming;
use orch_tui::ledger::{WorkerCall, with_clock};

use super::world::*;

/// One step of a fake agent's life.
pub(super) fn act(w: &mut World, pid: u32) {
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
pub(super) fn screen(w: &mut World, pid: u32, state: ScreenState, rule: &str, line: &str) {
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
pub(super) fn emit(w: &mut World, pid: u32, event: AgentEvent) {
    let Some(p) = w.procs.get(&pid) else { return };
    if p.generation == w.generation {
        let attempt = p.attempt;
        w.inbox
            .push_back(Incoming::Event(Event::Agent { attempt, event }));
    }
}

/// One API call's worth of spend.
pub(super) fn spend(w: &mut World, pid: u32) {
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
pub(super) fn total(w: &mut World, pid: u32) {
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
pub(super) fn fake_caller(pid: u32) -> orch_tui::ledger::Caller<'static> {
    fn any(_: i32) -> bool {
        true
    }
    orch_tui::ledger::Caller {
        pid,
        descends_from: &any,
    }
}

pub(super) fn advance(w: &mut World, pid: u32, by: u64) {
    let at = w.now + by;
    if let Some(p) = w.procs.get_mut(&pid) {
        p.step += 1;
        p.next_at = at;
    }
}

pub(super) fn idle(w: &mut World, pid: u32) {
    let at = w.now + 10_000;
    if let Some(p) = w.procs.get_mut(&pid) {
        p.next_at = at;
    }
}

pub(super) fn do_work(w: &mut World, pid: u32) {
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

pub(super) fn report(w: &mut World, pid: u32, call: WorkerCall) {
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
pub(super) fn forge(w: &mut World, pid: u32) {
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

pub(super) fn exit(w: &mut World, pid: u32, code: Option<i32>, signal: Option<i32>) {
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
pub(super) fn keys(w: &mut World, pid: u32, bytes: &[u8]) {
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
