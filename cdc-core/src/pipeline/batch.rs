//! Assembles log records into sink batches of whole source transactions.
//!
//! Memory: a batch holds at most `max_batch_records` events, except that one
//! source transaction is delivered whole in one batch, because the
//! [`Sink`](crate::Sink) contract applies a batch atomically from one
//! `Vec<SinkEvent>`. A transaction with more than `max_transaction_records`
//! events is the exception: its events are handed over in parts of that size,
//! each applied in its own sink transaction. So the buffer is bounded by
//! `max(max_batch_records, max_transaction_records)`. Completed transactions are
//! flushed as soon as an open transaction would push the buffer past the limit,
//! so the two never pile up.
//!
//! A pipeline may resume inside a transaction (after a part of a split one); the
//! first `Commit` without a `Begin` then closes that transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{PipelineError, TableFilter};
use crate::event::{Record, TableName, TableSchema};
use crate::{SinkBatch, SinkEvent};

/// Looks up the schema of a table in effect at a log offset.
pub(crate) trait SchemaSource {
    /// The schema of `table` in effect at `offset`, if the log has one.
    fn schema_at(&self, table: &TableName, offset: u64) -> Option<Arc<TableSchema>>;
}

impl SchemaSource for crate::ChangeLog {
    fn schema_at(&self, table: &TableName, offset: u64) -> Option<Arc<TableSchema>> {
        crate::ChangeLog::schema_at(self, table, offset)
    }
}

/// A batch ready for the sink, with the source time it brings the sink up to.
#[derive(Debug)]
pub(crate) struct ReadyBatch {
    /// The batch.
    pub batch: SinkBatch,
    /// Commit time of the last transaction (or time of the last heartbeat) in it.
    pub source_time_micros: Option<i64>,
}

/// Turns log records, in offset order, into batches of whole transactions.
pub(crate) struct BatchAssembler {
    filter: TableFilter,
    max_events: usize,
    max_transaction_events: usize,
    /// No `Begin` or `Commit` seen yet: the run may have started inside a
    /// transaction whose `Begin` lies before the resume point.
    at_resume_point: bool,
    /// Schemas seen in this run; a table missing here gets a schema event first.
    schemas: HashMap<TableName, Arc<TableSchema>>,
    /// Events of completed units (transactions, standalone records).
    ready: Vec<SinkEvent>,
    /// Last offset covered by `ready`; `None` when nothing completed since the last take.
    ready_through: Option<u64>,
    ready_time: Option<i64>,
    /// Events of the open transaction.
    pending: Vec<SinkEvent>,
    /// Offset of the open transaction's `Begin`.
    open_txn: Option<u64>,
    /// When the oldest buffered record arrived; starts the batch delay.
    first_at: Option<Instant>,
}

impl BatchAssembler {
    pub(crate) fn new(
        filter: TableFilter,
        max_events: usize,
        max_transaction_events: usize,
    ) -> Self {
        Self {
            filter,
            max_events,
            max_transaction_events,
            at_resume_point: true,
            schemas: HashMap::new(),
            ready: Vec::new(),
            ready_through: None,
            ready_time: None,
            pending: Vec::new(),
            open_txn: None,
            first_at: None,
        }
    }

    /// Whether a transaction is open (its `Begin` was pushed, its `Commit` not yet).
    pub(crate) fn in_transaction(&self) -> bool {
        self.open_txn.is_some()
    }

    /// Whether completed units wait to be taken.
    pub(crate) fn has_ready(&self) -> bool {
        self.ready_through.is_some()
    }

    /// Whether the completed units should go to the sink now because of their size.
    pub(crate) fn is_full(&self) -> bool {
        !self.ready.is_empty() && self.ready.len() + self.pending.len() >= self.max_events
    }

    /// When completed units must go to the sink at the latest.
    pub(crate) fn deadline(&self, max_delay: Duration) -> Option<Instant> {
        if self.has_ready() {
            self.first_at.map(|t| t + max_delay)
        } else {
            None
        }
    }

