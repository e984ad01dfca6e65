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

use std::sync::atomic::{AtomicBool, Ordering};
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
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PoolKeeper {
    /// A worktree was taken (a setup) or given back (a tidy): the pool needs a look.
    pub fn used(&mut self) {
        self.again = true;
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
                match git.ready_pool(&tip) {
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
