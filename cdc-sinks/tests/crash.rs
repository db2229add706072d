//! Crash safety: a child process (this test binary, re-executed) applies a
//! deterministic stream of batches into each database sink, resuming from the
//! sink's stored offset, and is SIGKILLed at random moments. After every kill the
//! target must equal the state after exactly the stored number of batches, and
//! the history table must hold every change of those batches exactly once.

mod fixture;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cdc_core::event::{TableSchema, Value};
use cdc_core::{Sink, SinkBatch, SinkEvent};
use cdc_sinks::{
    JsonlConfig, JsonlSink, MySqlConfig, MySqlSink, PostgresConfig, PostgresSink, SinkError,
    SqliteConfig, SqliteSink, TableMapping, TableRule, WriteMode,
};
use fixture::*;
use rand::Rng;

const CHILD_ENV: &str = "CDC_SINKS_CRASH_CHILD";
const TARGET_ENV: &str = "CDC_SINKS_CRASH_TARGET";
const KILLS: usize = 50;
const CHANGES: u64 = 16;
/// Offsets per batch: begin, two changes per step, commit.
const STRIDE: u64 = 2 * CHANGES + 2;

fn tables() -> (Arc<TableSchema>, Arc<TableSchema>) {
    let cols = items().columns.clone();
    (
        schema(("app", "crash"), cols.clone()),
        schema(("app", "crash_hist"), cols),
    )
}

