//! Streams the same pgoutput workload with `pg_recvlogical` (to /dev/null) and
//! with our source (into the change log with fsync per transaction, and into a
//! discard sink), in one run on one throwaway PostgreSQL 15; prints the rates
//! and the ratios. Used by `benches/compare/postgres.sh`.
//!
//! Usage: `postgres_compare [rows=200000] [rows_per_tx=1000]`

use std::process::Command;
use std::time::{Duration, Instant};

use cdc_benches::{FirstRows, read_all};
use cdc_core::event::TableName;
use cdc_core::{ChangeLog, LogConfig};
use cdc_postgres::{PostgresConfig, PostgresSource};
use cdc_testkit::Postgres;

fn config(pg: &Postgres, slot: &str) -> PostgresConfig {
    let mut config = PostgresConfig::new(
        pg.user(),
        pg.database(),
        slot,
        "bench_pub",
        vec![TableName::new("public", "orders")],
    );
    config.port = pg.port();
    config
}

/// Reads `rows` row changes: into `log` under `cdc_core::ingest::run` (the loop
/// a host uses: each transaction durable, then acknowledged), or discarded.
/// Returns the elapsed time.
async fn ours(pg: &Postgres, slot: &str, rows: u64, log: Option<&ChangeLog>) -> Duration {
    let started = Instant::now();
    let mut source = FirstRows::new(PostgresSource::new(config(pg, slot)), rows);
    read_all(&mut source, log).await;
    started.elapsed()
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric argument"))
        .collect();
    let rows = args.first().copied().unwrap_or(200_000);
    let per_tx = args.get(1).copied().unwrap_or(1000).max(1);
    let pg = Postgres::start().expect("PostgreSQL 15 test server");
    pg.sql(
        "CREATE TABLE orders (id int8 PRIMARY KEY, customer text, amount numeric(12,2), \
         at timestamptz, ok bool); CREATE PUBLICATION bench_pub FOR TABLE orders;",
    )
    .unwrap();
    for slot in ["recv_slot", "log_slot", "discard_slot"] {
        pg.sql(&format!(
            "SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
        ))
        .unwrap();
    }
    let txs = rows.div_ceil(per_tx);
    pg.sql(&format!(
        "DO $$ BEGIN FOR t IN 0..{} LOOP \
           INSERT INTO orders SELECT g, 'customer ' || g, g * 1.25, now(), g % 2 = 0 \
           FROM generate_series(t * {per_tx}, least((t + 1) * {per_tx}, {rows}) - 1) g; \
           COMMIT; END LOOP; END $$",
        txs - 1
    ))
    .unwrap();
    let end = pg.sql("SELECT pg_current_wal_lsn()").unwrap();
    let end = end.trim();

    let started = Instant::now();
    let status = Command::new("/usr/bin/pg_recvlogical")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port().to_string(),
            "-U",
            "postgres",
        ])
        .args([
            "-d",
            "postgres",
            "--slot",
            "recv_slot",
            "--start",
            "--no-loop",
        ])
        .args(["-o", "proto_version=1", "-o", "publication_names=bench_pub"])
        .args(["--endpos", end, "-f", "/dev/null"])
        .status()
        .expect("pg_recvlogical runs");
    let recv = started.elapsed();
    assert!(status.success(), "pg_recvlogical failed: {status}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (logged, discarded) = runtime.block_on(async {
        let log = ChangeLog::open(dir.path(), LogConfig::default()).expect("log opens");
        let logged = ours(&pg, "log_slot", rows, Some(&log)).await;
        log.close().await.expect("log closes");
        let discarded = ours(&pg, "discard_slot", rows, None).await;
        (logged, discarded)
    });
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("workload: {rows} rows in {txs} transactions of {per_tx}");
    println!(
        "pg_recvlogical -> /dev/null:        {:>12.0} rows/s ({:.2?})",
        rate(recv),
        recv
    );
    println!(
        "cdc-postgres -> change log (fsync): {:>12.0} rows/s ({:.2?})",
        rate(logged),
        logged
    );
    println!(
        "cdc-postgres -> discard:            {:>12.0} rows/s ({:.2?})",
        rate(discarded),
        discarded
    );
    println!(
        "ratio change log / pg_recvlogical:  {:.2}x",
        recv.as_secs_f64() / logged.as_secs_f64()
    );
    println!(
        "ratio discard / pg_recvlogical:     {:.2}x",
        recv.as_secs_f64() / discarded.as_secs_f64()
    );
}
