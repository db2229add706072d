//! Verification of a SQLite sink, whose storage forms differ from the
//! source's types (ISO text timestamps, decimal text, JSON arrays), against
//! a live PostgreSQL table of many types: equal when equal, and exactly the
//! rows tampered with in the SQLite file otherwise.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_core::backfill::{Backfill, BackfillConfig, Destination};
use cdc_core::event::{TableName, Value};
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::verify::{ColumnMap, RowDifference, TableReader, Verification, VerifyConfig};
use cdc_core::{ChangeLog, LogConfig};
use cdc_postgres::{PostgresChunks, PostgresSource, PostgresTable};
use cdc_sinks::{SqliteConfig, SqliteSink, SqliteTable, TableMapping};
use support::*;

const KINDS: &str = "
    CREATE TABLE public.kinds (id uuid PRIMARY KEY, n numeric(12,3), f float8, r real,
        b bool, d date, ts timestamp, tstz timestamptz, t time, iv interval, j jsonb,
        tags text[], raw bytea, small int2, big int8, note text);
    INSERT INTO public.kinds SELECT
        md5(g::text)::uuid, g * 1.125, g / 7.0, g / 3.0, g % 2 = 0,
        DATE '2024-02-29' + g, TIMESTAMP '1999-12-31 23:59:59.123456' + g * interval '1 hour',
        TIMESTAMPTZ '2024-01-01 00:00:00+02' + g * interval '1 minute', TIME '13:05:09.000001',
        make_interval(months => g, days => 3, secs => g * 1.5),
        jsonb_build_object('g', g, 'list', jsonb_build_array(1, 'two', null)),
        ARRAY['a' || g, NULL, 'c'], decode(md5(g::text), 'hex'), g::int2, g * 1000000000::int8,
        CASE WHEN g % 10 = 0 THEN NULL ELSE 'note ' || g END
    FROM generate_series(1, 300) g;";

async fn verify(
    config: &cdc_postgres::PostgresConfig,
    db: &std::path::Path,
    progress: &std::path::Path,
    pipeline: &cdc_core::pipeline::PipelineHandle,
) -> cdc_core::verify::VerifyReport {
    let source = PostgresTable::connect(config, &TableName::new("public", "kinds"))
        .await
        .unwrap();
    let sink = SqliteTable::open(db, source.schema(), &TableMapping::default())
        .await
        .unwrap();
    let columns = ColumnMap::by_name(source.schema(), sink.schema(), &BTreeMap::new()).unwrap();
    let mut verify_config = VerifyConfig::new(progress);
    verify_config.chunk_rows = 64;
    Verification::new(source, sink, columns, verify_config)
        .run(pipeline, &CancellationToken::new())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_sink_of_many_types_verifies_equal_and_tampered_rows_are_found() {
    let pg = server();
    pg.sql(KINDS).unwrap();
    let mut config = config(&pg, &["kinds"]);
    config.heartbeat_interval = Duration::from_millis(300);
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path().join("log"), LogConfig::default()).unwrap();
    let mut source = PostgresSource::new(config.clone());
    let stop_ingest = CancellationToken::new();
    let ingest = tokio::spawn({
        let (log, stop) = (log.clone(), stop_ingest.clone());
        async move {
            let summary = ingest::run(&mut source, &log, &stop).await;
            (source, summary)
        }
    });
    let db = dir.path().join("target.sqlite");
    let sink = SqliteSink::open(SqliteConfig::new(&db)).await.unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("sqlite"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    while log.declared_tables().is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let table = TableName::new("public", "kinds");
    let chunks = PostgresChunks::connect(&config, &table, 100).await.unwrap();
    let mut backfill_config = BackfillConfig::new(dir.path().join("kinds.backfill"));
    backfill_config.destination = Destination::TruncateFirst;
    let summary = Backfill::new(chunks, backfill_config)
        .run(&pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(summary.rows, 300);
    // Streamed changes, of every column, on top of the copy.
    pg.sql(
        "UPDATE public.kinds SET n = -n, ts = ts - interval '30 years', tags = tags || 'd'::text,
             j = j || '{\"more\": 1.5}', note = 'changed' WHERE id = md5('7')::uuid;
         DELETE FROM public.kinds WHERE id = md5('8')::uuid;",
    )
    .unwrap();

    let equal = verify(&config, &db, &dir.path().join("equal.verify"), &pipeline).await;
    assert!(equal.is_equal(), "{equal:?}");
    assert_eq!(equal.rows, 299);

    let tampered = |id: u32| {
        pg.sql(&format!("SELECT md5('{id}')::uuid"))
            .unwrap()
            .trim()
            .to_owned()
    };
    let (changed, removed) = (tampered(11), tampered(12));
    pipeline.pause_at(log.offsets().durable).await.unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE kinds SET ts = '2000-01-01 00:00:00.000000' WHERE id = ?1",
            [&changed],
        )
        .unwrap();
        conn.execute("DELETE FROM kinds WHERE id = ?1", [&removed])
            .unwrap();
    }
    pipeline.resume().await.unwrap();
    let report = verify(&config, &db, &dir.path().join("tampered.verify"), &pipeline).await;
    let uuid = |text: &str| {
        let hex = text.replace('-', "");
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        Value::Uuid(bytes)
    };
    assert_eq!(
        report.different.first,
        [RowDifference {
            key: vec![uuid(&changed)],
            columns: vec!["ts".into()],
        }]
    );
    assert_eq!(report.missing.first, [vec![uuid(&removed)]]);
    assert_eq!((report.extra.count, report.unsettled.count), (0, 0));

    pipeline.shutdown().await.unwrap();
    stop_ingest.cancel();
    let (mut source, ingested) = ingest.await.unwrap();
    ingested.unwrap();
    source.drop_slot_and_publication().await.unwrap();
}
