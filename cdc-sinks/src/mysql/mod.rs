//! The MySQL/MariaDB sink (mysql_async).
//!
//! Each batch is one transaction of multi-row `INSERT ... ON DUPLICATE KEY
//! UPDATE` statements and batched deletes, with the batch's offset written to
//! `_cdc_offsets` in the same transaction and read back on restart. Table DDL
//! runs before the transaction (MySQL commits DDL implicitly); see `apply`.

mod apply;
mod config;
mod connection;
mod mapping;

use async_trait::async_trait;
use cdc_core::{Sink, SinkBatch};

pub use config::MySqlConfig;

use crate::error::{Result, SinkError};

/// A sink writing into MySQL or MariaDB.
pub struct MySqlSink {
    config: MySqlConfig,
    conn: mysql_async::Conn,
    tables: apply::Tables,
}

impl std::fmt::Debug for MySqlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MySqlSink {
    /// Connects and creates the target database and bookkeeping tables.
    pub async fn connect(config: MySqlConfig) -> Result<Self> {
        config.validate()?;
        let conn = connection::connect(&config).await?;
        Ok(Self {
            config,
            conn,
            tables: apply::Tables::new(),
        })
    }
}

#[async_trait]
impl Sink for MySqlSink {
    type Error = SinkError;

    fn stores_offsets(&self) -> bool {
        true
    }

    async fn stored_offset(&mut self) -> Result<Option<u64>> {
        apply::stored_offset(&mut self.conn, &self.config).await
    }

    async fn apply(&mut self, batch: &SinkBatch) -> Result<()> {
        let result = apply::apply(&mut self.conn, &self.config, &mut self.tables, batch).await;
        if result.is_err() {
            // The transaction rolled back: reload table state from the database.
            self.tables.clear();
        }
        result
    }
}
