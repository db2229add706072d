//! The online migration workflow on the model source: a new pipeline is
//! backfilled, catches up, is verified and replaces an old one while a writer
//! keeps changing the source; cancellation, resumption, abandonment and a
//! target that differs.

mod model_table;
mod pipeline_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cdc_core::event::{TableName, TableSchema};
use cdc_core::ingest::CancellationToken;
use cdc_core::migration::{
    Migration, MigrationConfig, MigrationError, MigrationPlan, MigrationStage,
};
use cdc_core::pipeline::{BoxedError, Pipeline, PipelineHandle};
use cdc_core::verify::ColumnMap;
use model_table::*;
use pipeline_support::{config, table};

/// The host's side: readers of the model table, and a cut-over that stops
/// the old pipeline.
struct Plan {
    source: ModelSource,
    schema: Arc<TableSchema>,
    /// What the verification reads as the new target.
    target: Rows,
    old: Arc<Mutex<Option<PipelineHandle>>>,
    chunk_readers: Arc<AtomicU32>,
    cut_overs: Arc<AtomicU32>,
    /// Fired when the readers are first asked for: a run stopped mid-way.
    cancel_at_verify: Option<CancellationToken>,
}

#[async_trait]
impl MigrationPlan for Plan {
    type Chunks = ModelChunks;
    type Source = SourceTable;
    type Sink = TargetTable;

    fn tables(&self) -> Vec<TableName> {
        vec![table("items")]
    }

    async fn chunks(&mut self, _: &TableName) -> Result<ModelChunks, BoxedError> {
        self.chunk_readers.fetch_add(1, Ordering::SeqCst);
        Ok(ModelChunks {
            source: self.source.clone(),
            schema: self.schema.clone(),
            chunk_rows: 40,
        })
    }

    async fn readers(
        &mut self,
        _: &TableName,
    ) -> Result<(SourceTable, TargetTable, ColumnMap), BoxedError> {
        if let Some(cancel) = self.cancel_at_verify.take() {
            cancel.cancel();
        }
        let columns = ColumnMap::by_name(&self.schema, &self.schema, &BTreeMap::new())?;
        let source = SourceTable {
            source: self.source.clone(),
            schema: self.schema.clone(),
        };
        let target = TargetTable {
            rows: self.target.clone(),
            schema: self.schema.clone(),
            text_order: false,
        };
        Ok((source, target, columns))
    }

    async fn cut_over(&mut self) -> Result<(), BoxedError> {
        self.cut_overs.fetch_add(1, Ordering::SeqCst);
        let old = self.old.lock().unwrap().take();
        if let Some(old) = old {
            old.shutdown().await?;
        }
        Ok(())
    }
}

/// The model run (its pipeline, "backfill", is the new one) and an old
/// pipeline from the log's start.
async fn with_old_pipeline(dir: &std::path::Path, seed: u64) -> (Run, Plan) {
    let run = setup(dir, seed).await;
    heartbeat(&run);
    let old = Pipeline::new(run.log.clone(), config("old"), TableSink(Rows::default()))
        .unwrap()
        .start()
        .await
        .unwrap();
    let plan = Plan {
        source: run.source.clone(),
        schema: run.schema.clone(),
        target: run.target.clone(),
        old: Arc::new(Mutex::new(Some(old))),
        chunk_readers: Arc::default(),
        cut_overs: Arc::default(),
        cancel_at_verify: None,
    };
    (run, plan)
}

