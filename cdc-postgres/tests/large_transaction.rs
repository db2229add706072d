//! A transaction too large to buffer streams into the change log in parts with
//! bounded memory, and a reader restarted in the middle of it leaves exactly
//! one copy in the log.
//!
//! Rows and part size come from `CDC_PG_LARGE_TX_ROWS` (default 200000) and
//! `CDC_PG_LARGE_TX_CHUNK_BYTES` (default 1 MiB), so the full 1M-row case can
//! be run by hand in release mode; the test prints the process's peak RSS.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cdc_core::event::{Record, SourcePosition, TableName, Value};
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::{ChangeLog, LogConfig, Source, SourceBatch};
use cdc_postgres::{PostgresConfig, PostgresSource};
use cdc_testkit::Postgres;

/// The shape of one batch the source handed out.
#[derive(Debug, Clone)]
struct Part {
    records: usize,
    changes: usize,
    begins: usize,
    commits: usize,
    position: SourcePosition,
    first_is_begin_or_schema: bool,
}

/// Passes a source through, noting each batch's shape, and ends the stream
/// (as a source shut down would) once `stop` says so.
struct Observed<S> {
    inner: S,
    parts: Arc<Mutex<Vec<Part>>>,
    stop: fn(&[Part]) -> bool,
}

#[async_trait]
impl<S: Source> Source for Observed<S> {
    type Error = S::Error;

    fn tables(&self) -> &[TableName] {
        self.inner.tables()
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<(), S::Error> {
        self.inner.start(resume_after).await
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, S::Error> {
        if (self.stop)(&self.parts.lock().unwrap()) {
            return Ok(None);
        }
        let batch = self.inner.next_batch().await?;
        if let Some(batch) = &batch {
            let count = |f: fn(&Record) -> bool| batch.records.iter().filter(|r| f(r)).count();
            self.parts.lock().unwrap().push(Part {
                records: batch.records.len(),
                changes: count(|r| matches!(r, Record::Change(_))),
                begins: count(|r| matches!(r, Record::Begin(_))),
                commits: count(|r| matches!(r, Record::Commit(_))),
                position: batch.position.clone(),
                first_is_begin_or_schema: matches!(
                    batch.records.first(),
                    Some(Record::Begin(_) | Record::Schema(_))
                ),
            });
        }
        Ok(batch)
    }

    async fn acknowledge(&mut self, position: &SourcePosition) -> Result<(), S::Error> {
        self.inner.acknowledge(position).await
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Counts, in log order: begins, commits, and whether the inserted ids are
/// exactly 1..=rows once each. Reads in windows so memory stays small.
fn audit(log: &ChangeLog, rows: u64) -> (u64, u64, bool) {
    let (mut begins, mut commits, mut next_id, mut in_order) = (0, 0, 1i64, true);
    let end = log.offsets().durable;
    let mut from = 0;
    while from < end {
        let entries = log.read(from, 10_000).unwrap();
        assert!(!entries.is_empty(), "the log reads up to its durable end");
        for entry in &entries {
            match entry.record().unwrap() {
                Record::Begin(_) => begins += 1,
                Record::Commit(_) => commits += 1,
                Record::Change(c) => match c.after.as_deref() {
                    Some([Value::Int(id)]) if *id == next_id => next_id += 1,
                    _ => in_order = false,
                },
                _ => {}
            }
            from = entry.offset + 1;
        }
    }
    (begins, commits, in_order && next_id == rows as i64 + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_transaction_streams_in_bounded_parts_and_a_restart_inside_it_keeps_one_copy() {
    let rows = env_or("CDC_PG_LARGE_TX_ROWS", 200_000);
    let chunk = env_or("CDC_PG_LARGE_TX_CHUNK_BYTES", 1 << 20);
    let pg = Postgres::start().expect("PostgreSQL 15 test server (cdc-testkit) must start");
    pg.sql("CREATE TABLE big (id int PRIMARY KEY)").unwrap();
    let mut config = PostgresConfig::new(
        pg.user(),
        pg.database(),
        "big_slot",
        "big_pub",
        vec![TableName::new("public", "big")],
    );
    config.port = pg.port();
    config.transaction_chunk_bytes = chunk;
    // Create the slot first, so the stream holds the whole transaction.
    let mut first = PostgresSource::new(config.clone());
    first.start(None).await.unwrap();
    drop(first);
    pg.sql(&format!(
        "INSERT INTO big SELECT g FROM generate_series(1, {rows}) g"
    ))
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
    let before = peak_rss_kib();
    let shutdown = CancellationToken::new();

    // The reader goes away after three parts, inside the transaction.
    let parts = Arc::new(Mutex::new(Vec::new()));
    let mut source = Observed {
        inner: PostgresSource::new(config.clone()),
        parts: parts.clone(),
        stop: |parts| parts.iter().filter(|p| p.changes > 0).count() >= 3,
    };
    let first_run = ingest::run(&mut source, &log, &shutdown).await.unwrap();
    drop(source);
    let first_parts = parts.lock().unwrap().clone();
    let cut = first_parts.iter().map(|p| p.changes as u64).sum::<u64>();
    assert!(cut > 0 && cut < rows, "the first run stopped inside: {cut}");
    assert_eq!(audit(&log, rows).1, 0, "no commit logged yet");

    // Restarted from the log's last completed position: the transaction is
    // delivered again from its begin and the log keeps one copy.
    let parts = Arc::new(Mutex::new(Vec::new()));
    let mut source = Observed {
        inner: PostgresSource::new(config),
        parts: parts.clone(),
        stop: |parts| parts.iter().any(|p| p.commits > 0),
    };
    let second_run = ingest::run(&mut source, &log, &shutdown).await.unwrap();
    drop(source);
    let second_parts = parts.lock().unwrap().clone();
    // The logged changes, the begin and the schema record sent again before it.
    assert!(
        (cut + 1..=cut + 3).contains(&second_run.skipped),
        "skipped {} after {cut} logged changes",
        second_run.skipped
    );
    assert_eq!(
        audit(&log, rows),
        (1, 1, true),
        "one copy of every row, in order"
    );
    assert_eq!(
        second_run.last_position,
        log.last_source_position(),
        "the commit is the log's last position"
    );

    // Each run's parts: begin first, commit only last, every part in
    // between positioned at what was completed before the transaction.
    let estimate_per_change = (std::mem::size_of::<Record>() + std::mem::size_of::<Value>()) as u64;
    let bound = (chunk / estimate_per_change) as usize + 3;
    for run in [&first_parts, &second_parts] {
        let tx: Vec<&Part> = run
            .iter()
            .filter(|p| p.changes > 0 || p.commits > 0)
            .collect();
        assert!(tx.len() >= 3, "the transaction came in parts: {tx:?}");
        assert!(tx[0].first_is_begin_or_schema && tx[0].begins == 1);
        assert!(tx[1..].iter().all(|p| p.begins == 0));
        assert!(tx[..tx.len() - 1].iter().all(|p| p.commits == 0));
        assert!(
            tx.iter().all(|p| p.records <= bound),
            "parts are bounded by the chunk size"
        );
        let open: Vec<_> = tx.iter().filter(|p| p.commits == 0).collect();
        assert!(open.iter().all(|p| p.position == tx[0].position));
    }
    assert_eq!(second_parts.last().unwrap().commits, 1);
    let after = peak_rss_kib();
    eprintln!(
        "rows {rows}, chunk {chunk} bytes, parts {} + {}, peak rss {before:?} -> {after:?} KiB, first run appended {}",
        first_parts.len(),
        second_parts.len(),
        first_run.appended
    );
    log.close().await.unwrap();
}
