//! The sync: the integration branch replayed onto its base when the base moved (`orch-tui sync`),
//! through the merge queue — never beside a task's merge — with the same discipline: the replayed
//! tip is checked, recorded in the ledger before the branch moves by compare-and-swap from the
//! recorded tip, and a branch moved by someone else holds the run. A crash anywhere is settled at
//! the next start from those records alone.

use super::{Effect, MoveOutcome, Supervisor, SyncOutcome, SyncPrep, Then};
use crate::core::domain::{Actor, EventKind};
use crate::core::ops::{EventData, Op};
use crate::core::state::TaskState;

fn short(oid: &str) -> &str {
    oid.get(..8).unwrap_or(oid)
}

/// A ref's name as people say it: `main`, `origin/main`.
pub fn ref_label(refname: &str) -> &str {
    refname
        .strip_prefix("refs/heads/")
        .or_else(|| refname.strip_prefix("refs/remotes/"))
        .unwrap_or(refname)
}

/// Where the one sync in flight stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRun {
    /// Replaying (and checking) onto the new base.
    Preparing { onto: String },
    /// The replayed tip is being recorded.
    Recording {
        onto: String,
        from: String,
        tip: String,
    },
    /// The integration branch is being moved.
    Moving {
        onto: String,
        from: String,
        tip: String,
    },
    /// The outcome is being written.
    Closing,
}

impl Supervisor {
    /// A sync is asked for and can go: the run is not held and the integration tip is recorded.
    /// Task merges wait while one is due, so the queue takes it next.
    pub(super) fn sync_due(&self) -> bool {
        self.model.sync.request.is_some()
            && self.model.hold.is_none()
            && self.model.integration_tip.is_some()
    }

    pub(super) fn sync_rules(&mut self) {
        // Never beside a merge: one in flight (or a task already `merging`) finishes first.
        if !self.sync_due()
            || self.sync.is_some()
            || self.merge.is_some()
            || self.ahead_in_flight()
            || self.stopping
            || self.model.count(TaskState::Merging) > 0
        {
            return;
        }
        let (Some(req), Some(tip)) = (
            self.model.sync.request.clone(),
            self.model.integration_tip.clone(),
        ) else {
            return;
        };
        match req.recorded {
            // Recorded by an earlier supervisor (or before a hold was restored), on the tip
            // still recorded: only the move is left.
            Some((from, new)) if from == tip => {
                self.sync = Some(SyncRun::Moving {
                    onto: req.onto,
                    from: from.clone(),
                    tip: new.clone(),
                });
                self.out.push(Effect::MoveSync { tip: new, from });
            }
            // Nothing recorded, or made on a tip that is no longer the recorded one (the human
            // accepted a moved branch): replay again.
            _ => {
                self.sync = Some(SyncRun::Preparing {
                    onto: req.onto.clone(),
                });
                self.say(format!(
                    "↻ syncing {} onto {} ({})",
                    self.cfg.integration_branch,
                    ref_label(&req.refname),
                    short(&req.onto)
                ));
                self.out.push(Effect::PrepareSync(SyncPrep {
                    base: self.model.sync.base_oid.clone(),
                    refname: req.refname,
                    onto: req.onto,
                    from: tip,
                    checks: self.cfg.funnel.checks.clone(),
                    log: format!("{}/sync-checks.log", self.roots.logs),
                }));
            }
        }
    }

