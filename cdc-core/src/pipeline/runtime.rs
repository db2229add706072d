//! The pipeline task: reads the log from its cursor, batches whole transactions,
//! applies them to the sink and commits the cursor after each applied batch.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info};

use super::batch::BatchAssembler;
use super::commit::CursorCommitter;
use super::handle::{Control, Progress};
use super::resume::resume_point;
use super::{
    PipelineConfig, PipelineError, PipelineHandle, PipelineState, PipelineSummary, StartFrom,
    StopReason,
};
use crate::event::{ArchivedRecord, Change, Record, TableSchema};
use crate::{ChangeLog, LogEntry, Sink, SinkBatch, SinkEvent, Subscription};

/// A consumer of the change log: a named durable cursor, a table filter and a sink.
///
/// # Guarantees
///
/// * The sink receives whole source transactions in log order, several per batch,
///   each batch at most `max_batch_records` events unless one transaction is larger.
///   A transaction of more than `max_transaction_records` events is handed over in
///   parts (bounded memory; atomicity on the target is given up for it only).
/// * The cursor is committed to `last_offset + 1` only after the sink applied the
///   batch, and never moves backwards. Commits run beside the next batch (see
///   the `commit` module): the cursor may trail the sink by one fsync's worth of
///   batches, and is exact whenever the pipeline is paused or stopped.
/// * A sink that stores offsets decides where the pipeline resumes, which makes
///   delivery exactly-once in effect; otherwise the cursor decides and a crash
///   between apply and commit re-delivers the last batch (at-least-once).
/// * A resume point older than the log's retention fails with
///   [`PipelineError::NeedsBackfill`]; records are never skipped silently.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use cdc_core::event::{Begin, Change, ChangeKind, Commit, Record, SourcePosition, TableName};
/// use cdc_core::event::{Column, DataType, TableSchema, Value};
/// use cdc_core::pipeline::{Pipeline, PipelineConfig};
/// use cdc_core::{ChangeLog, LogConfig, Sink, SinkBatch, SinkEvent};
///
/// /// A sink that counts the changes it applied (a real one writes a database).
/// struct Counter(Arc<Mutex<usize>>);
///
/// #[async_trait::async_trait]
/// impl Sink for Counter {
///     type Error = std::io::Error;
///     fn stores_offsets(&self) -> bool { false }
///     async fn stored_offset(&mut self) -> Result<Option<u64>, Self::Error> { Ok(None) }
///     async fn apply(&mut self, batch: &SinkBatch) -> Result<(), Self::Error> {
///         let changes = batch.events.iter().filter(|e| matches!(e, SinkEvent::Change { .. }));
///         *self.0.lock().unwrap() += changes.count();
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let log = ChangeLog::open(dir.path(), LogConfig::default())?;
/// let table = TableName::new("public", "orders");
/// let position = SourcePosition::Postgres { lsn: 100 };
/// let id = Column {
///     name: "id".into(),
///     data_type: DataType::Int { bits: 64, signed: true },
///     source_type: "bigint".into(),
///     nullable: false,
/// };
/// log.append(vec![
///     Record::Schema(TableSchema { table: table.clone(), columns: vec![id], primary_key: vec![0] }),
///     Record::Begin(Begin { txid: None, position: position.clone(), commit_time_micros: 0 }),
///     Record::Change(Change {
///         table,
///         kind: ChangeKind::Insert,
///         before: None,
///         after: Some(vec![Value::Int(1)]),
///         position: position.clone(),
///         txid: None,
///         commit_time_micros: 0,
///     }),
///     Record::Commit(Commit { txid: None, position, commit_time_micros: 0 }),
/// ])
/// .await?;
///
/// let applied = Arc::new(Mutex::new(0));
/// let handle = Pipeline::new(log.clone(), PipelineConfig::new("to-warehouse"), Counter(applied.clone()))?
///     .start()
///     .await?;
/// // Pause exactly at the log's durable end: everything before it is applied.
/// handle.pause_at(log.offsets().durable).await?;
/// assert_eq!(*applied.lock().unwrap(), 1);
/// handle.resume().await?;
/// let summary = handle.shutdown().await?;
/// assert_eq!(summary.next_offset, 4);
/// # Ok(()) }
/// ```
pub struct Pipeline<K> {
    log: ChangeLog,
    config: PipelineConfig,
    sink: K,
}

