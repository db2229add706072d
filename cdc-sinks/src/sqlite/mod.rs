//! The SQLite sink: the embedded default destination.
//!
//! One SQLite transaction per batch holds the data and the `_cdc_offsets` row, in
//! a WAL-mode database with `synchronous=FULL` (by default; see
//! [`SqliteSynchronous`]), so a committed batch survives a crash and
//! [`stored_offset`](cdc_core::Sink::stored_offset) says exactly what was
//! applied. Rows go in as cached multi-row statements bound straight from
//! the batch.

mod apply;
mod config;
mod connection;
mod mapping;
mod verify;
mod write;

use async_trait::async_trait;
use cdc_core::{Sink, SinkBatch};

pub use config::{SqliteConfig, SqliteSynchronous};
pub use verify::SqliteTable;

use crate::error::{Result, SinkError};
use connection::Shared;

/// A sink writing into a SQLite database file.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
///
/// use cdc_core::event::{Change, ChangeKind, Column, DataType, SourcePosition, TableName, TableSchema, Value};
/// use cdc_core::{Sink, SinkBatch, SinkEvent};
/// use cdc_sinks::{SqliteConfig, SqliteSink};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("target.db");
/// let mut sink = SqliteSink::open(SqliteConfig::new(&path)).await?;
/// assert_eq!(sink.stored_offset().await?, None, "a new database has applied nothing");
///
/// let column = |name: &str, data_type| Column {
///     name: name.into(),
///     data_type,
///     source_type: String::new(),
///     nullable: false,
/// };
/// let schema = Arc::new(TableSchema {
///     table: TableName::new("app", "users"),
///     columns: vec![
///         column("id", DataType::Int { bits: 64, signed: true }),
///         column("name", DataType::Text { max_chars: None, fixed: false }),
///     ],
///     primary_key: vec![0],
/// });
/// let insert = |offset, id: i64, name: &str| SinkEvent::Change {
///     offset,
///     schema: schema.clone(),
///     change: Change {
///         table: schema.table.clone(),
///         kind: ChangeKind::Insert,
///         before: None,
///         after: Some(vec![Value::Int(id), Value::Text(name.into())]),
///         position: SourcePosition::None,
///         txid: None,
///         commit_time_micros: 0,
///     },
/// };
/// // One batch: the table's schema, then its rows; applied in one transaction
/// // together with the offset it brings the sink to.
/// let batch = SinkBatch {
///     events: vec![
///         SinkEvent::Schema { offset: 0, schema: schema.clone() },
///         insert(1, 1, "ada"),
///         insert(2, 2, "grace"),
///     ],
///     last_offset: 2,
///     copied: false,
/// };
/// sink.apply(&batch).await?;
/// assert_eq!(sink.stored_offset().await?, Some(2), "a restart resumes after offset 2");
///
/// let db = rusqlite::Connection::open(&path)?;
/// let rows: i64 = db.query_row("SELECT count(*) FROM \"users\"", [], |r| r.get(0))?;
/// assert_eq!(rows, 2);
/// # Ok(())
/// # }
/// ```
pub struct SqliteSink {
    shared: Shared,
}

impl std::fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSink").finish_non_exhaustive()
    }
}

impl SqliteSink {
    /// Opens (creating if needed) the database and its bookkeeping tables.
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        config.validate()?;
        let shared = tokio::task::spawn_blocking(move || Shared::open(config))
            .await
            .map_err(|_| SinkError::WorkerGone)??;
        Ok(Self { shared })
    }
}

#[async_trait]
impl Sink for SqliteSink {
    type Error = SinkError;

    fn stores_offsets(&self) -> bool {
        true
    }

    async fn stored_offset(&mut self) -> Result<Option<u64>> {
        self.shared
            .on_blocking_thread(|state| state.stored_offset())
            .await
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<()> {
        if let Some(result) = self.shared.in_place(|state| state.apply(batch)) {
            return result;
        }
        // A current-thread runtime: the blocking thread needs its own copy.
        let batch = batch.clone();
        self.shared
            .on_blocking_thread(move |state| state.apply(&batch))
            .await
    }
}
