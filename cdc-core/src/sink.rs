//! The contract between the pipeline runtime and a destination.

use std::sync::Arc;

use async_trait::async_trait;

use crate::event::{Change, TableSchema};

/// One item of a [`SinkBatch`], in log order.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkEvent {
    /// The table's schema changes here (or is seen for the first time): create or
    /// alter the target table before applying later changes of this table.
    Schema {
        /// Log offset of the schema record.
        offset: u64,
        /// The new schema.
        schema: Arc<TableSchema>,
    },
    /// A row change with the schema in effect at its offset.
    Change {
        /// Log offset of the change.
        offset: u64,
        /// The table's schema at this offset; row values are in its column order.
        schema: Arc<TableSchema>,
        /// The change.
        change: Change,
    },
}

/// Whole source transactions for one sink transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SinkBatch {
    /// Schema records and changes in log order; every source transaction in the
    /// batch is complete.
    pub events: Vec<SinkEvent>,
    /// The log offset up to which (inclusive) this batch brings the sink. It may be
    /// past the last event when transaction boundaries and heartbeats follow it.
    pub last_offset: u64,
    /// The events are rows a backfill copied from the source while the pipeline
    /// held between two log records, not records of the log: the sink applies
    /// them atomically like any batch but leaves its stored offset as it is
    /// (`last_offset` is then the offset the pipeline holds at, which is not
    /// applied yet).
    pub copied: bool,
}

/// A destination that applies changes.
///
/// # Contract
///
/// * **Atomicity.** [`apply`](Sink::apply) applies the whole batch or nothing. A
///   sink that can store offsets (`stores_offsets() == true`) writes
///   `batch.last_offset` in the same transaction as the data, so after a crash
///   [`stored_offset`](Sink::stored_offset) says exactly what was applied and the
///   pipeline resumes after it: exactly-once in effect. A batch with
///   [`copied`](SinkBatch::copied) set stores no offset.
/// * **Order.** Batches arrive in log order, never overlapping; within a batch the
///   events are in log order.
/// * **Durability.** When `apply` returns `Ok`, the batch is durable in the
///   destination (committed, or written and fsynced for files).
/// * **Errors.** On `Err` nothing of the batch is visible and the pipeline stops;
///   it is safe to construct the sink again and resume. Errors say whether a retry
///   can help (a lost connection) or not (an incompatible schema change).
/// * **Values.** [`Value::Unchanged`](crate::event::Value::Unchanged) never
///   overwrites a stored value.
#[async_trait]
pub trait Sink: Send {
    /// The sink's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Whether this sink stores the applied offset inside its own transactions.
    fn stores_offsets(&self) -> bool;

    /// The last log offset this sink durably applied, or `None` if it has applied
    /// nothing (or does not store offsets).
    async fn stored_offset(&mut self) -> Result<Option<u64>, Self::Error>;

    /// Applies a batch atomically, together with its offset when the sink stores offsets.
    async fn apply(&mut self, batch: &SinkBatch) -> Result<(), Self::Error>;
}
