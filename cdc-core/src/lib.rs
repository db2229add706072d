//! # cdc-core
//!
//! The foundation of the CDC SDK: the [event model](event), the segmented
//! append-only change log, durable cursors, the [`Source`] and [`Sink`] contracts,
//! the pipeline runtime, [backfills](backfill) concurrent with streaming,
//! [verification](verify) of a sink against its source, and the
//! [online migration](migration) that puts them together.
//!
//! A source reader appends each source transaction to the change log once; any
//! number of pipelines consume it, each with its own durable cursor, and a
//! pipeline can copy its tables from the source while the log keeps growing.

pub mod backfill;
pub mod codec;
pub mod cursor;
pub mod error;
pub mod event;
pub mod ingest;
pub mod log;
pub mod migration;
pub mod pipeline;
mod progress_file;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod replay;
mod sink;
mod source;
pub mod verify;

pub use cursor::{CursorState, CursorStatus, CursorStore};
pub use error::{Error, Result};
pub use log::{
    ChangeLog, EncodedRecords, FsyncPolicy, LogConfig, LogEntry, LogOffsets, PendingAppend,
    RetentionPolicy, Subscription,
};
pub use sink::{Sink, SinkBatch, SinkEvent};
pub use source::{Source, SourceBatch};
