//! SQLite sink configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SinkError};
use crate::mapping::TableMapping;

/// Configuration of a [`SqliteSink`](super::SqliteSink). Serde, unknown fields rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// Database file; created if missing. Required.
    pub path: PathBuf,
    /// Name under which the offset is stored in `_cdc_offsets`, so several
    /// pipelines can share one database file. Default: `default`.
    #[serde(default = "default_sink_name")]
    pub sink_name: String,
    /// Table mapping, filters and modes. Default: every table, upsert, keep.
    #[serde(default)]
    pub mapping: TableMapping,
    /// When a committed batch reaches the disk. Default: `full`.
    #[serde(default)]
    pub synchronous: SqliteSynchronous,
}

/// SQLite's `synchronous` setting for the sink's WAL-mode database: whether
/// each batch's commit waits for an fsync.
///
/// With a slow fsync (a few milliseconds on many virtual disks) the wait is
/// most of a batch's time, so small batches pay for it most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSynchronous {
    /// Every commit fsyncs the WAL before `apply` returns, so an applied batch
    /// survives a process crash, an OS crash and power loss (the
    /// [`Sink`](cdc_core::Sink) durability contract). The default.
    #[default]
    Full,
    /// Commits do not fsync; the WAL is synced only at checkpoints. An applied
    /// batch survives a process crash, but an OS crash or power loss can roll
    /// back the last batches (each atomically, with its offset row), so the
    /// sink may come back at an older offset than it acknowledged: the
    /// pipeline resumes from it if the log still holds those records, and
    /// they are lost if retention already removed them. This breaks the
    /// durability contract; choose it only where that loss is acceptable or the
    /// log keeps records well past the sink.
    Normal,
}

impl SqliteSynchronous {
    /// The `PRAGMA synchronous` value.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
}

fn default_sink_name() -> String {
    "default".into()
}

impl SqliteConfig {
    /// A configuration with defaults for the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            sink_name: default_sink_name(),
            mapping: TableMapping::default(),
            synchronous: SqliteSynchronous::default(),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(SinkError::config("path", "empty path"));
        }
        if self.sink_name.is_empty() {
            return Err(SinkError::config("sink_name", "empty name"));
        }
        self.mapping.validate()
    }
}
