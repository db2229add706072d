//! Backfill concurrent with streaming, on a model source: a table whose
//! changes are logged with a lag (as a real source's are), read in chunks
//! while a writer keeps changing it. The target must end as the source.

mod pipeline_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cdc_core::backfill::{
    Backfill, BackfillConfig, BackfillError, BackfillProgress, ChunkSource, CopiedChunk,
    Destination, run_all,
};
use cdc_core::event::{
    Begin, Change, ChangeKind, Commit, Record, SourcePosition, TableSchema, Value,
};
use cdc_core::ingest::CancellationToken;
use cdc_core::pipeline::{Pipeline, PipelineHandle};
use cdc_core::{ChangeLog, LogConfig, Sink, SinkBatch, SinkEvent};
use pipeline_support::{config, schema, table};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

type Rows = Arc<Mutex<BTreeMap<i64, String>>>;

/// The source: its rows and its commit counter, changed under one lock so
/// the order of the queued transactions is the commit order.
#[derive(Clone, Default)]
struct ModelSource {
    state: Arc<Mutex<(BTreeMap<i64, String>, u64)>>,
}

impl ModelSource {
    fn rows(&self) -> BTreeMap<i64, String> {
        self.state.lock().unwrap().0.clone()
    }
}

struct ModelChunks {
    source: ModelSource,
    schema: Arc<TableSchema>,
    chunk_rows: usize,
}

#[async_trait]
impl ChunkSource for ModelChunks {
    type Key = i64;
    type Error = std::io::Error;

    fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    async fn read_chunk(&mut self, after: Option<&i64>) -> Result<CopiedChunk<i64>, Self::Error> {
        // A read takes a while, as a query does; the rows are the state at its end.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let state = self.source.state.lock().unwrap();
        let from = after.map_or(i64::MIN, |k| k + 1);
        let rows: Vec<_> = state
            .0
            .range(from..)
            .take(self.chunk_rows)
            .map(|(k, v)| vec![Value::Int(*k), Value::Text(v.as_str().into())])
            .collect();
        let next = (rows.len() == self.chunk_rows).then(|| match rows.last().map(|r| &r[0]) {
            Some(Value::Int(k)) => *k,
            _ => unreachable!("rows hold Int keys"),
        });
        Ok(CopiedChunk {
            rows,
            next,
            position: SourcePosition::Postgres { lsn: state.1 },
        })
    }

    async fn estimated_rows(&mut self) -> Result<Option<u64>, Self::Error> {
        Ok(Some(self.source.state.lock().unwrap().0.len() as u64))
    }
}

/// A target table: upserts, deletes and truncates applied as a database would.
struct TableSink(Rows);

#[async_trait]
impl Sink for TableSink {
    type Error = std::io::Error;
    fn stores_offsets(&self) -> bool {
        false
    }
    async fn stored_offset(&mut self) -> Result<Option<u64>, Self::Error> {
        Ok(None)
    }
    async fn apply(&mut self, batch: &SinkBatch) -> Result<(), Self::Error> {
        let mut rows = self.0.lock().unwrap();
        for event in &batch.events {
            let SinkEvent::Change { change, .. } = event else {
                continue;
            };
            let key = |row: &Option<Vec<Value>>| match row.as_deref() {
                Some([Value::Int(k), ..]) => *k,
                other => panic!("a row without an Int key: {other:?}"),
            };
            match change.kind {
                ChangeKind::Insert | ChangeKind::Update | ChangeKind::SnapshotRead => {
                    let Some([_, Value::Text(v)]) = change.after.as_deref() else {
                        panic!("an after image without text");
                    };
                    rows.insert(key(&change.after), v.to_string());
                }
                ChangeKind::Delete => {
                    rows.remove(&key(&change.before));
                }
                ChangeKind::Truncate => rows.clear(),
            }
        }
        Ok(())
    }
}

fn row(k: i64, v: &str) -> Option<Vec<Value>> {
    Some(vec![Value::Int(k), Value::Text(v.into())])
}

