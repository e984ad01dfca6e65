//! The supervisor row's view of the integration branch: the tip orch-tui last wrote, a hold,
//! the base it stands on and a sync onto that base (schema v4). One read for the supervisor, the
//! CLI and the read models.

use rusqlite::OptionalExtension;

use super::{Ledger, Result};
use crate::core::supervisor::{SyncRequest, SyncState};

/// What the supervisor row says about the integration branch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationRow {
    /// The integration tip the supervisor last wrote (or adopted).
    pub tip: Option<String>,
    /// Why the run is held, if it is.
    pub hold: Option<String>,
    pub sync: SyncState,
}

impl Ledger {
    /// The supervisor row's integration facts (all `None` before the first supervisor started).
    pub fn integration(&self) -> Result<IntegrationRow> {
        let row = self
            .conn()
            .query_row(
                "SELECT integration_tip, hold, base_ref, base_oid, sync_ref, sync_onto,
                    sync_from, sync_tip, sync_problem
                 FROM supervisor WHERE id = 1",
                [],
                |r| {
                    let text = |i| r.get::<_, Option<String>>(i);
                    let request = match (text(4)?, text(5)?) {
                        (Some(refname), Some(onto)) => Some(SyncRequest {
                            refname,
                            onto,
                            recorded: text(6)?.zip(text(7)?),
                        }),
                        _ => None,
                    };
                    Ok(IntegrationRow {
                        tip: text(0)?,
                        hold: text(1)?,
                        sync: SyncState {
                            base_ref: text(2)?,
                            base_oid: text(3)?,
                            request,
                            problem: text(8)?,
                        },
                    })
                },
            )
            .optional()?;
        Ok(row.unwrap_or_default())
    }
}
