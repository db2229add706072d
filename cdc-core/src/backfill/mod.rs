//! Backfill concurrent with streaming: copy a table into one pipeline's sink,
//! chunk by chunk, while the source keeps changing and the log keeps growing.
//!
//! # How it stays exact
//!
//! For each chunk the pipeline is paused at a transaction boundary (offset
//! `at`), the chunk is read from the source (one statement, started then), its
//! rows are applied to the sink at `at`, and the pipeline resumes from `at`.
//! Every change logged after `at` committed after the log reached `at`, so
//! either the chunk's read saw it already, or it committed after the read. The
//! pipeline then applies all of them, in order, over the copied rows: a key
//! changed after `at` ends with its last change's image, the source's; a key
//! not changed ends with the copied row, also the source's. A change the read
//! already saw is applied once more, which changes nothing once the later ones
//! follow, so no change is lost and no stale row survives. The argument holds
//! key by key, so the rows of a chunk need not come from one snapshot: each
//! must only be read after the pause. Nothing is written
//! to the source, no lock is taken and no transaction spans more than one
//! chunk's read; the change log, which every pipeline can re-read, is what
//! makes this simple.
//!
//! Until the pipeline has applied the log past the last chunk's
//! [`position`](CopiedChunk::position), copied rows may show an older image
//! for a moment (a change the read already saw, applied again before the
//! later ones). Sinks upsert copied rows, so a chunk copied twice (after a
//! crash between the sink's commit and the progress file's) is harmless.
//!
//! The sink's image rules apply to changes of keys not copied yet: an update
//! that leaves values unchanged (PostgreSQL TOAST) of a row the target does not
//! hold yet writes a row with those columns empty, which its chunk then
//! overwrites.

mod progress;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::info;

pub use progress::BackfillProgress;
use progress::ProgressFile;

use crate::event::{Change, ChangeKind, Record, Row, SourcePosition, TableSchema, now_micros};
use crate::ingest::CancellationToken;
use crate::pipeline::{BoxedError, PipelineError, PipelineHandle};

/// Rows of one chunk, each read after the pipeline paused.
#[derive(Debug, Clone, PartialEq)]
pub struct CopiedChunk<K> {
    /// Rows in key order, in the column order of [`ChunkSource::schema`].
    pub rows: Vec<Row>,
    /// Where the next chunk starts; `None` when the table is exhausted.
    pub next: Option<K>,
    /// A source position read after the chunk: once the pipeline has applied
    /// the log past it, the copied rows are the source's.
    pub position: SourcePosition,
}

impl<K> CopiedChunk<K> {
    /// A chunk from a snapshot reader's records: the after images of its
    /// changes, in order (other records carry no rows).
    pub fn from_records(records: Vec<Record>, next: Option<K>, position: SourcePosition) -> Self {
        let rows = records
            .into_iter()
            .filter_map(|record| match record {
                Record::Change(change) => change.after,
                _ => None,
            })
            .collect();
        Self {
            rows,
            next,
            position,
        }
    }
}

/// A table read in primary-key chunks, for [`Backfill`].
///
/// # Contract
///
/// * [`read_chunk`](Self::read_chunk) reads the rows after `after` in key
///   order, up to the source's chunk size, **starting when it is called**:
///   each row as the source held it at some moment after the call began (one
///   statement does this; the rows need not come from one snapshot). The
///   backfill pauses the pipeline before calling it, and relies on every row
///   reflecting every change committed before.
/// * Chunks cover the table: following `next` from `None` until it is `None`
///   visits every key present through the whole backfill exactly once.
/// * Keys are serializable so a backfill resumes after a crash.
#[async_trait]
pub trait ChunkSource: Send {
    /// Where a chunk starts (the last key read).
    type Key: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The source's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The table's schema; rows are in its column order.
    fn schema(&self) -> &Arc<TableSchema>;

    /// The next chunk after `after` (from the start when `None`).
    async fn read_chunk(
        &mut self,
        after: Option<&Self::Key>,
    ) -> Result<CopiedChunk<Self::Key>, Self::Error>;

