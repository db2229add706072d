//! The crate's error type.

use std::path::PathBuf;

use cdc_core::event::TableName;

/// Errors from the sinks. Each variant says what to do and whether a retry helps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink configuration is invalid; fix the named field.
    #[error("invalid sink configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// PostgreSQL rejected a statement or the connection failed; a retry helps when
    /// the connection was lost, not when the statement itself is wrong.
    #[error("postgresql error while {action}: {source}")]
    Postgres {
        /// What the sink was doing.
        action: &'static str,
        /// The driver error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// MySQL/MariaDB rejected a statement or the connection failed; a retry helps
    /// when the connection was lost, not when the statement itself is wrong.
    #[error("mysql error while {action}: {source}")]
    MySql {
        /// What the sink was doing.
        action: &'static str,
        /// The driver error.
        #[source]
        source: mysql_async::Error,
    },
    /// SQLite failed; a retry helps only for a busy database or a full disk.
    #[error("sqlite error while {action}: {source}")]
    Sqlite {
        /// What the sink was doing.
        action: &'static str,
        /// The driver error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file operation failed; a retry may help if the cause was transient.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The source schema changed in a way the target cannot follow without losing
    /// data; retrying does not help. Recreate the table (prepare mode `recreate`) or
    /// add a type override.
    #[error("incompatible schema change on {table} column {column:?}: {reason}")]
    IncompatibleSchema {
        /// The source table.
        table: TableName,
        /// The column concerned.
        column: String,
        /// What changed and what to do.
        reason: String,
    },
    /// A value does not fit the target column; retrying does not help. Override
    /// the column's type in the mapping.
    #[error("value of {table} column {column:?} does not fit the target: {reason}")]
    ValueOutOfRange {
        /// The source table.
        table: TableName,
        /// The column concerned.
        column: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A change cannot be applied in this write mode; retrying does not help.
    #[error("cannot apply change to {table}: {reason}")]
    Unsupported {
        /// The source table.
        table: TableName,
        /// Why and what to do.
        reason: String,
    },
    /// The sink's own bookkeeping (offset file, schema table) is corrupt;
    /// retrying does not help. Inspect or remove it and re-backfill.
    #[error("corrupt sink state in {location}: {reason}")]
    CorruptState {
        /// Where the state is kept.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The blocking worker thread of the sink is gone (it panicked); construct the
    /// sink again.
    #[error("the sink's worker thread stopped; construct the sink again")]
    WorkerGone,
}

impl SinkError {
    pub(crate) fn pg(action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |source| Self::Postgres { action, source }
    }

    pub(crate) fn mysql(action: &'static str) -> impl FnOnce(mysql_async::Error) -> Self {
        move |source| Self::MySql { action, source }
    }

    pub(crate) fn sqlite(action: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| Self::Sqlite { action, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Whether retrying the same batch on a fresh sink can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Postgres { source, .. } => source.is_closed() || source.as_db_error().is_none(),
            Self::MySql { source, .. } => matches!(
                source,
                mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)
            ),
            Self::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Self::Io { .. } | Self::WorkerGone => true,
            _ => false,
        }
    }
}

/// Result alias for the sinks.
pub type Result<T, E = SinkError> = std::result::Result<T, E>;