/// Changes the source at random until `until` fires, queueing each commit
/// for the log; returns how many changes it made.
async fn write(
    source: ModelSource,
    queue: mpsc::UnboundedSender<Vec<Record>>,
    seed: u64,
    until: CancellationToken,
) -> u32 {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut op = 0;
    while !until.is_cancelled() {
        op += 1;
        {
            let mut state = source.state.lock().unwrap();
            let (rows, lsn) = &mut *state;
            *lsn += 1;
            let position = SourcePosition::Postgres { lsn: *lsn };
            let key = rng.random_range(1..=600);
            let value = format!("v{op}");
            let (kind, before, after) = match rows.get(&key).cloned() {
                Some(old) if rng.random_bool(0.3) => {
                    rows.remove(&key);
                    (ChangeKind::Delete, row(key, &old), None)
                }
                Some(old) => {
                    rows.insert(key, value.clone());
                    (ChangeKind::Update, row(key, &old), row(key, &value))
                }
                None => {
                    rows.insert(key, value.clone());
                    (ChangeKind::Insert, None, row(key, &value))
                }
            };
            let change = Change {
                table: table("items"),
                kind,
                before,
                after,
                position: position.clone(),
                txid: None,
                commit_time_micros: 0,
            };
            let begin = Begin {
                txid: None,
                position: position.clone(),
                commit_time_micros: 0,
            };
            let commit = Commit {
                txid: None,
                position,
                commit_time_micros: 0,
            };
            let _ = queue.send(vec![
                Record::Begin(begin),
                Record::Change(change),
                Record::Commit(commit),
            ]);
        }
        if rng.random_bool(0.2) {
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..500))).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
    op
}

/// Appends the queued commits to the log, a little late and every commit
/// queued meanwhile in one append, as a source reader does: the log stays
/// close behind the source, which is where a copy applied late would go stale.
async fn ingest(log: ChangeLog, mut queue: mpsc::UnboundedReceiver<Vec<Record>>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    while let Some(mut records) = queue.recv().await {
        if rng.random_bool(0.1) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..3))).await;
        }
        while let Ok(more) = queue.try_recv() {
            records.extend(more);
        }
        log.append(records).await.unwrap();
    }
}

struct Run {
    source: ModelSource,
    target: Rows,
    log: ChangeLog,
    pipeline: PipelineHandle,
    queue: mpsc::UnboundedSender<Vec<Record>>,
    ingest: tokio::task::JoinHandle<()>,
    schema: Arc<TableSchema>,
}

/// A source of 400 rows, its log (schema first), and a pipeline into a target
/// that already holds a row the source never had.
async fn setup(dir: &std::path::Path, seed: u64) -> Run {
    let source = ModelSource::default();
    {
        let mut state = source.state.lock().unwrap();
        for k in 1..=400 {
            state.0.insert(k, format!("initial {k}"));
        }
    }
    let schema = Arc::new(schema("items"));
    let log = ChangeLog::open(dir.join("log"), LogConfig::default()).unwrap();
    log.append(vec![Record::Schema((*schema).clone())])
        .await
        .unwrap();
    let (queue, rx) = mpsc::unbounded_channel();
    let ingest = tokio::spawn(ingest(log.clone(), rx, seed));
    let target: Rows = Arc::new(Mutex::new(BTreeMap::from([(10_000, "stale".to_owned())])));
    let pipeline = Pipeline::new(log.clone(), config("backfill"), TableSink(target.clone()))
        .unwrap()
        .start()
        .await
        .unwrap();
    Run {
        source,
        target,
        log,
        pipeline,
        queue,
        ingest,
        schema,
    }
}

