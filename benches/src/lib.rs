//! Shared bench fixtures.

use async_trait::async_trait;
use cdc_core::event::{Record, SourcePosition, TableName};
use cdc_core::{Source, SourceBatch};

/// A source that ends its stream once `want` row changes went by, so a live
/// source can run under `cdc_core::ingest::run` for a fixed workload.
pub struct FirstRows<S> {
    source: S,
    want: u64,
    seen: u64,
}

impl<S> FirstRows<S> {
    /// Ends `source` after `want` row changes (at the end of that batch).
    pub fn new(source: S, want: u64) -> Self {
        Self {
            source,
            want,
            seen: 0,
        }
    }
}

#[async_trait]
impl<S: Source> Source for FirstRows<S> {
    type Error = S::Error;

    fn tables(&self) -> &[TableName] {
        self.source.tables()
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<(), Self::Error> {
        self.source.start(resume_after).await
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, Self::Error> {
        if self.seen >= self.want {
            return Ok(None);
        }
        let batch = self.source.next_batch().await?;
        if let Some(batch) = &batch {
            self.seen += batch
                .records
                .iter()
                .filter(|r| matches!(r, Record::Change(_)))
                .count() as u64;
        }
        Ok(batch)
    }

    async fn acknowledge(&mut self, position: &SourcePosition) -> Result<(), Self::Error> {
        self.source.acknowledge(position).await
    }
}
