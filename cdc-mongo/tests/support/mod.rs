//! Change events built as the MongoDB manual documents them, and a source
//! that replays them the way a server does after `startAfter`.
#![allow(dead_code)]

pub mod fake_mongod;

use std::cmp::Ordering;

use async_trait::async_trait;
use bson::spec::BinarySubtype;
use bson::{Binary, RawDocumentBuf, Timestamp, rawdoc};
use cdc_core::event::{SourcePosition, TableName};
use cdc_core::{Source, SourceBatch};
use cdc_mongo::event::{self, ChangeEvent};
use cdc_mongo::{Assembler, Error, JsonMode};

pub const SECONDS: u32 = 1_700_000_000;

pub fn orders() -> TableName {
    TableName::new("shop", "orders")
}

/// The resume token of the `op`-th event at `increment`.
pub fn token(increment: u32, op: u32) -> RawDocumentBuf {
    let time = (u64::from(SECONDS) << 32) | u64::from(increment);
    rawdoc! { "_data": format!("82{time:016X}2B042C0100296E5A1004{op:04X}") }
}

/// A change event with the fields every kind has.
pub fn event(increment: u32, op: u32, kind: &str, coll: &str) -> RawDocumentBuf {
    rawdoc! {
        "_id": token(increment, op),
        "operationType": kind,
        "clusterTime": Timestamp { time: SECONDS, increment },
        "wallTime": bson::DateTime::from_millis(i64::from(SECONDS) * 1000 + 250),
        "ns": { "db": "shop", "coll": coll },
    }
}

pub fn insert(increment: u32, op: u32, id: i32, body: &str) -> RawDocumentBuf {
    let mut e = event(increment, op, "insert", "orders");
    e.append("documentKey", rawdoc! { "_id": id });
    e.append("fullDocument", rawdoc! { "_id": id, "body": body });
    e
}

/// An update event; `document` `None` is a lookup that found nothing.
pub fn update(increment: u32, id: i32, document: Option<&str>) -> RawDocumentBuf {
    let mut e = event(increment, 0, "update", "orders");
    e.append("documentKey", rawdoc! { "_id": id });
    e.append(
        "updateDescription",
        rawdoc! { "updatedFields": { "body": document.unwrap_or("?") }, "removedFields": [] },
    );
    match document {
        Some(body) => e.append("fullDocument", rawdoc! { "_id": id, "body": body }),
        None => e.append("fullDocument", bson::RawBson::Null),
    }
    e
}

pub fn delete(increment: u32, op: u32, id: i32) -> RawDocumentBuf {
    let mut e = event(increment, op, "delete", "orders");
    e.append("documentKey", rawdoc! { "_id": id });
    e
}

pub fn in_transaction(mut e: RawDocumentBuf, number: i64) -> RawDocumentBuf {
    let uuid = Binary {
        subtype: BinarySubtype::Uuid,
        bytes: vec![0xAB; 16],
    };
    let uid = Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![7; 32],
    };
    e.append("lsid", rawdoc! { "id": uuid, "uid": uid });
    e.append("txnNumber", number);
    e
}

pub fn decode(e: &RawDocumentBuf) -> ChangeEvent {
    event::decode(e.as_bytes()).unwrap()
}

/// A change stream over a fixed list of events, which breaks once after
/// handing out `break_after` batches.
pub struct Replay {
    tables: Vec<TableName>,
    events: Vec<ChangeEvent>,
    chunk_bytes: usize,
    next: usize,
    assembler: Option<Assembler>,
    ready: Vec<SourceBatch>,
    handed_out: usize,
    break_after: Option<usize>,
}

impl Replay {
    pub fn new(events: &[RawDocumentBuf], chunk_bytes: usize, break_after: Option<usize>) -> Self {
        Replay {
            tables: vec![orders()],
            events: events.iter().map(decode).collect(),
            chunk_bytes,
            next: 0,
            assembler: None,
            ready: Vec::new(),
            handed_out: 0,
            break_after,
        }
    }
}

#[async_trait]
impl Source for Replay {
    type Error = Error;

    fn tables(&self) -> &[TableName] {
        &self.tables
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<(), Error> {
        let after = resume_after.unwrap_or(SourcePosition::None);
        self.next = self
            .events
            .iter()
            .position(|e| after.is_none() || e.position.compare(&after) == Some(Ordering::Greater))
            .unwrap_or(self.events.len());
        self.assembler = Some(Assembler::new(
            &self.tables,
            JsonMode::Relaxed,
            self.chunk_bytes,
            after,
        ));
        self.ready.clear();
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, Error> {
        let assembler = self.assembler.as_mut().ok_or(Error::NotStarted)?;
        while self.ready.is_empty() {
            match self.events.get(self.next) {
                Some(event) => {
                    self.next += 1;
                    self.ready = assembler.push(event.clone())?;
                }
                None => {
                    self.ready = assembler.quiet(None, false, 0);
                    if self.ready.is_empty() {
                        return Ok(None);
                    }
                }
            }
            self.ready.reverse();
        }
        if self.break_after == Some(self.handed_out) {
            self.break_after = None;
            self.assembler = None;
            return Err(Error::NotStarted);
        }
        self.handed_out += 1;
        Ok(self.ready.pop())
    }

    async fn acknowledge(&mut self, _: &SourcePosition) -> Result<(), Error> {
        Ok(())
    }
}
