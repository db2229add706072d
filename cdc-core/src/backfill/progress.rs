//! A backfill's persisted progress: where the next chunk starts, written
//! atomically after every chunk the sink applied.

use serde::{Deserialize, Serialize};

use super::BackfillError;
use crate::progress_file::{ProgressFile, ProgressFileError};

/// How far a backfill has come. `K` is the chunk source's key cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillProgress<K> {
    /// Rows copied so far, over every run.
    pub rows: u64,
    /// Chunks copied so far, over every run.
    pub chunks: u64,
    /// Where the next chunk starts; `None` before the first chunk and once done.
    pub next: Option<K>,
    /// Whether every chunk is copied.
    pub done: bool,
    /// Whether the target table was emptied (destination `TruncateFirst`).
    pub truncated: bool,
    /// The chunk source's estimate of the table's rows, if it has one.
    #[serde(default)]
    pub estimated_rows: Option<u64>,
}

impl<K> Default for BackfillProgress<K> {
    fn default() -> Self {
        Self {
            rows: 0,
            chunks: 0,
            next: None,
            done: false,
            truncated: false,
            estimated_rows: None,
        }
    }
}

impl From<(ProgressFileError, &ProgressFile)> for BackfillError {
    fn from((error, file): (ProgressFileError, &ProgressFile)) -> Self {
        let path = file.path().to_path_buf();
        match error {
            ProgressFileError::Io(source) => BackfillError::Progress { path, source },
            ProgressFileError::Corrupt(reason) => BackfillError::CorruptProgress { path, reason },
        }
    }
}
