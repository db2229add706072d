//! A backfill of a live MariaDB table into a pipeline's sink while the table
//! keeps changing: the target must end equal to the source.

mod support;

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::TableName;
use cdc_core::ingest::CancellationToken;
use cdc_mysql::snapshot::MySqlChunks;
use support::accounts::{ACCOUNTS, Streaming};
use support::*;

const MARKER: i64 = 1_000_000;
const COLUMNS: &str = "id, owner, CAST(balance AS CHAR), md5(big)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_during_writes_ends_equal_to_the_source() {
    let db = mariadb();
    sql(&db, ACCOUNTS);
    let dir = tempfile::tempdir().unwrap();
    let streaming = Streaming::start(&db, dir.path()).await;

    let stop_writer = CancellationToken::new();
    let writer = streaming.writer(&db, &stop_writer).await;
    let table = TableName::new("test", "accounts");
    let chunks = MySqlChunks::connect(&streaming.config, &table, 250)
        .await
        .unwrap();
    let mut backfill_config = BackfillConfig::new(dir.path().join("accounts.backfill"));
    backfill_config.destination = Destination::TruncateFirst;
    backfill_config.max_rows_per_second = Some(20_000);
    let mut backfill = Backfill::new(chunks, backfill_config);
    let progress = backfill.subscribe();
    let summary = backfill
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    assert!(summary.chunks >= 12, "{summary:?}");
    assert!(progress.borrow().estimated_rows.is_some_and(|n| n > 1000));
    stop_writer.cancel();
    let writes = writer.await.unwrap();
    assert!(writes > 50, "only {writes} writes during the backfill");

    streaming.caught_up(&db, MARKER).await;
    let pipeline = &streaming.pipeline;
    pipeline
        .pause_at(streaming.log.offsets().durable)
        .await
        .unwrap();
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
    streaming.stop().await;
}
