//! Change events grouped into the change log's transactions.
//!
//! An event outside a multi-document transaction is a transaction of its own.
//! The events of a multi-document transaction share `lsid` and `txnNumber` and
//! come one after another; the transaction ends at the first event that does
//! not belong to it, or at a quiet poll: the server writes a transaction's
//! events to the oplog at once when it commits, so a poll that finds nothing
//! new means none of them is left.
//!
//! `Begin` and the changes carry the position of the transaction's first
//! event, `Commit` that of its last. Both carry the commit's cluster time, and
//! the first event's token is the same however the transaction is split, so a
//! re-delivered transaction is recognised whole or in parts.

use std::collections::HashSet;

use cdc_core::SourceBatch;
use cdc_core::event::{
    Begin, Change, ChangeKind, Commit, Heartbeat, Record, SharedStr, SourcePosition, TableName,
    Value,
};

use crate::config::JsonMode;
use crate::document;
use crate::error::Error;
use crate::event::{ChangeEvent, EventError, Operation, TransactionId};

/// Turns events into batches of whole (or, when large, split) transactions.
#[derive(Debug)]
pub struct Assembler {
    tables: HashSet<TableName>,
    json: JsonMode,
    chunk_bytes: usize,
    described: HashSet<TableName>,
    open: Option<OpenTransaction>,
    delivered: SourcePosition,
    seen_cluster_time: u64,
    ignored: u64,
}

#[derive(Debug)]
struct OpenTransaction {
    id: Option<TransactionId>,
    begin: Begin,
    begun: bool,
    records: Vec<Record>,
    bytes: usize,
    last: SourcePosition,
    time_micros: i64,
}

impl Assembler {
    /// An assembler for the declared `tables`, resuming after `delivered`.
    pub fn new(
        tables: &[TableName],
        json: JsonMode,
        chunk_bytes: usize,
        delivered: SourcePosition,
    ) -> Self {
        let seen_cluster_time = match &delivered {
            SourcePosition::Mongo { cluster_time, .. } => *cluster_time,
            _ => 0,
        };
        Assembler {
            tables: tables.iter().cloned().collect(),
            json,
            chunk_bytes,
            described: HashSet::new(),
            open: None,
            delivered,
            seen_cluster_time,
            ignored: 0,
        }
    }

    /// Events that carried nothing to apply (other collections, `create`,
    /// `createIndexes` and the like).
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Whether part of the open transaction was handed out: a new stream
    /// cannot resume inside it without handing that part out again.
    pub fn in_split_transaction(&self) -> bool {
        self.open.as_ref().is_some_and(|open| open.begun)
    }

    /// Where a new stream resumes without loss or repetition, unless
    /// [`in_split_transaction`](Self::in_split_transaction): after the last
    /// whole transaction or heartbeat handed out (`None` before any), with
    /// what was read of the open transaction dropped, to be read again.
    pub fn resume_point(&mut self) -> Option<SourcePosition> {
        self.open = None;
        (!self.delivered.is_none()).then(|| self.delivered.clone())
    }

    /// The cluster time of the last position handed out (0 before any).
    pub fn delivered_cluster_time(&self) -> u64 {
        match &self.delivered {
            SourcePosition::Mongo { cluster_time, .. } => *cluster_time,
            _ => 0,
        }
    }

