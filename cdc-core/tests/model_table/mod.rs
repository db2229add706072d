//! A model source table for the backfill and verification tests: a table
//! whose changes are logged with a lag (as a real source's are), read in
//! chunks, and a target table a pipeline applies changes to.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cdc_core::backfill::{ChunkSource, CopiedChunk};
use cdc_core::event::{
    Begin, Change, ChangeKind, Commit, Record, Row, SourcePosition, TableSchema, Value,
};
use cdc_core::ingest::CancellationToken;
use cdc_core::pipeline::{Pipeline, PipelineHandle};
use cdc_core::verify::TableReader;
use cdc_core::{ChangeLog, LogConfig, Sink, SinkBatch, SinkEvent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::pipeline_support::{config, schema, table};

pub type Rows = Arc<Mutex<BTreeMap<i64, String>>>;

/// The source: its rows and its commit counter, changed under one lock so
/// the order of the queued transactions is the commit order.
#[derive(Clone, Default)]
pub struct ModelSource {
    pub state: Arc<Mutex<(BTreeMap<i64, String>, u64)>>,
}

impl ModelSource {
    pub fn rows(&self) -> BTreeMap<i64, String> {
        self.state.lock().unwrap().0.clone()
    }
}

pub struct ModelChunks {
    pub source: ModelSource,
    pub schema: Arc<TableSchema>,
    pub chunk_rows: usize,
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
pub struct TableSink(pub Rows);

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

pub fn row(k: i64, v: &str) -> Option<Vec<Value>> {
    Some(vec![Value::Int(k), Value::Text(v.into())])
}

/// Changes the source at random until `until` fires, queueing each commit
/// for the log; returns how many changes it made.
pub async fn write(
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
            let now = now_micros();
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
                commit_time_micros: now,
            };
            let begin = Begin {
                txid: None,
                position: position.clone(),
                commit_time_micros: now,
            };
            let commit = Commit {
                txid: None,
                position,
                commit_time_micros: now,
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
pub async fn ingest(log: ChangeLog, mut queue: mpsc::UnboundedReceiver<Vec<Record>>, seed: u64) {
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

pub struct Run {
    pub source: ModelSource,
    pub target: Rows,
    pub log: ChangeLog,
    pub pipeline: PipelineHandle,
    pub queue: mpsc::UnboundedSender<Vec<Record>>,
    pub ingest: tokio::task::JoinHandle<()>,
    pub schema: Arc<TableSchema>,
}

/// A source of 400 rows, its log (schema first), and a pipeline into a target
/// that already holds a row the source never had.
pub async fn setup(dir: &std::path::Path, seed: u64) -> Run {
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
pub async fn settle(run: Run) -> (BTreeMap<i64, String>, BTreeMap<i64, String>) {
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

pub fn int_key(key: &[Value]) -> i64 {
    match key {
        [Value::Int(k)] => *k,
        other => panic!("not an Int key: {other:?}"),
    }
}

pub fn as_row(k: i64, v: &str) -> Row {
    vec![Value::Int(k), Value::Text(v.into())]
}

/// The source table, read as a query would: after a while, at its end.
pub struct SourceTable {
    pub source: ModelSource,
    pub schema: Arc<TableSchema>,
}

#[async_trait]
impl TableReader for SourceTable {
    type Error = std::io::Error;

    fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    async fn read_range(
        &mut self,
        after: Option<&[Value]>,
        through: Option<&[Value]>,
        limit: usize,
    ) -> std::io::Result<Vec<Row>> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let state = self.source.state.lock().unwrap();
        let from = after.map_or(i64::MIN, |k| int_key(k) + 1);
        let to = through.map_or(i64::MAX, int_key);
        Ok(state
            .0
            .range(from..=to)
            .take(limit)
            .map(|(k, v)| as_row(*k, v))
            .collect())
    }

    async fn read_key(&mut self, key: &[Value]) -> std::io::Result<Option<Row>> {
        let state = self.source.state.lock().unwrap();
        let k = int_key(key);
        Ok(state.0.get(&k).map(|v| as_row(k, v)))
    }

    async fn position(&mut self) -> std::io::Result<SourcePosition> {
        let lsn = self.source.state.lock().unwrap().1;
        Ok(SourcePosition::Postgres { lsn })
    }
}

/// The pipeline's target table; ordered by the keys' text when `text_order`
/// (as a sink with another collation would order text keys).
pub struct TargetTable {
    pub rows: Rows,
    pub schema: Arc<TableSchema>,
    pub text_order: bool,
}

#[async_trait]
impl TableReader for TargetTable {
    type Error = std::io::Error;

    fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    async fn read_range(
        &mut self,
        after: Option<&[Value]>,
        through: Option<&[Value]>,
        limit: usize,
    ) -> std::io::Result<Vec<Row>> {
        let rows = self.rows.lock().unwrap();
        let order = |k: i64| {
            if self.text_order {
                (0, k.to_string())
            } else {
                (k, String::new())
            }
        };
        let after = after.map(|k| order(int_key(k)));
        let through = through.map(|k| order(int_key(k)));
        let mut keys: Vec<_> = rows
            .keys()
            .filter(|&&k| after.as_ref().is_none_or(|a| order(k) > *a))
            .filter(|&&k| through.as_ref().is_none_or(|t| order(k) <= *t))
            .copied()
            .collect();
        keys.sort_by_key(|&k| order(k));
        Ok(keys
            .into_iter()
            .take(limit)
            .map(|k| as_row(k, &rows[&k]))
            .collect())
    }

    async fn read_key(&mut self, key: &[Value]) -> std::io::Result<Option<Row>> {
        let k = int_key(key);
        Ok(self.rows.lock().unwrap().get(&k).map(|v| as_row(k, v)))
    }
}

/// Logs a heartbeat at the source's position, as a real source does when idle.
pub fn heartbeat(run: &Run) {
    let lsn = run.source.state.lock().unwrap().1;
    let beat = cdc_core::event::Heartbeat {
        position: SourcePosition::Postgres { lsn },
        time_micros: now_micros(),
    };
    run.queue.send(vec![Record::Heartbeat(beat)]).unwrap();
}

/// The wall clock in microseconds since the Unix epoch, as sources stamp
/// commits (the pipeline's lag is measured from it).
pub fn now_micros() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_micros()).unwrap()
}
