//! XA transactions, offline (MySQL 8 layout, built from the documented events)
//! and live on MariaDB: a prepared transaction is emitted at its `XA COMMIT`,
//! in commit order, and dropped at `XA ROLLBACK`; a commit whose prepare the
//! reader never saw is an error, not a silent loss.

mod fixture;
mod support;

use std::time::Duration;

use cdc_core::event::{SourcePosition, Value};
use cdc_core::{Source, SourceBatch};
use cdc_mysql::binlog::event::kind;
use cdc_mysql::binlog::writer::BinlogWriter;
use cdc_mysql::{Error, MySqlSource, decode_bytes};

const UUID: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
/// The XID of `XA START 'x1'` as the server writes it in the binlog.
const XID: &str = "X'7831',X'',1";

/// The binlog text of the XID whose gtrid is `gtrid` (format 1, no bqual).
fn xid(gtrid: &str) -> String {
    let hex: String = gtrid.bytes().map(|b| format!("{b:02X}")).collect();
    format!("X'{hex}',X'',1")
}

/// The XA_PREPARE event body: one_phase, formatID, gtrid and bqual lengths, data.
fn xa_prepare(one_phase: bool, gtrid: &str) -> Vec<u8> {
    let mut body = vec![u8::from(one_phase)];
    body.extend(1i32.to_le_bytes());
    body.extend((gtrid.len() as i32).to_le_bytes());
    body.extend(0i32.to_le_bytes());
    body.extend(gtrid.as_bytes());
    body
}

/// GTID `gno` with one insert of row `id` inside `XA START`/`XA END` and an
/// XA_PREPARE event (MySQL's layout).
fn prepared(w: &mut BinlogWriter, gno: u64, gtrid: &str, id: i32, one_phase: bool) {
    let sid = cdc_mysql::gtid::parse_uuid(UUID).unwrap();
    w.mysql_gtid(sid, gno);
    w.query("db", &format!("XA START {}", xid(gtrid)));
    w.table_map(5, "db", "t", &fixture::columns());
    w.rows(
        kind::WRITE_ROWS,
        5,
        4,
        &[fixture::image(id, 0, "1.00", Some("x"))],
    );
    w.query("db", &format!("XA END {}", xid(gtrid)));
    w.event(kind::XA_PREPARE, &xa_prepare(one_phase, gtrid));
}

fn plain(w: &mut BinlogWriter, gno: u64, id: i32) {
    let sid = cdc_mysql::gtid::parse_uuid(UUID).unwrap();
    w.mysql_gtid(sid, gno);
    w.query("db", "BEGIN");
    w.table_map(5, "db", "t", &fixture::columns());
    w.rows(
        kind::WRITE_ROWS,
        5,
        4,
        &[fixture::image(id, 0, "1.00", Some("y"))],
    );
    w.xid(gno);
}

fn statement(w: &mut BinlogWriter, gno: u64, sql: &str) {
    let sid = cdc_mysql::gtid::parse_uuid(UUID).unwrap();
    w.mysql_gtid(sid, gno);
    w.query("db", sql);
}

/// (first column of each change, txid) per batch that holds changes.
fn ids_and_txids(batches: &[SourceBatch]) -> Vec<(Vec<i64>, String)> {
    batches
        .iter()
        .map(|b| {
            let changes = fixture::changes(std::slice::from_ref(b));
            let ids: Vec<i64> = changes
                .iter()
                .map(|c| match c.after.as_ref().unwrap()[0] {
                    Value::Int(i) => i,
                    ref v => panic!("{v:?}"),
                })
                .collect();
            let txid = changes
                .first()
                .and_then(|c| c.txid.clone())
                .map(String::from)
                .unwrap_or_default();
            (ids, txid)
        })
        .filter(|(ids, _)| !ids.is_empty())
        .collect()
}

#[test]
fn a_prepared_transaction_is_emitted_at_its_commit_and_dropped_at_its_rollback() {
    let mut w = BinlogWriter::new("8.0.36", true);
    prepared(&mut w, 1, "x1", 1, false);
    plain(&mut w, 2, 2);
    prepared(&mut w, 3, "x2", 3, false);
    statement(&mut w, 4, &format!("XA COMMIT {}", xid("x1")));
    statement(&mut w, 5, &format!("XA ROLLBACK {}", xid("x2")));
    prepared(&mut w, 6, "x3", 6, true);
    plain(&mut w, 7, 7);
    let (batches, _) = decode_bytes(&w.finish(), true).unwrap();
    assert_eq!(
        ids_and_txids(&batches),
        vec![
            (vec![2], format!("{UUID}:2")),
            // Prepared first, visible at its commit: after row 2, as GTID 4.
            (vec![1], format!("{UUID}:4")),
            // Row 3 was rolled back; the one-phase XA commits in place.
            (vec![6], format!("{UUID}:6")),
            (vec![7], format!("{UUID}:7")),
        ]
    );
    let last = batches.last().unwrap();
    let SourcePosition::MySql { gtid, .. } = &last.position else {
        panic!("{:?}", last.position)
    };
    assert_eq!(gtid.as_deref(), Some(&*format!("{UUID}:1-7")));
    let positions: Vec<_> = batches.iter().map(|b| b.position.clone()).collect();
    assert!(
        positions
            .windows(2)
            .all(|p| p[0].compare(&p[1]).is_some_and(|o| o.is_lt())),
        "{positions:?}"
    );
}

