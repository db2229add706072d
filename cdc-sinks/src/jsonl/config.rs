//! JSON-lines file sink configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SinkError};
use crate::mapping::TableMapping;

/// Configuration of a [`JsonlSink`](super::JsonlSink). Serde, unknown fields rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// Directory of the files; created if missing. Required.
    pub dir: PathBuf,
    /// File name prefix: files are `<prefix>-<000001>.jsonl`, the offset sidecar
    /// `<prefix>.offset`. Letters, digits, `_`, `-` and `.`. Default: `changes`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// A new file is started when the current one reaches this size (a batch is
    /// never split across files). Default: 128 MiB.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Table filters and column renames/exclusions (type overrides and write
    /// modes do not apply to files). Default: every table.
    #[serde(default)]
    pub mapping: TableMapping,
}

fn default_prefix() -> String {
    "changes".into()
}

fn default_max_file_bytes() -> u64 {
    128 << 20
}

impl JsonlConfig {
    /// A configuration with defaults for a directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            prefix: default_prefix(),
            max_file_bytes: default_max_file_bytes(),
            mapping: TableMapping::default(),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        let ok = !self.prefix.is_empty()
            && self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !ok {
            return Err(SinkError::config(
                "prefix",
                "letters, digits, `_`, `-` and `.` only",
            ));
        }
        if self.max_file_bytes == 0 {
            return Err(SinkError::config("max_file_bytes", "must be positive"));
        }
        self.mapping.validate()
    }
}
