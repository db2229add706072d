//! The source batches between the runner and the source's acknowledgement: a
//! pipeline in source order. The runner decodes the next batch while earlier
//! ones are encoded on other tasks and written and fsynced by the log's writer;
//! positions are acknowledged strictly in order, each once durable.
//!
//! Batches that come in while the source has more ready are gathered into one
//! append (a group) of up to [`GROUP_RECORDS`] records, encoded on a task of its
//! own: many small transactions then share one encoding task, one writer
//! command and one fsync, and the runner's thread only decodes. The runner
//! flushes a smaller group as soon as the source has nothing ready.
//!
//! An encoding task queues its group in the log itself, right after the group
//! before it was queued, so batches become durable while the runner waits on an
//! idle source; only acknowledging waits for the runner.

use std::collections::VecDeque;
use std::ops::Range;

use futures::FutureExt;
use tokio::sync::oneshot::{self, error::TryRecvError};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::error::Error;
use crate::event::{Record, SourcePosition};
use crate::log::PendingAppend;
use crate::pipeline::PipelineError;
use crate::{ChangeLog, Source};

/// Batches in flight at most: enough to keep the writer busy while the source
/// produces the next batch, and to let their fsyncs group. Sources hand out a
/// batch per transaction, so with one-row transactions this is how many
/// transactions one fsync can cover: 50k single-row MySQL transactions took
/// 0.47 s with 64, 0.20 s with 4096.
const MAX_BATCHES: usize = 4096;
/// Records in flight at most, which bounds the memory that batches hold while
/// they wait (a split transaction's parts are large).
const MAX_RECORDS: usize = 65_536;
/// Encoding tasks running at once.
const MAX_ENCODING: usize = 2;
/// Groups with fewer records are encoded on the runner's task when nothing is
/// waiting to be queued before them. A task of its own pays off only for large
/// groups: MySQL, 500k rows into the log, a group per transaction: 100-row
/// transactions 0.29 s inline and 0.34 s on tasks; 1000-row transactions
/// 0.37 s inline and 0.27 s on tasks.
const MIN_RECORDS_TO_SPAWN: usize = 512;
/// The runner gathers batches into one group until it holds this many records.
/// MySQL, one transaction a batch, into the log: with groups of 512 records,
/// 200k rows in 10-row transactions took 0.157 s and 500k rows in 1000-row
/// transactions 0.213 s; with 2048, 0.135 s and 0.194 s; with 8192, 0.137 s
/// and 0.219 s.
const GROUP_RECORDS: usize = 2048;
/// A group also ends at this many batches (a re-delivered batch may hold no
/// record at all).
const GROUP_BATCHES: usize = 512;

/// What an encoding task hands back: the queued append, and the records it
/// encoded. They are freed on the runner's thread, where the source allocated
/// them: freed on the task's thread, they went to glibc's arena of the runner's
/// thread under its lock, which the runner's own allocations then waited for.
/// MySQL, 500k rows in 1000-row transactions into the log: 0.267 s freed on
/// the task, 0.216 s on the runner (medians of 7).
type Encoded = (crate::Result<PendingAppend>, Vec<Vec<Record>>);

/// Where one group is.
enum Stage {
    /// Being encoded, then queued in the log, by a task of its own.
    Encoding(JoinHandle<Encoded>),
    /// Queued in the log.
    Queued(PendingAppend),
}

/// One group: an append of one or more source batches.
struct Entry {
    stage: Stage,
    records: usize,
    /// The positions of its batches, in order.
    positions: Vec<SourcePosition>,
}

/// Source batches gathered for the next group.
#[derive(Default)]
struct Gathering {
    parts: Vec<Vec<Record>>,
    records: usize,
    positions: Vec<SourcePosition>,
}

/// The batches in flight, oldest first.
#[derive(Default)]
pub(super) struct InFlight {
    queue: VecDeque<Entry>,
    gathering: Gathering,
    /// Records and source batches pushed and not yet acknowledged.
    records: usize,
    batches: usize,
    /// Answers `true` once the newest group is queued in the log, `false` if it
    /// never will be; the next group is queued only after it.
    newest_queued: Option<oneshot::Receiver<bool>>,
    /// A group could not be queued; none after it may be.
    failed: bool,
    /// Entries whose stage is `Encoding`.
    encoding: usize,
}

impl InFlight {
    /// Takes `records`, the batch that completes `position`, into the next
    /// group, and queues that group once it is large enough.
    pub fn push(&mut self, log: &ChangeLog, records: Vec<Record>, position: SourcePosition) {
        self.records += records.len();
        self.batches += 1;
        let gathering = &mut self.gathering;
        gathering.records += records.len();
        gathering.parts.push(records);
        gathering.positions.push(position);
        if gathering.records >= GROUP_RECORDS || gathering.parts.len() >= GROUP_BATCHES {
            self.flush(log);
        }
    }

