//! The event model: what one change looks like, with source fidelity.
//!
//! Every record in the change log is a [`Record`]: a row [`Change`], a
//! transaction boundary ([`Begin`], [`Commit`]), a [`TableSchema`] taking effect,
//! or a [`Heartbeat`]. Rows are positional: value `i` of a row belongs to column
//! `i` of the table schema in effect at the change's offset, which the log stores
//! as a `Record::Schema` before the first change that uses it.
//!
//! All types derive rkyv's `Archive` so the log stores them without a copy on the
//! read path, and serde so hosts can export them.

mod archive_text;
mod change;
mod decimal;
mod position;
mod schema;
mod shared_str;
mod value;

pub use change::{Begin, Change, ChangeKind, Commit, Heartbeat, Record, Row, now_micros};
pub use decimal::{Decimal, DecimalError};
pub use position::SourcePosition;
pub use schema::{Column, DataType, TableName, TableSchema};
pub use shared_str::SharedStr;
pub use value::{Value, uuid_text};

pub use change::{
    ArchivedBegin, ArchivedChange, ArchivedChangeKind, ArchivedCommit, ArchivedHeartbeat,
    ArchivedRecord,
};
pub use decimal::ArchivedDecimal;
pub use position::ArchivedSourcePosition;
pub use schema::{ArchivedColumn, ArchivedDataType, ArchivedTableName, ArchivedTableSchema};
pub use value::ArchivedValue;
