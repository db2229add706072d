//! Verification of a MariaDB sink against a live MariaDB source while a
//! writer keeps changing it: only the differences planted in the target may
//! be reported, and a mended target verifies equal.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_core::backfill::{Backfill, BackfillConfig};
use cdc_core::event::{Row, TableName, Value};
use cdc_core::ingest::CancellationToken;
use cdc_core::verify::{
    ColumnMap, RowDifference, TableReader, Verification, VerifyConfig, VerifyReport,
};
use cdc_mysql::snapshot::{MySqlChunks, MySqlTable};
use support::accounts::{ACCOUNTS, Streaming};
use support::*;

/// Rows the writer never touches (it writes ids up to 3541).
const QUIET: &str = "INSERT INTO test.accounts
    SELECT seq, CONCAT('quiet ', seq), seq, NULL FROM test.seq_5001_to_5100_step_2";

async fn verification(
    streaming: &Streaming,
    path: &std::path::Path,
) -> Verification<MySqlTable, MySqlTable> {
    let source = MySqlTable::connect(&streaming.config, &TableName::new("test", "accounts"))
        .await
        .unwrap();
    let sink = MySqlTable::connect(&streaming.config, &TableName::new("copy", "accounts"))
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
            other => panic!("not a BIGINT key: {other:?}"),
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
    let db = mariadb();
    sql(&db, ACCOUNTS);
    sql(&db, QUIET);
    let dir = tempfile::tempdir().unwrap();
    let streaming = Streaming::start(&db, dir.path()).await;

    // A keep-and-upsert backfill: the row the target held before stays.
    let table = TableName::new("test", "accounts");
    let chunks = MySqlChunks::connect(&streaming.config, &table, 1000)
        .await
        .unwrap();
    let summary = Backfill::new(chunks, BackfillConfig::new(dir.path().join("a.backfill")))
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    streaming.caught_up(&db, 1_000_000).await;
    sql(
        &db,
        "UPDATE copy.accounts SET owner = 'wrong', balance = 1.5 WHERE id = 5011;
         DELETE FROM copy.accounts WHERE id = 5021;
         INSERT INTO copy.accounts VALUES (5042, 'not in the source', 0, NULL),
                                          (9000, 'past the last key', 0, NULL);",
    );

    let stop_writer = CancellationToken::new();
    let writer = streaming.writer(&db, &stop_writer).await;
    let busy = verification(&streaming, &dir.path().join("busy.verify"))
        .await
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
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
    let rows = sql(&db, "SELECT COUNT(*) FROM test.accounts");
    assert_eq!(quiet.rows.to_string(), rows.trim());

    sql(
        &db,
        "UPDATE copy.accounts SET owner = 'quiet 5011', balance = 5011 WHERE id = 5011;
         INSERT INTO copy.accounts VALUES (5021, 'quiet 5021', 5021, NULL);
         DELETE FROM copy.accounts WHERE id IN (-5, 5042, 9000);",
    );
    let mended = verification(&streaming, &dir.path().join("mended.verify"))
        .await
        .run(&streaming.pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(mended.is_equal(), "{mended:?}");
    streaming.stop().await;
}
