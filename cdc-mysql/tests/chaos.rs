//! Random transactions on two tables while the binlog dump connection is
//! killed again and again: the stream, replayed onto an empty model, must
//! give exactly the tables' final contents. Every insert must be new, every
//! update's and delete's before image must equal the model's row, so a lost,
//! repeated or reordered change fails at once, naming the seed.

mod support;

use std::time::{Duration, SystemTime};

use cdc_core::Source;
use cdc_core::event::{Record, Value};
use cdc_core::replay::ReplayModel;
use cdc_mysql::MySqlSource;
use mysql_async::prelude::Queryable;
use support::*;

/// A small deterministic generator (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TRANSACTIONS: usize = 300;
const KILLS: usize = 8;
const SENTINEL: i64 = -1;

/// Runs random transactions; about one in ten rolls back.
async fn write(db: &cdc_testkit::MariaDb, seed: u64) {
    let mut rng = Rng(seed);
    let mut conn = connect(db).await;
    let (mut k_ids, mut next_k) = (Vec::<i64>::new(), 1i64);
    for _ in 0..TRANSACTIONS {
        let ops = if rng.below(20) == 0 {
            300
        } else {
            1 + rng.below(12)
        };
        let mut tx = conn
            .start_transaction(Default::default())
            .await
            .expect("begin");
        let k_before = k_ids.clone();
        for _ in 0..ops {
            let n = rng.next();
            let v = match rng.below(4) {
                0 => None,
                1 => Some(format!("é{}ü", rng.below(1000))),
                _ => Some(format!("v{}", rng.below(1_000_000))),
            };
            let d = format!(
                "{}.{:03}",
                rng.below(1_000_000) as i64 - 500_000,
                rng.below(1000)
            );
            match (rng.below(6), k_ids.is_empty()) {
                (0..=2, _) | (_, true) => {
                    tx.exec_drop(
                        "INSERT INTO k (id, v, n, d) VALUES (?, ?, ?, ?)",
                        (next_k, v, n, d),
                    )
                    .await
                    .expect("insert k");
                    k_ids.push(next_k);
                    next_k += 1;
                }
                (3 | 4, _) => {
                    let id = k_ids[rng.below(k_ids.len() as u64) as usize];
                    tx.exec_drop(
                        "UPDATE k SET v = ?, n = ?, d = ? WHERE id = ?",
                        (v, n, d, id),
                    )
                    .await
                    .expect("update k");
                }
                _ => {
                    let id = k_ids.swap_remove(rng.below(k_ids.len() as u64) as usize);
                    tx.exec_drop("DELETE FROM k WHERE id = ?", (id,))
                        .await
                        .expect("delete k");
                }
            }
            if rng.below(3) == 0 {
                let key = (rng.below(50) as i64, rng.below(50) as i64);
                let c = format!("c{}", rng.below(100));
                tx.exec_drop(
                    "INSERT INTO m (a, b, c) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE c = VALUES(c)",
                    (key.0, key.1, c),
                )
                .await
                .expect("upsert m");
            }
        }
        if rng.below(10) == 0 {
            tx.rollback().await.expect("rollback");
            k_ids = k_before;
        } else {
            tx.commit().await.expect("commit");
        }
    }
    conn.query_drop(format!("INSERT INTO k (id) VALUES ({SENTINEL})"))
        .await
        .expect("sentinel");
}

/// Kills the binlog dump thread now and then while the writer runs (a user
/// may kill its own connections).
async fn kill_dumps(db: &cdc_testkit::MariaDb) -> usize {
    let mut conn = connect(db).await;
    let mut killed = 0;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let ids: Vec<u64> = conn
            .query(
                "SELECT id FROM information_schema.PROCESSLIST WHERE command LIKE 'Binlog Dump%'",
            )
            .await
            .expect("processlist");
        for id in ids {
            // The thread may end by itself first; that is not a failure.
            if conn.query_drop(format!("KILL {id}")).await.is_ok() {
                killed += 1;
            }
        }
    }
    killed
}

/// Reads the stream up to the sentinel row, replaying it onto a model.
async fn read(src: &mut MySqlSource, seed: u64) -> ReplayModel {
    let mut model = ReplayModel::new(&[("k", 1), ("m", 2)]);
    loop {
        let batch = tokio::time::timeout(Duration::from_secs(60), src.next_batch())
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: timed out before the sentinel"))
            .unwrap_or_else(|e| panic!("seed {seed}: source error: {e}"))
            .expect("stream ended");
        for record in batch.records {
            if let Record::Change(change) = record {
                let sentinel =
                    change.after.as_ref().and_then(|r| r.first()) == Some(&Value::Int(SENTINEL));
                model
                    .apply(change)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                if sentinel {
                    return model;
                }
            }
        }
    }
}

/// The rows of a query in the text protocol, NULL as `None`.
async fn rows_as_text(conn: &mut mysql_async::Conn, query: &str) -> Vec<Vec<Option<String>>> {
    let rows: Vec<mysql_async::Row> = conn.query(query).await.expect("select");
    rows.into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8(b).expect("utf-8")),
                    other => panic!("text protocol value {other:?}"),
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn random_writes_with_killed_dump_connections_replay_to_the_tables_contents() {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("seed {seed}");
    let db = mariadb();
    sql(
        &db,
        "CREATE TABLE test.k (id BIGINT PRIMARY KEY, v VARCHAR(40), \
         n BIGINT UNSIGNED, d DECIMAL(12,3)); \
         CREATE TABLE test.m (a INT, b INT, c TEXT, PRIMARY KEY (a, b))",
    );
    let mut src = MySqlSource::new(config(&db, &["k", "m"])).unwrap();
    src.start(None).await.unwrap();

    let ((), model, killed) = tokio::join!(write(&db, seed), read(&mut src, seed), kill_dumps(&db));
    assert!(killed > 0, "seed {seed}: no dump connection was killed");

    let mut conn = connect(&db).await;
    let mut expected = rows_as_text(&mut conn, "SELECT id, v, n, d FROM k").await;
    expected.extend(rows_as_text(&mut conn, "SELECT a, b, c FROM m").await);
    expected.sort();
    let replayed = model.rows_as_text();
    assert!(expected.len() > 100, "seed {seed}: too few rows to judge");
    assert!(
        expected == replayed,
        "seed {seed}: the replayed tables differ from the source"
    );
}
