//! Controlling a running pipeline: pause at an exact offset, lag, resume,
//! shutdown, errors.

mod pipeline_support;

use std::time::Duration;

use cdc_core::event::Record;
use cdc_core::pipeline::{Pipeline, PipelineError, PipelineHandle, PipelineState, StopReason};
use cdc_core::{ChangeLog, LogConfig};
use pipeline_support::*;

/// A schema, then `count` one-row transactions (3 records each) from `first_lsn`.
async fn fill(log: &ChangeLog, appended: &mut Appended, first_lsn: u64, count: u64) -> u64 {
    if appended.records.is_empty() {
        appended
            .append(log, vec![Record::Schema(schema("orders"))])
            .await;
    }
    let mut end = log.offsets().durable;
    for lsn in first_lsn..first_lsn + count {
        end = appended
            .append(log, txn(lsn, &[("orders", lsn as i64)]))
            .await;
    }
    end
}

async fn start(log: &ChangeLog, sink: FileSink) -> PipelineHandle {
    Pipeline::new(log.clone(), config("p"), sink)
        .unwrap()
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn pause_at_an_exact_offset_applies_everything_before_it_and_holds() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    let end = fill(&log, &mut appended, 1, 10).await;
    let at = 1 + 3 * 6; // after the schema and six transactions
    let handle = start(&log, FileSink::new(&out)).await;

    assert_eq!(handle.pause_at(at).await.unwrap(), at);

    assert_eq!(handle.state(), PipelineState::Paused { at });
    assert_eq!(handle.next_offset(), at);
    assert_eq!(
        file_changes(&FileSink::lines(&out)),
        appended.changes(0..at, |_| true)
    );
    assert_eq!(log.cursors().get("p").unwrap(), Some(at));
    let lag = handle.lag();
    assert_eq!(lag.events_behind, end - at);
    let years = Duration::from_secs(50 * 365 * 24 * 3600);
    assert!(
        lag.time_behind.unwrap() > years,
        "commit times are in 1970: {lag:?}"
    );

    // Held: new records are not applied until resumed.
    let end = fill(&log, &mut appended, 11, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handle.next_offset(), at);
    assert_eq!(
        file_changes(&FileSink::lines(&out)),
        appended.changes(0..at, |_| true)
    );

    handle.resume().await.unwrap();
    wait_until("the resumed pipeline to catch up", || {
        handle.next_offset() == end
    })
    .await;
    assert_eq!(handle.state(), PipelineState::Running);
    assert_eq!(handle.lag().events_behind, 0);
    assert_eq!(handle.lag().time_behind, Some(Duration::ZERO));
    handle.shutdown().await.unwrap();
    let lines = FileSink::lines(&out);
    assert_eq!(file_changes(&lines), appended.changes(0..end, |_| true));
    appended.assert_whole_transactions(&lines);
}

