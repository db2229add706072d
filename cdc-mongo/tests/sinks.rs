//! MongoDB-shaped change logs (a text `_id` key, the document as Extended
//! JSON) applied by the PostgreSQL and MariaDB sinks to real servers from the
//! test kit: both key on `_id` and store documents that read back equal.

mod support;

use bson::oid::ObjectId;
use bson::{RawDocumentBuf, rawdoc};
use cdc_core::ingest::{CancellationToken, run};
use cdc_core::pipeline::{Pipeline, PipelineConfig};
use cdc_core::{ChangeLog, LogConfig, Sink};
use serde_json::{Value as Json, json};
use support::*;

const OID: [u8; 12] = [
    0x65, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18, 0x29, 0x3A, 0x4B,
];

fn insert_document(n: u32, id: bson::RawBson, document: RawDocumentBuf) -> RawDocumentBuf {
    let mut e = event(n, 0, "insert", "orders");
    e.append("documentKey", rawdoc! { "_id": id.clone() });
    let mut full = rawdoc! { "_id": id };
    for (k, v) in document.iter().flatten() {
        full.append(k, v.to_raw_bson());
    }
    e.append("fullDocument", full);
    e
}

/// Inserts with keys of three types and documents of most BSON types, an
/// update, a lookup that found nothing, and a delete in a transaction.
fn events() -> Vec<RawDocumentBuf> {
    let oid = bson::RawBson::ObjectId(ObjectId::from_bytes(OID));
    vec![
        insert_document(
            1,
            oid,
            rawdoc! {
                "placed": bson::DateTime::from_millis(1_700_000_000_250),
                "total": "12.50".parse::<bson::Decimal128>().unwrap(),
                "lines": [1_i32, "two", { "three": 3.5 }],
                "paid": true,
                "note": bson::RawBson::Null,
            },
        ),
        insert_document(
            2,
            bson::RawBson::String("sku-9".into()),
            rawdoc! { "qty": 5_i64 },
        ),
        insert_document(3, bson::RawBson::Int32(7), rawdoc! { "qty": 1_i64 }),
        update(4, 7, Some("b")),
        update(5, 7, None),
        in_transaction(delete(6, 0, 1), 4),
        in_transaction(insert(6, 1, 8, "c"), 4),
    ]
}

/// Each row's `_id` text and document, parsed, in `_id` order.
fn expected() -> Vec<(String, Json)> {
    let oid = "65a1b2c3d4e5f60718293a4b";
    let mut rows = vec![
        (
            format!(r#"{{"$oid":"{oid}"}}"#),
            json!({
                "_id": { "$oid": oid },
                "placed": { "$date": "2023-11-14T22:13:20.25Z" },
                "total": { "$numberDecimal": "12.50" },
                "lines": [1, "two", { "three": 3.5 }],
                "paid": true,
                "note": null,
            }),
        ),
        (r#""sku-9""#.to_owned(), json!({ "_id": "sku-9", "qty": 5 })),
        ("7".to_owned(), json!({ "_id": 7, "body": "b" })),
        ("8".to_owned(), json!({ "_id": 8, "body": "c" })),
    ];
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

async fn apply(sink: impl Sink + 'static) {
    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let token = CancellationToken::new();
    run(&mut Replay::new(&events(), 1 << 20, None), &log, &token)
        .await
        .unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("mongo-to-db"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    pipeline.pause_at(log.offsets().next).await.unwrap();
    pipeline.resume().await.unwrap();
    pipeline.shutdown().await.unwrap();
}

fn parse(output: &str, separator: char) -> Vec<(String, Json)> {
    let mut rows: Vec<(String, Json)> = output
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (id, doc) = line.split_once(separator).unwrap();
            (id.to_owned(), serde_json::from_str(doc).unwrap())
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn the_postgres_sink_keys_documents_on_their_text_id() {
    let pg = cdc_testkit::Postgres::start()
        .expect("PostgreSQL 15 from the test kit is required for this test");
    let config = cdc_sinks::PostgresConfig::new(pg.connection_string());
    apply(cdc_sinks::PostgresSink::connect(config).await.unwrap()).await;
    let out = pg
        .sql(r#"SELECT "_id", "document"::text FROM public.orders"#)
        .unwrap();
    assert_eq!(parse(&out, '|'), expected());
    let key = pg
        .sql(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = 'public.orders'::regclass AND i.indisprimary",
        )
        .unwrap();
    assert_eq!(key.trim(), "_id");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mariadb_sink_keys_documents_on_their_text_id() {
    let maria =
        cdc_testkit::MariaDb::start().expect("MariaDB from the test kit is required for this test");
    maria.sql("CREATE DATABASE IF NOT EXISTS target").unwrap();
    let mut config = cdc_sinks::MySqlConfig::new(maria.url());
    config.database = Some("target".into());
    apply(cdc_sinks::MySqlSink::connect(config).await.unwrap()).await;
    let out = maria
        .sql("SELECT `_id`, `document` FROM target.orders")
        .unwrap();
    assert_eq!(parse(&out, '\t'), expected());
    let key = maria
        .sql(
            "SELECT column_name FROM information_schema.key_column_usage
             WHERE table_schema = 'target' AND table_name = 'orders'
               AND constraint_name = 'PRIMARY'",
        )
        .unwrap();
    assert_eq!(key.trim(), "_id");
}
