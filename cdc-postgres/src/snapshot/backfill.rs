//! The chunk reader as a [`ChunkSource`] for cdc-core's backfill.

use std::sync::Arc;

use async_trait::async_trait;
use cdc_core::backfill::{ChunkSource, CopiedChunk};
use cdc_core::event::{SourcePosition, TableName, TableSchema};
use tokio_postgres::Client;

use super::{ChunkReader, KeyCursor};
use crate::error::{Error, Result};
use crate::schema::Catalog;
use crate::slot::quote_table;
use crate::{PostgresConfig, connect_client};

/// One table of a PostgreSQL source read in primary-key chunks on a
/// connection of its own, for a [`Backfill`](cdc_core::backfill::Backfill).
///
/// Each chunk is one statement (a consistent read, no long transaction, no
/// lock beyond the statement's); its position is `pg_current_wal_insert_lsn()` read
/// after it.
///
/// ```no_run
/// # async fn demo(config: &cdc_postgres::PostgresConfig, pipeline: &cdc_core::pipeline::PipelineHandle)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use cdc_core::backfill::{Backfill, BackfillConfig};
/// use cdc_core::event::TableName;
/// use cdc_core::ingest::CancellationToken;
/// use cdc_postgres::PostgresChunks;
///
/// let table = TableName::new("public", "accounts");
/// let chunks = PostgresChunks::connect(config, &table, 5_000).await?;
/// let mut backfill = Backfill::new(chunks, BackfillConfig::new("accounts.backfill"));
/// backfill.run(pipeline, &CancellationToken::new()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresChunks {
    client: Client,
    reader: ChunkReader,
}

impl PostgresChunks {
    /// Connects with `config` and reads `table`'s columns and primary key;
    /// chunks hold up to `chunk_rows` rows.
    pub async fn connect(
        config: &PostgresConfig,
        table: &TableName,
        chunk_rows: usize,
    ) -> Result<Self> {
        let client = connect_client(config).await?;
        let reader = ChunkReader::new(&client, &mut Catalog::default(), table, chunk_rows).await?;
        Ok(Self { client, reader })
    }
}

#[async_trait]
impl ChunkSource for PostgresChunks {
    type Key = KeyCursor;
    type Error = Error;

    fn schema(&self) -> &Arc<TableSchema> {
        self.reader.schema()
    }

    async fn read_chunk(&mut self, after: Option<&KeyCursor>) -> Result<CopiedChunk<KeyCursor>> {
        let (rows, next, lsn) = self.reader.read_then_lsn(&self.client, after).await?;
        Ok(CopiedChunk {
            rows,
            next,
            position: SourcePosition::Postgres { lsn },
        })
    }

    /// The planner's estimate (`pg_class.reltuples`); `None` before the table
    /// was first analyzed.
    async fn estimated_rows(&mut self) -> Result<Option<u64>> {
        let table = &self.reader.schema().table;
        let estimate: f32 = self
            .client
            .query_one(
                "SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = $1::text::regclass",
                &[&quote_table(table)],
            )
            .await
            .map_err(Error::query("estimating a table's rows"))?
            .get(0);
        Ok((estimate >= 0.0).then_some(estimate as u64))
    }
}
