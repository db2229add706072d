//! Turns decoded pgoutput messages into batches of records: whole transactions,
//! or parts of one too large to buffer.
//!
//! Network-free, so the decode bench and the fuzz target drive exactly the code
//! the live source runs.
//!
//! # Positions
//!
//! A transaction's position is its commit record's start LSN plus one
//! (`final_lsn + 1`), not the record's end LSN: pgoutput's `Begin` carries only
//! `final_lsn`, and a transaction split into parts needs its commit position on
//! its `Begin`, before the commit arrives. Using the same rule for every
//! transaction keeps a transaction's position independent of whether (and with
//! which chunk size) it was split, so a re-delivery always matches.
//!
//! `final_lsn + 1` lies inside the commit record, so no other record starts at
//! or before it after `final_lsn`: a transaction is "at or before" a resume
//! position `r` exactly when `final_lsn < r`, whether `r` is such a position, an
//! older end LSN, a heartbeat's message LSN or a slot's confirmed position. The
//! server applies the same test when it decides what to send after
//! `START_REPLICATION` at `r` (it skips commits that start before `r`).

mod offline;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cdc_core::SourceBatch;
use cdc_core::event::{
    Begin, Change, ChangeKind, Commit, Heartbeat, Record, Row, SharedStr, SourcePosition,
    TableName, TableSchema, Value, now_micros,
};

use crate::error::{Error, Result};
use crate::pgoutput::{ColumnData, PgOutputMessage, TupleData};
use crate::replication::PG_EPOCH_OFFSET_MICROS;
use crate::schema::RelationInfo;

pub use offline::{decode_offline, describe_offline};

/// Prefix of the logical messages this source emits as heartbeats.
pub const HEARTBEAT_PREFIX: &str = "cdc_heartbeat";

/// Fixed in-memory cost counted per buffered change, besides its values: the
/// record and its small heap allocations (table name, txid, row vectors).
const CHANGE_OVERHEAD: u64 = std::mem::size_of::<Record>() as u64 + 64;
/// In-memory cost counted per value, besides the text it came from.
const VALUE_OVERHEAD: u64 = std::mem::size_of::<Value>() as u64;

/// The transaction between a `Begin` and its `Commit`.
struct OpenTransaction {
    /// Commit LSN (`final_lsn` of the `Begin`).
    final_lsn: u64,
    position: SourcePosition,
    txid: Option<SharedStr>,
    commit_time_micros: i64,
    /// Records not handed out yet, in stream order.
    records: Vec<Record>,
    /// Estimated memory of the changes in `records`.
    bytes: u64,
    /// Whether a change was buffered since the `Begin` (schema records that
    /// come earlier go before the `Begin`).
    has_changes: bool,
    /// Whether a part of it was handed out already.
    split: bool,
    /// Whether it is at or before the resume position: seen, not delivered.
    skip: bool,
}

/// Assembles transactions from pgoutput messages in stream order.
///
/// A transaction is handed out whole at its commit, unless its buffered
/// changes reach `transaction_chunk_bytes` (estimated decoded size): then it is
/// handed out in parts as the [`cdc_core::Source`] contract allows, the first
/// with the `Begin`, the last with the `Commit`, each positioned at the last
/// completed transaction or heartbeat.
pub struct Assembler {
    tables: HashSet<TableName>,
    relations: HashMap<u32, RelationInfo>,
    /// Schema last emitted per table, to emit again only on change.
    emitted: HashMap<TableName, Arc<TableSchema>>,
    pending_schemas: Vec<Record>,
    open: Option<OpenTransaction>,
    resume_after: u64,
    /// Position of the last transaction or heartbeat handed out (or the start).
    completed: SourcePosition,
    transaction_chunk_bytes: u64,
}

impl Assembler {
    /// An assembler for `tables` that drops every transaction and heartbeat at
    /// or before `resume_after` and splits transactions whose buffered changes
    /// reach `transaction_chunk_bytes`.
    pub fn new(tables: &[TableName], resume_after: u64, transaction_chunk_bytes: u64) -> Self {
        Self {
            tables: tables.iter().cloned().collect(),
            relations: HashMap::new(),
            emitted: HashMap::new(),
            pending_schemas: Vec::new(),
            open: None,
            resume_after,
            completed: SourcePosition::Postgres { lsn: resume_after },
            transaction_chunk_bytes: transaction_chunk_bytes.max(1),
        }
    }

    /// Whether a transaction is open (between Begin and Commit).
    pub fn in_transaction(&self) -> bool {
        self.open.is_some()
    }

