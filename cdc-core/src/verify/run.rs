//! Running a verification: chunks compared while the pipeline holds, the
//! keys in flight compared again, progress saved.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tracing::info;

use super::canonical::{canonical, canonical_of};
use super::report::RowDifference;
use super::settle::{Touched, touched_keys};
use super::{ColumnMap, TableReader, VerifyConfig, VerifyError, VerifyReport};
use crate::event::{Row, SourcePosition, TableSchema, Value};
use crate::ingest::CancellationToken;
use crate::pipeline::PipelineHandle;
use crate::progress_file::{ProgressFile, ProgressFileError};

/// One table's comparison of a pipeline's sink with its source. See the
/// [module docs](super).
///
/// ```no_run
/// # async fn demo<S: cdc_core::verify::TableReader, T: cdc_core::verify::TableReader>(
/// #     source: S, sink: T, pipeline: &cdc_core::pipeline::PipelineHandle,
/// # ) -> Result<(), cdc_core::verify::VerifyError> {
/// use std::collections::BTreeMap;
/// use cdc_core::ingest::CancellationToken;
/// use cdc_core::verify::{ColumnMap, Verification, VerifyConfig};
///
/// let columns = ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new())?;
/// let mut verification = Verification::new(source, sink, columns, VerifyConfig::new("orders.verify"));
/// let report = verification.run(pipeline, &CancellationToken::new()).await?;
/// if !report.is_equal() {
///     eprintln!("{} missing, {} extra, {} different", report.missing.count,
///         report.extra.count, report.different.count);
/// }
/// # Ok(()) }
/// ```
pub struct Verification<S, T> {
    source: S,
    sink: T,
    columns: ColumnMap,
    config: VerifyConfig,
    file: ProgressFile,
}

impl<S: TableReader, T: TableReader> std::fmt::Debug for Verification<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verification")
            .field("table", &self.source.schema().table)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A key whose rows differ, before the log says whether it was in flight.
struct Candidate {
    key: Row,
    canonical_key: String,
    kind: Kind,
}

enum Kind {
    Missing,
    Extra,
    Different(Vec<String>),
}

/// One chunk's rows on both sides.
struct ChunkRead {
    source: Vec<Row>,
    sink: Vec<Row>,
    /// The chunk's last key; `None` for the last chunk.
    through: Option<Row>,
}

/// What one hold of the pipeline read: chunks, then a source position.
struct Held {
    chunks: Vec<ChunkRead>,
    position: SourcePosition,
}

impl<S: TableReader, T: TableReader> Verification<S, T> {
    /// A comparison of `source`'s table with `sink`'s, paired by `columns`.
    pub fn new(source: S, sink: T, columns: ColumnMap, config: VerifyConfig) -> Self {
        let file = ProgressFile::new(&config.progress_path);
        Self {
            source,
            sink,
            columns,
            config,
            file,
        }
    }

