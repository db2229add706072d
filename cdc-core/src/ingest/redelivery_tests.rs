use super::*;
use crate::event::{Change, ChangeKind, Commit, Heartbeat, TableName, TableSchema};

fn pg(lsn: u64) -> SourcePosition {
    SourcePosition::Postgres { lsn }
}

fn begin(lsn: u64) -> Record {
    Record::Begin(Begin {
        txid: Some(format!("tx{lsn}").into()),
        position: pg(lsn),
        commit_time_micros: 0,
    })
}

fn commit(lsn: u64) -> Record {
    Record::Commit(Commit {
        txid: Some(format!("tx{lsn}").into()),
        position: pg(lsn),
        commit_time_micros: 0,
    })
}

fn change(lsn: u64, n: i64) -> Record {
    Record::Change(Change {
        table: TableName::new("s", "t"),
        kind: ChangeKind::Insert,
        before: None,
        after: Some(vec![crate::event::Value::Int(n)]),
        position: pg(lsn),
        txid: Some(format!("tx{lsn}").into()),
        commit_time_micros: 0,
    })
}

fn txn(lsn: u64) -> Vec<Record> {
    vec![begin(lsn), change(lsn, 0), commit(lsn)]
}

fn schema() -> Record {
    Record::Schema(TableSchema {
        table: TableName::new("s", "t"),
        columns: vec![],
        primary_key: vec![],
    })
}

fn heartbeat(lsn: u64) -> Record {
    Record::Heartbeat(Heartbeat {
        position: pg(lsn),
        time_micros: 0,
    })
}

fn values(records: &[Record]) -> Vec<i64> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Change(c) => match c.after.as_deref() {
                Some([crate::event::Value::Int(n)]) => Some(*n),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn transactions_at_or_before_the_last_durable_position_are_dropped() {
    let mut records = txn(10);
    records.extend(txn(20));
    records.push(schema());
    records.extend(txn(30));
    let kept = Redelivery::new(Some(pg(20)), None)
        .keep_new(records, &pg(30))
        .unwrap();
    assert_eq!(kept.len(), 4);
    assert!(matches!(kept[0], Record::Schema(_)));
    assert_eq!(kept[3].position(), Some(&pg(30)));
}

#[test]
fn everything_is_kept_for_an_empty_log() {
    let kept = Redelivery::new(None, None)
        .keep_new(txn(1), &pg(1))
        .unwrap();
    assert_eq!(kept.len(), 3);
}

#[test]
fn heartbeats_and_trailing_schemas_are_judged_by_position() {
    let records = vec![heartbeat(5), heartbeat(6), schema()];
    let kept = Redelivery::new(Some(pg(5)), None)
        .keep_new(records.clone(), &pg(6))
        .unwrap();
    assert_eq!(kept.len(), 2);
    let kept = Redelivery::new(Some(pg(6)), None)
        .keep_new(records, &pg(6))
        .unwrap();
    assert!(kept.is_empty());
}

#[test]
fn a_position_of_another_source_is_an_error() {
    let other = SourcePosition::MySql {
        file: "bin.000001".into(),
        pos: 4,
        gtid: None,
    };
    let err = Redelivery::new(Some(other), None)
        .keep_new(txn(1), &pg(1))
        .unwrap_err();
    assert!(matches!(err, PipelineError::PositionMismatch { .. }));
}

#[test]
fn a_transaction_split_over_batches_is_kept_part_by_part() {
    let mut filter = Redelivery::new(Some(pg(10)), None);
    let first = filter
        .keep_new(vec![schema(), begin(20), change(20, 1)], &pg(10))
        .unwrap();
    assert_eq!(first.len(), 3);
    assert!(filter.in_transaction());
    let second = filter.keep_new(vec![change(20, 2)], &pg(10)).unwrap();
    assert_eq!(values(&second), [2]);
    let last = filter
        .keep_new(vec![change(20, 3), commit(20)], &pg(20))
        .unwrap();
    assert_eq!(last.len(), 2);
    assert!(!filter.in_transaction());
}

#[test]
fn a_redelivered_split_transaction_already_logged_is_dropped_across_batches() {
    let mut filter = Redelivery::new(Some(pg(20)), None);
    assert!(
        filter
            .keep_new(vec![begin(20), change(20, 1)], &pg(10))
            .unwrap()
            .is_empty()
    );
    assert!(
        filter
            .keep_new(vec![change(20, 2), commit(20)], &pg(20))
            .unwrap()
            .is_empty()
    );
    let kept = filter.keep_new(txn(30), &pg(30)).unwrap();
    assert_eq!(kept.len(), 3);
}

#[test]
fn the_logged_part_of_an_open_tail_is_skipped_and_the_rest_appended_once() {
    let tail = OpenTail {
        txid: Some("tx20".into()),
        position: pg(20),
        logged_changes: 3,
    };
    let mut filter = Redelivery::new(Some(pg(10)), Some(tail));
    // Already logged, acknowledged late: dropped. A heartbeat before the tail: dropped.
    assert!(
        filter
            .keep_new(
                [txn(10), vec![heartbeat(15)]].concat(),
                &SourcePosition::None
            )
            .unwrap()
            .is_empty()
    );
    // The re-sent schema and the first three changes are in the log already.
    let kept = filter
        .keep_new(
            vec![schema(), begin(20), change(20, 1), schema(), change(20, 2)],
            &pg(10),
        )
        .unwrap();
    assert!(kept.is_empty());
    let kept = filter
        .keep_new(vec![change(20, 3), change(20, 4), commit(20)], &pg(20))
        .unwrap();
    assert_eq!(values(&kept), [4]);
    assert!(matches!(kept.last(), Some(Record::Commit(_))));
    assert!(!filter.in_transaction());
}

#[test]
fn another_transaction_instead_of_the_open_tail_is_an_error() {
    let tail = OpenTail {
        txid: Some("tx20".into()),
        position: pg(20),
        logged_changes: 1,
    };
    let err = Redelivery::new(Some(pg(10)), Some(tail.clone()))
        .keep_new(txn(30), &pg(30))
        .unwrap_err();
    assert!(matches!(err, PipelineError::UnfinishedTransaction { .. }));
    let err = Redelivery::new(Some(pg(10)), Some(tail))
        .keep_new(vec![begin(20), commit(20)], &pg(20))
        .unwrap_err();
    assert!(matches!(err, PipelineError::MalformedSource { .. }));
}

#[test]
fn a_commit_without_a_begin_is_an_error() {
    let err = Redelivery::new(None, None)
        .keep_new(vec![commit(5)], &pg(5))
        .unwrap_err();
    assert!(matches!(err, PipelineError::MalformedSource { .. }));
}
