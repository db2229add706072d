//! Verification across engines: a MariaDB table of many types streamed into
//! a PostgreSQL sink, whose types differ (unsigned integers in wider or
//! numeric columns, sets in text arrays, enums in text, JSON in jsonb), must
//! verify equal, and a value tampered with in PostgreSQL must be found.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::{TableName, Value};
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::verify::{ColumnMap, RowDifference, TableReader, Verification, VerifyConfig};
use cdc_core::{ChangeLog, LogConfig};
use cdc_mysql::MySqlSource;
use cdc_mysql::snapshot::{MySqlChunks, MySqlTable};
use cdc_postgres::PostgresTable;
use cdc_testkit::Postgres;
use support::*;

const KINDS: &str = "
    CREATE TABLE test.kinds (id INT UNSIGNED PRIMARY KEY, tiny TINYINT, utiny TINYINT UNSIGNED,
        ubig BIGINT UNSIGNED, amount DECIMAL(20,4), f FLOAT, d DOUBLE, yr YEAR, day DATE,
        tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(6) NULL, mood ENUM('sad','ok','glad'),
        tags SET('x','y','z'), doc JSON, u UUID, latin VARCHAR(40) CHARACTER SET latin1,
        bin VARBINARY(16), note TEXT);
    INSERT INTO test.kinds SELECT seq, CAST(seq % 128 AS SIGNED) - 64, seq % 256, 18446744073709551615 - seq,
        seq * 1.0625, seq / 4, seq / 3, 1901 + seq % 254, DATE '2024-02-29' + INTERVAL seq DAY,
        SEC_TO_TIME(seq * 37.125), TIMESTAMP '1999-12-31 23:59:59.123456' + INTERVAL seq HOUR,
        FROM_UNIXTIME(1700000000 + seq * 61.5), ELT(1 + seq % 3, 'sad', 'ok', 'glad'),
        ELT(1 + seq % 4, '', 'x', 'x,z', 'x,y,z'), JSON_OBJECT('n', seq, 'list', JSON_ARRAY(1, 'two', NULL)),
        UUID(), CONCAT('caf', CHAR(233 USING latin1), ' ', seq), UNHEX(MD5(seq)),
        IF(seq % 10 = 0, NULL, CONCAT('note ', seq))
    FROM test.seq_1_to_200;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_table_in_a_postgresql_sink_verifies_equal_and_a_tampered_value_is_found() {
    let db = mariadb();
    sql(&db, KINDS);
    let pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.sql("CREATE SCHEMA copy").unwrap();
    let mut config = config(&db, &["kinds"]);
    config.heartbeat = Duration::from_millis(300);
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let mut source = MySqlSource::new(config.clone()).unwrap();
    let stop_ingest = CancellationToken::new();
    let ingest = tokio::spawn({
        let (log, stop) = (log.clone(), stop_ingest.clone());
        async move { ingest::run(&mut source, &log, &stop).await }
    });
    let mut sink_config = cdc_sinks::PostgresConfig::new(pg.connection_string());
    sink_config.schema = "copy".into();
    let sink = cdc_sinks::PostgresSink::connect(sink_config).await.unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("to-pg"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    while log.declared_tables().is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let table = TableName::new("test", "kinds");
    let chunks = MySqlChunks::connect(&config, &table, 64).await.unwrap();
    let mut backfill_config = BackfillConfig::new(dir.path().join("kinds.backfill"));
    backfill_config.destination = Destination::TruncateFirst;
    let summary = Backfill::new(chunks, backfill_config)
        .run(&pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.rows, 200);
    // Streamed changes on top of the copy.
    sql(
        &db,
        "UPDATE test.kinds SET ubig = 0, amount = -amount, tags = 'y', mood = 'ok',
             doc = JSON_SET(doc, '$.more', 1.5), dtm = dtm - INTERVAL 30 YEAR WHERE id = 7;
         DELETE FROM test.kinds WHERE id = 8;
         INSERT INTO test.kinds (id, note) VALUES (1000, 'marker');",
    );
    let postgres = {
        let mut c = cdc_postgres::PostgresConfig::new("postgres", "postgres", "-", "-", vec![]);
        c.port = pg.port();
        c
    };
    let mut waited = 0;
    while pg
        .sql("SELECT count(*) FROM copy.kinds WHERE id = 1000")
        .map(|n| n.trim() != "1")
        .unwrap_or(true)
    {
        waited += 1;
        assert!(waited < 600, "the marker never reached the target");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let verify = |path: &'static str| {
        let (config, postgres, pipeline, dir) = (&config, &postgres, &pipeline, dir.path());
        async move {
            let source = MySqlTable::connect(config, &TableName::new("test", "kinds"))
                .await
                .unwrap();
            let sink = PostgresTable::connect(postgres, &TableName::new("copy", "kinds"))
                .await
                .unwrap();
            let columns =
                ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new()).unwrap();
            let mut verify_config = VerifyConfig::new(dir.join(path));
            verify_config.chunk_rows = 50;
            Verification::new(source, sink, columns, verify_config)
                .run(pipeline, &CancellationToken::new())
                .await
                .unwrap()
        }
    };
    let equal = verify("equal.verify").await;
    assert!(equal.is_equal(), "{equal:?}");
    assert_eq!(equal.rows, 200);

    pg.sql("UPDATE copy.kinds SET tags = ARRAY['x'] WHERE id = 12")
        .unwrap();
    let tampered = verify("tampered.verify").await;
    assert_eq!(
        tampered.different.first,
        [RowDifference {
            key: vec![Value::UInt(12)],
            columns: vec!["tags".into()],
        }]
    );
    assert_eq!(
        (
            tampered.missing.count,
            tampered.extra.count,
            tampered.unsettled.count
        ),
        (0, 0, 0)
    );

    pipeline.shutdown().await.unwrap();
    stop_ingest.cancel();
    ingest.await.unwrap().unwrap();
}
