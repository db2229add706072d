//! Turns decoded pgoutput messages into whole-transaction batches of records.
//!
//! Network-free, so the decode bench and the fuzz target drive exactly the code
//! the live source runs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cdc_core::SourceBatch;
use cdc_core::event::{
    Begin, Change, ChangeKind, Commit, Heartbeat, Record, Row, SourcePosition, TableName,
    TableSchema, Value,
};

use crate::error::{Error, Result};
use crate::pgoutput::{ColumnData, PgOutputMessage, RelationMessage, TupleData};
use crate::replication::PG_EPOCH_OFFSET_MICROS;
use crate::schema::RelationInfo;
use crate::value::ColumnType;

/// Prefix of the logical messages this source emits as heartbeats.
pub const HEARTBEAT_PREFIX: &str = "cdc_heartbeat";

struct OpenTransaction {
    xid: u32,
    commit_time_micros: i64,
    schemas: Vec<Record>,
    changes: Vec<Change>,
    bytes: u64,
}

/// Assembles transactions from pgoutput messages in stream order.
pub struct Assembler {
    tables: HashSet<TableName>,
    relations: HashMap<u32, RelationInfo>,
    /// Schema last emitted per table, to emit again only on change.
    emitted: HashMap<TableName, Arc<TableSchema>>,
    pending_schemas: Vec<Record>,
    open: Option<OpenTransaction>,
    resume_after: u64,
    max_transaction_bytes: u64,
}

impl Assembler {
    /// An assembler for `tables` that drops every transaction committed at or before `resume_after`.
    pub fn new(tables: &[TableName], resume_after: u64, max_transaction_bytes: u64) -> Self {
        Self {
            tables: tables.iter().cloned().collect(),
            relations: HashMap::new(),
            emitted: HashMap::new(),
            pending_schemas: Vec::new(),
            open: None,
            resume_after,
            max_transaction_bytes,
        }
    }

    /// Whether a transaction is open (between Begin and Commit).
    pub fn in_transaction(&self) -> bool {
        self.open.is_some()
    }

    /// Registers a relation description; queues a schema record when it is a
    /// declared table whose schema is new or changed.
    pub fn add_relation(&mut self, id: u32, info: RelationInfo) {
        let table = &info.schema.table;
        if self.tables.contains(table) && self.emitted.get(table) != Some(&info.schema) {
            self.emitted.insert(table.clone(), info.schema.clone());
            let record = Record::Schema((*info.schema).clone());
            match &mut self.open {
                Some(tx) => tx.schemas.push(record),
                None => self.pending_schemas.push(record),
            }
        }
        self.relations.insert(id, info);
    }

    /// Handles one decoded message (not `Relation`, which goes through
    /// [`add_relation`](Self::add_relation)); returns a batch at each commit
    /// and heartbeat. `size` is the message's encoded length, for the memory limit.
    pub fn handle(
        &mut self,
        message: PgOutputMessage<'_>,
        size: usize,
    ) -> Result<Option<SourceBatch>> {
        if let Some(tx) = &mut self.open {
            tx.bytes += size as u64;
            if tx.bytes > self.max_transaction_bytes {
                return Err(Error::TransactionTooLarge {
                    xid: tx.xid,
                    limit: self.max_transaction_bytes,
                });
            }
        }
        match message {
            PgOutputMessage::Begin(begin) => {
                self.open = Some(OpenTransaction {
                    xid: begin.xid,
                    commit_time_micros: begin.commit_time.saturating_add(PG_EPOCH_OFFSET_MICROS),
                    schemas: std::mem::take(&mut self.pending_schemas),
                    changes: Vec::new(),
                    bytes: 0,
                });
            }
            PgOutputMessage::Commit(commit) => {
                let tx = self
                    .open
                    .take()
                    .ok_or_else(|| Error::protocol("commit without begin"))?;
                if commit.end_lsn <= self.resume_after {
                    // Already durable in the change log: a re-delivery after
                    // restart. Its schema records still precede the next one.
                    let mut schemas = tx.schemas;
                    schemas.append(&mut self.pending_schemas);
                    self.pending_schemas = schemas;
                    return Ok(None);
                }
                return Ok(Some(finish(tx, commit.end_lsn)));
            }
            PgOutputMessage::Insert { relation_id, new } => {
                self.change(relation_id, ChangeKind::Insert, None, Some(&new))?;
            }
            PgOutputMessage::Update {
                relation_id,
                key,
                old,
                new,
            } => {
                let before = old.or(key);
                self.change(relation_id, ChangeKind::Update, before.as_ref(), Some(&new))?;
            }
            PgOutputMessage::Delete {
                relation_id,
                key,
                old,
            } => {
                let before = old.or(key);
                if before.is_none() {
                    let table = self.relation(relation_id)?.schema.table.clone();
                    return Err(Error::MissingKey {
                        table,
                        identity: "NOTHING".into(),
                    });
                }
                self.change(relation_id, ChangeKind::Delete, before.as_ref(), None)?;
            }
            PgOutputMessage::Truncate(truncate) => {
                for id in truncate.relation_ids {
                    self.change(id, ChangeKind::Truncate, None, None)?;
                }
            }
            PgOutputMessage::Message(m) if !m.transactional && m.prefix == HEARTBEAT_PREFIX => {
                if m.lsn <= self.resume_after || self.open.is_some() {
                    return Ok(None);
                }
                let position = SourcePosition::Postgres { lsn: m.lsn };
                let mut records = std::mem::take(&mut self.pending_schemas);
                records.push(Record::Heartbeat(Heartbeat {
                    position: position.clone(),
                    time_micros: now_micros(),
                }));
                return Ok(Some(SourceBatch { records, position }));
            }
            PgOutputMessage::Relation(_)
            | PgOutputMessage::Type(_)
            | PgOutputMessage::Origin { .. }
            | PgOutputMessage::Message(_) => {}
        }
        Ok(None)
    }

