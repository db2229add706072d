//! A backfill of a live PostgreSQL table into a pipeline's sink while the
//! table keeps changing: the target must end equal to the source.

mod support;

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::TableName;
use cdc_core::ingest::CancellationToken;
use cdc_postgres::PostgresChunks;
use support::accounts::{ACCOUNTS, Streaming};
use support::*;

const MARKER: i64 = 1_000_000;

const COLUMNS: &str = "id::text, owner, balance::text, md5(big)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_during_writes_ends_equal_to_the_source() {
    let pg = server();
    pg.sql(ACCOUNTS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let streaming = Streaming::start(&pg, dir.path()).await;
    let table = TableName::new("public", "accounts");
    assert_eq!(streaming.log.declared_tables(), Some(vec![table.clone()]));

    let stop_writer = CancellationToken::new();
    let writer = streaming.writer(&stop_writer).await;
    let chunks = PostgresChunks::connect(&streaming.config, &table, 250)
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
    assert!(progress.borrow().estimated_rows.is_some_and(|n| n > 2000));
    stop_writer.cancel();
    let writes = writer.await.unwrap();
    assert!(writes > 50, "only {writes} writes during the backfill");

    streaming.caught_up(&pg, MARKER).await;
    let pipeline = &streaming.pipeline;
    pipeline
        .pause_at(streaming.log.offsets().durable)
        .await
        .unwrap();
    let differ = pg
        .sql(&format!(
            "SELECT count(*) FROM (
               (SELECT {COLUMNS} FROM public.accounts EXCEPT SELECT {COLUMNS} FROM copy.accounts)
               UNION ALL
               (SELECT {COLUMNS} FROM copy.accounts EXCEPT SELECT {COLUMNS} FROM public.accounts)) d"
        ))
        .unwrap();
    assert_eq!(differ.trim(), "0", "rows differ between source and target");
    let rows = pg.sql("SELECT count(*) FROM copy.accounts").unwrap();
    assert!(rows.trim().parse::<u32>().unwrap() > 2000);

    pipeline.resume().await.unwrap();
    streaming.stop().await;
}
