//! What both benchmarks print with: percentiles and one summary line per sample.

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
