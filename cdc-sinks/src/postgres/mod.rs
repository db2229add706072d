//! The PostgreSQL sink (tokio-postgres).
//!
//! Each batch is one transaction: per table, the rows of new keys are copied
//! straight into the target with binary `COPY` (falling back to a merge if a
//! key already exists), other net changes are staged with binary `COPY` into a
//! session's temporary table and merged with set-based upserts and deletes;
//! history rows are copied straight into the target. The batch's offset is
//! written to `_cdc_offsets` in the same transaction and read back on restart.

mod apply;
mod config;
mod connection;
mod mapping;
mod merge;
mod table;

use async_trait::async_trait;
use cdc_core::{Sink, SinkBatch};

pub use config::PostgresConfig;

use crate::error::{Result, SinkError};

/// A sink writing into PostgreSQL.
pub struct PostgresSink {
    config: PostgresConfig,
    conn: connection::Connection,
    tables: table::Tables,
    store_offset: tokio_postgres::Statement,
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PostgresSink {
    /// Connects and creates the target schema and bookkeeping tables.
    pub async fn connect(config: PostgresConfig) -> Result<Self> {
        config.validate()?;
        let conn = connection::connect(&config).await?;
        let store_offset = apply::prepare_store_offset(&conn.client, &config).await?;
        Ok(Self {
            config,
            conn,
            tables: table::Tables::default(),
            store_offset,
        })
    }
}

#[async_trait]
impl Sink for PostgresSink {
    type Error = SinkError;

    fn stores_offsets(&self) -> bool {
        true
    }

    async fn stored_offset(&mut self) -> Result<Option<u64>> {
        apply::stored_offset(&self.conn.client, &self.config).await
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<()> {
        let result = apply::apply(
            &mut self.conn.client,
            &self.config,
            &mut self.tables,
            &self.store_offset,
            batch,
        )
        .await;
        if result.is_err() {
            // The transaction rolled back: forget tables built or altered in it.
            self.tables.clear();
        }
        result
    }
}
