//! PostgreSQL sink configuration.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SinkError};
use crate::mapping::TableMapping;
use crate::secret::Secret;

/// Configuration of a [`PostgresSink`](super::PostgresSink). Serde, unknown fields rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// tokio-postgres connection string (`host=... user=... password=...` or a
    /// `postgresql://` URL). Required; redacted in Debug and logs.
    pub connection: Secret,
    /// Target schema for the tables and the bookkeeping tables; created if
    /// missing. Default: `public`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Name under which the offset is stored in `_cdc_offsets`. Default: `default`.
    #[serde(default = "default_sink_name")]
    pub sink_name: String,
    /// Table mapping, filters and modes. Default: every table, upsert, keep.
    #[serde(default)]
    pub mapping: TableMapping,
}

fn default_schema() -> String {
    "public".into()
}

fn default_sink_name() -> String {
    "default".into()
}

impl PostgresConfig {
    /// A configuration with defaults for a connection string.
    pub fn new(connection: impl Into<String>) -> Self {
        Self {
            connection: Secret::new(connection),
            schema: default_schema(),
            sink_name: default_sink_name(),
            mapping: TableMapping::default(),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.schema.is_empty() {
            return Err(SinkError::config("schema", "empty schema name"));
        }
        if self.sink_name.is_empty() {
            return Err(SinkError::config("sink_name", "empty name"));
        }
        self.mapping.validate()
    }
}
