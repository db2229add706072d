//! The assembler's output through cdc-core's ingest runner into a change log,
//! with the stream broken inside a split transaction: the restarted stream
//! re-delivers it from its first event, as a server does after `startAfter`,
//! and the log ends with every change exactly once.

mod support;

use bson::RawDocumentBuf;
use cdc_core::event::{Record, Value};
use cdc_core::ingest::{CancellationToken, run};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::{ChangeLog, LogConfig};
use cdc_sinks::{SqliteConfig, SqliteSink};
use support::*;

/// A large insert, in transaction `transaction` if given.
fn insert_large(increment: u32, op: u32, id: i32, transaction: Option<i64>) -> RawDocumentBuf {
    let e = insert(increment, op, id, &"p".repeat(700));
    match transaction {
        Some(number) => in_transaction(e, number),
        None => e,
    }
}

fn logged(log: &ChangeLog) -> (Vec<i64>, usize, usize) {
    let (mut ids, mut begins, mut commits) = (Vec::new(), 0, 0);
    for entry in log.read(0, 100_000).unwrap() {
        match entry.record().unwrap() {
            Record::Change(c) => match &c.after.unwrap()[0] {
                Value::Text(id) => ids.push(id.parse().unwrap()),
                v => panic!("{v:?}"),
            },
            Record::Begin(_) => begins += 1,
            Record::Commit(_) => commits += 1,
            _ => {}
        }
    }
    (ids, begins, commits)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_broken_inside_a_split_transaction_resumes_without_loss_or_duplicates() {
    // Two single inserts, a transaction of 12 large inserts (split in parts of
    // 4 KiB), then two more single inserts.
    let mut events = vec![insert_large(1, 0, 1, None), insert_large(2, 0, 2, None)];
    events.extend((0..12).map(|op| insert_large(3, op, 100 + op as i32, Some(5))));
    events.extend([insert_large(4, 0, 3, None), insert_large(5, 0, 4, None)]);
    let expected: Vec<i64> = [1, 2].into_iter().chain(100..112).chain([3, 4]).collect();

    // Batches: two singles, two parts of the transaction, its commit, two
    // singles. Breaking after 3 or 4 leaves the log inside the transaction.
    for break_after in [2, 3, 4, 5] {
        let dir = tempfile::tempdir().unwrap();
        let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
        let mut source = Replay::new(&events, 4096, Some(break_after));
        let token = CancellationToken::new();
        assert!(run(&mut source, &log, &token).await.is_err());
        let (ids, begins, commits) = logged(&log);
        let inside = (3..=4).contains(&break_after);
        assert_eq!(
            begins > commits,
            inside,
            "break after {break_after} batches"
        );
        assert!(ids.len() < expected.len());

        let summary = run(&mut source, &log, &token).await.unwrap();
        let (ids, begins, commits) = logged(&log);
        assert_eq!(ids, expected, "break after {break_after} batches");
        assert_eq!((begins, commits), (5, 5));
        if inside {
            assert!(summary.skipped > 0, "the re-delivered part was dropped");
        }
    }
}

fn sqlite_rows(db: &std::path::Path) -> Vec<(String, Option<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT \"_id\", \"document\" FROM \"orders\" ORDER BY \"_id\"")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn apply_to_sqlite(log: &ChangeLog, db: &std::path::Path) -> Vec<(String, Option<String>)> {
    let sink = SqliteSink::open(SqliteConfig::new(db)).await.unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("to-sqlite"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    pipeline.pause_at(log.offsets().next).await.unwrap();
    let rows = sqlite_rows(db);
    pipeline.resume().await.unwrap();
    pipeline.shutdown().await.unwrap();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn collections_reach_a_sqlite_sink_as_keyed_json_documents() {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let db = dir.path().join("target.sqlite");
    let token = CancellationToken::new();

    let events = [
        insert(1, 0, 1, "a"),
        insert(2, 0, 2, "b"),
        update(3, 1, Some("a2")),
        // The document was deleted before the lookup: keep what the sink has.
        update(4, 1, None),
        in_transaction(insert(5, 0, 3, "c"), 1),
        in_transaction(delete(5, 1, 2), 1),
    ];
    run(&mut Replay::new(&events, 1 << 20, None), &log, &token)
        .await
        .unwrap();
    let doc = |id: i32, body: &str| Some(format!(r#"{{"_id":{id},"body":"{body}"}}"#));
    assert_eq!(
        apply_to_sqlite(&log, &db).await,
        [
            ("1".to_owned(), doc(1, "a2")),
            ("3".to_owned(), doc(3, "c"))
        ]
    );

    run(
        &mut Replay::new(&[event(6, 0, "drop", "orders")], 1 << 20, None),
        &log,
        &token,
    )
    .await
    .unwrap();
    assert_eq!(
        apply_to_sqlite(&log, &db).await,
        [],
        "a drop empties the table"
    );
}
