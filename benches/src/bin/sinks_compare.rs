//! Side-by-side: rows/s of each database sink against the destination's own
//! bulk path on the same rows, in one run. Prints rows/s of both sides and the
//! ratio (sink / bulk) for inserts, and the sink's rows/s for updates of every
//! row. Servers come from the test kit.
//!
//! Bulk paths: PostgreSQL `COPY FROM STDIN` in text format and in binary
//! format (the sink writes binary, which the server parses faster, so the
//! binary ratio is the like-for-like one), MariaDB `LOAD DATA LOCAL INFILE`,
//! SQLite one prepared-statement transaction; each loads all rows in one
//! transaction. The sink applies the same rows as
//! batches of `--batch` changes (one transaction each, with its offset row),
//! and its timing includes planning and encoding its batches; the bulk input
//! is formatted before its clock starts. Both sides' tables are created
//! before their clocks start (the sink's by a batch holding only the schema).
//!
//! The machine is shared, so each destination runs `ROUNDS` rounds into fresh
//! tables, alternating which side goes first, and reports the median of each
//! side. PostgreSQL is checkpointed before every timed run so neither side
//! pays for the other's dirty pages.
//!
//! Usage: `sinks_compare [sqlite|postgres|mariadb] [--batch N]
//! [--sqlite-synchronous full|normal]`; the SQLite setting (default `full`,
//! the sink's default) applies to both sides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_core::event::{
    Change, ChangeKind, Column, DataType, SourcePosition, TableName, TableSchema, Value,
};
use cdc_core::{Sink, SinkBatch, SinkEvent};
use cdc_sinks::{
    MySqlConfig, MySqlSink, PostgresConfig, PostgresSink, SinkError, SqliteConfig, SqliteSink,
    SqliteSynchronous,
};
use futures::SinkExt;
use mysql_async::prelude::Queryable;

const ROWS: usize = 100_000;
const ROUNDS: usize = 5;

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

/// Insert (`update == false`) or update batches over keys 0..ROWS; the
/// inserted rows are exactly the bulk path's rows.
fn batches(update: bool, batch: usize) -> Vec<SinkBatch> {
    let schema = schema();
    let mut offset = if update { 10 * ROWS as u64 } else { 0 };
    let bump = i64::from(update);
    (0..ROWS)
        .collect::<Vec<_>>()
        .chunks(batch)
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
                            kind: if update {
                                ChangeKind::Update
                            } else {
                                ChangeKind::Insert
                            },
                            before: None,
                            after: Some(vec![
                                Value::Int(k as i64),
                                Value::Text(name(k).into()),
                                Value::Int(k as i64 * 7 + bump),
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
                copied: false,
            }
        })
        .collect()
}

/// The bulk paths' input: the inserted rows as tab-separated text.
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

/// The inserted rows in PostgreSQL's binary COPY format (header, tuples of
/// int8, text, int8, float8, trailer).
fn pg_binary() -> Vec<u8> {
    let mut b = Vec::with_capacity(ROWS * 64);
    b.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    b.extend_from_slice(&[0; 8]);
    let field = |b: &mut Vec<u8>, bytes: &[u8]| {
        b.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        b.extend_from_slice(bytes);
    };
    for k in 0..ROWS {
        b.extend_from_slice(&4i16.to_be_bytes());
        field(&mut b, &(k as i64).to_be_bytes());
        field(&mut b, name(k).as_bytes());
        field(&mut b, &(k as i64 * 7).to_be_bytes());
        field(&mut b, &(k as f64 / 3.0).to_be_bytes());
    }
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b
}

/// Has the sink create its target table: a batch holding only the schema.
async fn create_table<S: Sink<Error = SinkError>>(sink: &mut S) {
    let batch = SinkBatch {
        events: vec![SinkEvent::Schema {
            offset: 0,
            schema: schema(),
        }],
        last_offset: 0,
        copied: false,
    };
    sink.apply(&batch).await.expect("sink creates its table");
}

async fn run_sink<S: Sink<Error = SinkError>>(sink: &mut S, batches: &[SinkBatch]) -> Duration {
    let start = Instant::now();
    for b in batches {
        sink.apply(b).await.expect("sink apply");
    }
    start.elapsed()
}

