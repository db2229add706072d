//! The crate's error type.

use cdc_core::event::TableName;

use crate::pgoutput::DecodeError;

/// Errors from the PostgreSQL source. Each variant says what to do and whether
/// retrying can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection failed or broke; retrying helps once the server is reachable.
    #[error(
        "connection to postgres at {address} failed (retry once the server is reachable): {source}"
    )]
    Connect {
        /// `host:port`.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up as configured.
    #[error("tls to postgres: {reason} (retry does not help until this is fixed)")]
    Tls {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The TLS handshake failed, e.g. the server's certificate was not accepted.
    #[error(
        "tls handshake with postgres at {host} failed; check ssl_root_cert, the certificate's names and ssl_mode (retry helps only for a network fault)"
    )]
    TlsHandshake {
        /// The host connected to.
        host: String,
        /// The handshake error (rustls' reason inside).
        #[source]
        source: std::io::Error,
    },
    /// The server closed the replication connection; retrying resumes from the last acknowledged position.
    #[error(
        "postgres closed the replication connection (retry resumes from the last acknowledged position)"
    )]
    ConnectionClosed,
    /// The server sent an error; the message is the server's.
    #[error("postgres error {code} while {context}: {message}")]
    Server {
        /// What we were doing.
        context: &'static str,
        /// SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },
    /// Authentication could not proceed; fix the credentials or `pg_hba.conf`.
    #[error(
        "authentication failed: {reason}; check the user, password and pg_hba.conf (retry does not help)"
    )]
    Auth {
        /// Why.
        reason: String,
    },
    /// The server sent something the replication protocol does not allow here.
    #[error("replication protocol violation: {reason} (retry may help; report it if it persists)")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// An ordinary query failed.
    #[error("query failed while {context} (retry may help if the cause was transient)")]
    Query {
        /// What we were doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A pgoutput message could not be decoded.
    #[error("undecodable pgoutput message at lsn {lsn:#x} (retry does not help; report it)")]
    Decode {
        /// LSN of the message.
        lsn: u64,
        /// The decode error.
        #[source]
        source: DecodeError,
    },
    /// A column value's text is not valid for its type.
    #[error(
        "value of column {column} of table {table} (type {type_name}) could not be decoded (retry does not help; report it)"
    )]
    Value {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
        /// The column's type name.
        type_name: String,
    },
    /// A row change arrived for a relation whose description was never sent.
    #[error("change for unknown relation oid {relation_id} (retry restarts the session)")]
    UnknownRelation {
        /// Relation OID.
        relation_id: u32,
    },
    /// `wal_level` is not `logical`.
    #[error("wal_level is {actual}; set wal_level=logical and restart postgres")]
    WalLevel {
        /// The current setting.
        actual: String,
    },
    /// The user may not replicate.
    #[error("user {user} lacks the REPLICATION privilege; run ALTER ROLE \"{user}\" REPLICATION")]
    MissingReplicationPrivilege {
        /// The user.
        user: String,
    },
    /// A table has no key to identify rows in updates and deletes.
    #[error(
        "table {table} has no primary key and replica identity {identity}; add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX)"
    )]
    MissingKey {
        /// The table.
        table: TableName,
        /// Its replica identity.
        identity: String,
    },
    /// A key given to a read by key has another width than the table's key:
    /// the caller paired the table with another one.
    #[error(
        "a key of {found} values was given for table {table}, whose key has {expected} columns"
    )]
    KeyWidth {
        /// The table.
        table: TableName,
        /// Key columns of the table.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A key value of a type this reader cannot compare keys with (a date,
    /// time, interval, JSON or array key).
    #[error(
        "table {table} has a key of type {type_name}, which key-range reads do not support yet;          verify tables keyed by numbers, text, UUIDs or bytes"
    )]
    UnsupportedKey {
        /// The table.
        table: TableName,
        /// The value's kind.
        type_name: &'static str,
    },
    /// A declared table does not exist.
    #[error("table {table} does not exist; create it or remove it from the source's tables")]
    MissingTable {
        /// The table.
        table: TableName,
    },
    /// The publication does not exist.
    #[error(
        "publication {publication} does not exist; create it with CREATE PUBLICATION \"{publication}\" FOR TABLE ... or enable create_publication"
    )]
    MissingPublication {
        /// The publication.
        publication: String,
    },
    /// The publication does not publish every declared table.
    #[error(
        "publication {publication} does not include {tables:?}; run ALTER PUBLICATION \"{publication}\" ADD TABLE ..."
    )]
    PublicationMissingTables {
        /// The publication.
        publication: String,
        /// The missing tables.
        tables: Vec<TableName>,
    },
    /// A declared table was renamed in the stream to a name not declared;
    /// its later changes would be dropped.
    #[error(
        "declared table {from} was renamed to {to}, so its changes would be dropped: declare {to}, or, if another table now holds the name {from} (the swap of an online schema change), add that table to the publication; then backfill it again (retry does not help)"
    )]
    TableRenamed {
        /// The declared name.
        from: TableName,
        /// The new name.
        to: TableName,
    },
    /// A declared partitioned table's changes would come under its
    /// partitions' names, which are not declared.
    #[error(
        "table {table} is partitioned and publication {publication} publishes changes under its partitions' names; run ALTER PUBLICATION \"{publication}\" SET (publish_via_partition_root = true)"
    )]
    PartitionsPublishedApart {
        /// The publication.
        publication: String,
        /// The partitioned table.
        table: TableName,
    },
    /// The slot is streaming to another process.
    #[error(
        "replication slot {slot} is in use by process {pid}; stop the other reader or terminate it with pg_terminate_backend({pid}) (retry helps once it is gone)"
    )]
    SlotInUse {
        /// The slot.
        slot: String,
        /// The holder's backend pid.
        pid: i32,
    },
    /// The slot cannot deliver every change since the last durable position.
    #[error(
        "replication slot {slot} needs backfill: {reason}; changes were lost, re-backfill the tables (retry does not help)"
    )]
    NeedsBackfill {
        /// The slot.
        slot: String,
        /// What happened to it.
        reason: String,
    },
    /// The resume position is of another source kind.
    #[error(
        "resume position {position} is not a postgres lsn; the change log belongs to another source"
    )]
    ForeignPosition {
        /// The position's debug form.
        position: String,
    },
    /// Configuration is invalid; fix the named field.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The source was used before `start`.
    #[error("the source is not started; call start first")]
    NotStarted,
    /// Nothing came back from the server for `waited`, though every standby
    /// status update asks for an answer: the connection is presumed dead (a
    /// dropped network path sends no reset).
    #[error(
        "postgres answered nothing for {waited:?} while {context}; the connection is presumed dead \
         (retry resumes from the last acknowledged position; raise idle_timeout if the server is only slow)"
    )]
    Stalled {
        /// What we were doing.
        context: &'static str,
        /// How long the source waited.
        waited: std::time::Duration,
    },
}

