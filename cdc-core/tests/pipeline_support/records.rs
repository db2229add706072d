//! Builders for log records and checks of what a sink received.

use std::cmp::Ordering;

use cdc_core::ChangeLog;
use cdc_core::event::{
    Begin, Change, ChangeKind, Column, Commit, DataType, Record, SourcePosition, TableName,
    TableSchema, Value,
};

use super::Line;

/// Commit times are fixed far in the past so time lag is large and deterministic.
pub const COMMIT_TIME_MICROS: i64 = 1_000_000;

pub fn table(name: &str) -> TableName {
    TableName::new("shop", name)
}

pub fn schema(name: &str) -> TableSchema {
    TableSchema {
        table: table(name),
        columns: vec![
            Column {
                name: "id".into(),
                data_type: DataType::Int {
                    bits: 64,
                    signed: true,
                },
                source_type: "bigint".into(),
                nullable: false,
            },
            Column {
                name: "note".into(),
                data_type: DataType::Text {
                    max_chars: None,
                    fixed: false,
                },
                source_type: "text".into(),
                nullable: true,
            },
        ],
        primary_key: vec![0],
    }
}

pub fn pg(lsn: u64) -> SourcePosition {
    SourcePosition::Postgres { lsn }
}

/// A transaction at `lsn` inserting `(table, id)` rows.
pub fn txn(lsn: u64, rows: &[(&str, i64)]) -> Vec<Record> {
    let mut records = vec![Record::Begin(Begin {
        txid: Some(lsn.to_string().into()),
        position: pg(lsn),
        commit_time_micros: COMMIT_TIME_MICROS,
    })];
    records.extend(rows.iter().map(|(t, id)| {
        Record::Change(Change {
            table: table(t),
            kind: ChangeKind::Insert,
            before: None,
            after: Some(vec![
                Value::Int(*id),
                Value::Text(format!("row {id}").into()),
            ]),
            position: pg(lsn),
            txid: Some(lsn.to_string().into()),
            commit_time_micros: COMMIT_TIME_MICROS,
        })
    }));
    records.push(Record::Commit(Commit {
        txid: Some(lsn.to_string().into()),
        position: pg(lsn),
        commit_time_micros: COMMIT_TIME_MICROS,
    }));
    records
}

/// Everything appended in a test, with offsets, to compute what a sink must hold.
#[derive(Default)]
pub struct Appended {
    pub records: Vec<(u64, Record)>,
}

impl Appended {
    pub async fn append(&mut self, log: &ChangeLog, records: Vec<Record>) -> u64 {
        let range = log.append(records.clone()).await.unwrap();
        assert_eq!(range.end - range.start, records.len() as u64);
        self.records.extend(range.clone().zip(records));
        range.end
    }

    /// The changes of tables passing `allow` with offsets in `range`, in order.
    pub fn changes(
        &self,
        range: std::ops::Range<u64>,
        allow: impl Fn(&TableName) -> bool,
    ) -> Vec<(u64, Change)> {
        self.records
            .iter()
            .filter(|(o, _)| range.contains(o))
            .filter_map(|(o, r)| match r {
                Record::Change(c) if allow(&c.table) => Some((*o, c.clone())),
                _ => None,
            })
            .collect()
    }

    fn record_at(&self, offset: u64) -> Option<&Record> {
        self.records
            .iter()
            .find(|(o, _)| *o == offset)
            .map(|(_, r)| r)
    }

    /// Asserts every batch in `lines` ends at a transaction boundary and holds only
    /// changes after the previous batch: whole transactions, in log order.
    pub fn assert_whole_transactions(&self, lines: &[Line]) {
        let mut previous_end: Option<u64> = None;
        let mut last_change: Option<u64> = None;
        for line in lines {
            match line {
                Line::Change { offset, .. } => {
                    assert!(
                        previous_end.is_none_or(|e| *offset > e),
                        "change {offset} repeats an earlier batch"
                    );
                    assert!(
                        last_change.is_none_or(|l| *offset > l),
                        "change {offset} out of order"
                    );
                    last_change = Some(*offset);
                }
                Line::BatchEnd { last_offset } => {
                    assert!(
                        matches!(
                            self.record_at(*last_offset),
                            Some(Record::Commit(_) | Record::Heartbeat(_) | Record::Schema(_))
                        ),
                        "batch ends at {last_offset}, inside a transaction"
                    );
                    assert!(last_change.is_none_or(|l| l < *last_offset));
                    previous_end = Some(*last_offset);
                }
                Line::Schema { .. } => {}
            }
        }
    }
}

/// The changes in a sink file, in file order.
pub fn file_changes(lines: &[Line]) -> Vec<(u64, Change)> {
    lines
        .iter()
        .filter_map(|l| match l {
            Line::Change { offset, change } => Some((*offset, change.clone())),
            _ => None,
        })
        .collect()
}

/// Tables whose schema line precedes their first change in the file.
pub fn assert_schema_before_first_change(lines: &[Line]) {
    let mut seen = std::collections::HashSet::new();
    for line in lines {
        match line {
            Line::Schema { table, .. } => {
                seen.insert(table.clone());
            }
            Line::Change { change, .. } => {
                assert!(
                    seen.contains(&change.table.to_string()),
                    "change of {} before its schema",
                    change.table
                );
            }
            Line::BatchEnd { .. } => {}
        }
    }
}

/// Whether `a` is at or after `b`.
pub fn at_or_after(a: &SourcePosition, b: &SourcePosition) -> bool {
    matches!(a.compare(b), Some(Ordering::Greater | Ordering::Equal))
}
