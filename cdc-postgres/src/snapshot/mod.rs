//! Snapshot reads: the initial snapshot from the slot's exported snapshot, and
//! a chunk reader for ad-hoc backfills of a live table.

mod backfill;
mod chunk;
mod initial;

pub use backfill::PostgresChunks;
pub use chunk::{Chunk, ChunkReader, KeyCursor};
pub use initial::InitialSnapshot;