#[test]
fn a_commit_whose_prepare_was_not_read_is_an_error_naming_the_xid() {
    let mut w = BinlogWriter::new("8.0.36", true);
    plain(&mut w, 2, 2);
    statement(&mut w, 4, &format!("XA COMMIT {XID}"));
    let err = decode_bytes(&w.finish(), true).unwrap_err();
    assert!(
        matches!(&err, Error::XaPreparedBeforeStart { xid, .. } if xid == "X'7831',X'',1"),
        "{err}"
    );
    assert!(err.to_string().contains("re-backfill"), "{err}");
    // Decoded without error, and only the plain transaction after `xa` holds rows.
    let only_row_5_after = |xa: &dyn Fn(&mut BinlogWriter)| {
        let mut w = BinlogWriter::new("8.0.36", true);
        xa(&mut w);
        plain(&mut w, 5, 5);
        let (batches, _) = decode_bytes(&w.finish(), true).unwrap();
        assert_eq!(
            ids_and_txids(&batches),
            vec![(vec![5], format!("{UUID}:5"))]
        );
    };
    // A prepare seen without its group (the file starts inside it) still
    // matches its commit.
    only_row_5_after(&|w| {
        w.event(kind::XA_PREPARE, &xa_prepare(false, "x1"));
        statement(w, 4, &format!("XA COMMIT {XID}"));
    });
    // A rollback of an unseen prepare loses nothing and is no error.
    only_row_5_after(&|w| statement(w, 4, &format!("XA ROLLBACK {XID}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn live_xa_transactions_arrive_at_their_commit_and_a_restart_after_a_prepare_says_so() {
    let db = support::mariadb();
    support::sql(&db, "CREATE TABLE test.xa (id INT PRIMARY KEY)");
    let cfg = support::config(&db, &["xa"]);
    let mut source = MySqlSource::new(cfg.clone()).unwrap();
    source.start(None).await.unwrap();
    // Each call is a session of its own; a prepared XA transaction outlives it.
    for statements in [
        "XA START 'a'; INSERT INTO test.xa VALUES (1); XA END 'a'; XA PREPARE 'a'",
        "INSERT INTO test.xa VALUES (2)",
        "XA START 'b'; INSERT INTO test.xa VALUES (3); XA END 'b'; XA PREPARE 'b'",
        "XA COMMIT 'a'; XA ROLLBACK 'b';
         XA START 'c'; INSERT INTO test.xa VALUES (4); XA END 'c'; XA COMMIT 'c' ONE PHASE;
         INSERT INTO test.xa VALUES (5)",
    ] {
        support::sql(&db, statements);
    }
    let batches = support::transactions(&mut source, 4).await;
    let ids: Vec<_> = support::changes(&batches)
        .into_iter()
        .map(|(_, _, _, after)| after.unwrap()[0].clone())
        .collect();
    assert_eq!(
        ids,
        [2, 1, 4, 5].map(Value::Int),
        "the prepared row 1 arrives at its commit, after row 2; row 3 was rolled back"
    );
    let resume = batches.last().unwrap().position.clone();

    // A reader started after a prepare cannot see that transaction's rows.
    support::sql(
        &db,
        "XA START 'd'; INSERT INTO test.xa VALUES (6); XA END 'd'; XA PREPARE 'd'",
    );
    support::sql(&db, "INSERT INTO test.xa VALUES (7)");
    let after_prepare = support::transactions(&mut source, 1).await;
    let restart_from = after_prepare.last().unwrap().position.clone();
    assert!(resume.compare(&restart_from).is_some_and(|o| o.is_lt()));
    drop(source);
    let mut restarted = MySqlSource::new(cfg).unwrap();
    restarted.start(Some(restart_from)).await.unwrap();
    support::sql(&db, "XA COMMIT 'd'");
    let err = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match restarted.next_batch().await {
                Ok(Some(batch)) => restarted.acknowledge(&batch.position).await.unwrap(),
                Ok(None) => panic!("stream ended"),
                Err(e) => break e,
            }
        }
    })
    .await
    .expect("the orphan XA COMMIT was not reported");
    assert!(
        matches!(&err, Error::XaPreparedBeforeStart { xid, .. } if xid == "X'64',X'',1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_prepared_before_a_reconnect_arrives_at_its_commit_after_it() {
    let mut db = support::mariadb();
    support::sql(&db, "CREATE TABLE test.xa (id INT PRIMARY KEY)");
    let mut source = MySqlSource::new(support::config(&db, &["xa"])).unwrap();
    source.start(None).await.unwrap();
    support::sql(
        &db,
        "XA START 'r'; INSERT INTO test.xa VALUES (1); XA END 'r'; XA PREPARE 'r'",
    );
    support::sql(&db, "INSERT INTO test.xa VALUES (2)");
    let before = support::transactions(&mut source, 1).await;
    // The server keeps the prepared transaction over its restart; the source
    // reconnects by itself, after row 2.
    db.restart().expect("restart MariaDB");
    support::sql(&db, "XA COMMIT 'r'");
    let after = support::transactions(&mut source, 1).await;
    let ids: Vec<_> = support::changes(&before)
        .into_iter()
        .chain(support::changes(&after))
        .map(|(_, _, _, row)| row.unwrap()[0].clone())
        .collect();
    assert_eq!(ids, [2, 1].map(Value::Int));
}
