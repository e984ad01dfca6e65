//! Keeping the worktree pool ready off the dispatch path: one job at a time readies the pool
//! step by step (`GitOps::ready_pool`: an idle worktree moved to the integration tip, or one
//! made) when the run starts, when the tip moves, and after a worktree was taken or given back.
//!
//! The engine's housekeeping, not a supervisor decision: the pool is a cache of git state with
//! no meaning in the ledger — no rule looks at it, a crash loses nothing of value in it (what
//! a pooled worktree held was kept before it got there), and a dispatch that finds it empty
//! or behind makes its worktree as before. An effect and an event would only make the
//! simulator model a cache no decision depends on.
//!
//! The tip it readies at is the one the integration branch is being moved to as soon as the
//! move is asked (`moving_to`): the dependents of that merge are dispatched on it right after,
//! and the ledger records it only when the move is done.
//!
//! How many it readies at a tip follows the dispatches: as many as took a worktree while the
//! last tip stood, and one more than have taken one at this tip (at least one). Each ready is a
//! checkout (~5 ms of CPU); readying one per slot at every tip, when merges come faster than
//! dispatches, checked out 3.5 worktrees per task for about one take per merge.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::jobs::JobCtx;
use super::world::{Incoming, Runtime};

#[derive(Default)]
struct Shared {
    /// The tip to ready the pool at; a running job reads it before each step.
    tip: Mutex<String>,
    /// A readying job runs (cleared, and waiters woken, when it ends).
    busy: Mutex<bool>,
    ended: Condvar,
    /// The run is ending: a running job stops after its current step.
    stop: AtomicBool,
    /// How many idle worktrees to have at the tip (the demand: see the module's doc).
    at_tip: AtomicUsize,
}

#[derive(Default)]
pub struct PoolKeeper {
    shared: Arc<Shared>,
    /// The tip the last job was started for.
    readied_at: Option<String>,
    /// A worktree was taken or given back since that job started.
    again: bool,
    /// The integration branch is being moved to this commit (the move's job runs).
    moving_to: Option<String>,
    demand: Demand,
}

/// Worktrees taken at the tip that stands and while the one before it stood: how many to
/// have ready at a tip.
#[derive(Default)]
struct Demand {
    tip: Option<String>,
    here: usize,
    before: usize,
}

impl Demand {
    fn taken(&mut self) {
        self.here += 1;
    }

    /// How many idle worktrees to have at `tip`: as many as were taken while the last tip
    /// stood, and one more than were taken at this one.
    fn at(&mut self, tip: &str) -> usize {
        if self.tip.as_deref() != Some(tip) {
            if self.tip.is_some() {
                self.before = self.here;
                self.here = 0;
            }
            self.tip = Some(tip.to_string());
        }
        self.before.max(self.here + 1)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PoolKeeper {
    /// A worktree was given back (a tidy): the pool needs a look.
    pub fn used(&mut self) {
        self.again = true;
    }

    /// A worktree was taken (a setup): the pool needs a look, and one more at this tip.
    pub fn taken(&mut self) {
        self.again = true;
        self.demand.taken();
    }

    /// The integration branch is being moved to `tip`: ready the pool there already.
    pub fn moving(&mut self, tip: &str) {
        self.moving_to = Some(tip.to_string());
    }

    /// The move ended (done or not): the ledger's tip is the one to follow again.
    pub fn moved(&mut self) {
        self.moving_to = None;
    }

    /// After a round of effects: the tip to ready at is `tip` (the ledger's) or the one being
    /// moved to; a job starts if the pool needs one and none runs. Its end wakes the loop
    /// (`Incoming::Timeout`), so a need that came meanwhile is met then.
    pub fn tend(&mut self, tip: Option<&str>, ctx: &JobCtx, rt: &mut dyn Runtime) {
        let Some(tip) = self.moving_to.as_deref().or(tip) else {
            return;
        };
        if !ctx.git.has_pool() {
            return;
        }
        let tip = tip.to_string();
        // A running job takes the new tip at its next step.
        *lock(&self.shared.tip) = tip.clone();
        if self.readied_at.as_deref() != Some(tip.as_str()) {
            self.again = true;
        }
        let at_tip = self.demand.at(&tip);
        self.shared.at_tip.store(at_tip, Ordering::Relaxed);
        {
            let mut running = lock(&self.shared.busy);
            if !self.again || *running {
                return;
            }
            *running = true;
        }
        self.again = false;
        self.readied_at = Some(tip);
        self.shared.stop.store(false, Ordering::Relaxed);
        let (git, shared) = (Arc::clone(&ctx.git), Arc::clone(&self.shared));
        rt.spawn(Box::new(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                let tip = lock(&shared.tip).clone();
                match git.ready_pool(&tip, shared.at_tip.load(Ordering::Relaxed)) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::info!(error = %e, "git: could not ready the worktree pool; dispatches make worktrees as needed");
                        break;
                    }
                }
            }
            *lock(&shared.busy) = false;
            shared.ended.notify_all();
            Incoming::Timeout
        }));
    }

    /// Stops a readying job after its current step and waits for it to end (before the pool
    /// is drained: it would refill it).
    pub fn quiesce(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut running = lock(&self.shared.busy);
        while *running {
            running = self
                .shared
                .ended
                .wait(running)
                .unwrap_or_else(|e| e.into_inner());
        }
        // Drained: the next `tend` readies it again.
        self.readied_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::Demand;

    #[test]
    fn demand_follows_the_takes_per_tip() {
        let mut d = Demand::default();
        // The first tip: one ready, one more after each take.
        assert_eq!(d.at("a"), 1);
        d.taken();
        d.taken();
        d.taken();
        assert_eq!(d.at("a"), 4);
        // A new tip: as many as the last one saw taken.
        assert_eq!(d.at("b"), 3);
        d.taken();
        assert_eq!(d.at("b"), 3);
        // Merges faster than dispatches: one take per tip keeps one ready, not one per slot.
        assert_eq!(d.at("c"), 1);
        d.taken();
        assert_eq!(d.at("d"), 1);
        assert_eq!(d.at("e"), 1);
    }
}