    /// Whether a part of the open transaction was handed out already, so the
    /// stream cannot be resumed on a new connection without repeating it.
    pub fn handed_out_part(&self) -> bool {
        self.open.as_ref().is_some_and(|tx| tx.split && !tx.skip)
    }

    /// Registers a relation description; queues a schema record when it is a
    /// declared table whose schema is new or changed. Fails when a declared
    /// table was renamed to a name not declared: its changes would be dropped.
    pub fn add_relation(&mut self, id: u32, info: RelationInfo) -> Result<()> {
        let table = &info.schema.table;
        if let Some(known) = self.relations.get(&id) {
            let was = &known.schema.table;
            if was != table && self.tables.contains(was) && !self.tables.contains(table) {
                return Err(Error::TableRenamed {
                    from: was.clone(),
                    to: table.clone(),
                });
            }
        }
        if self.tables.contains(table) && self.emitted.get(table) != Some(&info.schema) {
            self.emitted.insert(table.clone(), info.schema.clone());
            let record = Record::Schema((*info.schema).clone());
            match &mut self.open {
                // Before the first change it goes with the schemas ahead of the
                // `Begin`; after one, in place, so earlier changes keep theirs.
                Some(tx) if !tx.skip && (tx.has_changes || tx.split) => tx.records.push(record),
                Some(tx) if !tx.skip => {
                    let begin = tx.records.len().saturating_sub(1);
                    tx.records.insert(begin, record);
                }
                _ => self.pending_schemas.push(record),
            }
        }
        self.relations.insert(id, info);
        Ok(())
    }

    /// Handles one decoded message (not `Relation`, which goes through
    /// [`add_relation`](Self::add_relation)); returns a batch at each commit,
    /// heartbeat and full part of a large transaction. `size` is the
    /// message's encoded length, for the size estimate.
    pub fn handle(
        &mut self,
        message: PgOutputMessage<'_>,
        size: usize,
    ) -> Result<Option<SourceBatch>> {
        match message {
            PgOutputMessage::Begin(begin) => {
                if self.open.is_some() {
                    return Err(Error::protocol("begin inside a transaction"));
                }
                self.open = Some(self.begin(begin.final_lsn, begin.xid, begin.commit_time));
            }
            PgOutputMessage::Commit(commit) => return self.commit(commit.commit_lsn),
            PgOutputMessage::Insert { relation_id, new } => {
                self.change(relation_id, ChangeKind::Insert, None, Some(&new), size)?;
            }
            PgOutputMessage::Update {
                relation_id,
                key,
                old,
                new,
            } => {
                let before = old.or(key);
                let kind = ChangeKind::Update;
                self.change(relation_id, kind, before.as_ref(), Some(&new), size)?;
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
                self.change(relation_id, ChangeKind::Delete, before.as_ref(), None, size)?;
            }
            PgOutputMessage::Truncate(truncate) => {
                for id in truncate.relation_ids {
                    self.change(id, ChangeKind::Truncate, None, None, size)?;
                }
            }
            PgOutputMessage::Message(m) if !m.transactional && m.prefix == HEARTBEAT_PREFIX => {
                return Ok(self.heartbeat(m.lsn));
            }
            PgOutputMessage::Relation(_)
            | PgOutputMessage::Type(_)
            | PgOutputMessage::Origin { .. }
            | PgOutputMessage::Message(_) => {}
        }
        Ok(self.full_part())
    }

    fn begin(&mut self, final_lsn: u64, xid: u32, commit_time: i64) -> OpenTransaction {
        // See the module doc: at or before the resume position exactly when
        // the commit record starts before it.
        let skip = final_lsn < self.resume_after;
        let position = SourcePosition::Postgres {
            lsn: final_lsn.saturating_add(1),
        };
        let txid = Some(SharedStr::from(xid.to_string()));
        let commit_time_micros = commit_time.saturating_add(PG_EPOCH_OFFSET_MICROS);
        let mut records = Vec::new();
        if !skip {
            records = std::mem::take(&mut self.pending_schemas);
            records.push(Record::Begin(Begin {
                txid: txid.clone(),
                position: position.clone(),
                commit_time_micros,
            }));
        }
        OpenTransaction {
            final_lsn,
            position,
            txid,
            commit_time_micros,
            records,
            bytes: 0,
            has_changes: false,
            split: false,
            skip,
        }
    }

