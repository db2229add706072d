//! End to end: change log -> cdc-core pipeline -> SQLite sink, with a restart
//! that resumes from the sink's stored offset.

mod fixture;

use std::time::Duration;

use cdc_core::event::{Begin, Commit, Record, SourcePosition, TableSchema, Value};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::{ChangeLog, LogConfig, Sink};
use cdc_sinks::{SqliteConfig, SqliteSink};
use fixture::*;

fn transaction(lsn: u64, changes: Vec<cdc_core::event::Change>) -> Vec<Record> {
    let position = SourcePosition::Postgres { lsn };
    let mut records = vec![Record::Begin(Begin {
        txid: None,
        position: position.clone(),
        commit_time_micros: 0,
    })];
    records.extend(changes.into_iter().map(|mut c| {
        c.position = position.clone();
        Record::Change(c)
    }));
    records.push(Record::Commit(Commit {
        txid: None,
        position,
        commit_time_micros: 0,
    }));
    records
}

async fn run_until_caught_up(log: &ChangeLog, db: &std::path::Path) {
    let sink = SqliteSink::open(SqliteConfig::new(db)).await.unwrap();
    let handle = Pipeline::new(log.clone(), PipelineConfig::new("to-sqlite"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    let end = log.offsets().next;
    for _ in 0..500 {
        if handle.next_offset() >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(handle.next_offset() >= end, "pipeline did not catch up");
    handle.shutdown().await.unwrap();
}

fn rows(db: &std::path::Path) -> Vec<(i64, Option<String>, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, name, n FROM items ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_applies_the_log_and_resumes_from_the_stored_offset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("target.sqlite");
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let items = items();
    let schema: &TableSchema = &items;
    let mut first = vec![Record::Schema(schema.clone())];
    first.extend(transaction(
        1,
        vec![
            insert(&items, vec![i(1), t("a"), i(1)]),
            insert(&items, vec![i(2), t("b"), i(2)]),
        ],
    ));
    log.append(first).await.unwrap();
    log.append(transaction(
        2,
        vec![update(&items, vec![i(1), Value::Unchanged, i(10)])],
    ))
    .await
    .unwrap();
    run_until_caught_up(&log, &db).await;
    assert_eq!(
        rows(&db),
        vec![(1, Some("a".into()), 10), (2, Some("b".into()), 2)]
    );

    log.append(transaction(
        3,
        vec![delete(&items, vec![i(2), Value::Null, Value::Null])],
    ))
    .await
    .unwrap();
    run_until_caught_up(&log, &db).await;
    assert_eq!(rows(&db), vec![(1, Some("a".into()), 10)]);
    let mut sink = SqliteSink::open(SqliteConfig::new(&db)).await.unwrap();
    assert_eq!(
        sink.stored_offset().await.unwrap(),
        Some(log.offsets().next - 1)
    );
    log.close().await.unwrap();
}
