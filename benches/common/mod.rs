//! What both benchmarks share: git for scratch repositories, a deterministic random source,
//! percentiles, summary lines.

use std::path::Path;
use std::process::Command;

/// Runs git in `dir`; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Nearest-rank percentile of an unsorted sample (sorts a copy).
pub fn pct(sample: &[f64], p: f64) -> f64 {
    if sample.is_empty() {
        return f64::NAN;
    }
    let mut s = sample.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// `label  n=.. p50=.. p99=.. max=.. mean=..` with `decimals` digits.
pub fn line_with(label: &str, sample: &[f64], unit: &str, decimals: usize) {
    if sample.is_empty() {
        println!("  {label:<44} (no samples)");
        return;
    }
    let mean = sample.iter().sum::<f64>() / sample.len() as f64;
    let d = decimals;
    println!(
        "  {label:<44} n={:<5} p50={:>8.d$}{unit} p99={:>8.d$}{unit} max={:>8.d$}{unit} mean={:>8.d$}{unit}",
        sample.len(),
        pct(sample, 50.0),
        pct(sample, 99.0),
        pct(sample, 100.0),
        mean
    );
}

/// splitmix64: the same plan and the same agent output on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
