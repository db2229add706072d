//! Offline decoding of binlog bytes built from the documented format: MariaDB
//! files with checksums, MySQL 8 compressed transaction payloads, unknown
//! events, and corrupt input.

use cdc_core::event::{ChangeKind, Record, SourcePosition, Value};
use cdc_mysql::binlog::event::kind;
use cdc_mysql::binlog::writer::BinlogWriter;
use cdc_mysql::{Decoder, decode_bytes, decode_file};

mod fixture;
use fixture::{columns, image};

fn mariadb_file() -> Vec<u8> {
    let mut w = BinlogWriter::new("10.11.6-MariaDB-log", true);
    w.event(kind::MARIADB_GTID_LIST, &[0, 0, 0, 0]);
    w.mariadb_gtid(0, 1, true);
    w.query("shop", "CREATE TABLE items (id INT PRIMARY KEY)");
    w.mariadb_gtid(0, 2, false);
    w.event(kind::MARIADB_ANNOTATE_ROWS, b"INSERT INTO items ...");
    w.table_map(70, "shop", "items", &columns());
    w.rows(
        kind::WRITE_ROWS,
        70,
        4,
        &[
            image(1, u64::MAX, "-12.50", Some("héllo")),
            image(2, 0, "0.00", None),
        ],
    );
    w.rows(
        kind::UPDATE_ROWS,
        70,
        4,
        &[image(2, 0, "0.00", None), image(2, 7, "1.05", Some("x"))],
    );
    w.xid(99);
    w.event(200, b"an event type from the future");
    w.mariadb_gtid(0, 3, false);
    w.table_map(70, "shop", "items", &columns());
    w.rows(
        kind::DELETE_ROWS,
        70,
        4,
        &[image(1, u64::MAX, "-12.50", Some("héllo"))],
    );
    w.xid(100);
    w.finish()
}

