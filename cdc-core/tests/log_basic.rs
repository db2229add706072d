//! Behaviour of the change log and cursors through the public API.

use std::sync::Arc;
use std::time::Duration;

use cdc_core::event::{
    Column, Commit, DataType, Heartbeat, Record, SourcePosition, TableName, TableSchema,
};
use cdc_core::{ChangeLog, CursorState, Error, FsyncPolicy, LogConfig, RetentionPolicy};
use futures::StreamExt;

fn heartbeat(lsn: u64) -> Record {
    Record::Heartbeat(Heartbeat {
        position: SourcePosition::Postgres { lsn },
        time_micros: lsn as i64,
    })
}

fn lsn_of(record: &Record) -> u64 {
    match record.position() {
        Some(SourcePosition::Postgres { lsn }) => *lsn,
        other => panic!("unexpected position {other:?}"),
    }
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_max_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn schema(name: &str, columns: usize) -> TableSchema {
    TableSchema {
        table: TableName::new("public", name),
        columns: (0..columns)
            .map(|i| Column {
                name: format!("c{i}"),
                data_type: DataType::Int {
                    bits: 64,
                    signed: true,
                },
                source_type: "bigint".into(),
                nullable: true,
            })
            .collect(),
        primary_key: vec![0],
    }
}

#[tokio::test]
async fn appends_get_dense_offsets_and_read_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    let mut expected = 0;
    for i in 0..200u64 {
        let n = (i % 5) + 1;
        let range = log
            .append((0..n).map(|k| heartbeat(expected + k)).collect())
            .await
            .unwrap();
        assert_eq!(range, expected..expected + n);
        expected += n;
    }
    assert_eq!(log.offsets().durable, expected);
    log.close().await.unwrap();
    assert!(matches!(
        log.append(vec![heartbeat(0)]).await,
        Err(Error::Closed)
    ));

    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    assert_eq!(log.offsets().next, expected);
    let mut at = 0;
    while at < expected {
        let entries = log.read(at, 37).unwrap();
        assert!(!entries.is_empty());
        for e in entries {
            assert_eq!(e.offset, at);
            assert_eq!(lsn_of(&e.record().unwrap()), at);
            assert!(e.archived().is_ok());
            at += 1;
        }
    }
    assert!(log.read(expected, 10).unwrap().is_empty());
    assert_eq!(
        log.last_source_position(),
        Some(SourcePosition::Postgres { lsn: expected - 1 })
    );
    let segs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count();
    assert!(segs > 3, "segments rolled: {segs}");
    assert!(dir.path().join("00000000000000000000.seg").exists());
    log.close().await.unwrap();
}

#[tokio::test]
async fn concurrent_appends_are_contiguous_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut ranges = Vec::new();
            for i in 0..50u64 {
                let tag = t * 1_000_000 + i * 10;
                let range = log
                    .append((0..3).map(|k| heartbeat(tag + k)).collect())
                    .await
                    .unwrap();
                ranges.push((range, tag));
            }
            ranges
        }));
    }
    for task in tasks {
        for (range, tag) in task.await.unwrap() {
            let entries = log.read(range.start, 3).unwrap();
            let lsns: Vec<u64> = entries
                .iter()
                .map(|e| lsn_of(&e.record().unwrap()))
                .collect();
            assert_eq!(lsns, vec![tag, tag + 1, tag + 2]);
        }
    }
    assert_eq!(log.offsets().durable, 8 * 50 * 3);
}

#[tokio::test]
async fn subscriptions_follow_appends_and_end_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    log.append(vec![heartbeat(0), heartbeat(1)]).await.unwrap();
    let mut sub = log.subscribe(1);
    let first = sub.next().await.unwrap().unwrap();
    assert_eq!(first.offset, 1);
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 2..100 {
                log.append(vec![heartbeat(i)]).await.unwrap();
            }
            log.close().await.unwrap();
        })
    };
    let mut seen = 2;
    while let Some(entry) = sub.next().await {
        let entry = entry.unwrap();
        assert_eq!(entry.offset, seen);
        seen += 1;
    }
    assert_eq!(seen, 100);
    writer.await.unwrap();
}

#[tokio::test]
async fn every_fsync_policy_acknowledges_and_persists() {
    for fsync in [
        FsyncPolicy::EveryBatch,
        FsyncPolicy::Interval(Duration::from_millis(5)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            fsync,
            ..small_segments()
        };
        let log = ChangeLog::open(dir.path(), config.clone()).unwrap();
        for i in 0..20 {
            assert_eq!(log.append(vec![heartbeat(i)]).await.unwrap(), i..i + 1);
        }
        log.close().await.unwrap();
        let log = ChangeLog::open(dir.path(), config).unwrap();
        assert_eq!(log.read(0, 100).unwrap().len(), 20, "{fsync:?}");
    }
}

