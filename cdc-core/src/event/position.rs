use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};

/// Where a record came from in the source's own log; what a reader restarts from.
///
/// Positions of one source are totally ordered by the order the source commits
/// transactions. The change log stores the position of every transaction so a
/// reader can restart from the last one that is durable.
#[derive(
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
)]
#[rkyv(derive(Debug))]
pub enum SourcePosition {
    /// No source position (records appended by the host, tests).
    None,
    /// PostgreSQL: the LSN where the transaction's commit record ends (pgoutput's
    /// `end_lsn`), which is what a standby status update confirms.
    Postgres {
        /// Log sequence number.
        lsn: u64,
    },
    /// MySQL or MariaDB binlog coordinates after the transaction.
    MySql {
        /// Binlog file name, e.g. `mysql-bin.000003`.
        file: String,
        /// Byte position in that file after the transaction's last event.
        pos: u64,
        /// GTID state after this transaction, if GTIDs are in use: MySQL's executed
        /// GTID set (`uuid:1-100`), or MariaDB's GTID list (`0-1-100,1-2-7`).
        gtid: Option<String>,
    },
    /// MongoDB change stream.
    Mongo {
        /// The resume token (`_id` of the change event) as raw BSON.
        resume_token: Vec<u8>,
        /// Cluster time of the event (seconds << 32 | increment), for ordering and lag.
        cluster_time: u64,
    },
}

impl SourcePosition {
    /// Whether this is [`SourcePosition::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, SourcePosition::None)
    }
}
