use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};

use super::{SharedStr, SourcePosition, TableName, TableSchema, Value};

/// A row: values in the column order of the table schema in effect.
pub type Row = Vec<Value>;

/// What happened to a row.
#[derive(
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub enum ChangeKind {
    /// A new row; `after` is set.
    Insert,
    /// A changed row; `after` is set, `before` is set when the source sends an old image.
    Update,
    /// A removed row; `before` holds at least the key columns.
    Delete,
    /// All rows of the table were removed; no row images.
    Truncate,
    /// A row read by a snapshot or backfill rather than from the change stream; `after` is set.
    SnapshotRead,
}

/// One row change.
///
/// `before` on an update or delete may hold only the key columns (the others
/// `Null`) when the source's replica identity sends no more; `after` on an update
/// may hold [`Value::Unchanged`] for values the source did not send.
#[derive(
    Archive, RkyvSerialize, RkyvDeserialize, Serialize, Deserialize, Debug, Clone, PartialEq,
)]
#[rkyv(derive(Debug))]
pub struct Change {
    /// The table changed.
    pub table: TableName,
    /// What happened.
    pub kind: ChangeKind,
    /// Row image before the change, if the source sent one.
    pub before: Option<Row>,
    /// Row image after the change.
    pub after: Option<Row>,
    /// Position of the transaction this change belongs to (its commit position).
    /// MySQL and MariaDB changes carry it [without the GTID
    /// state](SourcePosition::without_gtid), which is on the transaction's
    /// [`Begin`] and [`Commit`]. MongoDB changes carry their transaction's
    /// [`Begin`] position (its first event's resume token, at the commit's
    /// cluster time), since a transaction's last token is known only at its end.
    pub position: SourcePosition,
    /// Source transaction id: PostgreSQL xid, MySQL/MariaDB GTID, if any.
    pub txid: Option<SharedStr>,
    /// Commit time of the transaction, microseconds since the Unix epoch (UTC).
    pub commit_time_micros: i64,
}

/// The current time as the event model writes times: microseconds since the
/// Unix epoch (0 if the clock is before it).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Change {
    /// A row read by a snapshot or backfill rather than changed, stamped with
    /// the source position the read is consistent with.
    pub fn snapshot_read(
        table: TableName,
        row: Row,
        position: SourcePosition,
        read_time_micros: i64,
    ) -> Self {
        Change {
            table,
            kind: ChangeKind::SnapshotRead,
            before: None,
            after: Some(row),
            position,
            txid: None,
            commit_time_micros: read_time_micros,
        }
    }
}

/// Start of a source transaction. The records up to the matching [`Commit`] are
/// one atomic unit: a sink applies them in one transaction, unless there are more
/// of them than the pipeline's `max_transaction_records` (then atomicity on the
/// target is given up for that transaction, exactly-once delivery is not).
#[derive(
    Archive, RkyvSerialize, RkyvDeserialize, Serialize, Deserialize, Debug, Clone, PartialEq,
)]
#[rkyv(derive(Debug))]
pub struct Begin {
    /// Source transaction id, if any.
    pub txid: Option<SharedStr>,
    /// Commit position of the transaction.
    pub position: SourcePosition,
    /// Commit time, microseconds since the Unix epoch (UTC).
    pub commit_time_micros: i64,
}

/// End of a source transaction. Its position is what a reader restarts after.
#[derive(
    Archive, RkyvSerialize, RkyvDeserialize, Serialize, Deserialize, Debug, Clone, PartialEq,
)]
#[rkyv(derive(Debug))]
pub struct Commit {
    /// Source transaction id, if any.
    pub txid: Option<SharedStr>,
    /// Commit position of the transaction.
    pub position: SourcePosition,
    /// Commit time, microseconds since the Unix epoch (UTC).
    pub commit_time_micros: i64,
}

/// Liveness mark from an idle source: everything up to `position` has been seen.
#[derive(
    Archive, RkyvSerialize, RkyvDeserialize, Serialize, Deserialize, Debug, Clone, PartialEq,
)]
#[rkyv(derive(Debug))]
pub struct Heartbeat {
    /// Source position reached.
    pub position: SourcePosition,
    /// Source time, microseconds since the Unix epoch (UTC).
    pub time_micros: i64,
}

/// One record of the change log.
#[derive(
    Archive, RkyvSerialize, RkyvDeserialize, Serialize, Deserialize, Debug, Clone, PartialEq,
)]
#[rkyv(derive(Debug))]
pub enum Record {
    /// Transaction start.
    Begin(Begin),
    /// A row change.
    Change(Change),
    /// Transaction end.
    Commit(Commit),
    /// A table schema taking effect at this offset.
    Schema(TableSchema),
    /// Source liveness.
    Heartbeat(Heartbeat),
}

impl Record {
    /// The source position this record carries, if any (schema records have none).
    pub fn position(&self) -> Option<&SourcePosition> {
        match self {
            Record::Begin(b) => Some(&b.position),
            Record::Change(c) => Some(&c.position),
            Record::Commit(c) => Some(&c.position),
            Record::Heartbeat(h) => Some(&h.position),
            Record::Schema(_) => None,
        }
    }
}
