//! Opens, recovers and reads a change-log directory built from arbitrary bytes:
//! a raw active segment, a valid log with bytes flipped and cut, a sealed
//! segment followed by garbage, or garbage index, catalog and cursor files.
//! Recovery may fail with an error; it must never panic or serve a record that
//! does not validate.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use cdc_core::event::{
    Column, Commit, DataType, Heartbeat, Record, SourcePosition, TableName, TableSchema,
};
use cdc_core::log::internals::{segment_header, segment_image};
use cdc_core::{ChangeLog, LogConfig};
use libfuzzer_sys::fuzz_target;

fn valid_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let schema = Record::Schema(TableSchema {
            table: TableName::new("s", "t"),
            columns: vec![Column {
                name: "id".into(),
                data_type: DataType::Int {
                    bits: 64,
                    signed: true,
                },
                source_type: "bigint".into(),
                nullable: false,
            }],
            primary_key: vec![0],
        });
        let heartbeat = |lsn| {
            Record::Heartbeat(Heartbeat {
                position: SourcePosition::Postgres { lsn },
                time_micros: 0,
            })
        };
        let commit = Record::Commit(Commit {
            txid: Some("1".into()),
            position: SourcePosition::Postgres { lsn: 9 },
            commit_time_micros: 0,
        });
        segment_image(
            0,
            vec![
                vec![schema, heartbeat(1)],
                vec![heartbeat(2), heartbeat(3), commit],
                vec![heartbeat(4)],
            ],
        )
        .expect("encoding fixed records")
    })
}

fn scratch_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!(
        "cdc-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn seg(base: u64) -> String {
    format!("{base:020}.seg")
}

fn build(dir: &Path, mode: u8, rest: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("cursors"))?;
    match mode % 5 {
        0 => {
            let mut bytes = segment_header(0);
            bytes.extend_from_slice(rest);
            std::fs::write(dir.join(seg(0)), bytes)?;
        }
        1 => {
            // Flip bytes of a valid log at fuzzer-chosen places, then cut it.
            let mut bytes = valid_image().to_vec();
            let mut pairs = rest.chunks_exact(3);
            for p in pairs.by_ref() {
                let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % bytes.len();
                bytes[at] ^= p[2];
            }
            if let [cut, ..] = pairs.remainder() {
                let keep = bytes.len() - usize::from(*cut) % bytes.len();
                bytes.truncate(keep);
            }
            std::fs::write(dir.join(seg(0)), bytes)?;
        }
        2 => {
            // A sealed segment, then an active one made of the input.
            std::fs::write(dir.join(seg(0)), valid_image())?;
            let mut bytes = segment_header(7);
            bytes.extend_from_slice(rest);
            std::fs::write(dir.join(seg(7)), bytes)?;
        }
        3 => {
            // A sealed segment with garbage index files and catalog.
            std::fs::write(dir.join(seg(0)), valid_image())?;
            std::fs::write(dir.join(seg(7)), segment_header(7))?;
            let (a, b) = rest.split_at(rest.len() / 2);
            std::fs::write(dir.join(format!("{:020}.index", 0)), a)?;
            std::fs::write(dir.join(format!("{:020}.timeindex", 0)), b)?;
            std::fs::write(dir.join("schemas.catalog"), rest)?;
        }
        _ => {
            std::fs::write(dir.join(seg(0)), rest)?;
            std::fs::write(dir.join("cursors").join("c.cursor"), rest)?;
        }
    }
    Ok(())
}

fn exercise(dir: &Path) {
    let config = LogConfig {
        segment_max_bytes: 4096,
        ..LogConfig::default()
    };
    let Ok(log) = ChangeLog::open(dir, config) else {
        return;
    };
    let offsets = log.offsets();
    let mut at = offsets.start;
    while at < offsets.durable {
        match log.read(at, 64) {
            Ok(entries) if !entries.is_empty() => {
                for entry in entries {
                    assert_eq!(entry.offset, at, "offsets are dense");
                    // Served records passed their checksum, so they must validate.
                    entry.archived().expect("served record validates");
                    entry.record().expect("served record decodes");
                    at += 1;
                }
            }
            _ => break,
        }
    }
    let _ = log.seek_time(1_001);
    let _ = log.last_source_position();
    let _ = log.schema_at(&TableName::new("s", "t"), 3);
    let _ = log.cursors().list();
    let _ = log.cursor_statuses();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = scratch_dir();
    if build(&dir, mode, rest).is_ok() {
        exercise(&dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
});
