//! A second pipeline, added to a running change log, backfills its table from
//! the source while changes keep streaming, catches up and is checked against
//! the source; the first pipeline's cursor is never touched and no second
//! replication slot is opened.
//!
//! ```sh
//! cargo run --release -p cdc-examples --example second_pipeline
//! ```
//!
//! It starts a throwaway PostgreSQL 15 (the test kit; `apt-get install -y
//! postgresql`), streams one table into the change log, and keeps changing the
//! table. A first pipeline into a SQLite file is backfilled chunk by chunk
//! (`cdc_core::backfill`) while it streams. Then a second pipeline is attached
//! at the log's end, into a second SQLite file, and backfilled the same way,
//! the table still changing.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::TableName;
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::pipeline::{Pipeline, PipelineConfig, PipelineHandle, StartFrom};
use cdc_core::{ChangeLog, LogConfig};
use cdc_examples::{source_rows, target_rows};
use cdc_postgres::{PostgresChunks, PostgresConfig, PostgresSource, connect_client};
use cdc_sinks::{SqliteConfig, SqliteSink};
use cdc_testkit::Postgres;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const ROWS: u32 = 20_000;

#[tokio::main]
async fn main() -> Result<()> {
    let work = tempfile::tempdir()?;
    println!("starting a throwaway PostgreSQL 15 ...");
    let pg = Postgres::start()?;
    pg.sql(&format!(
        "CREATE TABLE public.accounts (id bigint PRIMARY KEY, owner text NOT NULL,
             balance numeric(14,2) NOT NULL);
         INSERT INTO public.accounts SELECT g, 'owner-' || g, g * 1.25
             FROM generate_series(1, {ROWS}) g;
         ANALYZE public.accounts;"
    ))?;
    let table = TableName::new("public", "accounts");
    let mut config =
        PostgresConfig::new("postgres", "postgres", "demo", "demo", vec![table.clone()]);
    config.host = pg.host().to_owned();
    config.port = pg.port();

    // The one reader of the source, and a first pipeline.
    let log = ChangeLog::open(work.path().join("log"), LogConfig::default())?;
    let mut source = PostgresSource::new(config.clone());
    let stop_ingest = CancellationToken::new();
    let ingest = tokio::spawn({
        let (log, stop) = (log.clone(), stop_ingest.clone());
        async move {
            let summary = ingest::run(&mut source, &log, &stop).await;
            (source, summary)
        }
    });
    let first_db = work.path().join("first.sqlite");
    let first = Pipeline::new(
        log.clone(),
        PipelineConfig::new("first"),
        SqliteSink::open(SqliteConfig::new(&first_db)).await?,
    )?
    .start()
    .await?;

    // The source keeps changing throughout.
    let stop_writes = CancellationToken::new();
    let writer = tokio::spawn(write(connect_client(&config).await?, stop_writes.clone()));
    println!("backfilling the first pipeline:");
    backfill(&config, &table, &first, &work.path().join("first.backfill")).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first_cursor = log.cursors().get("first")?;

    // A second pipeline from the log's end, backfilled while it streams.
    let second_db = work.path().join("second.sqlite");
    let mut second_config = PipelineConfig::new("second");
    second_config.start = StartFrom::LogEnd;
    let second = Pipeline::new(
        log.clone(),
        second_config,
        SqliteSink::open(SqliteConfig::new(&second_db)).await?,
    )?
    .start()
    .await?;
    println!("backfilling the second pipeline:");
    backfill(
        &config,
        &table,
        &second,
        &work.path().join("second.backfill"),
    )
    .await?;

    // Stop writing, let both pipelines catch up, pause them there and compare.
    stop_writes.cancel();
    let writes = writer.await??;
    let expected = wait_for(&pg, &[&first_db, &second_db]).await?;
    let end = log.offsets().durable;
    first.pause_at(end).await?;
    second.pause_at(end).await?;
    let same = target_rows(&first_db)? == expected && target_rows(&second_db)? == expected;
    println!(
        "{writes} writes during the run; both targets equal the source ({} rows): {same}",
        expected.len()
    );
    println!(
        "the first pipeline's cursor only moved forward: {first_cursor:?} -> {:?}",
        log.cursors().get("first")?
    );

    first.resume().await?;
    second.resume().await?;
    first.shutdown().await?;
    second.shutdown().await?;
    stop_ingest.cancel();
    let (mut source, ingested) = ingest.await?;
    ingested?;
    source.drop_slot_and_publication().await?;
    log.close().await?;
    if !same {
        return Err("a target differs from the source".into());
    }
    Ok(())
}

/// Backfills `table` into `pipeline`, printing progress, truncating first.
async fn backfill(
    config: &PostgresConfig,
    table: &TableName,
    pipeline: &PipelineHandle,
    progress_path: &Path,
) -> Result<()> {
    let started = Instant::now();
    let chunks = PostgresChunks::connect(config, table, 2_000).await?;
    let mut backfill_config = BackfillConfig::new(progress_path);
    backfill_config.destination = Destination::TruncateFirst;
    let mut backfill = Backfill::new(chunks, backfill_config);
    let mut progress = backfill.subscribe();
    let report = tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            let p = progress.borrow().clone();
            let estimate = p
                .estimated_rows
                .map_or(String::new(), |n| format!(" of ~{n}"));
            println!("  {} rows{estimate} in {} chunks", p.rows, p.chunks);
        }
    });
    let summary = backfill.run(pipeline, &CancellationToken::new()).await?;
    drop(backfill);
    report.await?;
    println!(
        "  done: {} rows in {} chunks in {:.1?}, the source changing all along",
        summary.rows,
        summary.chunks,
        started.elapsed()
    );
    Ok(())
}

/// Updates, deletes and inserts until `until` fires; returns how many.
async fn write(client: tokio_postgres::Client, until: CancellationToken) -> Result<u32> {
    let mut n: u32 = 0;
    while !until.is_cancelled() {
        n += 1;
        let id = i64::from((n * 7919) % (ROWS + 2_000) + 1);
        let sql = match n % 4 {
            0 => format!("DELETE FROM public.accounts WHERE id = {id}"),
            1 => format!(
                "INSERT INTO public.accounts VALUES ({id}, 'late-{n}', {n})
                 ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner"
            ),
            _ => format!("UPDATE public.accounts SET balance = balance + 1 WHERE id = {id}"),
        };
        client.batch_execute(&sql).await?;
        if n.is_multiple_of(8) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    Ok(n)
}

/// Waits until every target equals the source; returns the source's rows.
async fn wait_for(pg: &Postgres, targets: &[&Path]) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let expected = source_rows(pg)?;
        let mut all = true;
        for target in targets {
            all &= target_rows(target)? == expected;
        }
        if all {
            return Ok(expected);
        }
        if Instant::now() > deadline {
            return Err("the targets did not catch up within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
