//! The `accounts` table streamed into a PostgreSQL sink while a writer
//! changes it: the ground of the backfill and verification tests.

use std::time::Duration;

use cdc_core::ingest::{self, CancellationToken};
use cdc_core::pipeline::{Pipeline, PipelineConfig, PipelineError, PipelineHandle};
use cdc_core::{ChangeLog, LogConfig};
use cdc_postgres::{PostgresConfig, PostgresSource, connect_client};
use cdc_testkit::Postgres;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config;

/// Source rows 1 to 3000 (every 50th with a TOASTed `big`), and the sink's
/// target table `copy.accounts` holding a row the source never had.
pub const ACCOUNTS: &str = "
    CREATE TABLE public.accounts (id bigint PRIMARY KEY, owner text NOT NULL,
        balance numeric(14,2) NOT NULL, big text);
    ALTER TABLE public.accounts ALTER COLUMN big SET STORAGE EXTERNAL;
    INSERT INTO public.accounts SELECT g, 'owner ' || g, g * 0.25,
        CASE WHEN g % 50 = 0 THEN repeat('toasted ' || g, 400) END
        FROM generate_series(1, 3000) g;
    ANALYZE public.accounts;
    CREATE SCHEMA copy;
    CREATE TABLE copy.accounts (id bigint PRIMARY KEY, owner text, balance numeric(14,2), big text);
    INSERT INTO copy.accounts VALUES (-5, 'left from before', 0, NULL);";

/// Random updates (some leaving the TOASTed column unchanged), deletes,
/// re-inserts and multi-row transactions of ids 1 to 3541, until `until`
/// fires; returns how many it made.
pub async fn write_accounts(client: tokio_postgres::Client, until: CancellationToken) -> u32 {
    let mut rng = StdRng::seed_from_u64(42);
    let mut ops = 0;
    while !until.is_cancelled() {
        ops += 1;
        let id: i64 = rng.random_range(1..=3500);
        let sql = match rng.random_range(0..10) {
            0..=4 => format!("UPDATE public.accounts SET balance = balance + 1.5 WHERE id = {id}"),
            5 => format!("UPDATE public.accounts SET big = repeat('u{ops}', 1500) WHERE id = {id}"),
            6 => format!("DELETE FROM public.accounts WHERE id = {id}"),
            7 | 8 => format!(
                "INSERT INTO public.accounts VALUES ({id}, 'new {ops}', {ops}, NULL)
                 ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner"
            ),
            _ => format!(
                "BEGIN; UPDATE public.accounts SET owner = owner || '+' WHERE id BETWEEN {id} AND {id} + 40;
                 DELETE FROM public.accounts WHERE id = {id} + 41; COMMIT;"
            ),
        };
        client.batch_execute(&sql).await.unwrap();
        if rng.random_bool(0.3) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    ops
}

/// `accounts` streamed from a fresh slot into a log, and the log into the
/// PostgreSQL sink's schema `copy`.
pub struct Streaming {
    pub config: PostgresConfig,
    pub log: ChangeLog,
    pub pipeline: PipelineHandle,
    stop_ingest: CancellationToken,
    ingest: tokio::task::JoinHandle<(PostgresSource, Result<(), PipelineError>)>,
}

impl Streaming {
    /// Starts the ingest and the pipeline; returns once the ingest runner
    /// has declared its tables (as a backfill or verification checks them).
    pub async fn start(pg: &Postgres, dir: &std::path::Path) -> Self {
        let mut config = config(pg, &["accounts"]);
        // A quiet source's position moves on at its next heartbeat.
        config.heartbeat_interval = Duration::from_millis(300);
        let log = ChangeLog::open(dir.join("log"), LogConfig::default()).unwrap();
        let mut source = PostgresSource::new(config.clone());
        let stop_ingest = CancellationToken::new();
        let ingest = tokio::spawn({
            let (log, stop) = (log.clone(), stop_ingest.clone());
            async move {
                let summary = ingest::run(&mut source, &log, &stop).await;
                (source, summary.map(drop))
            }
        });
        let mut sink_config = cdc_sinks::PostgresConfig::new(pg.connection_string());
        sink_config.schema = "copy".into();
        let sink = cdc_sinks::PostgresSink::connect(sink_config).await.unwrap();
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
    pub async fn writer(&self, until: &CancellationToken) -> tokio::task::JoinHandle<u32> {
        let client = connect_client(&self.config).await.unwrap();
        tokio::spawn(write_accounts(client, until.clone()))
    }

    /// Inserts a marker row and waits for the target to have it: then the
    /// target has every change before it.
    pub async fn caught_up(&self, pg: &Postgres, marker: i64) {
        pg.sql(&format!(
            "INSERT INTO public.accounts VALUES ({marker}, 'marker', 0, NULL)"
        ))
        .unwrap();
        let mut waited = 0;
        while pg
            .sql(&format!(
                "SELECT count(*) FROM copy.accounts WHERE id = {marker}"
            ))
            .unwrap()
            .trim()
            != "1"
        {
            waited += 1;
            assert!(waited < 600, "the marker never reached the target");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the pipeline and the ingest, and drops the slot.
    pub async fn stop(self) {
        self.pipeline.shutdown().await.unwrap();
        self.stop_ingest.cancel();
        let (mut source, ingested) = self.ingest.await.unwrap();
        ingested.unwrap();
        source.drop_slot_and_publication().await.unwrap();
    }
}
