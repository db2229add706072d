//! The `accounts` table streamed into a MariaDB sink while a writer changes
//! it: the ground of the backfill and verification tests.

use std::time::Duration;

use cdc_core::ingest::{self, CancellationToken, IngestSummary};
use cdc_core::pipeline::{Pipeline, PipelineConfig, PipelineError, PipelineHandle};
use cdc_core::{ChangeLog, LogConfig};
use cdc_mysql::{MySqlConfig, MySqlSource};
use cdc_testkit::MariaDb;
use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{config, connect, sql};

/// Source rows 1 to 3000 (every 50th with a long `big`), and the sink's
/// target table `copy.accounts` holding a row the source never had.
pub const ACCOUNTS: &str = "
    CREATE TABLE test.accounts (id BIGINT PRIMARY KEY, owner VARCHAR(200) NOT NULL,
        balance DECIMAL(14,2) NOT NULL, big MEDIUMTEXT);
    INSERT INTO test.accounts SELECT seq, CONCAT('owner ', seq), seq * 0.25,
        IF(seq % 50 = 0, REPEAT(CONCAT('long ', seq), 400), NULL) FROM test.seq_1_to_3000;
    ANALYZE TABLE test.accounts;
    CREATE DATABASE copy;
    CREATE TABLE copy.accounts (id BIGINT PRIMARY KEY, owner VARCHAR(200),
        balance DECIMAL(14,2), big MEDIUMTEXT);
    INSERT INTO copy.accounts VALUES (-5, 'left from before', 0, NULL);";

/// Random updates, deletes, re-inserts and multi-row transactions of ids 1
/// to 3541 until `until` fires; returns how many it made.
pub async fn write_accounts(mut conn: mysql_async::Conn, until: CancellationToken) -> u32 {
    let mut rng = StdRng::seed_from_u64(7);
    let mut ops = 0;
    while !until.is_cancelled() {
        ops += 1;
        let id: i64 = rng.random_range(1..=3500);
        let sql = match rng.random_range(0..10) {
            0..=4 => format!("UPDATE test.accounts SET balance = balance + 1.5 WHERE id = {id}"),
            5 => format!("UPDATE test.accounts SET big = REPEAT('u{ops}', 500) WHERE id = {id}"),
            6 => format!("DELETE FROM test.accounts WHERE id = {id}"),
            7 | 8 => format!(
                "INSERT INTO test.accounts VALUES ({id}, 'new {ops}', {ops}, NULL)
                 ON DUPLICATE KEY UPDATE owner = VALUES(owner)"
            ),
            _ => format!(
                "START TRANSACTION;
                 UPDATE test.accounts SET owner = CONCAT(owner, '+') WHERE id BETWEEN {id} AND {id} + 40;
                 DELETE FROM test.accounts WHERE id = {id} + 41; COMMIT"
            ),
        };
        conn.query_drop(sql).await.unwrap();
        if rng.random_bool(0.3) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    ops
}

/// `accounts` streamed into a log, and the log into the MariaDB sink's
/// database `copy`.
pub struct Streaming {
    pub config: MySqlConfig,
    pub log: ChangeLog,
    pub pipeline: PipelineHandle,
    stop_ingest: CancellationToken,
    ingest: tokio::task::JoinHandle<Result<IngestSummary, PipelineError>>,
}

impl Streaming {
    /// Starts the ingest and the pipeline; returns once the ingest runner
    /// has declared its tables.
    pub async fn start(db: &MariaDb, dir: &std::path::Path) -> Self {
        let mut config = config(db, &["accounts"]);
        // A quiet binlog's position reaches the log at the next heartbeat.
        config.heartbeat = Duration::from_millis(300);
        let log = ChangeLog::open(dir.join("log"), LogConfig::default()).unwrap();
        let mut source = MySqlSource::new(config.clone()).unwrap();
        let stop_ingest = CancellationToken::new();
        let ingest = tokio::spawn({
            let (log, stop) = (log.clone(), stop_ingest.clone());
            async move { ingest::run(&mut source, &log, &stop).await }
        });
        let mut sink_config = cdc_sinks::MySqlConfig::new(db.url());
        sink_config.database = Some("copy".into());
        let sink = cdc_sinks::MySqlSink::connect(sink_config).await.unwrap();
        let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("copy"), sink)
            .unwrap()
            .start()
            .await
            .unwrap();
        let mut waited = 0;
        while log.declared_tables().is_none() {
            waited += 1;
            assert!(waited < 200, "the ingest runner never declared its tables");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            config,
            log,
            pipeline,
            stop_ingest,
            ingest,
        }
    }

    /// A writer of random changes until `until` fires.
    pub async fn writer(
        &self,
        db: &MariaDb,
        until: &CancellationToken,
    ) -> tokio::task::JoinHandle<u32> {
        tokio::spawn(write_accounts(connect(db).await, until.clone()))
    }

    /// Inserts a marker row and waits for the target to have it: then the
    /// target has every change before it.
    pub async fn caught_up(&self, db: &MariaDb, marker: i64) {
        sql(
            db,
            &format!("INSERT INTO test.accounts VALUES ({marker}, 'marker', 0, NULL)"),
        );
        let mut waited = 0;
        while sql(
            db,
            &format!("SELECT COUNT(*) FROM copy.accounts WHERE id = {marker}"),
        )
        .trim()
            != "1"
        {
            waited += 1;
            assert!(waited < 600, "the marker never reached the target");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the pipeline and the ingest.
    pub async fn stop(self) {
        self.pipeline.shutdown().await.unwrap();
        self.stop_ingest.cancel();
        self.ingest.await.unwrap().unwrap();
    }
}
