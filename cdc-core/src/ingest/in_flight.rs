//! The source batches between the runner and the source's acknowledgement: a
//! three-stage pipeline in source order. The runner decodes the next batch while
//! earlier ones are encoded on other tasks and written and fsynced by the log's
//! writer; positions are acknowledged strictly in order, each once durable.

use std::collections::VecDeque;

use futures::FutureExt;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::error::Error;
use crate::event::{Record, SourcePosition};
use crate::log::{EncodedRecords, PendingAppend};
use crate::pipeline::PipelineError;
use crate::{ChangeLog, Source};

/// Batches in flight at most: enough to keep the writer busy while the source
/// produces the next batch, and to let their fsyncs group.
const MAX_BATCHES: usize = 64;
/// Records in flight at most, which bounds the memory that batches hold while
/// they wait (a split transaction's parts are large).
const MAX_RECORDS: usize = 65_536;
/// Encodings running at once on other tasks.
const MAX_ENCODING: usize = 2;
/// Batches with fewer records are encoded on the runner's task: a task per
/// small transaction costs more than it saves.
const MIN_RECORDS_TO_SPAWN: usize = 64;

/// One batch being encoded.
enum Encoding {
    Done(crate::Result<EncodedRecords>),
    Running(JoinHandle<crate::Result<EncodedRecords>>),
}

/// The batches in flight, oldest first in each stage.
#[derive(Default)]
pub(super) struct InFlight {
    encoding: VecDeque<(Encoding, usize, SourcePosition)>,
    queued: VecDeque<(PendingAppend, usize, SourcePosition)>,
    records: usize,
}

impl InFlight {
    /// Starts encoding `records`, the batch that completes `position`.
    pub fn push(&mut self, records: Vec<Record>, position: SourcePosition) {
        let count = records.len();
        self.records += count;
        let encoding = if count < MIN_RECORDS_TO_SPAWN {
            Encoding::Done(ChangeLog::encode(records))
        } else {
            Encoding::Running(tokio::spawn(async move { ChangeLog::encode(records) }))
        };
        self.encoding.push_back((encoding, count, position));
    }

    fn batches(&self) -> usize {
        self.encoding.len() + self.queued.len()
    }

    fn over_limit(&self) -> bool {
        self.batches() > MAX_BATCHES || self.records > MAX_RECORDS
    }

    /// Queues finished encodings in the log, in order, waiting for the oldest
    /// while too many run (or, with `all`, for every one).
    async fn queue_encoded(&mut self, log: &ChangeLog, all: bool) -> Result<(), PipelineError> {
        loop {
            let wait = all || self.encoding.len() > MAX_ENCODING;
            let Some((encoding, _, _)) = self.encoding.front() else {
                return Ok(());
            };
            let finished = match encoding {
                Encoding::Done(_) => true,
                Encoding::Running(task) => task.is_finished(),
            };
            if !(wait || finished) {
                return Ok(());
            }
            let Some((encoding, count, position)) = self.encoding.pop_front() else {
                return Ok(());
            };
            let encoded = match encoding {
                Encoding::Done(encoded) => encoded,
                Encoding::Running(task) => {
                    task.await.unwrap_or_else(|e| match e.try_into_panic() {
                        Ok(panic) => std::panic::resume_unwind(panic),
                        Err(_) => Err(Error::Closed),
                    })
                }
            };
            match encoded.and_then(|encoded| log.submit_encoded(encoded)) {
                Ok(pending) => self.queued.push_back((pending, count, position)),
                Err(e) => {
                    self.records -= count;
                    return Err(e.into());
                }
            }
        }
    }

    /// Moves batches along: queues finished encodings in the log and
    /// acknowledges, oldest first, every batch that is durable, waiting while
    /// more than the limits are in flight. Each position is acknowledged once.
    pub async fn advance<S: Source>(
        &mut self,
        log: &ChangeLog,
        source: &mut S,
    ) -> Result<(), PipelineError> {
        loop {
            self.queue_encoded(log, false).await?;
            let wait = self.over_limit();
            let Some((pending, _, _)) = self.queued.front_mut() else {
                if wait {
                    // Everything in flight is still encoding.
                    self.queue_encoded(log, true).await?;
                    continue;
                }
                return Ok(());
            };
            let answer = if wait {
                None
            } else {
                match pending.now_or_never() {
                    Some(answer) => Some(answer),
                    None => return Ok(()),
                }
            };
            let Some((pending, count, position)) = self.queued.pop_front() else {
                return Ok(());
            };
            self.records -= count;
            match answer {
                Some(answer) => answer?,
                None => pending.await?,
            };
            debug!(?position, "source batch durable");
            source
                .acknowledge(&position)
                .await
                .map_err(super::runner::source_error)?;
        }
    }

    /// Ends the run: with `acknowledge`, queues every remaining batch and
    /// acknowledges each once durable; otherwise (after an error) queues nothing
    /// more. Either way it waits for every append already queued, so nothing is
    /// still in flight when the runner returns: a caller that runs again at once
    /// must see those batches durable, or it would append the source's
    /// re-delivery of them a second time.
    pub async fn finish<S: Source>(
        &mut self,
        log: &ChangeLog,
        source: &mut S,
        acknowledge: bool,
    ) -> Result<(), PipelineError> {
        let mut result = if acknowledge {
            self.queue_encoded(log, true).await
        } else {
            Ok(())
        };
        // Encodings not queued are dropped; their tasks end on their own.
        self.encoding.clear();
        while let Some((pending, count, position)) = self.queued.pop_front() {
            self.records -= count;
            let durable = pending.await;
            if acknowledge && result.is_ok() {
                result = match durable {
                    Ok(_) => source
                        .acknowledge(&position)
                        .await
                        .map_err(super::runner::source_error),
                    Err(e) => Err(e.into()),
                };
            }
        }
        self.records = 0;
        result
    }
}
