//! Dropping what a source re-delivers after a crash.
//!
//! Two cases, both from the [`Source`](crate::Source) contract:
//!
//! * **Whole units at or before the log's last durable position.** A crash between
//!   append and acknowledge makes the source send them again; they are dropped by
//!   comparing positions. A unit is a transaction (`Begin`..`Commit`, possibly
//!   spread over several batches), a heartbeat, or a change outside a transaction,
//!   with the schema records just before it.
//! * **The logged part of a split transaction.** A transaction too large to buffer
//!   arrives in parts; a crash between parts leaves the log ending inside it (an
//!   [`OpenTail`]). The source re-delivers it whole from its `Begin`; the changes
//!   the log already holds are skipped, the rest is appended after them, so the
//!   log ends up with exactly one copy.

use std::cmp::Ordering;

use crate::event::{Begin, Record, SharedStr, SourcePosition};
use crate::pipeline::PipelineError;

/// A transaction the change log ends inside of: its `Begin` and some of its
/// changes are durable, its `Commit` is not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpenTail {
    /// The `Begin`'s transaction id.
    pub txid: Option<SharedStr>,
    /// The `Begin`'s (commit) position.
    pub position: SourcePosition,
    /// How many change records of it the log holds.
    pub logged_changes: u64,
}

/// What happens to the records of the transaction being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transaction {
    /// Outside a transaction.
    None,
    /// Inside a transaction the log already has whole: drop its records.
    Drop,
    /// Inside a new transaction: keep its records, after skipping this many
    /// changes (and the schema records among them) that the log already holds.
    Keep { skip_changes: u64 },
}

/// The ingest runner's filter over everything a source delivers in one run.
#[derive(Debug)]
pub(crate) struct Redelivery {
    /// The log's last durable source position.
    last: Option<SourcePosition>,
    /// The split transaction the log ends inside of, until the source re-delivers it.
    open_tail: Option<OpenTail>,
    transaction: Transaction,
    /// Schema records outside a transaction, waiting for the unit they precede.
    schemas: Vec<Record>,
}

impl Redelivery {
    /// A filter for a run that resumes after `last`, on a log that ends inside
    /// `open_tail` if it is `Some`.
    pub(crate) fn new(last: Option<SourcePosition>, open_tail: Option<OpenTail>) -> Self {
        Self {
            last,
            open_tail,
            transaction: Transaction::None,
            schemas: Vec::new(),
        }
    }

    /// Whether the log (with everything kept so far) ends inside a transaction.
    pub(crate) fn in_transaction(&self) -> bool {
        self.open_tail.is_some() || matches!(self.transaction, Transaction::Keep { .. })
    }

    /// Keeps the records of one source batch the log does not have yet.
    /// `batch_position` judges schema records at the end of a batch that ends
    /// outside a transaction.
    pub(crate) fn keep_new(
        &mut self,
        records: Vec<Record>,
        batch_position: &SourcePosition,
    ) -> Result<Vec<Record>, PipelineError> {
        if self.keeps_all(&records) {
            return Ok(records);
        }
        self.filter(records, batch_position)
    }

    /// `keep_new` record by record.
    fn filter(
        &mut self,
        records: Vec<Record>,
        batch_position: &SourcePosition,
    ) -> Result<Vec<Record>, PipelineError> {
        let mut kept = Vec::with_capacity(records.len());
        for record in records {
            match (self.transaction, record) {
                (Transaction::None, Record::Schema(schema)) => {
                    self.schemas.push(Record::Schema(schema));
                }
                (Transaction::None, Record::Begin(begin)) => {
                    self.begin(begin, &mut kept)?;
                }
                (Transaction::None, Record::Commit(commit)) => {
                    return Err(PipelineError::MalformedSource {
                        reason: "a commit without a begin",
                        position: commit.position,
                    });
                }
                (Transaction::None, standalone) => {
                    let position = standalone.position().cloned();
                    if self.open_tail.is_some() {
                        // The log ends inside a transaction: nothing may come before
                        // the rest of it. A heartbeat here is older than that
                        // transaction's commit, so dropping it loses nothing.
                        if matches!(standalone, Record::Heartbeat(_)) {
                            self.schemas.clear();
                            continue;
                        }
                        return Err(self.tail_not_redelivered(position));
                    }
                    let keep = position.as_ref().map_or(Ok(true), |p| self.is_new(p))?;
                    self.settle_schemas(keep, &mut kept);
                    if keep {
                        kept.push(standalone);
                    }
                }
                (Transaction::Drop, record) => {
                    if let Record::Commit(_) = record {
                        self.transaction = Transaction::None;
                    }
                }
                (Transaction::Keep { skip_changes }, record) => {
                    self.keep_in_transaction(skip_changes, record, &mut kept)?;
                }
            }
        }
        if self.transaction == Transaction::None && !self.schemas.is_empty() {
            let keep = self.open_tail.is_none() && self.is_new(batch_position)?;
            self.settle_schemas(keep, &mut kept);
        }
        Ok(kept)
    }

