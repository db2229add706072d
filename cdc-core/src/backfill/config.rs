//! What a backfill is told, and what it answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::event::SourcePosition;
use crate::pipeline::{BoxedError, PipelineError};

/// What happens to rows the target table already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Destination {
    /// Keep them and upsert the copied rows over them: a target row whose key
    /// the source no longer has stays.
    #[default]
    KeepAndUpsert,
    /// Empty the target table before the first chunk, so it ends as the source.
    TruncateFirst,
}

/// Settings of one table's backfill.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// Where the progress is kept; the backfill resumes from it after a crash.
    pub progress_path: PathBuf,
    /// What happens to rows the target already holds.
    pub destination: Destination,
    /// Rows copied per second at most, if set; chunks wait in between (and
    /// the pipeline is held for one chunk at a time).
    pub max_rows_per_second: Option<u32>,
    /// How long the pipeline may be held for one run of chunks: within it the
    /// next chunk is read while the sink applies the last one, and a chunk
    /// already being applied when it runs out still finishes. Longer means a
    /// faster copy and a pipeline further behind meanwhile. Default 250 ms;
    /// zero holds it for one chunk at a time.
    pub max_hold: Duration,
}

impl BackfillConfig {
    /// Keep-and-upsert with no throttle and the default hold, progress kept at
    /// `progress_path`.
    pub fn new(progress_path: impl AsRef<Path>) -> Self {
        Self {
            progress_path: progress_path.as_ref().to_path_buf(),
            destination: Destination::default(),
            max_rows_per_second: None,
            max_hold: Duration::from_millis(250),
        }
    }
}

/// Errors of a backfill. The progress saved before one is kept: running the
/// backfill again resumes after the last copied chunk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// Reading a chunk from the source failed; run again when it is reachable.
    #[error("reading a chunk from the source failed: {source}")]
    Source {
        /// The chunk source's error.
        #[source]
        source: BoxedError,
    },
    /// The pipeline failed or stopped; restart it, then run the backfill again.
    #[error("the pipeline could not take the copied rows: {source}")]
    Pipeline {
        /// The pipeline's error.
        #[from]
        source: PipelineError,
    },
    /// The progress file could not be read or written.
    #[error("backfill progress file {path}: {source}")]
    Progress {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The progress file holds something else; remove it to start over.
    #[error("backfill progress file {path} is unreadable ({reason}); remove it to start over")]
    CorruptProgress {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The table's columns in the change log differ from those the chunk
    /// source reads (a schema change is on its way through the log). Run the
    /// backfill again with a chunk source made after the log has the change.
    #[error(
        "the columns of {table} in the change log differ from the ones the chunk source reads; \
         recreate the chunk source and run again once the log has the schema change"
    )]
    SchemaChanged {
        /// The table.
        table: String,
    },
    /// The source reader appending to the change log does not read this
    /// table, so the copy would never receive its later changes. Add the
    /// table to the reader (its publication, its table list), restart the
    /// reader, then run the backfill.
    #[error(
        "the change log's source reader does not read {table}; add it to the reader's tables \
         and restart the reader first"
    )]
    NotStreamed {
        /// The table.
        table: String,
    },
    /// A chunk's row does not have the schema's width: a chunk source bug.
    #[error("a copied row of {table} has {found} values for {expected} columns")]
    RowWidth {
        /// The table.
        table: String,
        /// Columns in the schema.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
}

/// How a run of [`Backfill::run`](super::Backfill::run) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillSummary {
    /// Whether every chunk is copied (in this run or an earlier one).
    pub done: bool,
    /// Rows copied, over every run.
    pub rows: u64,
    /// Chunks copied, over every run.
    pub chunks: u64,
    /// The position read after the last chunk of this run, if it copied one:
    /// the target holds the source's rows once the pipeline is past it.
    pub position: Option<SourcePosition>,
}