    pub(super) fn on_sync_prepared(&mut self, onto: &str, from: &str, result: SyncOutcome) {
        if !matches!(&self.sync, Some(SyncRun::Preparing { onto: o }) if o == onto) {
            return;
        }
        let asked = self.model.sync.request.as_ref().map(|r| r.onto.as_str());
        if asked != Some(onto) || self.model.integration_tip.as_deref() != Some(from) {
            // Asked again meanwhile, or made on a tip no longer recorded: the rules start over.
            self.sync = None;
            return;
        }
        let label = self.request_label();
        match result {
            SyncOutcome::Ready { tip, results } => {
                let passed: Vec<String> = results.iter().map(|r| r.command.clone()).collect();
                let why = if passed.is_empty() {
                    format!("replayed onto {label}")
                } else {
                    format!("replayed onto {label}; passed: {}", passed.join(", "))
                };
                let mut ops = vec![
                    Op::RecordSync {
                        onto: onto.to_string(),
                        from: from.to_string(),
                        tip: tip.clone(),
                    },
                    sync_event(
                        EventKind::SyncRecorded,
                        EventData {
                            integration_tip: Some(tip.clone()),
                            expected_tip: Some(from.to_string()),
                            commit: Some(onto.to_string()),
                            why: Some(why),
                            ..EventData::default()
                        },
                    ),
                ];
                if self.faults.sync_unrecorded_tip {
                    ops.remove(0);
                }
                self.sync = Some(SyncRun::Recording {
                    onto: onto.to_string(),
                    from: from.to_string(),
                    tip,
                });
                self.write(ops, Then::MoveSync);
            }
            SyncOutcome::UpToDate => {
                let line = format!(
                    "✓ {} holds {label} already: nothing to replay",
                    self.cfg.integration_branch
                );
                self.end_sync(onto, true, None, EventData::why(line.clone()), line);
            }
            SyncOutcome::Conflict { files } => {
                let problem = format!(
                    "the sync onto {label} stopped: the merged work conflicts with it in {}. \
                     {} was left as it was and the run goes on on the old base. Make the base \
                     agree (a commit on it that settles these files) and `orch-tui sync` again, \
                     or leave the conflict to the pull request",
                    files.join(", "),
                    self.cfg.integration_branch
                );
                let data = EventData {
                    files,
                    commit: Some(onto.to_string()),
                    why: Some(problem.clone()),
                    ..EventData::default()
                };
                self.end_sync(
                    onto,
                    false,
                    Some(problem.clone()),
                    data,
                    format!("⚑ {problem}"),
                );
            }
            SyncOutcome::ChecksFailed { results } => {
                let bad = results.iter().find(|r| !r.passed);
                let cmd = bad.map(|r| r.command.clone()).unwrap_or_default();
                let tail = bad.map(|r| r.tail.clone()).unwrap_or_default();
                let problem = format!(
                    "the sync onto {label} stopped: check `{cmd}` fails on the replayed branch. \
                     {} was left as it was and the run goes on on the old base. Fix it on the \
                     base and `orch-tui sync` again. The check's last lines:\n{tail}",
                    self.cfg.integration_branch
                );
                let data = EventData {
                    command: Some(cmd),
                    passed: Some(false),
                    exit_code: bad.and_then(|r| r.exit_code),
                    timed_out: bad.map(|r| r.timed_out),
                    tail: Some(tail),
                    commit: Some(onto.to_string()),
                    on: Some("sync".into()),
                    ..EventData::default()
                };
                self.end_sync(
                    onto,
                    false,
                    Some(problem.clone()),
                    data,
                    format!("⚑ {problem}"),
                );
            }
            SyncOutcome::Failed(f) => {
                let problem = format!(
                    "the sync onto {label} failed: {}. {} was left as it was; `orch-tui sync` \
                     tries again",
                    f.message, self.cfg.integration_branch
                );
                let data = EventData::why(problem.clone());
                self.end_sync(
                    onto,
                    false,
                    Some(problem.clone()),
                    data,
                    format!("⚑ {problem}"),
                );
            }
        }
    }

    /// The replayed tip is in the ledger: move the branch.
    pub(super) fn move_sync(&mut self) {
        let Some(SyncRun::Recording { onto, from, tip }) = self.sync.clone() else {
            return;
        };
        self.sync = Some(SyncRun::Moving {
            onto,
            from: from.clone(),
            tip: tip.clone(),
        });
        self.out.push(Effect::MoveSync { tip, from });
    }

    pub(super) fn on_sync_moved(&mut self, tip: &str, result: MoveOutcome) {
        let Some(SyncRun::Moving {
            onto,
            from,
            tip: want,
        }) = self.sync.clone()
        else {
            return;
        };
        if want != tip {
            return;
        }
        match result {
            MoveOutcome::Moved => {
                let label = self.request_label();
                let line = format!(
                    "⇢ {} now stands on {label}: {} (was {})",
                    self.cfg.integration_branch,
                    short(tip),
                    short(&from)
                );
                let ops = vec![
                    Op::SetIntegrationTip {
                        expected: Some(from.clone()),
                        tip: tip.to_string(),
                    },
                    Op::EndSync {
                        onto: onto.clone(),
                        moved: true,
                        problem: None,
                    },
                    sync_event(
                        EventKind::Synced,
                        EventData {
                            integration_tip: Some(tip.to_string()),
                            expected_tip: Some(from),
                            commit: Some(onto),
                            ..EventData::default()
                        },
                    ),
                ];
                self.sync = Some(SyncRun::Closing);
                self.write(ops, Then::SyncClosed(Some(line)));
            }
            // Already where this sync puts it (the replayed tip only orch-tui made): the move
            // was repeated after its answer or its record was lost.
            MoveOutcome::NotWhereLeft { found: Some(f) } if f == want => {
                self.on_sync_moved(tip, MoveOutcome::Moved)
            }
            MoveOutcome::NotWhereLeft { found } => {
                // The request stays: after `integration restore` the recorded tip is moved;
                // after `integration accept` the branch is replayed again from its new tip.
                self.sync = Some(SyncRun::Closing);
                self.hold_moved(&from, found, Then::SyncClosed(None));
            }
            MoveOutcome::Failed(f) => {
                // The job saw the branch still at `from`: nothing moved.
                let label = self.request_label();
                let problem = format!(
                    "the sync onto {label} could not move {}: {}. It was left as it was; \
                     `orch-tui sync` tries again",
                    self.cfg.integration_branch, f.message
                );
                let data = EventData::why(problem.clone());
                self.end_sync(
                    &onto,
                    false,
                    Some(problem.clone()),
                    data,
                    format!("⚑ {problem}"),
                );
            }
        }
    }