    /// Adds the record at `offset`; records must come in offset order.
    pub(crate) fn push(
        &mut self,
        offset: u64,
        record: Record,
        schemas: &dyn SchemaSource,
    ) -> Result<(), PipelineError> {
        self.first_at.get_or_insert_with(Instant::now);
        match record {
            Record::Begin(_) => {
                if self.open_txn.is_some() {
                    return Err(malformed(offset, "a transaction begins inside another"));
                }
                self.at_resume_point = false;
                self.open_txn = Some(offset);
            }
            Record::Commit(commit) => {
                let resumed_inside = std::mem::take(&mut self.at_resume_point);
                if self.open_txn.take().is_none() && !resumed_inside {
                    return Err(malformed(offset, "a commit without a begin"));
                }
                self.ready.append(&mut self.pending);
                self.complete(offset, Some(commit.commit_time_micros));
            }
            Record::Change(change) => {
                if self.filter.allows(&change.table) {
                    let time = change.commit_time_micros;
                    let schema = self.schema_for(&change.table, offset, schemas)?;
                    self.target().push(SinkEvent::Change {
                        offset,
                        schema,
                        change,
                    });
                    self.complete_standalone(offset, Some(time));
                    self.split_oversized(offset, time);
                } else {
                    self.complete_standalone(offset, None);
                }
            }
            Record::Schema(schema) => {
                if self.filter.allows(&schema.table) {
                    let schema = Arc::new(schema);
                    self.schemas.insert(schema.table.clone(), schema.clone());
                    self.target().push(SinkEvent::Schema { offset, schema });
                }
                self.complete_standalone(offset, None);
            }
            Record::Heartbeat(heartbeat) => {
                self.complete_standalone(offset, Some(heartbeat.time_micros));
            }
        }
        Ok(())
    }

    /// Accounts for the record at `offset` that the caller dropped unread (a change
    /// of a filtered table).
    pub(crate) fn skip(&mut self, offset: u64) {
        self.first_at.get_or_insert_with(Instant::now);
        self.complete_standalone(offset, None);
    }

    /// Takes the completed units as one batch, leaving an open transaction buffered.
    pub(crate) fn take_ready(&mut self) -> Option<ReadyBatch> {
        let last_offset = self.ready_through.take()?;
        self.first_at = self.open_txn.map(|_| Instant::now());
        Some(ReadyBatch {
            batch: SinkBatch {
                events: std::mem::take(&mut self.ready),
                last_offset,
                copied: false,
            },
            source_time_micros: self.ready_time.take(),
        })
    }

    fn target(&mut self) -> &mut Vec<SinkEvent> {
        if self.open_txn.is_some() {
            &mut self.pending
        } else {
            &mut self.ready
        }
    }

    /// Hands over the open transaction's events so far once there are too many
    /// to hold: the transaction goes to the sink in parts.
    fn split_oversized(&mut self, offset: u64, time: i64) {
        if self.open_txn.is_some() && self.pending.len() >= self.max_transaction_events {
            self.ready.append(&mut self.pending);
            self.complete(offset, Some(time));
        }
    }

    /// A record outside a transaction is a unit of its own.
    fn complete_standalone(&mut self, offset: u64, time: Option<i64>) {
        if self.open_txn.is_none() {
            self.complete(offset, time);
        }
    }

    fn complete(&mut self, offset: u64, time: Option<i64>) {
        self.ready_through = Some(offset);
        if time.is_some() {
            self.ready_time = time;
        }
    }

    fn schema_for(
        &mut self,
        table: &TableName,
        offset: u64,
        source: &dyn SchemaSource,
    ) -> Result<Arc<TableSchema>, PipelineError> {
        if let Some(schema) = self.schemas.get(table) {
            return Ok(schema.clone());
        }
        let schema =
            source
                .schema_at(table, offset)
                .ok_or_else(|| PipelineError::MissingSchema {
                    table: table.clone(),
                    offset,
                })?;
        self.schemas.insert(table.clone(), schema.clone());
        // The log does not say at which offset the schema record sits, so the event
        // carries the offset of the first change that needs it.
        self.target().push(SinkEvent::Schema {
            offset,
            schema: schema.clone(),
        });
        Ok(schema)
    }
}

fn malformed(offset: u64, reason: &'static str) -> PipelineError {
    PipelineError::MalformedLog { offset, reason }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
