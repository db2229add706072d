//! Random transactions on two tables while the walsender is terminated again
//! and again (6 to 10 times a run), read by the ingest runner into a change
//! log the way a host runs it (start again after each error the source does
//! not resume from by itself), with parts small enough that large
//! transactions come split. The log, replayed onto an
//! empty model, must give exactly the tables' final contents: every insert
//! new, every update's and delete's before image equal to the model's row,
//! every change inside one whole transaction. A lost, repeated or reordered
//! change fails at once, naming the seed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cdc_core::event::{Record, TableName, Value};
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::replay::ReplayModel;
use cdc_core::{ChangeLog, LogConfig};
use cdc_postgres::{PostgresConfig, PostgresSource};
use cdc_testkit::Postgres;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;

const TRANSACTIONS: usize = 300;
const SENTINEL: i64 = -1;

async fn connect(pg: &Postgres) -> Client {
    let (client, connection) =
        tokio_postgres::connect(&pg.connection_string(), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    client
}

/// Runs random transactions; one in twenty has 300 statements, about one in
/// ten rolls back.
async fn write(pg: &Postgres, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = connect(pg).await;
    let (mut k_ids, mut next_k) = (Vec::<i64>::new(), 1i64);
    for _ in 0..TRANSACTIONS {
        let ops = if rng.random_range(0..20) == 0 {
            300
        } else {
            rng.random_range(1..=12)
        };
        let tx = client.transaction().await.expect("begin");
        let k_before = k_ids.clone();
        for _ in 0..ops {
            let v = match rng.random_range(0..4) {
                0 => None,
                1 => Some(format!("é{}ü", rng.random_range(0..1000))),
                _ => Some(format!("v{}", rng.random_range(0..1_000_000))),
            };
            let n: i64 = rng.random();
            let d = format!(
                "{}.{:03}",
                rng.random_range(-500_000..500_000),
                rng.random_range(0..1000)
            );
            match (rng.random_range(0..6), k_ids.is_empty()) {
                (0..=2, _) | (_, true) => {
                    tx.execute(
                        "INSERT INTO k (id, v, n, d) VALUES ($1, $2, $3, $4::text::numeric)",
                        &[&next_k, &v, &n, &d],
                    )
                    .await
                    .expect("insert k");
                    k_ids.push(next_k);
                    next_k += 1;
                }
                (3 | 4, _) => {
                    let id = k_ids[rng.random_range(0..k_ids.len())];
                    tx.execute(
                        "UPDATE k SET v = $1, n = $2, d = $3::text::numeric WHERE id = $4",
                        &[&v, &n, &d, &id],
                    )
                    .await
                    .expect("update k");
                }
                _ => {
                    let id = k_ids.swap_remove(rng.random_range(0..k_ids.len()));
                    tx.execute("DELETE FROM k WHERE id = $1", &[&id])
                        .await
                        .expect("delete k");
                }
            }
            if rng.random_range(0..3) == 0 {
                let (a, b): (i32, i32) = (rng.random_range(0..50), rng.random_range(0..50));
                let c = format!("c{}", rng.random_range(0..100));
                tx.execute(
                    "INSERT INTO m (a, b, c) VALUES ($1, $2, $3) \
                     ON CONFLICT (a, b) DO UPDATE SET c = excluded.c",
                    &[&a, &b, &c],
                )
                .await
                .expect("upsert m");
            }
        }
        if rng.random_range(0..10) == 0 {
            tx.rollback().await.expect("rollback");
            k_ids = k_before;
        } else {
            tx.commit().await.expect("commit");
        }
    }
    client
        .execute("INSERT INTO k (id) VALUES ($1)", &[&SENTINEL])
        .await
        .expect("sentinel");
}

/// Terminates every walsender each 150 ms until `done`; the number ended.
async fn terminate_walsenders(pg: &Postgres, done: &AtomicBool) -> usize {
    let client = connect(pg).await;
    let mut ended = 0;
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let rows = client
            .query(
                "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
                 WHERE backend_type = 'walsender'",
                &[],
            )
            .await
            .expect("terminate walsenders");
        ended += rows.iter().filter(|r| r.get::<_, bool>(0)).count();
    }
    ended
}

