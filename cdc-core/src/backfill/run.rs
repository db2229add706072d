//! Running a backfill: chunks copied while the pipeline holds, progress saved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::info;

use super::progress::BackfillProgress;
use super::{
    BackfillConfig, BackfillError, BackfillSummary, ChunkSource, CopiedChunk, Destination,
};
use crate::event::{Change, ChangeKind, Row, SourcePosition, TableSchema, now_micros};
use crate::ingest::CancellationToken;
use crate::pipeline::PipelineHandle;
use crate::progress_file::ProgressFile;

/// One table's backfill into one pipeline. See the [module docs](super).
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

/// What one hold of the pipeline copied.
struct Held {
    rows: u64,
    position: Option<SourcePosition>,
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
    /// take the table. It is held while chunks are read and applied (up to
    /// [`max_hold`](BackfillConfig::max_hold) at a time) and resumed in
    /// between, so do not hold it paused yourself (for a verification) while
    /// a backfill runs. When the log's source reader has
    /// [declared](crate::ChangeLog::declare_tables) its tables, the table must
    /// be one of them ([`BackfillError::NotStreamed`]).
    pub async fn run(
        &mut self,
        pipeline: &PipelineHandle,
        cancel: &CancellationToken,
    ) -> Result<BackfillSummary, BackfillError> {
        let table = &self.source.schema().table;
        let declared = pipeline.log.declared_tables();
        if declared.is_some_and(|tables| !tables.contains(table)) {
            return Err(BackfillError::NotStreamed {
                table: table.to_string(),
            });
        }
        let mut progress: BackfillProgress<S::Key> =
            self.file.load().map_err(|e| (e, &self.file))?;
        if progress.estimated_rows.is_none() {
            progress.estimated_rows = self.source.estimated_rows().await.map_err(source_error)?;
        }
        self.progress.send_replace(progress.clone());
        let mut position = None;
        while !progress.done && !cancel.is_cancelled() {
            let turn = pipeline.copy_turn.lock().await;
            let at = pipeline.pause_now().await?;
            let held = self
                .copy_while_held(pipeline, at, &mut progress, cancel)
                .await;
            // Resume whatever happened: the pipeline is not the backfill's to hold.
            let resumed = pipeline.resume().await;
            drop(turn);
            let held = held?;
            resumed?;
            position = held.position.or(position);
            if let Some(rate) = self.config.max_rows_per_second.filter(|_| !progress.done) {
                let wait = Duration::from_secs_f64(held.rows as f64 / f64::from(rate.max(1)));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => {}
                }
            }
        }
        let table = &self.source.schema().table;
        info!(table = %table, rows = progress.rows, chunks = progress.chunks, done = progress.done, "backfill run ended");
        Ok(BackfillSummary {
            done: progress.done,
            rows: progress.rows,
            chunks: progress.chunks,
            position,
        })
    }

    /// Copies chunks while the pipeline holds at `at`, reading the next one
    /// while the sink applies the last, until the hold has lasted `max_hold`
    /// (one chunk when throttled); saves the progress after each applied chunk.
    async fn copy_while_held(
        &mut self,
        pipeline: &PipelineHandle,
        at: u64,
        progress: &mut BackfillProgress<S::Key>,
        cancel: &CancellationToken,
    ) -> Result<Held, BackfillError> {
        let held_since = Instant::now();
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
            let truncate = Change {
                table: schema.table.clone(),
                kind: ChangeKind::Truncate,
                before: None,
                after: None,
                position: SourcePosition::None,
                txid: None,
                commit_time_micros: now_micros(),
            };
            pipeline
                .apply_copied(at, schema.clone(), vec![truncate])
                .await?;
            progress.truncated = true;
        }
        let one_chunk = self.config.max_rows_per_second.is_some();
        let mut held = Held {
            rows: 0,
            position: None,
        };
        let mut chunk = self
            .source
            .read_chunk(progress.next.as_ref())
            .await
            .map_err(source_error)?;
        loop {
            let changes = snapshot_reads(&schema, std::mem::take(&mut chunk.rows), &chunk)?;
            let rows = changes.len() as u64;
            let apply = async {
                if changes.is_empty() {
                    return Ok(());
                }
                pipeline.apply_copied(at, schema.clone(), changes).await
            };
            let go_on = chunk.next.is_some()
                && !one_chunk
                && held_since.elapsed() < self.config.max_hold
                && !cancel.is_cancelled();
            let next = if go_on {
                let (applied, next) =
                    tokio::join!(apply, self.source.read_chunk(chunk.next.as_ref()));
                applied?;
                Some(next)
            } else {
                apply.await?;
                None
            };
            // The chunk is in the sink: record it before anything else can fail.
            held.rows += rows;
            progress.rows += rows;
            progress.chunks += 1;
            progress.done = chunk.next.is_none();
            progress.next = chunk.next;
            held.position = Some(chunk.position);
            self.file.save(progress).map_err(|e| (e, &self.file))?;
            self.progress.send_replace(progress.clone());
            match next {
                Some(next) => chunk = next.map_err(source_error)?,
                None => return Ok(held),
            }
        }
    }
}

fn source_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> BackfillError {
    BackfillError::Source {
        source: Box::new(e),
    }
}

/// A chunk's rows as snapshot reads, after checking their width.
fn snapshot_reads<K>(
    schema: &Arc<TableSchema>,
    rows: Vec<Row>,
    chunk: &CopiedChunk<K>,
) -> Result<Vec<Change>, BackfillError> {
    let width = schema.columns.len();
    let read_time = now_micros();
    rows.into_iter()
        .map(|row| {
            if row.len() != width {
                return Err(BackfillError::RowWidth {
                    table: schema.table.to_string(),
                    expected: width,
                    found: row.len(),
                });
            }
            Ok(Change::snapshot_read(
                schema.table.clone(),
                row,
                chunk.position.clone(),
                read_time,
            ))
        })
        .collect()
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
