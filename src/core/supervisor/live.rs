//! Agents from dispatch to their end: which ready task goes to which profile, starting it, when
//! to stop it, and what its exit means (commit its work, retry with backoff, or fail for good).

use super::{AgentFacts, Change, Collect, Effect, Exit, JobFailure, Live, Phase, PromptSpec};
use super::{Setup, Started};
use super::{Supervisor, Then};
use crate::core::domain::{Actor, AttemptId, AttemptNo, AttemptState, Reported, Role};
use crate::core::ops::{EventData, Finish, NewAttempt, Op, Patch};
use crate::core::schedule::{ProfileLoad, ReadyTask, backoff_ms, decide};
use crate::core::state::TaskState;

/// The trailers that mark a commit as one attempt's work (for people and `git log`; recovery
/// never trusts them: an agent can write them too).
pub fn trailers(task: &str, n: AttemptNo) -> String {
    format!("Orch-Task: {task}\nOrch-Attempt: {n}")
}

/// The task's prompt, plus what the previous attempt ran into (a failed check's output, a
/// reviewer's or human's notes, a merge conflict), so the next attempt does not repeat it.
pub fn prompt_text(
    prompt: &str,
    failures: u32,
    reason: Option<&str>,
    note: Option<&str>,
) -> String {
    let mut p = prompt.to_string();
    if failures > 0
        && let Some(reason) = reason
    {
        p.push_str(&format!(
            "\n\n## What happened to the previous attempt\n\n{reason}\n"
        ));
    }
    if let Some(note) = note {
        p.push_str(&format!("\n\n## Notes for this attempt\n\n{note}\n"));
    }
    p
}

/// The prompt of an attempt that continues an earlier one in its worktree: what happened, then
/// the task again (a resumed conversation holds it already, but an agent that lost its context
/// must not be left guessing).
fn continue_text(t: &super::TaskRec, full: &str) -> String {
    let why = t.reason.as_deref().unwrap_or("it was stopped");
    format!(
        "You were interrupted ({why}). Your work so far is in this folder (committed or not): \
         continue where you left off and finish the task.\n\n## The task\n\n{full}"
    )
}

impl Supervisor {
    /// Fill free slots from the ready set, best first.
    pub(super) fn dispatch_rules(&mut self) {
        // No base to start from until the integration tip is recorded (the first start).
        if self.stopping
            || self.model.hold.is_some()
            || self.model.integration_tip.is_none()
            || self.run_budget_spent()
        {
            return;
        }
        // Each task to the profile it may go to now (a limit, an open breaker or a probe under
        // way makes it wait; a fallback may take it).
        let ready: Vec<ReadyTask> = self
            .model
            .in_state(TaskState::Ready)
            .filter(|t| !self.busy.contains(&t.id))
            // One agent per task: a held attempt of a resumed task continues (`pause_rules`),
            // and one still stopping is let go before the next starts.
            .filter(|t| {
                !self
                    .live
                    .values()
                    .any(|l| l.task == t.id && l.role == Role::Agent)
            })
            // Every dependency merged, or the one left in its veto window (`speculate.rs`).
            .filter(|t| self.start_on(t).is_some())
            .filter_map(|t| {
                let agent = self.route(t)?;
                if self.slowed(&agent) {
                    return None;
                }
                Some(ReadyTask {
                    id: t.id.clone(),
                    priority: t.priority,
                    ready_since_ms: t.ready_since_ms,
                    not_before_ms: t.not_before_ms,
                    capabilities: t.capabilities.clone(),
                    agent: Some(agent),
                })
            })
            .collect();
        if ready.is_empty() {
            return;
        }
        // Reviewers are agents too: they take slots and count against their profile. A session
        // kept idle through review does not (it works again only as its task's next attempt).
        let working = |l: &&Live| !matches!(l.phase, Phase::InReview { .. });
        let running = |name: &str| {
            self.live
                .values()
                .filter(working)
                .filter(|l| l.profile == name)
                .count()
        };
        let in_flight = self.count_claims();
        let busy = self.live.values().filter(working).count();
        let free = self.cfg.slots.saturating_sub(busy + in_flight);
        let profiles: Vec<ProfileLoad> = self
            .cfg
            .agents
            .values()
            .map(|p| ProfileLoad {
                name: p.name.clone(),
                capabilities: p.capabilities.clone(),
                max_concurrent: p.max_concurrent,
                running: running(&p.name),
            })
            .collect();
        let decision = decide(&ready, &profiles, free, self.now);
        for id in decision.unroutable {
            self.hold_unroutable(&id);
        }
        for (task, profile) in decision.dispatch {
            self.claim(&task, &profile);
        }
    }

