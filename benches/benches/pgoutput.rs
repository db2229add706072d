//! pgoutput decode throughput: raw message decoding and full transaction
//! assembly into typed records (row events per second).
// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use cdc_core::event::TableName;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const TXS: usize = 100;
const ROWS_PER_TX: usize = 100;

fn put_text(out: &mut Vec<u8>, text: &str) {
    out.push(b't');
    out.extend((text.len() as i32).to_be_bytes());
    out.extend(text.as_bytes());
}

/// A relation (id int8, name text, amount numeric, at timestamptz, ok bool)
/// and `TXS` transactions of `ROWS_PER_TX` inserts, as pgoutput messages.
fn workload() -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut rel = vec![b'R'];
    rel.extend(16384u32.to_be_bytes());
    rel.extend(b"public\0orders\0d");
    let columns: [(&str, u32); 5] = [
        ("id", 20),
        ("name", 25),
        ("amount", 1700),
        ("at", 1184),
        ("ok", 16),
    ];
    rel.extend((columns.len() as i16).to_be_bytes());
    for (i, (name, oid)) in columns.iter().enumerate() {
        rel.push(u8::from(i == 0));
        rel.extend(name.as_bytes());
        rel.push(0);
        rel.extend(oid.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
    }
    messages.push(rel);
    let mut lsn = 0x1000u64;
    for tx in 0..TXS {
        let mut begin = vec![b'B'];
        begin.extend((lsn + 10_000).to_be_bytes());
        begin.extend(0i64.to_be_bytes());
        begin.extend((tx as u32 + 1000).to_be_bytes());
        messages.push(begin);
        for row in 0..ROWS_PER_TX {
            let id = tx * ROWS_PER_TX + row;
            let mut m = vec![b'I'];
            m.extend(16384u32.to_be_bytes());
            m.push(b'N');
            m.extend(5i16.to_be_bytes());
            put_text(&mut m, &id.to_string());
            put_text(&mut m, &format!("customer number {id}"));
            put_text(&mut m, &format!("{}.{:02}", id * 7, id % 100));
            put_text(&mut m, "2024-05-06 07:08:09.123456+00");
            put_text(&mut m, if id.is_multiple_of(2) { "t" } else { "f" });
            messages.push(m);
        }
        let mut commit = vec![b'C', 0];
        commit.extend((lsn + 10_000).to_be_bytes());
        commit.extend((lsn + 10_050).to_be_bytes());
        commit.extend(0i64.to_be_bytes());
        messages.push(commit);
        lsn += 20_000;
    }
    messages
}

fn decode(c: &mut Criterion) {
    let messages = workload();
    let tables = [TableName::new("public", "orders")];
    let rows = (TXS * ROWS_PER_TX) as u64;
    let mut group = c.benchmark_group("pgoutput");
    group.throughput(Throughput::Elements(rows));
    group.bench_function("decode_messages", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for m in &messages {
                if cdc_postgres::pgoutput::decode(m).is_ok() {
                    n += 1;
                }
            }
            n
        })
    });
    group.bench_function("assemble_typed_transactions", |b| {
        b.iter(|| {
            cdc_postgres::decode_offline(&tables, u64::MAX, messages.iter().map(Vec::as_slice))
                .expect("decodes")
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
