//! An online migration on a live PostgreSQL source while a writer keeps
//! changing it: the new pipeline's target (a PostgreSQL sink) is truncated,
//! backfilled, caught up, verified and cut over to, and the old pipeline's
//! cursor is released, with one read of the source's log.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cdc_core::event::TableName;
use cdc_core::ingest::CancellationToken;
use cdc_core::migration::{Migration, MigrationConfig, MigrationPlan, MigrationStage};
use cdc_core::pipeline::{BoxedError, Pipeline, PipelineConfig, PipelineHandle};
use cdc_core::verify::{ColumnMap, TableReader};
use cdc_postgres::{PostgresChunks, PostgresConfig, PostgresTable};
use cdc_sinks::{JsonlConfig, JsonlSink};
use support::accounts::{ACCOUNTS, Streaming};
use support::*;

/// `public.accounts` into `copy.accounts`; the cut-over stops the old
/// pipeline.
struct Plan {
    config: PostgresConfig,
    old: Option<PipelineHandle>,
    cut_overs: Arc<AtomicU32>,
}

fn accounts() -> TableName {
    TableName::new("public", "accounts")
}

#[async_trait]
impl MigrationPlan for Plan {
    type Chunks = PostgresChunks;
    type Source = PostgresTable;
    type Sink = PostgresTable;

    fn tables(&self) -> Vec<TableName> {
        vec![accounts()]
    }

    async fn chunks(&mut self, table: &TableName) -> Result<PostgresChunks, BoxedError> {
        Ok(PostgresChunks::connect(&self.config, table, 400).await?)
    }

    async fn readers(
        &mut self,
        table: &TableName,
    ) -> Result<(PostgresTable, PostgresTable, ColumnMap), BoxedError> {
        let source = PostgresTable::connect(&self.config, table).await?;
        let copy = TableName::new("copy", table.name.as_ref());
        let sink = PostgresTable::connect(&self.config, &copy).await?;
        let columns = ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new())?;
        Ok((source, sink, columns))
    }

    async fn cut_over(&mut self) -> Result<(), BoxedError> {
        self.cut_overs.fetch_add(1, Ordering::SeqCst);
        if let Some(old) = self.old.take() {
            old.shutdown().await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_during_writes_replaces_the_old_pipeline_with_an_equal_target() {
    let pg = server();
    pg.sql(ACCOUNTS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The new pipeline is the streaming one, into `copy`; the old one writes
    // files from the same log.
    let streaming = Streaming::start(&pg, dir.path()).await;
    let old_sink = JsonlSink::open(JsonlConfig::new(dir.path().join("old")))
        .await
        .unwrap();
    let old = Pipeline::new(streaming.log.clone(), PipelineConfig::new("old"), old_sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    let stop_writer = CancellationToken::new();
    let writer = streaming.writer(&stop_writer).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let old_cursor = streaming.log.cursors().get("old").unwrap();

    let cut_overs = Arc::new(AtomicU32::new(0));
    let plan = Plan {
        config: streaming.config.clone(),
        old: Some(old),
        cut_overs: cut_overs.clone(),
    };
    let mut config = MigrationConfig::new(dir.path().join("migration"), "copy", Some("old".into()));
    config.verify_chunk_rows = 500;
    let mut migration = Migration::new(plan, config);
    let status = migration
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    stop_writer.cancel();
    let writes = writer.await.unwrap();
    assert!(writes > 20, "only {writes} writes during the migration");
    assert_eq!(status.stage, MigrationStage::Completed);
    assert_eq!(status.backfilled, ["public.accounts"]);
    assert_eq!(status.verified, ["public.accounts"]);
    assert_eq!(cut_overs.load(Ordering::SeqCst), 1);
    assert!(old_cursor.is_some(), "the old pipeline had a cursor");
    assert_eq!(
        streaming.log.cursors().get("old").unwrap(),
        None,
        "the old cursor is released"
    );
    assert_eq!(migration.status().unwrap(), status);

    // The new target is the source, and the row it held before the
    // migration is gone (truncate first).
    streaming.caught_up(&pg, 1_000_000).await;
    let differences = pg
        .sql(
            "SELECT count(*) FROM ((TABLE public.accounts EXCEPT TABLE copy.accounts)
                 UNION ALL (TABLE copy.accounts EXCEPT TABLE public.accounts)) d",
        )
        .unwrap();
    assert_eq!(differences.trim(), "0");
    let leftover = pg
        .sql("SELECT count(*) FROM copy.accounts WHERE id = -5")
        .unwrap();
    assert_eq!(leftover.trim(), "0");
    streaming.stop().await;
}
