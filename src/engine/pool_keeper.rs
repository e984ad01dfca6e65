//! Keeping the worktree pool ready off the dispatch path: one job at a time readies the pool
//! (`GitOps::ready_pool`: idle worktrees made and checked out at the integration tip) when the
//! run starts, when the tip moves, and after a worktree was taken or given back.
//!
//! The engine's housekeeping, not a supervisor decision: the pool is a cache of git state with
//! no meaning in the ledger — no rule looks at it, a crash loses nothing of value in it (what
//! a pooled worktree held was kept before it got there), and a dispatch that finds it empty
//! makes a worktree as before. An effect and an event would only make the simulator model a
//! cache no decision depends on.

use std::sync::{Arc, Condvar, Mutex};

use super::jobs::JobCtx;
use super::world::{Incoming, Runtime};

#[derive(Default)]
pub struct PoolKeeper {
    /// A readying job runs (cleared, and waiters woken, when it ends).
    busy: Arc<(Mutex<bool>, Condvar)>,
    /// The tip the last job readied the pool at.
    readied_at: Option<String>,
    /// A worktree was taken or given back since that job started.
    again: bool,
}

impl PoolKeeper {
    /// A worktree was taken (a setup) or given back (a tidy): the pool needs a look.
    pub fn used(&mut self) {
        self.again = true;
    }

    /// After a round of effects: a readying job at `tip` if the pool needs one and none runs.
    /// Its end wakes the loop (`Incoming::Timeout`), so a need that came meanwhile is met then.
    pub fn tend(&mut self, tip: Option<&str>, ctx: &JobCtx, rt: &mut dyn Runtime) {
        let Some(tip) = tip else {
            return;
        };
        if !ctx.git.has_pool() {
            return;
        }
        if self.readied_at.as_deref() != Some(tip) {
            self.again = true;
        }
        let busy = Arc::clone(&self.busy);
        {
            let mut running = busy.0.lock().unwrap_or_else(|e| e.into_inner());
            if !self.again || *running {
                return;
            }
            *running = true;
        }
        self.again = false;
        self.readied_at = Some(tip.to_string());
        let (git, tip) = (Arc::clone(&ctx.git), tip.to_string());
        rt.spawn(Box::new(move || {
            if let Err(e) = git.ready_pool(&tip) {
                tracing::info!(error = %e, "git: could not ready the worktree pool; dispatches make worktrees as needed");
            }
            *busy.0.lock().unwrap_or_else(|e| e.into_inner()) = false;
            busy.1.notify_all();
            Incoming::Timeout
        }));
    }

    /// Waits for a readying job to end (before the pool is drained: it would refill it), and
    /// starts none after until the next `tend` that needs one.
    pub fn quiesce(&mut self) {
        let (lock, ended) = &*self.busy;
        let mut running = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *running {
            running = ended.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        // Drained: the next run of `tend` readies it again.
        self.readied_at = None;
    }
}
