//! Change events as the server sends them, decoded with checked reads.
//!
//! The shape is the documented change event of MongoDB 4.2 and later: `_id`
//! (the resume token), `operationType`, `clusterTime`, `wallTime` (6.0+),
//! `ns {db, coll}`, `documentKey {_id, ...shard key}`, `fullDocument`,
//! `fullDocumentBeforeChange` (6.0+), `to {db, coll}` for renames, and
//! `lsid` with `txnNumber` for events of a multi-document transaction.

use bson::{RawBson, RawBsonRef, RawDocument, RawDocumentBuf};
use cdc_core::event::{SourcePosition, TableName};

use crate::token;

/// One decoded change event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The event's resume token and cluster time.
    pub position: SourcePosition,
    /// The event's cluster time (seconds << 32 | increment).
    pub cluster_time: u64,
    /// When the server wrote it: `wallTime` where sent, else the cluster
    /// time's seconds, in microseconds since the epoch.
    pub time_micros: i64,
    /// The transaction it belongs to, for events of a multi-document one.
    pub transaction: Option<TransactionId>,
    /// What happened.
    pub operation: Operation,
}

/// A multi-document transaction: its session and number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionId {
    /// The BSON of the `lsid` document, compared as bytes.
    pub session: Vec<u8>,
    /// `txnNumber`.
    pub number: i64,
}

impl TransactionId {
    /// A printable id: the session's UUID in hex, then the number.
    pub fn text(&self) -> String {
        let uuid = RawDocument::from_bytes(&self.session)
            .ok()
            .and_then(|lsid| lsid.get_binary("id").ok())
            .map(|id| hex::encode(id.bytes))
            .unwrap_or_default();
        format!("{uuid}:{}", self.number)
    }
}

/// What a change event reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// A document was inserted.
    Insert {
        /// Its collection.
        table: TableName,
        /// Its `_id`.
        key: RawBson,
        /// The document.
        document: RawDocumentBuf,
    },
    /// A document was updated or replaced.
    Update {
        /// Its collection.
        table: TableName,
        /// Its `_id`.
        key: RawBson,
        /// The document after the change, where the server sent one.
        document: Option<RawDocumentBuf>,
        /// The document before the change, where the server sent one.
        before: Option<RawDocumentBuf>,
    },
    /// A document was deleted.
    Delete {
        /// Its collection.
        table: TableName,
        /// Its `_id`.
        key: RawBson,
        /// The document before the delete, where the server sent one.
        before: Option<RawDocumentBuf>,
    },
    /// A collection was dropped.
    Drop {
        /// The collection.
        table: TableName,
    },
    /// A collection was renamed.
    Rename {
        /// Its old name.
        from: TableName,
        /// Its new name.
        to: TableName,
    },
    /// The stream was invalidated (its collection or database went away).
    Invalidate,
    /// Any other event (`dropDatabase`, `create`, `createIndexes`, `modify`,
    /// ...): nothing to apply.
    Other {
        /// Its `operationType`.
        kind: String,
    },
}

impl Operation {
    /// The collection a data change or drop is for.
    pub fn table(&self) -> Option<&TableName> {
        match self {
            Operation::Insert { table, .. }
            | Operation::Update { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Drop { table } => Some(table),
            _ => None,
        }
    }
}

/// Why an event could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(String);

impl EventError {
    pub(crate) fn new(reason: String) -> Self {
        EventError(reason)
    }
}

type Result<T> = std::result::Result<T, EventError>;

fn invalid(field: &str, problem: impl std::fmt::Display) -> EventError {
    EventError(format!("field {field}: {problem}"))
}

/// The fields of an event this decoder reads, found in one pass over it.
#[derive(Default)]
struct Fields<'a> {
    id: Option<RawBsonRef<'a>>,
    operation_type: Option<RawBsonRef<'a>>,
    cluster_time: Option<RawBsonRef<'a>>,
    wall_time: Option<RawBsonRef<'a>>,
    ns: Option<RawBsonRef<'a>>,
    to: Option<RawBsonRef<'a>>,
    document_key: Option<RawBsonRef<'a>>,
    full_document: Option<RawBsonRef<'a>>,
    before: Option<RawBsonRef<'a>>,
    lsid: Option<RawBsonRef<'a>>,
    txn_number: Option<RawBsonRef<'a>>,
}

impl<'a> Fields<'a> {
    fn of(event: &'a RawDocument) -> Result<Self> {
        let mut fields = Fields::default();
        for element in event {
            let (key, value) = element.map_err(|e| invalid("(event)", e))?;
            let slot = match key {
                "_id" => &mut fields.id,
                "operationType" => &mut fields.operation_type,
                "clusterTime" => &mut fields.cluster_time,
                "wallTime" => &mut fields.wall_time,
                "ns" => &mut fields.ns,
                "to" => &mut fields.to,
                "documentKey" => &mut fields.document_key,
                "fullDocument" => &mut fields.full_document,
                "fullDocumentBeforeChange" => &mut fields.before,
                "lsid" => &mut fields.lsid,
                "txnNumber" => &mut fields.txn_number,
                _ => continue,
            };
            // The first of a repeated key counts, as with `RawDocument::get`.
            slot.get_or_insert(value);
        }
        Ok(fields)
    }
}