/// Waits for the log to hold every commit, pauses the pipeline at its end and
/// returns the target's rows.
async fn settle(run: Run) -> (BTreeMap<i64, String>, BTreeMap<i64, String>) {
    drop(run.queue);
    run.ingest.await.unwrap();
    run.pipeline
        .pause_at(run.log.offsets().durable)
        .await
        .unwrap();
    let target = run.target.lock().unwrap().clone();
    run.pipeline.shutdown().await.unwrap();
    (run.source.rows(), target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_under_concurrent_changes_ends_in_the_source_state() {
    for seed in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let run = setup(dir.path(), seed).await;
        let stop = CancellationToken::new();
        let writer = tokio::spawn(write(
            run.source.clone(),
            run.queue.clone(),
            seed,
            stop.clone(),
        ));
        let chunks = ModelChunks {
            source: run.source.clone(),
            schema: run.schema.clone(),
            chunk_rows: 37,
        };
        let mut config = BackfillConfig::new(dir.path().join("items.backfill"));
        config.destination = Destination::TruncateFirst;
        if seed % 2 == 0 {
            // Chunks wait for each other, so the source changes between them.
            config.max_rows_per_second = Some(4000);
        } else {
            // Holds of a few chunks, each read while the last is applied.
            config.max_hold = Duration::from_millis(4);
        }
        let mut backfill = Backfill::new(chunks, config);
        let summary = backfill
            .run(&run.pipeline, &CancellationToken::new())
            .await
            .unwrap();
        assert!(summary.done, "seed {seed}");
        assert!(
            summary.rows >= 300,
            "seed {seed}: {} rows copied",
            summary.rows
        );
        stop.cancel();
        let changes = writer.await.unwrap();
        assert!(
            changes > 20,
            "seed {seed}: {changes} changes; the source changed throughout"
        );
        let (source, target) = settle(run).await;
        assert_eq!(
            target, source,
            "seed {seed}: the target differs from the source"
        );
        assert!(
            !target.contains_key(&10_000),
            "truncate-first removed the stale row"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_backfill_resumes_from_its_progress_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = setup(dir.path(), 99).await;
    let stop_writer = CancellationToken::new();
    let writer = tokio::spawn(write(
        run.source.clone(),
        run.queue.clone(),
        99,
        stop_writer.clone(),
    ));
    let chunks = || ModelChunks {
        source: run.source.clone(),
        schema: run.schema.clone(),
        chunk_rows: 25,
    };
    let path = dir.path().join("items.backfill");
    // One chunk a hold, so the cancel lands between chunks, not after the last.
    let mut one_at_a_time = BackfillConfig::new(&path);
    one_at_a_time.max_hold = Duration::ZERO;
    let mut first = Backfill::new(chunks(), one_at_a_time);
    let cancel = CancellationToken::new();
    let mut progress = first.subscribe();
    let stop = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let _ = progress.wait_for(|p| p.chunks >= 3).await;
            cancel.cancel();
        }
    });
    let summary = first.run(&run.pipeline, &cancel).await.unwrap();
    stop.await.unwrap();
    assert!(!summary.done);
    assert!(summary.chunks >= 3);
    let saved: BackfillProgress<i64> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved.chunks, summary.chunks);
    assert!(saved.estimated_rows.is_some_and(|n| n > 300));

    let mut second = Backfill::new(chunks(), BackfillConfig::new(&path));
    let resumed = second
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(resumed.done);
    assert!(
        resumed.chunks > summary.chunks,
        "the second run went on from the saved chunk"
    );
    // A finished backfill does nothing more.
    let again = second
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (again.done, again.chunks, again.position),
        (true, resumed.chunks, None)
    );

    stop_writer.cancel();
    writer.await.unwrap();
    let (source, mut target) = settle(run).await;
    assert_eq!(
        target.remove(&10_000).as_deref(),
        Some("stale"),
        "keep-and-upsert keeps target rows"
    );
    assert_eq!(target, source);
}

