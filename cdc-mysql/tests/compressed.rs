//! MariaDB with `log_bin_compress=ON`: compressed query and rows events
//! decode live and offline to the same changes as plain ones.

mod support;

use cdc_core::Source;
use cdc_core::event::{ChangeKind, Record, TableName, Value};
use cdc_mysql::binlog::event::kind;
use cdc_mysql::binlog::frame::FrameReader;
use cdc_mysql::{BinlogFiles, MySqlSource};
use cdc_testkit::MariaDb;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn compressed_binlog_events_decode_live_and_offline() {
    let db = MariaDb::start_with(&["--log-bin-compress=ON", "--log-bin-compress-min-len=10"])
        .unwrap_or_else(|e| panic!("MariaDB test server could not start: {e}"));
    sql(
        &db,
        "CREATE TABLE test.z (id INT PRIMARY KEY, body TEXT, n DECIMAL(12,3))",
    );
    let mut src = MySqlSource::new(config(&db, &["z"])).unwrap();
    src.start(None).await.unwrap();
    let long = "compressible ".repeat(40);
    sql(
        &db,
        &format!(
            "INSERT INTO test.z VALUES (1, '{long}', 1.5), (2, 'é', NULL);
             BEGIN; UPDATE test.z SET body = 'short', n = -2.25 WHERE id = 1;
             DELETE FROM test.z WHERE id = 2; COMMIT;
             TRUNCATE TABLE test.z;
             INSERT INTO test.z VALUES (3, '{long}', 0)"
        ),
    );
    let live = transactions(&mut src, 4).await;
    let rows = changes(&live);
    let kinds: Vec<ChangeKind> = rows.iter().map(|r| r.1).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::Insert,
            ChangeKind::Insert,
            ChangeKind::Update,
            ChangeKind::Delete,
            ChangeKind::Truncate,
            ChangeKind::Insert
        ]
    );
    assert_eq!(
        rows[0].3.as_ref().unwrap(),
        &vec![
            Value::Int(1),
            Value::Text(long.as_str().into()),
            Value::Decimal("1.500".parse().unwrap())
        ]
    );
    assert_eq!(rows[1].3.as_ref().unwrap()[1], Value::Text("é".into()));
    assert_eq!(
        rows[2].3.as_ref().unwrap()[2],
        Value::Decimal("-2.250".parse().unwrap())
    );

    // The server really wrote compressed events.
    let files = BinlogFiles::in_dir(&db.binlog_dir()).unwrap();
    let mut compressed = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let mut reader = FrameReader::new(&bytes).unwrap();
        while let Ok(Some(frame)) = reader.next_frame() {
            if (kind::MARIADB_QUERY_COMPRESSED..=kind::MARIADB_DELETE_ROWS_COMPRESSED)
                .contains(&frame.header.kind)
            {
                compressed += 1;
            }
        }
    }
    assert!(compressed >= 4, "{compressed} compressed events");

    // Offline files give the same changes at the same positions.
    let mut offline = BinlogFiles::new(files, vec![TableName::new("test", "z")]);
    offline.start(None).await.unwrap();
    let mut batches = Vec::new();
    while let Some(b) = offline.next_batch().await.unwrap() {
        if b.records.iter().any(|r| matches!(r, Record::Commit(_))) {
            batches.push(b);
        }
    }
    assert_eq!(changes(&batches), rows);
    let positions =
        |b: &[cdc_core::SourceBatch]| b.iter().map(|b| b.position.clone()).collect::<Vec<_>>();
    assert_eq!(positions(&batches), positions(&live));
    assert_eq!(offline.stats().unknown_events, 0);
}