impl Error {
    /// Whether starting the source again (and resuming from the last
    /// acknowledged position) can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::TlsHandshake { .. }
            | Error::ConnectionClosed
            | Error::Protocol { .. }
            | Error::Query { .. }
            | Error::SlotInUse { .. }
            | Error::Stalled { .. }
            // A new session describes every relation again before its changes.
            | Error::UnknownRelation { .. } => true,
            // Connection exceptions, insufficient resources, operator
            // intervention (a shutdown or a terminated backend), system errors,
            // and a slot still active for a walsender that is going away.
            Error::Server { code, .. } => {
                code == "55006" || ["08", "53", "57", "58"].iter().any(|c| code.starts_with(c))
            }
            _ => false,
        }
    }

    pub(crate) fn query(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
        move |source| Error::Query { context, source }
    }

    pub(crate) fn tls(reason: impl Into<String>) -> Error {
        Error::Tls {
            reason: reason.into(),
        }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Error {
        Error::Protocol {
            reason: reason.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> Error {
        Error::Server {
            context: "streaming",
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn transient_failures_are_retryable_and_mistakes_are_not() {
        assert!(Error::ConnectionClosed.is_retryable());
        assert!(
            Error::Stalled {
                context: "streaming",
                waited: std::time::Duration::from_secs(60)
            }
            .is_retryable()
        );
        // 57P01: terminated by an administrator; 08006: connection failure.
        assert!(server("57P01").is_retryable());
        assert!(server("08006").is_retryable());
        // 42704: undefined object, e.g. a publication dropped under us.
        assert!(!server("42704").is_retryable());
        assert!(Error::UnknownRelation { relation_id: 7 }.is_retryable());
        // 55006: START_REPLICATION on a slot another walsender still holds.
        assert!(server("55006").is_retryable());
        assert!(!server("55000").is_retryable());
        assert!(!Error::NotStarted.is_retryable());
        assert!(
            !Error::WalLevel {
                actual: "replica".into()
            }
            .is_retryable()
        );
    }
}
