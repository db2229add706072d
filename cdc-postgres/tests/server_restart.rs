//! The source under the ingest runner while PostgreSQL misbehaves: a server
//! restart mid-stream, and concurrent transactions that interleave their writes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cdc_core::event::{Record, TableName, Value};
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::{ChangeLog, LogConfig};
use cdc_postgres::{PostgresConfig, PostgresSource};
use cdc_testkit::Postgres;

fn config(pg: &Postgres, slot: &str) -> PostgresConfig {
    let mut config = PostgresConfig::new(
        pg.user(),
        pg.database(),
        slot,
        format!("{slot}_pub"),
        vec![TableName::new("public", "e")],
    );
    config.port = pg.port();
    config
}

/// Every inserted id in the log, in log order.
fn logged_ids(log: &ChangeLog) -> Vec<i64> {
    let end = log.offsets().durable;
    log.read(0, end as usize)
        .unwrap()
        .iter()
        .filter_map(|entry| match entry.record().unwrap() {
            Record::Change(c) => match c.after.as_deref() {
                Some([Value::Int(id), ..]) => Some(*id),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Keeps an ingest runner going like a host application would: after an error
/// (the server went away), start it again after a short pause.
fn supervise(
    log: &ChangeLog,
    config: PostgresConfig,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<u32> {
    let log = log.clone();
    tokio::spawn(async move {
        let mut failures = 0;
        while !stop.is_cancelled() {
            let mut source = PostgresSource::new(config.clone());
            match ingest::run(&mut source, &log, &stop).await {
                Ok(_) => break,
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        failures
    })
}

async fn wait_for_ids(log: &ChangeLog, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while logged_ids(log).len() < count {
        assert!(
            Instant::now() < deadline,
            "the log has {} of {count} changes after 60 s",
            logged_ids(log).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_loses_and_repeats_nothing() {
    let mut pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.sql("CREATE TABLE e (id int PRIMARY KEY)").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    // Create the slot before the first insert, so the stream covers every row.
    let mut first = PostgresSource::new(config(&pg, "restart_slot"));
    cdc_core::Source::start(&mut first, None).await.unwrap();
    drop(first);

    let stop = CancellationToken::new();
    // No heartbeat to break the wait: the fast shutdown must finish because
    // the reader confirms everything the walsender sent, which needs the
    // runner to acknowledge the batches it holds (ten rows just committed).
    let mut reader = config(&pg, "restart_slot");
    reader.heartbeat_interval = Duration::from_secs(3600);
    let runner = supervise(&log, reader, stop.clone());
    pg.sql("INSERT INTO e SELECT g FROM generate_series(1, 100) g")
        .unwrap();
    wait_for_ids(&log, 100).await;
    // Rows committed just before the restart may or may not have been streamed.
    for id in 101..=110 {
        pg.sql(&format!("INSERT INTO e VALUES ({id})")).unwrap();
    }
    tokio::task::block_in_place(|| pg.restart()).expect("PostgreSQL restarts");
    for id in 111..=120 {
        pg.sql(&format!("INSERT INTO e VALUES ({id})")).unwrap();
    }
    wait_for_ids(&log, 120).await;
    stop.cancel();
    let failures = runner.await.unwrap();

    // The source reconnected by itself: the runner never saw an error.
    assert_eq!(failures, 0);
    assert_eq!(logged_ids(&log), (1..=120).collect::<Vec<_>>());
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_concurrent_transactions_arrive_whole_in_commit_order() {
    let pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.sql("CREATE TABLE e (id int PRIMARY KEY)").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut source = PostgresSource::new(config(&pg, "interleave_slot"));
    cdc_core::Source::start(&mut source, None).await.unwrap();
    drop(source);

    let connect = || async {
        let (client, connection) =
            tokio_postgres::connect(&pg.connection_string(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        client
    };
    let (a, b) = (connect().await, connect().await);
    a.batch_execute("BEGIN").await.unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    for i in 0..5 {
        a.execute("INSERT INTO e VALUES ($1)", &[&(100 + i)])
            .await
            .unwrap();
        b.execute("INSERT INTO e VALUES ($1)", &[&(200 + i)])
            .await
            .unwrap();
    }
    // b commits first, so it comes first in the stream.
    b.batch_execute("COMMIT").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();

    let stop = CancellationToken::new();
    let runner = supervise(&log, config(&pg, "interleave_slot"), stop.clone());
    wait_for_ids(&log, 10).await;
    stop.cancel();
    runner.await.unwrap();

    // Group the changes by the transaction that holds them, in log order.
    let end = log.offsets().durable;
    let mut transactions: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    let mut open = None;
    for entry in log.read(0, end as usize).unwrap() {
        match entry.record().unwrap() {
            Record::Begin(_) => open = Some(entry.offset),
            Record::Commit(_) => open = None,
            Record::Change(c) => {
                let Some(Value::Int(id)) = c.after.as_ref().and_then(|row| row.first()) else {
                    panic!("an insert carries its row");
                };
                let begin = open.expect("every change is inside a transaction");
                transactions.entry(begin).or_default().push(*id);
            }
            _ => {}
        }
    }
    let transactions: Vec<Vec<i64>> = transactions.into_values().collect();
    assert_eq!(
        transactions,
        vec![(200..205).collect::<Vec<_>>(), (100..105).collect()],
        "two whole transactions, the first committed first"
    );
    log.close().await.unwrap();
}
