//! Pipeline configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PipelineError, TableFilter};

/// Where a pipeline whose cursor does not exist yet starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest record the log retains: replay all retained history.
    #[default]
    LogStart,
    /// The log's durable end when the pipeline is first started: only new changes
    /// (pair it with a backfill for existing rows).
    LogEnd,
}

/// Configuration of one pipeline.
///
/// ```
/// use cdc_core::pipeline::PipelineConfig;
///
/// let config: PipelineConfig = serde_json::from_str(
///     r#"{"name": "orders-to-files", "max_batch_records": 500,
///         "tables": {"include": [{"schema": "public", "table": "orders"}]}}"#,
/// )?;
/// config.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Name of the pipeline's durable cursor: 1 to 128 characters of
    /// `[A-Za-z0-9_.-]`. Required.
    pub name: String,
    /// Where a new cursor starts. Default: [`StartFrom::LogStart`]. Ignored once the
    /// cursor exists.
    #[serde(default)]
    pub start: StartFrom,
    /// Tables to deliver. Default: every table.
    #[serde(default)]
    pub tables: TableFilter,
    /// A batch is handed to the sink once it holds this many events (schema
    /// records and changes). A single larger transaction still goes whole in one
    /// batch, up to `max_transaction_records`. Default: 1000.
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: usize,
    /// A source transaction with more events than this is applied in several sink
    /// transactions of about this size, so memory stays bounded: the target may
    /// show such a transaction half applied for a moment, but every change is
    /// still delivered exactly once. Smaller transactions are always applied
    /// atomically. Default: 100000.
    #[serde(default = "default_max_transaction_records")]
    pub max_transaction_records: usize,
    /// Longest time a completed transaction waits for more before its batch is
    /// handed to the sink, so a quiet stream still flushes. Default: 100 ms.
    #[serde(default = "default_max_batch_delay")]
    pub max_batch_delay: Duration,
}

fn default_max_batch_records() -> usize {
    1000
}

fn default_max_transaction_records() -> usize {
    100_000
}

fn default_max_batch_delay() -> Duration {
    Duration::from_millis(100)
}

impl PipelineConfig {
    /// A configuration with the given cursor name and every other field at its default.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            start: StartFrom::default(),
            tables: TableFilter::default(),
            max_batch_records: default_max_batch_records(),
            max_transaction_records: default_max_transaction_records(),
            max_batch_delay: default_max_batch_delay(),
        }
    }

    /// Checks every field; the error names the field to fix.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if self.name.is_empty() || self.name.len() > 128 || !self.name.chars().all(valid_char) {
            return Err(config_error(
                "name",
                "use 1 to 128 characters of A-Z, a-z, 0-9, '_', '.', '-'",
            ));
        }
        if self.max_batch_records == 0 {
            return Err(config_error("max_batch_records", "must be at least 1"));
        }
        if self.max_transaction_records == 0 {
            return Err(config_error(
                "max_transaction_records",
                "must be at least 1",
            ));
        }
        if self.max_batch_delay.is_zero() {
            return Err(config_error("max_batch_delay", "must be greater than zero"));
        }
        self.tables
            .validate()
            .map_err(|reason| PipelineError::Config {
                field: "tables",
                reason,
            })
    }
}

fn config_error(field: &'static str, reason: &str) -> PipelineError {
    PipelineError::Config {
        field,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_every_omitted_field() {
        let c: PipelineConfig = serde_json::from_str(r#"{"name":"p1"}"#).unwrap();
        assert_eq!(c, PipelineConfig::new("p1"));
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<PipelineConfig>(r#"{"name":"p","max_batch":1}"#).is_err());
    }

    #[test]
    fn validate_names_the_bad_field() {
        let mut c = PipelineConfig::new("bad name");
        assert!(matches!(
            c.validate(),
            Err(PipelineError::Config { field: "name", .. })
        ));
        c.name = "ok".into();
        c.max_batch_records = 0;
        assert!(matches!(
            c.validate(),
            Err(PipelineError::Config {
                field: "max_batch_records",
                ..
            })
        ));
        c.max_batch_records = 1;
        c.max_batch_delay = Duration::ZERO;
        assert!(matches!(
            c.validate(),
            Err(PipelineError::Config {
                field: "max_batch_delay",
                ..
            })
        ));
    }
}
