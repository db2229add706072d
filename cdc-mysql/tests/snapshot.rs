//! Consistent snapshots and chunked backfill reads on MariaDB.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use cdc_core::Source;
use cdc_core::event::{ChangeKind, Record, TableName, Value};
use cdc_mysql::snapshot::{ChunkReader, Snapshot, SnapshotSync};
use cdc_mysql::{MySqlSource, StartFrom};
use mysql_async::prelude::Queryable;
use support::*;

const TABLE: &str = "CREATE TABLE test.snap (
    a INT, b VARCHAR(10), d DECIMAL(12,3), t TIME(3), dt DATETIME(6), ts TIMESTAMP(2) NULL,
    u UUID, j JSON, e ENUM('x','y'), s SET('p','q'), bits BIT(12), g GEOMETRY, bu BIGINT UNSIGNED,
    PRIMARY KEY (a, b))";

#[tokio::test(flavor = "multi_thread")]
async fn a_consistent_snapshot_reads_composite_key_chunks_equal_to_the_binlog_and_streams_on_from_its_position()
 {
    let db = mariadb();
    sql(&db, TABLE);
    sql(&db, "INSERT INTO test.snap VALUES
        (1, 'a', '-1.500', '-25:00:00.5', '2020-01-01 00:00:00.000001', '2021-06-01 12:00:00.25',
         '123e4567-e89b-12d3-a456-426614174000', '[1, {\"a\": null}]', 'y', 'p,q', b'101', ST_GeomFromText('POINT(3 4)'), 18446744073709551615),
        (1, 'b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', NULL, NULL, NULL),
        (2, 'a', 0, '00:00:00', '1999-12-31 23:59:59', NULL, NULL, '{}', 'x', 'q', b'0', NULL, 0)");
    sql(
        &db,
        "INSERT INTO test.snap (a, b) VALUES (3, 'z'), (4, 'z')",
    );

    let cfg = config(&db, &["snap"]);
    let mut snapshot = Snapshot::begin(&cfg).await.unwrap();
    sql(&db, "INSERT INTO test.snap (a, b) VALUES (5, 'after')");
    let schema = snapshot
        .schema(&TableName::new("test", "snap"))
        .await
        .unwrap();
    assert_eq!(schema.primary_key, vec![0, 1]);
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let chunk = snapshot.chunk(&schema, after.as_ref(), 2).await.unwrap();
        for r in &chunk.records {
            let Record::Change(c) = r else { panic!() };
            assert_eq!(c.kind, ChangeKind::SnapshotRead);
            assert_eq!(c.position, snapshot.position().without_gtid());
            rows.push(c.after.clone().unwrap());
        }
        match chunk.next {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    let position = snapshot.position().clone();
    snapshot.finish().await.unwrap();
    assert_eq!(
        rows.len(),
        5,
        "the row inserted after the snapshot is not in it"
    );

    // The same rows decoded from the binlog have the same values.
    let mut earliest = cfg.clone();
    earliest.start_from = StartFrom::Earliest;
    let mut src = MySqlSource::new(earliest).unwrap();
    src.start(None).await.unwrap();
    let streamed: Vec<Vec<Value>> = changes(&transactions(&mut src, 2).await)
        .into_iter()
        .map(|c| c.3.unwrap())
        .collect();
    assert_eq!(rows, streamed);

    // Streaming from the snapshot's position yields exactly the later insert.
    let mut src = MySqlSource::new(cfg).unwrap();
    src.start(Some(position)).await.unwrap();
    let next = changes(&transactions(&mut src, 1).await);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].3.as_ref().unwrap()[1], Value::Text("after".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chunk_reader_reads_key_ranges_between_two_positions() {
    let db = mariadb();
    sql(
        &db,
        "CREATE TABLE test.k (a INT, b INT, v TEXT, PRIMARY KEY (a, b))",
    );
    sql(
        &db,
        "INSERT INTO test.k VALUES (1,1,'x'),(1,2,'y'),(2,1,'z')",
    );
    let mut reader = ChunkReader::connect(&config(&db, &["k"])).await.unwrap();
    let schema = reader.schema(&TableName::new("test", "k")).await.unwrap();
    let first = reader.chunk(&schema, None, 2).await.unwrap();
    assert_eq!(first.chunk.records.len(), 2);
    assert!(first.low.compare(&first.high).is_some_and(|o| o.is_le()));
    sql(&db, "INSERT INTO test.k VALUES (3,1,'w')");
    let second = reader
        .chunk(&schema, first.chunk.next.as_ref(), 2)
        .await
        .unwrap();
    let keys: Vec<(Value, Value)> = second
        .chunk
        .records
        .iter()
        .map(|r| match r {
            Record::Change(c) => {
                assert_eq!(c.position, second.high.without_gtid());
                let a = c.after.as_ref().unwrap();
                (a[0].clone(), a[1].clone())
            }
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        keys,
        [
            (Value::Int(2), Value::Int(1)),
            (Value::Int(3), Value::Int(1))
        ]
    );
    assert!(second.chunk.next.is_some());
    assert!(first.high.compare(&second.high).is_some_and(|o| o.is_lt()));
    let last = reader
        .chunk(&schema, second.chunk.next.as_ref(), 2)
        .await
        .unwrap();
    assert!(last.chunk.records.is_empty() && last.chunk.next.is_none());
}

/// Opens a snapshot with `sync` while three writers commit one-row inserts as
/// fast as they can (and go on committing while it is read), then streams from
/// the snapshot's position up to a row committed after the writers stopped:
/// every row must be in the snapshot or in the stream, and in only one of
/// them, once.
async fn snapshot_and_stream_hold_every_concurrent_commit_once(sync: SnapshotSync) {
    let db = mariadb();
    sql(&db, "CREATE TABLE test.race (id BIGINT PRIMARY KEY)");
    let next = Arc::new(AtomicI64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..3 {
        let mut conn = connect(&db).await;
        let (next, stop) = (next.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = next.fetch_add(1, Ordering::Relaxed);
                conn.exec_drop("INSERT INTO race VALUES (?)", (id,))
                    .await
                    .expect("insert");
            }
        }));
    }
    while next.load(Ordering::Relaxed) < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let cfg = config(&db, &["race"]);
    let mut snapshot = Snapshot::begin_with(&cfg, sync).await.unwrap();
    // Writes go on while the snapshot is open: no lock is left held.
    let opened_at = next.load(Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(10), async {
        while next.load(Ordering::Relaxed) < opened_at + 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("writers blocked while the snapshot is open");
    let schema = snapshot
        .schema(&TableName::new("test", "race"))
        .await
        .unwrap();
    let mut in_snapshot = BTreeSet::new();
    let mut after = None;
    loop {
        let chunk = snapshot.chunk(&schema, after.as_ref(), 500).await.unwrap();
        for r in &chunk.records {
            let Record::Change(c) = r else {
                panic!("{r:?}")
            };
            let Some(Value::Int(id)) = c.after.as_ref().unwrap().first() else {
                panic!("{c:?}")
            };
            assert!(in_snapshot.insert(*id), "row {id} read twice");
        }
        match chunk.next {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    let position = snapshot.position().clone();
    snapshot.finish().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    // Every id taken was inserted; the sentinel commits after all of them.
    let sentinel = next.load(Ordering::Relaxed);
    sql(&db, &format!("INSERT INTO test.race VALUES ({sentinel})"));

    let mut source = MySqlSource::new(cfg).unwrap();
    source.start(Some(position)).await.unwrap();
    let mut streamed = Vec::new();
    while !streamed.contains(&sentinel) {
        let batch = tokio::time::timeout(Duration::from_secs(30), source.next_batch())
            .await
            .expect("the sentinel row never arrived")
            .unwrap()
            .expect("stream ended");
        for (_, kind, _, row) in changes(std::slice::from_ref(&batch)) {
            assert_eq!(kind, ChangeKind::Insert);
            let Some(Value::Int(id)) = row.as_ref().and_then(|r| r.first()) else {
                panic!("{row:?}")
            };
            streamed.push(*id);
        }
    }
    let doubled: Vec<_> = streamed
        .iter()
        .filter(|id| in_snapshot.contains(id))
        .collect();
    assert!(
        doubled.is_empty(),
        "rows both in the snapshot and streamed: {doubled:?}"
    );
    let streamed_set: BTreeSet<i64> = streamed.iter().copied().collect();
    assert_eq!(streamed_set.len(), streamed.len(), "a row streamed twice");
    let missing: Vec<i64> = (1..=sentinel)
        .filter(|id| !in_snapshot.contains(id) && !streamed_set.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "rows neither in the snapshot nor streamed: {missing:?}"
    );
    assert!(
        in_snapshot.len() >= 200 && streamed.len() >= 200,
        "{} rows in the snapshot, {} streamed",
        in_snapshot.len(),
        streamed.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_snapshot_position_splits_concurrent_commits_exactly() {
    snapshot_and_stream_hold_every_concurrent_commit_once(SnapshotSync::Auto).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_under_the_global_read_lock_splits_concurrent_commits_exactly() {
    // The path MySQL takes (it has no snapshot position), run on MariaDB.
    snapshot_and_stream_hold_every_concurrent_commit_once(SnapshotSync::GlobalReadLock).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_snapshot_without_reload_names_the_privilege() {
    let db = mariadb();
    sql(&db, "CREATE TABLE test.r (id INT PRIMARY KEY)");
    sql(
        &db,
        &format!(
            "CREATE USER 'noreload'@'%' IDENTIFIED BY '{}';
             GRANT SELECT, BINLOG MONITOR ON *.* TO 'noreload'@'%'",
            cdc_testkit::PASSWORD
        ),
    );
    let mut cfg = config(&db, &["r"]);
    cfg.user = "noreload".into();
    let err = Snapshot::begin_with(&cfg, SnapshotSync::GlobalReadLock)
        .await
        .err()
        .expect("FLUSH TABLES WITH READ LOCK needs RELOAD");
    assert!(
        matches!(
            err,
            cdc_mysql::Error::Privilege {
                privilege: "RELOAD"
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("GRANT RELOAD"), "{err}");
    // Writes still go through.
    sql(&db, "INSERT INTO test.r VALUES (1)");
}
