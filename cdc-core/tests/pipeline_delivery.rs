//! What a pipeline delivers to a real file sink: every change once, in order,
//! whole transactions, across restarts.

mod pipeline_support;

use cdc_core::event::Record;
use cdc_core::pipeline::{Pipeline, TableFilter, TablePattern};
use cdc_core::{ChangeLog, LogConfig};
use pipeline_support::*;

/// Schemas, then transactions over two tables, one larger than a batch.
async fn fill(log: &ChangeLog, appended: &mut Appended, first_lsn: u64, count: u64) -> u64 {
    if appended.records.is_empty() {
        let schemas = vec![
            Record::Schema(schema("orders")),
            Record::Schema(schema("customers")),
        ];
        appended.append(log, schemas).await;
    }
    let mut end = 0;
    for lsn in first_lsn..first_lsn + count {
        let id = lsn as i64;
        let rows: Vec<(&str, i64)> = match lsn % 4 {
            0 => vec![("orders", id)],
            1 => vec![("orders", id), ("customers", id)],
            2 => (0..12).map(|i| ("customers", id * 100 + i)).collect(),
            _ => vec![("customers", id), ("orders", id), ("orders", -id)],
        };
        end = appended.append(log, txn(lsn, &rows)).await;
    }
    end
}

#[tokio::test]
async fn every_change_arrives_once_in_log_order_in_whole_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let mut appended = Appended::default();
    let end = fill(&log, &mut appended, 1, 20).await;
    let out = dir.path().join("sink");

    let handle = run_to_end(&log, config("all"), FileSink::new(&out)).await;
    let summary = handle.shutdown().await.unwrap();

    assert_eq!(summary.next_offset, end);
    assert!(summary.batches > 1, "max_batch_records splits the stream");
    let lines = FileSink::lines(&out);
    assert_eq!(file_changes(&lines), appended.changes(0..end, |_| true));
    appended.assert_whole_transactions(&lines);
    assert_schema_before_first_change(&lines);
    assert_eq!(FileSink::stored(&out), Some(end - 1));
    assert_eq!(log.cursors().get("all").unwrap(), Some(end));
}

#[tokio::test]
async fn a_restart_resumes_with_no_gap_and_no_duplicate() {
    for stores_offsets in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
        let out = dir.path().join("sink");
        let sink = || {
            if stores_offsets {
                FileSink::new(&out)
            } else {
                FileSink::without_offsets(&out)
            }
        };
        let mut appended = Appended::default();
        fill(&log, &mut appended, 1, 7).await;
        run_to_end(&log, config("p"), sink())
            .await
            .shutdown()
            .await
            .unwrap();

        let end = fill(&log, &mut appended, 8, 9).await;
        let summary = run_to_end(&log, config("p"), sink())
            .await
            .shutdown()
            .await
            .unwrap();

        assert_eq!(summary.next_offset, end);
        let lines = FileSink::lines(&out);
        assert_eq!(
            file_changes(&lines),
            appended.changes(0..end, |_| true),
            "stores_offsets={stores_offsets}"
        );
        appended.assert_whole_transactions(&lines);
        assert_eq!(log.cursors().get("p").unwrap(), Some(end));
    }
}

#[tokio::test]
async fn the_sink_offset_wins_when_it_is_ahead_of_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    fill(&log, &mut appended, 1, 6).await;
    run_to_end(&log, config("old"), FileSink::new(&out))
        .await
        .shutdown()
        .await
        .unwrap();

    // A new cursor at the log start, as after a crash between apply and commit: the
    // sink already holds everything, so nothing is delivered twice.
    let end = fill(&log, &mut appended, 7, 3).await;
    run_to_end(&log, config("new"), FileSink::new(&out))
        .await
        .shutdown()
        .await
        .unwrap();

    assert_eq!(
        file_changes(&FileSink::lines(&out)),
        appended.changes(0..end, |_| true)
    );
    assert_eq!(log.cursors().get("new").unwrap(), Some(end));
}

