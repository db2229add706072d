//! Reads a MariaDB/MySQL binlog from its first file with `cdc_mysql::MySqlSource`
//! until `rows` row changes were seen and prints the elapsed seconds. Used by
//! `benches/compare/mysql.sh`.
//!
//! Sink `log`: the source runs under `cdc_core::ingest::run`, the loop a host
//! uses, into a fresh `cdc_core::ChangeLog` (default config: fsync every batch,
//! group commit); the time ends when the last batch is durable and acknowledged.
//! Sink `discard`: batches are acknowledged and dropped after decoding.
//!
//! Usage: mysql_read <host> <port> <user> <password> <rows> <log|discard> <log-dir>
use std::time::Instant;

use cdc_benches::{FirstRows, read_all};
use cdc_core::{ChangeLog, LogConfig};
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
    let mut config = MySqlConfig::new(
        host.clone(),
        port.parse().expect("port"),
        user.clone(),
        Password::new(password.clone()),
    );
    config.start_from = StartFrom::Earliest;
    // A replica id of its own per run: the server keeps the previous run's dump
    // thread until a new replica with the same id replaces it, which costs a
    // ~100 ms wait that the raw copy (no replica id) never pays.
    config.server_id = 10_000 + std::process::id();
    let mut source = FirstRows::new(
        MySqlSource::new(config).expect("config"),
        rows.parse().expect("rows is a number"),
    );
    let log = (sink == "log")
        .then(|| ChangeLog::open(dir, LogConfig::default()).expect("open change log"));
    let started = Instant::now();
    read_all(&mut source, log.as_ref()).await;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(log) = log {
        log.close().await.expect("close");
    }
    println!("{elapsed:.3}");
}
