//! Errors of the pipeline runtime and the source runner.

use crate::event::{SharedStr, SourcePosition, TableName};

/// A boxed error from a [`Source`](crate::Source) or [`Sink`](crate::Sink)
/// implementation, kept whole so callers can downcast it.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of a pipeline or a source runner. Each variant says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The change log or the cursor store failed; see the cause. Retrying helps
    /// only if the cause is transient (disk full, too many open files).
    #[error("change log error: {source}")]
    Log {
        /// The log's error.
        #[source]
        source: crate::Error,
    },
    /// The source failed; the runner stopped. Start it again to resume from the
    /// log's last durable position (nothing durable is lost).
    #[error("source error: {source}")]
    Source {
        /// The source's own error.
        #[source]
        source: BoxedError,
    },
    /// The sink failed to apply a batch; nothing of that batch is visible. Start the
    /// pipeline again (with a new sink) to retry from the cursor.
    #[error("sink error while applying up to log offset {last_offset}: {source}")]
    Sink {
        /// `last_offset` of the batch that failed.
        last_offset: u64,
        /// The sink's own error.
        #[source]
        source: BoxedError,
    },
    /// The sink failed to report its stored offset at start.
    #[error("sink could not report its stored offset: {source}")]
    SinkOffset {
        /// The sink's own error.
        #[source]
        source: BoxedError,
    },
    /// The pipeline's resume point is older than the oldest record the log retains:
    /// changes it never delivered are gone. Backfill the pipeline's tables, then
    /// recreate the cursor at the log's end. Retrying does not help.
    #[error(
        "pipeline {name} needs offset {offset} but the log starts at {oldest_retained}; \
         backfill its tables and recreate the cursor"
    )]
    NeedsBackfill {
        /// Cursor name.
        name: String,
        /// Offset the pipeline would read next.
        offset: u64,
        /// Oldest offset still in the log.
        oldest_retained: u64,
    },
    /// The sink says it applied offsets the log does not have (the log was recreated
    /// or belongs to another source). Point the pipeline at the right log or reset
    /// the sink; retrying does not help.
    #[error(
        "sink of pipeline {name} stored offset {sink_offset} but the log ends before {log_next}; \
         it was written from another log"
    )]
    SinkAheadOfLog {
        /// Cursor name.
        name: String,
        /// The sink's stored offset.
        sink_offset: u64,
        /// The log's next offset.
        log_next: u64,
    },
    /// A change's table has no schema in the log: the source broke its contract of
    /// logging a schema record before the first change. Fix the source.
    #[error("no schema for table {table} at log offset {offset}; the source must log one first")]
    MissingSchema {
        /// The table.
        table: TableName,
        /// Offset of the change.
        offset: u64,
    },
    /// The log's records break the transaction structure (a `Begin` inside a
    /// transaction, a gap in offsets). Retrying does not help; report it.
    #[error("malformed change log at offset {offset}: {reason}")]
    MalformedLog {
        /// Offset of the offending record.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The source re-delivered a position that cannot be compared with the log's
    /// last durable one: the log was written by a different source. Use a separate
    /// log per source; retrying does not help.
    #[error("source position {delivered:?} cannot be compared with the log's last {logged:?}")]
    PositionMismatch {
        /// The log's last durable source position.
        logged: SourcePosition,
        /// The position the source delivered.
        delivered: SourcePosition,
    },
    /// A source delivered records that break its ordering contract (for example a
    /// commit without a begin). Nothing of the batch was appended; this is a bug in
    /// the source, so retrying does not help.
    #[error("source broke its contract at {position:?}: {reason}")]
    MalformedSource {
        /// The position of the offending record.
        position: SourcePosition,
        /// What is wrong.
        reason: &'static str,
    },
    /// The change log ends inside a transaction that was appended in parts, and the
    /// source, restarted after its last completed transaction, did not re-deliver
    /// that transaction first. The log cannot be completed consistently: start a
    /// new log from a fresh snapshot of the source. Retrying does not help.
    #[error(
        "the change log ends inside transaction {txid:?} at {position:?}, but the source \
         re-delivered {delivered:?} first; re-snapshot the source into a new log"
    )]
    UnfinishedTransaction {
        /// The unfinished transaction's id.
        txid: Option<SharedStr>,
        /// Its commit position.
        position: SourcePosition,
        /// The position the source delivered instead (boxed to keep the error small).
        delivered: Box<SourcePosition>,
    },
    /// A pause was requested at an offset the pipeline has already read past.
    /// Request a pause at or after `next`.
    #[error("cannot pause at offset {requested}: the pipeline already read up to {next}")]
    PausePassed {
        /// The requested pause offset.
        requested: u64,
        /// The next offset the pipeline reads.
        next: u64,
    },
    /// Copied rows were handed to a pipeline that is not paused: rows copied
    /// from the source are applied only while the pipeline holds, so no change
    /// logged after the copy's read is applied before it. Pause first
    /// ([`PipelineHandle::pause_now`](super::PipelineHandle::pause_now)).
    #[error("copied rows can only be applied while the pipeline is paused")]
    NotPaused,
    /// Copied rows were read while the pipeline held at `read_at`, but it has
    /// run on since and holds at `paused_at`: changes applied in between may be
    /// newer than the rows. Read them again while it holds (someone resumed
    /// the pipeline during the copy).
    #[error(
        "copied rows were read while the pipeline held at offset {read_at}, but it holds at \
         {paused_at} now; read them again"
    )]
    CopyPassed {
        /// Where the pipeline held when the rows were read.
        read_at: u64,
        /// Where it holds now.
        paused_at: u64,
    },
    /// Copied rows of a table the pipeline's filter drops: the pipeline would
    /// never apply the table's later changes. Add the table to the filter.
    #[error("copied rows of {table}, which the pipeline's table filter drops")]
    CopyOutsideFilter {
        /// The table.
        table: TableName,
    },
    /// The pipeline task has stopped; its result comes from
    /// [`PipelineHandle::join`](super::PipelineHandle::join).
    #[error("the pipeline has stopped")]
    Stopped,
    /// The pipeline task panicked; this is a bug, report it.
    #[error("the pipeline task panicked")]
    Panicked,
    /// Configuration is invalid; fix the named field.
    #[error("invalid pipeline configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

impl From<crate::Error> for PipelineError {
    fn from(source: crate::Error) -> Self {
        PipelineError::Log { source }
    }
}
