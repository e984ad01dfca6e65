//! Runs last (cargo runs test binaries in name order, and the library's doc-tests are off):
//! names every test that could not run because an agent CLI or mock was missing, so a plain
//! `cargo test` never passes them silently. Its line is the last thing `cargo test` prints.
//! (`harness = false` in Cargo.toml: this file is a plain program, not a test harness.)

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skipped-agent-tests");
    let mut skipped: Vec<(String, String)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let why = std::fs::read_to_string(e.path()).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                why.trim().to_string(),
            )
        })
        .collect();
    skipped.sort();
    if skipped.is_empty() {
        println!("agent CLI tests: none skipped");
        return;
    }
    let mut missing: Vec<&str> = skipped
        .iter()
        .flat_map(|(_, why)| why.split(", "))
        .collect();
    missing.sort();
    missing.dedup();
    let names: Vec<&str> = skipped.iter().map(|(n, _)| n.as_str()).collect();
    println!(
        "agent CLI tests: {} NOT RUN (missing {}: run .ci/install-agent-clis): {}",
        names.len(),
        missing.join(", "),
        names.join(", ")
    );
}
