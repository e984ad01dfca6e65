//! The executor's agent effects: setting an attempt up and starting its agent (a job), adopting
//! one from its holder after a restart, typing into it and stopping it.

use super::*;

impl Executor {
    /// Type each chunk `gap_ms` after the one before (the first `gap_ms` from now), through
    /// the loop: a TUI reads an Enter that comes with the text as part of it.
    pub(super) fn type_later(&mut self, attempt: AttemptId, chunks: Vec<Vec<u8>>, gap_ms: u64) {
        for (k, bytes) in chunks.into_iter().enumerate() {
            let delay = gap_ms * (k as u64 + 1);
            self.rt
                .spawn_after(delay, Box::new(move || Incoming::Keys { attempt, bytes }));
        }
    }

    /// Stop an agent. An interactive session with stop keys is interrupted and asked to exit
    /// first, and given the stop grace to end by itself; only then TERM, grace, KILL of its
    /// tree (`Incoming::HardStop`). Anything else: TERM, grace, KILL at once.
    pub(super) fn stop_agent(&mut self, attempt: AttemptId) {
        let grace_ms = self.config().stop_grace_ms;
        let keys = self
            .core
            .live()
            .get(&attempt)
            .and_then(|l| self.config().agents.get(&l.profile))
            .and_then(crate::agent::adapter::stop_keys_for);
        let Some(r) = self.procs.get(&attempt) else {
            return;
        };
        let Some(keys) = keys else {
            r.process.stop(Duration::from_millis(grace_ms));
            return;
        };
        // (An interactive session is never frozen: a pause interrupts it instead.)
        r.process.write(keys.interrupt.to_vec());
        let rest = vec![
            keys.clear.to_vec(),
            keys.exit.as_bytes().to_vec(),
            b"\r".to_vec(),
        ];
        self.type_later(attempt, rest, STOP_KEY_GAP_MS);
        self.rt.spawn_after(
            4 * STOP_KEY_GAP_MS + grace_ms,
            Box::new(move || Incoming::HardStop { attempt }),
        );
    }

    pub(super) fn start_setup(&mut self, s: Setup) {
        let Some(profile) = self.config().agents.get(&s.profile).cloned() else {
            let why = format!("agent profile `{}` is not configured", s.profile);
            self.queue.push_back(Event::SetupDone {
                attempt: s.attempt,
                result: Err(why),
            });
            return;
        };
        let token = self.store.token(s.attempt).unwrap_or_default();
        let prompt = match &s.prompt {
            PromptSpec::Task(text) => text.clone(),
            PromptSpec::Review { of, base, commit } => {
                let diff = self.ctx.git.diff(base, commit).unwrap_or_default();
                let checks = self.store.check_summary(&s.task, of.0);
                let task = self.core.model.task(&s.task);
                let (title, text) = task.map_or((String::new(), String::new()), |t| {
                    (t.title.clone(), t.prompt.clone())
                });
                crate::engine::review::review_prompt(
                    &s.task, &title, &text, *of, &diff, &checks, &profile,
                )
            }
        };
        let role = if s.role == Role::Reviewer {
            "reviewer"
        } else {
            "agent"
        };
        let suffix = if s.role == Role::Reviewer {
            "-review"
        } else {
            ""
        };
        let prompt_file = format!("{}/{}-{}{suffix}.md", self.env.prompts_dir, s.task, s.n);
        let mut env: Vec<(String, String)> = profile
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend([
            ("ORCH_LEDGER".into(), self.env.ledger_path.clone()),
            ("ORCH_TASK".into(), s.task.clone()),
            ("ORCH_ATTEMPT".into(), s.n.to_string()),
            ("ORCH_TOKEN".into(), token),
            ("ORCH_WORKTREE".into(), s.worktree.clone()),
            ("ORCH_PROMPT_FILE".into(), prompt_file.clone()),
            ("ORCH_BIN".into(), self.env.orch_bin.clone()),
            ("ORCH_ROLE".into(), role.into()),
            ("ORCH_EPOCH".into(), self.core.epoch().to_string()),
        ]);
        let slot = self.take_slot(s.attempt);
        let prep = self.worktree_prep();
        match prep.env(slot) {
            Ok(vars) => env.extend(vars),
            Err(why) => {
                self.slots.remove(&s.attempt);
                self.queue.push_back(Event::SetupDone {
                    attempt: s.attempt,
                    result: Err(why),
                });
                return;
            }
        }
        let screen_rules = if profile.mode == crate::core::config::AgentMode::Interactive {
            crate::core::screen_rules::merged(profile.adapter.as_str(), &self.config().screen_rules)
        } else {
            Vec::new()
        };
        // A continuation's agent made its branches during the attempt it continues (which was
        // not collected: it failed). Known only to this process; after a restart they are
        // listed anew, and the earlier agent's count as the user's.
        let branches_before = match s.create_worktree {
            true => None,
            false => self
                .core
                .model
                .attempts
                .get(&s.attempt)
                .and_then(|a| a.continues)
                .and_then(|prev| self.branches_before.remove(&prev)),
        };
        let plan = SetupPlan {
            setup: s,
            branches_before,
            screen_rules,
            profile,
            prompt,
            prompt_file,
            env,
            orch_bin: self.env.orch_bin.clone(),
            rotate_bytes: self.env.rotate_bytes,
            slot,
            prep,
        };
        let job = jobs::setup_job(&self.ctx, plan);
        self.rt.spawn(job);
        self.publish_views();
    }