#[tokio::test]
async fn seek_time_finds_the_first_batch_at_or_after_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    for i in 0..50 {
        log.append(vec![heartbeat(i), heartbeat(i)]).await.unwrap();
    }
    let entries = log.read(0, 1000).unwrap();
    for e in &entries {
        let found = log.seek_time(e.timestamp_micros).unwrap();
        let first = entries
            .iter()
            .find(|x| x.timestamp_micros >= e.timestamp_micros)
            .unwrap();
        assert_eq!(found, first.offset);
    }
    assert_eq!(log.seek_time(i64::MAX).unwrap(), 100);
    assert_eq!(log.seek_time(i64::MIN).unwrap(), 0);
}

#[tokio::test]
async fn schemas_survive_retention_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention: RetentionPolicy {
            max_bytes: Some(1),
            max_age: None,
        },
        ..small_segments()
    };
    let table = TableName::new("public", "t");
    let log = ChangeLog::open(dir.path(), config.clone()).unwrap();
    log.append(vec![Record::Schema(schema("t", 1))])
        .await
        .unwrap();
    for i in 0..100 {
        log.append(vec![heartbeat(i)]).await.unwrap();
    }
    let v2 = log
        .append(vec![Record::Schema(schema("t", 2))])
        .await
        .unwrap();
    for i in 0..100 {
        log.append(vec![heartbeat(i)]).await.unwrap();
    }
    log.cursors().create("slow", 1).unwrap();
    assert_eq!(
        log.apply_retention().unwrap(),
        0,
        "cursor at 1 holds segment 0"
    );
    log.cursors().commit("slow", 150).unwrap();
    let removed = log.apply_retention().unwrap();
    assert!(removed > 0);
    let start = log.offsets().start;
    assert!(start > 0 && start <= 150, "start {start}");
    assert!(matches!(
        log.read(0, 1),
        Err(Error::OffsetBehindRetention { requested: 0, oldest }) if oldest == start
    ));
    log.cursors().create("late", 0).unwrap();
    let status = log.cursor_status("late").unwrap();
    assert_eq!(
        status.state,
        CursorState::NeedsBackfill {
            oldest_retained: start
        }
    );
    assert_eq!(
        log.cursor_status("slow").unwrap().state,
        CursorState::Active
    );
    log.close().await.unwrap();

    let log = ChangeLog::open(dir.path(), config).unwrap();
    assert_eq!(log.offsets().start, start);
    let expected_at_start = if start < v2.start { 1 } else { 2 };
    assert!(
        start > v2.start - 50,
        "the first schema's segment was removed"
    );
    assert_eq!(
        log.schema_at(&table, start).unwrap().columns.len(),
        expected_at_start
    );
    assert_eq!(log.schema_at(&table, v2.start).unwrap().columns.len(), 2);
    assert_eq!(
        log.schema_at(&table, v2.start - 1).unwrap().columns.len(),
        1
    );
    assert!(log.schema_at(&TableName::new("public", "x"), 500).is_none());
    assert_eq!(log.cursors().get("slow").unwrap(), Some(150));
}

#[tokio::test]
async fn cursors_are_monotonic_and_report_lag() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    log.append((0..10).map(heartbeat).collect()).await.unwrap();
    let cursors = log.cursors();
    cursors.create("a", 0).unwrap();
    assert!(matches!(
        cursors.create("a", 0),
        Err(Error::CursorExists { .. })
    ));
    assert!(matches!(
        cursors.create("a/b", 0),
        Err(Error::InvalidCursorName { .. })
    ));
    cursors.commit("a", 4).unwrap();
    assert!(matches!(
        cursors.commit("a", 3),
        Err(Error::CursorRegression {
            current: 4,
            requested: 3,
            ..
        })
    ));
    assert!(matches!(
        cursors.commit("b", 3),
        Err(Error::CursorNotFound { .. })
    ));
    let status = log.cursor_status("a").unwrap();
    assert_eq!((status.offset, status.lag_events), (4, 6));
    cursors.create("b", 10).unwrap();
    assert_eq!(
        cursors.list().unwrap(),
        vec![("a".to_string(), 4), ("b".to_string(), 10)]
    );
    cursors.delete("b").unwrap();
    assert_eq!(log.cursor_statuses().unwrap().len(), 1);
    log.close().await.unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.cursors().get("a").unwrap(), Some(4));
    assert_eq!(log.cursors().get("b").unwrap(), None);
}

