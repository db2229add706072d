//! Committing the pipeline's cursor off the hot path.
//!
//! A cursor commit is a write-rename-fsync, which costs milliseconds. Waiting for
//! it after every batch would cap a pipeline at a few hundred batches a second
//! whatever the sink's speed, so commits run on a blocking thread while the next
//! batch is applied. At most one commit is in flight; a newer offset requested
//! meanwhile replaces an older waiting one (only the latest matters). The cursor
//! therefore trails the applied offset by at most the batches of one fsync, which
//! is safe: a sink that stores offsets decides the resume point anyway, and for
//! one that does not, delivery is at-least-once. Pause and shutdown wait until
//! every requested commit is durable.

use std::future::pending;

use tokio::task::JoinHandle;

use super::PipelineError;
use crate::ChangeLog;

/// Moves one cursor forward, one durable commit at a time.
pub(crate) struct CursorCommitter {
    log: ChangeLog,
    name: String,
    /// The durably committed offset.
    committed: u64,
    in_flight: Option<(u64, JoinHandle<crate::Result<()>>)>,
    /// The newest offset requested and not started yet.
    wanted: Option<u64>,
}

impl CursorCommitter {
    pub(crate) fn new(log: ChangeLog, name: String, committed: u64) -> Self {
        Self {
            log,
            name,
            committed,
            in_flight: None,
            wanted: None,
        }
    }

    /// Whether a commit is running.
    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Asks for the cursor to move to `offset`; ignored unless it is past every
    /// offset committed or requested, so the cursor never moves backwards.
    pub(crate) fn request(&mut self, offset: u64) {
        let target = self
            .wanted
            .or(self.in_flight.as_ref().map(|(o, _)| *o))
            .unwrap_or(self.committed)
            .max(self.committed);
        if offset > target {
            self.wanted = Some(offset);
            self.start_next();
        }
    }

    /// Resolves when the running commit ends (never if none runs) and starts the
    /// waiting one. Cancel-safe: state changes only after the commit ended.
    pub(crate) async fn finish_one(&mut self) -> Result<(), PipelineError> {
        let Some((offset, task)) = self.in_flight.as_mut() else {
            return pending().await;
        };
        let offset = *offset;
        let result = task.await;
        self.in_flight = None;
        result.map_err(|_| PipelineError::Panicked)??;
        self.committed = offset;
        self.start_next();
        Ok(())
    }

    /// Waits until every requested offset is durably committed.
    pub(crate) async fn settle(&mut self) -> Result<(), PipelineError> {
        self.start_next();
        while self.in_flight.is_some() {
            self.finish_one().await?;
        }
        Ok(())
    }

    fn start_next(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(offset) = self.wanted.take() else {
            return;
        };
        let log = self.log.clone();
        let name = self.name.clone();
        let task = tokio::task::spawn_blocking(move || log.cursors().commit(&name, offset));
        self.in_flight = Some((offset, task));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogConfig;

    #[tokio::test]
    async fn commits_coalesce_to_the_newest_offset_and_never_go_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
        log.cursors().create("p", 5).unwrap();
        let mut committer = CursorCommitter::new(log.clone(), "p".into(), 5);

        committer.request(3);
        assert!(!committer.is_busy(), "an older offset is ignored");
        committer.request(10);
        committer.request(20);
        committer.request(15);
        committer.settle().await.unwrap();

        assert_eq!(log.cursors().get("p").unwrap(), Some(20));
        assert!(!committer.is_busy());
    }

    #[tokio::test]
    async fn a_failed_commit_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let log = ChangeLog::open(dir.path(), LogConfig::default()).unwrap();
        let mut committer = CursorCommitter::new(log, "missing".into(), 0);
        committer.request(1);
        let err = committer.settle().await.unwrap_err();
        assert!(matches!(
            err,
            PipelineError::Log {
                source: crate::Error::CursorNotFound { .. }
            }
        ));
    }
}
