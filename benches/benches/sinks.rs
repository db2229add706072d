//! Rows/s applied per sink, for insert-heavy and update-heavy batches.
//!
//! Each sample applies batches of `BATCH` row changes as one sink transaction:
//! "insert" batches add new keys, "update" batches rewrite existing keys.
//! PostgreSQL and MariaDB come from the test kit.

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_core::event::{
    Change, ChangeKind, Column, DataType, SourcePosition, TableName, TableSchema, Value,
};
use cdc_core::{Sink, SinkBatch, SinkEvent};
use cdc_sinks::{
    MySqlConfig, MySqlSink, PostgresConfig, PostgresSink, SinkError, SqliteConfig, SqliteSink,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::Mutex;

const BATCH: usize = 2_000;

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

/// A batch over keys `first..first + BATCH`.
fn batch(first: i64, kind: ChangeKind, offset: &mut u64) -> SinkBatch {
    let schema = schema();
    let events = (first..first + BATCH as i64)
        .map(|k| {
            *offset += 1;
            SinkEvent::Change {
                offset: *offset,
                schema: schema.clone(),
                change: Change {
                    table: schema.table.clone(),
                    kind,
                    before: None,
                    after: Some(vec![
                        Value::Int(k),
                        Value::Text(format!("customer-{k:08}").into()),
                        Value::Int(k * 7 + *offset as i64),
                        Value::Double(k as f64 / 3.0),
                    ]),
                    position: SourcePosition::None,
                    txid: None,
                    commit_time_micros: 0,
                },
            }
        })
        .collect();
    *offset += 1;
    SinkBatch {
        events,
        last_offset: *offset,
        copied: false,
    }
}

struct State<S> {
    sink: S,
    offset: u64,
    next_key: i64,
}

fn bench_sink<S: Sink<Error = SinkError> + 'static>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    sink: S,
) {
    let state = Arc::new(Mutex::new(State {
        sink,
        offset: 0,
        next_key: 0,
    }));
    let mut group = c.benchmark_group(format!("sink/{name}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (label, kind) in [
        ("insert", ChangeKind::Insert),
        ("update", ChangeKind::Update),
    ] {
        let state = state.clone();
        group.bench_function(label, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let state = state.clone();
                async move {
                    let mut s = state.lock().await;
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let first = if kind == ChangeKind::Insert {
                            s.next_key += BATCH as i64;
                            s.next_key
                        } else {
                            0
                        };
                        let mut offset = s.offset;
                        let b = batch(first, kind, &mut offset);
                        s.offset = offset;
                        let start = Instant::now();
                        s.sink.apply(&b).await.expect("apply");
                        total += start.elapsed();
                    }
                    total
                }
            })
        });
    }
    group.finish();
}

fn sinks(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt
        .block_on(SqliteSink::open(SqliteConfig::new(
            dir.path().join("bench.db"),
        )))
        .unwrap();
    bench_sink(c, &rt, "sqlite", sqlite);

    let pg = cdc_testkit::Postgres::start().expect("PostgreSQL from the test kit");
    let postgres = rt
        .block_on(PostgresSink::connect(PostgresConfig::new(
            pg.connection_string(),
        )))
        .unwrap();
    bench_sink(c, &rt, "postgres", postgres);

    let maria = cdc_testkit::MariaDb::start().expect("MariaDB from the test kit");
    let mysql = rt
        .block_on(MySqlSink::connect(MySqlConfig::new(maria.url())))
        .unwrap();
    bench_sink(c, &rt, "mariadb", mysql);
}

criterion_group!(benches, sinks);
criterion_main!(benches);