#[tokio::test]
async fn copied_rows_need_the_pipeline_paused_where_they_were_read_and_in_its_filter() {
    use cdc_core::pipeline::PipelineError;
    let dir = tempfile::tempdir().unwrap();
    let run = setup(dir.path(), 1).await;
    let read = |k: i64| Change {
        table: table("items"),
        kind: ChangeKind::SnapshotRead,
        before: None,
        after: row(k, "copied"),
        position: SourcePosition::None,
        txid: None,
        commit_time_micros: 0,
    };
    let err = run
        .pipeline
        .apply_copied(0, run.schema.clone(), vec![read(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::NotPaused), "{err}");

    let mut filtered = config("filtered");
    filtered.tables =
        serde_json::from_str(r#"{"include": [{"schema": "shop", "table": "items"}]}"#).unwrap();
    let target: Rows = Arc::default();
    let pipeline = Pipeline::new(run.log.clone(), filtered, TableSink(target.clone()))
        .unwrap()
        .start()
        .await
        .unwrap();
    // Just started, it may hold before the schema record: copied rows need none.
    let at = pipeline.pause_now().await.unwrap();
    assert!(at <= run.log.offsets().durable);
    let other = Arc::new(schema("elsewhere"));
    let mut outside = read(1);
    outside.table = other.table.clone();
    let err = pipeline
        .apply_copied(at, other, vec![outside])
        .await
        .unwrap_err();
    assert!(
        matches!(err, PipelineError::CopyOutsideFilter { .. }),
        "{err}"
    );
    pipeline
        .apply_copied(at, run.schema.clone(), vec![read(1)])
        .await
        .unwrap();

    // Resumed, it applies a later change; rows read at the old offset are refused.
    let mut later = pipeline_support::txn(1, &[("items", 2)]);
    later.truncate(3);
    run.log.append(later).await.unwrap();
    pipeline.resume().await.unwrap();
    let now = pipeline.pause_at(run.log.offsets().durable).await.unwrap();
    let err = pipeline
        .apply_copied(at, run.schema.clone(), vec![read(3)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, PipelineError::CopyPassed { read_at, paused_at } if read_at == at && paused_at == now),
        "{err}"
    );
    pipeline.shutdown().await.unwrap();
    let rows = target.lock().unwrap().clone();
    assert_eq!(
        rows,
        BTreeMap::from([(1, "copied".to_owned()), (2, "row 2".to_owned())])
    );
    run.pipeline.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfills_run_together_take_turns_on_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let run = setup(dir.path(), 7).await;
    let stop = CancellationToken::new();
    let writer = tokio::spawn(write(
        run.source.clone(),
        run.queue.clone(),
        7,
        stop.clone(),
    ));
    let backfill = |name: &str, chunk_rows| {
        let chunks = ModelChunks {
            source: run.source.clone(),
            schema: run.schema.clone(),
            chunk_rows,
        };
        Backfill::new(chunks, BackfillConfig::new(dir.path().join(name)))
    };
    let backfills = vec![
        backfill("a.backfill", 13),
        backfill("b.backfill", 17),
        backfill("c.backfill", 29),
    ];
    let never = CancellationToken::new();
    let outcomes = run_all(backfills, 2, &run.pipeline, &never).await;
    assert_eq!(outcomes.len(), 3);
    for outcome in outcomes {
        assert!(outcome.unwrap().done);
    }
    stop.cancel();
    writer.await.unwrap();
    let (source, mut target) = settle(run).await;
    target.remove(&10_000);
    assert_eq!(target, source);
}

#[tokio::test]
async fn a_table_the_source_reader_does_not_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = setup(dir.path(), 3).await;
    let backfill = || {
        let chunks = ModelChunks {
            source: run.source.clone(),
            schema: run.schema.clone(),
            chunk_rows: 100,
        };
        Backfill::new(
            chunks,
            BackfillConfig::new(dir.path().join("items.backfill")),
        )
    };
    run.log.declare_tables(&[table("other")]);
    let err = backfill()
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, BackfillError::NotStreamed { ref table } if table.contains("items")),
        "{err}"
    );
    assert!(
        !dir.path().join("items.backfill").exists(),
        "nothing was copied"
    );

    run.log.declare_tables(&[table("other"), table("items")]);
    let summary = backfill()
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    let (source, mut target) = settle(run).await;
    target.remove(&10_000);
    assert_eq!(target, source);
}
