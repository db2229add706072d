//! Snapshot reads: the initial snapshot from the slot's exported snapshot, and
//! a chunk reader for ad-hoc backfills of a live table, and the table reader
//! of a verification.

mod backfill;
mod chunk;
mod initial;
mod verify;

pub use backfill::PostgresChunks;
pub use chunk::{Chunk, ChunkReader, KeyCursor};
pub use initial::InitialSnapshot;
pub use verify::PostgresTable;