    /// Takes one event; returns the batches it completes.
    pub fn push(&mut self, event: ChangeEvent) -> Result<Vec<SourceBatch>, Error> {
        let mut out = Vec::new();
        if self
            .open
            .as_ref()
            .is_some_and(|open| open.id.is_none() || open.id != event.transaction)
        {
            self.close(&mut out);
        }
        self.seen_cluster_time = self.seen_cluster_time.max(event.cluster_time);
        let (table, kind, key, before, after) = match event.operation {
            Operation::Insert {
                table,
                key,
                document,
            } => (table, ChangeKind::Insert, key, None, Some(document)),
            Operation::Update {
                table,
                key,
                document,
                before,
            } => (table, ChangeKind::Update, key, before, document),
            Operation::Delete { table, key, before } => {
                (table, ChangeKind::Delete, key, before, None)
            }
            Operation::Drop { table } if self.tables.contains(&table) => {
                self.truncate(table, event.position, event.time_micros, &mut out);
                return Ok(out);
            }
            Operation::Rename { from, to } if self.tables.contains(&from) => {
                return Err(Error::CollectionRenamed { from, to });
            }
            Operation::Rename { from, to } if self.tables.contains(&to) => {
                return Err(Error::CollectionReplaced {
                    table: to,
                    by: from,
                });
            }
            _ => {
                self.ignored += 1;
                return Ok(out);
            }
        };
        if !self.tables.contains(&table) {
            self.ignored += 1;
            return Ok(out);
        }
        let malformed = |e: EventError| Error::MalformedEvent {
            reason: e.to_string(),
        };
        let key = document::key(&key, self.json).map_err(malformed)?;
        let row = |doc: Option<bson::RawDocumentBuf>| -> Result<Vec<Value>, Error> {
            let document = match doc {
                Some(doc) => document::document(&doc, self.json).map_err(malformed)?,
                None => Value::Unchanged,
            };
            Ok(vec![key.clone(), document])
        };
        let (before, after) = match kind {
            ChangeKind::Insert => (None, Some(row(after)?)),
            ChangeKind::Update => (before.map(|b| row(Some(b))).transpose()?, Some(row(after)?)),
            _ => (Some(row(before)?), None),
        };
        let bytes = row_bytes(before.as_deref()) + row_bytes(after.as_deref());
        let single = event.transaction.is_none();
        let chunk_bytes = self.chunk_bytes;
        let schema = self
            .described
            .insert(table.clone())
            .then(|| Record::Schema(document::schema(&table)));
        let open = self.open_for(event.transaction, &event.position, event.time_micros);
        open.records.extend(schema);
        open.records.push(Record::Change(Change {
            table,
            kind,
            before,
            after,
            position: open.begin.position.clone(),
            txid: open.begin.txid.clone(),
            commit_time_micros: open.time_micros,
        }));
        open.bytes += bytes;
        open.last = event.position;
        if single {
            self.close(&mut out);
        } else if open.bytes >= chunk_bytes {
            self.hand_out_part(&mut out);
        }
        Ok(out)
    }

    /// A quiet poll: every event up to `resume_point` has been read. Ends an
    /// open transaction, and with `heartbeat` also hands out a heartbeat at
    /// the resume point when that is new.
    pub fn quiet(
        &mut self,
        resume_point: Option<&bson::RawDocument>,
        heartbeat: bool,
        now_micros: i64,
    ) -> Vec<SourceBatch> {
        let mut out = Vec::new();
        self.close(&mut out);
        if let Some(token) = resume_point.filter(|_| heartbeat) {
            let cluster_time = crate::token::cluster_time(token).unwrap_or(self.seen_cluster_time);
            let position = crate::token::position(token, cluster_time);
            let newer = self.delivered.is_none()
                || position.compare(&self.delivered).is_some_and(|o| o.is_gt());
            if newer {
                self.delivered = position.clone();
                out.push(SourceBatch {
                    records: vec![Record::Heartbeat(Heartbeat {
                        position: position.clone(),
                        time_micros: now_micros,
                    })],
                    position,
                });
            }
        }
        out
    }

    fn open_for(
        &mut self,
        id: Option<TransactionId>,
        position: &SourcePosition,
        time_micros: i64,
    ) -> &mut OpenTransaction {
        self.open.get_or_insert_with(|| {
            let txid = id.as_ref().map(|id| SharedStr::from(id.text()));
            OpenTransaction {
                id,
                begin: Begin {
                    txid,
                    position: position.clone(),
                    commit_time_micros: time_micros,
                },
                begun: false,
                records: Vec::new(),
                bytes: 0,
                last: position.clone(),
                time_micros,
            }
        })
    }

    fn truncate(
        &mut self,
        table: TableName,
        position: SourcePosition,
        time_micros: i64,
        out: &mut Vec<SourceBatch>,
    ) {
        let open = self.open_for(None, &position, time_micros);
        open.records.push(Record::Change(Change {
            table,
            kind: ChangeKind::Truncate,
            before: None,
            after: None,
            position,
            txid: None,
            commit_time_micros: time_micros,
        }));
        self.close(out);
    }

    fn hand_out_part(&mut self, out: &mut Vec<SourceBatch>) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let mut records = Vec::with_capacity(open.records.len() + 1);
        if !open.begun {
            open.begun = true;
            records.push(Record::Begin(open.begin.clone()));
        }
        records.append(&mut open.records);
        open.bytes = 0;
        out.push(SourceBatch {
            records,
            position: self.delivered.clone(),
        });
    }

    fn close(&mut self, out: &mut Vec<SourceBatch>) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        let mut records = Vec::with_capacity(open.records.len() + 2);
        if !open.begun {
            records.push(Record::Begin(open.begin.clone()));
        }
        records.append(&mut open.records);
        records.push(Record::Commit(Commit {
            txid: open.begin.txid,
            position: open.last.clone(),
            commit_time_micros: open.time_micros,
        }));
        self.delivered = open.last.clone();
        out.push(SourceBatch {
            records,
            position: open.last,
        });
    }
}

fn row_bytes(row: Option<&[Value]>) -> usize {
    row.map_or(0, |values| {
        values
            .iter()
            .map(|v| match v {
                Value::Json(text) => text.len(),
                _ => 8,
            })
            .sum()
    })
}
