//! Side-by-side: rows/s of each database sink against the destination's own
//! bulk path on the same rows, in one run. Prints one line per comparison and
//! the ratio (sink / bulk). Servers come from the test kit.
//!
//! Bulk paths: PostgreSQL `COPY FROM STDIN` (text format), MariaDB
//! `LOAD DATA LOCAL INFILE`, SQLite one prepared-statement transaction. The bulk
//! input is formatted before the clock starts; the sinks' timings include
//! encoding their own batches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_core::event::{
    Change, ChangeKind, Column, DataType, SourcePosition, TableName, TableSchema, Value,
};
use cdc_core::{Sink, SinkBatch, SinkEvent};
use cdc_sinks::{
    MySqlConfig, MySqlSink, PostgresConfig, PostgresSink, SinkError, SqliteConfig, SqliteSink,
};
use futures::SinkExt;
use mysql_async::prelude::Queryable;

const ROWS: usize = 100_000;
const BATCH: usize = 5_000;

fn schema() -> Arc<TableSchema> {
    let col = |n: &str, t: DataType| Column {
        name: n.into(),
        source_type: String::new(),
        data_type: t,
        nullable: true,
    };
    Arc::new(TableSchema {
        table: TableName::new("app", "bench"),
        columns: vec![
            col(
                "id",
                DataType::Int {
                    bits: 64,
                    signed: true,
                },
            ),
            col(
                "name",
                DataType::Text {
                    max_chars: None,
                    fixed: false,
                },
            ),
            col(
                "n",
                DataType::Int {
                    bits: 64,
                    signed: true,
                },
            ),
            col("amount", DataType::Float64),
        ],
        primary_key: vec![0],
    })
}

fn name(i: usize) -> String {
    format!("customer-{i:08}-{}", i % 97)
}

/// Insert (or update, with `round` > 0) batches over keys 0..ROWS.
fn batches(round: i64) -> Vec<SinkBatch> {
    let schema = schema();
    let mut offset = round as u64 * 10 * ROWS as u64;
    (0..ROWS)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|keys| {
            let events = keys
                .iter()
                .map(|&k| {
                    offset += 1;
                    SinkEvent::Change {
                        offset,
                        schema: schema.clone(),
                        change: Change {
                            table: schema.table.clone(),
                            kind: if round == 0 {
                                ChangeKind::Insert
                            } else {
                                ChangeKind::Update
                            },
                            before: None,
                            after: Some(vec![
                                Value::Int(k as i64),
                                Value::Text(name(k)),
                                Value::Int(k as i64 * 7 + round),
                                Value::Double(k as f64 / 3.0),
                            ]),
                            position: SourcePosition::None,
                            txid: None,
                            commit_time_micros: 0,
                        },
                    }
                })
                .collect();
            offset += 1;
            SinkBatch {
                events,
                last_offset: offset,
            }
        })
        .collect()
}

async fn run_sink<S: Sink<Error = SinkError>>(sink: &mut S, batches: &[SinkBatch]) -> Duration {
    let start = Instant::now();
    for b in batches {
        sink.apply(b).await.expect("sink apply");
    }
    start.elapsed()
}

fn rate(d: Duration) -> f64 {
    ROWS as f64 / d.as_secs_f64()
}

fn report(dest: &str, what: &str, sink: Duration, bulk: Option<(&str, Duration)>) {
    match bulk {
        Some((tool, b)) => println!(
            "{dest:<9} {what:<7} sink {:>9.0} rows/s   {tool} {:>9.0} rows/s   ratio {:.2}x",
            rate(sink),
            rate(b),
            b.as_secs_f64() / sink.as_secs_f64()
        ),
        None => println!("{dest:<9} {what:<7} sink {:>9.0} rows/s", rate(sink)),
    }
}

