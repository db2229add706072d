//! # cdc-postgres
//!
//! A PostgreSQL logical replication source: a replication-mode connection
//! built on `postgres-protocol` (trust, md5 and SCRAM-SHA-256 authentication,
//! optional TLS with rustls),
//! a hand-written pgoutput decoder, typed values with source fidelity, slot and
//! publication management with checks that name their fix, heartbeats that
//! keep an idle slot's confirmed position moving, and a watch that notices a
//! network path gone silent (see [`PostgresConfig::idle_timeout`]).
//!
//! [`PostgresSource`] implements [`cdc_core::Source`]: transactions in commit
//! order (whole, or in parts when too large to buffer), positioned at each
//! commit record's LSN plus one, confirmed upstream only when acknowledged.

mod assembler;
mod config;
mod error;
mod liveness;
pub mod pgoutput;
mod replication;
mod schema;
mod slot;
mod snapshot;
mod source;
mod stream;
mod tls;
mod value;

pub use assembler::{Assembler, HEARTBEAT_PREFIX, decode_offline, describe_offline};
pub use config::{Password, PostgresConfig, SslMode};
pub use error::{Error, Result};
pub use replication::{format_lsn, parse_lsn};
pub use schema::{Catalog, RelationInfo};
pub use slot::{drop_publication, drop_slot};
pub use snapshot::{Chunk, ChunkReader, InitialSnapshot, KeyCursor, PostgresChunks, PostgresTable};
pub use source::{PostgresSource, connect_client};
pub use value::ColumnType;

/// Building blocks for fuzz targets; not a stable API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    use bytes::BytesMut;

    use crate::replication::{parse_copy_data, split_frame};

    /// Splits `bytes` into backend messages as the replication connection
    /// reads them and parses each CopyData body; the number of copy messages
    /// parsed before the bytes ran out or one failed.
    pub fn parse_stream(bytes: &[u8]) -> usize {
        let mut buf = BytesMut::from(bytes);
        let mut parsed = 0;
        while let Ok(Some(frame)) = split_frame(&mut buf) {
            if frame.tag == b'd' && parse_copy_data(frame.body).is_ok() {
                parsed += 1;
            }
        }
        parsed
    }
}