impl<K: Sink + 'static> Pipeline<K> {
    /// Prepares a pipeline; fails if the configuration is invalid.
    pub fn new(log: ChangeLog, config: PipelineConfig, sink: K) -> Result<Self, PipelineError> {
        config.validate()?;
        Ok(Self { log, config, sink })
    }

    /// Creates the cursor if needed, picks the resume offset (the sink's stored
    /// offset + 1 if it has one, else the cursor) and spawns the pipeline task.
    ///
    /// Must be called inside a tokio runtime.
    pub async fn start(self) -> Result<PipelineHandle, PipelineError> {
        let Pipeline {
            log,
            config,
            mut sink,
        } = self;
        let cursor = open_cursor(&log, &config)?;
        let sink_offset = if sink.stores_offsets() {
            sink.stored_offset()
                .await
                .map_err(|e| PipelineError::SinkOffset {
                    source: Box::new(e),
                })?
        } else {
            None
        };
        let read_from = resume_point(&config.name, cursor, sink_offset, log.offsets())?;
        info!(pipeline = %config.name, cursor, ?sink_offset, read_from, "pipeline starting");

        let progress = Arc::new(Progress::new(read_from));
        let (control_tx, control) = mpsc::channel(8);
        let (state_tx, state) = watch::channel(PipelineState::Running);
        let runtime = Runtime {
            subscription: log.subscribe(read_from),
            log: log.clone(),
            assembler: BatchAssembler::new(
                config.tables.clone(),
                config.max_batch_records,
                config.max_transaction_records,
            ),
            committer: CursorCommitter::new(log.clone(), config.name.clone(), cursor),
            config,
            sink,
            next: read_from,
            pause_waiters: Vec::new(),
            progress: progress.clone(),
            control,
            state: state_tx,
            batches: 0,
            events: 0,
        };
        let task = tokio::spawn(runtime.run());
        Ok(PipelineHandle {
            log,
            progress,
            control: control_tx,
            state,
            task,
            copy_turn: Arc::default(),
        })
    }
}

/// Reads the cursor, creating it at the configured start if it does not exist.
fn open_cursor(log: &ChangeLog, config: &PipelineConfig) -> Result<u64, PipelineError> {
    if let Some(offset) = log.cursors().get(&config.name)? {
        return Ok(offset);
    }
    let offsets = log.offsets();
    let offset = match config.start {
        StartFrom::LogStart => offsets.start,
        StartFrom::LogEnd => offsets.durable,
    };
    log.cursors().create(&config.name, offset)?;
    info!(pipeline = %config.name, offset, "cursor created");
    Ok(offset)
}

struct Runtime<K> {
    log: ChangeLog,
    config: PipelineConfig,
    sink: K,
    subscription: Subscription,
    assembler: BatchAssembler,
    committer: CursorCommitter,
    /// Next offset to read from the subscription.
    next: u64,
    /// Pause requests not yet reached: the offset and who to tell.
    pause_waiters: Vec<(u64, oneshot::Sender<Result<u64, PipelineError>>)>,
    progress: Arc<Progress>,
    control: mpsc::Receiver<Control>,
    state: watch::Sender<PipelineState>,
    batches: u64,
    events: u64,
}

/// What the loop does after one step.
enum Step {
    Continue,
    Stop(StopReason),
}

impl<K: Sink> Runtime<K> {
    async fn run(mut self) -> Result<PipelineSummary, PipelineError> {
        let mut result = self.run_loop().await;
        // Also after a failure, make durable the cursor of what the sink applied.
        let settled = self.committer.settle().await;
        if let (Ok(_), Err(e)) = (&result, settled) {
            result = Err(e);
        }
        self.state.send_replace(PipelineState::Stopped);
        match &result {
            Ok(summary) => {
                info!(pipeline = %self.config.name, next_offset = summary.next_offset, reason = ?summary.reason, "pipeline stopped")
            }
            Err(e) => tracing::error!(pipeline = %self.config.name, error = %e, "pipeline failed"),
        }
        result
    }

    async fn run_loop(&mut self) -> Result<PipelineSummary, PipelineError> {
        let reason = loop {
            if let Step::Stop(reason) = self.pause_if_due().await? {
                break reason;
            }
            if let Step::Stop(reason) = self.step().await? {
                break reason;
            }
        };
        // Graceful: apply what is complete, leave an open transaction for next time.
        self.flush().await?;
        Ok(PipelineSummary {
            next_offset: self
                .progress
                .next_offset
                .load(std::sync::atomic::Ordering::Acquire),
            batches: self.batches,
            events: self.events,
            reason,
        })
    }

