//! Dropping transactions a source re-delivers after a crash.

use std::cmp::Ordering;

use crate::event::{Record, SourcePosition};
use crate::pipeline::PipelineError;

/// Keeps only the units of `records` whose position is after `last` (the log's last
/// durable source position). A unit is a transaction (`Begin`..`Commit`), a
/// heartbeat or a change outside a transaction, with the schema records before it;
/// schema records at the end of the batch count as a unit at `batch_position`.
///
/// Positions of kind [`SourcePosition::None`] carry no order, so such units are
/// always kept. Positions of different sources fail with
/// [`PipelineError::PositionMismatch`].
pub(crate) fn drop_redelivered(
    records: Vec<Record>,
    batch_position: &SourcePosition,
    last: Option<&SourcePosition>,
) -> Result<Vec<Record>, PipelineError> {
    let Some(last) = last else {
        return Ok(records);
    };
    let mut kept = Vec::with_capacity(records.len());
    let mut unit = Vec::new();
    let mut in_txn = false;
    for record in records {
        let ends_unit = match &record {
            Record::Begin(_) => {
                in_txn = true;
                false
            }
            Record::Commit(_) => {
                in_txn = false;
                true
            }
            Record::Change(_) | Record::Heartbeat(_) => !in_txn,
            Record::Schema(_) => false,
        };
        let position = ends_unit.then(|| record.position().cloned()).flatten();
        unit.push(record);
        if let Some(position) = position {
            if is_after(&position, last)? {
                kept.append(&mut unit);
            } else {
                unit.clear();
            }
        }
    }
    if !unit.is_empty() && is_after(batch_position, last)? {
        kept.append(&mut unit);
    }
    Ok(kept)
}

fn is_after(position: &SourcePosition, last: &SourcePosition) -> Result<bool, PipelineError> {
    if position.is_none() || last.is_none() {
        return Ok(true);
    }
    match position.compare(last) {
        Some(order) => Ok(order == Ordering::Greater),
        None => Err(PipelineError::PositionMismatch {
            logged: last.clone(),
            delivered: position.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Begin, Commit, Heartbeat, TableName, TableSchema};

    fn pg(lsn: u64) -> SourcePosition {
        SourcePosition::Postgres { lsn }
    }

    fn txn(lsn: u64) -> Vec<Record> {
        vec![
            Record::Begin(Begin {
                txid: None,
                position: pg(lsn),
                commit_time_micros: 0,
            }),
            Record::Commit(Commit {
                txid: None,
                position: pg(lsn),
                commit_time_micros: 0,
            }),
        ]
    }

    fn schema() -> Record {
        Record::Schema(TableSchema {
            table: TableName::new("s", "t"),
            columns: vec![],
            primary_key: vec![],
        })
    }

    #[test]
    fn transactions_at_or_before_the_last_durable_position_are_dropped() {
        let mut records = txn(10);
        records.extend(txn(20));
        records.push(schema());
        records.extend(txn(30));
        let kept = drop_redelivered(records, &pg(30), Some(&pg(20))).unwrap();
        assert_eq!(kept.len(), 3);
        assert!(matches!(kept[0], Record::Schema(_)));
        assert_eq!(kept[2].position(), Some(&pg(30)));
    }

    #[test]
    fn everything_is_kept_for_an_empty_log() {
        let kept = drop_redelivered(txn(1), &pg(1), None).unwrap();
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn heartbeats_and_trailing_schemas_are_judged_by_position() {
        let records = vec![
            Record::Heartbeat(Heartbeat {
                position: pg(5),
                time_micros: 0,
            }),
            Record::Heartbeat(Heartbeat {
                position: pg(6),
                time_micros: 0,
            }),
            schema(),
        ];
        assert_eq!(
            drop_redelivered(records.clone(), &pg(6), Some(&pg(5)))
                .unwrap()
                .len(),
            2
        );
        assert!(
            drop_redelivered(records, &pg(6), Some(&pg(6)))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_position_of_another_source_is_an_error() {
        let other = SourcePosition::MySql {
            file: "bin.000001".into(),
            pos: 4,
            gtid: None,
        };
        let err = drop_redelivered(txn(1), &pg(1), Some(&other)).unwrap_err();
        assert!(matches!(err, PipelineError::PositionMismatch { .. }));
    }
}