    /// Compares the chunks not compared yet, then compares the keys that
    /// changed meanwhile again; returns the report when done or when `cancel`
    /// fires (between chunks; [`VerifyReport::done`] is then false and a
    /// later run resumes). The pipeline must be running the table into the
    /// sink; it is held while a chunk is read from both sides and resumed in
    /// between, and takes turns with backfills of the same pipeline.
    pub async fn run(
        &mut self,
        pipeline: &PipelineHandle,
        cancel: &CancellationToken,
    ) -> Result<VerifyReport, VerifyError> {
        let table = self.source.schema().table.clone();
        let declared = pipeline.log.declared_tables();
        if declared.is_some_and(|tables| !tables.contains(&table)) {
            return Err(VerifyError::NotStreamed {
                table: table.to_string(),
            });
        }
        let mut report: VerifyReport = self.file.load().map_err(|e| self.file_error(e))?;
        while !report.scanned && !cancel.is_cancelled() {
            self.compare_chunks(pipeline, &mut report).await?;
            self.save(&report)?;
        }
        if report.scanned && !report.done && report.rechecks == 0 {
            requeue_unmatched(&mut report);
        }
        while report.scanned && !report.done && !cancel.is_cancelled() {
            if report.pending.is_empty() || report.rechecks >= self.config.rechecks {
                for key in std::mem::take(&mut report.pending) {
                    report.unsettled.add(key, self.config.max_reported);
                }
                report.done = true;
            } else {
                // Give a busy key time to settle: 50 ms, then 100 ms, ...
                let wait = Duration::from_millis(50 << report.rechecks.min(6));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => break,
                }
                self.recheck(pipeline, &mut report).await?;
            }
            self.save(&report)?;
        }
        info!(
            table = %table,
            rows = report.rows,
            missing = report.missing.count,
            extra = report.extra.count,
            different = report.different.count,
            unsettled = report.unsettled.count,
            done = report.done,
            "verification run ended"
        );
        Ok(report)
    }

    /// Compares the next chunks, as many as one hold of the pipeline takes.
    async fn compare_chunks(
        &mut self,
        pipeline: &PipelineHandle,
        report: &mut VerifyReport,
    ) -> Result<(), VerifyError> {
        let turn = pipeline.copy_turn.lock().await;
        let at = pipeline.pause_now().await?;
        let held = self.read_held(pipeline, at, report.next.clone()).await;
        // Resume whatever happened: the pipeline is not the verification's to hold.
        let resumed = pipeline.resume().await;
        drop(turn);
        let held = held?;
        resumed?;
        let mut candidates = Vec::new();
        for chunk in &held.chunks {
            candidates.extend(self.compare(&chunk.source, &chunk.sink)?);
            report.rows += chunk.source.len() as u64;
            report.chunks += 1;
        }
        self.settle(pipeline, at, &held.position, candidates, report)
            .await?;
        let through = held.chunks.last().and_then(|c| c.through.clone());
        report.scanned = through.is_none();
        report.next = through;
        Ok(())
    }

    /// Reads chunks while the pipeline holds at `at`, until the hold has
    /// lasted [`max_hold`](VerifyConfig::max_hold): each chunk from the
    /// source, then the sink's rows of its key range while the source's next
    /// chunk is read; then the source position after every read.
    async fn read_held(
        &mut self,
        pipeline: &PipelineHandle,
        at: u64,
        mut after: Option<Row>,
    ) -> Result<Held, VerifyError> {
        let held_since = Instant::now();
        let schema = self.source.schema().clone();
        if let Some(logged) = pipeline.log.schema_at(&schema.table, at) {
            let names =
                |s: &TableSchema| s.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
            if names(&logged) != names(&schema) {
                return Err(VerifyError::SchemaChanged {
                    table: schema.table.to_string(),
                });
            }
        }
        let limit = self.config.chunk_rows.max(1);
        let Self { source, sink, .. } = self;
        let mut rows = read_source(source, after.as_deref(), limit).await?;
        let mut chunks = Vec::new();
        loop {
            let through = match rows.last() {
                Some(last) if rows.len() >= limit => Some(key_of(&schema, last, "source")?),
                _ => None,
            };
            let go_on = through.is_some() && held_since.elapsed() < self.config.max_hold;
            let sink_range = read_sink(sink, after.as_deref(), through.as_deref(), limit);
            let (sink_rows, next) = if go_on {
                let (sink_rows, next) =
                    tokio::join!(sink_range, read_source(source, through.as_deref(), limit));
                (sink_rows?, Some(next?))
            } else {
                (sink_range.await?, None)
            };
            chunks.push(ChunkRead {
                source: rows,
                sink: sink_rows,
                through: through.clone(),
            });
            match next {
                Some(next) => {
                    rows = next;
                    after = through;
                }
                None => break,
            }
        }
        let position = source.position().await.map_err(source_error)?;
        Ok(Held { chunks, position })
    }

    /// Compares the pending keys again, each read by key on both sides.
    async fn recheck(
        &mut self,
        pipeline: &PipelineHandle,
        report: &mut VerifyReport,
    ) -> Result<(), VerifyError> {
        let mut keys = std::mem::take(&mut report.pending);
        // A key is compared once a round, and not again once reported: a sink
        // that orders keys otherwise can show one key in several ranges.
        let form = |key: &Row| canonical_of(key, 0..key.len());
        let mut seen: HashSet<_> = report
            .different
            .first
            .iter()
            .map(|d| form(&d.key))
            .chain(report.missing.first.iter().map(form))
            .chain(report.extra.first.iter().map(form))
            .collect();
        keys.retain(|key| seen.insert(form(key)));
        let turn = pipeline.copy_turn.lock().await;
        let at = pipeline.pause_now().await?;
        let read = async {
            let mut source = Vec::new();
            let mut sink = Vec::new();
            for key in &keys {
                source.extend(self.source.read_key(key).await.map_err(source_error)?);
                sink.extend(self.sink.read_key(key).await.map_err(sink_error)?);
            }
            let position = self.source.position().await.map_err(source_error)?;
            Ok::<_, VerifyError>((source, sink, position))
        }
        .await;
        let resumed = pipeline.resume().await;
        drop(turn);
        // On an error the run ends unsaved: the file still holds these keys.
        let (source, sink, position) = read?;
        resumed?;
        let candidates = self.compare(&source, &sink)?;
        report.rechecks += 1;
        self.settle(pipeline, at, &position, candidates, report)
            .await
    }

    /// Matches the rows of both sides by key and compares the paired columns.
    fn compare(&self, source: &[Row], sink: &[Row]) -> Result<Vec<Candidate>, VerifyError> {
        let source_schema = self.source.schema();
        let sink_schema = self.sink.schema();
        let mut sink_rows = HashMap::with_capacity(sink.len());
        for row in sink {
            check_width(sink_schema, row, "sink")?;
            let key = canonical_of(row, sink_schema.primary_key.iter().map(|&k| k as usize));
            sink_rows.insert(key.unwrap_or_default(), row);
        }
        let mut candidates = Vec::new();
        for row in source {
            check_width(source_schema, row, "source")?;
            let key: Vec<&Value> = source_schema
                .primary_key
                .iter()
                .filter_map(|&k| row.get(k as usize))
                .collect();
            let canonical_key = self.key_form(&key);
            let kind = match sink_rows.remove(&canonical_key) {
                None => Kind::Missing,
                Some(stored) => {
                    let columns = self.differing_columns(row, stored);
                    if columns.is_empty() {
                        continue;
                    }
                    Kind::Different(columns)
                }
            };
            candidates.push(Candidate {
                key: key_of(source_schema, row, "source")?,
                canonical_key,
                kind,
            });
        }
        for (canonical_key, row) in sink_rows {
            candidates.push(Candidate {
                key: key_of(sink_schema, row, "sink")?,
                canonical_key,
                kind: Kind::Extra,
            });
        }
        Ok(candidates)
    }

    /// The canonical form of source key values (in key order) as the sink
    /// holds them: the form keys are matched in.
    fn key_form(&self, key: &[&Value]) -> String {
        let sink_key = &self.sink.schema().primary_key;
        let mut out = String::new();
        for (value, &column) in key.iter().zip(sink_key) {
            canonical(&self.sink.stored_form(column as usize, value), &mut out);
        }
        out
    }

    fn differing_columns(&self, source: &Row, sink: &Row) -> Vec<String> {
        let (mut a, mut b) = (String::new(), String::new());
        let mut columns = Vec::new();
        for &(s, t) in self.columns.pairs() {
            let (Some(x), Some(y)) = (source.get(s), sink.get(t)) else {
                continue;
            };
            if matches!(x, Value::Unchanged) || matches!(y, Value::Unchanged) {
                continue;
            }
            a.clear();
            b.clear();
            canonical(&self.sink.stored_form(t, x), &mut a);
            canonical(y, &mut b);
            if a != b {
                columns.push(self.source.schema().columns[s].name.clone());
            }
        }
        columns
    }

    /// Reports the candidates no logged change touched between the pause at
    /// `at` and `position`; queues the others for a recheck.
    async fn settle(
        &mut self,
        pipeline: &PipelineHandle,
        at: u64,
        position: &SourcePosition,
        candidates: Vec<Candidate>,
        report: &mut VerifyReport,
    ) -> Result<(), VerifyError> {
        if candidates.is_empty() {
            return Ok(());
        }
        let table = &self.source.schema().table;
        let touched = touched_keys(
            &pipeline.log,
            table,
            at,
            position,
            self.config.settle_timeout,
        )
        .await?;
        let touched: Option<HashSet<String>> = match touched {
            Touched::All => None,
            Touched::Keys(keys) => Some(
                keys.iter()
                    .map(|key| self.key_form(&key.iter().collect::<Vec<_>>()))
                    .collect(),
            ),
        };
        let max = self.config.max_reported;
        for candidate in candidates {
            if touched
                .as_ref()
                .is_none_or(|keys| keys.contains(&candidate.canonical_key))
            {
                report.pending.push(candidate.key);
                continue;
            }
            match candidate.kind {
                Kind::Missing => report.missing.add(candidate.key, max),
                Kind::Extra => report.extra.add(candidate.key, max),
                Kind::Different(columns) => report.different.add(
                    RowDifference {
                        key: candidate.key,
                        columns,
                    },
                    max,
                ),
            }
        }
        Ok(())
    }

    fn save(&self, report: &VerifyReport) -> Result<(), VerifyError> {
        self.file.save(report).map_err(|e| self.file_error(e))
    }

    fn file_error(&self, error: ProgressFileError) -> VerifyError {
        let path = self.file.path().to_path_buf();
        match error {
            ProgressFileError::Io(source) => VerifyError::Progress { path, source },
            ProgressFileError::Corrupt(reason) => VerifyError::CorruptProgress { path, reason },
        }
    }
}

