//! Shared bench fixtures.

use async_trait::async_trait;
use cdc_core::event::{Record, SourcePosition, TableName};
use cdc_core::ingest::{self, CancellationToken};
use cdc_core::{ChangeLog, Source, SourceBatch};

/// Reads `source` to its end: into `log` under `cdc_core::ingest::run` (the
/// loop a host uses: each batch durable, then acknowledged), or, without a
/// log, decoded, acknowledged and dropped (the decoding cost alone).
pub async fn read_all<S: Source>(source: &mut S, log: Option<&ChangeLog>) {
    match log {
        Some(log) => {
            ingest::run(source, log, &CancellationToken::new())
                .await
                .expect("ingest");
        }
        None => {
            source.start(None).await.expect("source starts");
            while let Some(batch) = source.next_batch().await.expect("next batch") {
                source
                    .acknowledge(&batch.position)
                    .await
                    .expect("acknowledge");
            }
        }
    }
}

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
