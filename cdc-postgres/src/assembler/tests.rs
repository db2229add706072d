use super::*;

fn relation(columns: &[&str]) -> Vec<u8> {
    let mut b = vec![b'R'];
    b.extend(7u32.to_be_bytes());
    b.extend(b"public\0t\0d");
    b.extend((columns.len() as i16).to_be_bytes());
    for (i, name) in columns.iter().enumerate() {
        b.push(u8::from(i == 0));
        b.extend(name.as_bytes());
        b.push(0);
        b.extend(23u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
    }
    b
}

fn begin(final_lsn: u64) -> Vec<u8> {
    let mut begin = vec![b'B'];
    begin.extend(final_lsn.to_be_bytes());
    begin.extend(0i64.to_be_bytes());
    begin.extend(9u32.to_be_bytes());
    begin
}

fn insert(values: &[&str]) -> Vec<u8> {
    let mut insert = vec![b'I'];
    insert.extend(7u32.to_be_bytes());
    insert.push(b'N');
    insert.extend((values.len() as i16).to_be_bytes());
    for value in values {
        insert.push(b't');
        insert.extend((value.len() as i32).to_be_bytes());
        insert.extend(value.as_bytes());
    }
    insert
}

fn commit(final_lsn: u64) -> Vec<u8> {
    let mut commit = vec![b'C', 0];
    commit.extend(final_lsn.to_be_bytes());
    commit.extend((final_lsn + 56).to_be_bytes());
    commit.extend(0i64.to_be_bytes());
    commit
}

fn heartbeat(lsn: u64) -> Vec<u8> {
    let mut m = vec![b'M', 0];
    m.extend(lsn.to_be_bytes());
    m.extend(HEARTBEAT_PREFIX.as_bytes());
    m.push(0);
    m.extend(0i32.to_be_bytes());
    m
}

/// A transaction committing at `final_lsn` that inserts `ids`.
fn transaction(final_lsn: u64, ids: impl IntoIterator<Item = u32>) -> Vec<Vec<u8>> {
    let mut out = vec![begin(final_lsn)];
    out.extend(ids.into_iter().map(|id| insert(&[&id.to_string()])));
    out.push(commit(final_lsn));
    out
}

fn run(assembler: &mut Assembler, messages: &[Vec<u8>]) -> Result<Vec<SourceBatch>> {
    let mut out = Vec::new();
    for bytes in messages {
        let message = crate::pgoutput::decode(bytes).unwrap();
        if let PgOutputMessage::Relation(r) = &message {
            assembler.add_relation(r.id, describe_offline(r))?;
        } else if let Some(batch) = assembler.handle(message, bytes.len())? {
            out.push(batch);
        }
    }
    Ok(out)
}

fn kinds(records: &[Record]) -> Vec<&'static str> {
    records
        .iter()
        .map(|r| match r {
            Record::Schema(_) => "schema",
            Record::Begin(_) => "begin",
            Record::Change(_) => "change",
            Record::Commit(_) => "commit",
            Record::Heartbeat(_) => "heartbeat",
        })
        .collect()
}

fn pg(lsn: u64) -> SourcePosition {
    SourcePosition::Postgres { lsn }
}

fn tables() -> [TableName; 1] {
    [TableName::new("public", "t")]
}

#[test]
fn transactions_at_or_before_the_resume_position_are_dropped() {
    // Resuming after the second transaction's position (its final lsn + 1).
    let mut assembler = Assembler::new(&tables(), 201, u64::MAX);
    let mut messages = vec![relation(&["id"])];
    messages.extend(transaction(100, [1]));
    messages.extend(transaction(200, [2]));
    messages.push(heartbeat(201));
    messages.extend(transaction(300, [3]));
    let batches = run(&mut assembler, &messages).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].position, pg(301));
    // The schema is carried to the first transaction actually delivered.
    assert_eq!(
        kinds(&batches[0].records),
        ["schema", "begin", "change", "commit"]
    );
}

#[test]
fn a_resume_position_at_an_older_end_lsn_drops_exactly_the_transactions_before_it() {
    // A log written with end-of-commit positions: the second transaction's
    // commit record starts where the first one's ends.
    let mut assembler = Assembler::new(&tables(), 156, u64::MAX);
    let mut messages = vec![relation(&["id"])];
    messages.extend(transaction(100, [1]));
    messages.extend(transaction(156, [2]));
    let batches = run(&mut assembler, &messages).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].position, pg(157));
}

#[test]
fn begin_changes_and_commit_carry_the_same_position_and_txid() {
    let mut assembler = Assembler::new(&tables(), 0, u64::MAX);
    let mut messages = vec![relation(&["id"])];
    messages.extend(transaction(100, [1, 2]));
    let batch = run(&mut assembler, &messages).unwrap().remove(0);
    for record in &batch.records[1..] {
        assert_eq!(record.position(), Some(&pg(101)));
    }
    let Record::Begin(begin) = &batch.records[1] else {
        panic!("begin second: {:?}", batch.records)
    };
    assert_eq!(begin.txid.as_deref(), Some("9"));
}

