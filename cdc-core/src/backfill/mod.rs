//! Backfill concurrent with streaming: copy a table into one pipeline's sink,
//! chunk by chunk, while the source keeps changing and the log keeps growing.
//!
//! # How it stays exact
//!
//! For each chunk the pipeline is paused at a transaction boundary (offset
//! `at`), the chunk is read from the source (one statement, started then), its
//! rows are applied to the sink at `at`, and the pipeline resumes from `at`.
//! Every change logged after `at` committed after the log reached `at`, so
//! either the chunk's read saw it already, or it committed after the read. The
//! pipeline then applies all of them, in order, over the copied rows: a key
//! changed after `at` ends with its last change's image, the source's; a key
//! not changed ends with the copied row, also the source's. A change the read
//! already saw is applied once more, which changes nothing once the later ones
//! follow, so no change is lost and no stale row survives. The argument holds
//! key by key, so the rows of a chunk need not come from one snapshot: each
//! must only be read after the pause. Nothing is written
//! to the source, no lock is taken and no transaction spans more than one
//! chunk's read; the change log, which every pipeline can re-read, is what
//! makes this simple.
//!
//! One hold of the pipeline may take several chunks, up to
//! [`BackfillConfig::max_hold`]: all are read after the pause and applied at
//! the same offset, and the next chunk is read while the sink applies the
//! last, which keeps both the source and the sink busy.
//!
//! Until the pipeline has applied the log past the last chunk's
//! [`position`](CopiedChunk::position), copied rows may show an older image
//! for a moment (a change the read already saw, applied again before the
//! later ones). Sinks upsert copied rows, so a chunk copied twice (after a
//! crash between the sink's commit and the progress file's) is harmless.
//!
//! The sink's image rules apply to changes of keys not copied yet: an update
//! that leaves values unchanged (PostgreSQL TOAST) of a row the target does not
//! hold yet writes a row with those columns empty, which its chunk then
//! overwrites.

mod config;
mod progress;
mod run;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use config::{BackfillConfig, BackfillError, BackfillSummary, Destination};
pub use progress::BackfillProgress;
pub use run::{Backfill, run_all};

use crate::event::{Record, Row, SourcePosition, TableSchema};

/// Rows of one chunk, each read after the pipeline paused.
#[derive(Debug, Clone, PartialEq)]
pub struct CopiedChunk<K> {
    /// Rows in key order, in the column order of [`ChunkSource::schema`].
    pub rows: Vec<Row>,
    /// Where the next chunk starts; `None` when the table is exhausted.
    pub next: Option<K>,
    /// A source position read after the chunk: once the pipeline has applied
    /// the log past it, the copied rows are the source's.
    pub position: SourcePosition,
}

impl<K> CopiedChunk<K> {
    /// A chunk from a snapshot reader's records: the after images of its
    /// changes, in order (other records carry no rows).
    pub fn from_records(records: Vec<Record>, next: Option<K>, position: SourcePosition) -> Self {
        let rows = records
            .into_iter()
            .filter_map(|record| match record {
                Record::Change(change) => change.after,
                _ => None,
            })
            .collect();
        Self {
            rows,
            next,
            position,
        }
    }
}

/// A table read in primary-key chunks, for [`Backfill`].
///
/// # Contract
///
/// * [`read_chunk`](Self::read_chunk) reads the rows after `after` in key
///   order, up to the source's chunk size, **starting when it is called**:
///   each row as the source held it at some moment after the call began (one
///   statement does this; the rows need not come from one snapshot). The
///   backfill pauses the pipeline before calling it, and relies on every row
///   reflecting every change committed before.
/// * Chunks cover the table: following `next` from `None` until it is `None`
///   visits every key present through the whole backfill exactly once.
/// * Keys are serializable so a backfill resumes after a crash.
#[async_trait]
pub trait ChunkSource: Send {
    /// Where a chunk starts (the last key read).
    type Key: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The source's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The table's schema; rows are in its column order.
    fn schema(&self) -> &Arc<TableSchema>;

    /// The next chunk after `after` (from the start when `None`).
    async fn read_chunk(
        &mut self,
        after: Option<&Self::Key>,
    ) -> Result<CopiedChunk<Self::Key>, Self::Error>;

    /// A cheap estimate of the table's rows, for progress; `None` when unknown.
    async fn estimated_rows(&mut self) -> Result<Option<u64>, Self::Error> {
        Ok(None)
    }
}
