//! A backfill of a live MariaDB table into a pipeline's sink while the table
//! keeps changing: the target must end equal to the source.

mod support;

use std::time::Duration;

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::TableName;
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::{ChangeLog, LogConfig};
use cdc_mysql::MySqlSource;
use cdc_mysql::snapshot::MySqlChunks;
use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::*;

const MARKER: i64 = 1_000_000;
const COLUMNS: &str = "id, owner, CAST(balance AS CHAR), md5(big)";

/// Random updates, deletes, re-inserts and multi-row transactions until
/// `until` fires.
async fn write(mut conn: mysql_async::Conn, until: CancellationToken) -> u32 {
    let mut rng = StdRng::seed_from_u64(7);
    let mut ops = 0;
    while !until.is_cancelled() {
        ops += 1;
        let id: i64 = rng.random_range(1..=3500);
        let sql = match rng.random_range(0..10) {
            0..=4 => format!("UPDATE test.accounts SET balance = balance + 1.5 WHERE id = {id}"),
            5 => format!("UPDATE test.accounts SET big = REPEAT('u{ops}', 500) WHERE id = {id}"),
            6 => format!("DELETE FROM test.accounts WHERE id = {id}"),
            7 | 8 => format!(
                "INSERT INTO test.accounts VALUES ({id}, 'new {ops}', {ops}, NULL)
                 ON DUPLICATE KEY UPDATE owner = VALUES(owner)"
            ),
            _ => format!(
                "START TRANSACTION;
                 UPDATE test.accounts SET owner = CONCAT(owner, '+') WHERE id BETWEEN {id} AND {id} + 40;
                 DELETE FROM test.accounts WHERE id = {id} + 41; COMMIT"
            ),
        };
        conn.query_drop(sql).await.unwrap();
        if rng.random_bool(0.3) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_during_writes_ends_equal_to_the_source() {
    let db = mariadb();
    sql(
        &db,
        "CREATE TABLE test.accounts (id BIGINT PRIMARY KEY, owner VARCHAR(200) NOT NULL,
             balance DECIMAL(14,2) NOT NULL, big MEDIUMTEXT);
         INSERT INTO test.accounts SELECT seq, CONCAT('owner ', seq), seq * 0.25,
             IF(seq % 50 = 0, REPEAT(CONCAT('long ', seq), 400), NULL) FROM test.seq_1_to_3000;
         ANALYZE TABLE test.accounts;
         CREATE DATABASE copy;
         CREATE TABLE copy.accounts (id BIGINT PRIMARY KEY, owner VARCHAR(200),
             balance DECIMAL(14,2), big MEDIUMTEXT);
         INSERT INTO copy.accounts VALUES (-5, 'left from before', 0, NULL);",
    );
    let config = config(&db, &["accounts"]);
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();

    let mut source = MySqlSource::new(config.clone()).unwrap();
    let stop_ingest = CancellationToken::new();
    let ingest = tokio::spawn({
        let (log, stop) = (log.clone(), stop_ingest.clone());
        async move { ingest::run(&mut source, &log, &stop).await }
    });
    let mut sink_config = cdc_sinks::MySqlConfig::new(db.url());
    sink_config.database = Some("copy".into());
    let sink = cdc_sinks::MySqlSink::connect(sink_config).await.unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("copy"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();

    let stop_writer = CancellationToken::new();
    let writer = tokio::spawn(write(connect(&db).await, stop_writer.clone()));
    let table = TableName::new("test", "accounts");
    let chunks = MySqlChunks::connect(&config, &table, 250).await.unwrap();
    let mut backfill_config = BackfillConfig::new(dir.path().join("accounts.backfill"));
    backfill_config.destination = Destination::TruncateFirst;
    backfill_config.max_rows_per_second = Some(20_000);
    let mut backfill = Backfill::new(chunks, backfill_config);
    let progress = backfill.subscribe();
    let summary = backfill
        .run(&pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    assert!(summary.chunks >= 12, "{summary:?}");
    assert!(progress.borrow().estimated_rows.is_some_and(|n| n > 1000));
    stop_writer.cancel();
    let writes = writer.await.unwrap();
    assert!(writes > 50, "only {writes} writes during the backfill");

    // A last write marks the end: once the target has it, it has all before it.
    sql(
        &db,
        &format!("INSERT INTO test.accounts VALUES ({MARKER}, 'marker', 0, NULL)"),
    );
    let mut waited = 0;
    while sql(
        &db,
        &format!("SELECT COUNT(*) FROM copy.accounts WHERE id = {MARKER}"),
    )
    .trim()
        != "1"
    {
        waited += 1;
        assert!(waited < 600, "the marker never reached the target");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pipeline.pause_at(log.offsets().durable).await.unwrap();
    let differ = sql(
        &db,
        &format!(
            "SELECT COUNT(*) FROM (
               (SELECT {COLUMNS} FROM test.accounts EXCEPT SELECT {COLUMNS} FROM copy.accounts)
               UNION ALL
               (SELECT {COLUMNS} FROM copy.accounts EXCEPT SELECT {COLUMNS} FROM test.accounts)) d"
        ),
    );
    assert_eq!(differ.trim(), "0", "rows differ between source and target");
    assert!(
        sql(&db, "SELECT COUNT(*) FROM copy.accounts")
            .trim()
            .parse::<u32>()
            .unwrap()
            > 2000
    );

    pipeline.resume().await.unwrap();
    pipeline.shutdown().await.unwrap();
    stop_ingest.cancel();
    ingest.await.unwrap().unwrap();
}
