//! The source runner against a real change log and a scripted source.

mod pipeline_support;

use std::sync::Arc;

use cdc_core::event::{Record, SourcePosition};
use cdc_core::ingest::{self, IngestStop};
use cdc_core::log::{FaultFs, FaultPlan};
use cdc_core::pipeline::PipelineError;
use cdc_core::{ChangeLog, LogConfig, SourceBatch};
use pipeline_support::*;
use tokio_util::sync::CancellationToken;

fn batch(lsns: &[u64]) -> SourceBatch {
    let records = lsns
        .iter()
        .flat_map(|&l| txn(l, &[("orders", l as i64)]))
        .collect();
    SourceBatch {
        records,
        position: pg(*lsns.last().unwrap()),
    }
}

fn script() -> Vec<SourceBatch> {
    vec![
        batch(&[10, 20]),
        batch(&[30]),
        batch(&[40, 50]),
        batch(&[60]),
    ]
}

fn all_records(log: &ChangeLog) -> Vec<Record> {
    let end = log.offsets().durable;
    let entries = log.read(0, end as usize).unwrap();
    entries.iter().map(|e| e.record().unwrap()).collect()
}

fn expected(lsns: &[u64]) -> Vec<Record> {
    lsns.iter()
        .flat_map(|&l| txn(l, &[("orders", l as i64)]))
        .collect()
}

#[tokio::test]
async fn every_batch_reaches_the_log_in_order_and_is_acknowledged_only_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut source = ScriptedSource::new(&log, script());
    let observed = source.observed.clone();

    let summary = ingest::run(&mut source, &log, &CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(summary.reason, IngestStop::SourceEnded);
    assert_eq!(
        (summary.batches, summary.appended, summary.skipped),
        (4, 18, 0)
    );
    assert_eq!(summary.last_position, Some(pg(60)));
    assert_eq!(all_records(&log), expected(&[10, 20, 30, 40, 50, 60]));
    let observed = observed.lock().unwrap();
    assert_eq!(observed.starts, vec![None]);
    assert_eq!(observed.acks, vec![pg(20), pg(30), pg(50), pg(60)]);
    assert!(!observed.acked_before_durable);
}

#[tokio::test]
async fn a_crash_between_append_and_acknowledge_appends_no_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    // The acknowledgement of the third batch (lsn 40, 50) fails after its append, and
    // the source, like a slot, re-delivers from its last acknowledged position (30).
    let mut source = ScriptedSource::new(&log, script())
        .redelivering_unacknowledged()
        .failing_ack_of(2);
    let observed = source.observed.clone();

    let err = ingest::run(&mut source, &log, &CancellationToken::new())
        .await
        .unwrap_err();
    let PipelineError::Source { source: cause } = err else {
        panic!("{err:?}")
    };
    let io = cause
        .downcast_ref::<std::io::Error>()
        .expect("the source's own error is kept");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
    // The failed batch was durable before its ack failed. The next one may have
    // been queued behind it already (appends are pipelined); if so, it is durable
    // too when the runner returns, never still in flight.
    let logged = log.last_source_position();
    assert!(
        logged == Some(pg(50)) || logged == Some(pg(60)),
        "{logged:?}"
    );
    assert_eq!(observed.lock().unwrap().acks, vec![pg(20), pg(30)]);

    let summary = ingest::run(&mut source, &log, &CancellationToken::new())
        .await
        .unwrap();
    let logged_before = if logged == Some(pg(60)) { 9 } else { 6 };
    assert_eq!(
        (summary.skipped, summary.appended),
        (logged_before, 9 - logged_before),
        "what the log had is dropped from the re-delivery, the rest appended"
    );
    assert_eq!(all_records(&log), expected(&[10, 20, 30, 40, 50, 60]));
    let observed = observed.lock().unwrap();
    assert_eq!(observed.starts, vec![None, logged]);
    assert_eq!(observed.acks, vec![pg(20), pg(30), pg(50), pg(60)]);
    assert!(!observed.acked_before_durable);
}

