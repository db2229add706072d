//! Transactions too large to buffer: a source delivers one in parts, the log
//! appends the parts, a crash between parts is repaired by the re-delivered copy,
//! and a pipeline applies an oversized transaction in parts, exactly once, also
//! when it restarts in the middle of one.

mod pipeline_support;

use std::cmp::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cdc_core::event::{Record, SourcePosition, TableName};
use cdc_core::ingest;
use cdc_core::pipeline::{Pipeline, PipelineError};
use cdc_core::{ChangeLog, LogConfig, Source, SourceBatch};
use pipeline_support::*;
use tokio_util::sync::CancellationToken;

/// Rows of the split transaction at lsn 20.
const SPLIT_ROWS: i64 = 8;

/// The stream: a small transaction (10), a transaction of `SPLIT_ROWS` changes
/// (20) in three parts, another small one (30).
fn stream() -> Vec<SourceBatch> {
    let split = txn(
        20,
        &(1..=SPLIT_ROWS)
            .map(|id| ("orders", id))
            .collect::<Vec<_>>(),
    );
    let (begin_and_first, rest) = split.split_at(4);
    let (middle, last) = rest.split_at(3);
    let mut first_part = vec![Record::Schema(schema("orders"))];
    first_part.extend_from_slice(begin_and_first);
    vec![
        SourceBatch {
            records: [
                vec![Record::Schema(schema("orders"))],
                txn(10, &[("orders", 100)]),
            ]
            .concat(),
            position: pg(10),
        },
        SourceBatch {
            records: first_part,
            position: pg(10),
        },
        SourceBatch {
            records: middle.to_vec(),
            position: pg(10),
        },
        SourceBatch {
            records: last.to_vec(),
            position: pg(20),
        },
        SourceBatch {
            records: txn(30, &[("orders", 300)]),
            position: pg(30),
        },
    ]
}

/// Plays `stream()` like a replication slot: `start(p)` re-delivers from the first
/// batch holding a record after `p`, so a split transaction comes again whole from
/// its `Begin` (with its schema re-sent). Fails once after `crash_after` batches.
struct SlotLikeSource {
    tables: Vec<TableName>,
    next: usize,
    crash_after: Option<usize>,
    delivered: usize,
    acks: Arc<Mutex<Vec<SourcePosition>>>,
}

#[async_trait]
impl Source for SlotLikeSource {
    type Error = std::io::Error;

    fn tables(&self) -> &[TableName] {
        &self.tables
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<(), Self::Error> {
        self.next = stream()
            .iter()
            .position(|batch| {
                batch.records.iter().any(|r| {
                    matches!(r, Record::Begin(_))
                        && r.position().is_some_and(|p| {
                            resume_after
                                .as_ref()
                                .is_none_or(|a| p.compare(a) == Some(Ordering::Greater))
                        })
                })
            })
            .unwrap_or(usize::MAX);
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, Self::Error> {
        if self.crash_after == Some(self.delivered) {
            self.crash_after = None;
            return Err(std::io::Error::other("connection lost"));
        }
        let batch = stream().get(self.next).cloned();
        self.next = self.next.saturating_add(1);
        self.delivered += 1;
        Ok(batch)
    }

    async fn acknowledge(&mut self, position: &SourcePosition) -> Result<(), Self::Error> {
        self.acks.lock().unwrap().push(position.clone());
        Ok(())
    }
}

fn all_records(log: &ChangeLog) -> Vec<Record> {
    let end = log.offsets().durable;
    let entries = log.read(0, end as usize).unwrap();
    entries.iter().map(|e| e.record().unwrap()).collect()
}

fn expected_log() -> Vec<Record> {
    stream().into_iter().flat_map(|b| b.records).collect()
}

#[tokio::test]
async fn a_crash_between_parts_leaves_one_copy_of_the_transaction_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let mut source = SlotLikeSource {
        tables: vec![table("orders")],
        next: 0,
        crash_after: Some(3),
        delivered: 0,
        acks: acks.clone(),
    };

    let err = ingest::run(&mut source, &log, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::Source { .. }), "{err:?}");
    assert_eq!(
        log.last_source_position(),
        Some(pg(10)),
        "the split transaction is not complete"
    );
    log.close().await.unwrap();

    // Reopen as after a crash: the log ends inside transaction 20.
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let summary = ingest::run(&mut source, &log, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        summary.skipped, 8,
        "the re-sent schema, the Begin and the six logged changes are skipped"
    );
    assert_eq!(all_records(&log), expected_log());
    assert_eq!(log.last_source_position(), Some(pg(30)));
    let acks = acks.lock().unwrap();
    assert!(
        acks.windows(2)
            .all(|w| w[0].compare(&w[1]) != Some(Ordering::Greater)),
        "acknowledgements never go back: {acks:?}"
    );
    assert_eq!(acks.last(), Some(&pg(30)));
}

#[tokio::test]
async fn a_pipeline_applies_an_oversized_transaction_in_parts_exactly_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    for batch in stream() {
        log.append(batch.records).await.unwrap();
    }
    let sink_dir = dir.path().join("sink");
    let mut config = config("split");
    config.max_batch_records = 3;
    config.max_transaction_records = 3;

    // Batches: [schema, txn 10, schema], [changes 1-3 of txn 20], [changes 4-6]...
    // The third fails, so the sink holds the first part of txn 20 only.
    let failing = FileSink::new(&sink_dir).failing_at_batch(3);
    let handle = Pipeline::new(log.clone(), config.clone(), failing)
        .unwrap()
        .start()
        .await
        .unwrap();
    let err = handle.join().await.unwrap_err();
    assert!(matches!(err, PipelineError::Sink { .. }), "{err:?}");
    let stored = FileSink::stored(&sink_dir).expect("two batches were applied");
    assert_eq!(stored, 8, "the sink stopped inside transaction 20");

    // Restart: resumes after the stored offset, which may be inside transaction 20.
    let handle = run_to_end(&log, config, FileSink::new(&sink_dir)).await;
    handle.shutdown().await.unwrap();

    let lines = FileSink::lines(&sink_dir);
    let ids: Vec<i64> = file_changes(&lines)
        .iter()
        .map(|(_, change)| match change.after.as_deref() {
            Some([cdc_core::event::Value::Int(id), ..]) => *id,
            other => panic!("unexpected row {other:?}"),
        })
        .collect();
    let mut expected = vec![100];
    expected.extend(1..=SPLIT_ROWS);
    expected.push(300);
    assert_eq!(ids, expected, "every change once, in order");
    let batch_ends = lines
        .iter()
        .filter(|l| matches!(l, Line::BatchEnd { .. }))
        .count();
    assert!(
        batch_ends >= 4,
        "the transaction went in parts: {batch_ends} batches"
    );
}
