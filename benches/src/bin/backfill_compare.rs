//! Copies one table from a PostgreSQL database into another on the same
//! throwaway server, both ways in one run, and prints rows/s and the ratio:
//!
//! * `pg_dump --data-only -t public.accounts | psql` into database `dumped`
//!   (COPY out, COPY in: the server's own bulk path, no change capture);
//! * a cdc-core backfill (`PostgresChunks`, chunks of `--chunk` rows) through a
//!   pipeline into the PostgreSQL sink, database `copied`: each chunk read
//!   while the pipeline is paused, applied in one sink transaction, the
//!   pipeline resumed, the progress file fsynced.
//!
//! Both target tables are created before the clocks start. Rounds alternate
//! which side goes first; medians are printed.
//!
//! Usage: `backfill_compare [rows=500000] [chunk=10000] [rounds=3]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cdc_core::backfill::{Backfill, BackfillConfig};
use cdc_core::event::TableName;
use cdc_core::ingest::CancellationToken;
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::{ChangeLog, LogConfig};
use cdc_postgres::{PostgresChunks, PostgresConfig};
use cdc_testkit::Postgres;

const TABLE: &str = "CREATE TABLE public.accounts (id bigint PRIMARY KEY, owner text NOT NULL,
    balance numeric(14,2) NOT NULL, opened timestamptz NOT NULL, active boolean NOT NULL)";

fn dump_and_restore(pg: &Postgres) -> Duration {
    let port = pg.port().to_string();
    let started = Instant::now();
    let mut dump = Command::new(pg.bin_dir().join("pg_dump"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "--data-only",
        ])
        .args(["-t", "public.accounts", "postgres"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pg_dump runs");
    let restore = Command::new("/usr/bin/psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
        ])
        .args(["-U", "postgres", "-d", "dumped"])
        .stdin(dump.stdout.take().expect("pg_dump's output"))
        .stdout(Stdio::null())
        .status()
        .expect("psql runs");
    let dumped = dump.wait().expect("pg_dump ends");
    let elapsed = started.elapsed();
    assert!(
        dumped.success() && restore.success(),
        "pg_dump | psql failed"
    );
    elapsed
}

async fn backfill(pg: &Postgres, rows: u64, chunk: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let table = TableName::new("public", "accounts");
    let mut config = PostgresConfig::new(pg.user(), pg.database(), "unused", "unused", vec![]);
    config.port = pg.port();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let sink_config = cdc_sinks::PostgresConfig::new(format!(
        "host=127.0.0.1 port={} user=postgres dbname=copied",
        pg.port()
    ));
    let sink = cdc_sinks::PostgresSink::connect(sink_config).await.unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("copy"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    let chunks = PostgresChunks::connect(&config, &table, chunk)
        .await
        .unwrap();
    let mut backfill = Backfill::new(chunks, BackfillConfig::new(dir.path().join("progress")));
    let summary = backfill
        .run(&pipeline, &CancellationToken::new())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(summary.rows, rows, "every row copied");
    pipeline.shutdown().await.unwrap();
    log.close().await.unwrap();
    elapsed
}

/// Reads every chunk and drops it: the source side of a backfill alone.
async fn read_only(pg: &Postgres, chunk: usize) -> Duration {
    use cdc_core::backfill::ChunkSource;
    let mut config = PostgresConfig::new(pg.user(), pg.database(), "unused", "unused", vec![]);
    config.port = pg.port();
    let table = TableName::new("public", "accounts");
    let started = Instant::now();
    let mut chunks = PostgresChunks::connect(&config, &table, chunk)
        .await
        .unwrap();
    let mut after = None;
    loop {
        let read = chunks.read_chunk(after.as_ref()).await.unwrap();
        match read.next {
            Some(next) => after = Some(next),
            None => break started.elapsed(),
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric argument"))
        .collect();
    let rows = args.first().copied().unwrap_or(500_000);
    let chunk = args.get(1).copied().unwrap_or(10_000) as usize;
    let rounds = args.get(2).copied().unwrap_or(3).max(1);
    let pg = Postgres::start().expect("PostgreSQL 15 test server");
    pg.sql(&format!(
        "{TABLE}; INSERT INTO public.accounts SELECT g, 'owner-' || g, g * 1.25,
             '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 second', g % 3 = 0
             FROM generate_series(1, {rows}) g;
         ANALYZE public.accounts;"
    ))
    .unwrap();
    for db in ["dumped", "copied"] {
        pg.sql(&format!("CREATE DATABASE {db}")).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let in_db = |db: &str, sql: &str| pg.sql_in(db, sql).unwrap();
    let (mut dumps, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for db in ["dumped", "copied"] {
            in_db(
                db,
                &format!("DROP TABLE IF EXISTS public.accounts; {TABLE}; CHECKPOINT;"),
            );
            in_db(db, "DROP TABLE IF EXISTS public._cdc_offsets");
        }
        let mut run_dump = || dumps.push(dump_and_restore(&pg));
        if round % 2 == 0 {
            run_dump();
            ours.push(runtime.block_on(backfill(&pg, rows, chunk)));
        } else {
            ours.push(runtime.block_on(backfill(&pg, rows, chunk)));
            run_dump();
        }
        for db in ["dumped", "copied"] {
            let n = in_db(db, "SELECT count(*) FROM public.accounts");
            assert_eq!(n.trim(), rows.to_string(), "{db}");
        }
    }
    let read = runtime.block_on(read_only(&pg, chunk));
    let (dump, ours) = (median(dumps), median(ours));
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("table: {rows} rows; backfill chunks of {chunk}; median of {rounds} rounds");
    println!(
        "pg_dump | psql:               {:>10.0} rows/s ({dump:.2?})",
        rate(dump)
    );
    println!(
        "backfill -> PostgreSQL sink:  {:>10.0} rows/s ({ours:.2?})",
        rate(ours)
    );
    println!(
        "  reading the chunks alone:    {:>10.0} rows/s ({read:.2?})",
        rate(read)
    );
    println!(
        "ratio backfill / pg_dump:     {:.2}x",
        dump.as_secs_f64() / ours.as_secs_f64()
    );
}