#[test]
fn a_mariadb_file_decodes_into_whole_transactions_with_gtid_positions() {
    let bytes = mariadb_file();
    let (batches, stats) = decode_bytes(&bytes, true).unwrap();
    assert_eq!(stats.unknown_events, 1);
    // The DDL group is a heartbeat; then two transactions.
    assert!(matches!(batches[0].records[..], [Record::Heartbeat(_)]));
    let txs: Vec<_> = batches
        .iter()
        .filter(|b| b.records.iter().any(|r| matches!(r, Record::Commit(_))))
        .collect();
    assert_eq!(txs.len(), 2);
    let Record::Schema(schema) = &txs[0].records[0] else {
        panic!("schema first")
    };
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "big", "price", "name"]);
    assert_eq!(schema.primary_key, vec![0]);
    assert_eq!(schema.columns[2].source_type, "decimal(10,2)");

    let changes: Vec<_> = txs
        .iter()
        .flat_map(|b| &b.records)
        .filter_map(|r| {
            if let Record::Change(c) = r {
                Some(c.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(changes.len(), 4);
    assert_eq!(changes[0].kind, ChangeKind::Insert);
    assert_eq!(
        changes[0].after.as_ref().unwrap(),
        &vec![
            Value::Int(1),
            Value::UInt(u64::MAX),
            Value::Decimal("-12.50".parse().unwrap()),
            Value::Text("héllo".into())
        ]
    );
    assert_eq!(changes[1].after.as_ref().unwrap()[3], Value::Null);
    assert_eq!(changes[2].kind, ChangeKind::Update);
    assert_eq!(
        changes[2].after.as_ref().unwrap()[2],
        Value::Decimal("1.05".parse().unwrap())
    );
    assert_eq!(changes[3].kind, ChangeKind::Delete);
    assert_eq!(changes[0].txid.as_deref(), Some("0-1-2"));
    let SourcePosition::MySql { file, pos, gtid } = &txs[1].position else {
        panic!()
    };
    assert_eq!(
        (file.as_str(), *pos, gtid.as_deref()),
        ("binlog.000001", bytes.len() as u64, Some("0-1-3"))
    );
    // The second transaction's schema is unchanged: no second schema record.
    assert!(
        !txs[1]
            .records
            .iter()
            .any(|r| matches!(r, Record::Schema(_)))
    );
}

#[test]
fn a_mysql_8_compressed_transaction_payload_decodes() {
    let sid = cdc_mysql::gtid::parse_uuid("3e11fa47-71ca-11e1-9e33-c80aa9429562").unwrap();
    let mut inner = BinlogWriter::payload_body();
    inner.table_map(5, "db", "t", &columns());
    inner.rows(
        kind::WRITE_ROWS,
        5,
        4,
        &[image(9, 42, "3.14", Some("zstd"))],
    );
    inner.xid(1);
    let inner = inner.finish();

    let mut w = BinlogWriter::new("8.0.36", true);
    let mut previous = 1u64.to_le_bytes().to_vec();
    previous.extend(sid);
    previous.extend(1u64.to_le_bytes());
    previous.extend(1u64.to_le_bytes());
    previous.extend(41u64.to_le_bytes());
    w.event(kind::PREVIOUS_GTIDS, &previous);
    w.mysql_gtid(sid, 41);
    w.transaction_payload(&inner);
    let bytes = w.finish();

    let (batches, stats) = decode_bytes(&bytes, true).unwrap();
    assert_eq!(stats.unknown_events, 0);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let SourcePosition::MySql { pos, gtid, .. } = &b.position else {
        panic!()
    };
    assert_eq!(*pos, bytes.len() as u64);
    assert_eq!(
        gtid.as_deref(),
        Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-41")
    );
    let Record::Change(c) = &b.records[2] else {
        panic!("{:?}", b.records)
    };
    assert_eq!(c.after.as_ref().unwrap()[3], Value::Text("zstd".into()));
    assert_eq!(
        c.txid.as_deref(),
        Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:41")
    );
}

#[test]
fn a_corrupt_checksum_is_an_error_naming_the_offset() {
    let mut bytes = mariadb_file();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    let err = decode_bytes(&bytes, true).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn every_truncation_and_byte_flip_of_a_file_is_an_error_or_a_result_never_a_panic() {
    let bytes = mariadb_file();
    for len in 0..bytes.len() {
        let _ = decode_bytes(&bytes[..len], false);
    }
    for i in 4..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            let _ = decode_bytes(&b, false);
        }
    }
}

#[test]
fn a_file_split_across_calls_keeps_gtid_state() {
    let bytes = mariadb_file();
    let mut decoder = Decoder::new(None, true);
    let mut out = Vec::new();
    decode_file(&mut decoder, "mariadb-bin.000007", &bytes, &mut out).unwrap();
    let last = out.last().unwrap();
    let SourcePosition::MySql { file, gtid, .. } = &last.position else {
        panic!()
    };
    assert_eq!(file, "mariadb-bin.000007");
    assert_eq!(gtid.as_deref(), Some("0-1-3"));
}

/// Writes the fixtures as fuzz seeds when `CDC_MYSQL_FUZZ_SEEDS` names a
/// directory (used to seed `fuzz/corpus/binlog_file`); otherwise checks they decode.
#[test]
fn fixtures_can_seed_the_fuzz_corpus() {
    let file = mariadb_file();
    assert!(decode_bytes(&file, true).is_ok());
    if let Ok(dir) = std::env::var("CDC_MYSQL_FUZZ_SEEDS") {
        std::fs::create_dir_all(&dir).unwrap();
        // The fuzz target prepends the magic itself.
        std::fs::write(format!("{dir}/mariadb"), &file[4..]).unwrap();
    }
}

#[test]
fn a_table_first_mapped_by_a_transaction_without_changes_still_has_its_schema_logged_first() {
    let mut w = BinlogWriter::new("10.11.6-MariaDB-log", true);
    // Mapped, no rows (as a statement that matched nothing can log).
    w.mariadb_gtid(0, 1, false);
    w.query("shop", "BEGIN");
    w.table_map(70, "shop", "items", &columns());
    w.xid(1);
    w.mariadb_gtid(0, 2, false);
    w.query("shop", "BEGIN");
    w.table_map(70, "shop", "items", &columns());
    w.rows(kind::WRITE_ROWS, 70, 4, &[image(1, 1, "1.00", None)]);
    w.xid(2);
    let (batches, _) = decode_bytes(&w.finish(), true).unwrap();
    let records: Vec<&Record> = batches.iter().flat_map(|b| &b.records).collect();
    let schema_at = records.iter().position(|r| matches!(r, Record::Schema(_)));
    let change_at = records.iter().position(|r| matches!(r, Record::Change(_)));
    assert!(
        matches!((schema_at, change_at), (Some(s), Some(c)) if s < c),
        "{records:?}"
    );
}
