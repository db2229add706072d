//! Controlling a running pipeline: lag, pause at an exact offset, resume, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{Lag, PipelineError};
use crate::ChangeLog;
use crate::event::{Change, TableSchema, now_micros};

/// What a pipeline is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineState {
    /// Reading the log and applying batches.
    Running,
    /// Holding: every record before `at` is applied (the cursor is at `at`, or
    /// further if a sink restored from a backup is being re-fed); nothing at or
    /// after `at` has been given to the sink.
    Paused {
        /// The next offset the pipeline will apply.
        at: u64,
    },
    /// The pipeline task has ended; see [`PipelineHandle::join`].
    Stopped,
}

/// Why a pipeline stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`PipelineHandle::shutdown`] was called or the handle was dropped.
    Shutdown,
    /// The change log was closed.
    LogClosed,
}

/// What a pipeline did before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineSummary {
    /// The next offset the pipeline would apply; its cursor is at least here.
    pub next_offset: u64,
    /// Batches handed to the sink in this run.
    pub batches: u64,
    /// Events (schemas and changes) handed to the sink in this run.
    pub events: u64,
    /// Why it stopped.
    pub reason: StopReason,
}

/// Requests from the handle to the pipeline task.
#[derive(Debug)]
pub(crate) enum Control {
    /// Answered with the offset once paused there, or why not.
    PauseAt {
        offset: u64,
        paused: oneshot::Sender<Result<u64, PipelineError>>,
    },
    /// Pause at the first transaction boundary at or after what was read.
    PauseNow {
        paused: oneshot::Sender<Result<u64, PipelineError>>,
    },
    /// Apply rows copied from the source; only while paused at `read_at`.
    Copy {
        read_at: u64,
        schema: Arc<TableSchema>,
        changes: Vec<Change>,
        applied: oneshot::Sender<Result<(), PipelineError>>,
    },
    Resume,
    Shutdown,
}

/// Progress the pipeline task publishes for [`PipelineHandle::lag`].
#[derive(Debug)]
pub(crate) struct Progress {
    /// Next offset to apply: every offset below it is applied.
    pub next_offset: AtomicU64,
    /// Source time of the last applied unit, `i64::MIN` when none.
    pub source_time_micros: AtomicI64,
}

impl Progress {
    pub(crate) fn new(next_offset: u64) -> Self {
        Self {
            next_offset: AtomicU64::new(next_offset),
            source_time_micros: AtomicI64::new(i64::MIN),
        }
    }

    pub(crate) fn applied(&self, next_offset: u64, source_time_micros: Option<i64>) {
        self.next_offset.store(next_offset, Ordering::Release);
        if let Some(t) = source_time_micros {
            self.source_time_micros.store(t, Ordering::Release);
        }
    }
}

/// Controls a pipeline started with [`Pipeline::start`](super::Pipeline::start).
///
/// Dropping the handle shuts the pipeline down gracefully in the background.
pub struct PipelineHandle {
    pub(crate) log: ChangeLog,
    pub(crate) progress: Arc<Progress>,
    pub(crate) control: mpsc::Sender<Control>,
    pub(crate) state: watch::Receiver<PipelineState>,
    pub(crate) task: JoinHandle<Result<PipelineSummary, PipelineError>>,
    /// Taken by a backfill for one hold (pause, chunk reads and applies,
    /// resume), so backfills of one pipeline take turns.
    pub(crate) copy_turn: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for PipelineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineHandle")
            .field("state", &self.state())
            .field("next_offset", &self.next_offset())
            .finish_non_exhaustive()
    }
}

impl PipelineHandle {
    /// What the pipeline is doing now.
    pub fn state(&self) -> PipelineState {
        *self.state.borrow()
    }

    /// The next offset the pipeline will apply: every offset below it is in the sink.
    pub fn next_offset(&self) -> u64 {
        self.progress.next_offset.load(Ordering::Acquire)
    }

    /// How far the sink is behind the log's durable end, in records and in time.
    pub fn lag(&self) -> Lag {
        let time = self.progress.source_time_micros.load(Ordering::Acquire);
        Lag::compute(
            self.log.offsets().durable,
            self.next_offset(),
            (time != i64::MIN).then_some(time),
            now_micros(),
        )
    }

