//! Running a migration from its saved stage.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::info;

use super::{MigrationPlan, MigrationStage, MigrationStatus};
use crate::ChangeLog;
use crate::backfill::{Backfill, BackfillConfig, BackfillError, Destination};
use crate::ingest::CancellationToken;
use crate::pipeline::{BoxedError, PipelineError, PipelineHandle};
use crate::progress_file::{ProgressFile, ProgressFileError};
use crate::verify::{Verification, VerifyConfig, VerifyError};

/// Settings of one migration.
#[derive(Debug, Clone)]
pub struct MigrationConfig {
    /// A directory of the migration's own: its stage, and each table's
    /// backfill and verification progress.
    pub dir: PathBuf,
    /// The new pipeline's name (its cursor), removed if the migration is
    /// abandoned.
    pub new_pipeline: String,
    /// The old pipeline's name, whose cursor is removed after the cut-over;
    /// `None` when there is none.
    pub old_pipeline: Option<String>,
    /// What the backfills do with rows the new target holds already.
    /// Default: truncate first, so the target ends as the source.
    pub destination: Destination,
    /// Log records the new pipeline may be behind to count as caught up.
    /// Default 1 000.
    pub max_lag_events: u64,
    /// How far behind the source it may be. Default 5 s.
    pub max_lag: Duration,
    /// How long catching up may take before the run fails (and can be run
    /// again). Default 10 minutes.
    pub catch_up_timeout: Duration,
    /// Source rows per verification chunk. Default 5 000.
    pub verify_chunk_rows: usize,
}

impl MigrationConfig {
    /// The defaults, for the pipelines named, kept in `dir`.
    pub fn new(
        dir: impl Into<PathBuf>,
        new_pipeline: impl Into<String>,
        old_pipeline: Option<String>,
    ) -> Self {
        Self {
            dir: dir.into(),
            new_pipeline: new_pipeline.into(),
            old_pipeline,
            destination: Destination::TruncateFirst,
            max_lag_events: 1_000,
            max_lag: Duration::from_secs(5),
            catch_up_timeout: Duration::from_secs(600),
            verify_chunk_rows: 5_000,
        }
    }
}

/// Errors of a migration. Its saved stage is kept: fix the cause and run it
/// again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The plan failed to give a reader, or the cut-over failed.
    #[error("the migration plan failed ({step}): {source}")]
    Plan {
        /// What was asked of the plan.
        step: &'static str,
        /// The plan's error.
        #[source]
        source: BoxedError,
    },
    /// A backfill failed.
    #[error("backfilling {table} failed: {source}")]
    Backfill {
        /// The table.
        table: String,
        /// The backfill's error.
        #[source]
        source: Box<BackfillError>,
    },
    /// A verification failed to run.
    #[error("verifying {table} failed: {source}")]
    Verify {
        /// The table.
        table: String,
        /// The verification's error.
        #[source]
        source: Box<VerifyError>,
    },
    /// The new target differs from the source. Nothing was cut over; find
    /// the cause (the report is in the table's verification progress file,
    /// which the next run replaces), then run again to compare again.
    #[error(
        "{table} differs from the source: {missing} missing, {extra} extra, {different} \
         different and {unsettled} unsettled rows; nothing was cut over"
    )]
    NotEqual {
        /// The table.
        table: String,
        /// Rows missing from the new target.
        missing: u64,
        /// Rows only the new target holds.
        extra: u64,
        /// Rows that differ.
        different: u64,
        /// Rows that changed at every comparison.
        unsettled: u64,
    },
    /// The new pipeline did not catch up in time; run again when the source
    /// is quieter, or raise the limits.
    #[error(
        "the new pipeline is still {events_behind} log records ({time_behind:?}) behind after \
         {waited:?}"
    )]
    CatchUpTimeout {
        /// How far behind it was, in log records.
        events_behind: u64,
        /// How far behind the source's clock, if known.
        time_behind: Option<Duration>,
        /// How long the run waited.
        waited: Duration,
    },
    /// The pipeline failed or stopped.
    #[error("pipeline error: {source}")]
    Pipeline {
        /// The pipeline's error.
        #[source]
        source: Box<PipelineError>,
    },
    /// A cursor could not be removed.
    #[error("removing cursor {name} failed: {source}")]
    Cursor {
        /// The cursor.
        name: String,
        /// The log's error.
        #[source]
        source: crate::Error,
    },
    /// The migration's state file could not be read or written.
    #[error("migration state file {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The host already cut over: the migration can no longer be abandoned.
    #[error("the migration is {stage:?}; it can no longer be abandoned")]
    TooLateToAbandon {
        /// The stage it is in.
        stage: MigrationStage,
    },
}

