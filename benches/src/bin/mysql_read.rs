//! Reads a MariaDB/MySQL binlog from its first file with `cdc_mysql::MySqlSource`
//! until `rows` row changes were seen and prints the elapsed seconds. Used by
//! `benches/compare/mysql.sh`.
//!
//! Sink `log`: every batch is appended to a fresh `cdc_core::ChangeLog` (default
//! config: fsync every batch, group commit) and acknowledged once durable; up to
//! 256 appends are in flight so group commit can batch their fsyncs. Sink
//! `discard`: batches are dropped after decoding.
//!
//! Usage: mysql_read <host> <port> <user> <password> <rows> <log|discard> <log-dir>
use std::collections::VecDeque;
use std::time::Instant;

use cdc_core::event::Record;
use cdc_core::{ChangeLog, LogConfig, Source};
use cdc_mysql::{MySqlConfig, MySqlSource, Password, StartFrom};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, user, password, rows, sink, dir] = args.as_slice() else {
        eprintln!(
            "usage: mysql_read <host> <port> <user> <password> <rows> <log|discard> <log-dir>"
        );
        std::process::exit(2);
    };
    let want: u64 = rows.parse().expect("rows is a number");
    let mut config = MySqlConfig::new(
        host.clone(),
        port.parse().expect("port"),
        user.clone(),
        Password::new(password.clone()),
    );
    config.start_from = StartFrom::Earliest;
    let log = (sink == "log")
        .then(|| ChangeLog::open(dir, LogConfig::default()).expect("open change log"));
    let mut source = MySqlSource::new(config).expect("config");
    let started = Instant::now();
    source.start(None).await.expect("start");
    let mut seen = 0u64;
    let mut in_flight = VecDeque::new();
    while seen < want {
        let batch = source
            .next_batch()
            .await
            .expect("next batch")
            .expect("stream ended");
        seen += batch
            .records
            .iter()
            .filter(|r| matches!(r, Record::Change(_)))
            .count() as u64;
        if let Some(log) = &log {
            let position = batch.position.clone();
            let log = log.clone();
            in_flight.push_back((
                tokio::spawn(async move { log.append(batch.records).await }),
                position,
            ));
            while in_flight.len() > 256 {
                let (append, position) = in_flight.pop_front().expect("in flight");
                append.await.expect("join").expect("append");
                source.acknowledge(&position).await.expect("ack");
            }
        }
    }
    for (append, position) in in_flight {
        append.await.expect("join").expect("append");
        source.acknowledge(&position).await.expect("ack");
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(log) = log {
        log.close().await.expect("close");
    }
    println!("{elapsed:.3}");
}
