//! The pipeline runtime: one consumer of the change log delivering to one sink.
//!
//! A [`Pipeline`] owns a named durable cursor, a [`TableFilter`] and a
//! [`Sink`](crate::Sink). It follows the log with a subscription from its resume
//! point, turns records into [`SinkBatch`](crate::SinkBatch)es of whole source
//! transactions (schemas resolved from the log, a schema event the first time a
//! table is seen in a run and at every schema record), applies each batch and then
//! commits the cursor. The [`PipelineHandle`] reports lag, pauses at an exact
//! offset for verification, resumes and shuts down gracefully.
//!
//! Backpressure: the task awaits the sink before it reads further, so a slow sink
//! slows reading and nothing is buffered beyond one batch, except that one
//! source transaction always goes whole into one batch (the sink applies a batch
//! atomically), so memory is bounded by `max(max_batch_records, largest
//! transaction)` plus the log subscription's read-ahead.

mod batch;
mod commit;
mod config;
mod error;
mod filter;
mod handle;
mod lag;
mod resume;
mod runtime;

pub use config::{PipelineConfig, StartFrom};
pub use error::{BoxedError, PipelineError};
pub use filter::{TableFilter, TablePattern};
pub use handle::{PipelineHandle, PipelineState, PipelineSummary, StopReason};
pub use lag::Lag;
pub use runtime::Pipeline;
