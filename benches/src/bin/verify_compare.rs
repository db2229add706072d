//! Compares a table with its copy in another database of one throwaway
//! PostgreSQL, both ways in one run, and prints rows/s and the ratio:
//!
//! * `pg_dump --data-only` of both tables, run at once, each into a file,
//!   then the files compared line by line: what checking a copy by hand
//!   takes (equal files only when both tables hold the same rows in the same
//!   physical order, which the benchmark arranges);
//! * a cdc-core verification (`PostgresTable` on both sides, chunks of
//!   `--chunk` rows) while a pipeline streams into the copy: each chunk read
//!   from both sides while the pipeline is paused, rows compared in the
//!   library, progress fsynced after every chunk.
//!
//! Rounds alternate which side goes first; medians are printed.
//!
//! Usage: `verify_compare [rows=500000] [chunk=10000] [rounds=3]`

use std::collections::BTreeMap;
use std::process::Command;

use std::time::{Duration, Instant};

use cdc_core::event::TableName;
use cdc_core::ingest::CancellationToken;
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::verify::{ColumnMap, TableReader, Verification, VerifyConfig};
use cdc_core::{ChangeLog, LogConfig};
use cdc_postgres::{PostgresConfig, PostgresTable};
use cdc_testkit::Postgres;

const TABLE: &str = "CREATE TABLE public.accounts (id bigint PRIMARY KEY, owner text NOT NULL,
    balance numeric(14,2) NOT NULL, opened timestamptz NOT NULL, active boolean NOT NULL)";

fn dump_both(pg: &Postgres, dir: &std::path::Path) -> Duration {
    let port = pg.port().to_string();
    let started = Instant::now();
    let dumps: Vec<_> = ["postgres", "copied"]
        .iter()
        .map(|db| {
            let file = dir.join(format!("{db}.sql"));
            let child = Command::new(pg.bin_dir().join("pg_dump"))
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                .args(["--data-only", "-t", "public.accounts", "-f"])
                .arg(&file)
                .arg(db)
                .spawn()
                .expect("pg_dump runs");
            (child, file)
        })
        .collect();
    let mut files = Vec::new();
    for (mut child, file) in dumps {
        assert!(
            child.wait().expect("pg_dump ends").success(),
            "pg_dump failed"
        );
        files.push(file);
    }
    // pg_dump writes a random `\restrict` key into each dump: compare the rest.
    let data = |file: &std::path::Path| {
        let text = std::fs::read_to_string(file).expect("a dump");
        text.lines()
            .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let same = data(&files[0]) == data(&files[1]);
    let elapsed = started.elapsed();
    assert!(same, "the dumps differ");
    elapsed
}

async fn verify(pg: &Postgres, rows: u64, chunk: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let table = TableName::new("public", "accounts");
    let mut source = PostgresConfig::new(pg.user(), pg.database(), "unused", "unused", vec![]);
    source.port = pg.port();
    let mut copy = source.clone();
    copy.database = "copied".into();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let sink = cdc_sinks::PostgresSink::connect(cdc_sinks::PostgresConfig::new(format!(
        "host=127.0.0.1 port={} user=postgres dbname=copied",
        pg.port()
    )))
    .await
    .unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("copy"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    let source = PostgresTable::connect(&source, &table).await.unwrap();
    let sink = PostgresTable::connect(&copy, &table).await.unwrap();
    let columns = ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new()).unwrap();
    let mut config = VerifyConfig::new(dir.path().join("progress"));
    config.chunk_rows = chunk;
    let report = Verification::new(source, sink, columns, config)
        .run(&pipeline, &CancellationToken::new())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(report.is_equal(), "{report:?}");
    assert_eq!(report.rows, rows, "every row compared");
    pipeline.shutdown().await.unwrap();
    log.close().await.unwrap();
    elapsed
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
    pg.sql("CREATE DATABASE copied").unwrap();
    for db in ["postgres", "copied"] {
        pg.sql_in(
            db,
            &format!(
                "{TABLE}; INSERT INTO public.accounts SELECT g, 'owner-' || g, g * 1.25,
                     '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 second', g % 3 = 0
                     FROM generate_series(1, {rows}) g;
                 ANALYZE public.accounts;"
            ),
        )
        .unwrap();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut dumps, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            dumps.push(dump_both(&pg, dir.path()));
            ours.push(runtime.block_on(verify(&pg, rows, chunk)));
        } else {
            ours.push(runtime.block_on(verify(&pg, rows, chunk)));
            dumps.push(dump_both(&pg, dir.path()));
        }
    }
    let (dump, ours) = (median(dumps), median(ours));
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!("table: {rows} rows on each side; chunks of {chunk}; median of {rounds} rounds");
    println!(
        "pg_dump both sides + cmp:     {:>10.0} rows/s ({dump:.2?})",
        rate(dump)
    );
    println!(
        "verification:                 {:>10.0} rows/s ({ours:.2?})",
        rate(ours)
    );
    println!(
        "ratio verification / pg_dump: {:.2}x",
        dump.as_secs_f64() / ours.as_secs_f64()
    );
}