    /// Makes the pipeline apply everything before `offset`, then hold, and waits
    /// until it does; returns the offset it holds at.
    ///
    /// That is `offset` itself whenever `offset` is a transaction boundary, which
    /// every [`LogOffsets`](crate::LogOffsets) value is, except while a source is
    /// appending a transaction it split into parts. An offset inside a transaction
    /// pauses right after that transaction's commit. Fails with
    /// [`PipelineError::PausePassed`] if the pipeline has already read past
    /// `offset`, and [`PipelineError::Stopped`] if it stops first. Several pause
    /// requests may wait at once; the pipeline holds at the lowest, and a request
    /// made while it holds at a lower offset lets it run on to the new one.
    ///
    /// ```no_run
    /// # async fn verify(handle: &cdc_core::pipeline::PipelineHandle, log: &cdc_core::ChangeLog)
    /// # -> Result<(), cdc_core::pipeline::PipelineError> {
    /// let at = handle.pause_at(log.offsets().durable).await?;
    /// // The sink now holds exactly the records before `at`: compare it with the source.
    /// handle.resume().await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause_at(&self, offset: u64) -> Result<u64, PipelineError> {
        let (paused, reply) = oneshot::channel();
        self.send(Control::PauseAt { offset, paused }).await?;
        // The task drops the sender if it stops before pausing.
        reply.await.map_err(|_| PipelineError::Stopped)?
    }

    /// Makes the pipeline hold as soon as it can: after the records it has
    /// already read (and, inside a source transaction, after its commit), all
    /// applied. Returns the offset it holds at. Unlike
    /// [`pause_at`](Self::pause_at) it cannot have been passed.
    pub async fn pause_now(&self) -> Result<u64, PipelineError> {
        let (paused, reply) = oneshot::channel();
        self.send(Control::PauseNow { paused }).await?;
        reply.await.map_err(|_| PipelineError::Stopped)?
    }

    /// Applies rows copied from the source to the sink, in one sink
    /// transaction, at the offset the paused pipeline holds at; the pipeline
    /// then applies the log from that offset on, over them.
    ///
    /// The rows must have been read from the source (each row after the
    /// pause began) while the pipeline held at `read_at`, the offset
    /// [`pause_now`](Self::pause_now) returned: every change logged after it then
    /// either is in them already or comes after them, and applying the log in
    /// order over them ends in the source's state. This is what a
    /// [backfill](crate::backfill) does, chunk by chunk. `changes` are
    /// snapshot reads, or a truncate to empty the target table first; the
    /// sink's stored offset does not move ([`SinkBatch::copied`](crate::SinkBatch::copied)).
    ///
    /// Fails with [`PipelineError::NotPaused`] unless paused, with
    /// [`PipelineError::CopyPassed`] if it holds at another offset than
    /// `read_at` (it was resumed meanwhile), and with
    /// [`PipelineError::CopyOutsideFilter`] for a table the filter drops.
    pub async fn apply_copied(
        &self,
        read_at: u64,
        schema: Arc<TableSchema>,
        changes: Vec<Change>,
    ) -> Result<(), PipelineError> {
        let (applied, reply) = oneshot::channel();
        self.send(Control::Copy {
            read_at,
            schema,
            changes,
            applied,
        })
        .await?;
        reply.await.map_err(|_| PipelineError::Stopped)?
    }

    /// Lets a paused pipeline continue. Does nothing to a running one.
    pub async fn resume(&self) -> Result<(), PipelineError> {
        self.send(Control::Resume).await
    }

    /// Stops gracefully: the completed transactions already read are applied and
    /// the cursor committed; an open transaction is left for the next run.
    pub async fn shutdown(self) -> Result<PipelineSummary, PipelineError> {
        // A closed channel means the task already ended; join reports how.
        let _ = self.control.send(Control::Shutdown).await;
        self.join().await
    }

    /// Waits for the pipeline to stop by itself (the log closed, or an error).
    pub async fn join(self) -> Result<PipelineSummary, PipelineError> {
        self.task.await.map_err(|_| PipelineError::Panicked)?
    }

    async fn send(&self, control: Control) -> Result<(), PipelineError> {
        self.control
            .send(control)
            .await
            .map_err(|_| PipelineError::Stopped)
    }
}
