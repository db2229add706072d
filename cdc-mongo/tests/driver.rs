//! The source through the real `mongodb` driver, against a loopback server
//! that speaks the wire protocol over scripted change events
//! (`support/fake_mongod.rs`).

mod support;

use std::time::Duration;

use cdc_core::event::{Record, SourcePosition, TableName, Value};
use cdc_core::{Source, SourceBatch};
use cdc_mongo::{Error, MongoConfig, MongoSource};
use support::decode;
use support::fake_mongod::{FakeMongod, scripted_insert, scripted_insert_into};

/// A configuration for `shop.orders` on `server` that polls every 50 ms.
fn config(server: &FakeMongod) -> MongoConfig {
    let mut config = MongoConfig::new(server.url(), vec![TableName::new("shop", "orders")]);
    config.poll_interval = Duration::from_millis(50);
    config.heartbeat_interval = Duration::from_millis(100);
    config.idle_timeout = Duration::from_secs(5);
    config
}

fn source(server: &FakeMongod) -> MongoSource {
    MongoSource::new(config(server)).unwrap()
}

async fn next(source: &mut MongoSource) -> SourceBatch {
    tokio::time::timeout(Duration::from_secs(20), source.next_batch())
        .await
        .expect("a batch in time")
        .expect("the stream reads")
        .expect("the stream goes on")
}

