//! Reads a MariaDB/MySQL binlog from its first file with `cdc_mysql::MySqlSource`
//! until `rows` row changes were seen, appending every batch to a fresh
//! `cdc_core::ChangeLog` (fsync every batch) and acknowledging it, then prints
//! the elapsed seconds. Used by `benches/compare/mysql.sh`.
//!
//! Usage: mysql_read <host> <port> <user> <password> <rows> <log-dir>
use std::time::Instant;

use cdc_core::event::Record;
use cdc_core::{ChangeLog, LogConfig, Source};
use cdc_mysql::{MySqlConfig, MySqlSource, Password, StartFrom};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, user, password, rows, dir] = args.as_slice() else {
        eprintln!("usage: mysql_read <host> <port> <user> <password> <rows> <log-dir>");
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
    let log = ChangeLog::open(dir, LogConfig::default()).expect("open change log");
    let mut source = MySqlSource::new(config).expect("config");
    let started = Instant::now();
    source.start(None).await.expect("start");
    let mut seen = 0u64;
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
        let position = batch.position.clone();
        log.append(batch.records).await.expect("append");
        source.acknowledge(&position).await.expect("ack");
    }
    let elapsed = started.elapsed().as_secs_f64();
    log.close().await.expect("close");
    println!("{elapsed:.3}");
}
