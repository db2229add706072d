//! MongoDB change-stream source.
//!
//! [`MongoSource`] reads the change stream of a replica set or sharded cluster
//! (MongoDB 4.2 or later) for declared collections and hands the change log
//! whole transactions: each collection is a table with a text `_id` key and a
//! JSON `document` ([`document`]), positions are resume tokens with their
//! cluster time ([`SourcePosition::Mongo`](cdc_core::event::SourcePosition)).
//!
//! [`ChunkReader`] reads collections in `_id` chunks between two resume-point
//! reads, for backfills while the stream runs.
//!
//! Events are decoded from their BSON with checked reads ([`event`], which
//! has a fuzz target); the `mongodb` driver does the protocol.

mod backfill;
mod config;
pub mod document;
mod error;
pub mod event;
mod json;
mod snapshot;
mod source;
mod token;
mod transaction;

pub use backfill::MongoChunks;
pub use config::{ConnectionString, FullDocument, JsonMode, MongoConfig};
pub use error::{Error, Result};
pub use snapshot::{BackfillChunk, Chunk, ChunkKey, ChunkReader};
pub use source::MongoSource;
pub use transaction::Assembler;
