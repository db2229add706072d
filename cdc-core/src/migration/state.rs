//! A migration's persisted stage.

use serde::{Deserialize, Serialize};

/// Where a migration is. See the [module docs](super).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationStage {
    /// Nothing done yet.
    #[default]
    Created,
    /// Tables are being copied into the new target.
    Backfilling,
    /// The new pipeline is catching up, then the tables are compared.
    CatchingUp,
    /// Every table compared equal; the cut-over is next.
    Verified,
    /// The host switched to the new target; the old cursor goes next.
    CutOver,
    /// Done: the new pipeline replaced the old one.
    Completed,
    /// Abandoned before the cut-over; the new pipeline was removed.
    Cancelled,
}

/// A migration's saved state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStatus {
    /// The stage reached.
    pub stage: MigrationStage,
    /// Tables whose backfill is done.
    pub backfilled: Vec<String>,
    /// Tables that compared equal in the last verification.
    pub verified: Vec<String>,
}
