//! The source runner: drives a [`Source`](crate::Source) into a
//! [`ChangeLog`](crate::ChangeLog).
//!
//! The loop is `start(last durable position)`, then for each batch: drop what the
//! log already has, append the rest (resolving only once durable under the log's
//! fsync policy), and only then acknowledge the batch's position to the source.
//! Batches are pipelined: while the runner reads the next batch, earlier ones are
//! encoded on other tasks and written and fsynced by the log, and their positions
//! are acknowledged in source order as each becomes durable.
//! So a source never releases a change that is not durable in the log, and a
//! crash between append and acknowledge, which makes the source re-deliver, never
//! appends a duplicate: re-delivered transactions compare not after the log's last
//! durable position and are dropped.

mod in_flight;
mod open_tail;
mod redelivery;
mod runner;

pub use runner::{IngestStop, IngestSummary, run};
/// The token that stops [`run`] between batches (re-exported from tokio-util).
pub use tokio_util::sync::CancellationToken;
