//! Quickstart: copy a live PostgreSQL table into SQLite through the embedded
//! change log, while the table keeps changing, then check the copy row by row.
//!
//! ```sh
//! cargo run --release -p cdc-examples --example quickstart [WORK_DIR]
//! ```
//!
//! It starts a throwaway PostgreSQL 15 (the test kit; `apt-get install -y
//! postgresql`), fills a table, and then:
//!
//! 1. creates a replication slot with an exported snapshot and backfills the table
//!    from that snapshot into the change log;
//! 2. streams every later change from the slot into the same log (the slot is
//!    confirmed only for changes already fsynced in the log);
//! 3. runs a pipeline with its own cursor from the log into a SQLite file;
//! 4. updates, deletes and inserts rows on the source while all of this runs;
//! 5. pauses the pipeline at the log's end and compares target and source;
//! 6. verifies the target with the library (`cdc_core::verify`) while the source
//!    keeps changing: chunk by chunk, changes in flight told apart from
//!    differences by the change log.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cdc_core::event::TableName;
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::verify::{ColumnMap, TableReader, Verification, VerifyConfig};
use cdc_core::{ChangeLog, LogConfig};
use cdc_examples::{source_rows, target_rows};
use cdc_postgres::{PostgresConfig, PostgresSource, PostgresTable, connect_client};
use cdc_sinks::{SqliteConfig, SqliteSink, SqliteTable, TableMapping};
use cdc_testkit::Postgres;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const INITIAL_ROWS: u32 = 50_000;
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let work = std::env::args_os()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&work)?;
    let started = Instant::now();

    println!("starting a throwaway PostgreSQL 15 ...");
    let pg = Postgres::start()?;
    pg.sql(&format!(
        "CREATE TABLE public.accounts (
             id bigint PRIMARY KEY,
             owner text NOT NULL,
             balance numeric(14,2) NOT NULL,
             opened timestamptz NOT NULL);
         INSERT INTO public.accounts
             SELECT g, 'owner-' || g, g * 1.25, '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 second'
             FROM generate_series(1, {INITIAL_ROWS}) g;"
    ))?;

    let log = ChangeLog::open(work.join("log"), LogConfig::default())?;
    let table = TableName::new("public", "accounts");
    let mut config = PostgresConfig::new(
        "postgres",
        "postgres",
        "quickstart",
        "quickstart",
        vec![table],
    );
    config.host = pg.host().to_owned();
    config.port = pg.port();
    let mut source = PostgresSource::new(config.clone());

    // 1. Backfill from the slot's exported snapshot: snapshot + stream is exact.
    let mut snapshot = source.begin_initial_snapshot(10_000).await?;
    let mut snapshot_records = 0;
    while let Some(records) = snapshot.next_records().await? {
        snapshot_records += records.len();
        log.append(records).await?;
    }
    println!("backfilled {snapshot_records} snapshot records into the change log");

    // 2. Stream the slot into the log.
    let shutdown = CancellationToken::new();
    let ingest = tokio::spawn({
        let (log, shutdown) = (log.clone(), shutdown.clone());
        async move {
            let summary = ingest::run(&mut source, &log, &shutdown).await;
            (source, summary)
        }
    });

    // 3. A pipeline with its own cursor from the log into SQLite.
    let target = work.join("accounts.sqlite");
    let sink = SqliteSink::open(SqliteConfig::new(&target)).await?;
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("to-sqlite"), sink)?
        .start()
        .await?;

    // 4. The source keeps changing while the copy runs.
    pg.sql(
        "UPDATE public.accounts SET balance = balance + 10 WHERE id % 7 = 0;
         DELETE FROM public.accounts WHERE id % 11 = 0;
         BEGIN;
         INSERT INTO public.accounts
             SELECT g, 'late-' || g, g * 0.5, now() FROM generate_series(1000001, 1005000) g;
         UPDATE public.accounts SET owner = owner || ' (renamed)' WHERE id BETWEEN 100 AND 199;
         COMMIT;",
    )?;

    // 5. Wait until the target matches the source, pause exactly at the log's
    //    end, and compare once more while paused.
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    let rows = loop {
        let expected = source_rows(&pg)?;
        if pipeline.lag().events_behind == 0 && target_rows(&target)? == expected {
            break expected.len();
        }
        if Instant::now() > deadline {
            return Err(format!("the copy did not catch up within {CATCH_UP_LIMIT:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let at = pipeline.pause_at(log.offsets().durable).await?;
    let verified = target_rows(&target)? == source_rows(&pg)?;
    println!("paused at log offset {at}; target equals source: {verified} ({rows} rows)");

    pipeline.resume().await?;

    // 6. Verify while the source keeps changing.
    let stop_writes = CancellationToken::new();
    let writer = tokio::spawn(keep_writing(
        connect_client(&config).await?,
        stop_writes.clone(),
    ));
    let verify_started = Instant::now();
    let accounts = TableName::new("public", "accounts");
    let source_table = PostgresTable::connect(&config, &accounts).await?;
    let sink_table =
        SqliteTable::open(&target, source_table.schema(), &TableMapping::default()).await?;
    let columns = ColumnMap::by_name(source_table.schema(), sink_table.schema(), &BTreeMap::new())?;
    let report = Verification::new(
        source_table,
        sink_table,
        columns,
        VerifyConfig::new(work.join("accounts.verify")),
    )
    .run(&pipeline, &CancellationToken::new())
    .await?;
    stop_writes.cancel();
    let writes = writer.await??;
    println!(
        "verified {} rows in {} chunks in {:.1?} during {writes} writes: equal {} \
         ({} missing, {} extra, {} different, {} still changing)",
        report.rows,
        report.chunks,
        verify_started.elapsed(),
        report.is_equal(),
        report.missing.count,
        report.extra.count,
        report.different.count,
        report.unsettled.count
    );
    let verified = verified && report.is_equal();

    let summary = pipeline.shutdown().await?;
    shutdown.cancel();
    let (mut source, ingested) = ingest.await?;
    let ingested = ingested?;
    source.drop_slot_and_publication().await?;
    log.close().await?;
    println!(
        "streamed {} records from the slot; pipeline applied {} batches; done in {:.1?}",
        ingested.appended,
        summary.batches,
        started.elapsed()
    );
    if !verified {
        return Err("target differs from source".into());
    }
    println!("target database: {}", display(&target, temp.path()));
    Ok(())
}

/// Moves balances between accounts until `until` fires; returns how many.
async fn keep_writing(client: tokio_postgres::Client, until: CancellationToken) -> Result<u32> {
    let mut n: u32 = 0;
    while !until.is_cancelled() {
        n += 1;
        let id = i64::from(n * 7919 % INITIAL_ROWS + 1);
        client
            .batch_execute(&format!(
                "UPDATE public.accounts SET balance = balance + 1 WHERE id = {id}"
            ))
            .await?;
    }
    Ok(n)
}

fn display(path: &Path, temp: &Path) -> String {
    if path.starts_with(temp) {
        format!(
            "{} (temporary; pass a directory to keep it)",
            path.display()
        )
    } else {
        path.display().to_string()
    }
}
