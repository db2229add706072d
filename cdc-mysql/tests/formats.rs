//! Offline decoding of newer event formats, built from the documented layouts:
//! MySQL 8.4 tagged GTIDs (GTID_TAGGED_LOG_EVENT and tagged PREVIOUS_GTIDS),
//! MySQL partial JSON updates (PARTIAL_UPDATE_ROWS) and MariaDB compressed
//! query and rows events (`log_bin_compress=ON`).

mod fixture;

use cdc_core::event::{ChangeKind, Record, SourcePosition, Value};
use cdc_mysql::binlog::event::kind;
use cdc_mysql::binlog::writer::{BinlogWriter, FixtureColumn, json_diff, json_string, varlen};
use cdc_mysql::rows::table_map::col;
use cdc_mysql::{Decoder, decode_bytes, decode_file};
use fixture::*;

const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

/// A MySQL 8.4 file: tagged previous GTIDs (`UUID:1-10:etl:1-3`), then an
/// untagged and a tagged transaction.
fn mysql_84_file() -> Vec<u8> {
    let sid = cdc_mysql::gtid::parse_uuid(UUID).unwrap();
    let mut w = BinlogWriter::new("8.4.3", true);
    let mut previous = ((1u64 << 56) | (2 << 8) | 1).to_le_bytes().to_vec();
    for (tag, end) in [("", 11u64), ("etl", 4)] {
        previous.extend(sid);
        previous.extend(varlen(tag.len() as u64));
        previous.extend(tag.as_bytes());
        previous.extend(1u64.to_le_bytes());
        previous.extend(1u64.to_le_bytes());
        previous.extend(end.to_le_bytes());
    }
    w.event(kind::PREVIOUS_GTIDS, &previous);
    w.mysql_gtid(sid, 11);
    w.query("db", "BEGIN");
    w.table_map(5, "db", "t", &columns());
    w.rows(kind::WRITE_ROWS, 5, 4, &[image(1, 1, "1.00", Some("a"))]);
    w.xid(1);
    w.mysql_tagged_gtid(sid, "ETL", 4);
    w.query("db", "BEGIN");
    w.table_map(5, "db", "t", &columns());
    w.rows(kind::WRITE_ROWS, 5, 4, &[image(2, 2, "2.00", Some("b"))]);
    w.xid(2);
    w.finish()
}

