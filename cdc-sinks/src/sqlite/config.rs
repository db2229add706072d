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