    fn relation(&self, id: u32) -> Result<&RelationInfo> {
        self.relations
            .get(&id)
            .ok_or(Error::UnknownRelation { relation_id: id })
    }

    fn change(
        &mut self,
        relation_id: u32,
        kind: ChangeKind,
        before: Option<&TupleData<'_>>,
        after: Option<&TupleData<'_>>,
    ) -> Result<()> {
        let info = self.relation(relation_id)?;
        if !self.tables.contains(&info.schema.table) {
            return Ok(());
        }
        let before = before.map(|t| row(info, t)).transpose()?;
        let after = after.map(|t| row(info, t)).transpose()?;
        let table = info.schema.table.clone();
        let tx = self
            .open
            .as_mut()
            .ok_or_else(|| Error::protocol("row change outside a transaction"))?;
        tx.changes.push(Change {
            table,
            kind,
            before,
            after,
            position: SourcePosition::None,
            txid: None,
            commit_time_micros: tx.commit_time_micros,
        });
        Ok(())
    }
}

fn finish(tx: OpenTransaction, end_lsn: u64) -> SourceBatch {
    let position = SourcePosition::Postgres { lsn: end_lsn };
    let txid = Some(tx.xid.to_string());
    let mut records = tx.schemas;
    records.reserve(tx.changes.len() + 2);
    records.push(Record::Begin(Begin {
        txid: txid.clone(),
        position: position.clone(),
        commit_time_micros: tx.commit_time_micros,
    }));
    for mut change in tx.changes {
        change.position = position.clone();
        change.txid = txid.clone();
        records.push(Record::Change(change));
    }
    records.push(Record::Commit(Commit {
        txid,
        position: position.clone(),
        commit_time_micros: tx.commit_time_micros,
    }));
    SourceBatch { records, position }
}

/// Decodes a tuple into a row in relation column order.
pub(crate) fn row(info: &RelationInfo, tuple: &TupleData<'_>) -> Result<Row> {
    if tuple.columns.len() != info.types.len() {
        return Err(Error::protocol(format!(
            "tuple has {} columns, relation {} has {}",
            tuple.columns.len(),
            info.schema.table,
            info.types.len()
        )));
    }
    tuple
        .columns
        .iter()
        .zip(&info.types)
        .enumerate()
        .map(|(i, (data, column_type))| match data {
            ColumnData::Null => Ok(Value::Null),
            ColumnData::UnchangedToast => Ok(Value::Unchanged),
            ColumnData::Binary(bytes) => Ok(Value::Bytes(bytes.to_vec())),
            ColumnData::Text(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| column_type.decode_text(text))
                .ok_or_else(|| value_error(info, i)),
        })
        .collect()
}