    /// Assigned tasks whose attempt is not yet set up (a claim just written).
    fn count_claims(&self) -> usize {
        self.model
            .in_state(TaskState::Assigned)
            .filter(|t| {
                self.model
                    .latest_agent(&t.id)
                    .is_none_or(|a| !self.live.contains_key(&a.id))
            })
            .count()
            + self
                .pending
                .values()
                .flat_map(|p| &p.ops)
                .filter(|o| matches!(o, Op::InsertAttempt(a) if a.role == Role::Agent))
                .count()
    }

    fn hold_unroutable(&mut self, id: &str) {
        let why = format!(
            "no agent profile can take task `{id}`: check its `agent` and `capabilities` against [agents] in the config"
        );
        let op = Op::Transition {
            task: id.to_string(),
            from: TaskState::Ready,
            to: TaskState::Paused,
            patch: Patch {
                reason: Some(Some(why.clone())),
                paused_from: Some(Some(TaskState::Ready)),
                ..Patch::default()
            },
            actor: Actor::Supervisor,
            attempt: None,
            data: EventData::why(why.clone()),
        };
        self.write(vec![op], Then::Say(format!("✋ {id}: {why}")));
    }

    /// Claim a ready task for a profile: the task becomes assigned with a new attempt row. A
    /// task marked to continue an earlier attempt (a limit lifted, a budget extended) gets an
    /// attempt in that attempt's worktree.
    fn claim(&mut self, task: &str, profile: &str) {
        let n = self.model.next_attempt_no(task);
        let id = self.take_attempt_id();
        let mut row = self.new_attempt(id, task, n, Role::Agent, profile);
        let mut patch = Patch::default();
        row.spec_on = self
            .model
            .task(task)
            .and_then(|t| self.start_on(t))
            .flatten();
        if let Some(prev) = self.continuation(task) {
            row.continues = Some(prev.id);
            row.worktree = prev.worktree.clone();
            // Its worktree stands on the candidate tip that one started on.
            if prev.spec_on.is_some() && self.waits_for_candidate(task).is_some() {
                row.spec_on = prev.spec_on.clone();
            }
        }
        if self
            .model
            .task(task)
            .is_some_and(|t| t.resume_attempt.is_some())
        {
            patch.resume_attempt = Some(None);
        }
        let ops = vec![Op::Transition {
            task: task.to_string(),
            from: TaskState::Ready,
            to: TaskState::Assigned,
            patch,
            actor: Actor::Supervisor,
            attempt: None,
            data: EventData {
                profile: Some(profile.to_string()),
                ..EventData::default()
            },
        }];
        // Started on a candidate tip: only while that candidate's veto window runs in the
        // ledger (a veto that landed after the rows were read wins the race).
        let mut ops = ops;
        let line = match (&row.spec_on, row.continues) {
            (Some(c), None) => {
                ops.push(Op::ExpectStage {
                    task: c.clone(),
                    stage: crate::core::domain::FunnelStage::Veto,
                });
                format!("▶ {task} attempt {n} on {profile}, on the candidate tip of `{c}`")
            }
            _ => format!("▶ {task} attempt {n} on {profile}"),
        };
        ops.push(Op::InsertAttempt(row));
        self.write(ops, Then::Say(line));
    }

