//! The loop that moves a source's batches into the change log.

use std::task::Poll;

use tracing::info;

use super::CancellationToken;
use super::in_flight::InFlight;
use super::open_tail::find_open_tail;
use super::redelivery::Redelivery;
use crate::event::{Record, SourcePosition};
use crate::pipeline::PipelineError;
use crate::{ChangeLog, Source};

/// Why [`run`] returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestStop {
    /// The source's stream ended (`next_batch` returned `Ok(None)`).
    SourceEnded,
    /// The shutdown token was cancelled.
    Shutdown,
}

/// What one [`run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    /// Batches received from the source.
    pub batches: u64,
    /// Records appended to the log.
    pub appended: u64,
    /// Re-delivered records dropped because the log already had them.
    pub skipped: u64,
    /// The log's last durable source position when the run ended.
    pub last_position: Option<SourcePosition>,
    /// Why the run ended.
    pub reason: IngestStop,
}

/// Reads `source` into `log` until the stream ends, `shutdown` is cancelled or an
/// error occurs.
///
/// Starts the source strictly after the log's last durable source position,
/// appends each batch minus anything re-delivered, and acknowledges the batch's
/// position only after the append is durable. Up to 4096 batches (65,536 records)
/// are in flight at once, so reading the source overlaps encoding, writing and
/// fsync; acknowledgements still follow source order. Batches the source has
/// ready one after another are appended together, up to 2048 records (or 512
/// batches) an append, so small transactions share encoding and fsync. A batch becomes
/// durable as soon as the source has nothing more ready, without waiting for
/// the next one; its acknowledgement is sent when the
/// runner next hears from the source (sources send heartbeats while idle) or
/// when it stops. A transaction the source splits over several batches is
/// appended part by part; when a crash left the log inside one, the
/// re-delivered copy fills in only what the log lacks.
/// Cancellation is honoured only between batches, and `run` returns only once
/// every batch it appended is durable (and, unless it failed, acknowledged).
/// After an error, calling `run` again resumes without loss or duplicates.
///
/// ```no_run
/// use cdc_core::ingest::CancellationToken;
/// # async fn example<S: cdc_core::Source>(mut source: S, log: cdc_core::ChangeLog)
/// # -> Result<(), cdc_core::pipeline::PipelineError> {
/// let shutdown = CancellationToken::new();
/// let stop = shutdown.clone();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     stop.cancel();
/// });
/// let summary = cdc_core::ingest::run(&mut source, &log, &shutdown).await?;
/// println!("appended {} records", summary.appended);
/// # Ok(()) }
/// ```
pub async fn run<S: Source>(
    source: &mut S,
    log: &ChangeLog,
    shutdown: &CancellationToken,
) -> Result<IngestSummary, PipelineError> {
    let mut last = log.last_source_position();
    let open_tail = find_open_tail(log)?;
    info!(resume_after = ?last, inside_transaction = open_tail.is_some(), "source runner starting");
    let mut redelivery = Redelivery::new(last.clone(), open_tail);
    // What a backfill checks its table against before copying it.
    log.declare_tables(source.tables());
    source.start(last.clone()).await.map_err(source_error)?;
    let mut summary = IngestSummary {
        batches: 0,
        appended: 0,
        skipped: 0,
        last_position: None,
        reason: IngestStop::SourceEnded,
    };
    // Batches appended and not yet acknowledged to the source, oldest first.
    let mut in_flight = InFlight::default();
    let outcome: Result<IngestStop, PipelineError> = async {
        loop {
            if shutdown.is_cancelled() {
                return Ok(IngestStop::Shutdown);
            }
            let next = {
                let next = source.next_batch();
                tokio::pin!(next);
                match futures::poll!(next.as_mut()) {
                    Poll::Ready(next) => next,
                    Poll::Pending => {
                        // The source has nothing ready: queue what was
                        // gathered, so it becomes durable while we wait. The
                        // same future is awaited on, so no batch is lost.
                        in_flight.flush(log);
                        tokio::select! {
                            biased;
                            () = shutdown.cancelled() => return Ok(IngestStop::Shutdown),
                            next = next => next,
                        }
                    }
                }
            }
            .map_err(source_error)?;
            let Some(batch) = next else {
                return Ok(IngestStop::SourceEnded);
            };
            summary.batches += 1;
            let received = batch.records.len() as u64;
            let kept = redelivery.keep_new(batch.records, &batch.position)?;
            summary.skipped += received - kept.len() as u64;
            if let Some(position) = last_durable_position(&kept) {
                last = Some(position);
            }
            summary.appended += kept.len() as u64;
            // Also for a fully re-delivered batch (an empty append): the log has
            // it, so the source may let go once everything before it is durable.
            in_flight.push(log, kept, batch.position);
            in_flight.advance(source).await?;
        }
    }
    .await;
    let drained = in_flight.finish(log, source, outcome.is_ok()).await;
    summary.reason = outcome?;
    drained?;
    summary.last_position = last;
    info!(
        reason = ?summary.reason,
        appended = summary.appended,
        skipped = summary.skipped,
        inside_transaction = redelivery.in_transaction(),
        "source runner stopped"
    );
    Ok(summary)
}

/// The position the log reports as last durable once `records` are appended.
fn last_durable_position(records: &[Record]) -> Option<SourcePosition> {
    records.iter().rev().find_map(|r| match r {
        Record::Commit(c) => Some(c.position.clone()),
        Record::Heartbeat(h) => Some(h.position.clone()),
        _ => None,
    })
}

pub(super) fn source_error<E: std::error::Error + Send + Sync + 'static>(
    error: E,
) -> PipelineError {
    PipelineError::Source {
        source: Box::new(error),
    }
}