#[tokio::test]
async fn a_pause_inside_a_transaction_holds_right_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let mut appended = Appended::default();
    fill(&log, &mut appended, 1, 5).await;
    let handle = start(&log, FileSink::new(&dir.path().join("sink"))).await;
    // Offset 5 is the change of the second transaction (Begin at 4, Commit at 6).
    assert_eq!(handle.pause_at(5).await.unwrap(), 7);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pause_at_a_future_offset_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    let now = fill(&log, &mut appended, 1, 2).await;
    let handle = start(&log, FileSink::new(&out)).await;
    let appender = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut appended = Appended::default();
            for lsn in 3..6 {
                appended
                    .append(&log, txn(lsn, &[("orders", lsn as i64)]))
                    .await;
            }
        })
    };
    assert_eq!(handle.pause_at(now + 6).await.unwrap(), now + 6);
    appender.await.unwrap();
    assert_eq!(
        file_changes(&FileSink::lines(&out)).last().unwrap().0,
        now + 4
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_pause_requests_hold_at_the_lower_offset_then_at_the_higher() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    fill(&log, &mut appended, 1, 6).await;
    let (low, high) = (1 + 3 * 2, 1 + 3 * 5);
    let handle = start(&log, FileSink::new(&out)).await;

    let (first, second) = tokio::join!(handle.pause_at(high), async {
        let at = handle.pause_at(low).await.unwrap();
        assert_eq!(handle.state(), PipelineState::Paused { at });
        assert_eq!(
            file_changes(&FileSink::lines(&out)),
            appended.changes(0..low, |_| true)
        );
        handle.resume().await.unwrap();
        at
    });

    assert_eq!((second, first.unwrap()), (low, high));
    assert_eq!(handle.state(), PipelineState::Paused { at: high });
    assert_eq!(
        file_changes(&FileSink::lines(&out)),
        appended.changes(0..high, |_| true)
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pause_at_an_offset_already_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let mut appended = Appended::default();
    let end = fill(&log, &mut appended, 1, 3).await;
    let handle = run_to_end(&log, config("p"), FileSink::new(&dir.path().join("sink"))).await;
    let err = handle.pause_at(1).await.unwrap_err();
    assert!(
        matches!(err, PipelineError::PausePassed { requested: 1, next } if next == end),
        "{err:?}"
    );
    assert_eq!(handle.state(), PipelineState::Running);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_applies_completed_transactions_and_commits_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    let mut cfg = config("p");
    // Nothing flushes by size or time: only the shutdown does.
    cfg.max_batch_records = 10_000;
    cfg.max_batch_delay = Duration::from_secs(3600);
    let handle = Pipeline::new(log.clone(), cfg.clone(), FileSink::new(&out))
        .unwrap()
        .start()
        .await
        .unwrap();
    fill(&log, &mut appended, 1, 4).await;
    tokio::time::sleep(Duration::from_millis(100)).await; // let it read; asserted either way

    let summary = handle.shutdown().await.unwrap();

    assert_eq!(summary.reason, StopReason::Shutdown);
    assert_eq!(log.cursors().get("p").unwrap(), Some(summary.next_offset));
    let lines = FileSink::lines(&out);
    assert_eq!(
        file_changes(&lines),
        appended.changes(0..summary.next_offset, |_| true)
    );
    appended.assert_whole_transactions(&lines);

    let end = log.offsets().durable;
    cfg.max_batch_delay = Duration::from_millis(10);
    run_to_end(&log, cfg, FileSink::new(&out))
        .await
        .shutdown()
        .await
        .unwrap();
    assert_eq!(
        file_changes(&FileSink::lines(&out)),
        appended.changes(0..end, |_| true)
    );
}

#[tokio::test]
async fn closing_the_log_stops_the_pipeline_after_its_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    let end = fill(&log, &mut appended, 1, 3).await;
    let handle = start(&log, FileSink::new(&out)).await;
    log.close().await.unwrap();
    let summary = handle.join().await.unwrap();
    assert_eq!(
        (summary.reason, summary.next_offset),
        (StopReason::LogClosed, end)
    );
    assert_eq!(
        file_changes(&FileSink::lines(&out)),
        appended.changes(0..end, |_| true)
    );
}

#[tokio::test]
async fn a_sink_failure_stops_the_pipeline_and_a_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    let end = fill(&log, &mut appended, 1, 8).await;
    let handle = start(&log, FileSink::new(&out).failing_at_batch(2)).await;

    let err = handle.join().await.unwrap_err();
    let PipelineError::Sink {
        last_offset,
        source,
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(source.downcast_ref::<std::io::Error>().is_some());
    let applied = FileSink::stored(&out).unwrap();
    assert!(applied < last_offset);
    assert_eq!(log.cursors().get("p").unwrap(), Some(applied + 1));

    run_to_end(&log, config("p"), FileSink::new(&out))
        .await
        .shutdown()
        .await
        .unwrap();
    let lines = FileSink::lines(&out);
    assert_eq!(file_changes(&lines), appended.changes(0..end, |_| true));
    appended.assert_whole_transactions(&lines);
}

#[tokio::test]
async fn an_invalid_config_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let mut cfg = config("p");
    cfg.max_batch_records = 0;
    let err = Pipeline::new(log.clone(), cfg, FileSink::new(&dir.path().join("sink")))
        .err()
        .unwrap();
    assert!(matches!(
        err,
        PipelineError::Config {
            field: "max_batch_records",
            ..
        }
    ));
    assert_eq!(log.cursors().get("p").unwrap(), None);
}