#[tokio::test]
async fn a_sink_behind_the_cursor_is_refed_but_the_cursor_never_moves_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let restored = dir.path().join("restored");
    let mut appended = Appended::default();
    let early = fill(&log, &mut appended, 1, 4).await;
    run_to_end(&log, config("p"), FileSink::new(&out))
        .await
        .shutdown()
        .await
        .unwrap();
    // Keep the sink as it was at `early`, like a destination restored from a backup.
    std::fs::create_dir_all(&restored).unwrap();
    for f in ["changes.jsonl", "offset.json"] {
        std::fs::copy(out.join(f), restored.join(f)).unwrap();
    }
    let end = fill(&log, &mut appended, 5, 8).await;
    run_to_end(&log, config("p"), FileSink::new(&out))
        .await
        .shutdown()
        .await
        .unwrap();
    assert_eq!(log.cursors().get("p").unwrap(), Some(end));

    let handle = Pipeline::new(log.clone(), config("p"), FileSink::new(&restored))
        .unwrap()
        .start()
        .await
        .unwrap();
    // A transaction start between what the restored sink has and the cursor.
    let middle = appended
        .records
        .iter()
        .find(|(o, r)| *o > early + 8 && matches!(r, Record::Begin(_)))
        .unwrap()
        .0;
    assert!(middle < end);
    assert_eq!(handle.pause_at(middle).await.unwrap(), middle);
    assert_eq!(
        log.cursors().get("p").unwrap(),
        Some(end),
        "the cursor stays where it was"
    );
    handle.resume().await.unwrap();
    wait_until("the restored sink to catch up", || {
        handle.next_offset() >= end
    })
    .await;
    handle.shutdown().await.unwrap();

    let lines = FileSink::lines(&restored);
    assert_eq!(file_changes(&lines), appended.changes(0..end, |_| true));
    appended.assert_whole_transactions(&lines);
    assert_eq!(log.cursors().get("p").unwrap(), Some(end));
}

#[tokio::test]
async fn the_table_filter_delivers_only_matching_tables_and_their_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    let mut end = fill(&log, &mut appended, 1, 10).await;
    end = appended
        .append(&log, vec![Record::Schema(schema("secrets"))])
        .await
        .max(end);
    end = appended
        .append(&log, txn(11, &[("secrets", 1), ("orders", 11)]))
        .await
        .max(end);

    let mut cfg = config("orders-only");
    cfg.tables = TableFilter::all()
        .include(TablePattern::schema("shop"))
        .exclude(TablePattern::table(&table("customers")))
        .exclude(TablePattern::table(&table("secrets")));
    run_to_end(&log, cfg, FileSink::new(&out))
        .await
        .shutdown()
        .await
        .unwrap();

    let lines = FileSink::lines(&out);
    assert_eq!(
        file_changes(&lines),
        appended.changes(0..end, |t| t.name == "orders")
    );
    let schema_tables: Vec<_> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Schema { table, .. } => Some(table.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(schema_tables, vec!["shop.orders"]);
    appended.assert_whole_transactions(&lines);
}

#[tokio::test]
async fn a_schema_change_is_delivered_where_it_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    fill(&log, &mut appended, 1, 2).await;
    let mut altered = schema("orders");
    altered.columns[1].name = "comment".into();
    let at = appended.append(&log, vec![Record::Schema(altered)]).await - 1;
    let end = appended.append(&log, txn(3, &[("orders", 3)])).await;

    run_to_end(&log, config("p"), FileSink::new(&out))
        .await
        .shutdown()
        .await
        .unwrap();

    let lines = FileSink::lines(&out);
    let position = lines.iter().position(|l| matches!(l, Line::Schema { offset, columns, .. } if *offset == at && columns[1] == "comment"));
    let position = position.expect("the altered schema is delivered");
    assert!(matches!(&lines[position + 1], Line::Change { offset, .. } if *offset == end - 2));
}

#[tokio::test]
async fn a_quiet_stream_is_flushed_by_the_batch_delay() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let out = dir.path().join("sink");
    let mut appended = Appended::default();
    let mut cfg = config("p");
    cfg.max_batch_records = 10_000;
    let handle = Pipeline::new(log.clone(), cfg, FileSink::new(&out))
        .unwrap()
        .start()
        .await
        .unwrap();

    let end = fill(&log, &mut appended, 1, 1).await;
    wait_until("the delay to flush the only transaction", || {
        handle.next_offset() == end
    })
    .await;
    assert_eq!(
        file_changes(&FileSink::lines(&out)),
        appended.changes(0..end, |_| true)
    );
    handle.shutdown().await.unwrap();
}
