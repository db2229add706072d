//! How a sink writes changes and prepares its tables.

use serde::{Deserialize, Serialize};

/// How changes become rows in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// The target mirrors the source: inserts and updates upsert by primary key,
    /// deletes delete, truncates truncate. The default.
    #[default]
    Upsert,
    /// Append-only: every change is a new row with the columns
    /// [`HISTORY_OP`], [`HISTORY_COMMIT_TIME`], [`HISTORY_OFFSET`] (the primary
    /// key) and [`HISTORY_UNCHANGED`]; nothing is ever updated or deleted.
    History,
    /// Like upsert, but a delete sets [`SOFT_DELETED`] to true instead of
    /// removing the row (other columns keep their last values); a truncate marks
    /// every row deleted.
    SoftDelete,
}

/// Column holding the operation in history mode: `c`, `u`, `d`, `r` or `t`.
pub const HISTORY_OP: &str = "_cdc_op";
/// Column holding the source commit time in history mode.
pub const HISTORY_COMMIT_TIME: &str = "_cdc_commit_time";
/// Column holding the change's log offset in history mode; the primary key.
pub const HISTORY_OFFSET: &str = "_cdc_offset";
/// Column listing, as a JSON array, the columns the source did not send
/// (unchanged values, stored as NULL in that history row).
pub const HISTORY_UNCHANGED: &str = "_cdc_unchanged";
/// The deleted flag in soft-delete mode.
pub const SOFT_DELETED: &str = "_cdc_deleted";
/// The sink's offset table (one row per sink name).
pub const OFFSETS_TABLE: &str = "_cdc_offsets";
/// The sink's record of the source schema each target table was built from.
pub const SCHEMAS_TABLE: &str = "_cdc_schemas";

/// What happens to a target table the first time a sink sees its source table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrepareMode {
    /// Create the table if missing; upsert over existing rows. The default.
    #[default]
    Keep,
    /// Create the table if missing, then remove all its rows.
    Truncate,
    /// Drop the table if it exists and create it from the source schema.
    Recreate,
}

/// What schema evolution does with a column the source dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DroppedColumns {
    /// Keep the column and make it nullable; new rows store NULL. The default.
    #[default]
    KeepNullable,
    /// Drop the column from the target.
    Drop,
}

/// The Debezium-style operation letter of a change.
pub(crate) fn op_letter(kind: cdc_core::event::ChangeKind) -> &'static str {
    use cdc_core::event::ChangeKind;
    match kind {
        ChangeKind::Insert => "c",
        ChangeKind::Update => "u",
        ChangeKind::Delete => "d",
        ChangeKind::SnapshotRead => "r",
        ChangeKind::Truncate => "t",
    }
}
