//! Change events built as the MongoDB manual documents them, decoded and
//! grouped into the change log's transactions. No server needed.

mod support;

use bson::{RawDocumentBuf, rawdoc};
use cdc_core::SourceBatch;
use cdc_core::event::{ChangeKind, Record, SourcePosition, Value};
use cdc_mongo::event::{self, Operation};
use cdc_mongo::{Assembler, Error, JsonMode};
use support::*;

fn assembler(chunk_bytes: usize) -> Assembler {
    Assembler::new(
        &[orders()],
        JsonMode::Relaxed,
        chunk_bytes,
        SourcePosition::None,
    )
}

fn feed(assembler: &mut Assembler, events: &[RawDocumentBuf]) -> Vec<SourceBatch> {
    let mut out = Vec::new();
    for e in events {
        let decoded = event::decode(e.as_bytes()).unwrap();
        out.extend(assembler.push(decoded).unwrap());
    }
    out
}

fn json(value: &Value) -> &str {
    match value {
        Value::Json(text) | Value::Text(text) => text,
        other => panic!("not JSON: {other:?}"),
    }
}

fn changes(batches: &[SourceBatch]) -> Vec<&cdc_core::event::Change> {
    batches
        .iter()
        .flat_map(|b| &b.records)
        .filter_map(|r| match r {
            Record::Change(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn inserts_updates_replacements_and_deletes_become_changes() {
    let mut update = event(2, 0, "update", "orders");
    update.append("documentKey", rawdoc! { "_id": 1_i32 });
    update.append(
        "updateDescription",
        rawdoc! { "updatedFields": { "body": "b" }, "removedFields": [], "truncatedArrays": [] },
    );
    update.append("fullDocument", rawdoc! { "_id": 1_i32, "body": "b" });
    let mut replace = event(3, 0, "replace", "orders");
    replace.append("documentKey", rawdoc! { "_id": 1_i32 });
    replace.append("fullDocument", bson::RawBson::Null);
    let mut delete = event(4, 0, "delete", "orders");
    delete.append("documentKey", rawdoc! { "_id": 1_i32 });
    delete.append(
        "fullDocumentBeforeChange",
        rawdoc! { "_id": 1_i32, "body": "b" },
    );

    let mut assembler = assembler(1 << 20);
    let batches = feed(
        &mut assembler,
        &[insert(1, 0, 1, "a"), update, replace, delete],
    );

    assert_eq!(batches.len(), 4, "one transaction per event outside one");
    assert!(matches!(&batches[0].records[1], Record::Schema(s) if s.table == orders()));
    assert_eq!(
        batches.iter().map(|b| b.records.len()).collect::<Vec<_>>(),
        [4, 3, 3, 3],
        "the schema comes once, before the first change"
    );
    let changes = changes(&batches);
    let kinds: Vec<_> = changes.iter().map(|c| c.kind).collect();
    use ChangeKind::*;
    assert_eq!(kinds, [Insert, Update, Update, Delete]);

    let after = changes[0].after.as_ref().unwrap();
    assert_eq!(json(&after[0]), "1");
    assert_eq!(json(&after[1]), r#"{"_id":1,"body":"a"}"#);
    assert_eq!(changes[1].before, None);
    assert_eq!(
        json(&changes[1].after.as_ref().unwrap()[1]),
        r#"{"_id":1,"body":"b"}"#
    );
    assert_eq!(
        changes[2].after.as_ref().unwrap()[1],
        Value::Unchanged,
        "a lookup that found nothing leaves the document as it was"
    );
    let before = changes[3].before.as_ref().unwrap();
    assert_eq!(json(&before[0]), "1");
    assert_eq!(json(&before[1]), r#"{"_id":1,"body":"b"}"#);
    assert_eq!(changes[3].after, None);
    assert_eq!(
        changes[0].commit_time_micros,
        i64::from(SECONDS) * 1_000_000 + 250_000
    );

    for batch in &batches {
        let Some(Record::Commit(commit)) = batch.records.last() else {
            panic!("{batch:?}");
        };
        assert_eq!(batch.position, commit.position);
    }
}

#[test]
fn a_delete_without_a_pre_image_carries_the_key_only() {
    let mut delete = event(1, 0, "delete", "orders");
    delete.append("documentKey", rawdoc! { "_id": "sku-9", "region": "eu" });
    let batches = feed(&mut assembler(1 << 20), &[delete]);
    let before = changes(&batches)[0].before.clone().unwrap();
    assert_eq!(
        json(&before[0]),
        r#""sku-9""#,
        "the shard key is not part of the key"
    );
    assert_eq!(before[1], Value::Unchanged);
}

#[test]
fn the_events_of_a_transaction_form_one_transaction() {
    let events = [
        in_transaction(insert(5, 0, 1, "a"), 3),
        in_transaction(insert(5, 1, 2, "b"), 3),
        in_transaction(insert(5, 2, 3, "c"), 3),
        insert(6, 0, 4, "d"),
    ];
    let mut assembler = assembler(1 << 20);
    let batches = feed(&mut assembler, &events);
    assert_eq!(batches.len(), 2);
    let records = &batches[0].records;
    let (Record::Begin(begin), Some(Record::Commit(commit))) = (&records[0], records.last()) else {
        panic!("{records:?}");
    };
    assert_eq!(changes(&batches[..1]).len(), 3);
    let txid = format!("{}:3", "ab".repeat(16));
    assert_eq!(begin.txid.as_deref(), Some(txid.as_str()));
    assert_eq!(commit.txid, begin.txid);
    assert!(begin.position.compare(&commit.position).unwrap().is_lt());
    assert!(
        commit
            .position
            .compare(&batches[1].position)
            .unwrap()
            .is_lt(),
        "transactions are in commit order"
    );
    assert!(changes(&batches[..1]).iter().all(|c| c.txid == begin.txid
        && c.commit_time_micros == begin.commit_time_micros
        && c.position == begin.position));
}

#[test]
fn a_quiet_poll_ends_an_open_transaction_and_then_beats() {
    let mut assembler = assembler(1 << 20);
    let open = feed(&mut assembler, &[in_transaction(insert(5, 0, 1, "a"), 9)]);
    assert!(open.is_empty(), "the transaction may have more events");

    let resume_point = token(8, 0);
    let quiet = assembler.quiet(Some(&resume_point), true, 42);
    assert_eq!(quiet.len(), 2);
    assert!(matches!(quiet[0].records.last(), Some(Record::Commit(_))));
    let Record::Heartbeat(beat) = &quiet[1].records[0] else {
        panic!("{quiet:?}");
    };
    assert_eq!(beat.position, quiet[1].position);
    let SourcePosition::Mongo { cluster_time, .. } = beat.position else {
        panic!()
    };
    assert_eq!(cluster_time, (u64::from(SECONDS) << 32) | 8);

    assert!(
        assembler.quiet(Some(&resume_point), true, 43).is_empty(),
        "a resume point already handed out is not repeated"
    );
    assert!(assembler.quiet(Some(&token(9, 0)), false, 44).is_empty());
}

#[test]
fn a_large_transaction_is_split_the_same_way_each_time() {
    let body = "x".repeat(600);
    let events: Vec<_> = (0..10)
        .map(|i| in_transaction(insert(7, i, i as i32, &body), 1))
        .chain([insert(8, 0, 99, "after")])
        .collect();
    let mut first = assembler(2048);
    let mut resumed = Assembler::new(&[orders()], JsonMode::Relaxed, 2048, SourcePosition::None);
    let batches = feed(&mut first, &events);
    assert_eq!(
        batches,
        feed(&mut resumed, &events),
        "re-delivery is identical"
    );

    assert!(matches!(batches[0].records[0], Record::Begin(_)));
    let begins = batches
        .iter()
        .flat_map(|b| &b.records)
        .filter(|r| matches!(r, Record::Begin(_)))
        .count();
    assert_eq!(begins, 2, "one Begin per transaction, whatever the parts");
    let commit_at = batches
        .iter()
        .position(|b| matches!(b.records.last(), Some(Record::Commit(_))))
        .unwrap();
    assert!(commit_at >= 2, "split in {} parts", commit_at + 1);
    for part in &batches[..commit_at] {
        assert_eq!(
            part.position,
            SourcePosition::None,
            "nothing acknowledged mid-way"
        );
    }
    assert_eq!(changes(&batches[..=commit_at]).len(), 10);
}

#[test]
fn a_dropped_declared_collection_is_a_truncate() {
    let batches = feed(
        &mut assembler(1 << 20),
        &[event(1, 0, "drop", "orders"), event(2, 0, "drop", "carts")],
    );
    assert_eq!(batches.len(), 1);
    let truncate = changes(&batches)[0];
    assert_eq!(
        (truncate.kind, &truncate.table),
        (ChangeKind::Truncate, &orders())
    );
}

#[test]
fn renaming_a_declared_collection_away_or_onto_it_stops_the_stream() {
    let rename = |from: &str, to: &str| {
        let mut e = event(1, 0, "rename", from);
        e.append("to", rawdoc! { "db": "shop", "coll": to });
        event::decode(e.as_bytes()).unwrap()
    };
    match assembler(1024).push(rename("orders", "orders_old")) {
        Err(Error::CollectionRenamed { from, to }) => {
            assert_eq!((from, to.name.as_str()), (orders(), "orders_old"));
        }
        other => panic!("{other:?}"),
    }
    match assembler(1024).push(rename("orders_new", "orders")) {
        Err(e @ Error::CollectionReplaced { .. }) => {
            assert!(e.to_string().contains("backfill"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(assembler(1024).push(rename("a", "b")).unwrap().is_empty());
}

#[test]
fn events_with_nothing_to_apply_are_counted_and_skipped() {
    let mut assembler = assembler(1 << 20);
    let mut other = event(1, 0, "insert", "carts");
    other.append("documentKey", rawdoc! { "_id": 1_i32 });
    other.append("fullDocument", rawdoc! { "_id": 1_i32 });
    let mut index = event(2, 0, "createIndexes", "orders");
    index.append("operationDescription", rawdoc! { "indexes": [] });
    assert!(feed(&mut assembler, &[other, index]).is_empty());
    assert_eq!(assembler.ignored(), 2);
}

#[test]
fn malformed_events_are_errors() {
    let good = insert(1, 0, 1, "a");
    let without = |field: &str| {
        let mut e = RawDocumentBuf::new();
        for (k, v) in good.iter().flatten().filter(|(k, _)| *k != field) {
            e.append(k, v.to_raw_bson());
        }
        e
    };
    for field in ["_id", "operationType", "ns", "documentKey", "fullDocument"] {
        assert!(event::decode(without(field).as_bytes()).is_err(), "{field}");
    }
    let mut wrong = without("clusterTime");
    wrong.append("clusterTime", "yesterday");
    assert!(event::decode(wrong.as_bytes()).is_err());
    let bytes = good.as_bytes();
    for cut in [0, 4, bytes.len() / 2, bytes.len() - 1] {
        assert!(event::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let decoded = event::decode(bytes).unwrap();
    assert!(matches!(decoded.operation, Operation::Insert { .. }));
}