    /// A cheap estimate of the table's rows, for progress; `None` when unknown.
    async fn estimated_rows(&mut self) -> Result<Option<u64>, Self::Error> {
        Ok(None)
    }
}

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
    /// Rows copied per second at most, if set; chunks wait in between.
    pub max_rows_per_second: Option<u32>,
}

impl BackfillConfig {
    /// Keep-and-upsert with no throttle, progress kept at `progress_path`.
    pub fn new(progress_path: impl AsRef<Path>) -> Self {
        Self {
            progress_path: progress_path.as_ref().to_path_buf(),
            destination: Destination::default(),
            max_rows_per_second: None,
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

/// How a run of [`Backfill::run`] ended.
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

/// One table's backfill into one pipeline. See the [module docs](self).
///
/// ```no_run
/// # async fn demo<S: cdc_core::backfill::ChunkSource>(
/// #     chunks: S, pipeline: &cdc_core::pipeline::PipelineHandle,
/// # ) -> Result<(), cdc_core::backfill::BackfillError> {
/// use cdc_core::ingest::CancellationToken;
/// use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
///
/// let mut config = BackfillConfig::new("/var/lib/app/orders.backfill");
/// config.destination = Destination::TruncateFirst;
/// let mut backfill = Backfill::new(chunks, config);
/// let summary = backfill.run(pipeline, &CancellationToken::new()).await?;
/// assert!(summary.done);
/// # Ok(()) }
/// ```
pub struct Backfill<S: ChunkSource> {
    source: S,
    config: BackfillConfig,
    file: ProgressFile,
    progress: watch::Sender<BackfillProgress<S::Key>>,
}

impl<S: ChunkSource> std::fmt::Debug for Backfill<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backfill")
            .field("table", &self.source.schema().table)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: ChunkSource> Backfill<S> {
    /// A backfill of `source`'s table.
    pub fn new(source: S, config: BackfillConfig) -> Self {
        let file = ProgressFile::new(&config.progress_path);
        Self {
            source,
            config,
            file,
            progress: watch::channel(BackfillProgress::default()).0,
        }
    }

    /// Progress as it is made: rows and chunks copied, whether done.
    pub fn subscribe(&self) -> watch::Receiver<BackfillProgress<S::Key>> {
        self.progress.subscribe()
    }

    /// Copies the chunks not copied yet into `pipeline`'s sink, saving the
    /// progress after each; returns when all are copied or `cancel` fires
    /// (between chunks; [`BackfillSummary::done`] is then false and a later
    /// run resumes). The pipeline must be running and its table filter must
    /// take the table; it holds only while a chunk is read and applied, and
    /// is resumed after each chunk, so do not hold it paused yourself (for a
    /// verification) while a backfill runs.
    pub async fn run(
        &mut self,
        pipeline: &PipelineHandle,
        cancel: &CancellationToken,
    ) -> Result<BackfillSummary, BackfillError> {
        let mut progress: BackfillProgress<S::Key> = self.file.load()?;
        let mut position = None;
        let source_error = |e: S::Error| BackfillError::Source {
            source: Box::new(e),
        };
        if progress.estimated_rows.is_none() {
            progress.estimated_rows = self.source.estimated_rows().await.map_err(source_error)?;
        }
        self.progress.send_replace(progress.clone());
        let table = self.source.schema().table.clone();
        while !progress.done && !cancel.is_cancelled() {
            let turn = pipeline.copy_turn.lock().await;
            let at = pipeline.pause_now().await?;
            let copied = self.copy_chunk(pipeline, at, &mut progress).await;
            // Resume whatever happened: the pipeline is not the backfill's to hold.
            let resumed = pipeline.resume().await;
            drop(turn);
            let (chunk, rows) = copied?;
            resumed?;
            progress.rows += rows;
            progress.chunks += 1;
            progress.done = chunk.next.is_none();
            progress.next = chunk.next;
            position = Some(chunk.position);
            self.file.save(&progress)?;
            self.progress.send_replace(progress.clone());
            if let Some(rate) = self.config.max_rows_per_second.filter(|_| !progress.done) {
                let wait = Duration::from_secs_f64(rows as f64 / f64::from(rate.max(1)));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => {}
                }
            }
        }
        info!(table = %table, rows = progress.rows, chunks = progress.chunks, done = progress.done, "backfill run ended");
        Ok(BackfillSummary {
            done: progress.done,
            rows: progress.rows,
            chunks: progress.chunks,
            position,
        })
    }

    /// Reads one chunk while the pipeline holds at `at` and applies it there;
    /// returns the chunk's end and its row count. `progress` takes the truncate.
    async fn copy_chunk(
        &mut self,
        pipeline: &PipelineHandle,
        at: u64,
        progress: &mut BackfillProgress<S::Key>,
    ) -> Result<(CopiedChunk<S::Key>, u64), BackfillError> {
        let schema = self.source.schema().clone();
        if let Some(logged) = pipeline.log.schema_at(&schema.table, at) {
            let names =
                |s: &TableSchema| s.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
            if names(&logged) != names(&schema) {
                return Err(BackfillError::SchemaChanged {
                    table: schema.table.to_string(),
                });
            }
        }
        if self.config.destination == Destination::TruncateFirst && !progress.truncated {
            let truncate = change(&schema, ChangeKind::Truncate, None, SourcePosition::None);
            pipeline
                .apply_copied(at, schema.clone(), vec![truncate])
                .await?;
            progress.truncated = true;
        }
        let mut chunk = self
            .source
            .read_chunk(progress.next.as_ref())
            .await
            .map_err(|e| BackfillError::Source {
                source: Box::new(e),
            })?;
        let width = schema.columns.len();
        let rows = std::mem::take(&mut chunk.rows);
        let count = rows.len() as u64;
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            if row.len() != width {
                return Err(BackfillError::RowWidth {
                    table: schema.table.to_string(),
                    expected: width,
                    found: row.len(),
                });
            }
            changes.push(change(
                &schema,
                ChangeKind::SnapshotRead,
                Some(row),
                chunk.position.clone(),
            ));
        }
        if !changes.is_empty() {
            pipeline.apply_copied(at, schema, changes).await?;
        }
        Ok((chunk, count))
    }
}

/// Runs several backfills into one pipeline, starting them in the order
/// given with at most `concurrency` (at least 1) running at once; their chunks
/// take turns on the pipeline. Returns each one's outcome, in the order given;
/// one failing does not stop the others.
///
/// ```no_run
/// # async fn demo<S: cdc_core::backfill::ChunkSource>(
/// #     tables: Vec<S>, pipeline: &cdc_core::pipeline::PipelineHandle,
/// # ) {
/// use cdc_core::backfill::{Backfill, BackfillConfig, run_all};
/// use cdc_core::ingest::CancellationToken;
///
/// let backfills = tables
///     .into_iter()
///     .enumerate()
///     .map(|(i, chunks)| Backfill::new(chunks, BackfillConfig::new(format!("table-{i}.backfill"))))
///     .collect();
/// for outcome in run_all(backfills, 2, pipeline, &CancellationToken::new()).await {
///     println!("{outcome:?}");
/// }
/// # }
/// ```
pub async fn run_all<S: ChunkSource>(
    backfills: Vec<Backfill<S>>,
    concurrency: usize,
    pipeline: &PipelineHandle,
    cancel: &CancellationToken,
) -> Vec<Result<BackfillSummary, BackfillError>> {
    use futures::StreamExt;
    futures::stream::iter(backfills)
        .map(|mut backfill| async move { backfill.run(pipeline, cancel).await })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

fn change(
    schema: &TableSchema,
    kind: ChangeKind,
    after: Option<Row>,
    position: SourcePosition,
) -> Change {
    Change {
        table: schema.table.clone(),
        kind,
        before: None,
        after,
        position,
        txid: None,
        commit_time_micros: now_micros(),
    }
}