#[test]
fn mysql_84_tagged_gtids_become_transaction_ids_and_positions() {
    let bytes = mysql_84_file();
    let (batches, stats) = decode_bytes(&bytes, true).unwrap();
    assert_eq!(stats.unknown_events, 0);
    assert_eq!(batches.len(), 2);
    let gtid = |i: usize| match &batches[i].position {
        SourcePosition::MySql { gtid, .. } => gtid.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(gtid(0), format!("{UUID}:1-11:etl:1-3"));
    assert_eq!(gtid(1), format!("{UUID}:1-11:etl:1-4"));
    let txids: Vec<_> = changes(&batches)
        .into_iter()
        .map(|c| c.txid.map(String::from))
        .collect();
    assert_eq!(
        txids,
        [Some(format!("{UUID}:11")), Some(format!("{UUID}:etl:4"))]
    );
    let Record::Begin(begin) = &batches[1].records[0] else {
        panic!("begin first: {}", shape(&batches[1]))
    };
    assert_eq!(begin.txid.as_deref(), Some(&*format!("{UUID}:etl:4")));
}

#[test]
fn a_tagged_gtid_set_resumes_the_decoder_state() {
    let bytes = mysql_84_file();
    let mut decoder = Decoder::new(None, true);
    decoder
        .set_position("binlog.000009", 4, Some(&format!("{UUID}:1-20:etl:1-7:9")))
        .unwrap();
    let mut out = Vec::new();
    decode_file(&mut decoder, "binlog.000009", &bytes, &mut out).unwrap();
    // The file's own previous-GTIDs event merges into the resumed state.
    let SourcePosition::MySql { gtid, .. } = &out.last().unwrap().position else {
        panic!()
    };
    assert_eq!(gtid.as_deref(), Some(&*format!("{UUID}:1-20:etl:1-7:9")));
    assert!(
        Decoder::new(None, true)
            .set_position("b.000001", 4, Some(&format!("{UUID}:1-2:Bad-Tag:3")))
            .is_err()
    );
}

/// Binary JSON: a small object of int16 members (inlined), keys in MySQL's
/// order (by length, then bytes).
fn json_object(members: &[(&str, i16)]) -> Vec<u8> {
    let n = members.len();
    let keys_at = 4 + n * 4 + n * 3;
    let size = keys_at + members.iter().map(|(k, _)| k.len()).sum::<usize>();
    let mut out = vec![0x00];
    out.extend((n as u16).to_le_bytes());
    out.extend((size as u16).to_le_bytes());
    let mut at = keys_at;
    for (k, _) in members {
        out.extend((at as u16).to_le_bytes());
        out.extend((k.len() as u16).to_le_bytes());
        at += k.len();
    }
    for (_, v) in members {
        out.push(0x05);
        out.extend(v.to_le_bytes());
    }
    for (k, _) in members {
        out.extend(k.as_bytes());
    }
    out
}

/// A JSON column value in a row image: 4-byte length, then the bytes.
fn json_value(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
    out.extend(bytes);
    out
}

/// A row of `(id INT, j1 JSON, n INT, j2 JSON)`, with no NULLs.
fn json_row(id: i32, j1: &[u8], n: i32, j2: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(id.to_le_bytes());
    out.extend(json_value(j1));
    out.extend(n.to_le_bytes());
    out.extend(json_value(j2));
    out
}

/// A MySQL 8.0 file with one PARTIAL_UPDATE_ROWS event of two rows on
/// `(id INT, j1 JSON, n INT, j2 JSON)`: the first with j2 as diffs, the second
/// without partial JSON.
fn partial_json_file() -> Vec<u8> {
    let c = FixtureColumn::new;
    let columns = [
        c("id", col::LONG, vec![], false, true),
        c("j1", col::JSON, vec![4], false, false),
        c("n", col::LONG, vec![], false, false),
        c("j2", col::JSON, vec![4], false, false),
    ];
    let before = json_row(1, &json_string("x"), 5, &json_object(&[("a", 1), ("b", 2)]));
    // Value options 1 (partial JSON), then one bit per JSON column of the
    // table: j1 whole, j2 as diffs.
    let mut after = vec![1, 0b10];
    let diffs = [
        json_diff(2, "$.a", None),
        json_diff(1, "$.c", Some(&json_object(&[("d", 4)]))),
        json_diff(0, "$.b", Some(&json_string("two"))),
    ]
    .concat();
    after.extend(json_row(1, &json_string("y"), 6, &diffs));
    // A second row without partial JSON: value options 0, no bits.
    let second_before = json_row(2, &json_string("p"), 7, &json_string("q"));
    let mut second_after = vec![0];
    second_after.extend(json_row(2, &json_string("r"), 8, &json_string("s")));

    let mut w = BinlogWriter::new("8.0.40", true);
    w.query("db", "BEGIN");
    w.table_map(9, "db", "docs", &columns);
    w.rows(
        kind::PARTIAL_UPDATE_ROWS,
        9,
        4,
        &[before, after, second_before, second_after],
    );
    w.xid(1);
    w.finish()
}

#[test]
fn mysql_partial_json_updates_apply_their_diffs_to_the_before_image() {
    let (batches, stats) = decode_bytes(&partial_json_file(), true).unwrap();
    assert_eq!(stats.rows, 2);

    let json = |text: &str| Value::Json(text.into());
    let rows: Vec<_> = changes(&batches)
        .into_iter()
        .map(|c| (c.kind, c.before.unwrap(), c.after.unwrap()))
        .collect();
    assert_eq!(
        rows,
        [
            (
                ChangeKind::Update,
                vec![
                    Value::Int(1),
                    json(r#""x""#),
                    Value::Int(5),
                    json(r#"{"a":1,"b":2}"#)
                ],
                vec![
                    Value::Int(1),
                    json(r#""y""#),
                    Value::Int(6),
                    json(r#"{"b":"two","c":{"d":4}}"#)
                ],
            ),
            (
                ChangeKind::Update,
                vec![Value::Int(2), json(r#""p""#), Value::Int(7), json(r#""q""#)],
                vec![Value::Int(2), json(r#""r""#), Value::Int(8), json(r#""s""#)],
            ),
        ]
    );
}

/// A MariaDB file with `log_bin_compress=ON`: a compressed DDL statement and a
/// transaction of compressed v1 rows events (insert, update, delete).
fn compressed_file() -> Vec<u8> {
    let mut w = BinlogWriter::new("10.11.6-MariaDB-log", true);
    w.mariadb_gtid(0, 1, true);
    w.compressed_query("shop", "TRUNCATE TABLE items");
    w.mariadb_gtid(0, 2, false);
    w.compressed_query("shop", "BEGIN");
    w.table_map(70, "shop", "items", &columns());
    let rows: Vec<Vec<u8>> = (0..50)
        .map(|i| image(i, 7, "12.34", Some("compressible text compressible text")))
        .collect();
    w.compressed_rows(kind::MARIADB_WRITE_ROWS_COMPRESSED_V1, 70, 4, &rows);
    w.compressed_rows(
        kind::MARIADB_UPDATE_ROWS_COMPRESSED_V1,
        70,
        4,
        &[image(1, 7, "12.34", None), image(1, 8, "-0.01", Some("é"))],
    );
    w.compressed_rows(
        kind::MARIADB_DELETE_ROWS_COMPRESSED,
        70,
        4,
        &[image(2, 7, "12.34", None)],
    );
    w.xid(9);
    w.finish()
}

#[test]
fn mariadb_compressed_query_and_rows_events_decode_like_plain_ones() {
    let bytes = compressed_file();
    let (batches, stats) = decode_bytes(&bytes, true).unwrap();
    assert_eq!(stats.unknown_events, 0);
    let all = changes(&batches);
    assert_eq!(all.len(), 53);
    assert_eq!(all[0].kind, ChangeKind::Truncate);
    assert_eq!(all[0].table.name, "items");
    assert_eq!(
        all[1].after.as_ref().unwrap(),
        &vec![
            Value::Int(0),
            Value::UInt(7),
            Value::Decimal("12.34".parse().unwrap()),
            Value::Text("compressible text compressible text".into())
        ]
    );
    let update = &all[51];
    assert_eq!(update.kind, ChangeKind::Update);
    assert_eq!(update.before.as_ref().unwrap()[3], Value::Null);
    assert_eq!(
        update.after.as_ref().unwrap()[2],
        Value::Decimal("-0.01".parse().unwrap())
    );
    assert_eq!(update.after.as_ref().unwrap()[3], Value::Text("é".into()));
    assert_eq!(all[52].kind, ChangeKind::Delete);
    assert_eq!(all[52].txid.as_deref(), Some("0-1-2"));
    // The compressed BEGIN opened the transaction: one batch, one commit.
    let txn = batches.last().unwrap();
    assert_eq!(shape(txn), format!("SB{}C", "c".repeat(52)));
}

#[test]
fn every_truncation_and_byte_flip_of_new_formats_is_an_error_or_a_result() {
    for bytes in [mysql_84_file(), compressed_file(), partial_json_file()] {
        for len in 0..bytes.len() {
            let _ = decode_bytes(&bytes[..len], false);
        }
        for i in 4..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            let _ = decode_bytes(&b, false);
        }
    }
}
