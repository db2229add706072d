//! A pipeline and log retention: never a silent skip.

mod pipeline_support;

use cdc_core::event::Record;
use cdc_core::pipeline::{Pipeline, PipelineError, StartFrom};
use cdc_core::{ChangeLog, LogConfig, RetentionPolicy};
use pipeline_support::*;

/// A log with small segments and a size limit that lets retention remove the
/// oldest ones (nothing else holds them: there are no cursors yet).
async fn trimmed_log(dir: &std::path::Path, appended: &mut Appended) -> ChangeLog {
    let config = LogConfig {
        segment_max_bytes: 4096,
        retention: RetentionPolicy {
            max_bytes: Some(8192),
            max_age: None,
        },
        ..LogConfig::default()
    };
    let log = ChangeLog::open(dir, config).unwrap();
    appended
        .append(&log, vec![Record::Schema(schema("orders"))])
        .await;
    for lsn in 1..=120 {
        appended
            .append(&log, txn(lsn, &[("orders", lsn as i64)]))
            .await;
    }
    assert!(
        log.apply_retention().unwrap() > 0,
        "the test needs retention to remove segments"
    );
    assert!(log.offsets().start > 0);
    log
}

#[tokio::test]
async fn a_cursor_behind_retention_fails_with_needs_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let mut appended = Appended::default();
    let log = trimmed_log(&dir.path().join("log"), &mut appended).await;
    log.cursors().create("late", 0).unwrap();

    let err = Pipeline::new(
        log.clone(),
        config("late"),
        FileSink::new(&dir.path().join("sink")),
    )
    .unwrap()
    .start()
    .await
    .err()
    .unwrap();

    let start = log.offsets().start;
    assert!(
        matches!(&err, PipelineError::NeedsBackfill { name, offset: 0, oldest_retained } if name == "late" && *oldest_retained == start),
        "{err:?}"
    );
    assert!(FileSink::lines(&dir.path().join("sink")).is_empty());
}

#[tokio::test]
async fn a_sink_offset_behind_retention_fails_with_needs_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let mut appended = Appended::default();
    let log = trimmed_log(&dir.path().join("log"), &mut appended).await;
    let out = dir.path().join("sink");
    // The sink stored offset 3 in an earlier life; the log no longer has offset 4.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("offset.json"), r#"{"last_offset":3,"data_len":0}"#).unwrap();

    let err = Pipeline::new(log.clone(), config("p"), FileSink::new(&out))
        .unwrap()
        .start()
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, PipelineError::NeedsBackfill { offset: 4, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_new_pipeline_at_the_log_start_decodes_with_schemas_from_removed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut appended = Appended::default();
    let log = trimmed_log(&dir.path().join("log"), &mut appended).await;
    let out = dir.path().join("sink");
    let start = log.offsets().start;
    let end = log.offsets().durable;

    let handle = run_to_end(&log, config("fresh"), FileSink::new(&out)).await;
    handle.shutdown().await.unwrap();

    let lines = FileSink::lines(&out);
    assert_eq!(file_changes(&lines), appended.changes(start..end, |_| true));
    assert!(matches!(&lines[0], Line::Schema { table, .. } if table == "shop.orders"));
    appended.assert_whole_transactions(&lines);

    let mut at_end = config("tail");
    at_end.start = StartFrom::LogEnd;
    let handle = Pipeline::new(log.clone(), at_end, FileSink::new(&dir.path().join("tail")))
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(handle.next_offset(), end);
    handle.shutdown().await.unwrap();
    assert_eq!(log.cursors().get("tail").unwrap(), Some(end));
}
