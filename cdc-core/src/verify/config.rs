//! What a verification is told, and how it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pipeline::{BoxedError, PipelineError};

/// Settings of one table's verification.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Where the progress (and what was found so far) is kept; a run resumes
    /// from it.
    pub progress_path: PathBuf,
    /// Source rows per chunk. Default 5 000.
    pub chunk_rows: usize,
    /// How long the pipeline may be held for one run of chunks: within it
    /// the sink's rows of a chunk are read while the source's next chunk is.
    /// Longer means a faster comparison and a pipeline further behind
    /// meanwhile. Default 250 ms; zero holds it for one chunk at a time.
    pub max_hold: Duration,
    /// Rounds in which keys changed while they were compared are compared
    /// again, by key. Default 5.
    pub rechecks: u32,
    /// How long to wait for the log to reach the position read after a
    /// chunk that holds differing rows; a chunk whose wait runs out has its
    /// differing keys compared again. Default 30 s (a quiet PostgreSQL source
    /// gets there at its next heartbeat).
    pub settle_timeout: Duration,
    /// Keys kept in the report per kind of difference; the counts go on.
    /// Default 1 000.
    pub max_reported: usize,
}

impl VerifyConfig {
    /// The defaults, progress kept at `progress_path`.
    pub fn new(progress_path: impl AsRef<Path>) -> Self {
        Self {
            progress_path: progress_path.as_ref().to_path_buf(),
            chunk_rows: 5_000,
            max_hold: Duration::from_millis(250),
            rechecks: 5,
            settle_timeout: Duration::from_secs(30),
            max_reported: 1_000,
        }
    }
}

/// Errors of a verification. The progress saved before one is kept: running
/// it again resumes after the last compared chunk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading the source failed; run again when it is reachable.
    #[error("reading the source failed: {source}")]
    Source {
        /// The source reader's error.
        #[source]
        source: BoxedError,
    },
    /// Reading the sink failed; run again when it is reachable.
    #[error("reading the sink failed: {source}")]
    Sink {
        /// The sink reader's error.
        #[source]
        source: BoxedError,
    },
    /// The pipeline failed or stopped; restart it, then run again.
    #[error("the pipeline could not be held for a comparison: {source}")]
    Pipeline {
        /// The pipeline's error.
        #[from]
        source: PipelineError,
    },
    /// Reading the change log between a chunk's pause and its position failed.
    #[error("reading the change log failed: {source}")]
    Log {
        /// The log's error.
        #[from]
        source: crate::Error,
    },
    /// The progress file could not be read or written.
    #[error("verification progress file {path}: {source}")]
    Progress {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The progress file holds something else; remove it to start over.
    #[error("verification progress file {path} is unreadable ({reason}); remove it to start over")]
    CorruptProgress {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The source and sink tables cannot be paired up.
    #[error("cannot compare {table} with its sink table: {reason}")]
    Columns {
        /// The source table.
        table: String,
        /// What does not match.
        reason: String,
    },
    /// The table's columns in the change log differ from those the source
    /// reader reads (a schema change is on its way through the log). Run again
    /// with a reader made after the log has the change.
    #[error(
        "the columns of {table} in the change log differ from the ones the source reader reads; \
         recreate the reader and run again once the log has the schema change"
    )]
    SchemaChanged {
        /// The table.
        table: String,
    },
    /// The change log's source reader does not read this table, so the sink
    /// cannot be expected to follow it.
    #[error("the change log's source reader does not read {table}; nothing streams it to the sink")]
    NotStreamed {
        /// The table.
        table: String,
    },
    /// A reader returned a row without the width of its schema: a reader bug.
    #[error("a row read from the {side} for {table} has {found} values for {expected} columns")]
    RowWidth {
        /// `source` or `sink`.
        side: &'static str,
        /// The table.
        table: String,
        /// Columns in the schema.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
}