    /// End the sync onto `onto` without moving the branch (`moved`: it already held the base).
    fn end_sync(
        &mut self,
        onto: &str,
        moved: bool,
        problem: Option<String>,
        data: EventData,
        line: String,
    ) {
        let kind = if problem.is_some() {
            EventKind::SyncStopped
        } else {
            EventKind::Synced
        };
        let ops = vec![
            Op::EndSync {
                onto: onto.to_string(),
                moved,
                problem,
            },
            sync_event(kind, data),
        ];
        self.sync = Some(SyncRun::Closing);
        self.write(ops, Then::SyncClosed(Some(line)));
    }

    /// Someone else moved (or deleted) the integration branch while a sync was moving it: hold
    /// the run as a merge would, keeping what the supervisor had written under a backup ref.
    fn hold_moved(&mut self, expected: &str, found: Option<String>, then: Then) {
        let backup = format!(
            "refs/orch/backup/integration/{}-{}",
            self.epoch,
            short(expected)
        );
        let branch = self.cfg.integration_branch.clone();
        let what = match &found {
            Some(f) => format!("{branch} moved to {} (not by orch-tui)", short(f)),
            None => format!("{branch} was deleted (not by orch-tui)"),
        };
        let hold = format!(
            "{what}; orch-tui left it at {} — kept as {backup}. Put it back with \
             `orch-tui integration restore`, or take the branch as it is now with \
             `orch-tui integration accept` (only if it still holds {}); the sync waits",
            short(expected),
            short(expected)
        );
        self.out.push(Effect::Backup {
            name: backup.clone(),
            oid: expected.to_string(),
        });
        self.say(format!("⏸ run held: {hold}"));
        let ops = vec![
            Op::SetHold {
                hold: Some(hold.clone()),
            },
            Op::Event {
                task: None,
                attempt: None,
                actor: Actor::Supervisor,
                kind: EventKind::IntegrationMoved,
                data: EventData {
                    expected_tip: Some(expected.to_string()),
                    integration_tip: found,
                    backup_ref: Some(backup),
                    why: Some(hold),
                    ..EventData::default()
                },
            },
        ];
        self.write(ops, then);
    }

    /// At start: a sync an earlier supervisor recorded and whose branch move happened (the
    /// branch is at the recorded tip) is finished from the records; nothing is held for it.
    /// Returns the tip adopted.
    pub(super) fn settle_sync(&mut self, actual: Option<&str>) -> Option<String> {
        let req = self.model.sync.request.clone()?;
        let (from, tip) = req.recorded?;
        if actual != Some(tip.as_str()) || self.model.integration_tip.as_deref() != Some(&from) {
            return None;
        }
        let ops = vec![
            Op::SetIntegrationTip {
                expected: Some(from.clone()),
                tip: tip.clone(),
            },
            Op::EndSync {
                onto: req.onto.clone(),
                moved: true,
                problem: None,
            },
            sync_event(
                EventKind::Synced,
                EventData {
                    integration_tip: Some(tip.clone()),
                    expected_tip: Some(from),
                    commit: Some(req.onto),
                    why: Some("recovered a sync interrupted after its branch moved".into()),
                    ..EventData::default()
                },
            ),
        ];
        // Like a task's merge being settled: nothing else touches the sync until this lands.
        self.sync = Some(SyncRun::Closing);
        let line = format!(
            "↺ {} stands on {}: recovered a sync interrupted after its branch moved",
            self.cfg.integration_branch,
            self.request_label()
        );
        self.write(ops, Then::SyncClosed(Some(line)));
        Some(tip)
    }

    /// At start: the base the integration branch stands on, recorded once.
    pub(super) fn record_base(&mut self, base: Option<(String, String)>) {
        if self.model.sync.base_ref.is_some() {
            return;
        }
        let Some((refname, oid)) = base else { return };
        let why = format!(
            "{} stands on {} ({})",
            self.cfg.integration_branch,
            ref_label(&refname),
            short(&oid)
        );
        let ops = vec![
            Op::SetBase {
                refname,
                oid: oid.clone(),
            },
            sync_event(
                EventKind::BaseRecorded,
                EventData {
                    commit: Some(oid),
                    why: Some(why),
                    ..EventData::default()
                },
            ),
        ];
        self.write(ops, Then::Boot);
    }

    /// "origin/main (1a2b3c4d)" for the sync asked for.
    fn request_label(&self) -> String {
        match &self.model.sync.request {
            Some(r) => format!("{} ({})", ref_label(&r.refname), short(&r.onto)),
            None => "the base".into(),
        }
    }
}

fn sync_event(kind: EventKind, data: EventData) -> Op {
    Op::Event {
        task: None,
        attempt: None,
        actor: Actor::Supervisor,
        kind,
        data,
    }
}
