//! Verification of a PostgreSQL sink against a live PostgreSQL source while
//! a writer keeps changing it: only the differences planted in the target
//! may be reported, and a mended target verifies equal.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::{Row, TableName, Value};
use cdc_core::ingest::CancellationToken;
use cdc_core::verify::{
    ColumnMap, RowDifference, TableReader, Verification, VerifyConfig, VerifyReport,
};
use cdc_postgres::{PostgresChunks, PostgresTable};
use support::accounts::{ACCOUNTS, Streaming};
use support::*;

/// Rows the writer never touches (it writes ids up to 3541).
const QUIET: &str = "INSERT INTO public.accounts SELECT g, 'quiet ' || g, g, NULL
    FROM generate_series(5001, 5100, 2) g";

async fn verification(
    streaming: &Streaming,
    path: &std::path::Path,
) -> Verification<PostgresTable, PostgresTable> {
    let source = PostgresTable::connect(&streaming.config, &TableName::new("public", "accounts"))
        .await
        .unwrap();
    let sink = PostgresTable::connect(&streaming.config, &TableName::new("copy", "accounts"))
        .await
        .unwrap();
    let columns = ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new()).unwrap();
    let mut config = VerifyConfig::new(path);
    config.chunk_rows = 300;
    Verification::new(source, sink, columns, config)
}

fn ids(found: &[Row]) -> Vec<i64> {
    let mut ids: Vec<i64> = found
        .iter()
        .map(|key| match key.as_slice() {
            [Value::Int(id)] => *id,
            other => panic!("not a bigint key: {other:?}"),
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn assert_planted(report: &VerifyReport, what: &str) {
    assert!(report.done, "{what}");
    assert_eq!(ids(&report.missing.first), [5021], "{what}: missing");
    assert_eq!(ids(&report.extra.first), [-5, 5042, 9000], "{what}: extra");
    assert_eq!(
        report.different.first,
        [RowDifference {
            key: vec![Value::Int(5011)],
            columns: vec!["owner".into(), "balance".into()],
        }],
        "{what}: different"
    );
    let unsettled = ids(&report.unsettled.first);
    assert!(
        unsettled.iter().all(|id| (1..=3541).contains(id)),
        "{what}: unsettled {unsettled:?}"
    );
    assert!(!report.is_equal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_during_writes_reports_only_the_planted_differences() {
    let pg = server();
    pg.sql(ACCOUNTS).unwrap();
    pg.sql(QUIET).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let streaming = Streaming::start(&pg, dir.path()).await;

    // A keep-and-upsert backfill: the row the target held before stays.
    let table = TableName::new("public", "accounts");
    let chunks = PostgresChunks::connect(&streaming.config, &table, 1000)
        .await
        .unwrap();
    let config = BackfillConfig::new(dir.path().join("accounts.backfill"));
    assert_eq!(config.destination, Destination::KeepAndUpsert);
    let summary = Backfill::new(chunks, config)
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    streaming.caught_up(&pg, 1_000_000).await;
    pg.sql(
        "UPDATE copy.accounts SET owner = 'wrong', balance = 1.5 WHERE id = 5011;
         DELETE FROM copy.accounts WHERE id = 5021;
         INSERT INTO copy.accounts VALUES (5042, 'not in the source', 0, NULL),
                                          (9000, 'past the last key', 0, NULL);",
    )
    .unwrap();

    let stop_writer = CancellationToken::new();
    let writer = streaming.writer(&stop_writer).await;
    let busy = verification(&streaming, &dir.path().join("busy.verify"))
        .await
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    // Let the writer run on a little whatever the timing, then stop it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_writer.cancel();
    let writes = writer.await.unwrap();
    assert!(writes > 20, "only {writes} writes during the verification");
    assert_planted(&busy, "during writes");
    assert!(busy.chunks >= 10, "{busy:?}");

    let quiet = verification(&streaming, &dir.path().join("quiet.verify"))
        .await
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert_planted(&quiet, "quiet");
    assert_eq!(quiet.unsettled.count, 0);
    let rows = pg.sql("SELECT count(*) FROM public.accounts").unwrap();
    assert_eq!(quiet.rows.to_string(), rows.trim());

    pg.sql(
        "UPDATE copy.accounts SET owner = 'quiet 5011', balance = 5011 WHERE id = 5011;
         INSERT INTO copy.accounts VALUES (5021, 'quiet 5021', 5021, NULL);
         DELETE FROM copy.accounts WHERE id IN (-5, 5042, 9000);",
    )
    .unwrap();
    let mended = verification(&streaming, &dir.path().join("mended.verify"))
        .await
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(mended.is_equal(), "{mended:?}");
    streaming.stop().await;
}