    pub(super) fn take_attempt_id(&mut self) -> AttemptId {
        let next = self.model.next_attempt_id().max(self.next_attempt);
        self.next_attempt = AttemptId(next.0 + 1);
        next
    }

    pub(super) fn new_attempt(
        &self,
        id: AttemptId,
        task: &str,
        n: AttemptNo,
        role: Role,
        profile: &str,
    ) -> NewAttempt {
        // A reviewer shares its agent attempt's number; a second review of the same attempt
        // (after a restart) gets a log folder of its own.
        let reviews = self
            .model
            .attempts
            .values()
            .filter(|a| a.task == task && a.n == n && a.role == Role::Reviewer)
            .count();
        let suffix = match (role, reviews) {
            (Role::Agent, _) => String::new(),
            (Role::Reviewer, 0) => "-review".to_string(),
            (Role::Reviewer, k) => format!("-review{}", k + 1),
        };
        NewAttempt {
            id,
            task: task.to_string(),
            n,
            role,
            profile: profile.to_string(),
            epoch: self.epoch,
            worktree: format!("{}/{task}-{n}", self.roots.worktrees),
            branch: format!("orch/{task}"),
            log_dir: format!("{}/{task}/{n}{suffix}", self.roots.logs),
            continues: None,
            spec_on: None,
        }
    }

    /// Attempts of this epoch that are written but not started: start them.
    pub(super) fn setup_rules(&mut self) {
        if self.stopping {
            return;
        }
        let starting: Vec<_> = self
            .model
            .attempts
            .values()
            .filter(|a| {
                a.epoch == self.epoch
                    && a.state == AttemptState::Starting
                    && !self.live.contains_key(&a.id)
            })
            .cloned()
            .collect();
        for a in starting {
            let Some(t) = self.model.task(&a.task).cloned() else {
                continue;
            };
            let prev = a
                .continues
                .and_then(|p| self.model.attempts.get(&p))
                .cloned();
            let agent = self.model.latest_agent(&a.task).cloned();
            // A speculative start waits while its candidate is being merged, and is let go
            // (`speculation_rules`) if its candidate will not merge.
            let Ok(speculative) = self.candidate_for_setup(&a) else {
                continue;
            };
            let base = match (a.role, &prev) {
                (Role::Agent, Some(p)) => p.base.clone().unwrap_or_default(),
                (Role::Agent, None) => self.model.integration_tip.clone().unwrap_or_default(),
                (Role::Reviewer, _) => agent
                    .as_ref()
                    .and_then(|x| x.base.clone())
                    .unwrap_or_default(),
            };
            let resume = self.resume_session(&a);
            self.say_fresh_conversation(&a, resume.as_deref());
            let prompt = match a.role {
                Role::Agent => {
                    let mut text = prompt_text(
                        &t.prompt,
                        t.failures,
                        t.reason.as_deref(),
                        t.note.as_deref(),
                    );
                    if prev.is_some() {
                        text = continue_text(&t, &text);
                    }
                    PromptSpec::Task(text)
                }
                Role::Reviewer => PromptSpec::Review {
                    of: a.n,
                    base: agent
                        .as_ref()
                        .and_then(|x| x.base.clone())
                        .unwrap_or_default(),
                    commit: agent
                        .as_ref()
                        .and_then(|x| x.commit.clone())
                        .unwrap_or_default(),
                },
            };
            let worktree = match a.role {
                Role::Agent => a.worktree.clone(),
                Role::Reviewer => agent
                    .as_ref()
                    .map_or(a.worktree.clone(), |x| x.worktree.clone()),
            };
            let deadline_ms = self
                .time_allowance(&t, &a)
                .map(|ms| self.now.saturating_add(ms));
            // A change request for a session kept through review goes to that session.
            if a.role == Role::Agent && self.adopt(&a, deadline_ms) {
                continue;
            }
            let baseline = self.baseline(resume.as_deref(), a.id);
            let facts = AgentFacts {
                baseline,
                ..AgentFacts::default()
            };
            let max_budget_usd = self.cost_left(&a.task);
            self.live.insert(
                a.id,
                Live {
                    task: a.task.clone(),
                    n: a.n,
                    role: a.role,
                    profile: a.profile.clone(),
                    phase: Phase::SettingUp,
                    stop: None,
                    deadline_ms,
                    exit: None,
                    started_ms: self.now,
                    held: None,
                    held_ms: 0,
                    prompt_hash: super::pause::prompt_hash(&t.prompt),
                    facts,
                    kept: None,
                    typing_until_ms: 0,
                    turn: None,
                },
            );
            self.out.push(Effect::Setup(Setup {
                attempt: a.id,
                task: a.task.clone(),
                n: a.n,
                role: a.role,
                profile: a.profile.clone(),
                worktree,
                branch: a.branch.clone(),
                log_dir: a.log_dir.clone(),
                base,
                create_worktree: a.role == Role::Agent && prev.is_none(),
                prompt,
                resume,
                max_budget_usd,
                baseline,
                speculative: speculative.filter(|_| a.role == Role::Agent && prev.is_none()),
            }));
        }
    }

