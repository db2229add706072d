use super::*;
use crate::event::{
    Begin, Change, ChangeKind, Column, Commit, DataType, Heartbeat, SourcePosition, Value,
};
use crate::pipeline::TablePattern;

struct NoSchemas;

impl SchemaSource for NoSchemas {
    fn schema_at(&self, table: &TableName, _offset: u64) -> Option<Arc<TableSchema>> {
        (table.name != "unknown").then(|| Arc::new(schema(&table.name)))
    }
}

fn schema(name: &str) -> TableSchema {
    TableSchema {
        table: TableName::new("public", name),
        columns: vec![Column {
            name: "id".into(),
            data_type: DataType::Int {
                bits: 64,
                signed: true,
            },
            source_type: "int8".into(),
            nullable: false,
        }],
        primary_key: vec![0],
    }
}

fn pos(n: u64) -> SourcePosition {
    SourcePosition::Postgres { lsn: n }
}

fn begin(n: u64) -> Record {
    Record::Begin(Begin {
        txid: None,
        position: pos(n),
        commit_time_micros: n as i64,
    })
}

fn commit(n: u64) -> Record {
    Record::Commit(Commit {
        txid: None,
        position: pos(n),
        commit_time_micros: n as i64,
    })
}

fn insert(table: &str, id: i64) -> Record {
    Record::Change(Change {
        table: TableName::new("public", table),
        kind: ChangeKind::Insert,
        before: None,
        after: Some(vec![Value::Int(id)]),
        position: pos(0),
        txid: None,
        commit_time_micros: 0,
    })
}

fn push_all(asm: &mut BatchAssembler, start: u64, records: Vec<Record>) {
    for (i, r) in records.into_iter().enumerate() {
        asm.push(start + i as u64, r, &NoSchemas).unwrap();
    }
}

fn change_offsets(batch: &SinkBatch) -> Vec<u64> {
    batch
        .events
        .iter()
        .filter_map(|e| match e {
            SinkEvent::Change { offset, .. } => Some(*offset),
            SinkEvent::Schema { .. } => None,
        })
        .collect()
}

#[test]
fn an_open_transaction_is_never_part_of_a_batch() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    push_all(
        &mut asm,
        0,
        vec![
            begin(1),
            insert("a", 1),
            commit(1),
            begin(2),
            insert("a", 2),
        ],
    );
    assert!(asm.in_transaction());
    let ready = asm.take_ready().unwrap();
    assert_eq!(ready.batch.last_offset, 2);
    assert_eq!(change_offsets(&ready.batch), vec![1]);
    assert_eq!(ready.source_time_micros, Some(1));
    assert!(asm.take_ready().is_none());
    push_all(&mut asm, 5, vec![commit(2)]);
    let ready = asm.take_ready().unwrap();
    assert_eq!(
        (ready.batch.last_offset, change_offsets(&ready.batch)),
        (5, vec![4])
    );
}

#[test]
fn first_change_of_a_table_is_preceded_by_its_schema_once() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    push_all(
        &mut asm,
        0,
        vec![begin(1), insert("a", 1), insert("a", 2), commit(1)],
    );
    let events = asm.take_ready().unwrap().batch.events;
    assert_eq!(events.len(), 3);
    assert!(
        matches!(&events[0], SinkEvent::Schema { offset: 1, schema } if schema.table.name == "a")
    );
}

#[test]
fn schema_records_in_the_log_are_delivered_where_they_sit() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    let mut s2 = schema("a");
    s2.columns[0].name = "key".into();
    push_all(
        &mut asm,
        0,
        vec![
            Record::Schema(schema("a")),
            begin(1),
            insert("a", 1),
            commit(1),
            Record::Schema(s2.clone()),
        ],
    );
    let events = asm.take_ready().unwrap().batch.events;
    assert_eq!(events.len(), 3);
    assert!(matches!(&events[0], SinkEvent::Schema { offset: 0, .. }));
    assert!(matches!(&events[2], SinkEvent::Schema { offset: 4, schema } if **schema == s2));
}

#[test]
fn filtered_tables_produce_no_events_but_advance_the_offset() {
    let filter = TableFilter::all().include(TablePattern::table(&TableName::new("public", "a")));
    let mut asm = BatchAssembler::new(filter, 100, 1_000_000);
    push_all(
        &mut asm,
        0,
        vec![
            begin(1),
            insert("b", 1),
            commit(1),
            begin(2),
            insert("a", 1),
            insert("b", 2),
            commit(2),
        ],
    );
    let ready = asm.take_ready().unwrap();
    assert_eq!(ready.batch.last_offset, 6);
    assert_eq!(change_offsets(&ready.batch), vec![4]);
}

