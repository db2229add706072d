//! Backfill concurrent with streaming, on a model source: a table whose
//! changes are logged with a lag (as a real source's are), read in chunks
//! while a writer keeps changing it. The target must end as the source.

mod model_table;
mod pipeline_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cdc_core::backfill::{
    Backfill, BackfillConfig, BackfillError, BackfillProgress, Destination, run_all,
};
use cdc_core::event::{Change, ChangeKind, SourcePosition};
use cdc_core::ingest::CancellationToken;
use cdc_core::pipeline::Pipeline;
use model_table::*;
use pipeline_support::{config, schema, table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_under_concurrent_changes_ends_in_the_source_state() {
    for seed in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let run = setup(dir.path(), seed).await;
        let stop = CancellationToken::new();
        let writer = tokio::spawn(write(
            run.source.clone(),
            run.queue.clone(),
            seed,
            stop.clone(),
        ));
        let chunks = ModelChunks {
            source: run.source.clone(),
            schema: run.schema.clone(),
            chunk_rows: 37,
        };
        let mut config = BackfillConfig::new(dir.path().join("items.backfill"));
        config.destination = Destination::TruncateFirst;
        if seed % 2 == 0 {
            // Chunks wait for each other, so the source changes between them.
            config.max_rows_per_second = Some(4000);
        } else {
            // Holds of a few chunks, each read while the last is applied.
            config.max_hold = Duration::from_millis(4);
        }
        let mut backfill = Backfill::new(chunks, config);
        let summary = backfill
            .run(&run.pipeline, &CancellationToken::new())
            .await
            .unwrap();
        assert!(summary.done, "seed {seed}");
        assert!(
            summary.rows >= 300,
            "seed {seed}: {} rows copied",
            summary.rows
        );
        stop.cancel();
        let changes = writer.await.unwrap();
        assert!(
            changes > 20,
            "seed {seed}: {changes} changes; the source changed throughout"
        );
        let (source, target) = settle(run).await;
        assert_eq!(
            target, source,
            "seed {seed}: the target differs from the source"
        );
        assert!(
            !target.contains_key(&10_000),
            "truncate-first removed the stale row"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_backfill_resumes_from_its_progress_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = setup(dir.path(), 99).await;
    let stop_writer = CancellationToken::new();
    let writer = tokio::spawn(write(
        run.source.clone(),
        run.queue.clone(),
        99,
        stop_writer.clone(),
    ));
    let chunks = || ModelChunks {
        source: run.source.clone(),
        schema: run.schema.clone(),
        chunk_rows: 25,
    };
    let path = dir.path().join("items.backfill");
    // One chunk a hold, so the cancel lands between chunks, not after the last.
    let mut one_at_a_time = BackfillConfig::new(&path);
    one_at_a_time.max_hold = Duration::ZERO;
    let mut first = Backfill::new(chunks(), one_at_a_time);
    let cancel = CancellationToken::new();
    let mut progress = first.subscribe();
    let stop = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let _ = progress.wait_for(|p| p.chunks >= 3).await;
            cancel.cancel();
        }
    });
    let summary = first.run(&run.pipeline, &cancel).await.unwrap();
    stop.await.unwrap();
    assert!(!summary.done);
    assert!(summary.chunks >= 3);
    let saved: BackfillProgress<i64> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved.chunks, summary.chunks);
    assert!(saved.estimated_rows.is_some_and(|n| n > 300));

    let mut second = Backfill::new(chunks(), BackfillConfig::new(&path));
    let resumed = second
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(resumed.done);
    assert!(
        resumed.chunks > summary.chunks,
        "the second run went on from the saved chunk"
    );
    // A finished backfill does nothing more.
    let again = second
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (again.done, again.chunks, again.position),
        (true, resumed.chunks, None)
    );

    stop_writer.cancel();
    writer.await.unwrap();
    let (source, mut target) = settle(run).await;
    assert_eq!(
        target.remove(&10_000).as_deref(),
        Some("stale"),
        "keep-and-upsert keeps target rows"
    );
    assert_eq!(target, source);
}