    pub(super) fn on_setup_done(&mut self, id: AttemptId, result: Result<Started, String>) {
        let Some(live) = self.live.get_mut(&id) else {
            return;
        };
        match result {
            Ok(s) => {
                live.phase = Phase::Running { pid: s.pid };
                let (task, role) = (live.task.clone(), live.role);
                let mut ops = vec![Op::AttemptRunning {
                    id,
                    pid: s.pid,
                    base: s.base,
                }];
                if role == Role::Agent {
                    ops.insert(
                        0,
                        Op::Transition {
                            task,
                            from: TaskState::Assigned,
                            to: TaskState::Working,
                            patch: Patch::default(),
                            actor: Actor::Supervisor,
                            attempt: None,
                            data: EventData {
                                pid: Some(s.pid),
                                ..EventData::default()
                            },
                        },
                    );
                }
                self.write(ops, Then::Nothing);
            }
            Err(why) => {
                live.exit = Some(Exit {
                    code: None,
                    signal: None,
                });
                let (task, role) = (live.task.clone(), live.role);
                self.say(format!("✗ {task}: could not start its {role}: {why}"));
                match role {
                    Role::Agent => self.fail_attempt(
                        id,
                        TaskState::Assigned,
                        None,
                        &format!("setup failed: {why}"),
                    ),
                    Role::Reviewer => self.reviewer_ended(id),
                }
            }
        }
    }

    pub(super) fn on_exit(&mut self, id: AttemptId, exit: Exit) {
        if let Some(l) = self.live.get_mut(&id) {
            l.exit = Some(exit);
        }
        self.note_session_end(id, exit);
    }

    /// Stops that are due, exits to decide, and live records whose attempt is closed.
    pub(super) fn live_rules(&mut self) {
        let ids: Vec<AttemptId> = self.live.keys().copied().collect();
        for id in ids {
            self.stop_if_due(id);
            self.decide_exit(id);
        }
        // Forget attempts that ended in the ledger and whose process is gone (when stopping,
        // once the process is gone: the next start closes the attempt).
        let (model, stopping) = (&self.model, self.stopping);
        self.live.retain(|id, l| {
            let open = model.attempts.get(id).is_none_or(|a| a.state.is_live());
            (open && !stopping) || l.exit.is_none()
        });
    }

