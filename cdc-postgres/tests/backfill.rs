//! A backfill of a live PostgreSQL table into a pipeline's sink while the
//! table keeps changing: the target must end equal to the source.

mod support;

use std::time::Duration;

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::TableName;
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::{ChangeLog, LogConfig};
use cdc_postgres::{PostgresChunks, PostgresSource, connect_client};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::*;

const MARKER: i64 = 1_000_000;

/// Random updates (some leaving the TOASTed column unchanged), deletes,
/// re-inserts and multi-row transactions until `until` fires.
async fn write(client: tokio_postgres::Client, until: CancellationToken) -> u32 {
    let mut rng = StdRng::seed_from_u64(42);
    let mut ops = 0;
    while !until.is_cancelled() {
        ops += 1;
        let id: i64 = rng.random_range(1..=3500);
        let sql = match rng.random_range(0..10) {
            0..=4 => format!("UPDATE public.accounts SET balance = balance + 1.5 WHERE id = {id}"),
            5 => format!("UPDATE public.accounts SET big = repeat('u{ops}', 1500) WHERE id = {id}"),
            6 => format!("DELETE FROM public.accounts WHERE id = {id}"),
            7 | 8 => format!(
                "INSERT INTO public.accounts VALUES ({id}, 'new {ops}', {ops}, NULL)
                 ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner"
            ),
            _ => format!(
                "BEGIN; UPDATE public.accounts SET owner = owner || '+' WHERE id BETWEEN {id} AND {id} + 40;
                 DELETE FROM public.accounts WHERE id = {id} + 41; COMMIT;"
            ),
        };
        client.batch_execute(&sql).await.unwrap();
        if rng.random_bool(0.3) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    ops
}

const COLUMNS: &str = "id::text, owner, balance::text, md5(big)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_during_writes_ends_equal_to_the_source() {
    let pg = server();
    pg.sql(
        "CREATE TABLE public.accounts (id bigint PRIMARY KEY, owner text NOT NULL,
             balance numeric(14,2) NOT NULL, big text);
         ALTER TABLE public.accounts ALTER COLUMN big SET STORAGE EXTERNAL;
         INSERT INTO public.accounts SELECT g, 'owner ' || g, g * 0.25,
             CASE WHEN g % 50 = 0 THEN repeat('toasted ' || g, 400) END
             FROM generate_series(1, 3000) g;
         ANALYZE public.accounts;
         CREATE SCHEMA copy;
         CREATE TABLE copy.accounts (id bigint PRIMARY KEY, owner text, balance numeric(14,2), big text);
         INSERT INTO copy.accounts VALUES (-5, 'left from before', 0, NULL);",
    )
    .unwrap();
    let config = config(&pg, &["accounts"]);
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();

    // Stream from a fresh slot into the log, and the log into the target.
    let mut source = PostgresSource::new(config.clone());
    let stop_ingest = CancellationToken::new();
    let ingest = tokio::spawn({
        let (log, stop) = (log.clone(), stop_ingest.clone());
        async move {
            let summary = ingest::run(&mut source, &log, &stop).await;
            (source, summary)
        }
    });
    let mut sink_config = cdc_sinks::PostgresConfig::new(pg.connection_string());
    sink_config.schema = "copy".into();
    let sink = cdc_sinks::PostgresSink::connect(sink_config).await.unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("copy"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();

    let stop_writer = CancellationToken::new();
    let writer = tokio::spawn(write(
        connect_client(&config).await.unwrap(),
        stop_writer.clone(),
    ));
    let table = TableName::new("public", "accounts");
    let chunks = PostgresChunks::connect(&config, &table, 250).await.unwrap();
    let mut backfill_config = BackfillConfig::new(dir.path().join("accounts.backfill"));
    backfill_config.destination = Destination::TruncateFirst;
    backfill_config.max_rows_per_second = Some(20_000);
    let mut backfill = Backfill::new(chunks, backfill_config);
    let progress = backfill.subscribe();
    // The runner declares the reader's tables when it starts; the backfill
    // checks its table against them.
    let mut waited = 0;
    while log.declared_tables().is_none() {
        waited += 1;
        assert!(waited < 200, "the ingest runner never declared its tables");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log.declared_tables(), Some(vec![table.clone()]));
    let summary = backfill
        .run(&pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    assert!(summary.chunks >= 12, "{summary:?}");
    assert!(progress.borrow().estimated_rows.is_some_and(|n| n > 2000));
    stop_writer.cancel();
    let writes = writer.await.unwrap();
    assert!(writes > 50, "only {writes} writes during the backfill");

    // A last write marks the end: once the target has it, it has all before it.
    pg.sql(&format!(
        "INSERT INTO public.accounts VALUES ({MARKER}, 'marker', 0, NULL)"
    ))
    .unwrap();
    let mut waited = 0;
    while pg
        .sql(&format!(
            "SELECT count(*) FROM copy.accounts WHERE id = {MARKER}"
        ))
        .unwrap()
        .trim()
        != "1"
    {
        waited += 1;
        assert!(waited < 600, "the marker never reached the target");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pipeline.pause_at(log.offsets().durable).await.unwrap();
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
    pipeline.shutdown().await.unwrap();
    stop_ingest.cancel();
    let (mut source, ingested) = ingest.await.unwrap();
    ingested.unwrap();
    source.drop_slot_and_publication().await.unwrap();
}
