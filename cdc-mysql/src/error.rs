//! The crate's error type.

use std::path::PathBuf;

/// Errors from the MySQL/MariaDB source. Each variant says what to do about it
/// and whether retrying can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binlog bytes could not be decoded; the input is corrupt or of an
    /// unsupported format. Retrying does not help.
    #[error("malformed binlog data at {file}:{pos}: {reason}")]
    Malformed {
        /// Binlog file name (empty when unknown).
        file: String,
        /// Byte position of the event in that file.
        pos: u64,
        /// What was wrong.
        reason: String,
    },
    /// A server setting prevents change capture; the message says the fix.
    /// Retrying helps only after the setting is changed.
    #[error("server setting {variable} is {actual:?}; {fix}")]
    Setting {
        /// The server variable, e.g. `binlog_format`.
        variable: &'static str,
        /// Its current value.
        actual: String,
        /// What to do.
        fix: &'static str,
    },
    /// The connected user lacks a privilege; grant it and retry.
    #[error("user lacks {privilege}; run GRANT {privilege} ON *.* TO the replication user")]
    Privilege {
        /// The missing privilege, e.g. `REPLICATION SLAVE`.
        privilege: &'static str,
    },
    /// The binlog file holding our position was purged: changes after it are
    /// gone from the server. The tables need a new backfill; retrying does not help.
    #[error(
        "needs backfill: binlog file {file} was purged from the server; re-backfill the tables \
         and restart from a current position ({detail})"
    )]
    NeedsBackfill {
        /// The purged binlog file (or GTID position when no file is known).
        file: String,
        /// The server's message.
        detail: String,
    },
    /// An XA transaction was committed whose `XA PREPARE` lies before the
    /// position this reader started from, so its changes are not in the
    /// stream. Retrying does not help.
    #[error(
        "XA transaction {xid} committed at {file}:{pos} was prepared before this reader's start \
         position, so its changes were not read: re-backfill the tables it changed, or restart \
         from a position before its XA PREPARE"
    )]
    XaPreparedBeforeStart {
        /// The XID as the server wrote it.
        xid: String,
        /// Binlog file of the `XA COMMIT`.
        file: String,
        /// Its position.
        pos: u64,
    },
    /// Another replica uses our server id; pick a unique `server_id` in the config.
    #[error("server id {server_id} is already used by another replica; set a unique server_id")]
    ServerIdClash {
        /// The clashing id.
        server_id: u32,
    },
    /// The MySQL client library reported an error; retrying helps when the
    /// cause was a dropped connection.
    #[error("mysql error: {context}")]
    Mysql {
        /// What we were doing.
        context: String,
        /// The driver error.
        #[source]
        source: mysql_async::Error,
    },
    /// Reading a binlog file failed; check the path and permissions.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The spill file of a transaction too large to buffer could not be written
    /// or read back. Free disk space in the directory (or set `spill_dir`) and
    /// restart from the log's last durable position; retrying as is does not help.
    #[error(
        "cannot spill a large transaction to {dir}: {source}; free disk space there or set \
         spill_dir, then restart"
    )]
    Spill {
        /// The spill directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed: the certificate does not chain to a trusted
    /// root or does not name the host, or the server offers no TLS.
    #[error(
        "tls with the server at {host} failed ({reason}); check ssl_root_cert, the certificate's names (it must name {host}) and the server's TLS settings (retry does not help)"
    )]
    Tls {
        /// The host connected to.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The configuration is invalid; fix the named field.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A key given to a key-range read cannot be bound: a date, time, JSON or
    /// array key, or a key of another width than the table's.
    #[error(
        "table {table}: a {what} key cannot bound a key-range read yet; verify tables keyed by \
         numbers, text, UUIDs or bytes"
    )]
    UnsupportedKey {
        /// The table.
        table: String,
        /// What the key held.
        what: &'static str,
    },
    /// A resume position is not a MySQL/MariaDB position; pass the position the
    /// change log stored for this source.
    #[error("cannot resume from {0}: not a MySQL/MariaDB binlog position")]
    Position(String),
    /// A method was called out of order (e.g. `next_batch` before `start`).
    #[error("source used out of order: {0}")]
    State(&'static str),
    /// Neither an event nor a heartbeat came for `idle_timeout`: the connection
    /// is presumed dead (a dropped network path sends no reset). Retryable; the
    /// source reconnects by itself.
    #[error(
        "no binlog event or heartbeat for {waited:?}; the connection is presumed dead \
         (raise idle_timeout if one event takes longer than that to transfer)"
    )]
    Stalled {
        /// How long the source waited.
        waited: std::time::Duration,
    },
}

impl Error {
    /// Whether retrying the same operation (after a reconnect) can help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Mysql { .. } | Error::Io { .. } | Error::Stalled { .. }
        )
    }

    pub(crate) fn malformed(file: &str, pos: u64, reason: impl Into<String>) -> Self {
        Error::Malformed {
            file: file.to_owned(),
            pos,
            reason: reason.into(),
        }
    }

    pub(crate) fn mysql(context: impl Into<String>, source: mysql_async::Error) -> Self {
        Error::Mysql {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
