//! Binlogs written by real servers, from Debian's MariaDB test suite
//! (`mariadb-test-data`).
//!
//! The MySQL 8.0.40 one (test `rpl.rpl_from_mysql80`) holds plain row events, a
//! compressed transaction (TRANSACTION_PAYLOAD) and a partial JSON update
//! (PARTIAL_UPDATE_ROWS, `binlog_row_value_options=PARTIAL_JSON`). The test
//! that wrote it documents the statements, so the expected rows below are what
//! those statements stored.

mod support;

use cdc_core::SourceBatch;
use cdc_core::event::{ChangeKind, DataType, Record, SourcePosition, Value};
use cdc_mysql::{Decoder, decode_file};
use support::RowChange;

const MYSQL_80: &str = "std_data/mdev35643_mysql_80_binlog.000001";

/// Decodes a file of the test suite as `master-bin.000001`.
fn decode(
    file: &str,
) -> (
    cdc_mysql::Result<()>,
    Vec<SourceBatch>,
    cdc_mysql::DecodeStats,
) {
    let path = cdc_testkit::mariadb_test_file(file).unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&path).unwrap();
    let mut decoder = Decoder::new(None, true);
    let mut batches = Vec::new();
    let result = decode_file(&mut decoder, "master-bin.000001", &bytes, &mut batches);
    (result, batches, decoder.stats())
}

/// The changes of one batch.
fn changes(batch: &SourceBatch) -> Vec<RowChange> {
    support::changes(std::slice::from_ref(batch))
}

fn t1(a: i64, b: i64, c: &str) -> RowChange {
    let row = vec![Value::Int(a), Value::Int(b), Value::Text(c.into())];
    ("t1".to_owned(), ChangeKind::Insert, None, Some(row))
}

#[test]
fn a_mysql_80_binlog_decodes_plain_compressed_and_partial_json_transactions() {
    let (result, batches, stats) = decode(MYSQL_80);
    result.unwrap();
    assert_eq!(stats.unknown_events, 0);
    // t2's row was inserted with binlog_format=statement: no rows to capture,
    // and counted as such.
    assert_eq!(stats.statement_changes, 1);
    // Commit positions are the end_log_pos of each transaction's last event;
    // with gtid_mode OFF the server writes anonymous GTIDs, so no GTID state.
    let positions: Vec<u64> = batches
        .iter()
        .map(|b| match &b.position {
            SourcePosition::MySql { file, pos, gtid } => {
                assert_eq!((file.as_str(), gtid), ("master-bin.000001", &None));
                *pos
            }
            other => panic!("not a binlog position: {other:?}"),
        })
        .collect();
    // The first batch is the CREATE TABLE's heartbeat.
    assert_eq!(positions, [418, 704, 1099, 1389, 2297, 2599, 4390]);
    assert!(changes(&batches[0]).is_empty());

    assert_eq!(changes(&batches[1]), [t1(1, 0, "")]);
    assert_eq!(changes(&batches[2]), [t1(2, 0, "hulu"), t1(3, 0, "bulu")]);
    assert_eq!(changes(&batches[3]), [t1(4, 0, "skip")]);

    // One compressed transaction of 100 inserts (`\/` in the statement is `/`).
    let compressed: Vec<_> = (0..100)
        .map(|i| t1(1000 + i, i, &format!("--{i}--{}--", "/".repeat(100))))
        .collect();
    assert_eq!(changes(&batches[4]), compressed);
    assert_eq!(changes(&batches[5]), [t1(5, 0, "after compressed")]);

    // The partial JSON update: the after image is the whole document, the
    // before image with `$.b` replaced.
    let schema = batches[6].records.iter().find_map(|r| match r {
        Record::Schema(s) if s.table.name.as_str() == "t2" => Some(s),
        _ => None,
    });
    let types: Vec<_> = schema
        .unwrap()
        .columns
        .iter()
        .map(|c| c.data_type.clone())
        .collect();
    assert_eq!(
        types,
        [
            DataType::Int {
                bits: 32,
                signed: true
            },
            DataType::Json
        ]
    );
    let doc = |b: &str| format!(r#"{{"a":"hulu","b":"{b}","c":"bulu"}}"#);
    let before = vec![
        Value::Int(1),
        Value::Json(doc(&"[zyzzy]".repeat(100)).into()),
    ];
    let after = vec![Value::Int(1), Value::Json(doc(&"oOo".repeat(50)).into())];
    assert_eq!(
        changes(&batches[6]),
        [(
            "t2".to_owned(),
            ChangeKind::Update,
            Some(before),
            Some(after)
        )]
    );
}

#[test]
fn an_encrypted_mariadb_binlog_is_an_error_that_says_to_read_it_from_the_server() {
    // Written by MariaDB 10.2.28 with encrypt_binlog=ON: a START_ENCRYPTION
    // event at 256, then events only the server can decrypt.
    let (result, batches, _) = decode("std_data/binlog_before_20574.bin");
    assert!(batches.is_empty());
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("master-bin.000001:256") && message.contains("encrypt_binlog=ON"),
        "{message}"
    );
}