/// Keys the range scan found on one side only are compared again by key
/// before they are reported: the two sides may order keys differently (a
/// key then falls in another range on each side), which only a read by key
/// tells from a real difference. Counts past the kept keys stay as found.
fn requeue_unmatched(report: &mut VerifyReport) {
    for found in [&mut report.missing, &mut report.extra] {
        found.count -= found.first.len() as u64;
        report.pending.append(&mut found.first);
    }
}

fn check_width(schema: &TableSchema, row: &Row, side: &'static str) -> Result<(), VerifyError> {
    if row.len() == schema.columns.len() {
        return Ok(());
    }
    Err(VerifyError::RowWidth {
        side,
        table: schema.table.to_string(),
        expected: schema.columns.len(),
        found: row.len(),
    })
}

/// The key values of `row`, in key order.
fn key_of(schema: &TableSchema, row: &Row, side: &'static str) -> Result<Row, VerifyError> {
    check_width(schema, row, side)?;
    Ok(schema
        .primary_key
        .iter()
        .map(|&k| row.get(k as usize).cloned().unwrap_or(Value::Null))
        .collect())
}

/// A source chunk: the rows after `after`, up to `limit`.
async fn read_source<S: TableReader>(
    source: &mut S,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, VerifyError> {
    source
        .read_range(after, None, limit)
        .await
        .map_err(source_error)
}

/// Every sink row in `(after, through]`, read in pages of `limit`.
async fn read_sink<T: TableReader>(
    sink: &mut T,
    after: Option<&[Value]>,
    through: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Row>, VerifyError> {
    let mut rows = Vec::new();
    let mut page_after = after.map(<[_]>::to_vec);
    loop {
        let page = sink
            .read_range(page_after.as_deref(), through, limit)
            .await
            .map_err(sink_error)?;
        let full = page.len() >= limit;
        if let Some(last) = page.last().filter(|_| full) {
            page_after = Some(key_of(sink.schema(), last, "sink")?);
        }
        rows.extend(page);
        if !full {
            return Ok(rows);
        }
    }
}

fn source_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> VerifyError {
    VerifyError::Source {
        source: Box::new(e),
    }
}

fn sink_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> VerifyError {
    VerifyError::Sink {
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;

    /// A reader that may move between threads but not be shared (a
    /// connection with a cell inside, say).
    struct Unshared(Cell<u8>, Arc<TableSchema>);

    #[async_trait]
    impl TableReader for Unshared {
        type Error = std::io::Error;
        fn schema(&self) -> &Arc<TableSchema> {
            &self.1
        }
        async fn read_range(
            &mut self,
            _: Option<&[Value]>,
            _: Option<&[Value]>,
            _: usize,
        ) -> std::io::Result<Vec<Row>> {
            self.0.set(1);
            Ok(Vec::new())
        }
        async fn read_key(&mut self, _: &[Value]) -> std::io::Result<Option<Row>> {
            Ok(None)
        }
    }

    #[test]
    fn a_run_can_be_spawned_with_readers_that_are_not_sync() {
        fn spawnable<F: std::future::Future + Send>(_: F) {}
        fn check(
            v: &mut Verification<Unshared, Unshared>,
            pipeline: &PipelineHandle,
            cancel: &CancellationToken,
        ) {
            spawnable(v.run(pipeline, cancel));
        }
        let _ = check;
    }
}