#[tokio::test]
async fn copied_rows_need_the_pipeline_paused_where_they_were_read_and_in_its_filter() {
    use cdc_core::pipeline::PipelineError;
    let dir = tempfile::tempdir().unwrap();
    let run = setup(dir.path(), 1).await;
    let read = |k: i64| Change {
        table: table("items"),
        kind: ChangeKind::SnapshotRead,
        before: None,
        after: row(k, "copied"),
        position: SourcePosition::None,
        txid: None,
        commit_time_micros: 0,
    };
    let err = run
        .pipeline
        .apply_copied(0, run.schema.clone(), vec![read(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::NotPaused), "{err}");

    let mut filtered = config("filtered");
    filtered.tables =
        serde_json::from_str(r#"{"include": [{"schema": "shop", "table": "items"}]}"#).unwrap();
    let target: Rows = Arc::default();
    let pipeline = Pipeline::new(run.log.clone(), filtered, TableSink(target.clone()))
        .unwrap()
        .start()
        .await
        .unwrap();
    // Just started, it may hold before the schema record: copied rows need none.
    let at = pipeline.pause_now().await.unwrap();
    assert!(at <= run.log.offsets().durable);
    let other = Arc::new(schema("elsewhere"));
    let mut outside = read(1);
    outside.table = other.table.clone();
    let err = pipeline
        .apply_copied(at, other, vec![outside])
        .await
        .unwrap_err();
    assert!(
        matches!(err, PipelineError::CopyOutsideFilter { .. }),
        "{err}"
    );
    pipeline
        .apply_copied(at, run.schema.clone(), vec![read(1)])
        .await
        .unwrap();

    // Resumed, it applies a later change; rows read at the old offset are refused.
    let mut later = pipeline_support::txn(1, &[("items", 2)]);
    later.truncate(3);
    run.log.append(later).await.unwrap();
    pipeline.resume().await.unwrap();
    let now = pipeline.pause_at(run.log.offsets().durable).await.unwrap();
    let err = pipeline
        .apply_copied(at, run.schema.clone(), vec![read(3)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, PipelineError::CopyPassed { read_at, paused_at } if read_at == at && paused_at == now),
        "{err}"
    );
    pipeline.shutdown().await.unwrap();
    let rows = target.lock().unwrap().clone();
    assert_eq!(
        rows,
        BTreeMap::from([(1, "copied".to_owned()), (2, "row 2".to_owned())])
    );
    run.pipeline.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfills_run_together_take_turns_on_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let run = setup(dir.path(), 7).await;
    let stop = CancellationToken::new();
    let writer = tokio::spawn(write(
        run.source.clone(),
        run.queue.clone(),
        7,
        stop.clone(),
    ));
    let backfill = |name: &str, chunk_rows| {
        let chunks = ModelChunks {
            source: run.source.clone(),
            schema: run.schema.clone(),
            chunk_rows,
        };
        Backfill::new(chunks, BackfillConfig::new(dir.path().join(name)))
    };
    let backfills = vec![
        backfill("a.backfill", 13),
        backfill("b.backfill", 17),
        backfill("c.backfill", 29),
    ];
    let never = CancellationToken::new();
    let outcomes = run_all(backfills, 2, &run.pipeline, &never).await;
    assert_eq!(outcomes.len(), 3);
    for outcome in outcomes {
        assert!(outcome.unwrap().done);
    }
    stop.cancel();
    writer.await.unwrap();
    let (source, mut target) = settle(run).await;
    target.remove(&10_000);
    assert_eq!(target, source);
}

#[tokio::test]
async fn a_table_the_source_reader_does_not_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = setup(dir.path(), 3).await;
    let backfill = || {
        let chunks = ModelChunks {
            source: run.source.clone(),
            schema: run.schema.clone(),
            chunk_rows: 100,
        };
        Backfill::new(
            chunks,
            BackfillConfig::new(dir.path().join("items.backfill")),
        )
    };
    run.log.declare_tables(&[table("other")]);
    let err = backfill()
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, BackfillError::NotStreamed { ref table } if table.contains("items")),
        "{err}"
    );
    assert!(
        !dir.path().join("items.backfill").exists(),
        "nothing was copied"
    );

    run.log.declare_tables(&[table("other"), table("items")]);
    let summary = backfill()
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    let (source, mut target) = settle(run).await;
    target.remove(&10_000);
    assert_eq!(target, source);
}