    /// Waits for one of: a control request, the batch delay, the next log record.
    async fn step(&mut self) -> Result<Step, PipelineError> {
        let deadline = self.assembler.deadline(self.config.max_batch_delay);
        let sleep_until = deadline.unwrap_or_else(Instant::now);
        tokio::select! {
            biased;
            control = self.control.recv() => self.on_control(control),
            done = self.committer.finish_one(), if self.committer.is_busy() => {
                done?;
                Ok(Step::Continue)
            }
            () = tokio::time::sleep_until(sleep_until.into()), if deadline.is_some() => {
                self.flush().await?;
                Ok(Step::Continue)
            }
            entry = self.subscription.next() => {
                let Some(entry) = entry else {
                    return Ok(Step::Stop(StopReason::LogClosed));
                };
                let entry = entry.map_err(|e| self.read_error(e))?;
                if entry.offset != self.next {
                    return Err(PipelineError::MalformedLog {
                        offset: entry.offset,
                        reason: "the log skipped an offset",
                    });
                }
                match self.decode(&entry)? {
                    Some(record) => self.assembler.push(entry.offset, record, &self.log)?,
                    None => self.assembler.skip(entry.offset),
                }
                self.next = entry.offset + 1;
                let overdue = self
                    .assembler
                    .deadline(self.config.max_batch_delay)
                    .is_some_and(|d| d <= Instant::now());
                if self.assembler.is_full() || overdue {
                    self.flush().await?;
                }
                Ok(Step::Continue)
            }
        }
    }

    fn on_control(&mut self, control: Option<Control>) -> Result<Step, PipelineError> {
        match control {
            None | Some(Control::Shutdown) => Ok(Step::Stop(StopReason::Shutdown)),
            Some(Control::Resume) => Ok(Step::Continue),
            Some(Control::PauseNow { paused }) => {
                self.pause_waiters.push((self.next, paused));
                Ok(Step::Continue)
            }
            Some(Control::Copy { applied, .. }) => {
                let _ = applied.send(Err(PipelineError::NotPaused));
                Ok(Step::Continue)
            }
            Some(Control::PauseAt { offset, paused }) => {
                if offset < self.next {
                    // The requester may have gone away; nothing else to do.
                    let _ = paused.send(Err(PipelineError::PausePassed {
                        requested: offset,
                        next: self.next,
                    }));
                } else {
                    self.pause_waiters.push((offset, paused));
                }
                Ok(Step::Continue)
            }
        }
    }

    /// Pauses once every record before the requested offset is read, outside a
    /// transaction; then holds until resumed or shut down.
    async fn pause_if_due(&mut self) -> Result<Step, PipelineError> {
        let target = self.pause_waiters.iter().map(|(offset, _)| *offset).min();
        let due = target.is_some_and(|t| self.next >= t && !self.assembler.in_transaction());
        if !due {
            return Ok(Step::Continue);
        }
        self.flush().await?;
        self.committer.settle().await?;
        let at = self.next;
        self.progress.applied(at, None);
        info!(pipeline = %self.config.name, at, "pipeline paused");
        self.state.send_replace(PipelineState::Paused { at });
        self.answer_waiters_up_to(at);
        loop {
            match self.control.recv().await {
                None | Some(Control::Shutdown) => return Ok(Step::Stop(StopReason::Shutdown)),
                Some(Control::Resume) => break,
                Some(Control::PauseNow { paused }) => {
                    let _ = paused.send(Ok(at));
                }
                Some(Control::Copy {
                    read_at, applied, ..
                }) if read_at != at => {
                    let _ = applied.send(Err(PipelineError::CopyPassed {
                        read_at,
                        paused_at: at,
                    }));
                }
                Some(Control::Copy {
                    schema,
                    changes,
                    applied,
                    ..
                }) => {
                    match self.apply_copied(at, schema, changes).await {
                        Err(PipelineError::Sink {
                            last_offset,
                            source,
                        }) => {
                            // A failed sink stops the pipeline, as after any
                            // failed batch; the caller gets the error itself.
                            let stopped = PipelineError::Sink {
                                last_offset,
                                source: source.to_string().into(),
                            };
                            let _ = applied.send(Err(PipelineError::Sink {
                                last_offset,
                                source,
                            }));
                            return Err(stopped);
                        }
                        result => {
                            let _ = applied.send(result);
                        }
                    }
                }
                Some(Control::PauseAt { offset, paused }) if offset <= at => {
                    let reply = if offset == at {
                        Ok(at)
                    } else {
                        Err(PipelineError::PausePassed {
                            requested: offset,
                            next: at,
                        })
                    };
                    let _ = paused.send(reply);
                }
                Some(Control::PauseAt { offset, paused }) => {
                    // Run on to the later offset.
                    self.pause_waiters.push((offset, paused));
                    break;
                }
            }
        }
        info!(pipeline = %self.config.name, at, "pipeline resumed");
        self.state.send_replace(PipelineState::Running);
        Ok(Step::Continue)
    }

