//! The SQLite sink: the embedded default destination.
//!
//! One SQLite transaction per batch holds the data and the `_cdc_offsets` row, in
//! a WAL-mode database with `synchronous=FULL` (by default; see
//! [`SqliteSynchronous`]), so a committed batch survives a crash and
//! [`stored_offset`](cdc_core::Sink::stored_offset) says exactly what was
//! applied. Rows go in as cached multi-row statements bound straight from
//! the batch.

mod apply;
mod config;
mod connection;
mod mapping;
mod write;

use async_trait::async_trait;
use cdc_core::{Sink, SinkBatch};

pub use config::{SqliteConfig, SqliteSynchronous};

use crate::error::{Result, SinkError};
use connection::Shared;

/// A sink writing into a SQLite database file.
pub struct SqliteSink {
    shared: Shared,
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
        let shared = tokio::task::spawn_blocking(move || Shared::open(config))
            .await
            .map_err(|_| SinkError::WorkerGone)??;
        Ok(Self { shared })
    }
}

#[async_trait]
impl Sink for SqliteSink {
    type Error = SinkError;

    fn stores_offsets(&self) -> bool {
        true
    }

    async fn stored_offset(&mut self) -> Result<Option<u64>> {
        self.shared
            .on_blocking_thread(|state| state.stored_offset())
            .await
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<()> {
        if let Some(result) = self.shared.in_place(|state| state.apply(batch)) {
            return result;
        }
        // A current-thread runtime: the blocking thread needs its own copy.
        let batch = batch.clone();
        self.shared
            .on_blocking_thread(move |state| state.apply(&batch))
            .await
    }
}
