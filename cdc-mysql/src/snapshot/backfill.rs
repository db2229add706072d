//! The chunk reader as a [`ChunkSource`] for cdc-core's backfill.

use std::sync::Arc;

use async_trait::async_trait;
use cdc_core::backfill::{ChunkSource, CopiedChunk};
use cdc_core::event::{TableName, TableSchema};
use mysql_async::prelude::Queryable;

use super::{ChunkKey, ChunkReader};
use crate::config::MySqlConfig;
use crate::error::{Error, Result};

/// One table of a MySQL or MariaDB source read in primary-key chunks on a
/// connection of its own, for a [`Backfill`](cdc_core::backfill::Backfill).
///
/// Each chunk is one statement (under InnoDB, a consistent read that holds no
/// transaction open past it); its position is the binlog position read after.
///
/// ```no_run
/// # async fn demo(config: &cdc_mysql::MySqlConfig, pipeline: &cdc_core::pipeline::PipelineHandle)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use cdc_core::backfill::{Backfill, BackfillConfig};
/// use cdc_core::event::TableName;
/// use cdc_core::ingest::CancellationToken;
/// use cdc_mysql::snapshot::MySqlChunks;
///
/// let table = TableName::new("shop", "orders");
/// let chunks = MySqlChunks::connect(config, &table, 5_000).await?;
/// let mut backfill = Backfill::new(chunks, BackfillConfig::new("orders.backfill"));
/// backfill.run(pipeline, &CancellationToken::new()).await?;
/// # Ok(()) }
/// ```
pub struct MySqlChunks {
    reader: ChunkReader,
    schema: Arc<TableSchema>,
    chunk_rows: usize,
}

impl std::fmt::Debug for MySqlChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlChunks")
            .field("table", &self.schema.table)
            .field("chunk_rows", &self.chunk_rows)
            .finish_non_exhaustive()
    }
}

impl MySqlChunks {
    /// Connects with `config` and reads `table`'s schema; chunks hold up to
    /// `chunk_rows` rows.
    pub async fn connect(
        config: &MySqlConfig,
        table: &TableName,
        chunk_rows: usize,
    ) -> Result<Self> {
        let mut reader = ChunkReader::connect(config).await?;
        let schema = Arc::new(reader.schema(table).await?);
        Ok(Self {
            reader,
            schema,
            chunk_rows: chunk_rows.max(1),
        })
    }
}

#[async_trait]
impl ChunkSource for MySqlChunks {
    type Key = ChunkKey;
    type Error = Error;

    fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    async fn read_chunk(&mut self, after: Option<&ChunkKey>) -> Result<CopiedChunk<ChunkKey>> {
        let (chunk, position) = self
            .reader
            .chunk_then_position(&self.schema, after, self.chunk_rows)
            .await?;
        Ok(CopiedChunk::from_records(
            chunk.records,
            chunk.next,
            position,
        ))
    }

    /// `information_schema.TABLES.TABLE_ROWS`: InnoDB's estimate.
    async fn estimated_rows(&mut self) -> Result<Option<u64>> {
        let table = &self.schema.table;
        self.reader
            .conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (table.schema.as_str(), table.name.as_str()),
            )
            .await
            .map(Option::flatten)
            .map_err(|e| Error::mysql("estimating a table's rows", e))
    }
}
