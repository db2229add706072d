use std::cmp::Ordering;

use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};

use super::SharedStr;

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
        file: SharedStr,
        /// Byte position in that file after the transaction's last event.
        pos: u64,
        /// GTID state after this transaction, if GTIDs are in use: MySQL's executed
        /// GTID set (`uuid:1-100`), or MariaDB's GTID list (`0-1-100,1-2-7`).
        gtid: Option<SharedStr>,
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

    /// This position without the MySQL GTID state (the same position for other
    /// sources): what the changes of a MySQL transaction carry.
    ///
    /// The binlog file and byte position order changes on their own. The GTID
    /// state is the whole executed set, which on MySQL holds a UUID for every
    /// server that ever took writes, so it is stored once per transaction, on its
    /// `Begin` and `Commit`, where a reader resumes from.
    pub fn without_gtid(&self) -> SourcePosition {
        match self {
            SourcePosition::MySql { file, pos, .. } => SourcePosition::MySql {
                file: file.clone(),
                pos: *pos,
                gtid: None,
            },
            other => other.clone(),
        }
    }

    /// Orders two positions of the same source, or `None` when they cannot be
    /// compared (different kinds, or MySQL files of different base names).
    ///
    /// PostgreSQL compares LSNs; MySQL compares the binlog file's sequence number,
    /// then the byte position; MongoDB compares cluster time, then the resume
    /// token's bytes (which agree with the token order for tokens of equal cluster
    /// time and format).
    pub fn compare(&self, other: &SourcePosition) -> Option<Ordering> {
        match (self, other) {
            (SourcePosition::None, SourcePosition::None) => Some(Ordering::Equal),
            (SourcePosition::Postgres { lsn: a }, SourcePosition::Postgres { lsn: b }) => {
                Some(a.cmp(b))
            }
            (
                SourcePosition::MySql {
                    file: fa, pos: pa, ..
                },
                SourcePosition::MySql {
                    file: fb, pos: pb, ..
                },
            ) => {
                let (base_a, seq_a) = split_binlog_name(fa)?;
                let (base_b, seq_b) = split_binlog_name(fb)?;
                (base_a == base_b).then(|| seq_a.cmp(&seq_b).then(pa.cmp(pb)))
            }
            (
                SourcePosition::Mongo {
                    resume_token: ta,
                    cluster_time: ca,
                },
                SourcePosition::Mongo {
                    resume_token: tb,
                    cluster_time: cb,
                },
            ) => Some(ca.cmp(cb).then_with(|| ta.cmp(tb))),
            _ => None,
        }
    }
}

/// Splits `mysql-bin.000012` into (`mysql-bin`, 12).
fn split_binlog_name(file: &str) -> Option<(&str, u64)> {
    let (base, seq) = file.rsplit_once('.')?;
    Some((base, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(file: &str, pos: u64) -> SourcePosition {
        SourcePosition::MySql {
            file: file.into(),
            pos,
            gtid: None,
        }
    }

    #[test]
    fn mysql_positions_order_by_file_sequence_then_offset() {
        assert_eq!(
            mysql("bin.000009", 900).compare(&mysql("bin.000010", 4)),
            Some(Ordering::Less)
        );
        assert_eq!(
            mysql("bin.000010", 4).compare(&mysql("bin.000010", 4)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            mysql("bin.000010", 5).compare(&mysql("bin.000010", 4)),
            Some(Ordering::Greater)
        );
        assert_eq!(mysql("a.000001", 4).compare(&mysql("b.000001", 4)), None);
    }

    #[test]
    fn without_gtid_keeps_what_orders_a_mysql_position() {
        let full = SourcePosition::MySql {
            file: "bin.000010".into(),
            pos: 4,
            gtid: Some("0-1-100".into()),
        };
        assert_eq!(full.without_gtid(), mysql("bin.000010", 4));
        assert_eq!(full.without_gtid().compare(&full), Some(Ordering::Equal));
        let pg = SourcePosition::Postgres { lsn: 7 };
        assert_eq!(pg.without_gtid(), pg);
    }

    #[test]
    fn positions_of_different_sources_do_not_compare() {
        let pg = SourcePosition::Postgres { lsn: 1 };
        assert_eq!(pg.compare(&mysql("bin.000001", 4)), None);
        assert_eq!(
            pg.compare(&SourcePosition::Postgres { lsn: 2 }),
            Some(Ordering::Less)
        );
    }
}