/// One migration from an old pipeline to a new one. See the
/// [module docs](super).
pub struct Migration<P> {
    plan: P,
    config: MigrationConfig,
    file: ProgressFile,
}

impl<P> std::fmt::Debug for Migration<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<P: MigrationPlan> Migration<P> {
    /// A migration of `plan`'s tables, kept in `config.dir`.
    pub fn new(plan: P, config: MigrationConfig) -> Self {
        let file = ProgressFile::new(&config.dir.join("migration.json"));
        Self { plan, config, file }
    }

    /// The saved state (the initial one before the first run).
    pub fn status(&self) -> Result<MigrationStatus, MigrationError> {
        self.file.load().map_err(|e| self.state_error(e))
    }

    /// Runs the migration on from its saved stage with `pipeline`, the new
    /// pipeline (running), until it is completed, `cancel` fires (between
    /// chunks and steps), or a step fails. Returns the state reached.
    pub async fn run(
        &mut self,
        pipeline: &PipelineHandle,
        cancel: &CancellationToken,
    ) -> Result<MigrationStatus, MigrationError> {
        std::fs::create_dir_all(&self.config.dir).map_err(|e| MigrationError::State {
            path: self.config.dir.clone(),
            reason: e.to_string(),
        })?;
        let mut status = self.status()?;
        while !cancel.is_cancelled() {
            let next = match status.stage {
                MigrationStage::Created => MigrationStage::Backfilling,
                MigrationStage::Backfilling => {
                    if !self.backfill(pipeline, cancel, &mut status).await? {
                        break;
                    }
                    MigrationStage::CatchingUp
                }
                MigrationStage::CatchingUp => {
                    self.catch_up(pipeline, cancel).await?;
                    if !self.verify(pipeline, cancel, &mut status).await? {
                        break;
                    }
                    MigrationStage::Verified
                }
                MigrationStage::Verified => {
                    self.plan
                        .cut_over()
                        .await
                        .map_err(|source| MigrationError::Plan {
                            step: "cutting over",
                            source,
                        })?;
                    MigrationStage::CutOver
                }
                MigrationStage::CutOver => {
                    if let Some(old) = &self.config.old_pipeline {
                        remove_cursor(&pipeline.log, old)?;
                    }
                    MigrationStage::Completed
                }
                MigrationStage::Completed | MigrationStage::Cancelled => break,
            };
            info!(stage = ?next, "migration stage reached");
            status.stage = next;
            self.save(&status)?;
        }
        Ok(status)
    }

    /// Abandons the migration before the cut-over: stops the new pipeline
    /// and removes its cursor. The old pipeline, the source and the new
    /// target's tables are left as they are.
    pub async fn abandon(
        &mut self,
        pipeline: PipelineHandle,
    ) -> Result<MigrationStatus, MigrationError> {
        let mut status = self.status()?;
        if status.stage >= MigrationStage::CutOver && status.stage != MigrationStage::Cancelled {
            return Err(MigrationError::TooLateToAbandon {
                stage: status.stage,
            });
        }
        let log = pipeline.log.clone();
        pipeline
            .shutdown()
            .await
            .map_err(|source| MigrationError::Pipeline {
                source: Box::new(source),
            })?;
        remove_cursor(&log, &self.config.new_pipeline)?;
        status.stage = MigrationStage::Cancelled;
        self.save(&status)?;
        Ok(status)
    }

