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

mod keeps_all_agrees_with_filtering {
    use super::*;
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = Record> {
        let lsn = (0u64..6).prop_map(|l| l * 10);
        prop_oneof![
            4 => lsn.clone().prop_map(begin),
            6 => (lsn.clone(), 0i64..100).prop_map(|(l, n)| change(l, n)),
            4 => lsn.clone().prop_map(commit),
            1 => Just(schema()),
            1 => lsn.prop_map(heartbeat),
        ]
    }

    fn start() -> impl Strategy<Value = (Option<SourcePosition>, Option<OpenTail>)> {
        let last = proptest::option::of((0u64..6).prop_map(|l| pg(l * 10)));
        let tail = proptest::option::weighted(
            0.2,
            ((0u64..6), 0u64..3).prop_map(|(l, n)| OpenTail {
                txid: Some(format!("tx{}", l * 10).into()),
                position: pg(l * 10),
                logged_changes: n,
            }),
        );
        (last, tail)
    }

    /// Well-formed deliveries: transactions (of 0 to 2 changes), schemas and
    /// heartbeats at increasing positions, cut into batches anywhere.
    fn delivery() -> impl Strategy<Value = Vec<Vec<Record>>> {
        let units = proptest::collection::vec(0u8..5, 1..12);
        (units, proptest::collection::vec(any::<bool>(), 64)).prop_map(|(units, cuts)| {
            let mut records = Vec::new();
            for (i, unit) in units.into_iter().enumerate() {
                let lsn = i as u64 * 10;
                match unit {
                    0 => records.push(schema()),
                    1 => records.push(heartbeat(lsn)),
                    n => {
                        records.push(begin(lsn));
                        records.extend((2..n).map(|c| change(lsn, i64::from(c))));
                        records.push(commit(lsn));
                    }
                }
            }
            let mut batches = Vec::new();
            let mut batch = Vec::new();
            for (record, cut) in records.into_iter().zip(cuts.into_iter().cycle()) {
                batch.push(record);
                if cut {
                    batches.push(std::mem::take(&mut batch));
                }
            }
            batches.push(batch);
            batches
        })
    }

    fn agree(
        (last, tail): (Option<SourcePosition>, Option<OpenTail>),
        batches: Vec<Vec<Record>>,
    ) -> Result<(), TestCaseError> {
        let mut fast = Redelivery::new(last.clone(), tail.clone());
        let mut reference = Redelivery::new(last, tail);
        for (i, batch) in batches.into_iter().enumerate() {
            let position = pg(i as u64 * 10);
            let kept = fast.keep_new(batch.clone(), &position);
            let expected = reference.filter(batch, &position);
            match (&kept, &expected) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => {
                    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                    break;
                }
                _ => prop_assert!(false, "{kept:?} against {expected:?}"),
            }
            prop_assert_eq!(fast.in_transaction(), reference.in_transaction());
        }
        Ok(())
    }

    proptest! {
        /// The fast path is an optimisation only: batch by batch, `keep_new`
        /// keeps (or rejects) exactly what filtering record by record does.
        #[test]
        fn on_well_formed_deliveries(start in start(), batches in delivery()) {
            agree(start, batches)?;
        }

        #[test]
        fn on_any_delivery(
            start in start(),
            batches in proptest::collection::vec(proptest::collection::vec(record(), 0..8), 1..8),
        ) {
            agree(start, batches)?;
        }
    }
}