    fn stop_if_due(&mut self, id: AttemptId) {
        let Some(l) = self.live.get(&id) else { return };
        if l.stop.is_some() || l.exit.is_some() || !matches!(l.phase, Phase::Running { .. }) {
            return;
        }
        let run_stops = self.stopping && !self.leave_agents;
        // A held agent's clock stands still (its deadline moves when it goes on).
        if l.held.is_none() && l.deadline_ms.is_some_and(|d| d <= self.now) && !run_stops {
            let g = super::budget::Gauge {
                what: "time",
                spent: self.now.saturating_sub(l.started_ms) as f64,
                limit: l.deadline_ms.unwrap_or(0).saturating_sub(l.started_ms) as f64,
            };
            if l.role == Role::Agent {
                self.stop_for_budget(id, g.exhausted());
                return;
            }
        }
        let row = self.model.attempts.get(&id);
        let state = self.model.task(&l.task).map(|t| t.state);
        if self.keeps_paused(l) {
            // Held, not stopped: `pause_rules` freezes or interrupts it.
            return;
        }
        let why = if self.stopping && !self.leave_agents {
            Some("the run is stopping".to_string())
        } else if l.held.is_none() && l.deadline_ms.is_some_and(|d| d <= self.now) {
            Some("time budget exhausted".to_string())
        } else if !self.belongs(l, state) {
            Some(format!(
                "task is now {}",
                state.map_or("gone".to_string(), |s| s.to_string())
            ))
        } else if row.is_some_and(|a| a.reported.is_some() || a.verdict.is_some()) {
            // An interactive session that is done stays through review (`kept.rs`); any other
            // agent that reports and keeps running is ended: its exit follows.
            if self.collect_kept(id) {
                return;
            }
            Some("it reported its result".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            if let Some(l) = self.live.get_mut(&id) {
                l.stop = Some(why.clone());
            }
            self.out.push(Effect::Stop { attempt: id, why });
        }
    }

    /// An agent belongs to a working task; a reviewer to a task in its reviewer stage.
    fn belongs(&self, l: &Live, state: Option<TaskState>) -> bool {
        match l.role {
            Role::Agent => matches!(state, Some(TaskState::Assigned | TaskState::Working)),
            Role::Reviewer => {
                state == Some(TaskState::Review)
                    && self.model.task(&l.task).and_then(|t| t.stage)
                        == Some(crate::core::domain::FunnelStage::Reviewer)
            }
        }
    }

    fn decide_exit(&mut self, id: AttemptId) {
        let Some(l) = self.live.get(&id) else { return };
        let Some(exit) = l.exit else { return };
        // Closing again only when the write that closed it lost (the row is still live).
        let reopen = l.phase == Phase::Closing
            && self
                .model
                .attempts
                .get(&id)
                .is_some_and(|a| a.state.is_live());
        if !(matches!(l.phase, Phase::Running { .. }) || reopen) || self.is_busy(&l.task) {
            return;
        }
        if self.stopping {
            // A stopped run is resumed by the next start, which abandons this attempt.
            return;
        }
        let (task, role, stop) = (l.task.clone(), l.role, l.stop.clone());
        if role == Role::Reviewer {
            self.reviewer_ended(id);
            return;
        }
        let state = self.model.task(&task).map(|t| t.state);
        if !matches!(state, Some(TaskState::Working)) {
            // Cancelled or paused by a human: abandoned, not failed (a session ended at a
            // pause marks its task to continue it: `pause.rs`).
            let why = stop.unwrap_or_else(|| "task left `working`".into());
            let mark = self.ended_at_pause_ops(id);
            self.close(id, AttemptState::Abandoned, exit.code, &why, mark);
            return;
        }
        let facts = self
            .live
            .get(&id)
            .map(|l| l.facts.clone())
            .unwrap_or_default();
        if let Some(why) = &facts.budget {
            self.budget_exit(id, why, exit.code);
            return;
        }
        if let Some((until, text)) = &facts.limited {
            self.limited_exit(id, *until, text, exit.code);
            return;
        }
        let reported = self.model.attempts.get(&id).and_then(|a| a.reported);
        // An agent that said its run failed (an error `result`) failed, whatever its exit.
        let said_failed = facts.failure.is_some() && !facts.turn_ok;
        let success = match (reported, &stop) {
            (Some(Reported::Fail), _) => false,
            (Some(Reported::Done), _) => true,
            (_, Some(_)) => false,
            _ => exit.code == Some(0) && !said_failed,
        };
        if success {
            self.collect(id);
            return;
        }
        let why = match (&stop, reported) {
            (_, Some(Reported::Fail)) => "the agent reported failure".into(),
            (Some(w), _) => w.clone(),
            _ => super::failure_words(facts.failure.as_ref(), exit.code, exit.signal),
        };
        self.note_infrastructure(id, facts.failure.as_ref(), exit.code);
        self.fail_attempt(id, TaskState::Working, exit.code, &why);
    }

    /// Close an attempt without touching its task.
    fn close(
        &mut self,
        id: AttemptId,
        outcome: AttemptState,
        code: Option<i32>,
        why: &str,
        mut more: Vec<Op>,
    ) {
        self.mark_closing(id);
        more.insert(
            0,
            Op::FinishAttempt(Finish {
                id,
                outcome,
                exit_code: code,
                reason: Some(why.to_string()),
                commit: None,
                diff_lines: None,
            }),
        );
        self.write(more, Then::Nothing);
    }

    /// The supervisor commits what the agent left and finds its change.
    pub(super) fn collect(&mut self, id: AttemptId) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        l.phase = Phase::Collecting;
        let Some(a) = self.model.attempts.get(&id).cloned() else {
            return;
        };
        let spec = self.collect_spec(&a);
        self.out.push(Effect::Collect(spec));
    }

