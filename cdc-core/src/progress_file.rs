//! A long task's progress kept as JSON in one file, replaced atomically
//! (write, fsync, rename) so a crash leaves the old or the new state.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::log::fs::{StdFs, read_all, replace_file};

/// Why a progress file could not be used.
#[derive(Debug)]
pub(crate) enum ProgressFileError {
    /// Reading or writing failed.
    Io(std::io::Error),
    /// The file holds something else.
    Corrupt(String),
}

/// The progress file of one backfill or verification.
#[derive(Debug, Clone)]
pub(crate) struct ProgressFile {
    path: PathBuf,
}

impl ProgressFile {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved progress, or the default one when there is no file.
    pub(crate) fn load<T: DeserializeOwned + Default>(&self) -> Result<T, ProgressFileError> {
        let bytes = match read_all(&StdFs, &self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
            Err(e) => return Err(ProgressFileError::Io(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| ProgressFileError::Corrupt(e.to_string()))
    }

    /// Replaces the saved progress.
    pub(crate) fn save<T: Serialize>(&self, progress: &T) -> Result<(), ProgressFileError> {
        let bytes =
            serde_json::to_vec(progress).map_err(|e| ProgressFileError::Corrupt(e.to_string()))?;
        replace_file(&StdFs, &self.path, &bytes).map_err(ProgressFileError::Io)
    }
}