    /// Whether the batch is new from end to end with nothing to hold back (the
    /// usual case once a run is past the log's last position), so `keep_new`
    /// would keep every record in order: then this advances the state as it
    /// would, and the batch is kept without moving its records. Anything else
    /// (schemas outside a transaction, a split transaction's tail, a record to
    /// drop, malformed input) is left to `keep_new`, with the state untouched.
    fn keeps_all(&mut self, records: &[Record]) -> bool {
        if self.open_tail.is_some() || !self.schemas.is_empty() {
            return false;
        }
        let mut transaction = self.transaction;
        for record in records {
            transaction = match (transaction, record) {
                (Transaction::None, Record::Begin(begin))
                    if matches!(self.is_new(&begin.position), Ok(true)) =>
                {
                    Transaction::Keep { skip_changes: 0 }
                }
                (Transaction::None, Record::Change(_) | Record::Heartbeat(_))
                    if record
                        .position()
                        .is_none_or(|p| matches!(self.is_new(p), Ok(true))) =>
                {
                    Transaction::None
                }
                (Transaction::Keep { skip_changes: 0 }, Record::Commit(_)) => Transaction::None,
                (
                    t @ Transaction::Keep { skip_changes: 0 },
                    Record::Change(_) | Record::Schema(_),
                ) => t,
                _ => return false,
            };
        }
        self.transaction = transaction;
        true
    }

    fn begin(&mut self, begin: Begin, kept: &mut Vec<Record>) -> Result<(), PipelineError> {
        if !self.is_new(&begin.position)? {
            self.schemas.clear();
            self.transaction = Transaction::Drop;
            return Ok(());
        }
        let skip_changes = match self.open_tail.take() {
            None => {
                self.settle_schemas(true, kept);
                kept.push(Record::Begin(begin));
                0
            }
            Some(tail) if tail.txid == begin.txid && tail.position == begin.position => {
                // The log has this Begin and the schemas in effect; the source
                // re-sends schemas after a reconnect even when they did not change.
                self.schemas.clear();
                tail.logged_changes
            }
            Some(tail) => {
                let error = self.tail_not_redelivered(Some(begin.position));
                self.open_tail = Some(tail);
                return Err(error);
            }
        };
        self.transaction = Transaction::Keep { skip_changes };
        Ok(())
    }

    fn keep_in_transaction(
        &mut self,
        skip_changes: u64,
        record: Record,
        kept: &mut Vec<Record>,
    ) -> Result<(), PipelineError> {
        match record {
            Record::Begin(begin) => Err(PipelineError::MalformedSource {
                reason: "a transaction begins inside another",
                position: begin.position,
            }),
            Record::Commit(commit) if skip_changes > 0 => Err(PipelineError::MalformedSource {
                reason: "a re-delivered transaction has fewer changes than the log holds of it",
                position: commit.position,
            }),
            Record::Commit(commit) => {
                self.transaction = Transaction::None;
                kept.push(Record::Commit(commit));
                Ok(())
            }
            Record::Change(_) if skip_changes > 0 => {
                self.transaction = Transaction::Keep {
                    skip_changes: skip_changes - 1,
                };
                Ok(())
            }
            // The log holds the schemas in effect up to the skipped changes.
            Record::Schema(_) if skip_changes > 0 => Ok(()),
            other => {
                kept.push(other);
                Ok(())
            }
        }
    }

    fn settle_schemas(&mut self, keep: bool, kept: &mut Vec<Record>) {
        if keep {
            kept.append(&mut self.schemas);
        } else {
            self.schemas.clear();
        }
    }

    fn is_new(&self, position: &SourcePosition) -> Result<bool, PipelineError> {
        let Some(last) = &self.last else {
            return Ok(true);
        };
        if position.is_none() || last.is_none() {
            return Ok(true);
        }
        match position.compare(last) {
            Some(order) => Ok(order == Ordering::Greater),
            None => Err(PipelineError::PositionMismatch {
                logged: last.clone(),
                delivered: position.clone(),
            }),
        }
    }

    fn tail_not_redelivered(&self, delivered: Option<SourcePosition>) -> PipelineError {
        let tail = self.open_tail.as_ref();
        PipelineError::UnfinishedTransaction {
            txid: tail.and_then(|t| t.txid.clone()),
            position: tail.map_or(SourcePosition::None, |t| t.position.clone()),
            delivered: Box::new(delivered.unwrap_or(SourcePosition::None)),
        }
    }
}

#[cfg(test)]
#[path = "redelivery_tests.rs"]
mod tests;
