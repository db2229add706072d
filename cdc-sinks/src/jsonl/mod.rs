//! The JSON-lines file sink: Debezium change-event envelopes in rolled files.
//!
//! Each batch's lines are appended and fsynced, then the batch's offset is
//! committed in a sidecar file (write-temp, fsync, rename). On open, lines after
//! the committed position are cut off, so a restarted pipeline neither loses
//! nor repeats a line. See `connection` for the file layout.

mod apply;
mod config;
mod connection;
mod mapping;

use std::collections::HashMap;

use async_trait::async_trait;
use cdc_core::event::TableName;
use cdc_core::{Sink, SinkBatch};

pub use config::JsonlConfig;

use crate::error::{Result, SinkError};
use crate::mapping::TargetTable;
use connection::Files;

/// A sink writing JSON lines files.
pub struct JsonlSink {
    config: JsonlConfig,
    files: Option<Files>,
    tables: HashMap<TableName, TargetTable>,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JsonlSink {
    /// Opens the directory, cutting off anything written after the last commit.
    pub async fn open(config: JsonlConfig) -> Result<Self> {
        config.validate()?;
        let c = config.clone();
        let files = tokio::task::spawn_blocking(move || Files::open(&c))
            .await
            .map_err(|_| SinkError::WorkerGone)??;
        Ok(Self {
            config,
            files: Some(files),
            tables: HashMap::new(),
        })
    }
}

#[async_trait]
impl Sink for JsonlSink {
    type Error = SinkError;

    fn stores_offsets(&self) -> bool {
        true
    }

    async fn stored_offset(&mut self) -> Result<Option<u64>> {
        let files = self.files.as_ref().ok_or(SinkError::WorkerGone)?;
        Ok(files.committed.last_offset)
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<()> {
        let lines = apply::lines(&self.config, &mut self.tables, batch)?;
        let mut files = self.files.take().ok_or(SinkError::WorkerGone)?;
        // Copied rows move no offset.
        let last = (!batch.copied).then_some(batch.last_offset);
        let (files, result) = tokio::task::spawn_blocking(move || {
            let r = files.append(&lines, last);
            (files, r)
        })
        .await
        .map_err(|_| SinkError::WorkerGone)?;
        // On error the file may hold uncommitted bytes; a reopen cuts them off.
        result?;
        self.files = Some(files);
        Ok(())
    }
}