    fn commit(&mut self, commit_lsn: u64) -> Result<Option<SourceBatch>> {
        let tx = self
            .open
            .take()
            .ok_or_else(|| Error::protocol("commit without begin"))?;
        if commit_lsn != tx.final_lsn {
            return Err(Error::protocol(format!(
                "commit lsn {commit_lsn:#x} differs from its begin's {:#x}",
                tx.final_lsn
            )));
        }
        if tx.skip {
            // Already durable in the change log: a re-delivery after restart.
            // Its schema records (queued as pending) precede the next one.
            return Ok(None);
        }
        let mut records = tx.records;
        records.push(Record::Commit(Commit {
            txid: tx.txid,
            position: tx.position.clone(),
            commit_time_micros: tx.commit_time_micros,
        }));
        self.completed = tx.position.clone();
        Ok(Some(SourceBatch {
            records,
            position: tx.position,
        }))
    }

    /// The server's sent position from a keepalive that asks for a reply:
    /// every message before it was received, so with no transaction open it
    /// is a completed position, handed out as a heartbeat. The host's
    /// acknowledgement of it is what a walsender of a server shutting down
    /// waits for.
    pub fn keepalive(&mut self, wal_end: u64) -> Option<SourceBatch> {
        match self.completed {
            SourcePosition::Postgres { lsn } if wal_end > lsn => self.heartbeat(wal_end),
            _ => None,
        }
    }

    /// A heartbeat at the last completed position again, when no
    /// transaction is open: nothing new for the log (the host drops it as
    /// re-delivered), only a batch for the host to acknowledge on.
    pub fn repeat_heartbeat(&self) -> Option<SourceBatch> {
        if self.open.is_some() {
            return None;
        }
        Some(SourceBatch {
            records: vec![Record::Heartbeat(Heartbeat {
                position: self.completed.clone(),
                time_micros: now_micros(),
            })],
            position: self.completed.clone(),
        })
    }

    fn heartbeat(&mut self, lsn: u64) -> Option<SourceBatch> {
        // Non-transactional messages never come inside a transaction's
        // messages; one that did would be older than its commit anyway.
        if lsn <= self.resume_after || self.open.is_some() {
            return None;
        }
        let position = SourcePosition::Postgres { lsn };
        let mut records = std::mem::take(&mut self.pending_schemas);
        records.push(Record::Heartbeat(Heartbeat {
            position: position.clone(),
            time_micros: now_micros(),
        }));
        self.completed = position.clone();
        Some(SourceBatch { records, position })
    }

    /// Hands out the buffered part of the open transaction once it is full.
    fn full_part(&mut self) -> Option<SourceBatch> {
        let tx = self.open.as_mut()?;
        if tx.bytes < self.transaction_chunk_bytes {
            return None;
        }
        tx.bytes = 0;
        tx.split = true;
        let capacity = tx.records.capacity();
        let records = std::mem::replace(&mut tx.records, Vec::with_capacity(capacity));
        Some(SourceBatch {
            records,
            position: self.completed.clone(),
        })
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
        size: usize,
    ) -> Result<()> {
        let info = self
            .relations
            .get(&relation_id)
            .ok_or(Error::UnknownRelation { relation_id })?;
        let tx = self
            .open
            .as_mut()
            .ok_or_else(|| Error::protocol("row change outside a transaction"))?;
        if tx.skip || !self.tables.contains(&info.schema.table) {
            return Ok(());
        }
        let before = before.map(|t| row(info, t)).transpose()?;
        let after = after.map(|t| row(info, t)).transpose()?;
        let values = before.as_ref().map_or(0, Vec::len) + after.as_ref().map_or(0, Vec::len);
        tx.bytes += CHANGE_OVERHEAD + VALUE_OVERHEAD * values as u64 + size as u64;
        tx.has_changes = true;
        tx.records.push(Record::Change(Change {
            table: info.schema.table.clone(),
            kind,
            before,
            after,
            position: tx.position.clone(),
            txid: tx.txid.clone(),
            commit_time_micros: tx.commit_time_micros,
        }));
        Ok(())
    }
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
    let mut row = Vec::with_capacity(info.types.len());
    for (i, (data, column_type)) in tuple.columns.iter().zip(&info.types).enumerate() {
        row.push(match data {
            ColumnData::Null => Value::Null,
            ColumnData::UnchangedToast => Value::Unchanged,
            ColumnData::Binary(bytes) => Value::Bytes(bytes.to_vec()),
            ColumnData::Text(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| column_type.decode_text(text))
                .ok_or_else(|| value_error(info, i))?,
        });
    }
    Ok(row)
}

fn value_error(info: &RelationInfo, i: usize) -> Error {
    let column = info.schema.columns.get(i);
    Error::Value {
        table: info.schema.table.clone(),
        column: column.map(|c| c.name.clone()).unwrap_or_default(),
        type_name: column.map(|c| c.source_type.clone()).unwrap_or_default(),
    }
}
