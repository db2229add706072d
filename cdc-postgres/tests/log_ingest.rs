//! End to end into the real change log: append each batch, acknowledge after
//! it is durable, restart from the log's last durable position.

use std::time::Duration;

use cdc_core::event::{Record, TableName, Value};
use cdc_core::{ChangeLog, LogConfig, Source};
use cdc_postgres::{PostgresConfig, PostgresSource};
use cdc_testkit::Postgres;

async fn pump(source: &mut PostgresSource, log: &ChangeLog, transactions: usize) {
    let mut seen = 0;
    while seen < transactions {
        let batch = tokio::time::timeout(Duration::from_secs(30), source.next_batch())
            .await
            .expect("a batch within 30 s")
            .unwrap()
            .unwrap();
        if batch.records.iter().any(|r| matches!(r, Record::Commit(_))) {
            seen += 1;
        }
        log.append(batch.records).await.unwrap();
        source.acknowledge(&batch.position).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_restarted_from_the_logs_position_appends_each_transaction_once() {
    let pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.sql("CREATE TABLE e (id int PRIMARY KEY)").unwrap();
    let mut config = PostgresConfig::new(
        pg.user(),
        pg.database(),
        "log_slot",
        "log_pub",
        vec![TableName::new("public", "e")],
    );
    config.port = pg.port();
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();

    let mut source = PostgresSource::new(config.clone());
    source.start(log.last_source_position()).await.unwrap();
    pg.sql("INSERT INTO e VALUES (1)").unwrap();
    pg.sql("INSERT INTO e VALUES (2)").unwrap();
    pump(&mut source, &log, 2).await;
    drop(source);

    pg.sql("INSERT INTO e VALUES (3)").unwrap();
    let mut source = PostgresSource::new(config);
    source.start(log.last_source_position()).await.unwrap();
    pump(&mut source, &log, 1).await;

    let ids: Vec<Value> = log
        .read(0, 1000)
        .unwrap()
        .iter()
        .filter_map(|entry| match entry.record().unwrap() {
            Record::Change(c) => c.after.map(|row| row[0].clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
    log.close().await.unwrap();
}
