//! The chunk reader as a [`ChunkSource`] for cdc-core's backfill.

use std::sync::Arc;

use async_trait::async_trait;
use cdc_core::backfill::{ChunkSource, CopiedChunk};
use cdc_core::event::{TableName, TableSchema};

use crate::config::MongoConfig;
use crate::error::{Error, Result};
use crate::snapshot::{ChunkKey, ChunkReader};

/// One collection of a MongoDB source read in `_id` chunks, for a
/// [`Backfill`](cdc_core::backfill::Backfill).
///
/// Each chunk is one `find`; the backfill's exactness needs each document
/// read after the pipeline paused, which a `find` started then gives (it
/// need not be one snapshot across documents). Its position is the change
/// stream's resume point read after it.
///
/// ```no_run
/// # async fn demo(config: &cdc_mongo::MongoConfig, pipeline: &cdc_core::pipeline::PipelineHandle)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use cdc_core::backfill::{Backfill, BackfillConfig};
/// use cdc_core::event::TableName;
/// use cdc_core::ingest::CancellationToken;
/// use cdc_mongo::MongoChunks;
///
/// let orders = TableName::new("shop", "orders");
/// let chunks = MongoChunks::connect(config, &orders, 1_000).await?;
/// let mut backfill = Backfill::new(chunks, BackfillConfig::new("orders.backfill"));
/// backfill.run(pipeline, &CancellationToken::new()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MongoChunks {
    reader: ChunkReader,
    table: TableName,
    schema: Arc<TableSchema>,
    chunk_rows: usize,
}

impl MongoChunks {
    /// Prepares a client with `config` for collection `table` (database,
    /// collection); chunks hold up to `chunk_rows` documents.
    pub async fn connect(
        config: &MongoConfig,
        table: &TableName,
        chunk_rows: usize,
    ) -> Result<Self> {
        let reader = ChunkReader::connect(config).await?;
        let schema = Arc::new(reader.schema(table));
        Ok(Self {
            reader,
            table: table.clone(),
            schema,
            chunk_rows: chunk_rows.max(1),
        })
    }
}

#[async_trait]
impl ChunkSource for MongoChunks {
    type Key = ChunkKey;
    type Error = Error;

    fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    async fn read_chunk(&mut self, after: Option<&ChunkKey>) -> Result<CopiedChunk<ChunkKey>> {
        let (chunk, position) = self
            .reader
            .chunk_then_position(&self.table, after, self.chunk_rows)
            .await?;
        Ok(CopiedChunk::from_records(
            chunk.records,
            chunk.next,
            position,
        ))
    }

    /// The collection's metadata count.
    async fn estimated_rows(&mut self) -> Result<Option<u64>> {
        self.reader.estimated_rows(&self.table).await.map(Some)
    }
}