#[test]
fn a_missing_schema_is_an_error_not_a_guess() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    asm.push(0, begin(1), &NoSchemas).unwrap();
    let err = asm.push(1, insert("unknown", 1), &NoSchemas).unwrap_err();
    assert!(matches!(
        err,
        PipelineError::MissingSchema { offset: 1, .. }
    ));
}

#[test]
fn nested_begin_and_stray_commit_are_malformed() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    push_all(&mut asm, 0, vec![begin(1), commit(1)]);
    assert!(matches!(
        asm.push(2, commit(2), &NoSchemas),
        Err(PipelineError::MalformedLog { offset: 2, .. })
    ));
    asm.push(3, begin(3), &NoSchemas).unwrap();
    assert!(matches!(
        asm.push(4, begin(4), &NoSchemas),
        Err(PipelineError::MalformedLog { offset: 4, .. })
    ));
}

#[test]
fn a_transaction_over_the_limit_goes_to_the_sink_in_parts() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 3);
    // Schema event + 2 changes reach the limit of 3 pending events.
    push_all(&mut asm, 0, vec![begin(1), insert("a", 1), insert("a", 2)]);
    let first = asm.take_ready().expect("a first part");
    assert_eq!(first.batch.last_offset, 2);
    assert_eq!(change_offsets(&first.batch), vec![1, 2]);
    assert!(asm.in_transaction());
    push_all(&mut asm, 3, vec![insert("a", 3), insert("a", 4)]);
    assert!(!asm.has_ready(), "two pending events are under the limit");
    push_all(&mut asm, 5, vec![insert("a", 5), commit(1)]);
    let rest = asm.take_ready().expect("the rest");
    assert_eq!(rest.batch.last_offset, 6);
    assert_eq!(change_offsets(&rest.batch), vec![3, 4, 5]);
    assert!(!asm.in_transaction());
}

#[test]
fn a_run_resumed_inside_a_transaction_accepts_its_commit() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    push_all(&mut asm, 10, vec![insert("a", 3), commit(1), begin(2)]);
    assert!(matches!(asm.push(13, commit(2), &NoSchemas), Ok(())));
    assert!(matches!(
        asm.push(14, commit(3), &NoSchemas),
        Err(PipelineError::MalformedLog { offset: 14, .. })
    ));
    let batch = asm.take_ready().unwrap().batch;
    assert_eq!(batch.last_offset, 13);
    assert_eq!(change_offsets(&batch), vec![10]);
}

#[test]
fn fullness_counts_the_open_transaction_but_never_splits_it() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 3, 1_000_000);
    push_all(&mut asm, 0, vec![begin(1), insert("a", 1), commit(1)]);
    assert!(!asm.is_full());
    push_all(&mut asm, 3, vec![begin(2), insert("a", 2)]);
    assert!(
        asm.is_full(),
        "ready (schema + change) plus the open change reach the limit"
    );
    let ready = asm.take_ready().unwrap();
    assert_eq!(ready.batch.last_offset, 2);
    push_all(
        &mut asm,
        5,
        vec![
            insert("a", 3),
            insert("a", 4),
            insert("a", 5),
            insert("a", 6),
        ],
    );
    assert!(!asm.is_full(), "an open transaction alone is never cut");
    push_all(&mut asm, 9, vec![commit(2)]);
    assert!(asm.is_full());
    assert_eq!(
        change_offsets(&asm.take_ready().unwrap().batch),
        vec![4, 5, 6, 7, 8]
    );
}

#[test]
fn heartbeats_advance_the_offset_and_the_source_time() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    push_all(&mut asm, 0, vec![begin(1), insert("a", 1), commit(1)]);
    asm.push(
        3,
        Record::Heartbeat(Heartbeat {
            position: pos(9),
            time_micros: 99,
        }),
        &NoSchemas,
    )
    .unwrap();
    let ready = asm.take_ready().unwrap();
    assert_eq!(
        (ready.batch.last_offset, ready.source_time_micros),
        (3, Some(99))
    );
}

#[test]
fn the_delay_runs_only_while_completed_units_wait() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    let delay = Duration::from_secs(1);
    push_all(&mut asm, 0, vec![begin(1), insert("a", 1)]);
    assert!(asm.deadline(delay).is_none());
    push_all(&mut asm, 2, vec![commit(1)]);
    assert!(asm.deadline(delay).is_some());
    asm.take_ready().unwrap();
    assert!(asm.deadline(delay).is_none());
}

#[test]
fn a_skipped_change_counts_as_read_without_ending_its_transaction() {
    let mut asm = BatchAssembler::new(TableFilter::all(), 100, 1_000_000);
    push_all(&mut asm, 0, vec![begin(1)]);
    asm.skip(1);
    assert!(asm.in_transaction() && !asm.has_ready());
    push_all(&mut asm, 2, vec![commit(1)]);
    asm.skip(3);
    let ready = asm.take_ready().unwrap();
    assert_eq!((ready.batch.last_offset, ready.batch.events.len()), (3, 0));
}
