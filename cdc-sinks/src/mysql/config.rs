//! MySQL/MariaDB sink configuration.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SinkError};
use crate::mapping::TableMapping;
use crate::secret::Secret;

/// Configuration of a [`MySqlSink`](super::MySqlSink). Serde, unknown fields rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MySqlConfig {
    /// `mysql://user:password@host:port/db` URL. Required; redacted in Debug and logs.
    pub url: Secret,
    /// Target database for the tables and the bookkeeping tables; created if
    /// missing. Default: the URL's database.
    #[serde(default)]
    pub database: Option<String>,
    /// Name under which the offset is stored in `_cdc_offsets`. Default: `default`.
    #[serde(default = "default_sink_name")]
    pub sink_name: String,
    /// Most rows in one multi-row statement. Default: 1000.
    #[serde(default = "default_rows_per_statement")]
    pub rows_per_statement: usize,
    /// Table mapping, filters and modes. Default: every table, upsert, keep.
    #[serde(default)]
    pub mapping: TableMapping,
}

fn default_sink_name() -> String {
    "default".into()
}

fn default_rows_per_statement() -> usize {
    1000
}

impl MySqlConfig {
    /// A configuration with defaults for a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url),
            database: None,
            sink_name: default_sink_name(),
            rows_per_statement: default_rows_per_statement(),
            mapping: TableMapping::default(),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.database.as_deref() == Some("") {
            return Err(SinkError::config("database", "empty database name"));
        }
        if self.sink_name.is_empty() || self.sink_name.len() > 255 {
            return Err(SinkError::config("sink_name", "1 to 255 characters"));
        }
        if self.rows_per_statement == 0 {
            return Err(SinkError::config(
                "rows_per_statement",
                "must be at least 1",
            ));
        }
        self.mapping.validate()
    }
}