#[test]
fn a_transaction_over_the_chunk_size_is_handed_out_in_parts() {
    // A little over two changes per part.
    let chunk = 2 * (CHANGE_OVERHEAD + VALUE_OVERHEAD + 16) + 1;
    let mut assembler = Assembler::new(&tables(), 0, chunk);
    let mut messages = vec![relation(&["id"])];
    messages.extend(transaction(100, [1]));
    messages.extend(transaction(200, 1..=7));
    messages.push(heartbeat(300));
    let batches = run(&mut assembler, &messages).unwrap();
    let shapes: Vec<_> = batches.iter().map(|b| kinds(&b.records)).collect();
    assert_eq!(
        shapes,
        vec![
            vec!["schema", "begin", "change", "commit"],
            vec!["begin", "change", "change", "change"],
            vec!["change", "change", "change"],
            vec!["change", "commit"],
            vec!["heartbeat"],
        ]
    );
    // Parts are positioned at the last completed transaction; only the part
    // with the commit moves the position on.
    let positions: Vec<_> = batches.iter().map(|b| b.position.clone()).collect();
    assert_eq!(positions, [pg(101), pg(101), pg(101), pg(201), pg(300)]);
    assert!(
        batches[1..4]
            .iter()
            .flat_map(|b| &b.records)
            .all(|r| r.position() == Some(&pg(201)))
    );
}

#[test]
fn a_split_transaction_keeps_the_position_it_has_when_whole() {
    let mut messages = vec![relation(&["id"])];
    messages.extend(transaction(200, 1..=50));
    let whole = run(&mut Assembler::new(&tables(), 0, u64::MAX), &messages).unwrap();
    let parts = run(&mut Assembler::new(&tables(), 0, 1), &messages).unwrap();
    assert_eq!(whole.len(), 1);
    assert_eq!(parts.len(), 51, "one part per change, the commit alone");
    let joined: Vec<Record> = parts.into_iter().flat_map(|b| b.records).collect();
    assert_eq!(joined, whole[0].records);
}

#[test]
fn parts_before_anything_completed_carry_the_start_position() {
    let mut assembler = Assembler::new(&tables(), 42, 1);
    let mut messages = vec![relation(&["id"])];
    messages.extend(transaction(200, [1, 2]));
    let batches = run(&mut assembler, &messages).unwrap();
    assert_eq!(batches[0].position, pg(42));
    assert_eq!(batches.last().unwrap().position, pg(201));
}

#[test]
fn a_schema_change_after_a_change_stays_in_place_and_one_before_goes_ahead() {
    let mut assembler = Assembler::new(&tables(), 0, u64::MAX);
    let mut messages = vec![begin(100), relation(&["id"]), insert(&["1"])];
    messages.push(relation(&["id", "n"]));
    messages.push(insert(&["2", "3"]));
    messages.push(commit(100));
    let batch = run(&mut assembler, &messages).unwrap().remove(0);
    assert_eq!(
        kinds(&batch.records),
        ["schema", "begin", "change", "schema", "change", "commit"]
    );
}

#[test]
fn schemas_seen_in_a_skipped_transaction_go_to_the_next_delivered_one() {
    let mut assembler = Assembler::new(&tables(), 150, 1);
    let mut messages = vec![begin(100), relation(&["id"]), insert(&["1"]), commit(100)];
    messages.extend(transaction(200, [2]));
    let batches = run(&mut assembler, &messages).unwrap();
    let first = kinds(&batches[0].records);
    assert_eq!(first, ["schema", "begin", "change"]);
}

#[test]
fn unknown_relations_and_mismatched_commits_fail() {
    let mut assembler = Assembler::new(&tables(), 0, u64::MAX);
    assert!(matches!(
        run(&mut assembler, &transaction(100, [1])),
        Err(Error::UnknownRelation { relation_id: 7 })
    ));
    let mut assembler = Assembler::new(&tables(), 0, u64::MAX);
    let messages = vec![relation(&["id"]), begin(100), insert(&["1"]), commit(99)];
    assert!(matches!(
        run(&mut assembler, &messages),
        Err(Error::Protocol { .. })
    ));
}

#[test]
fn a_keepalive_past_what_completed_is_a_heartbeat_and_inside_a_transaction_none() {
    let mut assembler = Assembler::new(&tables(), 50, u64::MAX);
    let mut messages = vec![relation(&["id"])];
    messages.extend(transaction(100, [1]));
    let batches = run(&mut assembler, &messages).unwrap();
    assert_eq!(batches[0].position, pg(101));
    // The server's sent position lies past the commit record.
    let heartbeat = assembler.keepalive(180).unwrap();
    assert_eq!(heartbeat.position, pg(180));
    assert_eq!(kinds(&heartbeat.records), ["heartbeat"]);
    // Not again at the same position, nor behind it.
    assert!(assembler.keepalive(180).is_none());
    assert!(assembler.keepalive(150).is_none());
    // Repeated, the heartbeat holds the last completed position.
    let again = assembler.repeat_heartbeat().unwrap();
    assert_eq!(again.position, pg(180));
    // Inside a transaction, neither: its commit is still to come.
    run(&mut assembler, &[begin(300), insert(&["2"])]).unwrap();
    assert!(assembler.keepalive(400).is_none());
    assert!(assembler.repeat_heartbeat().is_none());
}
