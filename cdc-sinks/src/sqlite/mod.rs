//! The SQLite sink: the embedded default destination.
//!
//! One SQLite transaction per batch holds the data and the `_cdc_offsets` row, in
//! a WAL-mode database with `synchronous=FULL`, so a committed batch survives a
//! crash and [`stored_offset`](cdc_core::Sink::stored_offset) says exactly what
//! was applied. A dedicated thread owns the connection; statements are cached.

mod apply;
mod config;
mod connection;
mod mapping;

use std::sync::Arc;

use async_trait::async_trait;
use cdc_core::{Sink, SinkBatch};

pub use config::SqliteConfig;

use crate::error::{Result, SinkError};
use connection::Worker;

/// A sink writing into a SQLite database file.
pub struct SqliteSink {
    worker: Worker,
}

impl std::fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSink").finish_non_exhaustive()
    }
}

impl SqliteSink {
    /// Opens (creating if needed) the database and its bookkeeping tables.
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        config.validate()?;
        let worker = tokio::task::spawn_blocking(move || Worker::start(config))
            .await
            .map_err(|_| SinkError::WorkerGone)??;
        Ok(Self { worker })
    }
}

#[async_trait]
impl Sink for SqliteSink {
    type Error = SinkError;

    fn stores_offsets(&self) -> bool {
        true
    }

    async fn stored_offset(&mut self) -> Result<Option<u64>> {
        self.worker.call(|state| state.stored_offset()).await
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<()> {
        // The worker thread needs an owned batch; copying it is cheap next to the
        // fsynced commit.
        let batch = Arc::new(batch.clone());
        self.worker.call(move |state| state.apply(&batch)).await
    }
}