    /// Follows an earlier supervisor's agent in its holder; if it cannot be reached after all,
    /// it is taken as ended (the supervisor decides from there).
    pub(super) fn adopt(&mut self, a: crate::core::supervisor::Adopt) {
        let profile = self.config().agents.get(&a.profile).cloned();
        let rec = self.core.model.attempts.get(&a.attempt).cloned();
        let (Some(profile), Some(rec)) = (profile, rec) else {
            self.queue.push_back(Event::Exited {
                attempt: a.attempt,
                exit: crate::core::supervisor::Exit {
                    code: None,
                    signal: None,
                },
            });
            return;
        };
        let screen_rules = if profile.mode == crate::core::config::AgentMode::Interactive {
            crate::core::screen_rules::merged(profile.adapter.as_str(), &self.config().screen_rules)
        } else {
            Vec::new()
        };
        // Its processes carry the token of the attempt that started them.
        let token = self.store.token(a.holder).unwrap_or_default();
        // Its slot is held again: no new agent shares its port range or database.
        let slot = self.take_slot(a.attempt);
        let launch = crate::engine::world::Launch {
            attempt: a.attempt,
            task: a.task.clone(),
            argv: Vec::new(),
            cwd: rec.worktree.clone(),
            env: vec![
                (crate::os::TOKEN_VAR.into(), token),
                ("ORCH_SLOT".into(), slot.to_string()),
            ],
            log_dir: rec.log_dir.clone(),
            rotate_bytes: self.env.rotate_bytes,
            profile,
            resumed_tokens: a.resumed,
            paste: None,
            screen_rules,
            branches_before: Vec::new(),
            // Running already: its prompt file was written when it started.
            prompt_file: None,
        };
        match self
            .ctx
            .agents
            .adopt(a.holder, launch, self.ctx.sink.clone())
        {
            Ok(s) => {
                if !s.branches.is_empty() {
                    self.branches_before.insert(a.attempt, s.branches);
                }
                let now = std::time::Instant::now();
                // A session kept through review runs later attempts in its first one's holder:
                // what that holder reports is addressed to the attempt it runs now.
                if a.holder != a.attempt {
                    self.aliases.insert(a.holder, a.attempt);
                }
                self.procs.insert(
                    a.attempt,
                    Running {
                        process: s.process,
                        started_wall: now,
                        held_since: a.held.then_some(now),
                    },
                );
                self.publish_views();
            }
            Err(why) => {
                self.slots.remove(&a.attempt);
                (self.progress)(&format!("✗ {}: cannot adopt its agent: {why}", a.task));
                self.queue.push_back(Event::Exited {
                    attempt: a.attempt,
                    exit: crate::core::supervisor::Exit {
                        code: None,
                        signal: None,
                    },
                });
            }
        }
    }

    /// The smallest slot number (from 1) no live process holds, now held by `attempt`.
    pub(super) fn take_slot(&mut self, attempt: AttemptId) -> u32 {
        let held: std::collections::BTreeSet<u32> = self.slots.values().copied().collect();
        let slot = (1..).find(|n| !held.contains(n)).unwrap_or(1);
        self.slots.insert(attempt, slot);
        slot
    }

    pub(super) fn worktree_prep(&self) -> crate::engine::prepare::WorktreePrep {
        let cfg = self.config();
        crate::engine::prepare::WorktreePrep::new(
            &cfg.worktree,
            &self.env.worktrees_dir,
            cfg.git.timeout_ms,
        )
    }
}
