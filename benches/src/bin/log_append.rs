//! Appends 1 KiB records to a change log with group-commit fsync (EveryBatch) as
//! fast as it can and prints the throughput; used by `benches/compare/log.sh`.
//!
//! Usage: `log_append <dir> [megabytes=2048] [appenders=4] [records_per_append=1024]`

use std::time::Instant;

use cdc_core::event::{Change, ChangeKind, Record, SourcePosition, TableName, Value};
use cdc_core::{ChangeLog, FsyncPolicy, LogConfig};

/// A change whose archived payload is exactly `size` bytes (or a little more).
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: log_append <dir> [megabytes] [appenders] [records_per_append]");
        std::process::exit(2);
    };
    let arg = |i: usize, default: u64| {
        args.get(i)
            .map(|a| a.parse().expect("numeric argument"))
            .unwrap_or(default)
    };
    let megabytes = arg(2, 2048);
    let appenders = arg(3, 4);
    let per_append = arg(4, 1024) as usize;
    let total_records = megabytes * 1024;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = ChangeLog::open(
        dir,
        LogConfig {
            // LOG_APPEND_FSYNC=never measures the CPU side alone.
            fsync: match std::env::var("LOG_APPEND_FSYNC").as_deref() {
                Ok("never") => FsyncPolicy::Never,
                _ => FsyncPolicy::EveryBatch,
            },
            ..LogConfig::default()
        },
    )
    .unwrap();
    let template = vec![record(1024); per_append];
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..appenders)
            .map(|i| {
                let log = log.clone();
                let template = template.clone();
                let mine = total_records / appenders + u64::from(i < total_records % appenders);
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while done < mine {
                        let n = (mine - done).min(per_append as u64) as usize;
                        log.append(template[..n].to_vec()).await.unwrap();
                        done += n as u64;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        log.close().await.unwrap();
    });
    let secs = started.elapsed().as_secs_f64();
    let bytes = total_records as f64 * 1024.0;
    println!(
        "log_append: {:.1} MB/s ({total_records} records of 1 KiB in {secs:.2} s, {:.0} records/s)",
        bytes / secs / 1e6,
        total_records as f64 / secs
    );
}