    /// How to collect an attempt's work: its worktree, base, and the commit made for it.
    pub(super) fn collect_spec(&self, a: &super::AttemptRec) -> Collect {
        let title = self
            .model
            .task(&a.task)
            .map_or(a.task.clone(), |t| t.title.clone());
        let (name, email) = self
            .cfg
            .agents
            .get(&a.profile)
            .map(|p| (p.author_name.clone(), p.author_email.clone()))
            .unwrap_or_else(|| ("orch-tui agent".into(), "agent@orch.invalid".into()));
        Collect {
            attempt: a.id,
            task: a.task.clone(),
            n: a.n,
            worktree: a.worktree.clone(),
            branch: a.branch.clone(),
            base: a.base.clone().unwrap_or_default(),
            author_name: name,
            author_email: email,
            message: format!("{title}\n\n{}\n", trailers(&a.task, a.n)),
        }
    }

    pub(super) fn on_collected(&mut self, id: AttemptId, result: Result<Change, JobFailure>) {
        let Some(l) = self.live.get(&id) else { return };
        if l.phase != Phase::Collecting {
            return;
        }
        let (task, n) = (l.task.clone(), l.n);
        // A session that stays through review, if it is still there.
        let alive = l.kept.filter(|_| l.exit.is_none() && l.stop.is_none());
        let state = self.model.task(&task).map(|t| t.state);
        let change = match result {
            Ok(c) => c,
            Err(f) if f.timed_out => {
                let why = format!("collecting the agent's work timed out: {}", f.message);
                let ops = self.escalate_ops(&task, TaskState::Working, Some(n), &why, None);
                self.close(id, AttemptState::Failed, None, &why, ops);
                self.say(format!("⚑ {task}: escalated: {why}"));
                return;
            }
            Err(f) => {
                let why = format!("commit failed: {}", f.message);
                self.fail_attempt(id, TaskState::Working, None, &why);
                return;
            }
        };
        let mut ops: Vec<Op> = change
            .strays
            .iter()
            .map(|s| Op::Event {
                task: Some(task.clone()),
                attempt: Some(n),
                actor: Actor::Supervisor,
                kind: crate::core::domain::EventKind::StrayBranch,
                data: EventData {
                    branch: Some(s.branch.clone()),
                    commit: Some(s.tip.clone()),
                    backup_ref: s.backup_ref.clone(),
                    why: Some(if s.adopted {
                        "the agent committed its work on this branch; taken as the change".into()
                    } else {
                        "the agent left this branch; kept under the backup ref".into()
                    }),
                    ..EventData::default()
                },
            })
            .collect();
        for s in &change.strays {
            let kept = s
                .backup_ref
                .as_deref()
                .map_or("its commits are in the change".to_string(), |b| {
                    format!("kept as {b}")
                });
            self.say(format!(
                "⚠ {task}: the agent left branch `{}`; {kept}",
                s.branch
            ));
        }
        if state != Some(TaskState::Working) {
            let why = "task left `working` while its work was collected";
            ops.insert(
                0,
                finish(id, AttemptState::Abandoned, why, change.tip, None),
            );
            self.mark_closing(id);
            self.write(ops, Then::Nothing);
            return;
        }
        match change.tip {
            None => {
                let why = "the agent finished without changing anything".to_string();
                ops.insert(0, finish(id, AttemptState::Succeeded, &why, None, Some(0)));
                ops.extend(self.escalate_ops(&task, TaskState::Working, Some(n), &why, None));
                self.mark_closing(id);
                self.write(ops, Then::Say(format!("⚑ {task}: escalated: {why}")));
            }
            Some(tip) => {
                let short: String = tip.chars().take(8).collect();
                ops.insert(
                    0,
                    Op::FinishAttempt(Finish {
                        id,
                        outcome: AttemptState::Succeeded,
                        exit_code: Some(0),
                        reason: None,
                        commit: Some(tip.clone()),
                        diff_lines: Some(change.diff_lines),
                    }),
                );
                if let Some(pid) = alive {
                    ops.push(Op::Event {
                        task: Some(task.clone()),
                        attempt: Some(n),
                        actor: Actor::Supervisor,
                        kind: crate::core::domain::EventKind::KeptAlive,
                        data: EventData {
                            pid: Some(pid),
                            why: Some("its session stays, idle, through review".into()),
                            ..EventData::default()
                        },
                    });
                }
                ops.push(Op::Transition {
                    task: task.clone(),
                    from: TaskState::Working,
                    to: TaskState::Review,
                    patch: Patch::default(),
                    actor: Actor::Supervisor,
                    attempt: Some(n),
                    data: EventData {
                        commit: Some(tip),
                        ..EventData::default()
                    },
                });
                match (alive, self.live.get_mut(&id)) {
                    (Some(pid), Some(l)) => l.phase = Phase::InReview { pid },
                    _ => self.mark_closing(id),
                }
                self.write(
                    ops,
                    Then::Say(format!("✓ {task} attempt {n} committed {short}")),
                );
            }
        }
    }

