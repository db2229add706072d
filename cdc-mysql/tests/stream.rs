//! The live source against MariaDB 10.11: transactions, resume, restarts,
//! purged binlogs, DDL, start-up checks, and offline files.

mod support;

use cdc_core::event::{ChangeKind, Record, SharedStr, SourcePosition, Value};
use cdc_core::{Source, SourceBatch};
use cdc_mysql::{BinlogFiles, Error, MySqlSource, ResumeBy};
use support::*;

fn ids(batches: &[SourceBatch]) -> Vec<(String, i64)> {
    changes(batches)
        .into_iter()
        .map(|(t, _, b, a)| {
            let row = a.or(b).unwrap();
            match row[0] {
                Value::Int(id) => (t, id),
                ref other => panic!("id {other:?}"),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_table_transactions_arrive_whole_in_commit_order_with_gtid() {
    let db = mariadb();
    sql(
        &db,
        "CREATE TABLE test.a (id INT PRIMARY KEY, v TEXT); CREATE TABLE test.b (id INT PRIMARY KEY)",
    );
    let mut src = MySqlSource::new(config(&db, &["a", "b"])).unwrap();
    src.start(None).await.unwrap();
    sql(
        &db,
        "BEGIN; INSERT INTO test.a VALUES (1, 'x'); INSERT INTO test.b VALUES (10); UPDATE test.a SET v = 'y' WHERE id = 1; COMMIT;",
    );
    sql(
        &db,
        "BEGIN; DELETE FROM test.b WHERE id = 10; INSERT INTO test.a VALUES (2, NULL); COMMIT;",
    );
    let batches = transactions(&mut src, 2).await;

    let first = &batches[0];
    let kinds: Vec<&str> = first
        .records
        .iter()
        .map(|r| match r {
            Record::Schema(_) => "schema",
            Record::Begin(_) => "begin",
            Record::Change(_) => "change",
            Record::Commit(_) => "commit",
            Record::Heartbeat(_) => "heartbeat",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "schema", "schema", "begin", "change", "change", "change", "commit"
        ]
    );
    let rows = changes(&batches);
    assert_eq!(rows[0].1, ChangeKind::Insert);
    assert_eq!(rows[2].1, ChangeKind::Update);
    assert_eq!(rows[2].2.as_ref().unwrap()[1], Value::Text("x".into()));
    assert_eq!(rows[2].3.as_ref().unwrap()[1], Value::Text("y".into()));
    assert_eq!(rows[3].1, ChangeKind::Delete);
    assert_eq!(
        ids(&batches),
        [
            ("a".into(), 1),
            ("b".into(), 10),
            ("a".into(), 1),
            ("b".into(), 10),
            ("a".into(), 2)
        ]
    );

    // Positions: GTIDs and file:pos increase; every record of a transaction carries its
    // commit position, its changes without the GTID state.
    let (
        SourcePosition::MySql {
            pos: p1, gtid: g1, ..
        },
        SourcePosition::MySql {
            pos: p2, gtid: g2, ..
        },
    ) = (&batches[0].position, &batches[1].position)
    else {
        panic!("mysql positions");
    };
    assert!(p2 > p1);
    let seq = |g: &Option<SharedStr>| {
        g.as_deref()
            .unwrap()
            .rsplit('-')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(seq(g2), seq(g1) + 1);
    let server_gtid = sql(&db, "SELECT @@gtid_binlog_pos");
    assert_eq!(g2.as_deref().unwrap(), server_gtid.trim());
    for r in &batches[1].records {
        match r {
            Record::Change(c) => assert_eq!(c.position, batches[1].position.without_gtid()),
            Record::Schema(_) => {}
            other => assert_eq!(other.position(), Some(&batches[1].position)),
        }
    }
    let Record::Begin(begin) = &batches[1].records[0] else {
        panic!("begin first")
    };
    assert_eq!(begin.txid, g2.clone());
}

async fn resume_without_loss_or_duplicate(resume_by: ResumeBy) {
    let db = mariadb();
    sql(&db, "CREATE TABLE test.t (id INT PRIMARY KEY)");
    let mut src = MySqlSource::new(config(&db, &["t"]))
        .unwrap()
        .with_resume_by(resume_by);
    src.start(None).await.unwrap();
    for i in 1..=3 {
        sql(&db, &format!("INSERT INTO test.t VALUES ({i})"));
    }
    let first = transactions(&mut src, 3).await;
    let acked = src.acknowledged().cloned().unwrap();
    drop(src);
    for i in 4..=6 {
        sql(&db, &format!("INSERT INTO test.t VALUES ({i})"));
    }
    let mut src = MySqlSource::new(config(&db, &["t"]))
        .unwrap()
        .with_resume_by(resume_by);
    src.start(Some(acked)).await.unwrap();
    sql(&db, "INSERT INTO test.t VALUES (7)");
    let second = transactions(&mut src, 4).await;
    let got: Vec<i64> = ids(&first)
        .into_iter()
        .chain(ids(&second))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(got, (1..=7).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_reader_resumes_by_gtid_with_no_loss_and_no_duplicate() {
    resume_without_loss_or_duplicate(ResumeBy::Gtid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_reader_resumes_by_file_and_position_with_no_loss_and_no_duplicate() {
    resume_without_loss_or_duplicate(ResumeBy::FilePos).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_restart_mid_stream_reconnects_without_loss_or_duplicate() {
    let mut db = mariadb();
    sql(&db, "CREATE TABLE test.t (id INT PRIMARY KEY)");
    let mut src = MySqlSource::new(config(&db, &["t"])).unwrap();
    src.start(None).await.unwrap();
    sql(&db, "INSERT INTO test.t VALUES (1)");
    let first = transactions(&mut src, 1).await;
    db.restart().expect("restart MariaDB");
    sql(&db, "INSERT INTO test.t VALUES (2)");
    sql(&db, "INSERT INTO test.t VALUES (3)");
    let second = transactions(&mut src, 2).await;
    let got: Vec<i64> = ids(&first)
        .into_iter()
        .chain(ids(&second))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(got, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purged_binlog_is_reported_as_needs_backfill_naming_the_file() {
    let db = mariadb();
    sql(&db, "CREATE TABLE test.t (id INT PRIMARY KEY)");
    let mut src = MySqlSource::new(config(&db, &["t"]))
        .unwrap()
        .with_resume_by(ResumeBy::FilePos);
    src.start(None).await.unwrap();
    sql(&db, "INSERT INTO test.t VALUES (1)");
    let batches = transactions(&mut src, 1).await;
    drop(src);
    let SourcePosition::MySql { file, .. } = &batches[0].position else {
        panic!()
    };
    sql(&db, "FLUSH BINARY LOGS; INSERT INTO test.t VALUES (2)");
    // MariaDB keeps files its binlog checkpoint still needs; flush and purge
    // until only the newest file is left.
    let mut left = String::new();
    for _ in 0..50 {
        sql(&db, "FLUSH BINARY LOGS");
        let current = sql(&db, "SHOW MASTER STATUS");
        let current_file = current.split_whitespace().next().unwrap().to_owned();
        sql(&db, &format!("PURGE BINARY LOGS TO '{current_file}'"));
        left = sql(&db, "SHOW BINARY LOGS");
        if left.lines().count() == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(left.lines().count(), 1, "{left}");

    for by in [ResumeBy::FilePos, ResumeBy::Gtid] {
        let mut src = MySqlSource::new(config(&db, &["t"]))
            .unwrap()
            .with_resume_by(by);
        let err = match src.start(Some(batches[0].position.clone())).await {
            Err(e) => e,
            Ok(()) => src.next_batch().await.expect_err("purged binlog must fail"),
        };
        assert!(matches!(err, Error::NeedsBackfill { .. }), "{by:?}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("needs backfill"), "{msg}");
        if by == ResumeBy::FilePos {
            assert!(msg.contains(file.as_str()), "{msg}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ddl_mid_stream_emits_the_new_schema_before_changes_that_use_it() {
    let db = mariadb();
    sql(
        &db,
        "CREATE TABLE test.t (id INT PRIMARY KEY, a INT, b TEXT)",
    );
    let mut src = MySqlSource::new(config(&db, &["t"])).unwrap();
    src.start(None).await.unwrap();
    sql(&db, "INSERT INTO test.t VALUES (1, 10, 'x')");
    sql(&db, "ALTER TABLE test.t ADD COLUMN c BIGINT UNSIGNED");
    sql(
        &db,
        "INSERT INTO test.t VALUES (2, 20, 'y', 18446744073709551615)",
    );
    sql(&db, "ALTER TABLE test.t DROP COLUMN a");
    sql(&db, "INSERT INTO test.t VALUES (3, 'z', 5)");
    let batches = transactions(&mut src, 3).await;
    let mut schema = None;
    let mut seen = Vec::new();
    for r in batches.iter().flat_map(|b| &b.records) {
        match r {
            Record::Schema(s) => schema = Some(s.clone()),
            Record::Change(c) => {
                let s = schema.as_ref().expect("schema before change");
                let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
                seen.push((names.join(","), c.after.clone().unwrap()));
            }
            _ => {}
        }
    }
    assert_eq!(seen[0].0, "id,a,b");
    assert_eq!(
        seen[0].1,
        [Value::Int(1), Value::Int(10), Value::Text("x".into())]
    );
    assert_eq!(seen[1].0, "id,a,b,c");
    assert_eq!(seen[1].1[3], Value::UInt(u64::MAX));
    assert_eq!(seen[2].0, "id,b,c");
    assert_eq!(
        seen[2].1,
        [Value::Int(3), Value::Text("z".into()), Value::UInt(5)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_change_logged_as_a_statement_is_counted_not_passed_over_silently() {
    let db = mariadb();
    sql(&db, "CREATE TABLE test.a (id INT PRIMARY KEY)");
    let mut src = MySqlSource::new(config(&db, &["a"])).unwrap();
    src.start(None).await.unwrap();
    // A session may log its changes as statements even on a ROW server.
    sql(
        &db,
        "SET SESSION binlog_format = 'STATEMENT'; INSERT INTO test.a VALUES (1); \
         SET SESSION binlog_format = 'ROW'; INSERT INTO test.a VALUES (2);",
    );
    let batches = transactions(&mut src, 1).await;
    assert_eq!(ids(&batches), [("a".into(), 2)]);
    assert_eq!(src.stats().statement_changes, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_event_over_16_mib_arrives_whole() {
    // The replication protocol splits an event over 16 MiB across packets.
    let db = mariadb();
    sql(
        &db,
        "SET GLOBAL max_allowed_packet = 64 * 1024 * 1024; \
         CREATE TABLE test.big (id INT PRIMARY KEY, v LONGBLOB)",
    );
    let mut src = MySqlSource::new(config(&db, &["big"])).unwrap();
    src.start(None).await.unwrap();
    sql(
        &db,
        "INSERT INTO test.big VALUES (1, REPEAT('x', 20000000))",
    );
    let batches = transactions(&mut src, 1).await;
    let rows = changes(&batches);
    assert_eq!(rows.len(), 1);
    let after = rows[0].3.as_ref().unwrap();
    assert_eq!(after[0], Value::Int(1));
    match &after[1] {
        Value::Bytes(v) => assert!(v.len() == 20_000_000 && v.iter().all(|&b| b == b'x')),
        other => panic!(
            "a LONGBLOB is bytes, got {:?}",
            std::mem::discriminant(other)
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_checks_refuse_wrong_settings_with_the_fix() {
    let db = mariadb();
    sql(&db, "SET GLOBAL binlog_format = 'MIXED'");
    let mut src = MySqlSource::new(config(&db, &["t"])).unwrap();
    let err = src.start(None).await.expect_err("MIXED must be refused");
    assert!(err.to_string().contains("set binlog_format=ROW"), "{err}");
    sql(
        &db,
        "SET GLOBAL binlog_format = 'ROW'; SET GLOBAL binlog_row_image = 'MINIMAL'",
    );
    let err = src.start(None).await.expect_err("MINIMAL must be refused");
    assert!(err.to_string().contains("binlog_row_image=FULL"), "{err}");
    sql(
        &db,
        "SET GLOBAL binlog_row_image = 'FULL'; SET GLOBAL binlog_row_metadata = 'MINIMAL'",
    );
    let err = src
        .start(None)
        .await
        .expect_err("metadata MINIMAL must be refused");
    assert!(
        err.to_string().contains("binlog_row_metadata=FULL"),
        "{err}"
    );
    sql(&db, "SET GLOBAL binlog_row_metadata = 'FULL'");
    sql(
        &db,
        &format!(
            "CREATE USER 'weak'@'%' IDENTIFIED BY '{}'; GRANT SELECT ON *.* TO 'weak'@'%'",
            cdc_testkit::PASSWORD
        ),
    );
    let mut cfg = config(&db, &["t"]);
    cfg.user = "weak".into();
    let err = MySqlSource::new(cfg)
        .unwrap()
        .start(None)
        .await
        .expect_err("no privileges");
    assert!(err.to_string().contains("GRANT REPLICATION SLAVE"), "{err}");
    let mut cfg = config(&db, &["t"]);
    cfg.server_id = 1;
    let err = MySqlSource::new(cfg)
        .unwrap()
        .start(None)
        .await
        .expect_err("server id clash");
    assert!(
        matches!(err, Error::ServerIdClash { server_id: 1 }),
        "{err}"
    );
    src.start(None)
        .await
        .expect("correct settings are accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_binlog_files_decode_to_the_same_changes_as_the_live_stream() {
    let db = mariadb();
    sql(
        &db,
        "CREATE TABLE test.t (id INT PRIMARY KEY, d DECIMAL(20,5), j JSON, s VARCHAR(20), tm TIME(6))",
    );
    let mut src = MySqlSource::new(config(&db, &["t"])).unwrap();
    src.start(None).await.unwrap();
    sql(
        &db,
        "INSERT INTO test.t VALUES (1, '-1.50000', '[1]', 'é', '-12:00:00.5'), (2, NULL, NULL, NULL, NULL)",
    );
    sql(
        &db,
        "BEGIN; UPDATE test.t SET s = 'ü' WHERE id = 2; DELETE FROM test.t WHERE id = 1; COMMIT;",
    );
    sql(
        &db,
        "FLUSH BINARY LOGS; INSERT INTO test.t VALUES (3, 3, '{}', 'x', '838:00:00')",
    );
    let live = transactions(&mut src, 3).await;

    let files = BinlogFiles::in_dir(&db.binlog_dir()).unwrap();
    assert!(files.len() >= 2, "{files:?}");
    let mut offline = BinlogFiles::new(files, vec![cdc_core::event::TableName::new("test", "t")]);
    offline.start(None).await.unwrap();
    let mut batches = Vec::new();
    while let Some(b) = offline.next_batch().await.unwrap() {
        if b.records.iter().any(|r| matches!(r, Record::Commit(_))) {
            batches.push(b);
        }
    }
    // The JSON column is LONGTEXT in the file (no catalog offline): compare as text.
    let normalize = |rows: Vec<RowChange>| {
        let fix = |r: Option<Vec<Value>>| {
            r.map(|r| {
                r.into_iter()
                    .map(|v| match v {
                        Value::Json(t) => Value::Text(t),
                        v => v,
                    })
                    .collect::<Vec<_>>()
            })
        };
        rows.into_iter()
            .map(|(t, k, b, a)| (t, k, fix(b), fix(a)))
            .collect::<Vec<_>>()
    };
    assert_eq!(normalize(changes(&batches)), normalize(changes(&live)));
    let positions = |b: &[SourceBatch]| b.iter().map(|b| b.position.clone()).collect::<Vec<_>>();
    assert_eq!(positions(&batches), positions(&live));

    // Resuming the offline reader after the first transaction yields the rest.
    let mut offline = BinlogFiles::new(BinlogFiles::in_dir(&db.binlog_dir()).unwrap(), vec![]);
    offline.start(Some(live[0].position.clone())).await.unwrap();
    let mut rest = 0;
    while let Some(b) = offline.next_batch().await.unwrap() {
        rest += changes(&[b]).into_iter().filter(|(t, ..)| t == "t").count();
    }
    assert_eq!(rest, 3);
    assert_eq!(offline.stats().unknown_events, 0);
}