#[tokio::test]
async fn a_restart_resumes_after_the_last_durable_position_of_the_reopened_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let first: Vec<_> = script().into_iter().take(2).collect();
    ingest::run(
        &mut ScriptedSource::new(&log, first),
        &log,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    log.close().await.unwrap();
    drop(log);

    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut source = ScriptedSource::new(&log, script());
    let observed = source.observed.clone();
    let summary = ingest::run(&mut source, &log, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(observed.lock().unwrap().starts, vec![Some(pg(30))]);
    assert_eq!(summary.appended, 9);
    assert_eq!(all_records(&log), expected(&[10, 20, 30, 40, 50, 60]));
}

#[tokio::test]
async fn shutdown_stops_the_runner_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut source = ScriptedSource::new(&log, script()).hanging_at_end();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let watcher = log.clone();
    tokio::spawn(async move {
        wait_until("all batches appended", || {
            watcher.last_source_position() == Some(pg(60))
        })
        .await;
        stop.cancel();
    });

    let summary = ingest::run(&mut source, &log, &shutdown).await.unwrap();
    assert_eq!(summary.reason, IngestStop::Shutdown);
    assert_eq!(all_records(&log), expected(&[10, 20, 30, 40, 50, 60]));
    assert_eq!(source.observed.lock().unwrap().acks.len(), 4);
}

