//! # cdc-sinks
//!
//! Destinations for the pipeline runtime, each implementing [`cdc_core::Sink`]:
//!
//! * [`SqliteSink`]: the embedded default (rusqlite, bundled, WAL mode);
//! * [`PostgresSink`]: binary COPY staging and set-based merges (tokio-postgres);
//! * [`MySqlSink`]: multi-row upserts and batched deletes (mysql_async);
//! * [`JsonlSink`]: Debezium-envelope JSON lines in rolled, fsynced files.
//!
//! Every database sink stores the batch's log offset in a `_cdc_offsets` table
//! in the same transaction as the data, so a restarted pipeline resumes exactly
//! after the last applied batch. Target tables are created from the source
//! schema (a type-mapping table per destination heads each destination's
//! `mapping` module), prepared once per [`PrepareMode`], evolved from schema
//! records (added columns added, dropped columns kept nullable or dropped per
//! [`DroppedColumns`], compatible widening applied, anything else an
//! [`SinkError::IncompatibleSchema`]) and written per [`WriteMode`]; the
//! [`TableMapping`] renames tables and columns, excludes columns, overrides
//! types and filters tables. Identifiers are always quoted; values always
//! travel as parameters or COPY data; connection strings are [`Secret`]s.
//!
//! Within a batch, each table's changes are collapsed per primary key in log
//! order (the last state wins; a delete then re-insert is an upsert of the new
//! row), so set-based statements apply them in any order.

mod ddl;
mod error;
mod evolution;
mod json;
mod jsonl;
mod mapping;
mod mode;
mod mysql;
mod plan;
mod postgres;
mod quote;
mod secret;
mod sqlite;
mod temporal;

pub use error::{Result, SinkError};
pub use jsonl::{JsonlConfig, JsonlSink};
pub use mapping::{TableMapping, TableRule, TargetColumn, TargetTable};
pub use mode::{
    DroppedColumns, HISTORY_COMMIT_TIME, HISTORY_OFFSET, HISTORY_OP, HISTORY_UNCHANGED,
    OFFSETS_TABLE, PrepareMode, SCHEMAS_TABLE, SOFT_DELETED, WriteMode,
};
pub use mysql::{MySqlConfig, MySqlSink};
pub use postgres::{PostgresConfig, PostgresSink};
pub use quote::Dialect;
pub use secret::Secret;
pub use sqlite::{SqliteConfig, SqliteSink, SqliteSynchronous, SqliteTable};