fn tsv() -> String {
    let mut s = String::with_capacity(ROWS * 48);
    for k in 0..ROWS {
        s.push_str(&format!(
            "{k}\t{}\t{}\t{}\n",
            name(k),
            k * 7,
            k as f64 / 3.0
        ));
    }
    s
}

async fn postgres() {
    let pg = cdc_testkit::Postgres::start().expect("PostgreSQL from the test kit");
    let mut config = PostgresConfig::new(pg.connection_string());
    config.schema = "sink".into();
    let mut sink = PostgresSink::connect(config).await.unwrap();
    let inserts = run_sink(&mut sink, &batches(0)).await;
    let updates = run_sink(&mut sink, &batches(1)).await;

    let (client, conn) = tokio_postgres::connect(&pg.connection_string(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE SCHEMA bulk; CREATE TABLE bulk.bench (id bigint PRIMARY KEY, name text,
             n bigint, amount double precision)",
        )
        .await
        .unwrap();
    let data = std::io::Cursor::new(tsv().into_bytes());
    let start = Instant::now();
    let copy = client
        .copy_in::<_, std::io::Cursor<Vec<u8>>>("COPY bulk.bench FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(copy);
    copy.send(data).await.unwrap();
    copy.finish().await.unwrap();
    let bulk = start.elapsed();
    report("postgres", "insert", inserts, Some(("COPY", bulk)));
    report("postgres", "update", updates, None);
}

async fn mariadb() {
    let db = cdc_testkit::MariaDb::start().expect("MariaDB from the test kit");
    let mut config = MySqlConfig::new(db.url());
    config.database = Some("sink".into());
    let mut sink = MySqlSink::connect(config).await.unwrap();
    let inserts = run_sink(&mut sink, &batches(0)).await;
    let updates = run_sink(&mut sink, &batches(1)).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.tsv");
    std::fs::write(&file, tsv()).unwrap();
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&db.url()).unwrap())
        .local_infile_handler(Some(mysql_async::WhiteListFsHandler::new([file.clone()])));
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    conn.query_drop(
        "CREATE DATABASE bulk; CREATE TABLE bulk.bench (id BIGINT PRIMARY KEY, name LONGTEXT,
         n BIGINT, amount DOUBLE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    )
    .await
    .unwrap();
    let start = Instant::now();
    conn.query_drop(format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE bulk.bench",
        file.display()
    ))
    .await
    .unwrap();
    let bulk = start.elapsed();
    report("mariadb", "insert", inserts, Some(("LOAD DATA", bulk)));
    report("mariadb", "update", updates, None);
}

async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = SqliteSink::open(SqliteConfig::new(dir.path().join("sink.db")))
        .await
        .unwrap();
    let inserts = run_sink(&mut sink, &batches(0)).await;
    let updates = run_sink(&mut sink, &batches(1)).await;

    let mut conn = rusqlite::Connection::open(dir.path().join("bulk.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE bench (id INTEGER NOT NULL PRIMARY KEY, name TEXT, n INTEGER, amount REAL)",
    )
    .unwrap();
    let names: Vec<String> = (0..ROWS).map(name).collect();
    let start = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO bench VALUES (?1, ?2, ?3, ?4)")
            .unwrap();
        for (k, name) in names.iter().enumerate() {
            stmt.execute(rusqlite::params![
                k as i64,
                name,
                (k * 7) as i64,
                k as f64 / 3.0
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    let bulk = start.elapsed();
    report("sqlite", "insert", inserts, Some(("one-tx INSERT", bulk)));
    report("sqlite", "update", updates, None);
}

#[tokio::main]
async fn main() {
    println!("{ROWS} rows of (bigint key, text, bigint, double), sink batches of {BATCH}");
    let only = std::env::args().nth(1);
    if only.as_deref().is_none_or(|o| o == "sqlite") {
        sqlite().await;
    }
    if only.as_deref().is_none_or(|o| o == "postgres") {
        postgres().await;
    }
    if only.as_deref().is_none_or(|o| o == "mariadb") {
        mariadb().await;
    }
}