#[tokio::test]
async fn a_damaged_cursor_file_is_reported_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    log.cursors().create("c", 7).unwrap();
    log.close().await.unwrap();
    drop(log);
    let path = dir.path().join("cursors/c.cursor");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[17] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(matches!(log.cursors().get("c"), Err(Error::Corrupt { .. })));
    assert!(log.cursors().list().is_err());
    log.cursors().delete("c").unwrap();
    log.cursors().create("c", 1).unwrap();
    std::fs::write(&path, &bytes[..10]).unwrap();
    drop(log);
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(matches!(log.cursors().get("c"), Err(Error::Corrupt { .. })));
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    for i in 0..10 {
        log.append(vec![heartbeat(i)]).await.unwrap();
    }
    log.close().await.unwrap();
    let seg = dir.path().join("00000000000000000000.seg");
    let len = std::fs::metadata(&seg).unwrap().len();
    // Tear the last batch and add garbage.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.offsets().durable, 9);
    assert_eq!(log.append(vec![heartbeat(9)]).await.unwrap(), 9..10);
    let all = log.read(0, 100).unwrap();
    assert_eq!(all.len(), 10);
    log.close().await.unwrap();
}

#[tokio::test]
async fn corruption_inside_a_sealed_segment_is_an_error_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    for i in 0..200 {
        log.append(vec![heartbeat(i)]).await.unwrap();
    }
    log.close().await.unwrap();
    drop(log);
    let seg = dir.path().join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[200] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    // With intact index files the damage is found when read.
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    let err = log.read(0, 1000).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { ref path, offset, .. } if path == &seg && offset <= 200),
        "{err}"
    );
    log.close().await.unwrap();
    drop(log);
    // Without them, rebuilding the index finds it on open.
    std::fs::remove_file(dir.path().join("00000000000000000000.index")).unwrap();
    let err = ChangeLog::open(dir.path(), small_segments()).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { ref path, .. } if path == &seg),
        "{err}"
    );
}

#[tokio::test]
async fn missing_or_damaged_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    for i in 0..200 {
        log.append(vec![heartbeat(i)]).await.unwrap();
    }
    log.append(vec![Record::Commit(Commit {
        txid: None,
        position: SourcePosition::Postgres { lsn: 9999 },
        commit_time_micros: 0,
    })])
    .await
    .unwrap();
    log.close().await.unwrap();
    drop(log);
    std::fs::remove_file(dir.path().join("00000000000000000000.index")).unwrap();
    std::fs::write(dir.path().join("00000000000000000000.timeindex"), b"junk").unwrap();
    std::fs::remove_file(dir.path().join("schemas.catalog")).unwrap();
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    assert_eq!(log.read(0, 1000).unwrap().len(), 201);
    assert_eq!(
        log.last_source_position(),
        Some(SourcePosition::Postgres { lsn: 9999 })
    );
    assert!(dir.path().join("00000000000000000000.index").exists());
    let _ = Arc::new(());
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(matches!(
        ChangeLog::open(dir.path(), LogConfig::default()),
        Err(Error::Locked { .. })
    ));
    log.close().await.unwrap();
    let again = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    again.close().await.unwrap();
}

#[test]
fn handles_and_subscriptions_can_move_between_tasks() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    fn assert_stream<T: futures::Stream + Unpin + Send>() {}
    assert_send_sync::<ChangeLog>();
    assert_stream::<cdc_core::Subscription>();
}

#[tokio::test]
async fn an_interrupted_segment_creation_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
    for i in 0..100 {
        log.append(vec![heartbeat(i)]).await.unwrap();
    }
    log.close().await.unwrap();
    drop(log);
    for (base, bytes) in [(100u64, vec![0u8; 32]), (100, vec![1u8; 7])] {
        std::fs::write(dir.path().join(format!("{base:020}.seg")), bytes).unwrap();
        let log = ChangeLog::open(dir.path(), small_segments()).unwrap();
        assert_eq!(log.offsets().durable, 100);
        assert_eq!(log.read(99, 10).unwrap().len(), 1);
        log.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_segment_of_another_format_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    log.append((0..5).map(heartbeat).collect()).await.unwrap();
    log.close().await.unwrap();
    drop(log);
    let seg = dir.path().join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    // What an older release wrote: version 1 at byte 8, header crc over 0..24.
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..24]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&seg, &bytes).unwrap();

    let err = ChangeLog::open(dir.path(), LogConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedFormat {
                version: 1,
                expected_version: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("re-backfill"), "{err}");
    // Its records are not truncated away as a torn tail.
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
}