    /// Backfills the tables not backfilled yet; false when cancelled.
    async fn backfill(
        &mut self,
        pipeline: &PipelineHandle,
        cancel: &CancellationToken,
        status: &mut MigrationStatus,
    ) -> Result<bool, MigrationError> {
        for table in self.plan.tables() {
            let name = table.to_string();
            if status.backfilled.contains(&name) {
                continue;
            }
            let chunks = self
                .plan
                .chunks(&table)
                .await
                .map_err(|source| MigrationError::Plan {
                    step: "opening a chunk reader",
                    source,
                })?;
            let mut config = BackfillConfig::new(self.config.dir.join(format!("{name}.backfill")));
            config.destination = self.config.destination;
            let summary = Backfill::new(chunks, config)
                .run(pipeline, cancel)
                .await
                .map_err(|source| MigrationError::Backfill {
                    table: name.clone(),
                    source: Box::new(source),
                })?;
            if !summary.done {
                return Ok(false);
            }
            status.backfilled.push(name);
            self.save(status)?;
        }
        Ok(true)
    }

    /// Waits until the new pipeline's lag is within the limits.
    async fn catch_up(
        &self,
        pipeline: &PipelineHandle,
        cancel: &CancellationToken,
    ) -> Result<(), MigrationError> {
        let started = Instant::now();
        loop {
            let lag = pipeline.lag();
            let close_in_time = lag.time_behind.unwrap_or_default() <= self.config.max_lag;
            if lag.events_behind <= self.config.max_lag_events && close_in_time {
                return Ok(());
            }
            if started.elapsed() > self.config.catch_up_timeout {
                return Err(MigrationError::CatchUpTimeout {
                    events_behind: lag.events_behind,
                    time_behind: lag.time_behind,
                    waited: started.elapsed(),
                });
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }

    /// Compares every table; false when cancelled.
    async fn verify(
        &mut self,
        pipeline: &PipelineHandle,
        cancel: &CancellationToken,
        status: &mut MigrationStatus,
    ) -> Result<bool, MigrationError> {
        status.verified.clear();
        for table in self.plan.tables() {
            let name = table.to_string();
            let (source, sink, columns) =
                self.plan
                    .readers(&table)
                    .await
                    .map_err(|source| MigrationError::Plan {
                        step: "opening table readers",
                        source,
                    })?;
            let path = self.config.dir.join(format!("{name}.verify"));
            let mut config = VerifyConfig::new(&path);
            config.chunk_rows = self.config.verify_chunk_rows;
            let report = Verification::new(source, sink, columns, config)
                .run(pipeline, cancel)
                .await
                .map_err(|source| MigrationError::Verify {
                    table: name.clone(),
                    source: Box::new(source),
                })?;
            if !report.done {
                return Ok(false);
            }
            // The next comparison starts afresh: the target may have changed.
            let _ = std::fs::remove_file(&path);
            if !report.is_equal() {
                return Err(MigrationError::NotEqual {
                    table: name,
                    missing: report.missing.count,
                    extra: report.extra.count,
                    different: report.different.count,
                    unsettled: report.unsettled.count,
                });
            }
            status.verified.push(name);
        }
        Ok(true)
    }

    fn save(&self, status: &MigrationStatus) -> Result<(), MigrationError> {
        self.file.save(status).map_err(|e| self.state_error(e))
    }

    fn state_error(&self, error: ProgressFileError) -> MigrationError {
        let reason = match error {
            ProgressFileError::Io(e) => e.to_string(),
            ProgressFileError::Corrupt(reason) => {
                format!("unreadable ({reason}); remove it to start over")
            }
        };
        MigrationError::State {
            path: self.file.path().to_path_buf(),
            reason,
        }
    }
}

/// Removes a pipeline's cursor; one already gone is fine (a run that
/// removed it and crashed before saving its stage).
fn remove_cursor(log: &ChangeLog, name: &str) -> Result<(), MigrationError> {
    match log.cursors().delete(name) {
        Ok(()) | Err(crate::Error::CursorNotFound { .. }) => Ok(()),
        Err(source) => Err(MigrationError::Cursor {
            name: name.to_owned(),
            source,
        }),
    }
}
