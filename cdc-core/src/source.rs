//! The contract between a source database reader and the change log.

use async_trait::async_trait;

use crate::event::{Record, SourcePosition, TableName};

/// What a source hands the change log in one go: whole transactions (each
/// `Begin`, its changes, `Commit`), schema records that take effect before the
/// changes that use them, and heartbeats.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceBatch {
    /// Records in source commit order. Never ends inside a transaction.
    pub records: Vec<Record>,
    /// The position to acknowledge to the source once these records are durable:
    /// the position of the last `Commit` or `Heartbeat` in `records`.
    pub position: SourcePosition,
}

/// A reader of one source database's change log.
///
/// # Contract
///
/// * **Order.** Batches come in the source's commit order; a transaction is never
///   split across batches and never interleaved with another one.
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
///   can help.
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
