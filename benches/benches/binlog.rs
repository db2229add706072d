//! Binlog decode throughput: row events per second through the offline reader
//! (framing, CRC32, table maps, row images to event-model values, transaction
//! assembly). Target: >= 1M row events/s per core.
//!
//! Each iteration allocates every decoded batch and frees them all at its end,
//! so glibc's adaptive trim and mmap thresholds decide whether the next
//! iteration page-faults its memory back in. A change in allocation pattern
//! alone can flip that: `1_row_per_event` measured 2.90M rows/s before a
//! change and 2.14M after it, the difference in page faults; with the
//! thresholds fixed, the same two builds measured 3.41M and 3.49M. To compare
//! two builds, fix the thresholds for both:
//! `GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=268435456`.
// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use cdc_mysql::binlog::event::kind;
use cdc_mysql::binlog::writer::{BinlogWriter, FixtureColumn};
use cdc_mysql::rows::decimal;
use cdc_mysql::rows::table_map::col;

fn columns() -> Vec<FixtureColumn> {
    let c = FixtureColumn::new;
    vec![
        c("id", col::LONGLONG, vec![], false, true),
        c("qty", col::LONG, vec![], true, false),
        c("price", col::NEWDECIMAL, vec![12, 2], false, false),
        c("name", col::VARCHAR, vec![200, 0], false, false),
        c("updated", col::DATETIME2, vec![6], false, false),
    ]
}

fn row(id: i64) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend(id.to_le_bytes());
    v.extend((id as u32).to_le_bytes());
    v.extend(decimal::encode("1234.56", 12, 2));
    let name = format!("customer-{id:08}");
    v.push(name.len() as u8);
    v.extend(name.as_bytes());
    // 2024-05-01 12:34:56.789012 as DATETIME2(6).
    let ym = 2024 * 13 + 5;
    let int = ((ym << 5 | 1) << 17) | (12 << 12 | 34 << 6 | 56);
    v.extend(&(int + 0x80_0000_0000u64).to_be_bytes()[3..]);
    v.extend(&789_012u32.to_be_bytes()[1..]);
    v
}

/// `txns` MariaDB transactions of `events` rows events with `rows` rows each.
fn file(txns: usize, events: usize, rows: usize) -> Vec<u8> {
    let mut w = BinlogWriter::new("10.11.6-MariaDB-log", true);
    let cols = columns();
    let mut id = 0;
    for t in 0..txns {
        w.mariadb_gtid(0, t as u64 + 1, false);
        w.table_map(42, "shop", "orders", &cols);
        for _ in 0..events {
            let images: Vec<Vec<u8>> = (0..rows)
                .map(|_| {
                    id += 1;
                    row(id)
                })
                .collect();
            w.rows(kind::WRITE_ROWS, 42, cols.len(), &images);
        }
        w.xid(t as u64);
    }
    w.finish()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("binlog_decode");
    for (name, txns, events, rows) in [
        ("1_row_per_event", 1_000, 10, 1),
        ("100_rows_per_event", 100, 1, 100),
    ] {
        let bytes = file(txns, events, rows);
        let row_count = (txns * events * rows) as u64;
        group.throughput(Throughput::Elements(row_count));
        group.bench_function(name, |b| {
            b.iter(|| {
                let (batches, stats) = cdc_mysql::decode_bytes(&bytes, true).expect("decodes");
                assert_eq!(stats.rows, row_count);
                batches
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
