//! Transactions too large to buffer: spilled to disk and delivered in parts
//! (the `Source` contract's split transactions), offline and live.

mod fixture;
mod support;

use cdc_core::Source;
use cdc_core::SourceBatch;
use cdc_core::event::{Record, SourcePosition, Value};
use cdc_mysql::binlog::event::kind;
use cdc_mysql::binlog::writer::BinlogWriter;
use cdc_mysql::{BinlogFiles, Decoder, MySqlSource, decode_bytes, decode_bytes_with};
use fixture::{columns, image, shape};

const ROWS: i32 = 2_000;
const CHUNK: usize = 16 << 10;

/// A small transaction, a large one of `ROWS` inserts in 20 events, a small one.
fn file() -> Vec<u8> {
    let mut w = BinlogWriter::new("10.11.6-MariaDB-log", true);
    w.mariadb_gtid(0, 1, false);
    w.table_map(70, "shop", "items", &columns());
    w.rows(kind::WRITE_ROWS, 70, 4, &[image(-1, 0, "0.00", None)]);
    w.xid(1);
    w.mariadb_gtid(0, 2, false);
    for event in 0..20 {
        w.table_map(70, "shop", "items", &columns());
        let images: Vec<Vec<u8>> = (0..ROWS / 20)
            .map(|i| image(event * 1000 + i, 1, "9.99", Some("row")))
            .collect();
        w.rows(kind::WRITE_ROWS, 70, 4, &images);
    }
    w.xid(2);
    w.mariadb_gtid(0, 3, false);
    w.table_map(70, "shop", "items", &columns());
    w.rows(kind::DELETE_ROWS, 70, 4, &[image(-1, 0, "0.00", None)]);
    w.xid(3);
    w.finish()
}

fn split_decoder() -> Decoder {
    Decoder::new(None, true).with_transaction_chunk_bytes(CHUNK)
}

/// Checks the parts of the large transaction: `Begin` first (after its
/// schema), `Commit` last, the earlier parts at `previous`, every record of
/// the transaction stamped with the commit position (its changes without the
/// GTID state) and GTID.
fn check_parts(parts: &[SourceBatch], previous: &SourcePosition) -> SourcePosition {
    assert!(parts.len() >= 3, "{} parts", parts.len());
    let Record::Begin(begin) = &parts[0].records[1] else {
        panic!("schema then begin: {}", shape(&parts[0]));
    };
    assert!(matches!(parts[0].records[0], Record::Schema(_)));
    let Some(Record::Commit(commit)) = parts.last().unwrap().records.last() else {
        panic!("commit last");
    };
    assert_eq!(begin.position, commit.position);
    assert_eq!(begin.txid, commit.txid);
    assert_eq!(begin.txid.as_deref(), Some("0-1-2"));
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let expected = if last { &commit.position } else { previous };
        assert_eq!(&part.position, expected, "part {i}");
        let s = shape(part);
        if i > 0 {
            assert!(!s.contains('B') && !s.contains('S'), "part {i}: {s}");
        }
        if !last {
            assert!(!s.contains('C'), "part {i}: {s}");
        }
        for r in &part.records {
            if let Record::Change(c) = r {
                assert_eq!(c.position, commit.position.without_gtid());
                assert_eq!(c.txid, commit.txid);
            }
        }
    }
    commit.position.clone()
}

fn ids(batches: &[SourceBatch]) -> Vec<i64> {
    fixture::changes(batches)
        .into_iter()
        .map(|c| match c.after.or(c.before).unwrap()[0] {
            Value::Int(id) => id,
            ref v => panic!("{v:?}"),
        })
        .collect()
}

#[test]
fn a_large_transaction_arrives_in_parts_with_begin_commit_and_positions() {
    let bytes = file();
    let (whole, _) = decode_bytes(&bytes, true).unwrap();
    assert_eq!(whole.len(), 3, "unsplit with the default chunk size");
    let (batches, stats) = decode_bytes_with(split_decoder(), &bytes, true).unwrap();
    assert_eq!(stats.split_transactions, 1);
    assert_eq!(shape(&batches[0]), "SBcC");
    let parts = &batches[1..batches.len() - 1];
    let commit = check_parts(parts, &batches[0].position);
    assert_eq!(commit, whole[1].position);
    assert_eq!(shape(batches.last().unwrap()), "BcC");
    // Same changes, same order as the unsplit decode.
    assert_eq!(fixture::changes(&batches), fixture::changes(&whole));
    assert_eq!(ids(parts).len(), ROWS as usize);
}

#[tokio::test]
async fn a_split_transaction_is_redelivered_whole_and_identical_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mysql-bin.000001");
    std::fs::write(&path, file()).unwrap();
    let read = |resume: Option<SourcePosition>| {
        let path = path.clone();
        async move {
            let mut src = BinlogFiles::new(vec![path], vec![]).with_transaction_chunk_bytes(CHUNK);
            src.start(resume).await.unwrap();
            let mut out = Vec::new();
            while let Some(b) = src.next_batch().await.unwrap() {
                out.push(b);
            }
            out
        }
    };
    let first = read(None).await;
    // A crash with the log ending inside the large transaction: restart after
    // the last completed one; a fresh decoder re-delivers it from its Begin.
    let again = read(Some(first[0].position.clone())).await;
    assert_eq!(again[..], first[1..]);
    check_parts(&again[..again.len() - 1], &first[0].position);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_live_transaction_streams_in_parts() {
    let db = support::mariadb();
    support::sql(
        &db,
        "CREATE TABLE test.big (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO test.big VALUES (0, 'first')",
    );
    let mut cfg = support::config(&db, &["big"]);
    cfg.transaction_chunk_bytes = 64 << 10;
    let mut src = MySqlSource::new(cfg).unwrap();
    src.start(None).await.unwrap();
    support::sql(
        &db,
        "INSERT INTO test.big VALUES (-1, 'before');
         INSERT INTO test.big SELECT seq, CONCAT('row ', seq) FROM test.seq_1_to_5000;
         INSERT INTO test.big VALUES (-2, 'after')",
    );
    let batches = support::transactions(&mut src, 3).await;
    let mut all = Vec::new();
    let mut parts = 0;
    let before = batches[0].position.clone();
    // `transactions` keeps only batches with a commit; read the parts again
    // from a fresh source positioned after the first transaction.
    drop(src);
    let mut cfg = support::config(&db, &["big"]);
    cfg.transaction_chunk_bytes = 64 << 10;
    let mut src = MySqlSource::new(cfg).unwrap();
    src.start(Some(before.clone())).await.unwrap();
    loop {
        let b = tokio::time::timeout(std::time::Duration::from_secs(30), src.next_batch())
            .await
            .expect("timed out")
            .unwrap()
            .unwrap();
        let done = b.records.iter().any(|r| matches!(r, Record::Commit(_)));
        parts += 1;
        all.push(b);
        if done {
            break;
        }
    }
    assert!(parts >= 3, "{parts} parts");
    for part in &all[..all.len() - 1] {
        assert_eq!(part.position, before);
    }
    assert_eq!(all.last().unwrap().position, batches[1].position);
    let got = ids(&all);
    assert_eq!(got, (1..=5000).collect::<Vec<i64>>());
    assert_eq!(src.stats().split_transactions, 1);
    let third = ids(&batches[2..]);
    assert_eq!(third, [-2]);
}
