//! Live snapshot tests against the test kit's PostgreSQL 15.

mod support;

use std::time::Duration;

use cdc_core::Source;
use cdc_core::event::{ChangeKind, Record, TableName, Value};
use cdc_postgres::{Catalog, ChunkReader, PostgresSource, connect_client};
use cdc_testkit::Postgres;
use support::config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_snapshot_and_stream_together_are_exact() {
    let pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.sql(
        "CREATE TABLE items (id int PRIMARY KEY, name char(4));
         INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 25) g;",
    )
    .unwrap();
    let mut source = PostgresSource::new(config(&pg, &["items"]));
    let mut snapshot = source.begin_initial_snapshot(10).await.unwrap();
    // Committed after the slot's consistent point: in the stream, not the snapshot.
    pg.sql("INSERT INTO items VALUES (26, 'new'); DELETE FROM items WHERE id = 1;")
        .unwrap();
    let mut ids = Vec::new();
    let mut schemas = 0;
    while let Some(records) = snapshot.next_records().await.unwrap() {
        for record in records {
            match record {
                Record::Schema(_) => schemas += 1,
                Record::Change(c) => {
                    assert_eq!(c.kind, ChangeKind::SnapshotRead);
                    assert_eq!(c.position, snapshot.position());
                    let row = c.after.unwrap();
                    if row[0] == Value::Int(3) {
                        assert_eq!(row[1], Value::Text("n3  ".into()));
                    }
                    ids.push(row[0].clone());
                }
                other => panic!("unexpected snapshot record {other:?}"),
            }
        }
    }
    assert_eq!(schemas, 1);
    assert_eq!(ids, (1..=25).map(Value::Int).collect::<Vec<_>>());
    source.start(None).await.unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(30), source.next_batch())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let kinds: Vec<_> = batch
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Change(c) => Some(c.kind),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec![ChangeKind::Insert, ChangeKind::Delete]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_reader_walks_composite_keys_in_order_with_positions() {
    let pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.sql(
        "CREATE TABLE comp (tenant text, at timestamptz, seq numeric, v int, PRIMARY KEY (tenant, at, seq));
         INSERT INTO comp SELECT 't' || (g % 3), '2024-01-01'::timestamptz + (g / 3) * interval '1 hour',
                                 g * 1.5, g FROM generate_series(1, 50) g;",
    )
    .unwrap();
    let client = connect_client(&config(&pg, &["comp"])).await.unwrap();
    let mut catalog = Catalog::default();
    let reader = ChunkReader::new(&client, &mut catalog, &TableName::new("public", "comp"), 7)
        .await
        .unwrap();
    assert_eq!(reader.schema().primary_key, vec![0, 1, 2]);
    let mut rows = Vec::new();
    let mut after = None;
    let mut chunks = 0;
    loop {
        let chunk = reader.read_chunk(&client, after.as_ref()).await.unwrap();
        assert!(chunk.low_lsn <= chunk.high_lsn && chunk.low_lsn > 0);
        assert!(chunk.rows.len() <= 7);
        chunks += 1;
        rows.extend(chunk.rows);
        match chunk.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(rows.len(), 50);
    assert!(chunks >= 8);
    let keys: Vec<_> = rows.iter().map(|r| format!("{:?}", &r[..3])).collect();
    let expected: Vec<String> = pg
        .sql("SELECT v FROM comp ORDER BY tenant, at, seq")
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let got: Vec<String> = rows
        .iter()
        .map(|r| match &r[3] {
            Value::Int(v) => v.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, expected, "{keys:?}");
}
