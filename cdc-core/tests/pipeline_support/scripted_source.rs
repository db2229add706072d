//! A scripted in-memory source: a test double of the `Source` trait that behaves
//! like a replication slot (re-delivers everything not acknowledged).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cdc_core::event::{SourcePosition, TableName};
use cdc_core::{ChangeLog, Source, SourceBatch};

use super::at_or_after;

/// What the source observed, shared with the test.
#[derive(Debug, Default)]
pub struct Observed {
    /// Arguments of every `start` call.
    pub starts: Vec<Option<SourcePosition>>,
    /// Every acknowledged position, in order.
    pub acks: Vec<SourcePosition>,
    /// Batches handed out by `next_batch`.
    pub delivered: usize,
    /// Set if a position was acknowledged before the log had it durably.
    pub acked_before_durable: bool,
}

pub struct ScriptedSource {
    script: Vec<SourceBatch>,
    tables: Vec<TableName>,
    next: usize,
    /// Like a slot: restart from the last acknowledged batch, ignoring `resume_after`.
    redeliver_unacknowledged: bool,
    /// Fail the acknowledgement of the batch with this index, once.
    fail_ack_of: Option<usize>,
    /// After the script, wait forever instead of ending the stream.
    hang_at_end: bool,
    log: ChangeLog,
    pub observed: Arc<Mutex<Observed>>,
}

impl ScriptedSource {
    pub fn new(log: &ChangeLog, script: Vec<SourceBatch>) -> Self {
        Self {
            script,
            tables: Vec::new(),
            next: 0,
            redeliver_unacknowledged: false,
            fail_ack_of: None,
            hang_at_end: false,
            log: log.clone(),
            observed: Arc::default(),
        }
    }

    pub fn redelivering_unacknowledged(mut self) -> Self {
        self.redeliver_unacknowledged = true;
        self
    }

    pub fn failing_ack_of(mut self, batch: usize) -> Self {
        self.fail_ack_of = Some(batch);
        self
    }

    pub fn hanging_at_end(mut self) -> Self {
        self.hang_at_end = true;
        self
    }
}

#[async_trait]
impl Source for ScriptedSource {
    type Error = std::io::Error;

    fn tables(&self) -> &[TableName] {
        &self.tables
    }

    async fn start(&mut self, resume_after: Option<SourcePosition>) -> Result<(), Self::Error> {
        let mut observed = self.observed.lock().unwrap();
        observed.starts.push(resume_after.clone());
        let after = if self.redeliver_unacknowledged {
            observed.acks.last().cloned()
        } else {
            resume_after
        };
        self.next = match after {
            None => 0,
            Some(p) => self
                .script
                .iter()
                .position(|b| !at_or_after(&p, &b.position))
                .unwrap_or(self.script.len()),
        };
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, Self::Error> {
        if let Some(batch) = self.script.get(self.next) {
            self.next += 1;
            self.observed.lock().unwrap().delivered += 1;
            return Ok(Some(batch.clone()));
        }
        if self.hang_at_end {
            std::future::pending::<()>().await;
        }
        Ok(None)
    }

    async fn acknowledge(&mut self, position: &SourcePosition) -> Result<(), Self::Error> {
        // By position: the runner may acknowledge a batch after asking for the next.
        let failing = self
            .fail_ack_of
            .and_then(|i| self.script.get(i))
            .is_some_and(|b| &b.position == position);
        if failing {
            self.fail_ack_of = None;
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection lost before acknowledging",
            ));
        }
        let durable = self.log.last_source_position();
        let mut observed = self.observed.lock().unwrap();
        if !durable.as_ref().is_some_and(|d| at_or_after(d, position)) {
            observed.acked_before_durable = true;
        }
        observed.acks.push(position.clone());
        Ok(())
    }
}
