//! Verification: compare a pipeline's sink with its source, table by table,
//! while changes keep streaming, and report the rows that differ.
//!
//! # How it stays exact
//!
//! The table is compared in primary-key chunks. For each chunk the pipeline
//! is paused at a transaction boundary (offset `at`), so the sink holds
//! exactly the log's changes before `at`; the chunk is read from the source
//! (each row after the pause, one statement), then a source position `P` is
//! read, and the sink's rows of the same key range are read. The pipeline
//! resumes. Rows are matched by key and compared column by column in a
//! canonical form that agrees across the sink's type choices (a MySQL
//! `TINYINT UNSIGNED` in a `smallint`, `5.00` in an unbounded `numeric`,
//! JSON with its keys reordered).
//!
//! A key whose rows agree is verified. A key whose rows differ may only be
//! in flight: the source read may have seen a change committed after `at`.
//! Every such change is in the log between `at` and the first transaction at
//! or past `P`, so the log is read there (waiting for it to get that far, up
//! to [`VerifyConfig::settle_timeout`]). A differing key that no change there
//! touches held different rows at the same moment of the source's history:
//! a real difference, reported as missing, extra or different. A key some
//! change touches is compared again later, by key, in up to
//! [`VerifyConfig::rechecks`] rounds; a key still changing after the last one
//! is reported as unsettled, never as equal.
//!
//! One hold of the pipeline may take several chunks, up to
//! [`VerifyConfig::max_hold`]: the sink's rows of a chunk are read while the
//! source's next chunk is, and `P` is read after the hold's last source read,
//! so the argument above holds for each of them.
//!
//! Nothing is written to the source, no lock is taken and no transaction
//! spans more than one chunk's read. The comparison is resumable: its
//! progress (the next key range and what was found) is saved after every
//! chunk. Rows travel to the library and are compared there, which works for
//! any source and sink pair; the comparison itself is cheap next to the reads.
//!
//! Both sides must order keys alike: numbers, UUIDs, bytes and dates are
//! ordered alike everywhere; text keys need the same collation. Where they
//! are not, a key falls in one range on the source and another in the sink;
//! a key found on one side only is therefore compared again by key before it
//! is reported (up to [`VerifyConfig::max_reported`] of each kind), so no
//! difference is reported falsely, but a row only the sink holds may fall in
//! no range and go unreported.

pub(crate) mod canonical;
mod columns;
mod config;
mod report;
mod run;
mod settle;

use std::sync::Arc;

use async_trait::async_trait;

pub use columns::ColumnMap;
pub use config::{VerifyConfig, VerifyError};
pub use report::{Found, RowDifference, VerifyReport};
pub use run::Verification;

use crate::event::{Row, SourcePosition, TableSchema, Value};

/// One table as a verification reads it, on the source or in a sink.
///
/// # Contract
///
/// * Rows are in the column order of [`schema`](Self::schema), whose
///   `primary_key` names the key columns in key order.
/// * [`read_range`](Self::read_range) reads, in key order, the rows whose
///   key is after `after` (from the first when `None`) and at most `through`
///   (to the last when `None`), up to `limit` rows; each row as the table held
///   it at some moment **after the call began** (one statement does this).
/// * [`read_key`](Self::read_key) reads the row with that key, likewise.
/// * Key bounds are key values in key order; a reader converts values of
///   another type (a source's `UInt` against a sink's `bigint`) as its
///   database compares them.
/// * [`position`](Self::position) is the source's position, read when
///   called: every change a read before the call saw is at or before it.
///   Sinks need not implement it.
#[async_trait]
pub trait TableReader: Send {
    /// The reader's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The table's schema as the reader decodes it.
    fn schema(&self) -> &Arc<TableSchema>;

    /// Rows with keys in `(after, through]`, in key order, at most `limit`.
    async fn read_range(
        &mut self,
        after: Option<&[Value]>,
        through: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Row>, Self::Error>;

    /// The row with key `key`, if there is one.
    async fn read_key(&mut self, key: &[Value]) -> Result<Option<Row>, Self::Error>;

    /// The source's current position.
    async fn position(&mut self) -> Result<SourcePosition, Self::Error> {
        Ok(SourcePosition::None)
    }

    /// How this table holds the source value `value` in its column
    /// `column`, as its reads return it. A reader that decodes values as the
    /// source does returns it unchanged (the default); a sink reader whose
    /// storage has forms of its own (SQLite's ISO text for timestamps)
    /// converts it as its sink writes it, so both sides compare alike.
    fn stored_form(&self, column: usize, value: &Value) -> Value {
        let _ = column;
        value.clone()
    }
}