/// One round's timings; `bulk` has one entry per bulk path.
struct Round {
    bulk: Vec<Duration>,
    insert: Duration,
    update: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(d: Duration) -> f64 {
    ROWS as f64 / d.as_secs_f64()
}

/// Prints the medians; `tools` names the bulk paths in the order the bulk
/// closure timed them.
fn report(dest: &str, tools: &[&str], rounds: Vec<Round>) {
    let insert = median(rounds.iter().map(|r| r.insert).collect());
    let update = median(rounds.iter().map(|r| r.update).collect());
    for (i, tool) in tools.iter().enumerate() {
        let bulk = median(rounds.iter().map(|r| r.bulk[i]).collect());
        println!(
            "{dest:<9} insert  sink {:>9.0} rows/s   {tool:<13} {:>9.0} rows/s   ratio {:.2}x",
            rate(insert),
            rate(bulk),
            bulk.as_secs_f64() / insert.as_secs_f64()
        );
    }
    println!("{dest:<9} update  sink {:>9.0} rows/s", rate(update));
}

/// Runs `rounds` rounds of (bulk, sink inserts, sink updates), the bulk side
/// first in even rounds and last in odd ones.
async fn rounds<B, S, BF, SF>(mut bulk: B, mut sink: S, batch: usize) -> Vec<Round>
where
    B: FnMut(usize) -> BF,
    BF: Future<Output = Vec<Duration>>,
    S: FnMut(usize, Vec<SinkBatch>, Vec<SinkBatch>) -> SF,
    SF: Future<Output = (Duration, Duration)>,
{
    let mut out = Vec::new();
    for round in 0..ROUNDS {
        let (inserts, updates) = (batches(false, batch), batches(true, batch));
        let (b, (insert, update)) = if round % 2 == 0 {
            let b = bulk(round).await;
            (b, sink(round, inserts, updates).await)
        } else {
            let s = sink(round, inserts, updates).await;
            (bulk(round).await, s)
        };
        out.push(Round {
            bulk: b,
            insert,
            update,
        });
    }
    out
}

async fn postgres(batch: usize) {
    let pg = cdc_testkit::Postgres::start().expect("PostgreSQL from the test kit");
    let (client, conn) = tokio_postgres::connect(&pg.connection_string(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let client = &client;
    let checkpoint = || async move { client.batch_execute("CHECKPOINT").await.unwrap() };
    let text = tsv().into_bytes();
    let binary = pg_binary();
    // One COPY into a fresh table, from a checkpointed start.
    let copy = |table: String, options: &'static str, data: Vec<u8>| async move {
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (id bigint PRIMARY KEY, name text, n bigint,
                 amount double precision)"
            ))
            .await
            .unwrap();
        checkpoint().await;
        let start = Instant::now();
        let copy = client
            .copy_in::<_, std::io::Cursor<Vec<u8>>>(&format!("COPY {table} FROM STDIN {options}"))
            .await
            .unwrap();
        futures::pin_mut!(copy);
        copy.send(std::io::Cursor::new(data)).await.unwrap();
        copy.finish().await.unwrap();
        start.elapsed()
    };
    let bulk = |round: usize| {
        let (text, binary) = (text.clone(), binary.clone());
        async move {
            client
                .batch_execute(&format!("CREATE SCHEMA bulk_{round}"))
                .await
                .unwrap();
            vec![
                copy(format!("bulk_{round}.bench"), "", text).await,
                copy(format!("bulk_{round}.bench_bin"), "(FORMAT binary)", binary).await,
            ]
        }
    };
    let sink = |round: usize, inserts: Vec<SinkBatch>, updates: Vec<SinkBatch>| {
        let mut config = PostgresConfig::new(pg.connection_string());
        config.schema = format!("sink_{round}");
        async move {
            let mut sink = PostgresSink::connect(config).await.unwrap();
            create_table(&mut sink).await;
            checkpoint().await;
            let insert = run_sink(&mut sink, &inserts).await;
            checkpoint().await;
            (insert, run_sink(&mut sink, &updates).await)
        }
    };
    report(
        "postgres",
        &["COPY text", "COPY binary"],
        rounds(bulk, sink, batch).await,
    );
}

