//! git's own housekeeping (packing loose objects and refs), run by us off the hot path.
//!
//! git starts `git maintenance run --auto` after every `git commit` (and `gc --auto` in older
//! versions): one more process per turn commit, about 1 ms of CPU each even when there is nothing
//! to do (issue #11). Our commits turn that off (`NO_AUTO_MAINTENANCE`) and the tidy after every
//! `HOUSEKEEPING_EVERY` attempts runs the same `--auto` check once, so a repository still gets
//! packed by git's own thresholds (`gc.auto`, `gc.autoPackLimit`, `maintenance.*`), which the
//! user's config still sets.

use std::sync::atomic::Ordering;

use super::{GitError, Repo};

/// Attempts tidied between two housekeeping checks. git's default threshold is 6,700 loose
/// objects; a task adds a handful, so checking every 50 keeps the repository as packed as git's
/// check after every commit would.
pub const HOUSEKEEPING_EVERY: u32 = 50;

/// Settings for our git calls that would otherwise start housekeeping themselves.
pub(super) const NO_AUTO_MAINTENANCE: [(&str, &str); 2] =
    [("maintenance.auto", "false"), ("gc.auto", "0")];

impl Repo {
    /// Runs git's automatic housekeeping now (`git maintenance run --auto`): it does work only
    /// when git's own thresholds say so. Takes as long as that work does (seconds on a big
    /// repository that needs packing): call it from a background job.
    pub fn housekeeping(&self) -> Result<(), GitError> {
        self.git()
            .args(["maintenance", "run", "--auto", "--quiet"])
            .run()
            .map(|_| ())
    }

    /// Counts one tidied attempt; every `HOUSEKEEPING_EVERY`-th runs `housekeeping`. Returns
    /// whether it ran. A failure is logged, not returned: the tidy it follows succeeded, and the
    /// next check tries again.
    pub fn housekeeping_after_tidy(&self) -> bool {
        let n = self.tidied.fetch_add(1, Ordering::Relaxed) + 1;
        if !n.is_multiple_of(HOUSEKEEPING_EVERY) {
            return false;
        }
        if let Err(e) = self.housekeeping() {
            tracing::warn!(error = %e, "git: housekeeping (maintenance run --auto) failed");
        }
        true
    }
}
