//! MongoDB change-event throughput: decoding events from their BSON, and the
//! full path to change-log records (keys and documents as Extended JSON,
//! grouped into transactions), in events per second.
// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use bson::oid::ObjectId;
use bson::spec::BinarySubtype;
use bson::{Binary, RawDocumentBuf, Timestamp, rawdoc};
use cdc_core::event::{SourcePosition, TableName};
use cdc_mongo::{Assembler, JsonMode, event};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const TXS: u32 = 100;
const EVENTS_PER_TX: u32 = 100;

/// `TXS` multi-document transactions of `EVENTS_PER_TX` inserts of an order
/// document (ObjectId key, strings, a double, a date, an array, a subdocument).
fn workload() -> Vec<RawDocumentBuf> {
    let lsid = rawdoc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![9; 16] } };
    let mut events = Vec::new();
    for tx in 0..TXS {
        for op in 0..EVENTS_PER_TX {
            let n = tx * EVENTS_PER_TX + op;
            let id = ObjectId::from_bytes([(n % 251) as u8; 12]);
            let time = (1_700_000_000u64 << 32) | u64::from(tx);
            events.push(rawdoc! {
                "_id": { "_data": format!("82{time:016X}2B042C0100296E5A1004{op:04X}") },
                "operationType": "insert",
                "clusterTime": Timestamp { time: 1_700_000_000, increment: tx },
                "wallTime": bson::DateTime::from_millis(1_700_000_000_000),
                "ns": { "db": "shop", "coll": "orders" },
                "documentKey": { "_id": id },
                "fullDocument": {
                    "_id": id,
                    "customer": format!("customer number {n}"),
                    "amount": f64::from(n) * 1.25,
                    "placed": bson::DateTime::from_millis(1_700_000_000_000 + i64::from(n)),
                    "tags": ["new", "web"],
                    "address": { "city": "Lisbon", "zip": "1100-148" },
                },
                "lsid": lsid.clone(),
                "txnNumber": i64::from(tx),
            });
        }
    }
    events
}

fn bench(c: &mut Criterion) {
    let events = workload();
    let bytes: usize = events.iter().map(|e| e.as_bytes().len()).sum();
    let tables = [TableName::new("shop", "orders")];
    let mut group = c.benchmark_group("mongo");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut operations = 0;
            for e in &events {
                let decoded = event::decode(e.as_bytes()).unwrap();
                operations += usize::from(decoded.operation.table().is_some());
            }
            operations
        })
    });
    for (name, json) in [
        ("assemble_relaxed", JsonMode::Relaxed),
        ("assemble_canonical", JsonMode::Canonical),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut assembler = Assembler::new(&tables, json, 64 << 20, SourcePosition::None);
                let mut records = 0;
                for e in &events {
                    let decoded = event::decode(e.as_bytes()).unwrap();
                    for batch in assembler.push(decoded).unwrap() {
                        records += batch.records.len();
                    }
                }
                records += assembler
                    .quiet(None, false, 0)
                    .iter()
                    .map(|b| b.records.len())
                    .sum::<usize>();
                records
            })
        });
    }
    group.finish();
    eprintln!(
        "mongo workload: {} events, {bytes} bytes of BSON",
        events.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
