//! Quickstart: copy a live PostgreSQL table into SQLite through the embedded
//! change log while the table keeps changing, then migrate the copy online to
//! a new target and check it row by row.
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
//! 6. migrates online (`cdc_core::migration`) to a new pipeline into a second
//!    SQLite database, whose mapping renames a column, while the source keeps
//!    changing: the new pipeline starts at the log's end, backfills the table in
//!    key chunks, catches up, is verified against the source (changes in flight
//!    told apart from differences by the change log), and replaces the old
//!    pipeline, whose cursor is removed; the source is read once throughout;
//! 7. pauses the new pipeline at the log's end and compares it with the source.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cdc_core::event::TableName;
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::migration::{Migration, MigrationConfig, MigrationStage};
use cdc_core::pipeline::{Pipeline, PipelineConfig, PipelineHandle, StartFrom};
use cdc_core::{ChangeLog, LogConfig};
use cdc_examples::{renamed_target_rows, source_rows, target_rows};
use cdc_postgres::{PostgresConfig, PostgresSource, connect_client};
use cdc_sinks::{SqliteConfig, SqliteSink, TableMapping, TableRule};
use cdc_testkit::Postgres;

mod plan;

use plan::AccountsMove;

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
    let accounts = TableName::new("public", "accounts");
    let mut config = PostgresConfig::new(
        "postgres",
        "postgres",
        "quickstart",
        "quickstart",
        vec![accounts.clone()],
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
    let (at, rows) = paused_equal(&pipeline, &log, &pg, || target_rows(&target)).await?;
    let verified = rows.is_some();
    println!(
        "paused at log offset {at}; target equals source: {verified} ({} rows)",
        rows.unwrap_or_default()
    );
    pipeline.resume().await?;

    // 6. Migrate to a new target while the source keeps changing: a new
    //    pipeline (its own cursor, from the log's end) into a second SQLite
    //    database whose mapping renames a column is backfilled, catches up,
    //    is verified against the source and replaces the old pipeline.
    let stop_writes = CancellationToken::new();
    let writer = tokio::spawn(keep_writing(
        connect_client(&config).await?,
        stop_writes.clone(),
    ));
    let migrated = Instant::now();
    let new_target = work.join("accounts-v2.sqlite");
    let mapping = renamed_owner(&accounts);
    let mut sink_config = SqliteConfig::new(&new_target);
    sink_config.mapping = mapping.clone();
    let mut new_config = PipelineConfig::new("to-sqlite-v2");
    new_config.start = StartFrom::LogEnd;
    let new_pipeline = Pipeline::new(
        log.clone(),
        new_config,
        SqliteSink::open(sink_config).await?,
    )?
    .start()
    .await?;
    let plan = AccountsMove {
        source: config.clone(),
        tables: vec![accounts.clone()],
        target: new_target.clone(),
        mapping,
        old: Some(pipeline),
    };
    let mut migration = Migration::new(
        plan,
        MigrationConfig::new(
            work.join("migration"),
            "to-sqlite-v2",
            Some("to-sqlite".into()),
        ),
    );
    let status = migration
        .run(&new_pipeline, &CancellationToken::new())
        .await?;
    stop_writes.cancel();
    let writes = writer.await??;
    let old_cursor = log.cursors().get("to-sqlite")?;
    println!(
        "migration {:?} in {:.1?} during {writes} writes: backfilled {:?}, verified {:?}; \
         old pipeline stopped, its cursor {}",
        status.stage,
        migrated.elapsed(),
        status.backfilled,
        status.verified,
        if old_cursor.is_none() {
            "removed"
        } else {
            "still there"
        }
    );
    let mut verified =
        verified && status.stage == MigrationStage::Completed && old_cursor.is_none();

    // 7. With the writes stopped, pause the new pipeline at the log's end and
    //    compare its target with the source once more.
    let (at, rows) = paused_equal(&new_pipeline, &log, &pg, || {
        renamed_target_rows(&new_target)
    })
    .await?;
    println!(
        "new pipeline paused at log offset {at}; new target equals source: {} ({} rows)",
        rows.is_some(),
        rows.unwrap_or_default()
    );
    verified &= rows.is_some();

    let summary = new_pipeline.shutdown().await?;
    shutdown.cancel();
    let (mut source, ingested) = ingest.await?;
    let ingested = ingested?;
    source.drop_slot_and_publication().await?;
    log.close().await?;
    println!(
        "streamed {} records from the slot; the new pipeline applied {} batches; done in {:.1?}",
        ingested.appended,
        summary.batches,
        started.elapsed()
    );
    if !verified {
        return Err("a target differs from the source".into());
    }
    println!("new target database: {}", display(&new_target, temp.path()));
    Ok(())
}

/// The new target's mapping: `owner` is called `holder` there.
fn renamed_owner(table: &TableName) -> TableMapping {
    let rule = TableRule {
        schema: table.schema.to_string(),
        table: table.name.to_string(),
        rename_columns: BTreeMap::from([("owner".into(), "holder".into())]),
        ..TableRule::default()
    };
    TableMapping {
        tables: vec![rule],
        ..TableMapping::default()
    }
}

/// Waits until `pipeline` has applied the whole log and its target (read by
/// `target`) matches the source, then pauses it exactly at the log's end and
/// compares once more: the offset paused at, and the row count if equal.
async fn paused_equal(
    pipeline: &PipelineHandle,
    log: &ChangeLog,
    pg: &Postgres,
    target: impl Fn() -> Result<Vec<String>>,
) -> Result<(u64, Option<usize>)> {
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    while pipeline.lag().events_behind > 0 || target()? != source_rows(pg)? {
        if Instant::now() > deadline {
            return Err(format!("the copy did not catch up within {CATCH_UP_LIMIT:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let at = pipeline.pause_at(log.offsets().durable).await?;
    let expected = source_rows(pg)?;
    let equal = target()? == expected;
    Ok((at, equal.then_some(expected.len())))
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