async fn mariadb(batch: usize) {
    let db = cdc_testkit::MariaDb::start().expect("MariaDB from the test kit");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.tsv");
    std::fs::write(&file, tsv()).unwrap();
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&db.url()).unwrap())
        .local_infile_handler(Some(mysql_async::WhiteListFsHandler::new([file.clone()])));
    let conn = &tokio::sync::Mutex::new(mysql_async::Conn::new(opts).await.unwrap());
    let file = &file;
    let bulk = |round: usize| async move {
        let mut conn = conn.lock().await;
        conn.query_drop(format!(
            "CREATE DATABASE bulk_{round}; CREATE TABLE bulk_{round}.bench (id BIGINT PRIMARY
             KEY, name LONGTEXT, n BIGINT, amount DOUBLE) ENGINE=InnoDB DEFAULT
             CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        ))
        .await
        .unwrap();
        let start = Instant::now();
        conn.query_drop(format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE bulk_{round}.bench",
            file.display()
        ))
        .await
        .unwrap();
        vec![start.elapsed()]
    };
    let sink = |round: usize, inserts: Vec<SinkBatch>, updates: Vec<SinkBatch>| {
        let mut config = MySqlConfig::new(db.url());
        config.database = Some(format!("sink_{round}"));
        async move {
            let mut sink = MySqlSink::connect(config).await.unwrap();
            create_table(&mut sink).await;
            let insert = run_sink(&mut sink, &inserts).await;
            (insert, run_sink(&mut sink, &updates).await)
        }
    };
    report("mariadb", &["LOAD DATA"], rounds(bulk, sink, batch).await);
}

async fn sqlite(batch: usize, synchronous: SqliteSynchronous) {
    let pragma = match synchronous {
        SqliteSynchronous::Full => "FULL",
        SqliteSynchronous::Normal => "NORMAL",
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let names: Vec<String> = (0..ROWS).map(name).collect();
    let names = &names;
    let bulk = |round: usize| async move {
        let mut conn = rusqlite::Connection::open(dir.join(format!("bulk_{round}.db"))).unwrap();
        // The sink's settings: WAL, and the same synchronous.
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", pragma).unwrap();
        conn.execute_batch(
            "CREATE TABLE bench (id INTEGER NOT NULL, name TEXT, n INTEGER, amount REAL,
             PRIMARY KEY (id))",
        )
        .unwrap();
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
        vec![start.elapsed()]
    };
    let sink = |round: usize, inserts: Vec<SinkBatch>, updates: Vec<SinkBatch>| async move {
        let mut config = SqliteConfig::new(dir.join(format!("sink_{round}.db")));
        config.synchronous = synchronous;
        let mut sink = SqliteSink::open(config).await.unwrap();
        create_table(&mut sink).await;
        let insert = run_sink(&mut sink, &inserts).await;
        (insert, run_sink(&mut sink, &updates).await)
    };
    println!("sqlite synchronous={pragma}");
    report(
        "sqlite",
        &["one-tx INSERT"],
        rounds(bulk, sink, batch).await,
    );
}

#[tokio::main]
async fn main() {
    let mut only = None;
    let mut batch = 5_000;
    let mut synchronous = SqliteSynchronous::Full;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--batch" => {
                batch = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .expect("--batch takes a positive number")
            }
            "--sqlite-synchronous" => {
                synchronous = match args.next().as_deref() {
                    Some("full") => SqliteSynchronous::Full,
                    Some("normal") => SqliteSynchronous::Normal,
                    _ => panic!("--sqlite-synchronous takes full or normal"),
                }
            }
            dest => only = Some(dest.to_owned()),
        }
    }
    println!(
        "{ROWS} rows of (bigint key, text, bigint, double), sink batches of {batch}, \
         median of {ROUNDS} alternating rounds"
    );
    if only.as_deref().is_none_or(|o| o == "sqlite") {
        sqlite(batch, synchronous).await;
    }
    if only.as_deref().is_none_or(|o| o == "postgres") {
        postgres(batch).await;
    }
    if only.as_deref().is_none_or(|o| o == "mariadb") {
        mariadb(batch).await;
    }
}
