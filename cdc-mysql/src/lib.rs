//! # cdc-mysql
//!
//! A MySQL 8 / MariaDB 10.5+ binlog source for the CDC SDK: live replication
//! through `mysql_async` with GTID or file:pos resume (TLS with rustls, against
//! the system roots or a pinned CA file), offline binlog files, and snapshot
//! reads.
//!
//! Every transaction becomes one [`SourceBatch`](cdc_core::SourceBatch):
//! schema records first (a table's first use and after DDL), then `Begin`, the
//! row changes and `Commit`, all stamped with the commit's file:pos; `Begin` and
//! `Commit` also carry the GTID state after it. Row values keep full fidelity:
//! unsigned 64-bit integers, exact decimals, signed `TIME` over 24 h, fractional
//! seconds, charsets decoded to UTF-8, enum/set labels, binary JSON as JSON text
//! (MySQL's partial JSON updates applied to the before image, so the after image
//! is the whole document), geometry as WKB, MariaDB `UUID`/`INET6`.

pub mod binlog;
mod checks;
mod config;

mod error;
mod file;
pub mod gtid;
pub mod mariadb;
pub mod rows;
mod schema;
pub mod snapshot;
mod source;
mod spill;
mod statement;
pub(crate) mod stream;
mod transaction;

pub use config::{MySqlConfig, Password, StartFrom, TlsMode};
pub use error::{Error, Result};
pub use file::{BinlogFiles, decode_bytes, decode_bytes_with, decode_file};
pub use schema::{Hints, SchemaCache};
pub use source::{MySqlSource, ResumeBy};
pub use stream::StreamStart;
pub use transaction::{DecodeStats, Decoder, FeedError};