    fn mark_closing(&mut self, id: AttemptId) {
        let Some(l) = self.live.get_mut(&id) else {
            return;
        };
        l.phase = Phase::Closing;
        // A session that was to stay through review and does not go there is ended.
        if l.kept.is_some() && l.exit.is_none() && l.stop.is_none() {
            let why = "its work did not go to review".to_string();
            l.stop = Some(why.clone());
            self.out.push(Effect::Stop { attempt: id, why });
        }
    }

    /// Close a failed attempt: retry after a jittered backoff, or fail the task for good (the
    /// DAG rules then block what depends on it).
    pub(super) fn fail_attempt(
        &mut self,
        id: AttemptId,
        from: TaskState,
        code: Option<i32>,
        why: &str,
    ) {
        let Some(l) = self.live.get(&id) else { return };
        let (task, n, killed) = (l.task.clone(), l.n, l.stop.is_some());
        let Some(t) = self.model.task(&task).cloned() else {
            return;
        };
        let failures = t.failures + 1;
        let exhausted = failures >= t.max_attempts;
        let r = self.random();
        let delay = backoff_ms(
            failures,
            self.cfg.retry.backoff_base_ms,
            self.cfg.retry.backoff_cap_ms,
            r,
        );
        let outcome = if killed {
            AttemptState::Killed
        } else {
            AttemptState::Failed
        };
        let mut ops = vec![Op::FinishAttempt(Finish {
            id,
            outcome,
            exit_code: code,
            reason: Some(why.to_string()),
            commit: None,
            diff_lines: None,
        })];
        // The next attempt continues this one (its worktree and conversation) when it got as
        // far as running; a setup that failed leaves nothing to continue.
        let continues = self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.role == Role::Agent && a.base.is_some());
        let (to, patch, line) = if exhausted {
            let reason = format!("{why} (attempt {failures} of {})", t.max_attempts);
            (
                TaskState::Failed,
                Patch {
                    failures: Some(failures),
                    reason: Some(Some(reason)),
                    ..Patch::default()
                },
                format!("✗ {task}: failed: {why} (attempts exhausted)"),
            )
        } else {
            (
                TaskState::Ready,
                Patch {
                    failures: Some(failures),
                    not_before_ms: Some(self.now + delay),
                    reason: Some(Some(why.to_string())),
                    resume_attempt: Some(continues.then_some(id)),
                    ..Patch::default()
                },
                format!("↻ {task}: {why}; retry in {delay} ms"),
            )
        };
        ops.push(Op::Transition {
            task: task.clone(),
            from,
            to,
            patch,
            actor: Actor::Supervisor,
            attempt: Some(n),
            data: EventData {
                why: Some(why.to_string()),
                retry_in_ms: (!exhausted).then_some(delay),
                ..EventData::default()
            },
        });
        self.mark_closing(id);
        self.write(ops, Then::Say(line));
    }

    pub(super) fn on_answered(&mut self, id: AttemptId) {
        let waiting = self
            .model
            .attempts
            .get(&id)
            .is_some_and(|a| a.substatus == crate::core::domain::Substatus::WaitingInput);
        if waiting {
            self.write(vec![Op::Answered { id }], Then::Nothing);
        }
    }

    /// Stop the run: ask every agent to end (its attempt is then abandoned), or leave them for
    /// the next start to recover.
    pub(super) fn on_stop(&mut self, stop_agents: bool) {
        self.stopping = true;
        self.leave_agents = !stop_agents;
        if !stop_agents {
            return;
        }
        self.note_held_at_stop();
        let ids: Vec<AttemptId> = self
            .live
            .iter()
            .filter(|(_, l)| {
                let kept = l.kept.is_some() && l.phase == Phase::Collecting;
                l.stop.is_none()
                    && l.exit.is_none()
                    && (kept || matches!(l.phase, Phase::Running { .. } | Phase::InReview { .. }))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(l) = self.live.get_mut(&id) {
                l.stop = Some("the run is stopping".into());
            }
            self.out.push(Effect::Stop {
                attempt: id,
                why: "the run is stopping".into(),
            });
        }
    }

    /// Ops that hand a task to the human with the reason (and a note for a retry).
    pub(super) fn escalate_ops(
        &self,
        task: &str,
        from: TaskState,
        attempt: Option<AttemptNo>,
        why: &str,
        note: Option<String>,
    ) -> Vec<Op> {
        let mut ops = Vec::new();
        if from == TaskState::Review {
            ops.push(Op::SetStage {
                task: task.to_string(),
                stage: None,
                until_ms: None,
                attempt,
                data: EventData::default(),
            });
        }
        ops.push(Op::Transition {
            task: task.to_string(),
            from,
            to: TaskState::Escalated,
            patch: Patch {
                reason: Some(Some(why.to_string())),
                note: note.map(Some),
                ..Patch::default()
            },
            actor: Actor::Supervisor,
            attempt,
            data: EventData::why(why),
        });
        ops
    }
}

fn finish(
    id: AttemptId,
    outcome: AttemptState,
    why: &str,
    commit: Option<String>,
    code: Option<i32>,
) -> Op {
    Op::FinishAttempt(Finish {
        id,
        outcome,
        exit_code: code,
        reason: Some(why.to_string()),
        commit,
        diff_lines: None,
    })
}
