//! A backfill's persisted progress: where the next chunk starts, written
//! atomically after every chunk the sink applied.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::BackfillError;
use crate::log::fs::{StdFs, read_all, replace_file};

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

/// The progress file of one backfill.
#[derive(Debug, Clone)]
pub(super) struct ProgressFile {
    path: PathBuf,
}

impl ProgressFile {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// The saved progress, or a fresh one when there is no file.
    pub(super) fn load<K: DeserializeOwned>(&self) -> Result<BackfillProgress<K>, BackfillError> {
        let bytes = match read_all(&StdFs, &self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(BackfillProgress::default());
            }
            Err(source) => return Err(self.io(source)),
        };
        serde_json::from_slice(&bytes).map_err(|e| BackfillError::CorruptProgress {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// Replaces the saved progress: a crash leaves the old or the new one.
    pub(super) fn save<K: Serialize>(
        &self,
        progress: &BackfillProgress<K>,
    ) -> Result<(), BackfillError> {
        let bytes = serde_json::to_vec(progress).map_err(|e| BackfillError::CorruptProgress {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        replace_file(&StdFs, &self.path, &bytes).map_err(|source| self.io(source))
    }

    fn io(&self, source: std::io::Error) -> BackfillError {
        BackfillError::Progress {
            path: self.path.clone(),
            source,
        }
    }
}
