//! The contract between a source database reader and the change log.

use async_trait::async_trait;

use crate::event::{Record, SourcePosition, TableName};

/// What a source hands the change log in one go: transactions (each `Begin`, its
/// changes, `Commit`), schema records that take effect before the changes that
/// use them, and heartbeats.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceBatch {
    /// Records in source commit order. Ends inside a transaction only when the
    /// source splits one too large to buffer (see [`Source`]'s contract).
    pub records: Vec<Record>,
    /// The position to acknowledge to the source once these records are durable:
    /// the position of the last `Commit` or `Heartbeat` delivered so far, also
    /// when this batch ends inside a transaction.
    pub position: SourcePosition,
}

/// A reader of one source database's change log.
///
/// # Contract
///
/// * **Order.** Batches come in the source's commit order; a transaction is never
///   interleaved with another one or with a heartbeat.
/// * **Large transactions.** A source keeps a transaction whole in one batch
///   unless it is too large to buffer (typically a configurable byte limit). Then
///   it may split it: the first part holds the `Begin` and the first changes, the
///   next batches continue with further changes (no new `Begin`), and the last
///   part ends with the `Commit`. The `Begin` carries the transaction's id and
///   commit position, as always. The log appends the parts as they come, so
///   memory stays bounded; pipelines see one transaction.
/// * **Re-delivery of a split transaction.** After a crash the log may end inside
///   a split transaction. `start` with the last completed position must then
///   deliver that same transaction next, whole from its `Begin`, with the same
///   changes in the same order (schema records may be repeated); the runner
///   skips the changes the log already holds. Anything else first fails with
///   [`PipelineError::UnfinishedTransaction`](crate::pipeline::PipelineError).
/// * **Resume.** [`start`](Source::start) with `Some(p)` yields only transactions
///   that commit after `p`, so the log never receives a duplicate. `None` starts
///   from the source's current position (or from a fresh slot/snapshot point).
/// * **Acknowledgement.** The source confirms a position upstream (PostgreSQL
///   standby status update, MongoDB resume token) only when
///   [`acknowledge`](Source::acknowledge) is called with it, which the log does
///   after the batch is durable under its fsync policy. A crash between append and
///   acknowledge re-delivers from the last acknowledged position; the log drops the
///   re-delivered prefix by comparing positions.
/// * **Schema.** Before the first change of a table, and at every schema change,
///   the batch contains a `Record::Schema` for it.
/// * **Errors.** An error ends the stream; the caller may call `start` again to
///   resume from the log's last durable position. Each error says whether retrying
///   can help. A source may first resume by itself after a failure it can
///   recover from without loss or repetition (a dropped connection).
/// * **Cancellation.** A `next_batch` future dropped before it finished may
///   lose what it was reading: call `start` again before the next `next_batch`
///   (the ingest runner drops one only at shutdown, and every run starts).
#[async_trait]
pub trait Source: Send {
    /// The source's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The tables this reader is declared to read.
    fn tables(&self) -> &[TableName];

    /// Connects and positions the stream strictly after `resume_after`.
    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<(), Self::Error>;

    /// Waits for the next batch. `Ok(None)` means the stream ended (an offline
    /// file was read to its end, or the source was shut down).
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, Self::Error>;

    /// Everything up to and including `position` is durable in the change log; the
    /// source may release it upstream.
    async fn acknowledge(&mut self, position: &SourcePosition) -> Result<(), Self::Error>;
}
