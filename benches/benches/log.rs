//! Change-log benches: append (100 B and 1 KiB records, each fsync policy, one
//! appender and eight concurrent ones), sequential read, and eight concurrent
//! subscribers reading from the page cache.

use std::time::Duration;

use cdc_core::event::{Change, ChangeKind, Record, SourcePosition, TableName, Value};
use cdc_core::{ChangeLog, FsyncPolicy, LogConfig};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use futures::StreamExt;

/// A change whose archived payload is about `size` bytes.
fn record(size: usize) -> Record {
    let make = |pad: usize| {
        Record::Change(Change {
            table: TableName::new("public", "t"),
            kind: ChangeKind::Insert,
            before: None,
            after: Some(vec![Value::UInt(7), Value::Bytes(vec![0xAB; pad])]),
            position: SourcePosition::Postgres { lsn: 1 },
            txid: None,
            commit_time_micros: 0,
        })
    };
    let overhead = cdc_core::codec::encode(&make(0)).unwrap().len();
    make(size.saturating_sub(overhead))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(fsync: FsyncPolicy) -> LogConfig {
    LogConfig {
        fsync,
        ..LogConfig::default()
    }
}

fn append(c: &mut Criterion) {
    let rt = runtime();
    for (size_name, size, batch) in [("100B", 100, 1000), ("1KiB", 1024, 256)] {
        let mut group = c.benchmark_group(format!("append_{size_name}"));
        group.throughput(Throughput::Elements(batch as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        let records = vec![record(size); batch];
        for (name, fsync) in [
            ("every_batch", FsyncPolicy::EveryBatch),
            (
                "interval_10ms",
                FsyncPolicy::Interval(Duration::from_millis(10)),
            ),
            ("never", FsyncPolicy::Never),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let log = ChangeLog::open(dir.path(), config(fsync)).unwrap();
            group.bench_function(name, |b| {
                b.iter_batched(
                    || records.clone(),
                    |r| rt.block_on(log.append(r)).unwrap(),
                    BatchSize::SmallInput,
                )
            });
            // Eight appenders of 1/8 of the batch each: group commit shares fsyncs.
            let eighth = records[..batch / 8].to_vec();
            group.bench_function(format!("{name}_8_concurrent"), |b| {
                b.iter_batched(
                    || (0..8).map(|_| eighth.clone()).collect::<Vec<_>>(),
                    |parts| {
                        rt.block_on(async {
                            let tasks: Vec<_> = parts
                                .into_iter()
                                .map(|part| {
                                    let log = log.clone();
                                    tokio::spawn(async move { log.append(part).await.unwrap() })
                                })
                                .collect();
                            for t in tasks {
                                t.await.unwrap();
                            }
                        })
                    },
                    BatchSize::SmallInput,
                )
            });
            rt.block_on(log.close()).unwrap();
        }
        group.finish();
    }
}

const READ_RECORDS: u64 = 200_000;

fn filled_log(rt: &tokio::runtime::Runtime) -> (tempfile::TempDir, ChangeLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), config(FsyncPolicy::Never)).unwrap();
    let batch = vec![record(100); 1000];
    rt.block_on(async {
        for _ in 0..READ_RECORDS / 1000 {
            log.append(batch.clone()).await.unwrap();
        }
    });
    (dir, log)
}

fn read(c: &mut Criterion) {
    let rt = runtime();
    let (_dir, log) = filled_log(&rt);
    let mut group = c.benchmark_group("read_100B");
    group.throughput(Throughput::Elements(READ_RECORDS));
    group.sample_size(10);
    group.bench_function("sequential", |b| {
        b.iter(|| {
            let mut at = 0;
            while at < READ_RECORDS {
                let entries = log.read(at, 4096).unwrap();
                at += entries.len() as u64;
            }
        })
    });
    group.bench_function("sequential_validated", |b| {
        b.iter(|| {
            let mut at = 0;
            while at < READ_RECORDS {
                for e in log.read(at, 4096).unwrap() {
                    e.archived().unwrap();
                    at += 1;
                }
            }
        })
    });
    group.throughput(Throughput::Elements(READ_RECORDS * 8));
    group.bench_function("8_subscribers", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let mut sub = log.subscribe(0);
                        tokio::spawn(async move {
                            let mut n = 0;
                            while n < READ_RECORDS {
                                sub.next().await.unwrap().unwrap();
                                n += 1;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    group.finish();
    rt.block_on(log.close()).unwrap();
}

/// Runs every change-log bench (written out because `criterion_group!`
/// generates an undocumented public function).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    append(&mut criterion);
    read(&mut criterion);
}
criterion_main!(benches);