    /// Applies copied rows in one sink batch that moves no offset.
    async fn apply_copied(
        &mut self,
        at: u64,
        schema: Arc<TableSchema>,
        changes: Vec<Change>,
    ) -> Result<(), PipelineError> {
        let table = &schema.table;
        if !self.config.tables.allows(table) {
            return Err(PipelineError::CopyOutsideFilter {
                table: table.clone(),
            });
        }
        let events = changes
            .into_iter()
            .map(|change| SinkEvent::Change {
                offset: at,
                schema: schema.clone(),
                change,
            })
            .collect();
        let batch = SinkBatch {
            events,
            last_offset: at,
            copied: true,
        };
        self.sink
            .apply(&batch)
            .await
            .map_err(|e| PipelineError::Sink {
                last_offset: at.saturating_sub(1),
                source: Box::new(e),
            })?;
        self.batches += 1;
        self.events += batch.events.len() as u64;
        Ok(())
    }

    /// Tells every pause request at or below `at` that the pipeline holds at `at`.
    fn answer_waiters_up_to(&mut self, at: u64) {
        let (reached, waiting) = std::mem::take(&mut self.pause_waiters)
            .into_iter()
            .partition(|(offset, _)| *offset <= at);
        self.pause_waiters = waiting;
        for (_, paused) in reached {
            let _ = paused.send(Ok(at));
        }
    }

    /// Applies the completed transactions and commits the cursor past them.
    async fn flush(&mut self) -> Result<(), PipelineError> {
        let Some(ready) = self.assembler.take_ready() else {
            return Ok(());
        };
        let last_offset = ready.batch.last_offset;
        // A batch of only filtered records still moves a sink's stored offset, so a
        // restart does not re-read them; a sink without offsets has nothing to do.
        if !ready.batch.events.is_empty() || self.sink.stores_offsets() {
            self.sink
                .apply(&ready.batch)
                .await
                .map_err(|e| PipelineError::Sink {
                    last_offset,
                    source: Box::new(e),
                })?;
            self.batches += 1;
            self.events += ready.batch.events.len() as u64;
        }
        let next = last_offset + 1;
        self.committer.request(next);
        self.progress.applied(next, ready.source_time_micros);
        debug!(pipeline = %self.config.name, last_offset, events = ready.batch.events.len(), "batch applied");
        Ok(())
    }

    /// The owned record, or `None` for a change of a table the filter drops: that
    /// is judged on the validated archive, so dropped rows are never deserialized.
    fn decode(&self, entry: &LogEntry) -> Result<Option<Record>, PipelineError> {
        let archived = entry.archived()?;
        if let ArchivedRecord::Change(change) = archived {
            let table = &change.table;
            if !self
                .config
                .tables
                .allows_parts(table.schema.as_str(), table.name.as_str())
            {
                return Ok(None);
            }
        }
        match rkyv::deserialize::<Record, rkyv::rancor::Error>(archived) {
            Ok(record) => Ok(Some(record)),
            // Not expected after validation; decoding again yields the log's own error.
            Err(_) => Ok(Some(entry.record()?)),
        }
    }

    fn read_error(&self, error: crate::Error) -> PipelineError {
        match error {
            crate::Error::OffsetBehindRetention { requested, oldest } => {
                PipelineError::NeedsBackfill {
                    name: self.config.name.clone(),
                    offset: requested,
                    oldest_retained: oldest,
                }
            }
            other => other.into(),
        }
    }
}