/// The `_id` of every change in batches read until `count` came.
async fn ids(source: &mut MongoSource, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        for record in next(source).await.records {
            if let Record::Change(change) = record {
                match &change.after.unwrap()[0] {
                    Value::Text(id) => ids.push(id.to_string()),
                    other => panic!("{other:?}"),
                }
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn events_come_through_the_driver_and_quiet_polls_beat() {
    let server = FakeMongod::start();
    let mut source = source(&server);
    source.start(None).await.unwrap();
    server.write((1..=3).map(|n| scripted_insert(n, n as i32)));

    assert_eq!(ids(&mut source, 3).await, ["1", "2", "3"]);
    // Writes elsewhere move the server's resume point past our last change.
    let elsewhere = scripted_insert_into("carts", 4, 1);
    server.write([elsewhere.clone()]);
    let beat = loop {
        let batch = next(&mut source).await;
        if let [Record::Heartbeat(beat)] = batch.records.as_slice() {
            break beat.clone();
        }
    };
    assert_eq!(
        beat.position,
        decode(&elsewhere).position,
        "at the resume point"
    );
    assert_eq!(source.ignored_events(), 1);

    let stage = server.state().opened[0].clone();
    assert_eq!(stage.get_str("fullDocument").unwrap(), "updateLookup");
    assert!(
        !stage.contains_key("startAfter"),
        "a fresh start begins now"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_from_a_position_resumes_right_after_it() {
    let server = FakeMongod::start();
    server.write((1..=5).map(|n| scripted_insert(n, n as i32)));
    let after = decode(&scripted_insert(2, 2)).position;
    let mut source = source(&server);
    source.start(Some(after.clone())).await.unwrap();
    assert_eq!(ids(&mut source, 3).await, ["3", "4", "5"]);
    let SourcePosition::Mongo { resume_token, .. } = after else {
        unreachable!()
    };
    let stage = server.state().opened[0].clone();
    let sent = stage
        .get_document("startAfter")
        .unwrap()
        .get_str("_data")
        .unwrap();
    assert_eq!(sent.as_bytes(), resume_token.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_point_the_server_no_longer_has_needs_a_backfill() {
    let server = FakeMongod::start();
    server.write([scripted_insert(1, 1)]);
    let gone = decode(&scripted_insert(99, 99)).position;
    let error = source(&server).start(Some(gone)).await.unwrap_err();
    assert!(matches!(error, Error::NeedsBackfill { .. }), "{error}");
    assert!(!error.is_retryable());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_server_is_refused_with_the_fix() {
    let server = FakeMongod::start();
    server.state().fail_aggregates.push(40573);
    let error = source(&server).start(None).await.unwrap_err();
    assert!(matches!(error, Error::NotReplicaSet), "{error}");
    assert!(error.to_string().contains("--replSet"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalidated_stream_is_opened_again_after_the_invalidate() {
    let server = FakeMongod::start();
    let mut source = source(&server);
    source.start(None).await.unwrap();
    let invalidate = bson::rawdoc! {
        "_id": { "_data": format!("82{:016X}2B0229296E04", (1_700_000_000u64 << 32) | 2) },
        "operationType": "invalidate",
        "clusterTime": bson::Timestamp { time: 1_700_000_000, increment: 2 },
    };
    server.write([
        scripted_insert(1, 1),
        invalidate.clone(),
        scripted_insert(3, 3),
    ]);
    assert_eq!(ids(&mut source, 2).await, ["1", "3"]);
    let opened = server.state().opened.clone();
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert_eq!(
        opened[1].get_document("startAfter").unwrap(),
        &bson::Document::try_from(invalidate.get_document("_id").unwrap()).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_resumes_by_itself_after_the_server_went_away() {
    let server = FakeMongod::start();
    let mut source = source(&server);
    source.start(None).await.unwrap();
    server.write([scripted_insert(1, 1), scripted_insert(2, 2)]);
    assert_eq!(ids(&mut source, 2).await, ["1", "2"]);

    // Down for longer than the driver's own single resume waits (its server
    // selection gives up after 1 s), with writes meanwhile.
    server.down();
    server.write([scripted_insert(3, 3), scripted_insert(4, 4)]);
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        server.up();
        server
    });
    assert_eq!(
        ids(&mut source, 2).await,
        ["3", "4"],
        "nothing lost or repeated"
    );
    assert!(source.reconnects() >= 1);
    let server = restart.await.unwrap();
    let opened = server.state().opened.clone();
    let last = opened.last().unwrap();
    assert_eq!(
        last.get_document("startAfter").unwrap(),
        &bson::Document::try_from(scripted_insert(2, 2).get_document("_id").unwrap()).unwrap(),
        "resumed right after the last change handed out"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_reconnect_attempts_the_break_is_returned_retryable() {
    let server = FakeMongod::start();
    let mut config = config(&server);
    config.reconnect_attempts = 0;
    let mut source = MongoSource::new(config).unwrap();
    source.start(None).await.unwrap();
    server.write([scripted_insert(1, 1)]);
    assert_eq!(ids(&mut source, 1).await, ["1"]);
    server.down();
    let error = tokio::time::timeout(Duration::from_secs(20), source.next_batch())
        .await
        .expect("the break is noticed in time")
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert_eq!(source.reconnects(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_break_after_part_of_a_split_transaction_is_returned_not_resumed() {
    let server = FakeMongod::start();
    let mut config = config(&server);
    config.transaction_chunk_bytes = 1024;
    let mut source = MongoSource::new(config).unwrap();
    source.start(None).await.unwrap();
    server.write((1..=100).map(|n| support::in_transaction(scripted_insert(n, n as i32), 7)));
    let first = loop {
        let batch = next(&mut source).await;
        if !matches!(batch.records[0], Record::Heartbeat(_)) {
            break batch;
        }
    };
    assert!(matches!(first.records[0], Record::Begin(_)));
    assert!(
        !matches!(first.records.last(), Some(Record::Commit(_))),
        "a part"
    );

    server.down();
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(20), source.next_batch())
            .await
            .expect("the break is noticed in time")
        {
            Ok(Some(part)) => assert!(!matches!(part.records[0], Record::Begin(_))),
            Ok(None) => panic!("the stream ended"),
            Err(error) => break error,
        }
    };
    assert!(error.is_retryable(), "{error}");
    assert_eq!(
        source.reconnects(),
        0,
        "resuming would hand the first part out again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_asks_for_what_the_configuration_says() {
    let server = FakeMongod::start();
    let tables = vec![
        TableName::new("shop", "orders"),
        TableName::new("crm", "people"),
    ];
    let mut config = MongoConfig::new(server.url(), tables);
    config.full_document = cdc_mongo::FullDocument::PostImage;
    config.before_images = true;
    MongoSource::new(config).unwrap().start(None).await.unwrap();
    let mut single = MongoConfig::new(server.url(), vec![TableName::new("shop", "orders")]);
    single.before_images = false;
    MongoSource::new(single).unwrap().start(None).await.unwrap();

    let state = server.state();
    let (two, one) = (&state.opened[0], &state.opened[1]);
    assert_eq!(two.get_str("fullDocument").unwrap(), "required");
    assert_eq!(
        two.get_str("fullDocumentBeforeChange").unwrap(),
        "whenAvailable"
    );
    assert!(
        two.get_bool("allChangesForCluster").unwrap(),
        "two databases"
    );
    assert_eq!(state.opened_on[0].0, "admin");
    let matched = state.opened_on[0].1.to_string();
    for name in ["shop", "orders", "crm", "people", "to.coll"] {
        assert!(matched.contains(name), "{matched}");
    }
    assert_eq!(
        one.get_str("fullDocumentBeforeChange").unwrap_or("off"),
        "off"
    );
    assert!(!one.contains_key("allChangesForCluster"));
    assert_eq!(
        state.opened_on[1].0, "shop",
        "one database is watched alone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chunk_reader_reads_mixed_keys_whole_between_resume_points() {
    let server = FakeMongod::start();
    let oid = bson::oid::ObjectId::new();
    server.state().collections.insert(
        "orders".to_owned(),
        vec![
            bson::doc! { "_id": "b" },
            bson::doc! { "_id": 2 },
            bson::doc! { "_id": oid },
            bson::doc! { "_id": 1.5 },
            bson::doc! { "_id": "a" },
        ],
    );
    server.write([scripted_insert(1, 1)]);
    let table = TableName::new("shop", "orders");
    let config = MongoConfig::new(server.url(), vec![table.clone()]);
    let reader = cdc_mongo::ChunkReader::connect(&config).await.unwrap();
    let (mut keys, mut after, mut chunks) = (Vec::new(), None, 0);
    loop {
        let read = reader.chunk(&table, after.as_ref(), 2).await.unwrap();
        assert_eq!(
            read.low,
            decode(&scripted_insert(1, 1)).position,
            "the resume point"
        );
        assert!(read.low.compare(&read.high).unwrap().is_le());
        chunks += 1;
        for record in &read.chunk.records {
            let Record::Change(change) = record else {
                panic!("{record:?}")
            };
            assert_eq!(change.kind, cdc_core::event::ChangeKind::SnapshotRead);
            assert_eq!(change.position, read.high);
            match &change.after.as_ref().unwrap()[0] {
                Value::Text(id) => keys.push(id.to_string()),
                other => panic!("{other:?}"),
            }
        }
        match read.chunk.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let oid_key = format!(r#"{{"$oid":"{}"}}"#, oid.to_hex());
    assert_eq!(keys, ["1.5", "2", r#""a""#, r#""b""#, oid_key.as_str()]);
    assert_eq!(chunks, 3);
    let finds = server.state().finds.clone();
    assert_eq!(finds.len(), 3);
    assert!(!finds[0].contains_key("min"));
    assert_eq!(
        finds[1].get_document("min").unwrap(),
        &bson::doc! { "_id": 2 }
    );
    assert_eq!(
        finds[1].get_document("hint").unwrap(),
        &bson::doc! { "_id": 1 }
    );
    assert_eq!(
        finds[1]
            .get_document("readConcern")
            .unwrap()
            .get_str("level")
            .unwrap(),
        "majority"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_collection_ends_the_stream_until_started_again() {
    let server = FakeMongod::start();
    let mut source = source(&server);
    source.start(None).await.unwrap();
    let mut rename = support::event(2, 0, "rename", "orders");
    rename.append("to", bson::rawdoc! { "db": "shop", "coll": "orders_old" });
    server.write([scripted_insert(1, 1), rename, scripted_insert(3, 3)]);
    assert_eq!(ids(&mut source, 1).await, ["1"]);
    let error = loop {
        match source.next_batch().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended"),
            Err(error) => break error,
        }
    };
    assert!(matches!(error, Error::CollectionRenamed { .. }), "{error}");
    assert!(
        matches!(source.next_batch().await, Err(Error::NotStarted)),
        "nothing is read past the rename"
    );
}

/// The `_id` of every change in the log, in order.
fn logged_ids(log: &cdc_core::ChangeLog) -> Vec<String> {
    log.read(0, 100_000)
        .unwrap()
        .into_iter()
        .filter_map(|entry| match entry.record().unwrap() {
            Record::Change(change) => match &change.after.unwrap()[0] {
                Value::Text(id) => Some(id.to_string()),
                other => panic!("{other:?}"),
            },
            _ => None,
        })
        .collect()
}

async fn ingest_until(server: &FakeMongod, log: &cdc_core::ChangeLog, count: usize) {
    let token = cdc_core::ingest::CancellationToken::new();
    let runner = {
        let (log, token, mut source) = (log.clone(), token.clone(), source(server));
        tokio::spawn(async move { cdc_core::ingest::run(&mut source, &log, &token).await })
    };
    for _ in 0..400 {
        if logged_ids(log).len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    token.cancel();
    runner.await.unwrap().expect("ingest runs cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ingest_runner_logs_the_stream_and_resumes_from_the_log() {
    let server = FakeMongod::start();
    let dir = tempfile::tempdir().unwrap();
    let log = cdc_core::ChangeLog::open(dir.path(), cdc_core::LogConfig::default()).unwrap();
    // Written before the first run: a fresh start begins at "now", so these
    // are not read; the run's own writes come once its stream is open.
    server.write([scripted_insert(1, 1)]);
    let writer = {
        let events: Vec<_> = (2..=4).map(|n| scripted_insert(n, n as i32)).collect();
        let state = server.state_handle();
        tokio::spawn(async move {
            while state.lock().unwrap().opened.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            state.lock().unwrap().events.extend(events);
        })
    };
    ingest_until(&server, &log, 3).await;
    writer.await.unwrap();
    assert_eq!(logged_ids(&log), ["2", "3", "4"]);

    server.write((5..=6).map(|n| scripted_insert(n, n as i32)));
    ingest_until(&server, &log, 5).await;
    assert_eq!(
        logged_ids(&log),
        ["2", "3", "4", "5", "6"],
        "resumed after the log's end"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_copies_a_collection_of_mixed_keys_and_resumes_from_its_progress() {
    use cdc_core::backfill::{Backfill, BackfillConfig, BackfillProgress};
    use cdc_core::ingest::CancellationToken;
    use cdc_core::pipeline::{Pipeline, PipelineConfig};
    use cdc_sinks::{SqliteConfig, SqliteSink};

    let server = FakeMongod::start();
    let oid = bson::oid::ObjectId::new();
    server.state().collections.insert(
        "orders".to_owned(),
        vec![
            bson::doc! { "_id": "b", "n": 1 },
            bson::doc! { "_id": 2, "n": 2 },
            bson::doc! { "_id": oid, "n": 3 },
            bson::doc! { "_id": 1.5, "n": 4 },
            bson::doc! { "_id": "a", "n": 5 },
        ],
    );
    server.write([scripted_insert(1, 1)]);
    let dir = tempfile::tempdir().unwrap();
    let log = cdc_core::ChangeLog::open(dir.path().join("log"), Default::default()).unwrap();
    let db = dir.path().join("target.sqlite");
    let sink = SqliteSink::open(SqliteConfig::new(&db)).await.unwrap();
    let pipeline = Pipeline::new(log.clone(), PipelineConfig::new("to-sqlite"), sink)
        .unwrap()
        .start()
        .await
        .unwrap();
    let table = TableName::new("shop", "orders");
    let progress_path = dir.path().join("orders.backfill");
    let source_config = config(&server);
    let chunks = || cdc_mongo::MongoChunks::connect(&source_config, &table, 2);

    // Two chunks, then cancelled: the progress file keeps the float key.
    let mut one_at_a_time = BackfillConfig::new(&progress_path);
    one_at_a_time.max_hold = Duration::ZERO;
    let mut first = Backfill::new(chunks().await.unwrap(), one_at_a_time);
    let cancel = CancellationToken::new();
    let mut progress = first.subscribe();
    let stop = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let _ = progress.wait_for(|p| p.chunks >= 1).await;
            cancel.cancel();
        }
    });
    let summary = first.run(&pipeline, &cancel).await.unwrap();
    stop.await.unwrap();
    assert!(!summary.done);
    let saved: BackfillProgress<cdc_mongo::ChunkKey> =
        serde_json::from_slice(&std::fs::read(&progress_path).unwrap()).unwrap();
    assert_eq!(saved.estimated_rows, Some(5));
    assert!(saved.next.is_some());

    let mut second = Backfill::new(chunks().await.unwrap(), BackfillConfig::new(&progress_path));
    let summary = second
        .run(&pipeline, &CancellationToken::new())
        .await
        .unwrap();
    assert!(summary.done);
    assert_eq!(summary.rows, 5);
    pipeline.pause_at(log.offsets().durable).await.unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare("SELECT \"_id\" FROM \"orders\" ORDER BY \"_id\"")
        .unwrap();
    let mut keys: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    keys.sort();
    let mut expected = vec![
        "1.5".to_owned(),
        "2".to_owned(),
        r#""a""#.to_owned(),
        r#""b""#.to_owned(),
        format!(r#"{{"$oid":"{}"}}"#, oid.to_hex()),
    ];
    expected.sort();
    assert_eq!(keys, expected, "every document copied once");
    pipeline.resume().await.unwrap();
    pipeline.shutdown().await.unwrap();
}