fn value_error(info: &RelationInfo, i: usize) -> Error {
    let column = info.schema.columns.get(i);
    Error::Value {
        table: info.schema.table.clone(),
        column: column.map(|c| c.name.clone()).unwrap_or_default(),
        type_name: column.map(|c| c.source_type.clone()).unwrap_or_default(),
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Describes a relation from builtin type OIDs only (no catalog): user-defined
/// types decode as text. For benches and fuzzing.
#[doc(hidden)]
pub fn describe_offline(relation: &RelationMessage<'_>) -> RelationInfo {
    let types: Vec<ColumnType> = relation
        .columns
        .iter()
        .map(|c| ColumnType::builtin(c.type_oid).unwrap_or(ColumnType::Other))
        .collect();
    let columns = relation
        .columns
        .iter()
        .zip(&types)
        .map(|(c, t)| cdc_core::event::Column {
            name: c.name.to_owned(),
            data_type: t.data_type(c.type_oid, c.type_modifier),
            source_type: format!("oid {}", c.type_oid),
            nullable: true,
        })
        .collect();
    RelationInfo {
        schema: Arc::new(TableSchema {
            table: TableName::new(relation.namespace, relation.name),
            columns,
            primary_key: relation
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_key)
                .map(|(i, _)| i as u32)
                .collect(),
        }),
        types,
        identity: relation.replica_identity,
    }
}

/// Decodes a stream of pgoutput messages offline (relations described from
/// builtin types); returns the batches. For benches and fuzzing.
#[doc(hidden)]
pub fn decode_offline<'a>(
    tables: &[TableName],
    messages: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<SourceBatch>> {
    let mut assembler = Assembler::new(tables, 0, u64::MAX);
    let mut out = Vec::new();
    for bytes in messages {
        let message =
            crate::pgoutput::decode(bytes).map_err(|source| Error::Decode { lsn: 0, source })?;
        if let PgOutputMessage::Relation(relation) = &message {
            assembler.add_relation(relation.id, describe_offline(relation));
            continue;
        }
        if let Some(batch) = assembler.handle(message, bytes.len())? {
            out.push(batch);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation() -> Vec<u8> {
        let mut b = vec![b'R'];
        b.extend(7u32.to_be_bytes());
        b.extend(b"public\0t\0d");
        b.extend(1i16.to_be_bytes());
        b.push(1);
        b.extend(b"id\0");
        b.extend(23u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b
    }

    fn transaction(end_lsn: u64, id: &str) -> Vec<Vec<u8>> {
        let mut begin = vec![b'B'];
        begin.extend((end_lsn - 8).to_be_bytes());
        begin.extend(0i64.to_be_bytes());
        begin.extend(9u32.to_be_bytes());
        let mut insert = vec![b'I'];
        insert.extend(7u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(1i16.to_be_bytes());
        insert.push(b't');
        insert.extend((id.len() as i32).to_be_bytes());
        insert.extend(id.as_bytes());
        let mut commit = vec![b'C', 0];
        commit.extend((end_lsn - 8).to_be_bytes());
        commit.extend(end_lsn.to_be_bytes());
        commit.extend(0i64.to_be_bytes());
        vec![begin, insert, commit]
    }

    fn run(assembler: &mut Assembler, messages: &[Vec<u8>]) -> Result<Vec<SourceBatch>> {
        let mut out = Vec::new();
        for bytes in messages {
            let message = crate::pgoutput::decode(bytes).unwrap();
            if let PgOutputMessage::Relation(r) = &message {
                assembler.add_relation(r.id, describe_offline(r));
            } else if let Some(batch) = assembler.handle(message, bytes.len())? {
                out.push(batch);
            }
        }
        Ok(out)
    }

    #[test]
    fn transactions_at_or_before_the_resume_position_are_dropped() {
        let tables = [TableName::new("public", "t")];
        let mut assembler = Assembler::new(&tables, 200, u64::MAX);
        let mut messages = vec![relation()];
        messages.extend(transaction(100, "1"));
        messages.extend(transaction(200, "2"));
        messages.extend(transaction(300, "3"));
        let batches = run(&mut assembler, &messages).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].position, SourcePosition::Postgres { lsn: 300 });
        let kinds: Vec<_> = batches[0]
            .records
            .iter()
            .map(|r| match r {
                Record::Schema(_) => "schema",
                Record::Begin(_) => "begin",
                Record::Change(_) => "change",
                Record::Commit(_) => "commit",
                Record::Heartbeat(_) => "heartbeat",
            })
            .collect();
        // The schema is carried to the first transaction actually delivered.
        assert_eq!(kinds, ["schema", "begin", "change", "commit"]);
    }

    #[test]
    fn oversized_transactions_fail_with_the_limit_and_unknown_relations_fail() {
        let tables = [TableName::new("public", "t")];
        let mut assembler = Assembler::new(&tables, 0, 10);
        let mut messages = vec![relation()];
        messages.extend(transaction(100, "1234567890"));
        assert!(matches!(
            run(&mut assembler, &messages),
            Err(Error::TransactionTooLarge { limit: 10, .. })
        ));
        let mut assembler = Assembler::new(&tables, 0, u64::MAX);
        assert!(matches!(
            run(&mut assembler, &transaction(100, "1")),
            Err(Error::UnknownRelation { relation_id: 7 })
        ));
    }
}