    /// Encodes the gathered batches as one group and queues it in the log
    /// behind every group before; the runner calls this whenever the source has
    /// nothing ready, so an idle source's batches become durable.
    pub fn flush(&mut self, log: &ChangeLog) {
        let Gathering {
            parts,
            records: count,
            positions,
        } = std::mem::take(&mut self.gathering);
        if positions.is_empty() {
            return;
        }
        let mut before = self.newest_queued.take();
        if let Some(rx) = &mut before {
            match rx.try_recv() {
                Ok(true) => before = None,
                Ok(false) | Err(TryRecvError::Closed) => self.failed = true,
                Err(TryRecvError::Empty) => {}
            }
        }
        let stage = if self.failed {
            // Nothing may be queued after a group that failed: the source would
            // resume after this one and the failed group would be lost.
            Stage::Queued(PendingAppend::failed(Error::Closed))
        } else if count < MIN_RECORDS_TO_SPAWN && before.is_none() {
            let submitted =
                ChangeLog::encode_parts(&parts).and_then(|encoded| log.submit_encoded(encoded));
            self.failed = submitted.is_err();
            Stage::Queued(submitted.unwrap_or_else(PendingAppend::failed))
        } else {
            let (queued, newest_queued) = oneshot::channel();
            self.newest_queued = Some(newest_queued);
            self.encoding += 1;
            let log = log.clone();
            Stage::Encoding(tokio::spawn(async move {
                let encoded = ChangeLog::encode_parts(&parts);
                let in_turn = match before {
                    None => true,
                    Some(rx) => rx.await.unwrap_or(false),
                };
                let submitted = if in_turn {
                    encoded.and_then(|encoded| log.submit_encoded(encoded))
                } else {
                    // An earlier group failed; its error is the one reported.
                    Err(Error::Closed)
                };
                let _ = queued.send(submitted.is_ok());
                // The records go back to be freed on the runner's thread, which
                // allocated them (see `Encoded`).
                (submitted, parts)
            }))
        };
        self.queue.push_back(Entry {
            stage,
            records: count,
            positions,
        });
    }

    fn over_limit(&self) -> bool {
        self.batches > MAX_BATCHES || self.records > MAX_RECORDS
    }

    /// Acknowledges, oldest first, every batch that is durable, waiting while
    /// more than the limits are in flight. Each position is acknowledged once.
    pub async fn advance<S: Source>(&mut self, source: &mut S) -> Result<(), PipelineError> {
        while self.encoding > MAX_ENCODING {
            self.wait_queued().await;
        }
        loop {
            let wait = self.over_limit();
            let Some(entry) = self.queue.front_mut() else {
                return Ok(());
            };
            let was_encoding = matches!(entry.stage, Stage::Encoding(_));
            let answer = durable_now(&mut entry.stage);
            if was_encoding && matches!(entry.stage, Stage::Queued(_)) {
                self.encoding -= 1;
            }
            let answer = match (wait, answer) {
                (_, Some(answer)) => Some(answer),
                (true, None) => None,
                (false, None) => return Ok(()),
            };
            let Some(entry) = self.queue.pop_front() else {
                return Ok(());
            };
            self.records -= entry.records;
            self.batches -= entry.positions.len();
            if matches!(entry.stage, Stage::Encoding(_)) {
                self.encoding -= 1;
            }
            match answer {
                Some(answer) => answer?,
                None => durable(entry.stage).await?,
            };
            acknowledge_all(source, &entry.positions).await?;
        }
    }

    /// Waits until the oldest encoding task has queued its group.
    async fn wait_queued(&mut self) {
        let Some(entry) = self
            .queue
            .iter_mut()
            .find(|e| matches!(e.stage, Stage::Encoding(_)))
        else {
            self.encoding = 0;
            return;
        };
        let Stage::Encoding(task) = &mut entry.stage else {
            return;
        };
        let queued = joined(task.await);
        entry.stage = Stage::Queued(queued.unwrap_or_else(PendingAppend::failed));
        self.encoding -= 1;
    }

    /// Ends the run: waits for every batch in flight, so nothing is still queued
    /// when the runner returns (a caller that runs again at once must see those
    /// batches durable, or it would append the source's re-delivery of them a
    /// second time), and acknowledges them in order while `acknowledge` holds
    /// and nothing has failed.
    pub async fn finish<S: Source>(
        &mut self,
        log: &ChangeLog,
        source: &mut S,
        acknowledge: bool,
    ) -> Result<(), PipelineError> {
        self.flush(log);
        let mut result = Ok(());
        while let Some(entry) = self.queue.pop_front() {
            self.records -= entry.records;
            self.batches -= entry.positions.len();
            let durable = durable(entry.stage).await;
            if !acknowledge || result.is_err() {
                continue;
            }
            result = match durable {
                Ok(_) => acknowledge_all(source, &entry.positions).await,
                Err(e) => Err(e.into()),
            };
        }
        self.newest_queued = None;
        self.failed = false;
        self.encoding = 0;
        result
    }
}

/// Acknowledges the positions of a durable group's batches, in order.
async fn acknowledge_all<S: Source>(
    source: &mut S,
    positions: &[SourcePosition],
) -> Result<(), PipelineError> {
    for position in positions {
        debug!(?position, "source batch durable");
        source
            .acknowledge(position)
            .await
            .map_err(super::runner::source_error)?;
    }
    Ok(())
}

/// The group's answer if it is already durable (or failed), without waiting.
fn durable_now(stage: &mut Stage) -> Option<crate::Result<Range<u64>>> {
    if let Stage::Encoding(task) = stage {
        if !task.is_finished() {
            return None;
        }
        let queued = joined(task.now_or_never()?);
        *stage = Stage::Queued(queued.unwrap_or_else(PendingAppend::failed));
    }
    match stage {
        Stage::Queued(pending) => (&mut *pending).now_or_never(),
        Stage::Encoding(_) => None,
    }
}

/// Waits until the group is durable (or failed).
async fn durable(stage: Stage) -> crate::Result<Range<u64>> {
    match stage {
        Stage::Encoding(task) => joined(task.await)?.await,
        Stage::Queued(pending) => pending.await,
    }
}

/// An encoding task's result; its panic is resumed here.
fn joined(result: Result<Encoded, tokio::task::JoinError>) -> crate::Result<PendingAppend> {
    match result {
        Ok((queued, _records)) => queued,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(Error::Closed),
        },
    }
}
