//! Model-based property test: the log and its cursors against an in-memory model
//! under random appends, reads, reopens, retention and cursor operations.

use std::collections::BTreeMap;

use cdc_core::event::{Heartbeat, Record, SourcePosition};
use cdc_core::{ChangeLog, CursorState, Error, FsyncPolicy, LogConfig, RetentionPolicy};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u16>),
    Read { from: u16, max: u8 },
    Reopen,
    Retention,
    Create { cursor: u8, at: u16 },
    Commit { cursor: u8, at: u16 },
    Delete { cursor: u8 },
    Status { cursor: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(0u16..400, 1..12).prop_map(Op::Append),
        3 => (any::<u16>(), 1u8..50).prop_map(|(from, max)| Op::Read { from, max }),
        1 => Just(Op::Reopen),
        2 => Just(Op::Retention),
        2 => (0u8..3, any::<u16>()).prop_map(|(cursor, at)| Op::Create { cursor, at }),
        3 => (0u8..3, any::<u16>()).prop_map(|(cursor, at)| Op::Commit { cursor, at }),
        1 => (0u8..3).prop_map(|cursor| Op::Delete { cursor }),
        1 => (0u8..3).prop_map(|cursor| Op::Status { cursor }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_max_bytes: 4096,
        index_interval_bytes: 300,
        fsync: FsyncPolicy::Never,
        retention: RetentionPolicy {
            max_bytes: Some(6000),
            max_age: None,
        },
        ..LogConfig::default()
    }
}

/// A record whose content identifies it: `lsn` is the model's record number and
/// `time_micros` carries the size-dependent padding length.
fn record(id: u64, pad: u16) -> Record {
    Record::Heartbeat(Heartbeat {
        position: SourcePosition::Mongo {
            resume_token: vec![(id % 256) as u8; pad as usize],
            cluster_time: id,
        },
        time_micros: i64::from(pad),
    })
}

#[derive(Default)]
struct Model {
    records: Vec<Record>,
    start: u64,
    cursors: BTreeMap<String, u64>,
}

fn pick(at: u16, len: u64) -> u64 {
    // Mostly inside the log, sometimes just past its end.
    u64::from(at) % (len + 3)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut log = ChangeLog::open(dir.path(), config()).unwrap();
    let mut model = Model::default();
    for op in ops {
        let len = model.records.len() as u64;
        match op {
            Op::Append(pads) => {
                let records: Vec<Record> = pads
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| record(len + i as u64, p))
                    .collect();
                let range = rt.block_on(log.append(records.clone())).unwrap();
                prop_assert_eq!(range, len..len + pads.len() as u64);
                model.records.extend(records);
            }
            Op::Read { from, max } => {
                let from = pick(from, len);
                match log.read(from, usize::from(max)) {
                    Err(Error::OffsetBehindRetention { requested, oldest }) => {
                        prop_assert!(from < model.start);
                        prop_assert_eq!((requested, oldest), (from, model.start));
                    }
                    Ok(entries) => {
                        prop_assert!(from >= model.start);
                        let want = (len.saturating_sub(from)).min(u64::from(max));
                        prop_assert_eq!(entries.len() as u64, want);
                        for (i, e) in entries.iter().enumerate() {
                            prop_assert_eq!(e.offset, from + i as u64);
                            prop_assert_eq!(
                                &e.record().unwrap(),
                                &model.records[e.offset as usize]
                            );
                        }
                    }
                    Err(e) => prop_assert!(false, "read failed: {e}"),
                }
            }
            Op::Reopen => {
                rt.block_on(log.close()).unwrap();
                drop(log);
                log = ChangeLog::open(dir.path(), config()).unwrap();
            }
            Op::Retention => {
                log.apply_retention().unwrap();
                let start = log.offsets().start;
                prop_assert!(start >= model.start);
                prop_assert!(start <= len);
                if let Some(min) = model.cursors.values().min() {
                    prop_assert!(
                        start <= (*min).max(model.start),
                        "retention passed a cursor"
                    );
                }
                model.start = start;
            }
            Op::Create { cursor, at } => {
                let name = format!("c{cursor}");
                let at = pick(at, len);
                let result = log.cursors().create(&name, at);
                match model.cursors.entry(name) {
                    std::collections::btree_map::Entry::Occupied(_) => prop_assert!(
                        matches!(result, Err(Error::CursorExists { .. })),
                        "expected CursorExists"
                    ),
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        result.unwrap();
                        slot.insert(at);
                    }
                }
            }
            Op::Commit { cursor, at } => {
                let name = format!("c{cursor}");
                let at = pick(at, len);
                let result = log.cursors().commit(&name, at);
                match model.cursors.get(&name).copied() {
                    None => prop_assert!(
                        matches!(result, Err(Error::CursorNotFound { .. })),
                        "expected CursorNotFound"
                    ),
                    Some(current) if at < current => prop_assert!(
                        matches!(
                            result,
                            Err(Error::CursorRegression { current: c, requested: r, .. }) if c == current && r == at
                        ),
                        "expected CursorRegression"
                    ),
                    Some(_) => {
                        result.unwrap();
                        model.cursors.insert(name, at);
                    }
                }
            }
            Op::Delete { cursor } => {
                let name = format!("c{cursor}");
                let result = log.cursors().delete(&name);
                if model.cursors.remove(&name).is_some() {
                    result.unwrap();
                } else {
                    prop_assert!(
                        matches!(result, Err(Error::CursorNotFound { .. })),
                        "expected CursorNotFound"
                    );
                }
            }
            Op::Status { cursor } => {
                let name = format!("c{cursor}");
                match model.cursors.get(&name) {
                    None => prop_assert!(log.cursor_status(&name).is_err()),
                    Some(&offset) => {
                        let status = log.cursor_status(&name).unwrap();
                        prop_assert_eq!(status.offset, offset);
                        prop_assert_eq!(status.lag_events, len.saturating_sub(offset));
                        let expected = if offset < model.start {
                            CursorState::NeedsBackfill {
                                oldest_retained: model.start,
                            }
                        } else {
                            CursorState::Active
                        };
                        prop_assert_eq!(status.state, expected);
                    }
                }
            }
        }
        let offsets = log.offsets();
        prop_assert_eq!(offsets.durable, model.records.len() as u64);
        prop_assert_eq!(offsets.start, model.start);
        let listed: BTreeMap<String, u64> = log.cursors().list().unwrap().into_iter().collect();
        prop_assert_eq!(&listed, &model.cursors);
    }
    rt.block_on(log.close()).unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_and_cursors_behave_like_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
