//! Shared helpers of the live tests.
#![allow(dead_code)]

pub mod accounts;

use std::time::Duration;

use cdc_core::event::{ChangeKind, Record, TableName, Value};
use cdc_core::{Source, SourceBatch};
use cdc_mysql::{MySqlConfig, MySqlSource, Password};
use cdc_testkit::MariaDb;

/// Starts MariaDB or fails with the kit's message (never skips).
pub fn mariadb() -> MariaDb {
    MariaDb::start().unwrap_or_else(|e| panic!("MariaDB test server could not start: {e}"))
}

/// A source config for `tables` of database `test`.
pub fn config(db: &MariaDb, tables: &[&str]) -> MySqlConfig {
    let mut cfg = MySqlConfig::new(
        db.host(),
        db.port(),
        db.user(),
        Password::new(db.password()),
    );
    cfg.tables = tables.iter().map(|t| TableName::new("test", *t)).collect();
    cfg.heartbeat = Duration::from_millis(500);
    cfg
}

/// Reads batches until `n` contain a `Commit`, acknowledging each, within 60 s
/// in all (heartbeats go on arriving when a transaction is lost).
pub async fn transactions(src: &mut MySqlSource, n: usize) -> Vec<SourceBatch> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    let mut seen = 0;
    while seen < n {
        let batch = tokio::time::timeout_at(deadline, src.next_batch())
            .await
            .expect("timed out waiting for the transactions")
            .expect("source error")
            .expect("stream ended");
        src.acknowledge(&batch.position).await.unwrap();
        if batch.records.iter().any(|r| matches!(r, Record::Commit(_))) {
            seen += 1;
            out.push(batch);
        }
    }
    out
}

/// One row change as (table name, kind, before, after).
pub type RowChange = (String, ChangeKind, Option<Vec<Value>>, Option<Vec<Value>>);

/// The row changes of some batches.
pub fn changes(batches: &[SourceBatch]) -> Vec<RowChange> {
    batches
        .iter()
        .flat_map(|b| b.records.iter())
        .filter_map(|r| match r {
            Record::Change(c) => Some((
                c.table.name.to_string(),
                c.kind,
                c.before.clone(),
                c.after.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// A plain connection to database `test` of `db`.
pub async fn connect(db: &MariaDb) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(db.host())
        .tcp_port(db.port())
        .user(Some(db.user()))
        .pass(Some(db.password()))
        .db_name(Some("test"));
    mysql_async::Conn::new(opts).await.expect("connects")
}

/// Runs SQL as root, panicking with the output on failure.
pub fn sql(db: &MariaDb, statement: &str) -> String {
    db.sql(&format!("SET NAMES utf8mb4; {statement}"))
        .unwrap_or_else(|e| panic!("sql failed: {e}"))
}
