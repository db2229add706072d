//! End to end: the live source through cdc-core's ingest runner into the change
//! log, stopped and resumed from the log's last durable position.

mod support;

use std::time::Duration;

use cdc_core::event::{Record, Value};
use cdc_core::ingest::{CancellationToken, run};
use cdc_core::{ChangeLog, LogConfig};
use cdc_mysql::{MySqlSource, StartFrom};
use support::*;

fn logged_ids(log: &ChangeLog) -> (Vec<i64>, usize) {
    let mut ids = Vec::new();
    let mut schemas = 0;
    for entry in log.read(0, 100_000).unwrap() {
        match entry.record().unwrap() {
            Record::Change(c) => match c.after.unwrap()[0] {
                Value::Int(id) => ids.push(id),
                ref v => panic!("{v:?}"),
            },
            Record::Schema(_) => {
                assert!(ids.is_empty() || schemas > 0);
                schemas += 1;
            }
            _ => {}
        }
    }
    (ids, schemas)
}

async fn ingest_until(db_cfg: &cdc_mysql::MySqlConfig, log: &ChangeLog, rows: usize) {
    let token = CancellationToken::new();
    let mut source = MySqlSource::new(db_cfg.clone()).unwrap();
    let runner = {
        let log = log.clone();
        let token = token.clone();
        tokio::spawn(async move { run(&mut source, &log, &token).await })
    };
    for _ in 0..300 {
        if logged_ids(log).0.len() >= rows {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    runner.await.unwrap().expect("ingest runs cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_reach_the_change_log_and_resume_from_its_last_durable_position() {
    let db = mariadb();
    sql(&db, "CREATE TABLE test.t (id INT PRIMARY KEY)");
    for i in 1..=3 {
        sql(&db, &format!("INSERT INTO test.t VALUES ({i})"));
    }
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut cfg = config(&db, &["t"]);
    cfg.start_from = StartFrom::Earliest;

    ingest_until(&cfg, &log, 3).await;
    sql(
        &db,
        "INSERT INTO test.t VALUES (4); INSERT INTO test.t VALUES (5)",
    );
    ingest_until(&cfg, &log, 5).await;

    let (ids, schemas) = logged_ids(&log);
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert!(schemas >= 1);
    log.close().await.unwrap();
}
