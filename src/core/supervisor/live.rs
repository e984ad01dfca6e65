//! Agents from dispatch to running: which ready task goes to which profile, its attempt, and
//! setting it up (worktree, prompt, resume). How it ends is in `exits.rs`, collecting its work
//! in `collect.rs`.

use super::{AgentFacts, Effect, Exit, Live, Phase, PromptSpec};
use super::{Setup, Started};
use super::{Supervisor, Then};
use crate::core::domain::{Actor, AttemptId, AttemptNo, AttemptState, Role};
use crate::core::ops::{EventData, NewAttempt, Op, Patch};
use crate::core::schedule::{ProfileLoad, ReadyTask, decide_in_order, unroutable};
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
pub(super) fn continue_text(t: &super::TaskRec, full: &str) -> String {
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
        // Reviewers are agents too: they take slots and count against their profile. A session
        // kept idle through review does not (it works again only as its task's next attempt).
        let working = |l: &&Live| !matches!(l.phase, Phase::InReview { .. });
        let in_flight = self.count_claims();
        let busy = self.live.values().filter(working).count();
        let free = self.cfg.slots.saturating_sub(busy + in_flight);
        let running = |name: &str| {
            self.live
                .values()
                .filter(working)
                .filter(|l| l.profile == name)
                .count()
        };
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
        // A task no profile can take is held as soon as it is ready, slots or not.
        let fresh: Vec<String> = std::mem::take(&mut self.model.fresh_ready)
            .into_iter()
            .collect();
        let unroutable: Vec<String> = fresh
            .iter()
            .filter_map(|id| self.dispatchable(id))
            .filter(|t| unroutable(t, &profiles))
            .map(|t| t.id)
            .collect();
        for id in &unroutable {
            self.hold_unroutable(id);
        }
        if free == 0 {
            return;
        }
        // The ready tasks in dispatch order, looked at only until the slots are filled: walking
        // every ready task after every event made a wide plan's cost grow with its square
        // (`benches/scale.rs`).
        let candidates = self
            .model
            .ready_order
            .iter()
            .filter(|(_, _, id)| !unroutable.contains(id))
            .filter_map(|(_, _, id)| self.dispatchable(id));
        let decision = decide_in_order(candidates, &profiles, free, self.now);
        for id in decision.unroutable {
            self.hold_unroutable(&id);
        }
        for (task, profile) in decision.dispatch {
            self.claim(&task, &profile);
        }
    }

    /// A ready task as the scheduler sees it, with the profile it may go to now (a limit, an
    /// open breaker or a probe under way makes it wait; a fallback may take it); `None` when it
    /// cannot start now.
    fn dispatchable(&self, id: &str) -> Option<ReadyTask> {
        let t = self.model.task(id)?;
        if t.state != TaskState::Ready || self.busy.contains(&t.id) {
            return None;
        }
        // One agent per task: a held attempt of a resumed task continues (`pause_rules`), and
        // one still stopping is let go before the next starts.
        if self
            .live
            .values()
            .any(|l| l.task == t.id && l.role == Role::Agent)
        {
            return None;
        }
        // Every dependency merged, or the one left in its veto window (`speculate.rs`).
        self.start_on(t)?;
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
    }

    /// Assigned tasks whose attempt is not yet set up (a claim just written).
    pub(super) fn count_claims(&self) -> usize {
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

    pub(super) fn hold_unroutable(&mut self, id: &str) {
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
    pub(super) fn claim(&mut self, task: &str, profile: &str) {
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
            .attempts_for(task)
            .filter(|a| a.n == n && a.role == Role::Reviewer)
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
            .starting
            .iter()
            .filter_map(|id| self.model.attempts.get(id))
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
                    deadline_ms,
                    facts,
                    ..Live::of(
                        &a,
                        Phase::SettingUp,
                        self.now,
                        super::pause::prompt_hash(&t.prompt),
                    )
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
}
