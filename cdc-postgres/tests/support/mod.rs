//! Helpers shared by the live tests.
#![allow(dead_code)]

pub mod accounts;

use std::time::Duration;

use cdc_core::event::{Record, TableName};
use cdc_core::{Source, SourceBatch};
use cdc_postgres::{PostgresConfig, PostgresSource};
use cdc_testkit::Postgres;

/// Starts PostgreSQL or fails with the kit's message (never skips).
pub fn server() -> Postgres {
    Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start")
}

/// A source config for `tables` of schema `public`, slot `cdc_slot`.
pub fn config(pg: &Postgres, tables: &[&str]) -> PostgresConfig {
    let mut config = PostgresConfig::new(
        pg.user(),
        pg.database(),
        "cdc_slot",
        "cdc_pub",
        tables
            .iter()
            .map(|t| TableName::new("public", *t))
            .collect(),
    );
    config.port = pg.port();
    config
}

/// The next batch that holds row changes (heartbeat batches are skipped).
pub async fn next_tx(source: &mut PostgresSource) -> SourceBatch {
    let wait = async {
        loop {
            let batch = source
                .next_batch()
                .await
                .expect("next_batch")
                .expect("stream open");
            if batch.records.iter().any(|r| matches!(r, Record::Change(_))) {
                return batch;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("a transaction within 30 s")
}

/// The row changes of a batch.
pub fn changes(batch: &SourceBatch) -> Vec<&cdc_core::event::Change> {
    batch
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Change(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The first error of the stream (batches before it are dropped), within 30 s.
pub async fn stream_error(source: &mut PostgresSource) -> cdc_postgres::Error {
    let failed = async {
        loop {
            if let Err(error) = source.next_batch().await {
                return error;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), failed)
        .await
        .expect("the stream fails within 30 s")
}
