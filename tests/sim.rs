//! Deterministic simulation of the supervisor (see tests/sim_support). CI runs `SIM_SEEDS`
//! seeds (default 10,000) spread over the machine's cores; `SIM_SEED=N` replays one seed with its
//! trace; each old fault, switched back on, must be found within the stated number of seeds.

mod sim_support;

use std::time::Instant;

use orch_tui::core::supervisor::Faults;
use sim_support::{Chaos, run_seed};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn seeds_keep_every_invariant() {
    let seeds = env_u64("SIM_SEEDS", 10_000);
    let first = env_u64("SIM_FIRST_SEED", 1);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let start = Instant::now();
    let results: Vec<_> = (0..threads)
        .map(|k| {
            std::thread::spawn(move || {
                let mut steps = 0usize;
                let mut crashes = 0usize;
                let mut s = first + k;
                while s < first + seeds {
                    match run_seed(s, Chaos::default()) {
                        Ok(st) => {
                            steps += st.steps;
                            crashes += st.crashes;
                        }
                        Err(f) => return Err(f.to_string()),
                    }
                    s += threads;
                }
                Ok((steps, crashes))
            })
        })
        .collect();
    let mut steps = 0;
    let mut crashes = 0;
    for r in results {
        match r.join().expect("a simulation thread panicked") {
            Ok((s, c)) => {
                steps += s;
                crashes += c;
            }
            Err(f) => panic!("{f}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "simulation: {seeds} seeds, {steps} steps, {crashes} supervisor crashes, {:.0} steps/s, {secs:.1} s",
        steps as f64 / secs
    );
}

#[test]
fn replay() {
    let Ok(seed) = std::env::var("SIM_SEED") else {
        return;
    };
    let seed: u64 = seed.parse().expect("SIM_SEED is a number");
    match run_seed(seed, Chaos::default()) {
        Ok(st) => println!("seed {seed}: ok {st:?}"),
        Err(f) => panic!("{f}"),
    }
}

/// Finds a seed that breaks an invariant with `chaos`, within `budget` seeds.
fn found_within(chaos: Chaos, budget: u64) -> Option<(u64, String)> {
    (1..=budget).find_map(|s| run_seed(s, chaos).err().map(|f| (s, f.what)))
}