fn migration_config(dir: &std::path::Path) -> MigrationConfig {
    let mut config = MigrationConfig::new(dir.join("migration"), "backfill", Some("old".into()));
    config.verify_chunk_rows = 50;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_under_writes_completes_and_releases_the_old_cursor() {
    for seed in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (run, plan) = with_old_pipeline(dir.path(), seed).await;
        let (cut_overs, old) = (plan.cut_overs.clone(), plan.old.clone());
        let stop = CancellationToken::new();
        let writer = tokio::spawn(write(
            run.source.clone(),
            run.queue.clone(),
            seed,
            stop.clone(),
        ));
        let mut migration = Migration::new(plan, migration_config(dir.path()));
        assert_eq!(migration.status().unwrap().stage, MigrationStage::Created);
        let status = migration
            .run(&run.pipeline, &CancellationToken::new())
            .await
            .unwrap();
        stop.cancel();
        assert!(
            writer.await.unwrap() > 20,
            "seed {seed}: the source changed"
        );
        assert_eq!(status.stage, MigrationStage::Completed, "seed {seed}");
        assert_eq!(status.backfilled, ["shop.items"]);
        assert_eq!(status.verified, ["shop.items"]);
        assert_eq!(cut_overs.load(Ordering::SeqCst), 1);
        assert!(
            old.lock().unwrap().is_none(),
            "the cut-over stopped the old pipeline"
        );
        assert_eq!(
            run.log.cursors().get("old").unwrap(),
            None,
            "old cursor removed"
        );
        assert!(run.log.cursors().get("backfill").unwrap().is_some());
        assert_eq!(migration.status().unwrap(), status, "the state is saved");

        // A completed migration does nothing more.
        let again = migration
            .run(&run.pipeline, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(again.stage, MigrationStage::Completed);
        assert_eq!(cut_overs.load(Ordering::SeqCst), 1);
        let (source, target) = settle(run).await;
        assert_eq!(target, source, "seed {seed}: the new target is the source");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_migration_resumes_without_backfilling_again() {
    let dir = tempfile::tempdir().unwrap();
    let (run, mut plan) = with_old_pipeline(dir.path(), 11).await;
    let cancel = CancellationToken::new();
    plan.cancel_at_verify = Some(cancel.clone());
    let (chunk_readers, cut_overs) = (plan.chunk_readers.clone(), plan.cut_overs.clone());
    let mut migration = Migration::new(plan, migration_config(dir.path()));
    let stopped = migration.run(&run.pipeline, &cancel).await.unwrap();
    assert_eq!(stopped.stage, MigrationStage::CatchingUp);
    assert_eq!(stopped.backfilled, ["shop.items"]);
    assert_eq!(
        cut_overs.load(Ordering::SeqCst),
        0,
        "no cut-over before verification"
    );

    let resumed = migration
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(resumed.stage, MigrationStage::Completed);
    assert_eq!(chunk_readers.load(Ordering::SeqCst), 1, "backfilled once");
    assert_eq!(cut_overs.load(Ordering::SeqCst), 1);
    let (source, target) = settle(run).await;
    assert_eq!(target, source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_migration_removes_only_the_new_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let (run, mut plan) = with_old_pipeline(dir.path(), 12).await;
    let cancel = CancellationToken::new();
    plan.cancel_at_verify = Some(cancel.clone());
    let old = plan.old.clone();
    let mut migration = Migration::new(plan, migration_config(dir.path()));
    migration.run(&run.pipeline, &cancel).await.unwrap();
    let old_cursor = run.log.cursors().get("old").unwrap();
    assert!(old_cursor.is_some());

    let abandoned = migration.abandon(run.pipeline).await.unwrap();
    assert_eq!(abandoned.stage, MigrationStage::Cancelled);
    assert_eq!(run.log.cursors().get("backfill").unwrap(), None);
    assert!(run.log.cursors().get("old").unwrap() >= old_cursor);
    let old = old
        .lock()
        .unwrap()
        .take()
        .expect("the old pipeline was left alone");
    old.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_differs_is_not_cut_over() {
    let dir = tempfile::tempdir().unwrap();
    let (run, mut plan) = with_old_pipeline(dir.path(), 13).await;
    // The verification reads another, empty table as the new target.
    plan.target = Rows::default();
    let cut_overs = plan.cut_overs.clone();
    let mut migration = Migration::new(plan, migration_config(dir.path()));
    let err = migration
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap_err();
    match err {
        MigrationError::NotEqual { missing, extra, .. } => {
            assert!(missing >= 400, "{missing} missing");
            assert_eq!(extra, 0);
        }
        other => panic!("expected NotEqual, got {other}"),
    }
    assert_eq!(
        migration.status().unwrap().stage,
        MigrationStage::CatchingUp
    );
    assert_eq!(cut_overs.load(Ordering::SeqCst), 0);
    assert!(run.log.cursors().get("old").unwrap().is_some());
    settle(run).await;
}