/// A required subdocument.
fn subdocument<'a>(value: Option<RawBsonRef<'a>>, field: &str) -> Result<&'a RawDocument> {
    match value {
        Some(RawBsonRef::Document(doc)) => Ok(doc),
        Some(_) => Err(invalid(field, "not a document")),
        None => Err(invalid(field, "missing")),
    }
}

/// Decodes one change event from its BSON.
pub fn decode(bytes: &[u8]) -> Result<ChangeEvent> {
    let event = RawDocument::from_bytes(bytes).map_err(|e| invalid("(event)", e))?;
    let fields = Fields::of(event)?;
    let token = subdocument(fields.id, "_id")?;
    let kind = match fields.operation_type {
        Some(RawBsonRef::String(kind)) => kind,
        Some(_) => return Err(invalid("operationType", "not a string")),
        None => return Err(invalid("operationType", "missing")),
    };
    let cluster_time = match fields.cluster_time {
        Some(RawBsonRef::Timestamp(ts)) => token::pack(ts),
        Some(_) => return Err(invalid("clusterTime", "not a timestamp")),
        // Invalidate events of old servers may lack it; the token holds it.
        None => token::cluster_time(token).unwrap_or(0),
    };
    let time_micros = match fields.wall_time {
        Some(RawBsonRef::DateTime(t)) => t.timestamp_millis().saturating_mul(1000),
        _ => i64::try_from(cluster_time >> 32).unwrap_or(0) * 1_000_000,
    };
    let operation = match kind {
        "insert" => Operation::Insert {
            table: namespace(fields.ns, "ns")?,
            key: key(fields.document_key)?,
            document: document(fields.full_document, "fullDocument")?
                .ok_or_else(|| invalid("fullDocument", "missing from an insert"))?,
        },
        "update" | "replace" => Operation::Update {
            table: namespace(fields.ns, "ns")?,
            key: key(fields.document_key)?,
            document: document(fields.full_document, "fullDocument")?,
            before: document(fields.before, "fullDocumentBeforeChange")?,
        },
        "delete" => Operation::Delete {
            table: namespace(fields.ns, "ns")?,
            key: key(fields.document_key)?,
            before: document(fields.before, "fullDocumentBeforeChange")?,
        },
        "drop" => Operation::Drop {
            table: namespace(fields.ns, "ns")?,
        },
        "rename" => Operation::Rename {
            from: namespace(fields.ns, "ns")?,
            to: namespace(fields.to, "to")?,
        },
        "invalidate" => Operation::Invalidate,
        other => Operation::Other {
            kind: other.to_owned(),
        },
    };
    Ok(ChangeEvent {
        position: token::position(token, cluster_time),
        cluster_time,
        time_micros,
        transaction: transaction(&fields)?,
        operation,
    })
}

fn namespace(value: Option<RawBsonRef<'_>>, field: &str) -> Result<TableName> {
    let ns = subdocument(value, field)?;
    let db = ns.get_str("db").map_err(|e| invalid(field, e))?;
    let coll = ns.get_str("coll").map_err(|e| invalid(field, e))?;
    Ok(TableName::new(db, coll))
}

fn key(value: Option<RawBsonRef<'_>>) -> Result<RawBson> {
    let key = subdocument(value, "documentKey")?;
    match key.get("_id").map_err(|e| invalid("documentKey._id", e))? {
        Some(id) => Ok(id.to_raw_bson()),
        None => Err(invalid("documentKey", "has no _id")),
    }
}

/// A document field that may be absent or null (a lookup that found nothing).
fn document(value: Option<RawBsonRef<'_>>, field: &str) -> Result<Option<RawDocumentBuf>> {
    match value {
        None | Some(RawBsonRef::Null) => Ok(None),
        Some(RawBsonRef::Document(doc)) => Ok(Some(doc.to_raw_document_buf())),
        Some(_) => Err(invalid(field, "not a document")),
    }
}

fn transaction(fields: &Fields<'_>) -> Result<Option<TransactionId>> {
    let number = match fields.txn_number {
        None => return Ok(None),
        Some(RawBsonRef::Int64(n)) => n,
        Some(RawBsonRef::Int32(n)) => i64::from(n),
        Some(_) => return Err(invalid("txnNumber", "not an integer")),
    };
    let session = subdocument(fields.lsid, "lsid")?;
    Ok(Some(TransactionId {
        session: session.as_bytes().to_vec(),
        number,
    }))
}