/// Cancels `shutdown` once `position` is durable in `log`, or after 20 s, and
/// answers whether it became durable. Not `wait_until`: the runner must be
/// stopped even when the position never becomes durable.
fn stop_once_durable(
    log: &ChangeLog,
    position: SourcePosition,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<bool> {
    let stop = shutdown.clone();
    let watcher = log.clone();
    tokio::spawn(async move {
        let durable =
            holds_within_20s(|| watcher.last_source_position() == Some(position.clone())).await;
        stop.cancel();
        durable
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batches_become_durable_and_acknowledged_while_the_source_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    // Big enough to be encoded on tasks of their own, and the last one is
    // followed by nothing: the source then waits for changes that never come.
    let rows: Vec<(&str, i64)> = (0..600).map(|i| ("orders", i)).collect();
    let big = |lsn| SourceBatch {
        records: txn(lsn, &rows),
        position: pg(lsn),
    };
    let mut source = ScriptedSource::new(&log, vec![big(10), big(20), big(30)]).hanging_at_end();
    let shutdown = CancellationToken::new();
    let check = stop_once_durable(&log, pg(30), &shutdown);

    let summary = ingest::run(&mut source, &log, &shutdown).await.unwrap();
    assert!(
        check.await.unwrap(),
        "the last batch waited for the source's next batch to become durable"
    );
    assert_eq!(summary.reason, IngestStop::Shutdown);
    assert_eq!(summary.appended, 3 * 602);
    let logged = all_records(&log);
    let expected: Vec<_> = [10, 20, 30]
        .into_iter()
        .flat_map(|l| txn(l, &rows))
        .collect();
    assert_eq!(logged, expected);
    let observed = source.observed.lock().unwrap();
    assert_eq!(observed.acks, vec![pg(10), pg(20), pg(30)]);
    assert!(!observed.acked_before_durable);
}

/// Appends in the log's segment files: one batch, with its magic number, each.
fn appends_in(dir: &std::path::Path) -> usize {
    let magic = 0xCDC0_BA7Cu32.to_le_bytes();
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.windows(4).filter(|w| *w == magic).count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_batches_ready_together_share_appends_and_each_is_acknowledged_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    // 300 one-row transactions, all ready at once, then an idle source.
    let lsns: Vec<u64> = (1..=300).map(|i| i * 10).collect();
    let script = lsns.iter().map(|&l| batch(&[l])).collect();
    let mut source = ScriptedSource::new(&log, script).hanging_at_end();
    let shutdown = CancellationToken::new();
    let check = stop_once_durable(&log, pg(3000), &shutdown);

    let summary = ingest::run(&mut source, &log, &shutdown).await.unwrap();
    assert!(
        check.await.unwrap(),
        "gathered batches waited for the source's next batch to become durable"
    );
    assert_eq!(summary.batches, 300);
    assert_eq!(all_records(&log), expected(&lsns));
    let observed = source.observed.lock().unwrap();
    let positions: Vec<_> = lsns.iter().map(|&l| pg(l)).collect();
    assert_eq!(observed.acks, positions);
    assert!(!observed.acked_before_durable);
    let appends = appends_in(dir.path());
    assert!(
        appends < 30,
        "{appends} appends for 300 batches that were ready together"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reads_on_while_appends_wait_for_the_disk_and_acknowledges_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(FaultPlan::default());
    let log =
        ChangeLog::open_with_fs(dir.path(), LogConfig::default(), Arc::new(fs.clone())).unwrap();
    fs.set_plan(FaultPlan {
        hold_syncs: true,
        ..FaultPlan::default()
    });
    let mut source = ScriptedSource::new(&log, script()).hanging_at_end();
    let observed = source.observed.clone();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let watcher = log.clone();
    let check = tokio::spawn(async move {
        // Not `wait_until`: the disk must be released even when this fails.
        let read_to_end = holds_within_20s(|| observed.lock().unwrap().delivered == 4).await;
        // The disk has not finished one fsync, yet the source was read to its end.
        let held = (
            read_to_end,
            watcher.offsets().durable == 0,
            observed.lock().unwrap().acks.is_empty(),
        );
        fs.set_plan(FaultPlan::default());
        wait_until("all batches durable", || {
            watcher.last_source_position() == Some(pg(60))
        })
        .await;
        stop.cancel();
        held
    });

    let summary = ingest::run(&mut source, &log, &shutdown).await.unwrap();
    let (read_to_end, nothing_durable, none_acknowledged) = check.await.unwrap();
    assert!(
        read_to_end,
        "the runner waited for an fsync before reading the next batch"
    );
    assert!(nothing_durable && none_acknowledged);
    assert_eq!(summary.reason, IngestStop::Shutdown);
    assert_eq!(all_records(&log), expected(&[10, 20, 30, 40, 50, 60]));
    let observed = source.observed.lock().unwrap();
    assert_eq!(observed.acks, vec![pg(20), pg(30), pg(50), pg(60)]);
    assert!(!observed.acked_before_durable);
}

#[tokio::test]
async fn a_pipeline_follows_the_runner_live_into_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let handle =
        cdc_core::pipeline::Pipeline::new(log.clone(), config("live"), FileSink::new(&out))
            .unwrap()
            .start()
            .await
            .unwrap();
    let mut script = script();
    script[0]
        .records
        .insert(0, Record::Schema(schema("orders")));
    let mut source = ScriptedSource::new(&log, script).hanging_at_end();
    let shutdown = CancellationToken::new();
    let runner = {
        let (log, shutdown) = (log.clone(), shutdown.clone());
        tokio::spawn(async move { ingest::run(&mut source, &log, &shutdown).await })
    };

    wait_until("the source to be ingested", || {
        log.last_source_position() == Some(pg(60))
    })
    .await;
    let end = log.offsets().durable;
    wait_until("the pipeline to deliver it", || handle.next_offset() == end).await;
    shutdown.cancel();
    runner.await.unwrap().unwrap();
    handle.shutdown().await.unwrap();

    let mut logged = vec![Record::Schema(schema("orders"))];
    logged.extend(expected(&[10, 20, 30, 40, 50, 60]));
    assert_eq!(all_records(&log), logged);
    let appended = Appended {
        records: (0..).zip(logged).collect(),
    };
    let lines = FileSink::lines(&out);
    assert_eq!(file_changes(&lines), appended.changes(0..end, |_| true));
    appended.assert_whole_transactions(&lines);
}
