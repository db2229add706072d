//! Crash test: a child process (this test binary, re-executed) appends under
//! load, commits a cursor and applies retention, and is SIGKILLed at random
//! moments, 200 times. After each kill the log is reopened and checked: every
//! acknowledged record is present and intact, offsets are dense, the cursor never
//! moved backwards, and retention never removed a record the cursor had not
//! passed.
//!
//! The child reports on stdout only after an operation returned: `ACK start end
//! tag size` after an append was acknowledged, `CUR offset` after a commit.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cdc_core::event::{Change, ChangeKind, Record, SourcePosition, TableName, Value};
use cdc_core::{ChangeLog, LogConfig, RetentionPolicy};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "CDC_CRASH_CHILD_DIR";
const CHILD_TEST: &str = "crash_child_entry";
const KILLS: usize = 200;

fn config() -> LogConfig {
    LogConfig {
        segment_max_bytes: 32 << 10,
        index_interval_bytes: 1024,
        retention: RetentionPolicy {
            max_bytes: Some(128 << 10),
            max_age: None,
        },
        ..LogConfig::default()
    }
}

fn record(tag: u64, size: usize) -> Record {
    Record::Change(Change {
        table: TableName::new("public", "t"),
        kind: ChangeKind::Insert,
        before: None,
        after: Some(vec![
            Value::UInt(tag),
            Value::Bytes(vec![(tag % 251) as u8; size]),
        ]),
        position: SourcePosition::Postgres { lsn: tag },
        txid: None,
        commit_time_micros: 0,
    })
}

/// The child's entry point; a no-op unless run by the crash test.
#[test]
fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(child(dir));
}

fn report(line: String) {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).unwrap();
    out.flush().unwrap();
}

async fn child(dir: String) {
    let log = ChangeLog::open(&dir, config()).unwrap();
    if log.cursors().get("c").unwrap().is_none() {
        log.cursors().create("c", log.offsets().start).unwrap();
    }
    let run: u64 = rand::rng().random_range(1..u32::MAX as u64);
    let mut tasks = Vec::new();
    for task in 0..3u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(run ^ task);
            for seq in 0u64.. {
                let n = rng.random_range(1..8u64);
                let size = rng.random_range(0..300usize);
                let tag = (run << 32) | (task << 28) | (seq << 4);
                let records = (0..n).map(|k| record(tag + k, size)).collect();
                let range = log.append(records).await.unwrap();
                report(format!("ACK {} {} {tag} {size}\n", range.start, range.end));
            }
        }));
    }
    loop {
        let durable = log.offsets().durable;
        let current = log.cursors().get("c").unwrap().unwrap();
        let target = current + (durable.saturating_sub(current)) / 2;
        if target > current {
            log.cursors().commit("c", target).unwrap();
            report(format!("CUR {target}\n"));
        }
        log.apply_retention().unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

struct Acked {
    records: BTreeMap<u64, (u64, usize)>,
    cursor: u64,
}

fn check(dir: &Path, acked: &Acked) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let log = ChangeLog::open(dir, config()).unwrap();
    let offsets = log.offsets();
    let cursor = log.cursors().get("c").unwrap().unwrap_or(0);
    assert!(
        cursor >= acked.cursor,
        "cursor moved backwards: {cursor} < {}",
        acked.cursor
    );
    assert!(
        cursor <= offsets.durable,
        "cursor {cursor} beyond the log end"
    );
    assert!(
        offsets.start <= cursor,
        "retention removed records the cursor had not passed"
    );
    if let Some((&last, _)) = acked.records.last_key_value() {
        assert!(offsets.durable > last, "acknowledged offset {last} lost");
    }
    let mut at = offsets.start;
    while at < offsets.durable {
        let entries = log.read(at, 512).unwrap();
        assert!(!entries.is_empty());
        for entry in entries {
            assert_eq!(entry.offset, at, "offsets are dense");
            let record = entry.record().unwrap();
            if let Some(&(tag, size)) = acked.records.get(&at) {
                assert_eq!(record, self::record(tag, size), "record at {at} intact");
            }
            at += 1;
        }
    }
    rt.block_on(log.close()).unwrap();
}

#[test]
fn acknowledged_records_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut acked = Acked {
        records: BTreeMap::new(),
        cursor: 0,
    };
    let mut total_acks = 0;
    for _ in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(5..60)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["ACK", start, end, tag, size] => {
                    let (start, end): (u64, u64) = (start.parse().unwrap(), end.parse().unwrap());
                    let (tag, size): (u64, usize) = (tag.parse().unwrap(), size.parse().unwrap());
                    for k in 0..end - start {
                        acked.records.insert(start + k, (tag + k, size));
                    }
                    total_acks += 1;
                }
                ["CUR", offset] => {
                    let offset: u64 = offset.parse().unwrap();
                    assert!(offset >= acked.cursor);
                    acked.cursor = offset;
                }
                _ => {}
            }
        }
        check(dir.path(), &acked);
        // Records the cursor passed may be removed by retention from now on.
        let cursor = acked.cursor;
        acked.records.retain(|&o, _| o >= cursor);
    }
    assert!(
        total_acks > KILLS,
        "the children made progress ({total_acks} acks)"
    );
}
