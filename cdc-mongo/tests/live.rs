//! Against a real MongoDB replica set, when `CDC_MONGO_URL` names one (for
//! example `mongodb://127.0.0.1:27017/?replicaSet=rs0`). No MongoDB server can
//! be installed on the project's CI machines, so without the variable this
//! test says so and passes; `tests/events.rs` covers the same decoding on
//! documented change events.

use std::time::Duration;

use bson::doc;
use cdc_core::event::{Change, ChangeKind, Record, SourcePosition, TableName, Value};
use cdc_core::{Source, SourceBatch};
use cdc_mongo::{MongoConfig, MongoSource};
use mongodb::Client;

fn url() -> Option<String> {
    std::env::var("CDC_MONGO_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A database name no other run uses.
fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{nanos}")
}

async fn next(source: &mut MongoSource) -> SourceBatch {
    tokio::time::timeout(Duration::from_secs(30), source.next_batch())
        .await
        .expect("a batch within 30 s")
        .expect("the stream reads")
        .expect("the stream goes on")
}

/// Batches until `count` changes came, and the position of the last commit.
async fn changes(source: &mut MongoSource, count: usize) -> (Vec<Change>, Vec<SourcePosition>) {
    let (mut changes, mut commits) = (Vec::new(), Vec::new());
    while changes.len() < count {
        for record in next(source).await.records {
            match record {
                Record::Change(c) => changes.push(c),
                Record::Commit(c) => commits.push(c.position),
                _ => {}
            }
        }
    }
    (changes, commits)
}

fn json(value: &Value) -> serde_json::Value {
    match value {
        Value::Json(text) | Value::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_change_stream_reaches_the_log_shape_and_resumes() {
    let Some(url) = url() else {
        eprintln!(
            "CDC_MONGO_URL is not set: the live MongoDB test has nothing to run against \
             (set it to a replica set's connection string)"
        );
        return;
    };
    let client = Client::with_uri_str(&url).await.unwrap();
    let db_name = unique_name("cdc_live");
    let db = client.database(&db_name);
    db.create_collection("orders").await.unwrap();
    let orders = db.collection::<bson::Document>("orders");
    let others = db.collection::<bson::Document>("others");
    let table = TableName::new(db_name.as_str(), "orders");

    let config = MongoConfig::new(url.clone(), vec![table.clone()]);
    let mut source = MongoSource::new(config.clone()).unwrap();
    source.start(None).await.unwrap();

    orders
        .insert_one(doc! { "_id": 1, "qty": 5_i64 })
        .await
        .unwrap();
    others.insert_one(doc! { "_id": 1 }).await.unwrap();
    orders
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "qty": 6_i64 } })
        .await
        .unwrap();
    let mut session = client.start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    for id in [2, 3] {
        orders
            .insert_one(doc! { "_id": id, "qty": 1_i64 })
            .session(&mut session)
            .await
            .unwrap();
    }
    session.commit_transaction().await.unwrap();
    orders.delete_one(doc! { "_id": 1 }).await.unwrap();

    let (seen, commits) = changes(&mut source, 5).await;
    let kinds: Vec<_> = seen.iter().map(|c| c.kind).collect();
    use ChangeKind::*;
    assert_eq!(kinds, [Insert, Update, Insert, Insert, Delete]);
    assert!(
        seen.iter().all(|c| c.table == table),
        "other collections stay out"
    );
    assert_eq!(
        json(&seen[0].after.as_ref().unwrap()[1]),
        serde_json::json!({"_id": 1, "qty": 5})
    );
    assert_eq!(json(&seen[1].after.as_ref().unwrap()[1])["qty"], 6);
    assert_eq!(seen[2].txid, seen[3].txid, "one transaction");
    assert!(seen[2].txid.is_some());
    assert_eq!(commits.len(), 4, "insert, update, the transaction, delete");
    assert_eq!(
        json(&seen[4].before.as_ref().unwrap()[0]),
        serde_json::json!(1)
    );

    // A new source resumed after the update sees the transaction and the delete.
    let mut resumed = MongoSource::new(config).unwrap();
    resumed.start(Some(commits[1].clone())).await.unwrap();
    let (again, _) = changes(&mut resumed, 3).await;
    let ids: Vec<_> = again
        .iter()
        .map(|c| json(&c.after.as_ref().or(c.before.as_ref()).unwrap()[0]))
        .collect();
    assert_eq!(
        ids,
        [
            serde_json::json!(2),
            serde_json::json!(3),
            serde_json::json!(1)
        ]
    );

    orders.drop().await.unwrap();
    let (dropped, _) = changes(&mut resumed, 1).await;
    assert_eq!(dropped[0].kind, Truncate);
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_collection_with_mixed_key_types_is_read_whole_in_chunks() {
    let Some(url) = url() else {
        eprintln!(
            "CDC_MONGO_URL is not set: the live MongoDB chunk test has nothing to run against"
        );
        return;
    };
    let client = Client::with_uri_str(&url).await.unwrap();
    let db_name = unique_name("cdc_chunks");
    let coll = client
        .database(&db_name)
        .collection::<bson::Document>("items");
    let oid = bson::oid::ObjectId::new();
    coll.insert_many([
        doc! { "_id": 2 },
        doc! { "_id": "b" },
        doc! { "_id": 1 },
        doc! { "_id": oid },
        doc! { "_id": "a" },
    ])
    .await
    .unwrap();
    let table = TableName::new(db_name.as_str(), "items");
    let config = MongoConfig::new(url, vec![table.clone()]);
    let reader = cdc_mongo::ChunkReader::connect(&config).await.unwrap();
    let (mut keys, mut after, mut chunks) = (Vec::new(), None, 0);
    loop {
        let read = reader.chunk(&table, after.as_ref(), 2).await.unwrap();
        assert!(read.low.compare(&read.high).unwrap().is_le());
        chunks += 1;
        for record in &read.chunk.records {
            let Record::Change(c) = record else { panic!() };
            assert_eq!(c.kind, ChangeKind::SnapshotRead);
            keys.push(json(&c.after.as_ref().unwrap()[0]));
        }
        match read.chunk.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // BSON order: numbers, then strings, then ObjectIds.
    let expected = [
        serde_json::json!(1),
        serde_json::json!(2),
        serde_json::json!("a"),
        serde_json::json!("b"),
        serde_json::json!({ "$oid": oid.to_hex() }),
    ];
    assert_eq!(keys, expected);
    assert_eq!(chunks, 3);
    client.database(&db_name).drop().await.unwrap();
}
