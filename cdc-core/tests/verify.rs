//! Verification on a model source: a table whose changes are logged with a
//! lag, compared with the pipeline's target while a writer keeps changing
//! it. Only the differences planted in the target may be reported.

mod model_table;
mod pipeline_support;

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::{Row, Value};
use cdc_core::ingest::CancellationToken;
use cdc_core::verify::{ColumnMap, RowDifference, Verification, VerifyConfig, VerifyReport};
use model_table::*;

/// Keys the writer never touches (it writes keys 1 to 600), where the
/// differences are planted: the source holds the odd ones.
const QUIET: std::ops::RangeInclusive<i64> = 1001..=1100;

/// The source with the quiet rows added, its target made equal by a
/// backfill, then the planted differences: 1011 changed, 1021 missing, 1042
/// and 5000 extra.
async fn equal_then_planted(dir: &std::path::Path, seed: u64) -> Run {
    let run = setup(dir, seed).await;
    {
        let mut state = run.source.state.lock().unwrap();
        for k in QUIET.filter(|k| k % 2 == 1) {
            state.0.insert(k, format!("quiet {k}"));
        }
    }
    let chunks = ModelChunks {
        source: run.source.clone(),
        schema: run.schema.clone(),
        chunk_rows: 100,
    };
    let mut config = BackfillConfig::new(dir.join("items.backfill"));
    config.destination = Destination::TruncateFirst;
    let summary = Backfill::new(chunks, config)
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    run.pipeline
        .pause_at(run.log.offsets().durable)
        .await
        .unwrap();
    {
        let mut target = run.target.lock().unwrap();
        target.insert(1011, "wrong".into());
        target.remove(&1021);
        target.insert(1042, "not in the source".into());
        target.insert(5000, "past the last key".into());
    }
    run.pipeline.resume().await.unwrap();
    heartbeat(&run);
    run
}

/// A verification of `run`'s target; `hold` is its `max_hold`.
fn verification(
    run: &Run,
    path: &std::path::Path,
    text_order: bool,
    hold: Duration,
) -> Verification<SourceTable, TargetTable> {
    let source = SourceTable {
        source: run.source.clone(),
        schema: run.schema.clone(),
    };
    let target = TargetTable {
        rows: run.target.clone(),
        schema: run.schema.clone(),
        text_order,
    };
    let columns = ColumnMap::by_name(&run.schema, &run.schema, &BTreeMap::new()).unwrap();
    let mut config = VerifyConfig::new(path);
    config.chunk_rows = 37;
    config.settle_timeout = Duration::from_secs(20);
    config.max_hold = hold;
    Verification::new(source, target, columns, config)
}

fn keys(found: &[Row]) -> Vec<i64> {
    let mut keys: Vec<_> = found.iter().map(|k| int_key(k)).collect();
    keys.sort_unstable();
    keys
}

/// The report finds exactly the planted differences; anything unsettled is
/// a key the writer was changing.
fn assert_planted(report: &VerifyReport, what: &str) {
    assert!(report.done, "{what}");
    assert_eq!(keys(&report.missing.first), [1021], "{what}: missing");
    assert_eq!(keys(&report.extra.first), [1042, 5000], "{what}: extra");
    assert_eq!(
        report.different.first,
        [RowDifference {
            key: vec![Value::Int(1011)],
            columns: vec!["note".into()],
        }],
        "{what}: different"
    );
    assert_eq!(
        (
            report.missing.count,
            report.extra.count,
            report.different.count
        ),
        (1, 2, 1),
        "{what}: counts"
    );
    let unsettled = keys(&report.unsettled.first);
    assert!(
        unsettled.iter().all(|k| (1..=600).contains(k)),
        "{what}: unsettled {unsettled:?}"
    );
    assert!(!report.is_equal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_under_concurrent_changes_reports_only_the_planted_differences() {
    for seed in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let run = equal_then_planted(dir.path(), seed).await;
        // One chunk a hold, or holds of several chunks.
        let hold = Duration::from_millis(if seed < 3 { 0 } else { 4 });
        let stop = CancellationToken::new();
        let writer = tokio::spawn(write(
            run.source.clone(),
            run.queue.clone(),
            seed,
            stop.clone(),
        ));
        let report = verification(&run, &dir.path().join("busy.verify"), seed % 2 == 1, hold)
            .run(&run.pipeline, &CancellationToken::new())
            .await
            .unwrap();
        stop.cancel();
        let changes = writer.await.unwrap();
        assert!(changes > 20, "seed {seed}: the source changed throughout");
        assert_planted(&report, &format!("seed {seed}, under changes"));
        assert!(report.rows >= 400, "seed {seed}: {} rows", report.rows);

        // Quiet now: a fresh run settles every key.
        let quiet = verification(&run, &dir.path().join("quiet.verify"), false, hold)
            .run(&run.pipeline, &CancellationToken::new())
            .await
            .unwrap();
        assert_planted(&quiet, &format!("seed {seed}, quiet"));
        assert_eq!(quiet.unsettled.count, 0);
        assert_eq!(quiet.rows as usize, run.source.rows().len());

        // Mended, it verifies equal.
        run.pipeline
            .pause_at(run.log.offsets().durable)
            .await
            .unwrap();
        {
            let mut target = run.target.lock().unwrap();
            target.insert(1011, "quiet 1011".into());
            target.insert(1021, "quiet 1021".into());
            target.remove(&1042);
            target.remove(&5000);
        }
        run.pipeline.resume().await.unwrap();
        let mended = verification(&run, &dir.path().join("mended.verify"), seed % 2 == 1, hold)
            .run(&run.pipeline, &CancellationToken::new())
            .await
            .unwrap();
        assert!(mended.is_equal(), "seed {seed}: {mended:?}");
        let (source, target) = settle(run).await;
        assert_eq!(source, target);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_verification_resumes_and_counts_each_difference_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = equal_then_planted(dir.path(), 7).await;
    let path = dir.path().join("items.verify");
    let cancel = CancellationToken::new();
    let stop = tokio::spawn({
        let (cancel, path) = (cancel.clone(), path.clone());
        async move {
            loop {
                let saved: Option<VerifyReport> = std::fs::read(&path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok());
                if saved.is_some_and(|r| r.chunks >= 5) {
                    cancel.cancel();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    // One chunk a hold, so the cancel lands between chunks.
    let first = verification(&run, &path, false, Duration::ZERO)
        .run(&run.pipeline, &cancel)
        .await
        .unwrap();
    stop.await.unwrap();
    assert!(!first.done);
    assert!(first.chunks >= 5);
    let second = verification(&run, &path, false, Duration::from_millis(250))
        .run(&run.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(second.chunks > first.chunks, "the second run went on");
    assert_planted(&second, "resumed");
    assert_eq!(second.rows as usize, run.source.rows().len());
    settle(run).await;
}