fn mapping() -> TableMapping {
    TableMapping {
        tables: vec![TableRule {
            schema: "app".into(),
            table: "crash_hist".into(),
            write_mode: Some(WriteMode::History),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// What step `j` of batch `n` does: (key, kind 0 = delete, 1 = insert, 2 = update
/// leaving `name` unchanged).
fn op(n: u64, j: u64) -> (i64, u8) {
    let mut x = (n * 1_000 + j + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    ((x % 40) as i64, ((x >> 8) % 5).min(2) as u8)
}

fn row(n: u64, j: u64, key: i64, kind: u8) -> Vec<Value> {
    let name = if kind == 2 {
        Value::Unchanged
    } else {
        t(&format!("v{n}-{j}"))
    };
    vec![i(key), name, i((n * 100 + j) as i64)]
}

/// Batch `n` of the stream.
fn batch(n: u64) -> SinkBatch {
    let (live, hist) = tables();
    let mut events = Vec::new();
    let mut offset = n * STRIDE + 1;
    for j in 0..CHANGES {
        let (key, kind) = op(n, j);
        for schema in [&live, &hist] {
            let r = row(n, j, key, kind);
            let change = match kind {
                0 => delete(schema, vec![i(key), Value::Null, Value::Null]),
                1 => insert(schema, r),
                _ => update(schema, r),
            };
            events.push(SinkEvent::Change {
                offset,
                schema: schema.clone(),
                change,
            });
            offset += 1;
        }
    }
    SinkBatch {
        events,
        last_offset: n * STRIDE + STRIDE - 1,
        copied: false,
    }
}

fn batches_applied(stored: Option<u64>) -> u64 {
    stored.map_or(0, |o| (o + 1) / STRIDE)
}

type State = Vec<(i64, Option<String>, i64)>;

/// The live table and the history offsets after `m` batches.
fn expected(m: u64) -> (State, Vec<i64>) {
    let mut live: BTreeMap<i64, (Option<String>, i64)> = BTreeMap::new();
    let mut history = Vec::new();
    for n in 0..m {
        for j in 0..CHANGES {
            let (key, kind) = op(n, j);
            let v = (n * 100 + j) as i64;
            match kind {
                0 => {
                    live.remove(&key);
                }
                1 => {
                    live.insert(key, (Some(format!("v{n}-{j}")), v));
                }
                _ => {
                    let name = live.get(&key).and_then(|e| e.0.clone());
                    live.insert(key, (name, v));
                }
            }
            history.push((n * STRIDE + 2 + 2 * j) as i64);
        }
    }
    (
        live.into_iter().map(|(k, (a, b))| (k, a, b)).collect(),
        history,
    )
}

async fn run_child<S: Sink<Error = SinkError>>(mut sink: S) {
    let mut n = batches_applied(sink.stored_offset().await.unwrap());
    loop {
        sink.apply(&batch(n)).await.unwrap();
        n += 1;
    }
}

/// The child's entry point; a no-op unless re-executed by a crash test.
#[tokio::test]
async fn crash_child() {
    let (Ok(kind), Ok(target)) = (std::env::var(CHILD_ENV), std::env::var(TARGET_ENV)) else {
        return;
    };
    match kind.as_str() {
        "sqlite" => {
            let mut c = SqliteConfig::new(target);
            c.mapping = mapping();
            run_child(SqliteSink::open(c).await.unwrap()).await
        }
        "jsonl" => {
            let mut c = JsonlConfig::new(target);
            c.max_file_bytes = 64 << 10;
            run_child(JsonlSink::open(c).await.unwrap()).await
        }
        "postgres" => {
            let mut c = PostgresConfig::new(target);
            c.mapping = mapping();
            run_child(PostgresSink::connect(c).await.unwrap()).await
        }
        _ => {
            let mut c = MySqlConfig::new(target);
            c.mapping = mapping();
            run_child(MySqlSink::connect(c).await.unwrap()).await
        }
    }
}

/// Polls `count` until no session of a killed child is left on the server.
///
/// A SIGKILLed client's server session can still be finishing the statement
/// it received last, e.g. a COMMIT; reading the offset and then the tables
/// while it does would see one without the other. A restarted pipeline only
/// starts after the old session is gone, so the check waits for that too.
async fn wait_for_sessions_to_end<F, Fut>(kind: &str, mut count: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    for _ in 0..300 {
        if count().await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{kind}: the killed child's server session did not end within 30 s");
}

/// Kills the child `KILLS` times and checks the target after each kill with
/// `check(stored batches)`.
async fn kill_loop<F, Fut>(kind: &str, target: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u64, State, Vec<i64>)>,
{
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let mut last = 0;
    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--test-threads=1"])
            .env(CHILD_ENV, kind)
            .env(TARGET_ENV, target)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(40..400))).await;
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{kind} child exited early with {status} on kill {kill}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (m, live, history) = check().await;
        let (want_live, want_history) = expected(m);
        assert_eq!(
            live, want_live,
            "{kind}: live table after kill {kill} ({m} batches)"
        );
        assert_eq!(
            history, want_history,
            "{kind}: history after kill {kill} ({m} batches)"
        );
        assert!(m >= last, "{kind}: stored offset went back");
        last = m;
    }
    assert!(last > 0, "{kind}: the child never committed a batch");
}

#[tokio::test]
async fn sqlite_sink_survives_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.sqlite");
    let target = path.to_str().unwrap().to_string();
    kill_loop("sqlite", &target, || async {
        let mut c = SqliteConfig::new(&path);
        c.mapping = mapping();
        let m = batches_applied(
            SqliteSink::open(c)
                .await
                .unwrap()
                .stored_offset()
                .await
                .unwrap(),
        );
        let conn = rusqlite::Connection::open(&path).unwrap();
        let live = match conn.prepare("SELECT id, name, n FROM crash ORDER BY id") {
            Ok(mut s) => s
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            Err(_) => Vec::new(),
        };
        let history = match conn.prepare("SELECT _cdc_offset FROM crash_hist ORDER BY 1") {
            Ok(mut s) => s
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            Err(_) => Vec::new(),
        };
        (m, live, history)
    })
    .await;
}

#[tokio::test]
async fn postgres_sink_survives_sigkill_at_random_moments() {
    let pg = cdc_testkit::Postgres::start()
        .expect("PostgreSQL 15 from the test kit is required for this test");
    let target = pg.connection_string();
    kill_loop("postgres", &target, || async {
        let (client, conn) = tokio_postgres::connect(&target, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        wait_for_sessions_to_end("postgres", || async {
            client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .get(0)
        })
        .await;
        let mut c = PostgresConfig::new(&target);
        c.mapping = mapping();
        let m = batches_applied(
            PostgresSink::connect(c)
                .await
                .unwrap()
                .stored_offset()
                .await
                .unwrap(),
        );
        let live = client
            .query("SELECT id, name, n FROM crash ORDER BY id", &[])
            .await
            .map(|rows| {
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect()
            })
            .unwrap_or_default();
        let history = client
            .query("SELECT _cdc_offset FROM crash_hist ORDER BY 1", &[])
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default();
        (m, live, history)
    })
    .await;
}

#[tokio::test]
async fn mysql_sink_survives_sigkill_at_random_moments() {
    use mysql_async::prelude::Queryable;
    let db =
        cdc_testkit::MariaDb::start().expect("MariaDB from the test kit is required for this test");
    let target = db.url();
    kill_loop("mysql", &target, || async {
        // A pool, so the polling closure only borrows it; its one connection
        // is reused and excluded by CONNECTION_ID().
        let pool = mysql_async::Pool::new(target.as_str());
        wait_for_sessions_to_end("mysql", || async {
            let mut conn = pool.get_conn().await.unwrap();
            let others: Option<i64> = conn
                .query_first(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                     WHERE ID <> CONNECTION_ID() AND USER <> 'system user' \
                     AND COMMAND <> 'Daemon'",
                )
                .await
                .unwrap();
            others.unwrap_or(0)
        })
        .await;
        let mut conn = pool.get_conn().await.unwrap();
        let mut c = MySqlConfig::new(&target);
        c.mapping = mapping();
        let m = batches_applied(
            MySqlSink::connect(c)
                .await
                .unwrap()
                .stored_offset()
                .await
                .unwrap(),
        );
        let live: State = conn
            .query("SELECT id, name, n FROM crash ORDER BY id")
            .await
            .unwrap_or_default();
        let history: Vec<i64> = conn
            .query("SELECT _cdc_offset FROM crash_hist ORDER BY 1")
            .await
            .unwrap_or_default();
        drop(conn);
        pool.disconnect().await.unwrap();
        (m, live, history)
    })
    .await;
}

#[tokio::test]
async fn jsonl_sink_neither_loses_nor_repeats_a_line_across_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let target = path.to_str().unwrap().to_string();
    kill_loop("jsonl", &target, || async {
        let mut c = JsonlConfig::new(&path);
        c.max_file_bytes = 64 << 10;
        // Opening cuts off what the killed child wrote after its last commit.
        let m = batches_applied(
            JsonlSink::open(c)
                .await
                .unwrap()
                .stored_offset()
                .await
                .unwrap(),
        );
        let mut files: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        let offsets: Vec<u64> = files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(|l| {
                        serde_json::from_str::<serde_json::Value>(l).unwrap()["source"]["offset"]
                            .as_u64()
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let want: Vec<u64> = (0..m)
            .flat_map(|n| (0..2 * CHANGES).map(move |k| n * STRIDE + 1 + k))
            .collect();
        assert_eq!(offsets, want, "jsonl: lines after {m} batches");
        // The file sink has no tables: report the model so the shared checks pass.
        let (live, history) = expected(m);
        (m, live, history)
    })
    .await;
}
