//! The quickstart's migration plan: `public.accounts` moves from the old
//! SQLite target to a new one whose mapping renames `owner` to `holder`.

use std::path::PathBuf;

use async_trait::async_trait;
use cdc_core::event::TableName;
use cdc_core::migration::MigrationPlan;
use cdc_core::pipeline::{BoxedError, PipelineHandle};
use cdc_core::verify::{ColumnMap, TableReader};
use cdc_postgres::{PostgresChunks, PostgresConfig, PostgresTable};
use cdc_sinks::{SqliteTable, TableMapping};

/// Source rows per backfill chunk.
const BACKFILL_CHUNK_ROWS: usize = 5_000;

/// What moves where, and the old pipeline the cut-over stops.
pub struct AccountsMove {
    /// The source database.
    pub source: PostgresConfig,
    /// The tables to move.
    pub tables: Vec<TableName>,
    /// The new target's database file.
    pub target: PathBuf,
    /// The new target's mapping (the new pipeline's sink uses the same).
    pub mapping: TableMapping,
    /// The old pipeline, until the cut-over stops it.
    pub old: Option<PipelineHandle>,
}

#[async_trait]
impl MigrationPlan for AccountsMove {
    type Chunks = PostgresChunks;
    type Source = PostgresTable;
    type Sink = SqliteTable;

    fn tables(&self) -> Vec<TableName> {
        self.tables.clone()
    }

    async fn chunks(&mut self, table: &TableName) -> Result<PostgresChunks, BoxedError> {
        Ok(PostgresChunks::connect(&self.source, table, BACKFILL_CHUNK_ROWS).await?)
    }

    async fn readers(
        &mut self,
        table: &TableName,
    ) -> Result<(PostgresTable, SqliteTable, ColumnMap), BoxedError> {
        let source = PostgresTable::connect(&self.source, table).await?;
        let sink = SqliteTable::open(&self.target, source.schema(), &self.mapping).await?;
        let renames = self.mapping.column_renames(table);
        let columns = ColumnMap::by_name(source.schema(), sink.schema(), &renames)?;
        Ok((source, sink, columns))
    }

    /// A real host would switch its readers to the new database here; the
    /// quickstart stops the old pipeline. Called again after a crash, so a
    /// pipeline already stopped is fine.
    async fn cut_over(&mut self) -> Result<(), BoxedError> {
        if let Some(old) = self.old.take() {
            old.shutdown().await?;
        }
        Ok(())
    }
}