/// Runs the ingest runner as a host would, starting it again after each
/// error, until `stop`; the breaks the sources resumed from by themselves,
/// and the errors the runner returned.
async fn supervise(
    log: &ChangeLog,
    config: &PostgresConfig,
    stop: &CancellationToken,
) -> (u64, usize) {
    let (mut reconnects, mut failures) = (0, 0);
    while !stop.is_cancelled() {
        let mut source = PostgresSource::new(config.clone());
        let run = ingest::run(&mut source, log, stop).await;
        reconnects += source.reconnects();
        match run {
            Ok(_) => break,
            Err(_) => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    (reconnects, failures)
}

/// Every record in the log, in order.
fn records(log: &ChangeLog) -> Vec<Record> {
    let end = log.offsets().durable;
    log.read(0, end as usize)
        .expect("read the log")
        .iter()
        .map(|entry| entry.record().expect("decode a record"))
        .collect()
}

fn holds_sentinel(records: &[Record]) -> bool {
    records.iter().any(|r| {
        matches!(r, Record::Change(c)
            if c.after.as_ref().and_then(|row| row.first()) == Some(&Value::Int(SENTINEL)))
    })
}

/// Waits until the sentinel row is durable in the log.
async fn await_sentinel(log: &ChangeLog, seed: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !holds_sentinel(&records(log)) {
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the sentinel is not in the log after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Replays the log onto a model, requiring every change inside a whole
/// transaction.
fn replay(records: Vec<Record>, seed: u64) -> ReplayModel {
    let mut model = ReplayModel::new(&[("k", 1), ("m", 2)]);
    let mut open = false;
    for record in records {
        match record {
            Record::Begin(_) => {
                assert!(!open, "seed {seed}: a transaction begins inside another");
                open = true;
            }
            Record::Commit(_) => {
                assert!(open, "seed {seed}: a commit without its begin");
                open = false;
            }
            Record::Change(change) => {
                assert!(open, "seed {seed}: a change outside a transaction");
                model
                    .apply(change)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            }
            _ => {}
        }
    }
    assert!(!open, "seed {seed}: the log ends inside a transaction");
    model
}

/// The rows of a query whose columns are all text, NULL as `None`.
async fn rows_as_text(client: &Client, query: &str) -> Vec<Vec<Option<String>>> {
    client
        .query(query, &[])
        .await
        .expect("select")
        .iter()
        .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_writes_with_terminated_walsenders_replay_to_the_tables_contents() {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("seed {seed}");
    let pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.sql(
        "CREATE TABLE k (id bigint PRIMARY KEY, v text, n bigint, d numeric(12,3));
         CREATE TABLE m (a int, b int, c text, PRIMARY KEY (a, b));
         ALTER TABLE k REPLICA IDENTITY FULL;
         ALTER TABLE m REPLICA IDENTITY FULL;",
    )
    .unwrap();
    let mut config = PostgresConfig::new(
        pg.user(),
        pg.database(),
        "chaos_slot",
        "chaos_pub",
        vec![TableName::new("public", "k"), TableName::new("public", "m")],
    );
    config.port = pg.port();
    // Transactions of 300 statements come in several parts, so terminations
    // cut some of them between parts.
    config.transaction_chunk_bytes = 8 << 10;
    // Frequent status updates, each answered with the server's sent
    // position, which may be confirmed only when nothing is outstanding.
    config.status_interval = Duration::from_millis(100);
    // The slot exists before the first write, so nothing precedes the stream.
    cdc_core::Source::start(&mut PostgresSource::new(config.clone()), None)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let stop = CancellationToken::new();
    let done = Arc::new(AtomicBool::new(false));
    let reading = supervise(&log, &config, &stop);
    let writing = async {
        write(&pg, seed).await;
        await_sentinel(&log, seed).await;
        done.store(true, Ordering::SeqCst);
        stop.cancel();
    };
    let ((reconnects, failures), (), ended) =
        tokio::join!(reading, writing, terminate_walsenders(&pg, &done));
    assert!(ended > 0, "seed {seed}: no walsender was terminated");
    // Most breaks are resumed by the source itself; one after a part of a
    // split transaction reaches the runner, which starts again.
    eprintln!(
        "seed {seed}: {ended} terminated, {reconnects} resumed by the source, {failures} by the runner"
    );
    assert!(
        reconnects + failures as u64 > 0,
        "seed {seed}: no termination broke the stream"
    );

    let model = replay(records(&log), seed);
    let client = connect(&pg).await;
    let mut expected = rows_as_text(&client, "SELECT id::text, v, n::text, d::text FROM k").await;
    expected.extend(rows_as_text(&client, "SELECT a::text, b::text, c FROM m").await);
    expected.sort();
    let replayed = model.rows_as_text();
    assert!(expected.len() > 100, "seed {seed}: too few rows to judge");
    assert!(
        expected == replayed,
        "seed {seed}: the replayed tables differ from the source"
    );
    log.close().await.unwrap();
}
